/* SPDX-License-Identifier: MIT */
/* est_err.h — project error codes and user-facing error classes.
 * Owns: the negative error numbers added on top of libuv's UV_E* codes, and the list of error
 * classes (stable snake_case names stored in SQLite / shown in the API) with their remedy hints.
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

/* User-visible error classes: XX(ENUM, "name", "remedy hint in plain words"). The names are a
 * stable interface (SQLite column `error_class`, JSON `error_class`). */
#define EST_CLASS_MAP(XX)                                                                          \
    XX(NONE, "none", "")                                                                           \
    XX(USAGE, "usage", "Check the command line; run with --help for the options.")                 \
    XX(IMAGE_MISSING, "image_missing",                                                             \
       "Check that the image file exists and is readable by the station user.")                    \
    XX(IMAGE_INVALID, "image_invalid",                                                             \
       "The image file is empty or not a valid firmware image for this chip; rebuild it or "       \
       "check the recipe points at the right file.")                                               \
    XX(RECIPE_INVALID, "recipe_invalid",                                                           \
       "The recipe is not valid: fix the field named in the message (docs/RECIPES.md lists every " \
       "field) and check it with 'espstation recipe check FILE'.")                                 \
    XX(BAD_OFFSET, "bad_offset",                                                                   \
       "Flash offsets must be multiples of 4 KiB (0x1000), images must not overlap, and every "    \
       "image must lie inside the flash.")                                                         \
    XX(FLASH_TOO_SMALL, "flash_too_small",                                                         \
       "The image does not fit in this board's flash; check the board variant (module flash "      \
       "size) or the image/offset.")                                                               \
    XX(PORT_NOT_FOUND, "port_not_found",                                                           \
       "The serial port does not exist: check the USB cable and hub, and the port name (ls "       \
       "/dev/serial/by-path/).")                                                                   \
    XX(PORT_BUSY, "port_busy",                                                                     \
       "Another program holds the port (a serial monitor, ModemManager, another station job); "    \
       "close it and retry.")                                                                      \
    XX(PORT_GONE, "port_gone",                                                                     \
       "The port disappeared during the job: check the USB cable, the hub's power and the "        \
       "fixture contacts, then reinsert the board.")                                               \
    XX(PORT_ERROR, "port_error",                                                                   \
       "The port could not be configured; check that it is a serial device and that the station "  \
       "user is in the dialout group.")                                                            \
    XX(NO_SYNC, "no_sync",                                                                         \
       "Nothing answered the bootloader sync. Check that the board is powered and seated, that "   \
       "TX/RX are not swapped, and that the boot pin (GPIO0, or GPIO9 on C-series) is pulled low " \
       "at reset (auto-reset wiring on DTR/RTS, or hold BOOT while resetting).")                   \
    XX(WRONG_BOOT_MODE, "wrong_boot_mode",                                                         \
       "The device is running its application instead of the ROM bootloader: the boot pin was "    \
       "not low at reset. Check the DTR/RTS auto-reset circuit (and its EN capacitor) or hold "    \
       "BOOT while resetting.")                                                                    \
    XX(TIMEOUT, "timeout",                                                                         \
       "The device stopped answering. Check the cable, the fixture contacts and power; try a "     \
       "lower baud rate.")                                                                         \
    XX(NAK, "nak",                                                                                 \
       "The bootloader rejected a command. Check that the recipe matches the chip and the flash "  \
       "size; see the command and status in the message.")                                         \
    XX(UNSUPPORTED, "unsupported",                                                                 \
       "This loader does not support the operation (e.g. the ESP8266 ROM has no MD5 or "           \
       "compressed writes); use the stub loader or change the recipe.")                            \
    XX(PROTOCOL, "protocol",                                                                       \
       "Garbled replies from the device: check for noise on the serial lines, a bad cable, or a "  \
       "baud rate the adapter cannot do.")                                                         \
    XX(MD5_MISMATCH, "md5_mismatch",                                                               \
       "Flash content differs from the image after writing: the flash may be faulty or the "       \
       "supply unstable during writing. Retry; if it repeats, reject the board.")                  \
    XX(WRONG_CHIP, "wrong_chip",                                                                   \
       "The chip on the board is not the one the job expects: check the board type or the "        \
       "--chip / recipe setting.")                                                                 \
    XX(FLASH_NOT_DETECTED, "flash_not_detected",                                                   \
       "The SPI flash did not answer (JEDEC ID 000000/FFFFFF): check the flash chip, its supply "  \
       "and the SPI pin configuration.")                                                           \
    XX(BROWNOUT, "brownout",                                                                       \
       "The chip reset itself during the job (boot banner mid-transfer): check the 3.3 V supply "  \
       "under load, USB hub power and decoupling.")                                                \
    XX(STUB_FAILED, "stub_failed",                                                                 \
       "The flasher stub could not be loaded or did not start. Point the station at an intact "    \
       "stub directory (an installed esptool's targets/stub_flasher/1 or /2, or an "               \
       "esp-flasher-stub release; docs/CLI.md), or use the ROM loader (--no-stub, recipe "         \
       "\"stub\": false).")                                                                        \
    XX(TEST_FAILED, "test_failed",                                                                 \
       "The board was flashed and verified, but the application did not report ready: check the "  \
       "application log in the job detail (what it printed after the reset), the power supply, "   \
       "and the peripherals and wiring on the fixture the application waits for.")                 \
    XX(CANCELLED, "cancelled", "The job was cancelled.")                                           \
    XX(INTERNAL, "internal", "Internal error in espstation; please report it with the log.")

typedef enum {
#define XX(e, name, hint) EST_CLASS_##e,
    EST_CLASS_MAP(XX)
#undef XX
        EST_CLASS__COUNT
} est_class_t;

const char *est_class_name(est_class_t c);
const char *est_class_hint(est_class_t c);
/* Look up a class by its name; returns EST_CLASS__COUNT if unknown. */
est_class_t est_class_from_name(const char *name);

#endif
