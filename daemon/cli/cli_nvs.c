/* SPDX-License-Identifier: MIT */
/* cli_nvs.c — `espstation nvs generate|encrypt|generate-key|mfg`: NVS partition images from
 * CSV files with the arguments of Espressif's NVS partition generator and manufacturing
 * utility (docs/DEVICE-DATA.md, docs/CLI.md "nvs"). Options take the reference's underscore
 * spellings too (--key_protect_hmac). Exit status: 0 done, 1 the input cannot be made into an
 * image (CSV errors with their line, too small a size, unreadable files), 2 usage error.
 * Must not: build images itself (jobs/prov/nvs*.c does); write a partial output file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "cli.h"
#include "nvs.h"
#include "nvs_csv.h"
#include "nvs_mfg.h"

#define NVS_MAX_INPUTS 64
#define NVS_MAX_CSV (64u << 20)
#define NVS_PATH 4096

static const char nvs_help[] =
    "usage: espstation nvs generate [--version 1|2] [--outdir DIR] INPUT.csv... OUTPUT.bin SIZE\n"
    "       espstation nvs encrypt [--version 1|2] [--outdir DIR] INPUT.csv... OUTPUT.bin SIZE\n"
    "                  (--inputkey KEYS.bin | --keygen [--keyfile FILE]\n"
    "                   [--key-protect-hmac (--kp-hmac-inputkey HMAC.bin | --kp-hmac-keygen\n"
    "                    [--kp-hmac-keyfile FILE])])\n"
    "       espstation nvs generate-key [--keyfile FILE] [--outdir DIR] [--key-protect-hmac ...]\n"
    "       espstation nvs decrypt [--outdir DIR] INPUT.bin KEYS.bin OUTPUT.bin\n"
    "       espstation nvs mfg --conf CONFIG.csv --values VALUES.csv --prefix P [--fileid KEY]\n"
    "                  --size SIZE [--outdir DIR] [--version 1|2]\n"
    "                  [--inputkey KEYS.bin | --keygen [--key-protect-hmac ...]]\n"
    "\n"
    "NVS partition images (ESP-IDF non-volatile storage) from CSV files, byte for byte what\n"
    "Espressif's nvs_partition_gen.py and mfg_gen.py make from the same input.\n"
    "\n"
    "generate      INPUT.csv rows key,type,encoding,value (type namespace, data or file;\n"
    "              encoding u8 i8 u16 i16 u32 i32 u64 i64 string hex2bin base64 binary) into\n"
    "              OUTPUT.bin of SIZE bytes (a multiple of 4096, e.g. 0x6000); file paths are\n"
    "              relative to the current directory\n"
    "encrypt       the same, NVS-encrypted (AES-XTS) with the keys of an nvs_keys partition\n"
    "generate-key  only write an nvs_keys partition image (random, or derived from an HMAC key)\n"
    "decrypt       an encrypted NVS partition image back to plain (to inspect what was written)\n"
    "mfg           one image per row of VALUES.csv: DIR/csv/P-ID.csv and DIR/bin/P-ID.bin;\n"
    "              encrypted with --inputkey, or with keys of its own per device (--keygen:\n"
    "              DIR/keys/keys-P-ID.bin)\n"
    "\n"
    "options:\n"
    "  --version 1|2            1: no multi-page blobs (values up to 1984 bytes); default 2\n"
    "  --outdir DIR             where relative outputs go (created); default: current directory\n"
    "  --inputkey KEYS.bin      encrypt with these keys (nvs_keys partition: data key, tweak key)\n"
    "  --keygen                 make new keys for encrypt and write them to DIR/keys/FILE\n"
    "  --keyfile FILE           the keys file name (default keys-MM-DD_HH-MM.bin)\n"
    "  --key-protect-hmac       derive the keys from an HMAC key (NVS HMAC key protection)\n"
    "  --kp-hmac-inputkey F     the 32-byte HMAC key (the one burnt into the eFuse)\n"
    "  --kp-hmac-keygen         make a random HMAC key, written to DIR/keys/hmac-FILE\n"
    "  --kp-hmac-keyfile F      name of that HMAC key file\n"
    "  --conf CONFIG.csv        mfg: key,type,encoding[,REPEAT] lines; name,namespace, opens one\n"
    "  --values VALUES.csv      mfg: a header of keys, then one row per device\n"
    "  --prefix P               mfg: output file name prefix\n"
    "  --fileid KEY             mfg: name each device's files by this column (default 1, 2, ...)\n"
    "  --size SIZE              mfg: partition size\n"
    "Options also take the reference's spellings with underscores (key_protect_hmac, ...).\n"
    "Exit status: 0 done, 1 the input cannot be made into an image, 2 usage error.\n"
    "See docs/DEVICE-DATA.md.\n";

typedef struct nvs_args {
    const char *sub;
    int version;
    const char *outdir, *inputkey, *keyfile, *kp_inputkey, *kp_keyfile;
    bool keygen, kp, kp_keygen;
    const char *conf, *values, *prefix, *fileid, *size;
    const char *pos[NVS_MAX_INPUTS + 2];
    int npos;
} nvs_args_t;

static int usage(const char *sub, const char *msg, const char *arg)
{
    fprintf(stderr, "espstation nvs%s%s: %s%s%s\nRun 'espstation nvs --help' for the options.\n",
            sub ? " " : "", sub ? sub : "", msg, arg ? " " : "", arg ? arg : "");
    return CLI_EXIT_USAGE;
}

/* "--key_protect_hmac" and "--key-protect-hmac" alike; "--opt=value" too. */
static bool opt_is(const char *arg, const char *name, const char **inline_val)
{
    size_t i = 0;
    for (; name[i]; i++) {
        char c = arg[i] == '_' ? '-' : arg[i];
        if (c != name[i]) return false;
    }
    if (arg[i] == '=') {
        *inline_val = arg + i + 1;
        return true;
    }
    *inline_val = NULL;
    return arg[i] == '\0';
}

static const char **nvs_opt_slot(nvs_args_t *a, const char *arg, const char **iv)
{
    static const char *names[] = {
        "--outdir", "--inputkey", "--keyfile", "--kp-hmac-inputkey", "--kp-hmac-keyfile",
        "--conf",   "--values",   "--prefix",  "--fileid",           "--size"};
    const char **slots[] = {&a->outdir, &a->inputkey, &a->keyfile, &a->kp_inputkey, &a->kp_keyfile,
                            &a->conf,   &a->values,   &a->prefix,  &a->fileid,      &a->size};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (opt_is(arg, names[i], iv)) return slots[i];
    return NULL;
}

static int nvs_parse_args(int argc, char **argv, nvs_args_t *a)
{
    memset(a, 0, sizeof *a);
    a->sub = argv[1];
    a->version = 2;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i], *iv = NULL, **slot = NULL;
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) return -1;
        if (strncmp(arg, "--", 2) != 0 || strcmp(arg, "--") == 0) {
            if (strcmp(arg, "--") == 0) continue;
            if (a->npos >= NVS_MAX_INPUTS + 2) return usage(a->sub, "too many arguments", NULL);
            a->pos[a->npos++] = arg;
            continue;
        }
        if (opt_is(arg, "--keygen", &iv))
            a->keygen = true;
        else if (opt_is(arg, "--key-protect-hmac", &iv))
            a->kp = true;
        else if (opt_is(arg, "--kp-hmac-keygen", &iv))
            a->kp_keygen = true;
        else if (opt_is(arg, "--version", &iv) || (slot = nvs_opt_slot(a, arg, &iv))) {
            const char *v = iv ? iv : (i + 1 < argc ? argv[++i] : NULL);
            if (!v) return usage(a->sub, "a value is missing after", arg);
            if (strncmp(arg, "--version", 9) == 0) {
                if (strcmp(v, "1") != 0 && strcmp(v, "2") != 0)
                    return usage(a->sub, "--version takes 1 or 2, not", v);
                a->version = v[0] - '0';
            } else {
                *slot = v;
            }
            continue;
        } else {
            return usage(a->sub, "unknown option", arg);
        }
        if (iv) return usage(a->sub, "this option takes no value:", arg);
    }
    return 0;
}

static int read_all(const char *path, size_t max, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    if (!f) {
        fprintf(stderr, "espstation nvs: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max) {
        fprintf(stderr, "espstation nvs: %s: not a regular file of at most %zu bytes\n", path, max);
        fclose(f);
        return -1;
    }
    *buf = malloc((size_t)st.st_size + 1);
    if (!*buf || fread(*buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        fprintf(stderr, "espstation nvs: cannot read %s\n", path);
        free(*buf);
        fclose(f);
        return -1;
    }
    (*buf)[st.st_size] = 0;
    *len = (size_t)st.st_size;
    fclose(f);
    return 0;
}

/* mkdir -p */
static int make_dirs(const char *path)
{
    char tmp[NVS_PATH];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return -1;
    return 0;
}

/* Write via PATH.partial and rename, creating the directory; nothing is left on failure. */
static int write_out(const char *path, const void *d, size_t n)
{
    char tmp[NVS_PATH + 16], dir[NVS_PATH];
    const char *slash = strrchr(path, '/');
    FILE *f;
    if (slash && slash != path) {
        snprintf(dir, sizeof dir, "%.*s", (int)(slash - path), path);
        if (make_dirs(dir) != 0) {
            fprintf(stderr, "espstation nvs: cannot create %s: %s\n", dir, strerror(errno));
            return -1;
        }
    }
    snprintf(tmp, sizeof tmp, "%s.partial", path);
    f = fopen(tmp, "wb");
    if (!f || fwrite(d, 1, n, f) != n || fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "espstation nvs: cannot write %s: %s\n", path, strerror(errno));
        if (f) unlink(tmp);
        return -1;
    }
    return 0;
}

/* DIR/NAME, or NAME itself when it is absolute or there is no DIR. */
static void out_path(char *buf, size_t cap, const char *dir, const char *name)
{
    if (!dir || !dir[0] || name[0] == '/')
        snprintf(buf, cap, "%s", name);
    else
        snprintf(buf, cap, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", name);
}

/* The reference's rule for key file names: ".bin", or no extension (".bin" is added). */
static bool keyfile_ok(const char *name)
{
    const char *base = name ? strrchr(name, '/') : NULL, *dot;
    if (!name) return true;
    dot = strrchr(base ? base + 1 : name, '.');
    return !dot || strcmp(dot, ".bin") == 0;
}

/* The reference's keys file naming: DIR/keys/NAME, ".bin" added when NAME has no extension,
 * any other extension refused. */
static int key_path(const nvs_args_t *a, const char *name, char *buf, size_t cap)
{
    char keysdir[NVS_PATH], withext[NVS_PATH];
    const char *base = strrchr(name, '/'), *dot;
    base = base ? base + 1 : name;
    dot = strrchr(base, '.');
    if (!keyfile_ok(name)) {
        usage(a->sub, "key files end in .bin:", name);
        return -1;
    }
    snprintf(withext, sizeof withext, "%s%s", name, dot ? "" : ".bin");
    out_path(keysdir, sizeof keysdir, a->outdir, "keys");
    out_path(buf, cap, keysdir, withext);
    return 0;
}

static int random_bytes(uint8_t *d, size_t n)
{
    if (RAND_bytes(d, (int)n) == 1) return 0;
    fprintf(stderr, "espstation nvs: the system's random generator failed\n");
    return -1;
}

/* The HMAC key for --key-protect-hmac: read (exactly 32 bytes) or made and written. */
static int hmac_key(const nvs_args_t *a, const char *keyfile, uint8_t hk[32])
{
    char path[NVS_PATH], name[NVS_PATH];
    uint8_t *buf = NULL;
    size_t n = 0;
    if (a->kp_keygen) {
        snprintf(name, sizeof name, "%s", a->kp_keyfile ? a->kp_keyfile : "");
        if (!a->kp_keyfile) {
            const char *base = strrchr(keyfile, '/');
            snprintf(name, sizeof name, "hmac-%s", base ? base + 1 : keyfile);
        }
        if (key_path(a, name, path, sizeof path) != 0 || random_bytes(hk, 32) != 0 ||
            write_out(path, hk, 32) != 0)
            return -1;
        printf("Created HMAC key: %s\n", path);
        return 0;
    }
    if (!a->kp_inputkey) {
        usage(a->sub, "--key-protect-hmac needs --kp-hmac-inputkey or --kp-hmac-keygen", NULL);
        return -1;
    }
    if (read_all(a->kp_inputkey, 4096, &buf, &n) != 0) return -1;
    if (n != 32) {
        fprintf(stderr, "espstation nvs: %s: an HMAC key has 32 bytes, this file %zu\n",
                a->kp_inputkey, n);
        free(buf);
        return -1;
    }
    memcpy(hk, buf, 32);
    free(buf);
    return 0;
}

/* --keygen / generate-key: new keys (random or HMAC-derived) written as an nvs_keys image. */
static int make_keys(const nvs_args_t *a, uint8_t keys[NVS_XTS_KEYS_LEN])
{
    char name[128], path[NVS_PATH];
    const char *keyfile = a->keyfile;
    uint8_t part[NVS_KEYS_PART_SIZE];
    if (!keyfile) {
        time_t t = time(NULL);
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(name, sizeof name, "keys-%m-%d_%H-%M.bin", &tm);
        keyfile = name;
    }
    if (key_path(a, keyfile, path, sizeof path) != 0) return -1;
    if (a->kp) {
        uint8_t hk[32];
        if (hmac_key(a, keyfile, hk) != 0) return -1;
        if (nvs_keys_from_hmac(hk, sizeof hk, keys) != 0) {
            fprintf(stderr, "espstation nvs: HMAC-SHA256 failed\n");
            return -1;
        }
    } else {
        do {
            if (random_bytes(keys, NVS_XTS_KEYS_LEN) != 0) return -1;
        } while (memcmp(keys, keys + 32, 32) == 0); /* XTS needs two different halves */
    }
    nvs_keys_partition(keys, part);
    if (write_out(path, part, sizeof part) != 0) return -1;
    printf("Created encryption keys: %s\n", path);
    return 0;
}

static int input_keys(const nvs_args_t *a, uint8_t keys[NVS_XTS_KEYS_LEN])
{
    uint8_t *buf = NULL;
    size_t n = 0;
    bool crc_ok = false;
    if (read_all(a->inputkey, 1u << 20, &buf, &n) != 0) return -1;
    if (nvs_keys_parse(buf, n, keys, &crc_ok) != 0) {
        fprintf(stderr, "espstation nvs: %s: %zu bytes; a keys file starts with 64 bytes of keys\n",
                a->inputkey, n);
        free(buf);
        return -1;
    }
    if (!crc_ok)
        fprintf(stderr,
                "espstation nvs: warning: %s: no valid CRC-32 after the 64 key bytes (not an "
                "nvs_keys partition image?); using its first 64 bytes\n",
                a->inputkey);
    free(buf);
    return 0;
}

static int check_key_opts(const nvs_args_t *a, bool encrypt)
{
    if (!keyfile_ok(a->keyfile) || !keyfile_ok(a->kp_keyfile))
        return usage(a->sub,
                     "key files end in .bin:", keyfile_ok(a->keyfile) ? a->kp_keyfile : a->keyfile);
    if (!encrypt && (a->inputkey || a->keygen || a->keyfile || a->kp || a->kp_inputkey ||
                     a->kp_keygen || a->kp_keyfile))
        return usage(a->sub, "key options are for 'nvs encrypt' and 'nvs generate-key'", NULL);
    if (encrypt && !a->inputkey == !a->keygen)
        return usage(a->sub, "give one of --inputkey KEYS.bin and --keygen", NULL);
    if (a->inputkey && (a->kp || a->kp_inputkey || a->kp_keygen || a->keyfile))
        return usage(a->sub, "--inputkey takes no --keyfile or HMAC options", NULL);
    if (!a->kp && (a->kp_inputkey || a->kp_keygen || a->kp_keyfile))
        return usage(a->sub, "the --kp-hmac-* options need --key-protect-hmac", NULL);
    if (a->kp_inputkey && a->kp_keygen)
        return usage(a->sub, "give one of --kp-hmac-inputkey and --kp-hmac-keygen", NULL);
    return 0;
}

static int parse_size_arg(const nvs_args_t *a, const char *s, size_t *size)
{
    if (nvs_parse_size(s, size) != 0 || *size < NVS_PAGE_SIZE || *size % NVS_PAGE_SIZE != 0)
        return usage(a->sub, "SIZE must be a multiple of 4096 (e.g. 0x6000), not", s);
    if (*size < 3 * NVS_PAGE_SIZE)
        fprintf(stderr, "espstation nvs: note: under 0x3000 bytes an NVS partition must be "
                        "flagged readonly in the partition table\n");
    return 0;
}

static int cmd_generate(const nvs_args_t *a, bool encrypt)
{
    uint8_t keys[NVS_XTS_KEYS_LEN], *have_keys = NULL;
    char err[1024] = "", out[NVS_PATH];
    size_t size, len;
    nvs_gen_t *g;
    int rc = check_key_opts(a, encrypt), n_in = a->npos - 2;
    if (rc) return rc;
    if (a->conf || a->values || a->prefix || a->fileid || a->size)
        return usage(a->sub, "--conf/--values/--prefix/--fileid/--size are for 'nvs mfg'", NULL);
    if (n_in < 1) return usage(a->sub, "needs INPUT.csv... OUTPUT.bin SIZE", NULL);
    if ((rc = parse_size_arg(a, a->pos[a->npos - 1], &size)) != 0) return rc;
    out_path(out, sizeof out, a->outdir, a->pos[a->npos - 2]);
    if (encrypt) {
        if ((a->inputkey ? input_keys(a, keys) : make_keys(a, keys)) != 0) return CLI_EXIT_FAIL;
        have_keys = keys;
    }
    g = nvs_gen_new(size, a->version, have_keys, err, sizeof err);
    if (!g) {
        fprintf(stderr, "espstation nvs %s: %s\n", a->sub, err);
        return CLI_EXIT_FAIL;
    }
    for (int i = 0; i < n_in && rc == 0; i++) {
        uint8_t *csv = NULL;
        size_t n = 0;
        if (read_all(a->pos[i], NVS_MAX_CSV, &csv, &n) != 0) {
            rc = CLI_EXIT_FAIL;
            break;
        }
        if (nvs_csv_feed(g, (const char *)csv, n, NULL, err, sizeof err) != 0) {
            fprintf(stderr, "espstation nvs %s: %s: %s\n", a->sub, a->pos[i], err);
            rc = CLI_EXIT_FAIL;
        }
        free(csv);
    }
    if (rc == 0) {
        const uint8_t *img = nvs_gen_image(g, &len);
        if (write_out(out, img, len) != 0)
            rc = CLI_EXIT_FAIL;
        else
            printf("Created NVS binary: %s (%zu bytes, %u page(s) used, version %d%s)\n", out, len,
                   nvs_gen_pages_used(g), a->version, encrypt ? ", encrypted" : "");
    }
    nvs_gen_free(g);
    return rc;
}

static int cmd_decrypt(const nvs_args_t *a)
{
    nvs_args_t b = *a;
    uint8_t keys[NVS_XTS_KEYS_LEN], *img = NULL;
    char err[512] = "", out[NVS_PATH];
    size_t len = 0;
    int rc = CLI_EXIT_FAIL;
    if (a->npos != 3) return usage(a->sub, "needs INPUT.bin KEYS.bin OUTPUT.bin", NULL);
    if (a->inputkey || a->keygen || a->keyfile || a->kp || a->kp_inputkey || a->kp_keygen ||
        a->kp_keyfile || a->conf || a->values || a->prefix || a->fileid || a->size)
        return usage(a->sub, "takes only --outdir besides INPUT.bin KEYS.bin OUTPUT.bin", NULL);
    b.inputkey = a->pos[1];
    if (input_keys(&b, keys) != 0 || read_all(a->pos[0], 256u << 20, &img, &len) != 0) goto out;
    if (nvs_decrypt(img, len, keys, err, sizeof err) != 0) {
        fprintf(stderr, "espstation nvs decrypt: %s: %s\n", a->pos[0], err);
        goto out;
    }
    out_path(out, sizeof out, a->outdir, a->pos[2]);
    if (write_out(out, img, len) != 0) goto out;
    printf("Created NVS decrypted binary: %s\n", out);
    rc = CLI_EXIT_OK;
out:
    free(img);
    return rc;
}

static int cmd_generate_key(const nvs_args_t *a)
{
    uint8_t keys[NVS_XTS_KEYS_LEN];
    nvs_args_t b = *a;
    if (a->npos) return usage(a->sub, "takes no file arguments; got", a->pos[0]);
    if (a->inputkey) return usage(a->sub, "--inputkey is for 'nvs encrypt'", NULL);
    b.keygen = true;
    if (check_key_opts(&b, true) != 0) return CLI_EXIT_USAGE;
    return make_keys(&b, keys) == 0 ? CLI_EXIT_OK : CLI_EXIT_FAIL;
}

typedef struct mfg_run {
    nvs_mfg_conf_t conf;
    nvs_mfg_values_t vals;
    size_t size;
    bool have_keys; /* --inputkey: the same keys for every device */
    uint8_t keys[NVS_XTS_KEYS_LEN];
    char dir_csv[NVS_PATH], dir_bin[NVS_PATH];
} mfg_run_t;

/* --keygen in mfg: each device's keys file is keys-P-ID.bin. */
static void mfg_keyfile(const nvs_args_t *a, const char *id, char *buf, size_t cap)
{
    snprintf(buf, cap, "keys-%s-%s.bin", a->prefix, id);
}

/* The checks before anything is written: unique ids, no existing output. */
static int mfg_check(const nvs_args_t *a, const char *id, const char *p_csv, const char *p_bin,
                     char *ids, size_t id_cap)
{
    char key[260], kname[600], kpath[NVS_PATH];
    const char *exists = access(p_bin, F_OK) == 0 ? p_bin : access(p_csv, F_OK) == 0 ? p_csv : NULL;
    snprintf(key, sizeof key, "\n%s\n", id);
    if (strstr(ids, key)) {
        fprintf(stderr, "espstation nvs mfg: two devices have the file id `%s`\n", id);
        return -1;
    }
    if (a->keygen && !exists) {
        mfg_keyfile(a, id, kname, sizeof kname);
        if (key_path(a, kname, kpath, sizeof kpath) == 0 && access(kpath, F_OK) == 0)
            exists = kpath;
    }
    if (exists) {
        fprintf(stderr,
                "espstation nvs mfg: %s already exists: remove it or use another --outdir\n",
                exists);
        return -1;
    }
    if (strlen(ids) + strlen(id) + 2 < id_cap) strcat(ids, key + 1);
    return 0;
}

/* One device: its CSV and image; with `write` (and the keys, when encrypting) both files, else
 * only the checks (the image is made plain: encryption changes no decision). */
static int mfg_device(const nvs_args_t *a, mfg_run_t *m, size_t i, bool write, char *ids,
                      size_t id_cap)
{
    nvs_buf_t csv = {0};
    char err[1024] = "", id[256], p_csv[NVS_PATH + 300], p_bin[NVS_PATH + 300];
    uint8_t *img = NULL, keys[NVS_XTS_KEYS_LEN];
    const uint8_t *use_keys = write && m->have_keys ? m->keys : NULL;
    size_t len;
    int rc = nvs_mfg_row(&m->conf, &m->vals, i, &csv, id, sizeof id, err, sizeof err);
    snprintf(p_csv, sizeof p_csv, "%s/%s-%s.csv", m->dir_csv, a->prefix, id);
    snprintf(p_bin, sizeof p_bin, "%s/%s-%s.bin", m->dir_bin, a->prefix, id);
    if (rc == 0 && write && a->keygen) {
        nvs_args_t b = *a;
        char kname[600];
        mfg_keyfile(a, id, kname, sizeof kname);
        b.keyfile = kname;
        if (make_keys(&b, keys) != 0) {
            rc = -1;
            goto out;
        }
        use_keys = keys;
    }
    if (rc == 0)
        rc = nvs_csv_generate(csv.p, csv.len, m->size, a->version, use_keys, NULL, &img, &len, err,
                              sizeof err);
    if (rc) {
        fprintf(stderr, "espstation nvs mfg: device %zu (values line %u): %s\n", i + 1,
                m->vals.csv.r[i + 1].line, err);
        goto out;
    }
    if (!write)
        rc = mfg_check(a, id, p_csv, p_bin, ids, id_cap);
    else if (write_out(p_csv, csv.p, csv.len) != 0 || write_out(p_bin, img, len) != 0)
        rc = -1;
    else
        printf("%s\n", p_bin);
out:
    free(img);
    nvs_buf_free(&csv);
    return rc;
}

static int mfg_load(const nvs_args_t *a, mfg_run_t *m)
{
    uint8_t *ct = NULL, *vt = NULL;
    size_t cn = 0, vn = 0;
    char err[1024] = "";
    int rc = -1;
    if (read_all(a->conf, NVS_MAX_CSV, &ct, &cn) != 0 ||
        read_all(a->values, NVS_MAX_CSV, &vt, &vn) != 0)
        goto out;
    if (nvs_mfg_conf_parse((char *)ct, cn, &m->conf, err, sizeof err) != 0) {
        fprintf(stderr, "espstation nvs mfg: %s: %s\n", a->conf, err);
        goto out;
    }
    if (nvs_mfg_values_parse((char *)vt, vn, &m->conf, a->fileid, &m->vals, err, sizeof err)) {
        fprintf(stderr, "espstation nvs mfg: %s: %s\n", a->values, err);
        nvs_mfg_conf_free(&m->conf);
        goto out;
    }
    rc = 0;
out:
    free(ct);
    free(vt);
    return rc;
}

static int cmd_mfg(const nvs_args_t *a)
{
    mfg_run_t m;
    size_t rows, id_cap;
    char *ids;
    bool enc = a->inputkey || a->keygen || a->keyfile || a->kp || a->kp_inputkey || a->kp_keygen ||
               a->kp_keyfile;
    int rc = check_key_opts(a, enc);
    if (rc) return rc;
    if (a->keyfile || a->kp_keyfile)
        return usage(a->sub, "mfg names each device's key files keys-P-ID.bin (no --keyfile)",
                     NULL);
    if (a->npos) return usage(a->sub, "takes options only; unexpected", a->pos[0]);
    if (!a->conf || !a->values || !a->prefix || !a->size)
        return usage(a->sub, "needs --conf, --values, --prefix and --size", NULL);
    if (!a->prefix[0] || strchr(a->prefix, '/'))
        return usage(a->sub, "--prefix is a file name prefix (no '/'):", a->prefix);
    memset(&m, 0, sizeof m);
    if ((rc = parse_size_arg(a, a->size, &m.size)) != 0) return rc;
    out_path(m.dir_csv, sizeof m.dir_csv, a->outdir, "csv");
    out_path(m.dir_bin, sizeof m.dir_bin, a->outdir, "bin");
    if (a->inputkey) {
        if (input_keys(a, m.keys) != 0) return CLI_EXIT_FAIL;
        m.have_keys = true;
    }
    if (mfg_load(a, &m) != 0) return CLI_EXIT_FAIL;
    rows = nvs_mfg_rows(&m.vals);
    id_cap = rows * 258 + 2;
    ids = calloc(1, id_cap);
    rc = ids ? 0 : -1;
    if (ids) ids[0] = '\n';
    /* every device is made once first: a bad row stops the run before anything is written */
    for (size_t i = 0; rc == 0 && i < rows; i++)
        rc = mfg_device(a, &m, i, false, ids, id_cap);
    for (size_t i = 0; rc == 0 && i < rows; i++)
        rc = mfg_device(a, &m, i, true, NULL, 0);
    if (rc == 0) printf("Created %zu NVS binaries in %s\n", rows, m.dir_bin);
    free(ids);
    nvs_mfg_values_free(&m.vals);
    nvs_mfg_conf_free(&m.conf);
    return rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

int cli_nvs(int argc, char **argv)
{
    nvs_args_t a;
    int rc;
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(nvs_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    rc = nvs_parse_args(argc, argv, &a);
    if (rc == -1) {
        fputs(nvs_help, stdout);
        return CLI_EXIT_OK;
    }
    if (rc) return rc;
    if (strcmp(a.sub, "generate") == 0) return cmd_generate(&a, false);
    if (strcmp(a.sub, "encrypt") == 0) return cmd_generate(&a, true);
    if (strcmp(a.sub, "generate-key") == 0) return cmd_generate_key(&a);
    if (strcmp(a.sub, "decrypt") == 0) return cmd_decrypt(&a);
    if (strcmp(a.sub, "mfg") == 0) return cmd_mfg(&a);
    return usage(NULL,
                 "unknown subcommand (generate, encrypt, generate-key, decrypt, mfg):", a.sub);
}
