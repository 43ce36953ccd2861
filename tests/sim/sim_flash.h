// SPDX-License-Identifier: MIT
// sim_flash: NOR flash model of espsim (contents, erase, program, statistics).
// It knows nothing about the serial protocol; callers check ROM limits before calling.
#ifndef ESPSIM_FLASH_H
#define ESPSIM_FLASH_H

#include <stdint.h>

#define SIM_FLASH_SECTOR 0x1000u
#define SIM_FLASH_BLOCK 0x10000u

typedef struct {
    uint8_t *mem;
    uint32_t size;
    uint64_t sectors_erased; // for the timing model and statistics
    uint64_t bytes_programmed;
} sim_flash_t;

int sim_flash_init(sim_flash_t *f, uint32_t size);
void sim_flash_free(sim_flash_t *f);
// Loads an image into the flash from offset 0 (rest stays 0xFF). Returns 0 or -errno.
int sim_flash_load(sim_flash_t *f, const char *path);
// Writes the whole flash to path atomically (tmp + rename). Returns 0 or -errno.
int sim_flash_dump(const sim_flash_t *f, const char *path);
// Erases every 4 KiB sector in [first_sector, first_sector + count), clipped to the chip.
void sim_flash_erase_sectors(sim_flash_t *f, uint32_t first_sector, uint32_t count);
// NOR programming: bits can only go from 1 to 0 (flash &= data). Returns 1 if the read-back
// equals data (what the ROM's write check compares), 0 otherwise. Clipped to the chip.
int sim_flash_program(sim_flash_t *f, uint32_t off, const uint8_t *data, uint32_t len);
// Inverts one bit (fault injection: a cell that rots after programming).
void sim_flash_flip_bit(sim_flash_t *f, uint32_t off, unsigned bit);
// Copies len bytes from off; bytes beyond the chip read as 0xFF.
void sim_flash_read(const sim_flash_t *f, uint32_t off, uint8_t *out, uint32_t len);

#endif
