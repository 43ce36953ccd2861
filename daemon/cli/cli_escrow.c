/* SPDX-License-Identifier: MIT */
/* cli_escrow.c — `espstation escrow wrap|info|unwrap|decrypt-flash`: the engineer's side of key
 * escrow (docs/SECURITY-PROVISIONING.md §10): inspect a blob, unwrap it with the escrow private
 * key into a file only its owner can read, decrypt a flash dump with the escrowed key, and wrap
 * a test secret to rehearse recovery before a production run. Exit status: 0 done, 1 the blob,
 * key or data cannot be used (message says why), 2 usage error.
 * Must not: print a secret, or write one to an existing file or to the terminal. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cli.h"
#include "escrow.h"
#include "flash_crypt.h"

#define ESC_MAX_FILE (64u << 20)

static const char esc_help[] =
    "usage: espstation escrow info BLOB\n"
    "       espstation escrow unwrap --key PRIVATE.pem --output SECRET.bin BLOB\n"
    "       espstation escrow decrypt-flash --key PRIVATE.pem --blob BLOB --address ADDR\n"
    "                  [--esp32 [--flash-crypt-conf N]] DUMP.bin PLAIN.bin\n"
    "       espstation escrow wrap --pubkey PUBLIC.pem [--label TEXT] SECRET.bin BLOB\n"
    "\n"
    "Per-unit secrets (flash-encryption keys, NVS keys) are stored by the station only wrapped\n"
    "for the recipe's escrow public key (RSA-OAEP-SHA-256).\n"
    "\n"
    "info           show a blob's version, algorithm, key id and label (no key needed)\n"
    "unwrap         recover the secret into a new file (mode 0600; never overwritten)\n"
    "decrypt-flash  decrypt a flash dump region read at ADDR with the escrowed flash key:\n"
    "               XTS-AES (ESP32-S2/S3/C3/C6/H2...) or, with --esp32, the ESP32 scheme\n"
    "               (FLASH_CRYPT_CONFIG N, default 0xF)\n"
    "wrap           wrap a secret (to rehearse recovery with a test key)\n"
    "Exit status: 0 done, 1 the blob, key or data cannot be used, 2 usage error.\n"
    "See docs/SECURITY-PROVISIONING.md.\n";

typedef struct esc_args_s {
    const char *sub, *key, *pubkey, *output, *blob, *label, *address, *conf;
    bool esp32;
    const char *pos[3];
    int npos;
} esc_args_t;

static int esc_usage(const char *msg, const char *arg)
{
    fprintf(stderr, "espstation escrow: %s%s%s\nRun 'espstation escrow --help' for the options.\n",
            msg, arg ? " " : "", arg ? arg : "");
    return CLI_EXIT_USAGE;
}

static int esc_fail(const char *what, const char *why)
{
    fprintf(stderr, "espstation escrow: %s: %s\n", what, why);
    return CLI_EXIT_FAIL;
}

static const char **esc_opt(esc_args_t *a, const char *name)
{
    static const char *const names[] = {"--key",  "--pubkey", "--output",          "--blob",
                                        "--label", "--address", "--flash-crypt-conf"};
    const char **slots[] = {&a->key, &a->pubkey, &a->output, &a->blob,
                            &a->label, &a->address, &a->conf};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(name, names[i]) == 0) return slots[i];
    return NULL;
}

/* Returns 0, -1 for --help, or the usage exit status. */
static int esc_parse(int argc, char **argv, esc_args_t *a)
{
    memset(a, 0, sizeof *a);
    a->sub = argv[1];
    for (int i = 2; i < argc; i++) {
        const char **slot;
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return -1;
        if (!strcmp(argv[i], "--esp32")) {
            a->esp32 = true;
        } else if ((slot = esc_opt(a, argv[i]))) {
            if (i + 1 >= argc) return esc_usage("a value is missing after", argv[i]);
            *slot = argv[++i];
        } else if (argv[i][0] == '-' && argv[i][1]) {
            return esc_usage("unknown option", argv[i]);
        } else {
            if (a->npos >= 3) return esc_usage("too many arguments:", argv[i]);
            a->pos[a->npos++] = argv[i];
        }
    }
    return 0;
}

/* Read a whole file (at most ESC_MAX_FILE). Returns 0 or an errno value. */
static int esc_read(const char *path, uint8_t **buf, size_t *len)
{
    FILE *f = fopen(path, "rb");
    long n;
    *buf = NULL;
    *len = 0;
    if (!f) return errno;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fclose(f);
        return EIO;
    }
    if ((size_t)n > ESC_MAX_FILE) {
        fclose(f);
        return EFBIG;
    }
    *buf = malloc((size_t)n + 1);
    if (!*buf || fread(*buf, 1, (size_t)n, f) != (size_t)n) {
        free(*buf);
        *buf = NULL;
        fclose(f);
        return EIO;
    }
    (*buf)[n] = 0;
    *len = (size_t)n;
    fclose(f);
    return 0;
}

/* Create `path` (must not exist) with `mode` and write all bytes. Returns 0 or an errno value;
 * a partial file is removed. */
static int esc_write_new(const char *path, const void *d, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    const uint8_t *p = d;
    if (fd < 0) return errno;
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            unlink(path);
            return e;
        }
        p += w;
        n -= (size_t)w;
    }
    if (close(fd) != 0) {
        int e = errno;
        unlink(path);
        return e;
    }
    return 0;
}

static void hex(const uint8_t *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static int esc_info(const esc_args_t *a)
{
    uint8_t *blob;
    size_t len;
    escrow_info_t info;
    char err[200], id[65];
    int e;
    if (a->npos != 1) return esc_usage("info takes one BLOB", NULL);
    if ((e = esc_read(a->pos[0], &blob, &len)) != 0) return esc_fail(a->pos[0], strerror(e));
    if (escrow_parse(blob, len, &info, err, sizeof err) != 0) {
        free(blob);
        return esc_fail(a->pos[0], err);
    }
    hex(info.key_id, 32, id);
    printf("version: %u\nalgorithm: RSA-OAEP-SHA-256\nkey id: %s\nlabel: %s\nsecret: %zu bytes\n",
           info.version, id, info.label, info.secret_len);
    free(blob);
    return CLI_EXIT_OK;
}

/* Unwrap `blob_path` with the private key into out (cap bytes). Returns 0 or the exit status. */
static int esc_unwrap_into(const esc_args_t *a, const char *blob_path, uint8_t *out, size_t cap,
                           size_t *out_len)
{
    uint8_t *blob = NULL, *pem = NULL;
    size_t blob_len, pem_len;
    escrow_info_t info;
    char err[200];
    int e, rc = 0;
    if ((e = esc_read(a->key, &pem, &pem_len)) != 0) return esc_fail(a->key, strerror(e));
    if ((e = esc_read(blob_path, &blob, &blob_len)) != 0) {
        rc = esc_fail(blob_path, strerror(e));
    } else if (escrow_unwrap((const char *)pem, pem_len, blob, blob_len, out, cap, out_len, &info,
                             err, sizeof err) != 0) {
        rc = esc_fail(blob_path, err);
    }
    OPENSSL_cleanse(pem, pem_len);
    free(pem);
    free(blob);
    return rc;
}

static int esc_unwrap(const esc_args_t *a)
{
    uint8_t secret[512];
    size_t n = 0;
    int rc, e;
    if (a->npos != 1 || !a->key || !a->output)
        return esc_usage("unwrap needs --key PRIVATE.pem --output FILE and one BLOB", NULL);
    if (!strcmp(a->output, "-"))
        return esc_usage("the secret is written to a file only, not to standard output", NULL);
    if ((rc = esc_unwrap_into(a, a->pos[0], secret, sizeof secret, &n)) != 0) return rc;
    e = esc_write_new(a->output, secret, n, 0600);
    OPENSSL_cleanse(secret, sizeof secret);
    if (e == EEXIST) return esc_fail(a->output, "exists; the secret is never written over a file");
    if (e) return esc_fail(a->output, strerror(e));
    printf("unwrapped %zu bytes into %s (mode 0600); delete it after use\n", n, a->output);
    return CLI_EXIT_OK;
}

static int esc_decrypt_flash(const esc_args_t *a)
{
    uint8_t key[512], *dump = NULL;
    size_t klen = 0, dlen;
    char err[200], *end;
    unsigned long addr, conf = 0xF;
    int rc, e;
    if (a->npos != 2 || !a->key || !a->blob || !a->address)
        return esc_usage("decrypt-flash needs --key, --blob, --address and DUMP.bin PLAIN.bin", NULL);
    errno = 0;
    addr = strtoul(a->address, &end, 0);
    if (errno || *end || addr > 0xFFFFFFFFul) return esc_usage("not an address:", a->address);
    if (a->conf) {
        conf = strtoul(a->conf, &end, 0);
        if (*end || conf > 15) return esc_usage("--flash-crypt-conf takes 0..15, not", a->conf);
    }
    if ((e = esc_read(a->pos[0], &dump, &dlen)) != 0) return esc_fail(a->pos[0], strerror(e));
    if ((rc = esc_unwrap_into(a, a->blob, key, sizeof key, &klen)) != 0) {
        free(dump);
        return rc;
    }
    if (a->esp32)
        rc = flash_crypt_esp32(key, klen, (uint32_t)addr, (unsigned)conf, dump, dump, dlen, true,
                               err, sizeof err);
    else
        rc = flash_crypt_xts(key, klen, (uint32_t)addr, dump, dump, dlen, true, err, sizeof err);
    OPENSSL_cleanse(key, sizeof key);
    if (rc != 0) {
        free(dump);
        return esc_fail(a->pos[0], err);
    }
    e = esc_write_new(a->pos[1], dump, dlen, 0600);
    free(dump);
    if (e) return esc_fail(a->pos[1], e == EEXIST ? "exists; choose a new output file" : strerror(e));
    printf("decrypted %zu bytes at 0x%lx into %s\n", dlen, addr, a->pos[1]);
    return CLI_EXIT_OK;
}

static int esc_wrap(const esc_args_t *a)
{
    uint8_t *pem = NULL, *secret = NULL, *blob = NULL;
    size_t pem_len, slen, blen;
    char err[200];
    int rc = CLI_EXIT_OK, e;
    if (a->npos != 2 || !a->pubkey)
        return esc_usage("wrap needs --pubkey PUBLIC.pem, SECRET.bin and BLOB", NULL);
    if ((e = esc_read(a->pubkey, &pem, &pem_len)) != 0) return esc_fail(a->pubkey, strerror(e));
    if ((e = esc_read(a->pos[0], &secret, &slen)) != 0) {
        free(pem);
        return esc_fail(a->pos[0], strerror(e));
    }
    if (escrow_wrap((const char *)pem, pem_len, a->label ? a->label : "", secret, slen, &blob,
                    &blen, err, sizeof err) != 0)
        rc = esc_fail(a->pos[0], err);
    else if ((e = esc_write_new(a->pos[1], blob, blen, 0644)) != 0)
        rc = esc_fail(a->pos[1], e == EEXIST ? "exists; choose a new output file" : strerror(e));
    else
        printf("wrapped %zu bytes into %s\n", slen, a->pos[1]);
    OPENSSL_cleanse(secret, slen);
    free(secret);
    free(pem);
    free(blob);
    return rc;
}

int cli_escrow(int argc, char **argv)
{
    esc_args_t a;
    int rc;
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        fputs(esc_help, argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    rc = esc_parse(argc, argv, &a);
    if (rc == -1) {
        fputs(esc_help, stdout);
        return CLI_EXIT_OK;
    }
    if (rc) return rc;
    if (!strcmp(a.sub, "info")) return esc_info(&a);
    if (!strcmp(a.sub, "unwrap")) return esc_unwrap(&a);
    if (!strcmp(a.sub, "decrypt-flash")) return esc_decrypt_flash(&a);
    if (!strcmp(a.sub, "wrap")) return esc_wrap(&a);
    return esc_usage("unknown subcommand", a.sub);
}
