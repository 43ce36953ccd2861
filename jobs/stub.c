/* SPDX-License-Identifier: MIT */
/* stub.c — find, read, parse and cache esptool flasher-stub JSON files (PROTOCOL.md §8.1–§8.2).
 * Owns: the directory layouts, the JSON/base64 checks and the process-wide cache of parsed
 * files. Must not: talk to a device or log; errors come back as text for the caller to report.
 * The cache is used from the loop thread only; stub files are small, so reading one there is a
 * short local-disk read (once per file and change, not per job). */
#include "stub.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <uv.h>

#include "est_err.h"

static int stub_fail(char *err, size_t cap, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int stub_fail(char *err, size_t cap, int code, const char *fmt, ...)
{
    if (err && cap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, cap, fmt, ap);
        va_end(ap);
    }
    return code;
}

void stub_free(stub_t *s)
{
    if (!s) return;
    free(s->text);
    free(s->data);
    free(s->path);
    memset(s, 0, sizeof *s);
}

/* A JSON number that is an integer 0..0xFFFFFFFF (esptool writes addresses as plain integers). */
static int stub_get_u32(const cJSON *root, const char *key, bool required, uint32_t *out,
                        bool *present, char *err, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    double d;
    if (present) *present = v != NULL;
    if (!v) {
        if (required) return stub_fail(err, cap, EST_ESTUB, "\"%s\" is missing", key);
        return 0;
    }
    if (!cJSON_IsNumber(v)) return stub_fail(err, cap, EST_ESTUB, "\"%s\" is not a number", key);
    d = v->valuedouble;
    if (d < 0 || d > 4294967295.0 || d != (double)(uint32_t)d)
        return stub_fail(err, cap, EST_ESTUB, "\"%s\" is not a 32-bit address (%.17g)", key, d);
    *out = (uint32_t)d;
    return 0;
}

/* Decode standard base64 (with padding) as esptool writes it: one line, no whitespace inside. */
static int stub_b64(const cJSON *root, const char *key, bool required, uint8_t **out,
                    size_t *out_len, char *err, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    const char *s;
    size_t n, pad = 0;
    uint8_t *buf;
    int got;
    *out = NULL;
    *out_len = 0;
    if (!v) {
        if (required) return stub_fail(err, cap, EST_ESTUB, "\"%s\" is missing", key);
        return 0;
    }
    if (!cJSON_IsString(v) || !v->valuestring)
        return stub_fail(err, cap, EST_ESTUB, "\"%s\" is not a base64 string", key);
    s = v->valuestring;
    n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        n--;
    if (n == 0) return stub_fail(err, cap, EST_ESTUB, "\"%s\" is empty", key);
    if (n % 4 != 0)
        return stub_fail(err, cap, EST_ESTUB, "\"%s\" is not valid base64 (length %zu)", key, n);
    if (n / 4 * 3 > STUB_MAX_SEGMENT)
        return stub_fail(err, cap, EST_ESTUB, "\"%s\" is larger than %u bytes", key,
                         STUB_MAX_SEGMENT);
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || (c == '=' && i >= n - 2);
        if (!ok || (i == n - 2 && c == '=' && s[n - 1] != '='))
            return stub_fail(err, cap, EST_ESTUB, "\"%s\" is not valid base64 (character %zu)", key,
                             i);
    }
    pad = s[n - 1] == '=' ? (s[n - 2] == '=' ? 2 : 1) : 0;
    buf = malloc(n / 4 * 3);
    if (!buf) return stub_fail(err, cap, -ENOMEM, "out of memory");
    /* EVP_DecodeBlock counts the padding as zero bytes: the real length is 3/4 n - pad */
    got = EVP_DecodeBlock(buf, (const unsigned char *)s, (int)n);
    if (got < 0 || (size_t)got != n / 4 * 3 || (size_t)got <= pad) {
        free(buf);
        return stub_fail(err, cap, EST_ESTUB, "\"%s\" is not valid base64", key);
    }
    *out = buf;
    *out_len = (size_t)got - pad;
    return 0;
}

int stub_parse(const char *json, size_t len, stub_t *s, char *err, size_t cap)
{
    cJSON *root;
    bool has_data_start, has_data;
    int rc;
    memset(s, 0, sizeof *s);
    if (len > STUB_MAX_FILE)
        return stub_fail(err, cap, EST_ESTUB, "file is larger than %u bytes", STUB_MAX_FILE);
    root = cJSON_ParseWithLength(json, len);
    if (!root) return stub_fail(err, cap, EST_ESTUB, "not valid JSON");
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return stub_fail(err, cap, EST_ESTUB, "not a JSON object");
    }
    rc = stub_b64(root, "text", true, &s->text, &s->text_len, err, cap);
    if (rc == 0) rc = stub_get_u32(root, "text_start", true, &s->text_start, NULL, err, cap);
    if (rc == 0) rc = stub_get_u32(root, "entry", true, &s->entry, NULL, err, cap);
    if (rc == 0) rc = stub_b64(root, "data", false, &s->data, &s->data_len, err, cap);
    if (rc == 0)
        rc = stub_get_u32(root, "data_start", false, &s->data_start, &has_data_start, err, cap);
    if (rc == 0) rc = stub_get_u32(root, "bss_start", false, &s->bss_start, &s->has_bss, err, cap);
    cJSON_Delete(root);
    if (rc != 0) {
        stub_free(s);
        return rc;
    }
    has_data = s->data != NULL;
    if (has_data != has_data_start) {
        stub_free(s);
        return stub_fail(err, cap, EST_ESTUB, "\"%s\" without \"%s\"",
                         has_data ? "data" : "data_start", has_data ? "data_start" : "data");
    }
    if ((uint64_t)s->text_start + s->text_len > 0x100000000ull ||
        (has_data && (uint64_t)s->data_start + s->data_len > 0x100000000ull)) {
        stub_free(s);
        return stub_fail(err, cap, EST_ESTUB, "a segment runs past the 32-bit address space");
    }
    if (s->entry < s->text_start || s->entry >= s->text_start + s->text_len) {
        uint32_t ts = s->text_start, te = (uint32_t)(s->text_start + s->text_len);
        uint32_t entry = s->entry;
        stub_free(s);
        return stub_fail(err, cap, EST_ESTUB,
                         "\"entry\" 0x%08x lies outside the text segment 0x%08x..0x%08x", entry, ts,
                         te);
    }
    if (has_data && s->data_start < s->text_start + s->text_len &&
        s->text_start < s->data_start + s->data_len) {
        stub_free(s);
        return stub_fail(err, cap, EST_ESTUB, "text and data segments overlap");
    }
    return 0;
}

int stub_load_file(const char *path, stub_t *s, char *err, size_t cap)
{
    FILE *f;
    struct stat st;
    char *buf;
    size_t got;
    int rc;
    memset(s, 0, sizeof *s);
    f = fopen(path, "rb");
    if (!f) return stub_fail(err, cap, -errno, "cannot open %s: %s", path, strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        return stub_fail(err, cap, EST_ESTUB, "%s is not a regular file", path);
    }
    if ((uint64_t)st.st_size > STUB_MAX_FILE) {
        fclose(f);
        return stub_fail(err, cap, EST_ESTUB, "%s is larger than %u bytes: not a stub file", path,
                         STUB_MAX_FILE);
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        fclose(f);
        return stub_fail(err, cap, -ENOMEM, "out of memory");
    }
    got = fread(buf, 1, (size_t)st.st_size, f);
    fclose(f);
    if (got != (size_t)st.st_size) {
        free(buf);
        return stub_fail(err, cap, EST_ESTUB, "cannot read %s", path);
    }
    buf[got] = 0;
    {
        char why[256];
        rc = stub_parse(buf, got, s, why, sizeof why);
        if (rc != 0) stub_fail(err, cap, rc, "%s: %s", path, why);
    }
    free(buf);
    if (rc == 0) {
        s->path = strdup(path);
        if (!s->path) {
            stub_free(s);
            return stub_fail(err, cap, -ENOMEM, "out of memory");
        }
    }
    return rc;
}

/* ---- where the file for a chip lives ---- */

static bool stub_is_file(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* "esp32c3" → "32c3", "esp8266" → "8266": the names of the esptool 4.2–4.7 layout */
static const char *stub_short_name(const chip_info_t *c)
{
    return strncmp(c->name, "esp", 3) == 0 ? c->name + 3 : c->name;
}

/* ESP32-P4 below v3.00 needs the stub built for that silicon (its RAM layout differs: the
 * legacy stub's rc1 build loads at 0x4FF10000, the v3 build higher). Its file names: esptool
 * 5.x's `esp32p4rc1.json` (stub_json_name()), the newer `esp32p4-rev1.json`, and esptool
 * 4.2–4.7's `stub_flasher_32p4.json`, which predates v3.00 silicon and so serves only the old
 * revisions (never a v3 chip). Other chips: `<chip>.json` and `stub_flasher_<short>.json`. */
static bool stub_p4_old(const chip_info_t *chip, unsigned chip_rev)
{
    return chip->id == CHIP_ESP32P4 && chip_rev < 300;
}

/* ---- which esptool a stub directory came from, and which of 1/ 2/ it uses ---- */

int stub_pick_parse(const char *s, stub_pick_t *out)
{
    if (!s) return -1;
    if (strcmp(s, "default") == 0)
        *out = STUB_PICK_DEFAULT;
    else if (strcmp(s, "1") == 0 || strcmp(s, "legacy") == 0)
        *out = STUB_PICK_LEGACY;
    else if (strcmp(s, "2") == 0 || strcmp(s, "esp-flasher-stub") == 0)
        *out = STUB_PICK_NEW;
    else
        return -1;
    return 0;
}

const char *stub_pick_name(stub_pick_t p)
{
    return p == STUB_PICK_LEGACY ? "legacy" : p == STUB_PICK_NEW ? "esp-flasher-stub" : "default";
}

/* "5.3.1" from a line such as `__version__ = "5.3.1"` or `5.3.1`; must start with a digit. */
static int stub_version_from(const char *line, char *out, size_t cap)
{
    const char *p = line, *q;
    size_t n;
    if (strncmp(p, "__version__", 11) == 0) {
        p = strchr(p, '=');
        if (!p) return -1;
        p++;
    }
    while (*p == ' ' || *p == '\t' || *p == '"' || *p == '\'')
        p++;
    if (*p < '0' || *p > '9') return -1;
    for (q = p; (*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'z') || *q == '.' || *q == '-' ||
                *q == '+';
         q++)
        ;
    n = (size_t)(q - p);
    if (n == 0 || n >= cap) return -1;
    memcpy(out, p, n);
    out[n] = 0;
    return 0;
}

/* First line of `path` (VERSION) or the `__version__` line of an __init__.py. */
static int stub_version_file(const char *path, bool python, char *out, size_t cap)
{
    char line[256];
    int rc = -1;
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    for (int n = 0; rc != 0 && n < 400 && fgets(line, sizeof line, f); n++) {
        if (python && strncmp(line, "__version__", 11) != 0) continue;
        rc = stub_version_from(line, out, cap);
        if (!python) break;
    }
    fclose(f);
    return rc;
}

/* An esptool-X.dist-info beside the esptool package directory `pkg`. */
static int stub_version_distinfo(const char *pkg, char *out, size_t cap)
{
    char parent[4096];
    DIR *d;
    struct dirent *ent;
    int rc = -1;
    if ((size_t)snprintf(parent, sizeof parent, "%s/..", pkg) >= sizeof parent) return -1;
    d = opendir(parent);
    if (!d) return -1;
    while (rc != 0 && (ent = readdir(d)) != NULL) {
        size_t n = strlen(ent->d_name);
        if (strncmp(ent->d_name, "esptool-", 8) == 0 && n > 18 &&
            strcmp(ent->d_name + n - 10, ".dist-info") == 0) {
            char v[64];
            size_t vn = n - 18;
            if (vn >= sizeof v) continue;
            memcpy(v, ent->d_name + 8, vn);
            v[vn] = 0;
            rc = stub_version_from(v, out, cap);
        }
    }
    closedir(d);
    return rc;
}

int stub_esptool_version(const char *dir, char *out, size_t cap)
{
    /* dir = <pkg>/targets/stub_flasher, or <pkg>/targets/stub_flasher/{1,2} */
    static const char *const ups[] = {"../..", "../../.."};
    char p[4096];
    if (!dir || !*dir || !out || cap == 0) return -1;
    if ((size_t)snprintf(p, sizeof p, "%s/VERSION", dir) < sizeof p &&
        stub_version_file(p, false, out, cap) == 0)
        return 0;
    for (size_t i = 0; i < sizeof ups / sizeof ups[0]; i++) {
        if ((size_t)snprintf(p, sizeof p, "%s/%s/__init__.py", dir, ups[i]) < sizeof p &&
            stub_version_file(p, true, out, cap) == 0)
            return 0;
        if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, ups[i]) < sizeof p &&
            stub_version_distinfo(p, out, cap) == 0)
            return 0;
    }
    return -1;
}

/* The subdirectory esptool `version` uploads by default: 2/ from esptool 5 on, else 1/. */
static bool stub_version_prefers_new(const char *version)
{
    return version[0] && atoi(version) >= 5;
}

static void stub_choice_set(stub_choice_t *choice, const char *path, const char *version)
{
    const char *b, *k;
    char rel[64];
    if (!choice) return;
    /* the last two path components: "2/esp32c3.json", "stubs/esp32c3.json" */
    b = strrchr(path, '/');
    k = b;
    while (k && k > path && k[-1] != '/')
        k--;
    snprintf(rel, sizeof rel, "%s", k ? k : path);
    if (strncmp(rel, "1/", 2) == 0 || strncmp(rel, "2/", 2) == 0)
        snprintf(choice->name, sizeof choice->name, "%s (%s%s%s)", rel,
                 rel[0] == '1' ? "legacy stub" : "esp-flasher-stub", version[0] ? ", esptool " : "",
                 version);
    else
        snprintf(choice->name, sizeof choice->name, "%s%s%s%s", rel, version[0] ? " (esptool " : "",
                 version, version[0] ? ")" : "");
}

static int stub_find_missing(const char *dir, const chip_info_t *chip, bool old_p4, bool v42,
                             const char *name, char *why, size_t why_cap)
{
    if (old_p4)
        return stub_fail(why, why_cap, UV_ENOENT,
                         "no stub for %s below v3.00 in %s (looked for esp32p4-rev1.json, "
                         "esp32p4rc1.json, stub_flasher_32p4.json, and both names in 1/ and 2/)",
                         chip->pretty, dir);
    return stub_fail(why, why_cap, UV_ENOENT,
                     "no stub for %s%s in %s (looked for %s.json, %s%s%s1/%s.json, 2/%s.json)",
                     chip->pretty, chip->id == CHIP_ESP32P4 ? " v3.00 or later" : "", dir, name,
                     v42 ? "stub_flasher_" : "", v42 ? stub_short_name(chip) : "",
                     v42 ? ".json, " : "", name, name);
}

int stub_find_pick(const char *dir, const chip_info_t *chip, unsigned chip_rev, stub_pick_t pick,
                   char *path, size_t cap, stub_choice_t *choice, char *why, size_t why_cap)
{
    struct stat st;
    const char *subs[3] = {"", "1/", "2/"};
    const char *names[2];
    char version[32] = "";
    size_t n_names = 0, n_subs = 3;
    bool old_p4 = stub_p4_old(chip, chip_rev);
    bool v42 = chip->id != CHIP_ESP32P4 || old_p4; /* stub_flasher_<short>.json allowed */
    if (choice) memset(choice, 0, sizeof *choice);
    if (!dir || !*dir) return stub_fail(why, why_cap, EST_ESTUB, "no stub directory given");
    if (stat(dir, &st) != 0)
        return stub_fail(why, why_cap, EST_ESTUB, "stub directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return stub_fail(why, why_cap, EST_ESTUB, "stub directory %s is not a directory", dir);
    (void)stub_esptool_version(dir, version, sizeof version);
    if (choice) snprintf(choice->esptool_version, sizeof choice->esptool_version, "%s", version);
    if (pick == STUB_PICK_NEW || (pick == STUB_PICK_DEFAULT && stub_version_prefers_new(version))) {
        subs[1] = "2/";
        subs[2] = "1/";
    }
    if (pick != STUB_PICK_DEFAULT) n_subs = 2; /* only the subdirectory asked for */
    if (old_p4) {                              /* docs/PROTOCOL.md, stub files */
        names[n_names++] = "esp32p4-rev1";
        names[n_names++] = "esp32p4rc1";
    } else {
        names[n_names++] = chip->name;
    }
    for (size_t i = 0; i < n_subs; i++) {
        /* <dir>/<name>.json; in the top directory also the 4.2–4.7 name */
        for (size_t k = 0; k < n_names; k++)
            if ((size_t)snprintf(path, cap, "%s/%s%s.json", dir, subs[i], names[k]) < cap &&
                stub_is_file(path)) {
                stub_choice_set(choice, path, version);
                return 0;
            }
        if (i == 0 && v42 &&
            (size_t)snprintf(path, cap, "%s/stub_flasher_%s.json", dir, stub_short_name(chip)) <
                cap &&
            stub_is_file(path)) {
            stub_choice_set(choice, path, version);
            return 0;
        }
    }
    path[0] = 0;
    if (pick != STUB_PICK_DEFAULT)
        return stub_fail(why, why_cap, EST_ESTUB,
                         "no %s stub for %s in %s (looked for %s.json and %s%s.json, as the "
                         "recipe's stub choice \"%s\" asks)",
                         stub_pick_name(pick), chip->pretty, dir, names[0], subs[1], names[0],
                         stub_pick_name(pick));
    return stub_find_missing(dir, chip, old_p4, v42, names[0], why, why_cap);
}

int stub_find(const char *dir, const chip_info_t *chip, unsigned chip_rev, char *path, size_t cap,
              char *why, size_t why_cap)
{
    return stub_find_pick(dir, chip, chip_rev, STUB_PICK_DEFAULT, path, cap, NULL, why, why_cap);
}

const chip_info_t *stub_file_chip(const char *path)
{
    const char *b = strrchr(path, '/');
    char name[64];
    size_t n;
    b = b ? b + 1 : path;
    n = strlen(b);
    if (n < 6 || n >= sizeof name || strcmp(b + n - 5, ".json") != 0) return NULL;
    memcpy(name, b, n - 5);
    name[n - 5] = 0;
    if (strcmp(name, "esp32p4-rev1") == 0 || strcmp(name, "esp32p4rc1") == 0)
        return chip_get(CHIP_ESP32P4);
    if (strncmp(name, "stub_flasher_", 13) == 0) {
        char full[64];
        snprintf(full, sizeof full, "esp%s", name + 13);
        return chip_by_name(full);
    }
    return chip_by_name(name);
}

int stub_file_p4_rev_ok(const char *path, unsigned chip_rev)
{
    const char *b = strrchr(path, '/');
    bool old_name;
    b = b ? b + 1 : path;
    if (stub_file_chip(path) != chip_get(CHIP_ESP32P4)) return 1;
    old_name = strcmp(b, "esp32p4-rev1.json") == 0 || strcmp(b, "esp32p4rc1.json") == 0 ||
               strcmp(b, "stub_flasher_32p4.json") == 0;
    return old_name == (chip_rev < 300);
}

/* ---- the cache ---- */

#define STUB_CACHE_MAX 32 /* distinct files kept (every chip of two stub versions fits) */

typedef struct stub_entry_s {
    stub_t s;
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    unsigned refs;
    bool stale; /* replaced on disk: freed when the last user lets go */
    struct stub_entry_s *next;
} stub_entry_t;

static stub_entry_t *stub_cache;

static void stub_entry_free(stub_entry_t *e)
{
    stub_free(&e->s);
    free(e);
}

/* Unlink and free unreferenced stale entries, and unreferenced ones beyond the size limit. */
static void stub_cache_trim(void)
{
    size_t kept = 0;
    stub_entry_t **pp = &stub_cache;
    while (*pp) {
        stub_entry_t *e = *pp;
        if (e->refs == 0 && (e->stale || kept >= STUB_CACHE_MAX)) {
            *pp = e->next;
            stub_entry_free(e);
            continue;
        }
        kept++;
        pp = &e->next;
    }
}

const stub_t *stub_get(const char *path, char *err, size_t cap)
{
    struct stat st;
    stub_entry_t *e, **pp;
    if (stat(path, &st) != 0) {
        stub_fail(err, cap, 0, "cannot open stub file %s: %s", path, strerror(errno));
        return NULL;
    }
    for (pp = &stub_cache; (e = *pp); pp = &e->next) {
        if (e->stale || strcmp(e->s.path, path) != 0) continue;
        if (e->dev == st.st_dev && e->ino == st.st_ino && e->size == st.st_size &&
            e->mtime.tv_sec == st.st_mtim.tv_sec && e->mtime.tv_nsec == st.st_mtim.tv_nsec) {
            *pp = e->next; /* most recently used first */
            e->next = stub_cache;
            stub_cache = e;
            e->refs++;
            return &e->s;
        }
        e->stale = true; /* changed on disk: load it again */
    }
    e = calloc(1, sizeof *e);
    if (!e) {
        stub_fail(err, cap, 0, "out of memory");
        return NULL;
    }
    if (stub_load_file(path, &e->s, err, cap) != 0) {
        free(e);
        stub_cache_trim();
        return NULL;
    }
    e->dev = st.st_dev;
    e->ino = st.st_ino;
    e->size = st.st_size;
    e->mtime = st.st_mtim;
    e->refs = 1;
    e->next = stub_cache;
    stub_cache = e;
    stub_cache_trim();
    return &e->s;
}

void stub_put(const stub_t *s)
{
    if (!s) return;
    for (stub_entry_t *e = stub_cache; e; e = e->next) {
        if (&e->s == s) {
            if (e->refs > 0) e->refs--;
            break;
        }
    }
    stub_cache_trim();
}

void stub_cache_clear(void)
{
    stub_entry_t **pp = &stub_cache;
    while (*pp) {
        stub_entry_t *e = *pp;
        if (e->refs == 0) {
            *pp = e->next;
            stub_entry_free(e);
            continue;
        }
        pp = &e->next;
    }
}
