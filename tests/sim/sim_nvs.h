// SPDX-License-Identifier: MIT
// sim_nvs: espsim's own reader of an NVS partition (ESP-IDF non-volatile storage, the layout in
// docs/DEVICE-DATA.md "The NVS format"), written independently of the host's generator: what
// the simulated application reads at boot to report per-device data (--app-nvs-print).
// Plain (unencrypted) partitions. Must not: write flash or keep state.
#ifndef ESPSIM_NVS_H
#define ESPSIM_NVS_H

#include <stddef.h>
#include <stdint.h>

#include "sim_flash.h"

#define SIM_NVS_DEFAULT_OFFSET 0x9000u // ESP-IDF's default partition table
#define SIM_NVS_DEFAULT_SIZE 0x6000u

// Looks ns:key up in the partition `part` of `size` bytes. Returns 1 and the value as text in
// `out` (integers in decimal, strings as they are with non-printable bytes as \xNN, blobs in
// hex), 0 when the namespace or key is not there, -1 when no page is a valid NVS page.
int sim_nvs_get(const uint8_t *part, uint32_t size, const char *ns, const char *key, char *out,
                size_t cap);

// 0 when `spec` is "ns:key[,ns:key...]" (names 1..15 bytes, at most 16 keys), else -1.
int sim_nvs_spec_ok(const char *spec);

// espsim's options: name "app-nvs-print" (spec), "nvs-offset" or "nvs-size" (a multiple of
// 4 KiB, decimal or 0x...). Sets the matching output; prints the problem and returns -1 when
// the argument is bad.
int sim_nvs_option(const char *name, const char *arg, const char **spec, uint32_t *offset,
                   uint32_t *size);

// The application's boot report for --app-nvs-print: one line per key of `spec`,
// "I (260) nvs: ns:key = value" or "... ns:key not found", CR LF each (or one line saying the
// partition is missing / outside the flash). offset / size 0: the defaults above. Returns the
// length written to out (NUL-terminated).
size_t sim_nvs_report(const sim_flash_t *flash, uint32_t offset, uint32_t size, const char *spec,
                      char *out, size_t cap);

#endif
