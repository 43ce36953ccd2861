/* SPDX-License-Identifier: MIT */
/* plan.c — load and check the input of a flashing job before any device is touched: images,
 * typed settings parsed once, the station's slot precedence, and plan_finalize(), the only place
 * that checks rules spanning fields. Must not: talk to a device or log; errors are returned with
 * a class and a message. */
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
    p->flash_size_mode = PLAN_FSIZE_KEEP;
    p->compress = true;
    p->verify = true;
    p->baud = PLAN_DEFAULT_BAUD;
    p->connect_attempts = 7;
    p->stub = true; /* used when stub_dir / stub_file names a file for the chip */
    p->stub_pick = STUB_PICK_DEFAULT;
    p->op = PLAN_OP_FLASH;
    p->test_baud = PLAN_DEFAULT_BAUD;
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

bool plan_spelling_deprecated(const char *s)
{
    return s && strchr(s, '-') != NULL;
}

const char *plan_before_name(plan_before_t b)
{
    switch (b) {
    case PLAN_BEFORE_DEFAULT: return "default_reset";
    case PLAN_BEFORE_NO_RESET: return "no_reset";
    case PLAN_BEFORE_USB_RESET: return "usb_reset";
    }
    return "?";
}

const char *plan_after_name(plan_after_t a)
{
    switch (a) {
    case PLAN_AFTER_HARD_RESET: return "hard_reset";
    case PLAN_AFTER_NO_RESET: return "no_reset";
    }
    return "?";
}

int plan_set_flash_size(plan_t *p, const char *s, plan_err_t *err)
{
    char base[16];
    size_t n = s ? strcspn(s, "-") : 0;
    uint32_t bytes;
    if (!s || !*s)
        return plan_fail(err, EST_CLASS_USAGE, EST_EUSAGE, "flash size: empty (use keep, detect "
                                                           "or a size like 4MB)");
    if (!strcmp(s, "keep") || !strcmp(s, "detect")) {
        p->flash_size_mode = s[0] == 'k' ? PLAN_FSIZE_KEEP : PLAN_FSIZE_DETECT;
        p->flash_size_bytes = 0;
        p->flash_size_c1 = false;
        return 0;
    }
    snprintf(base, sizeof base, "%.*s", (int)n, s);
    bytes = chip_parse_size(base);
    if (n >= sizeof base || !bytes || (s[n] && strcmp(s + n, "-c1") != 0) ||
        (s[n] && bytes != 2u * 1024 * 1024 && bytes != 4u * 1024 * 1024))
        return plan_fail(err, EST_CLASS_USAGE, EST_EUSAGE,
                         "flash size %s: use keep, detect, a size like 4MB or 512KB, or the "
                         "ESP8266 layouts 2MB-c1 / 4MB-c1",
                         s);
    p->flash_size_mode = PLAN_FSIZE_SET;
    p->flash_size_bytes = bytes;
    p->flash_size_c1 = s[n] != 0;
    return 0;
}

int plan_set_flash_freq(plan_t *p, const char *s, plan_err_t *err)
{
    char *end;
    unsigned long v;
    if (s && !strcmp(s, "keep")) {
        p->flash_freq_mhz = 0;
        return 0;
    }
    v = s && *s >= '1' && *s <= '9' ? strtoul(s, &end, 10) : 0;
    if (!v || v > 1000 || strcmp(end, "m") != 0)
        return plan_fail(err, EST_CLASS_USAGE, EST_EUSAGE,
                         "flash frequency %s: use keep or a frequency like 40m", s ? s : "");
    p->flash_freq_mhz = (uint16_t)v;
    return 0;
}

const char *plan_flash_size_name(const plan_t *p, char *buf, size_t cap)
{
    char sz[24];
    switch (p->flash_size_mode) {
    case PLAN_FSIZE_KEEP: snprintf(buf, cap, "keep"); break;
    case PLAN_FSIZE_DETECT: snprintf(buf, cap, "detect"); break;
    case PLAN_FSIZE_SET:
        snprintf(buf, cap, "%s%s", plan_fmt_size(p->flash_size_bytes, sz, sizeof sz),
                 p->flash_size_c1 ? "-c1" : "");
        break;
    }
    return buf;
}

const char *plan_flash_freq_name(const plan_t *p, char *buf, size_t cap)
{
    if (p->flash_freq_mhz)
        snprintf(buf, cap, "%um", p->flash_freq_mhz);
    else
        snprintf(buf, cap, "keep");
    return buf;
}

void plan_apply_slot(plan_t *p, const plan_slot_t *slot)
{
    if (slot->force || !p->before_set) p->before = slot->before;
    if (slot->force || !p->after_set) p->after = slot->after;
}

static int plan_range(plan_err_t *err, const char *what, uint32_t v, uint32_t lo, uint32_t hi)
{
    if (v >= lo && v <= hi) return 0;
    return plan_fail(err, EST_CLASS_USAGE, EST_EUSAGE, "%s %u is out of range (%u..%u)", what, v,
                     lo, hi);
}

int plan_finalize(const plan_t *p, plan_err_t *err)
{
    int rc;
    if ((rc = plan_range(err, "baud rate", p->baud, PLAN_BAUD_MIN, PLAN_BAUD_MAX)) ||
        (p->flash_baud &&
         (rc = plan_range(err, "flash baud rate", p->flash_baud, PLAN_BAUD_MIN, PLAN_BAUD_MAX))) ||
        (rc = plan_range(err, "connect attempts", p->connect_attempts, PLAN_CONNECT_ATTEMPTS_MIN,
                         PLAN_CONNECT_ATTEMPTS_MAX)))
        return rc;
    if (p->flash_mode < -1 || p->flash_mode > 3)
        return plan_fail(err, EST_CLASS_USAGE, EST_EUSAGE, "flash mode code %d is not valid",
                         p->flash_mode);
    if (p->stub_pick != STUB_PICK_DEFAULT && p->stub_pick != STUB_PICK_LEGACY &&
        p->stub_pick != STUB_PICK_NEW)
        return plan_fail(err, EST_CLASS_USAGE, EST_EUSAGE, "stub choice %d is not valid",
                         (int)p->stub_pick);
    if (p->op == PLAN_OP_ERASE && !p->erase_all && p->op_size == 0)
        return plan_fail(err, EST_CLASS_USAGE, EST_EUSAGE, "erase: the region is empty");
    if (p->op != PLAN_OP_FLASH && (uint64_t)p->op_offset + p->op_size > UINT32_MAX)
        return plan_fail(err, EST_CLASS_USAGE, EST_EUSAGE,
                         "0x%x + 0x%x is beyond any flash address", p->op_offset, p->op_size);
    if (!p->test) return 0;
    /* the post-flash test: a flashing job with images, reset into the application after */
    if (p->op != PLAN_OP_FLASH || p->n_images == 0)
        return plan_fail(err, EST_CLASS_USAGE, EST_EUSAGE,
                         "the post-flash test runs only after writing images");
    if (p->after != PLAN_AFTER_HARD_RESET)
        return plan_fail(err, EST_CLASS_USAGE, EST_EUSAGE,
                         "the post-flash test needs after hard_reset (--after hard_reset, recipe "
                         "\"after\": \"hard-reset\"; the board must be reset into its "
                         "application), but after is %s",
                         plan_after_name(p->after));
    if (!p->test_expect || !*p->test_expect || strlen(p->test_expect) > PLAN_TEST_EXPECT_MAX)
        return plan_fail(err, EST_CLASS_USAGE, EST_EUSAGE,
                         "the post-flash test needs the expected text (1..%d bytes)",
                         PLAN_TEST_EXPECT_MAX);
    if ((rc = plan_range(err, "test baud rate", p->test_baud, PLAN_BAUD_MIN, PLAN_BAUD_MAX)) ||
        (rc = plan_range(err, "test timeout (ms)", p->test_timeout_ms, PLAN_TEST_TIMEOUT_MIN,
                         PLAN_TEST_TIMEOUT_MAX)))
        return rc;
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
