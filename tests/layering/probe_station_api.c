/* SPDX-License-Identifier: MIT */
/* probe_station_api.c — must NOT compile (tests/layering/CMakeLists.txt): station/ (the station core) must not use the HTTP API. */
#include "api.h"
