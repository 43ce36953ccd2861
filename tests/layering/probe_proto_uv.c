/* SPDX-License-Identifier: MIT */
/* probe_proto_uv.c — must NOT compile (jobs/proto/CMakeLists.txt, ctest unit.layering.proto_uv):
 * jobs/proto is the pure protocol core and must not see libuv. */
#include <uv.h>
