// SPDX-License-Identifier: MIT
// sim_md5: small MD5 (RFC 1321) for SPI_FLASH_MD5 replies; no other use.
#ifndef ESPSIM_MD5_H
#define ESPSIM_MD5_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[4];
    uint64_t len;
    uint8_t buf[64];
    size_t fill;
} sim_md5_t;

void sim_md5_init(sim_md5_t *m);
void sim_md5_update(sim_md5_t *m, const uint8_t *p, size_t n);
void sim_md5_final(sim_md5_t *m, uint8_t out[16]);

#endif
