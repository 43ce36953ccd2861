# SPDX-License-Identifier: MIT
# install-unit.cmake — runs at install time (install(SCRIPT) from deploy/CMakeLists.txt): writes
# espstation.service from its template with the executable's full path for the prefix of this
# install (`cmake --install --prefix P`, or CPack's /usr), honouring DESTDIR, and records it in
# the install manifest. Must not: write anywhere but the unit directory.
# Inputs (set by the install(CODE) before it): ESTN_UNIT_TEMPLATE, ESTN_UNIT_DIR,
# ESTN_UNIT_BINDIR, ESTN_UNIT_DOCDIR (absolute, or relative to the prefix).

foreach(var ESTN_UNIT_DIR ESTN_UNIT_BINDIR ESTN_UNIT_DOCDIR)
  if(IS_ABSOLUTE "${${var}}")
    set(${var}_FULL "${${var}}")
  else()
    set(${var}_FULL "${CMAKE_INSTALL_PREFIX}/${${var}}")
  endif()
endforeach()

set(ESTN_BINARY "${ESTN_UNIT_BINDIR_FULL}/espstation")
set(ESTN_DOCDIR "${ESTN_UNIT_DOCDIR_FULL}")
set(unit "$ENV{DESTDIR}${ESTN_UNIT_DIR_FULL}/espstation.service")
message(STATUS "Installing: ${unit}")
configure_file("${ESTN_UNIT_TEMPLATE}" "${unit}" @ONLY)
file(CHMOD "${unit}" PERMISSIONS OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
list(APPEND CMAKE_INSTALL_MANIFEST_FILES "${ESTN_UNIT_DIR_FULL}/espstation.service")
