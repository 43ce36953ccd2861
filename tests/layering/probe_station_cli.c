/* SPDX-License-Identifier: MIT */
/* probe_station_cli.c — must NOT compile (tests/layering/CMakeLists.txt): station/ must not use the command-line layer. */
#include "cli.h"
