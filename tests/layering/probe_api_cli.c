/* SPDX-License-Identifier: MIT */
/* probe_api_cli.c — must NOT compile (tests/layering/CMakeLists.txt): api/ must not use the command-line layer. */
#include "serve.h"
