/* SPDX-License-Identifier: MIT */
/* efuse_coding.h — the two eFuse block codings a host has to produce before programming a
 * block, and their check on read (docs/SECURITY-PROVISIONING.md §"eFuse coding").
 * Owns: Reed-Solomon (44,32) over GF(2^8) as used by the eFuse controllers of the ESP32-S2 and
 * later (32 data bytes + 12 check bytes = 11 program words) and the original ESP32's 3/4 scheme
 * (24 data bytes -> 8 words). Byte order: "register byte order" — byte 0 is the lowest byte of
 * the first program-data word. Must not: do I/O, allocate or keep state. */
#ifndef EFUSE_CODING_H
#define EFUSE_CODING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EFUSE_RS_DATA_LEN 32  /* bytes of block data */
#define EFUSE_RS_CHECK_LEN 12 /* Reed-Solomon check bytes */
#define EFUSE_RS_WORDS 11     /* program words: 8 data + 3 check */
#define EFUSE_34_DATA_LEN 24
#define EFUSE_34_WORDS 8

/* Reed-Solomon: the 12 check bytes of 32 data bytes (generator 2, primitive polynomial 0x11D,
 * first consecutive root alpha^0: the parameters of reedsolo.RSCodec(12)). */
void efuse_rs_check_bytes(const uint8_t data[EFUSE_RS_DATA_LEN], uint8_t check[EFUSE_RS_CHECK_LEN]);
/* The 11 program words of a block (words 0..7 data, 8..10 check bytes, little-endian). */
void efuse_rs_encode(const uint8_t data[EFUSE_RS_DATA_LEN], uint32_t words[EFUSE_RS_WORDS]);
/* Check on read: true when the 11 words are a valid code word (no coding error). A false
 * result means the block reads back with at least one flipped bit; it never "corrects". */
bool efuse_rs_ok(const uint32_t words[EFUSE_RS_WORDS]);

/* ESP32 3/4 coding: each 6-byte group is followed by the XOR of its bytes and the sum of
 * (index 1..6) * popcount(byte); 4 groups give 32 bytes = 8 words. */
void efuse_34_encode(const uint8_t data[EFUSE_34_DATA_LEN], uint32_t words[EFUSE_34_WORDS]);
/* Check on read of 8 encoded words: true when every group's two check bytes match. */
bool efuse_34_ok(const uint32_t words[EFUSE_34_WORDS]);
/* The 24 data bytes of 8 encoded words (no check). */
void efuse_34_decode(const uint32_t words[EFUSE_34_WORDS], uint8_t data[EFUSE_34_DATA_LEN]);

/* Little-endian helpers: words <-> register-order bytes. */
void efuse_words_to_bytes(const uint32_t *words, size_t n_words, uint8_t *bytes);
void efuse_bytes_to_words(const uint8_t *bytes, size_t n_bytes, uint32_t *words);

#endif
