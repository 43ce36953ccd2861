// SPDX-License-Identifier: MIT
// sim_flash: NOR flash contents for espsim. Erased bytes are 0xFF, programming ANDs (as real
// NOR: writing without erasing corrupts), erase granularity is the 4 KiB sector.
// Must not know protocol rules (ROM size limits, erase bugs): sim_dev applies those.
// Storage keeps the bitwise complement of the flash so that erased memory is the zero page of an
// anonymous mapping: a 256 MB part costs only the pages actually written.
#include "sim_flash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int sim_flash_init(sim_flash_t *f, uint32_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
    if (p == MAP_FAILED) return -ENOMEM;
    f->mem = p;
    f->size = size;
    f->sectors_erased = 0;
    f->bytes_programmed = 0;
    return 0;
}

void sim_flash_free(sim_flash_t *f)
{
    if (f->mem) munmap(f->mem, f->size);
    f->mem = NULL;
    f->size = 0;
}

int sim_flash_load(sim_flash_t *f, const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) return -errno;
    uint8_t buf[65536];
    uint32_t off = 0;
    size_t n;
    while (off < f->size && (n = fread(buf, 1, sizeof(buf), fp)) > 0) {
        for (size_t i = 0; i < n && off < f->size; i++, off++)
            f->mem[off] = (uint8_t)~buf[i];
    }
    int err = ferror(fp) ? -EIO : 0;
    fclose(fp);
    return err;
}

int sim_flash_dump(const sim_flash_t *f, const char *path)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return -ENAMETOOLONG;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    uint8_t buf[65536];
    for (uint32_t base = 0; base < f->size; base += sizeof(buf)) {
        uint32_t n = f->size - base < sizeof(buf) ? f->size - base : (uint32_t)sizeof(buf);
        sim_flash_read(f, base, buf, n);
        size_t done = 0;
        while (done < n) {
            ssize_t w = write(fd, buf + done, n - done);
            if (w < 0) {
                if (errno == EINTR) continue;
                int e = -errno;
                close(fd);
                unlink(tmp);
                return e;
            }
            done += (size_t)w;
        }
    }
    if (close(fd) != 0) {
        int e = -errno;
        unlink(tmp);
        return e;
    }
    if (rename(tmp, path) != 0) {
        int e = -errno;
        unlink(tmp);
        return e;
    }
    return 0;
}

void sim_flash_erase_sectors(sim_flash_t *f, uint32_t first_sector, uint32_t count)
{
    uint32_t nsec = f->size / SIM_FLASH_SECTOR;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t s = first_sector + i;
        if (s >= nsec) break;
        uint8_t *p = f->mem + (size_t)s * SIM_FLASH_SECTOR;
        // give the page back when possible (erased == zero page), else clear it
        if (SIM_FLASH_SECTOR % (uint32_t)sysconf(_SC_PAGESIZE) != 0 ||
            madvise(p, SIM_FLASH_SECTOR, MADV_DONTNEED) != 0)
            memset(p, 0, SIM_FLASH_SECTOR);
        f->sectors_erased++;
    }
}

int sim_flash_program(sim_flash_t *f, uint32_t off, const uint8_t *data, uint32_t len)
{
    int same = 1;
    for (uint32_t i = 0; i < len; i++) {
        uint64_t a = (uint64_t)off + i;
        if (a >= f->size) {
            same = 0;
            break;
        }
        f->mem[a] |= (uint8_t)~data[i]; // NOR: 1 -> 0 only
        uint8_t now = (uint8_t)~f->mem[a];
        if (now != data[i]) same = 0;
    }
    f->bytes_programmed += len;
    return same;
}

void sim_flash_read(const sim_flash_t *f, uint32_t off, uint8_t *out, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++) {
        uint64_t a = (uint64_t)off + i;
        out[i] = a < f->size ? (uint8_t)~f->mem[a] : 0xFF;
    }
}

void sim_flash_flip_bit(sim_flash_t *f, uint32_t off, unsigned bit)
{
    if (off < f->size) f->mem[off] ^= (uint8_t)(1u << (bit & 7));
}
