/* SPDX-License-Identifier: MIT */
/* est_err.h — project error codes and user-facing error classes.
 * Owns: the negative error numbers added on top of libuv's UV_E* codes, and the list of error
 * classes (stable snake_case names stored in SQLite / shown in the API).
 * Must not: depend on anything but the C library; everything here is data. */
#ifndef EST_ERR_H
#define EST_ERR_H

#include <stddef.h>

/* Project error codes, numbered from -10000 down. libuv's UV_E* codes (negative errno values)
 * are used alongside these for OS-level failures. XX(NAME, value, text). */
#define EST_ERRNO_MAP(XX)                                                                          \
    XX(EPROTO, -10001, "protocol error (malformed or unexpected response)")                        \
    XX(ENAK, -10002, "device answered with an error status")                                       \
    XX(EMD5, -10003, "MD5 of flash does not match the image")                                      \
    XX(ECHIP, -10004, "unknown or unexpected chip")                                                \
    XX(EIMAGE, -10005, "invalid image")                                                            \
    XX(ESYNC, -10006, "no sync reply from the device")                                             \
    XX(EBOOTMODE, -10007, "device is not in download mode")                                        \
    XX(EUNSUPP, -10008, "command not supported by this loader")                                    \
    XX(EFLASHID, -10009, "flash chip not responding")                                              \
    XX(ETOOBIG, -10010, "image does not fit in flash")                                             \
    XX(EOFFSET, -10011, "invalid flash offset")                                                    \
    XX(EBROWNOUT, -10012, "device reset unexpectedly")                                             \
    XX(ERECIPE, -10013, "invalid recipe")                                                          \
    XX(EDB, -10014, "database error")                                                              \
    XX(ETIMEOUT, -10015, "device did not answer in time")                                          \
    XX(ECANCELED, -10016, "cancelled")                                                             \
    XX(EUSAGE, -10017, "invalid arguments")                                                        \
    XX(ESTUB, -10018, "flasher stub missing, malformed or not starting")                           \
    XX(ETEST, -10019, "the application did not report ready after flashing")

enum {
#define XX(name, val, text) EST_##name = (val),
    EST_ERRNO_MAP(XX)
#undef XX
};

/* Text for an EST_* code or a UV_E* code (negative errno). Never NULL. */
const char *est_strerror(int err);

/* User-visible error classes: XX(ENUM, "name"). The names are a stable interface (SQLite column
 * `error_class`, JSON `error_class`). What an operator reads about each (words and remedy hint)
 * is the daemon's (daemon/station/vocab.c). */
#define EST_CLASS_MAP(XX)                                                                          \
    XX(NONE, "none")                                                                               \
    XX(USAGE, "usage")                                                                             \
    XX(IMAGE_MISSING, "image_missing")                                                             \
    XX(IMAGE_INVALID, "image_invalid")                                                             \
    XX(RECIPE_INVALID, "recipe_invalid")                                                           \
    XX(BAD_OFFSET, "bad_offset")                                                                   \
    XX(FLASH_TOO_SMALL, "flash_too_small")                                                         \
    XX(PORT_NOT_FOUND, "port_not_found")                                                           \
    XX(PORT_BUSY, "port_busy")                                                                     \
    XX(PORT_GONE, "port_gone")                                                                     \
    XX(PORT_ERROR, "port_error")                                                                   \
    XX(NO_SYNC, "no_sync")                                                                         \
    XX(WRONG_BOOT_MODE, "wrong_boot_mode")                                                         \
    XX(TIMEOUT, "timeout")                                                                         \
    XX(NAK, "nak")                                                                                 \
    XX(UNSUPPORTED, "unsupported")                                                                 \
    XX(PROTOCOL, "protocol")                                                                       \
    XX(MD5_MISMATCH, "md5_mismatch")                                                               \
    XX(WRONG_CHIP, "wrong_chip")                                                                   \
    XX(FLASH_NOT_DETECTED, "flash_not_detected")                                                   \
    XX(BROWNOUT, "brownout")                                                                       \
    XX(STUB_FAILED, "stub_failed")                                                                 \
    XX(TEST_FAILED, "test_failed")                                                                 \
    XX(CANCELLED, "cancelled")                                                                     \
    XX(INTERNAL, "internal")

typedef enum {
#define XX(e, name) EST_CLASS_##e,
    EST_CLASS_MAP(XX)
#undef XX
        EST_CLASS__COUNT
} est_class_t;

const char *est_class_name(est_class_t c);
/* Look up a class by its name; returns EST_CLASS__COUNT if unknown. */
est_class_t est_class_from_name(const char *name);

#endif
