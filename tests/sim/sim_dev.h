// SPDX-License-Identifier: MIT
// sim_dev: the simulated chip (boot modes, ROM loader protocol, registers, SPI flash controller,
// faults, timing). Transport-agnostic: bytes in via sim_dev_input(), bytes out via a callback.
// Must not touch file descriptors other than for --flash-in/--flash-out.
#ifndef ESPSIM_DEV_H
#define ESPSIM_DEV_H

#include <stddef.h>
#include <stdint.h>

#include "sim_chip.h"

#define SIM_MAX_NAKS 16
#define SIM_MAX_APP_PRINT 16

typedef struct {
    const sim_chip_t *chip;
    uint8_t mac[6];
    uint32_t jedec;      // 0xMMTTCC (JEDEC order: manufacturer, type, capacity)
    uint32_t flash_size; // physical size in bytes
    int rev_major, rev_minor;
    const char *flash_in;
    int realtime;
    uint32_t seed;
    // application model
    const char *boot_log; // replaces the generated application boot log when set
    const char *app_text; // periodic application line
    // printed once per application start, after the boot log (--app-print, escapes resolved)
    const char *app_print[SIM_MAX_APP_PRINT];
    int n_app_print;
    // NVS keys the application reports after them (--app-nvs-print, sim_nvs.c) and where the
    // NVS partition is (--nvs-offset / --nvs-size; 0 = ESP-IDF's default 0x9000 / 0x6000)
    const char *app_nvs_print;
    uint32_t nvs_offset, nvs_size;
    unsigned app_period_ms;
    unsigned en_delay_ms; // EN rise time: boot pin low meanwhile = download (RFC 2217)
    int has_lines;        // the transport carries DTR/RTS (RFC 2217)
    // faults (docs/SIMULATOR.md)
    int f_silent;
    int f_app;
    struct {
        int op;
        int code;
    } naks[SIM_MAX_NAKS];
    int n_naks;
    long f_noise_after; // -1 = off
    long f_drop_reply;  // -1 = off
    int f_drop_replies;
    int f_bitflip;
    long f_hangup_after;   // -1 = off
    long f_brownout_after; // -1 = off
    int f_sync_drop;       // SYNC requests ignored after each reset
    int f_no_stub;         // MEM_END with an entry point never answers "OHAI" (chip hangs)
    long f_rom_garble;     // ROM data block K arrives corrupted and is counted (0 = off)
    // an uploaded RAM program that is not a flasher stub (docs/SIMULATOR.md "Uploaded programs"):
    // printed once when it starts / every app_period_ms (NULL or "" = nothing)
    const char *ram_log;
    const char *ram_text;
    // the host reaches the ROM over its native USB (docs/SIMULATOR.md): 0 UART, else the chip's
    // usb_otg_no / usb_jtag_no is reported in UARTDEV_BUF_NO; USB-OTG refuses > 0x800-byte blocks
    int usb_otg, usb_jtag;
    // eFuses (docs/SIMULATOR.md "eFuses and security"): a JSON file loaded (or created) at start
    // and rewritten after each burn; faults: a block that reads back wrong, hangup / brown-out at
    // program command K (-1 = off)
    const char *efuse_file;
    int f_efuse_bad_block;
    long f_efuse_hangup, f_efuse_brownout;
} sim_dev_cfg_t;

typedef struct sim_dev_s sim_dev_t;

typedef struct {
    void *ctx;
    // bytes the chip transmits, with the UART rate they are sent at
    void (*write)(void *ctx, const uint8_t *p, size_t n, uint32_t baud);
    // the chip asks the transport to vanish (fault hangup)
    void (*hangup)(void *ctx);
} sim_dev_io_t;

sim_dev_t *sim_dev_new(const sim_dev_cfg_t *cfg, const sim_dev_io_t *io, char *err, size_t errlen);
void sim_dev_free(sim_dev_t *d);

// All times are microseconds of CLOCK_MONOTONIC.
// Starts the device: download mode (as if the host had reset it) or the application (fault app).
void sim_dev_start(sim_dev_t *d, uint64_t now_us);
// Bytes from the host.
void sim_dev_input(sim_dev_t *d, const uint8_t *p, size_t n, uint64_t now_us);
// The host's UART rate when the transport knows it (RFC 2217 SET-BAUDRATE, a pty's termios with
// --strict-baud). With strict set, a rate that differs from the chip's garbles data both ways, as
// on a real wire; without it (pty, raw TCP) the host is assumed to follow the protocol: 115200,
// then the rate of each CHANGE_BAUDRATE (a stub whose divider went wrong still garbles).
void sim_dev_set_host_baud(sim_dev_t *d, uint32_t baud, int strict);
// Modem lines as the host drives them (asserted = 1), for the auto-reset circuit.
void sim_dev_set_lines(sim_dev_t *d, int dtr, int rts, uint64_t now_us);
// A host connected (TCP/RFC 2217): the application model prints its boot log again.
void sim_dev_client_connected(sim_dev_t *d, uint64_t now_us);
// Time-driven work (EN delay, app output, realtime pacing). Returns the next deadline or
// UINT64_MAX when nothing is pending.
uint64_t sim_dev_tick(sim_dev_t *d, uint64_t now_us);

// The operator takes the board out and puts a new one in: next MAC (+1), blank flash, power-on
// boot as the lines say (download mode where the transport has no lines).
void sim_dev_new_board(sim_dev_t *d, uint64_t now_us);

uint32_t sim_dev_baud(const sim_dev_t *d);
int sim_dev_dump_flash(sim_dev_t *d, const char *path);
uint32_t sim_dev_flash_size(const sim_dev_t *d);

// Opcode from a name ("FLASH_BEGIN") or number ("0x02"); -1 if unknown.
int sim_dev_opcode_from_name(const char *s);

#endif
