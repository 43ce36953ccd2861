/* SPDX-License-Identifier: MIT */
/* plan.c — load and check the input of a flashing job before any device is touched.
 * Must not: talk to a device or log; errors are returned with a class and a message. */
#include "plan.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int plan_fail(plan_err_t *err, est_class_t cls, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int plan_fail(plan_err_t *err, est_class_t cls, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->cls = cls;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

void plan_init(plan_t *p)
{
    memset(p, 0, sizeof *p);
    p->chip = CHIP_UNKNOWN;
    p->before = PLAN_BEFORE_DEFAULT;
    p->after = PLAN_AFTER_HARD_RESET;
    p->flash_mode = -1;
    snprintf(p->flash_size, sizeof p->flash_size, "keep");
    snprintf(p->flash_freq, sizeof p->flash_freq, "keep");
    p->compress = true;
    p->verify = true;
    p->baud = 115200;
    p->connect_attempts = 7;
    p->stub = true; /* used when stub_dir / stub_file names a file for the chip */
    p->op = PLAN_OP_FLASH;
    p->test_baud = 115200;
    p->test_timeout_ms = 10000;
}

int plan_parse_before(const char *s, plan_before_t *out)
{
    if (!strcmp(s, "default_reset") || !strcmp(s, "default-reset"))
        *out = PLAN_BEFORE_DEFAULT;
    else if (!strcmp(s, "no_reset") || !strcmp(s, "no-reset"))
        *out = PLAN_BEFORE_NO_RESET;
    else if (!strcmp(s, "usb_reset") || !strcmp(s, "usb-reset"))
        *out = PLAN_BEFORE_USB_RESET;
    else
        return -1;
    return 0;
}

int plan_parse_after(const char *s, plan_after_t *out)
{
    if (!strcmp(s, "hard_reset") || !strcmp(s, "hard-reset"))
        *out = PLAN_AFTER_HARD_RESET;
    else if (!strcmp(s, "no_reset") || !strcmp(s, "no-reset"))
        *out = PLAN_AFTER_NO_RESET;
    else
        return -1;
    return 0;
}

int plan_parse_u32(const char *s, uint32_t *out)
{
    char *end;
    unsigned long long v;
    if (!s || !*s || *s == '-')
        return -1;
    errno = 0;
    v = strtoull(s, &end, 0);
    if (errno || *end || v > UINT32_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

const char *plan_fmt_size(uint32_t bytes, char *buf, size_t cap)
{
    if (bytes && bytes % (1024u * 1024) == 0)
        snprintf(buf, cap, "%uMB", bytes / (1024u * 1024));
    else if (bytes && bytes % 1024 == 0)
        snprintf(buf, cap, "%uKB", bytes / 1024);
    else
        snprintf(buf, cap, "%u bytes", bytes);
    return buf;
}

int plan_add_image_mem(plan_t *p, uint32_t offset, const char *label, uint8_t *data, size_t size,
                       plan_err_t *err)
{
    plan_image_t *im;
    if (p->n_images >= PLAN_MAX_IMAGES) {
        free(data);
        return plan_fail(err, EST_CLASS_USAGE, EST_EUSAGE, "too many images (at most %d)",
                         PLAN_MAX_IMAGES);
    }
    if (offset % PLAN_SECTOR) {
        free(data);
        return plan_fail(err, EST_CLASS_BAD_OFFSET, EST_EOFFSET,
                         "offset 0x%x of %s is not a multiple of 0x1000 (4 KiB flash sector); "
                         "writing there would erase the bytes before it in the same sector",
                         offset, label);
    }
    if (size == 0) {
        free(data);
        return plan_fail(err, EST_CLASS_IMAGE_INVALID, EST_EIMAGE, "image %s is empty", label);
    }
    im = &p->images[p->n_images];
    im->path = strdup(label);
    if (!im->path) {
        free(data);
        return plan_fail(err, EST_CLASS_INTERNAL, -ENOMEM, "out of memory");
    }
    static uint64_t next_id; /* loop thread only: plans are built there */
    im->offset = offset;
    im->data = data;
    im->size = size;
    im->id = ++next_id;
    p->n_images++;
    return 0;
}

int plan_add_image(plan_t *p, uint32_t offset, const char *path, plan_err_t *err)
{
    FILE *f;
    struct stat st;
    uint8_t *buf;
    size_t got;

    f = fopen(path, "rb");
    if (!f)
        return plan_fail(err, EST_CLASS_IMAGE_MISSING, -errno, "cannot open image %s: %s", path,
                         strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return plan_fail(err, EST_CLASS_IMAGE_MISSING, EST_EIMAGE,
                         "image %s is not a regular file", path);
    }
    if ((uint64_t)st.st_size > PLAN_MAX_IMAGE_SIZE) {
        fclose(f);
        return plan_fail(err, EST_CLASS_FLASH_TOO_SMALL, EST_ETOOBIG,
                         "image %s is %lld bytes, larger than any supported flash (128MB)", path,
                         (long long)st.st_size);
    }
    buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buf) {
        fclose(f);
        return plan_fail(err, EST_CLASS_INTERNAL, -ENOMEM, "out of memory reading %s", path);
    }
    got = fread(buf, 1, (size_t)st.st_size, f);
    if (got != (size_t)st.st_size) {
        int e = ferror(f) ? errno : EIO;
        fclose(f);
        free(buf);
        return plan_fail(err, EST_CLASS_IMAGE_MISSING, -e, "cannot read image %s: %s", path,
                         strerror(e));
    }
    fclose(f);
    return plan_add_image_mem(p, offset, path, buf, got, err);
}

static int plan_cmp_offset(const void *a, const void *b)
{
    const plan_image_t *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

int plan_finish(plan_t *p, plan_err_t *err)
{
    if (p->n_images == 0)
        return plan_fail(err, EST_CLASS_USAGE, EST_EUSAGE, "no images to write");
    qsort(p->images, p->n_images, sizeof p->images[0], plan_cmp_offset);
    for (size_t i = 1; i < p->n_images; i++) {
        const plan_image_t *a = &p->images[i - 1], *b = &p->images[i];
        /* compare as 64-bit: offset + size may exceed 4 GiB for nonsense input */
        if ((uint64_t)a->offset + a->size > b->offset)
            return plan_fail(err, EST_CLASS_BAD_OFFSET, EST_EOFFSET,
                             "images overlap: %s at 0x%x (%zu bytes) runs into %s at 0x%x",
                             a->path, a->offset, a->size, b->path, b->offset);
    }
    return 0;
}

int plan_check_flash(const plan_t *p, uint32_t flash_size, plan_err_t *err)
{
    char sz[32];
    if (p->op != PLAN_OP_FLASH && !(p->op == PLAN_OP_ERASE && p->erase_all)) {
        if (p->op_offset >= flash_size)
            return plan_fail(err, EST_CLASS_BAD_OFFSET, EST_EOFFSET,
                             "offset 0x%x is beyond the end of the %s flash", p->op_offset,
                             plan_fmt_size(flash_size, sz, sizeof sz));
        if ((uint64_t)p->op_offset + p->op_size > flash_size)
            return plan_fail(err, EST_CLASS_FLASH_TOO_SMALL, EST_ETOOBIG,
                             "0x%x + 0x%x runs past the end of the %s flash", p->op_offset,
                             p->op_size, plan_fmt_size(flash_size, sz, sizeof sz));
        return 0;
    }
    for (size_t i = 0; i < p->n_images; i++) {
        const plan_image_t *im = &p->images[i];
        if (im->offset >= flash_size)
            return plan_fail(err, EST_CLASS_BAD_OFFSET, EST_EOFFSET,
                             "offset 0x%x of %s is beyond the end of the %s flash", im->offset,
                             im->path, plan_fmt_size(flash_size, sz, sizeof sz));
        if ((uint64_t)im->offset + im->size > flash_size)
            return plan_fail(err, EST_CLASS_FLASH_TOO_SMALL, EST_ETOOBIG,
                             "%s (%zu bytes at 0x%x) does not fit in the %s flash: it would end "
                             "at 0x%llx",
                             im->path, im->size, im->offset,
                             plan_fmt_size(flash_size, sz, sizeof sz),
                             (unsigned long long)im->offset + im->size);
    }
    return 0;
}

void plan_free(plan_t *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->n_images; i++) {
        free(p->images[i].path);
        free(p->images[i].data);
    }
    p->n_images = 0;
}
