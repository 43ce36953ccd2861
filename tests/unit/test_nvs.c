/* SPDX-License-Identifier: MIT */
/* test_nvs.c — the NVS partition generator (jobs/prov/nvs*.c, docs/DEVICE-DATA.md) against the
 * reference vectors in tests/data/vectors/nvs/ (every .bin byte for byte from its CSV, the
 * encrypted ones, the HMAC-derived keys partition, the manufacturing rows and images), the
 * refusals (version 1 size limit naming key and limit, bad rows with their line numbers), the
 * CSV reader and writer, the value conversions, and a decryption round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvs.h"
#include "nvs_csv.h"
#include "nvs_mfg.h"

#define VEC ESTN_SOURCE_DIR "/tests/data/vectors/nvs"

static uint8_t *slurp(const char *name, size_t *n)
{
    char path[512];
    FILE *f;
    uint8_t *b;
    long len;
    snprintf(path, sizeof path, "%s/%s", VEC, name);
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    fseek(f, 0, SEEK_SET);
    b = malloc((size_t)len + 1);
    assert_non_null(b);
    assert_int_equal(fread(b, 1, (size_t)len, f), (size_t)len);
    b[len] = 0;
    fclose(f);
    *n = (size_t)len;
    return b;
}

static const nvs_csv_opts_t vec_opts = {.base_dir = VEC};

/* Generate `csv` with the options and compare with the vector `bin`. */
static void check_vector(const char *csv, const char *bin, size_t size, int version,
                         const uint8_t *keys)
{
    size_t n, want_len, len;
    char *text = (char *)slurp(csv, &n);
    uint8_t *want = slurp(bin, &want_len), *img = NULL;
    char err[512] = "";
    int rc = nvs_csv_generate(text, n, size, version, keys, &vec_opts, &img, &len, err, sizeof err);
    if (rc) fail_msg("%s: %s", csv, err);
    assert_int_equal(len, want_len);
    for (size_t i = 0; i < len; i++)
        if (img[i] != want[i]) fail_msg("%s: first difference at 0x%zx", bin, i);
    free(img);
    free(want);
    free(text);
}

static void test_basic(void **s)
{
    (void)s;
    check_vector("basic.csv", "basic.bin", 0x3000, 2, NULL);
}

static void test_many(void **s)
{
    (void)s;
    check_vector("many.csv", "many.bin", 0x8000, 2, NULL);
}

static void test_blobs(void **s)
{
    (void)s;
    check_vector("blobs.csv", "blobs.bin", 0x6000, 2, NULL);
}

static void test_v1(void **s)
{
    (void)s;
    check_vector("v1.csv", "v1.bin", 0x3000, 1, NULL);
}

static void test_basic_enc(void **s)
{
    size_t n;
    uint8_t *kf = slurp("nvs_keys.bin", &n), keys[64];
    bool crc_ok = false;
    (void)s;
    assert_int_equal(nvs_keys_parse(kf, n, keys, &crc_ok), 0);
    assert_true(crc_ok);
    check_vector("basic.csv", "basic_enc.bin", 0x3000, 2, keys);
    kf[3] ^= 1; /* a damaged keys file is noticed */
    assert_int_equal(nvs_keys_parse(kf, n, keys, &crc_ok), 0);
    assert_false(crc_ok);
    assert_int_equal(nvs_keys_parse(kf, 63, keys, NULL), NVS_EINPUT);
    free(kf);
}

static void test_basic_enc_hmac(void **s)
{
    size_t n, kn;
    uint8_t *hk = slurp("hmac_key.bin", &n), *want = slurp("hmac_derived_keys.bin", &kn);
    uint8_t keys[64], part[NVS_KEYS_PART_SIZE];
    (void)s;
    assert_int_equal(n, 32);
    assert_int_equal(nvs_keys_from_hmac(hk, n, keys), 0);
    nvs_keys_partition(keys, part);
    assert_int_equal(kn, sizeof part);
    assert_memory_equal(part, want, sizeof part);
    check_vector("basic.csv", "basic_enc_hmac.bin", 0x3000, 2, keys);
    free(hk);
    free(want);
}

/* Decrypting every written entry of basic_enc.bin (AES-256-XTS, tweak = the entry's offset)
 * gives basic.bin: encryption touches exactly the entries, nothing else. */
static void test_decrypt_round_trip(void **s)
{
    size_t n, pn, kn;
    uint8_t *enc = slurp("basic_enc.bin", &n), *plain = slurp("basic.bin", &pn);
    uint8_t *kf = slurp("nvs_keys.bin", &kn);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    (void)s;
    assert_int_equal(n, pn);
    assert_int_equal(EVP_DecryptInit_ex(ctx, EVP_aes_256_xts(), NULL, kf, NULL), 1);
    for (size_t page = 0; page < n / NVS_PAGE_SIZE; page++) {
        uint8_t *p = enc + page * NVS_PAGE_SIZE;
        assert_memory_equal(p, plain + page * NVS_PAGE_SIZE, 64); /* header, bitmap */
        for (unsigned e = 0; e < NVS_ENTRIES; e++) {
            size_t off = page * NVS_PAGE_SIZE + 64 + e * 32u;
            uint8_t tweak[16] = {0}, out[32];
            int ol = 0;
            if ((p[32 + e / 4] >> ((e % 4) * 2) & 3) == 3) { /* empty: left erased */
                assert_memory_equal(enc + off, plain + off, 32);
                continue;
            }
            for (int k = 0; k < 4; k++)
                tweak[k] = (uint8_t)(off >> (8 * k));
            assert_int_equal(EVP_DecryptInit_ex(ctx, NULL, NULL, NULL, tweak), 1);
            assert_int_equal(EVP_DecryptUpdate(ctx, out, &ol, enc + off, 32), 1);
            assert_memory_equal(out, plain + off, 32);
        }
    }
    EVP_CIPHER_CTX_free(ctx);
    free(enc);
    free(plain);
    free(kf);
}

/* nvs_decrypt turns both encrypted vectors back into basic.bin. */
static void test_nvs_decrypt(void **s)
{
    size_t n, pn, kn, hn;
    uint8_t *enc = slurp("basic_enc.bin", &n), *plain = slurp("basic.bin", &pn);
    uint8_t *kf = slurp("nvs_keys.bin", &kn), *hk = slurp("hmac_key.bin", &hn);
    uint8_t keys[64];
    char err[256];
    (void)s;
    assert_int_equal(nvs_decrypt(enc, n, kf, err, sizeof err), 0);
    assert_memory_equal(enc, plain, pn);
    free(enc);
    enc = slurp("basic_enc_hmac.bin", &n);
    assert_int_equal(nvs_keys_from_hmac(hk, hn, keys), 0);
    assert_int_equal(nvs_decrypt(enc, n, keys, err, sizeof err), 0);
    assert_memory_equal(enc, plain, pn);
    assert_int_equal(nvs_decrypt(enc, n - 1, keys, err, sizeof err), NVS_EINPUT);
    free(enc);
    free(plain);
    free(kf);
    free(hk);
}

static int gen_text(const char *text, size_t size, int version, char *err, size_t errlen,
                    uint8_t **img)
{
    size_t len;
    uint8_t *dummy = NULL;
    int rc = nvs_csv_generate(text, strlen(text), size, version, NULL, &vec_opts,
                              img ? img : &dummy, &len, err, errlen);
    free(dummy);
    return rc;
}

static void expect_error(const char *text, int version, size_t size, int rc_want,
                         const char *const *needles)
{
    char err[512] = "";
    int rc = gen_text(text, size, version, err, sizeof err, NULL);
    if (rc != rc_want) fail_msg("rc %d, want %d (%s) for:\n%s", rc, rc_want, err, text);
    for (; *needles; needles++)
        if (!strstr(err, *needles)) fail_msg("`%s` not in: %s", *needles, err);
}

#define NEEDLES(...) ((const char *const[]){__VA_ARGS__, NULL})

static void test_v1_too_big(void **s)
{
    size_t n;
    char *text = (char *)slurp("v1_too_big.csv", &n);
    (void)s;
    expect_error(text, 1, 0x3000, NVS_EINPUT, NEEDLES("`cert`", "1984", "line 3"));
    free(text);
}

static void test_refusals(void **s)
{
    (void)s;
    expect_error("key,type,encoding,value\nns,namespace,,\nthis_key_is_16ch,data,u8,1\n", 2, 0x3000,
                 NVS_EINPUT, NEEDLES("line 3", "this_key_is_16ch", "15"));
    expect_error("key,type,encoding,value\na,data,u8,1\n", 2, 0x3000, NVS_EINPUT,
                 NEEDLES("line 2", "`a`", "namespace"));
    expect_error("key,type,encoding,value\nns,namespace,,\n# c\na,data,u9,1\n", 2, 0x3000,
                 NVS_EINPUT, NEEDLES("line 4", "`a`", "u9"));
    expect_error("key,type,encoding,value\nns,namespace,,\na,data,u8,256\n", 2, 0x3000, NVS_EINPUT,
                 NEEDLES("line 3", "`a`", "out of range"));
    expect_error("key,type,encoding,value\nns,namespace,,\na,data,i8,-129\n", 2, 0x3000, NVS_EINPUT,
                 NEEDLES("out of range"));
    expect_error("key,type,encoding,value\nns,namespace,,\na,data,u32,12x\n", 2, 0x3000, NVS_EINPUT,
                 NEEDLES("not a whole number"));
    expect_error("key,type,encoding,value\nns,namespace,,\na,data,hex2bin,abc\n", 2, 0x3000,
                 NVS_EINPUT, NEEDLES("line 3", "even number"));
    expect_error("key,type,encoding,value\nns,namespace,,\na,data,base64,QUJDR\n", 2, 0x3000,
                 NVS_EINPUT, NEEDLES("base64"));
    expect_error("key,type,encoding,value\nns,namespace,,\na,blob,u8,1\n", 2, 0x3000, NVS_EINPUT,
                 NEEDLES("type `blob`"));
    expect_error("k,t,e,v\nns,namespace,,\n", 2, 0x3000, NVS_EINPUT, NEEDLES("line 1", "header"));
    expect_error("", 2, 0x3000, NVS_EINPUT, NEEDLES("empty"));
    expect_error("key,type,encoding,value\nns,namespace,,\na,data,u8\n", 2, 0x3000, NVS_EINPUT,
                 NEEDLES("no value"));
    expect_error("key,type,encoding,value\nns,namespace,,\na,file,binary,no_such_file.bin\n", 2,
                 0x3000, NVS_EIO, NEEDLES("line 3", "no_such_file.bin"));
    expect_error("key,type,encoding,value\nns,namespace,,\nonly_a_key\n", 2, 0x3000, NVS_EINPUT,
                 NEEDLES("line 3", "key and type"));
    /* a 12 KiB partition has 2 usable pages: 3 pages of strings do not fit */
    {
        nvs_buf_t b = {0};
        char err[512] = "";
        char big[3001];
        memset(big, 'x', 3000);
        big[3000] = 0;
        nvs_buf_add(&b, "key,type,encoding,value\nns,namespace,,\n", 39);
        for (int i = 0; i < 3; i++) {
            char row[64];
            snprintf(row, sizeof row, "s%d,data,string,", i);
            nvs_buf_add(&b, row, strlen(row));
            nvs_buf_add(&b, big, 3000);
            nvs_buf_add(&b, "\n", 1);
        }
        assert_int_equal(gen_text(b.p, 0x3000, 2, err, sizeof err, NULL), NVS_ESIZE);
        assert_non_null(strstr(err, "larger size"));
        assert_int_equal(gen_text(b.p, 0x4000, 2, err, sizeof err, NULL), 0);
        nvs_buf_free(&b);
    }
    /* a version 2 string that no single page can take (3969..4000 bytes with its NUL) */
    {
        nvs_buf_t b = {0};
        char err[512] = "", big[4000];
        memset(big, 'y', sizeof big);
        nvs_buf_add(&b, "key,type,encoding,value\nns,namespace,,\nlong,data,string,", 56);
        nvs_buf_add(&b, big, 3968);
        assert_int_equal(gen_text(b.p, 0x3000, 2, err, sizeof err, NULL), NVS_EINPUT);
        assert_non_null(strstr(err, "3968"));
        b.len -= 1;
        b.p[b.len] = 0; /* 3967 + NUL fits */
        assert_int_equal(gen_text(b.p, 0x3000, 2, err, sizeof err, NULL), 0);
        nvs_buf_add(&b, big, 40);
        assert_int_equal(gen_text(b.p, 0x3000, 2, err, sizeof err, NULL), NVS_EINPUT);
        assert_non_null(strstr(err, "4000"));
        nvs_buf_free(&b);
    }
}

static void test_sizes(void **s)
{
    size_t v = 0;
    char err[256];
    (void)s;
    assert_int_equal(nvs_parse_size("0x3000", &v), 0);
    assert_int_equal(v, 0x3000);
    assert_int_equal(nvs_parse_size("24576", &v), 0);
    assert_int_equal(v, 24576);
    assert_int_equal(nvs_parse_size("0X6_000", &v), 0);
    assert_int_equal(v, 0x6000);
    assert_int_equal(nvs_parse_size("0o30000", &v), 0);
    assert_int_equal(v, 0x3000);
    assert_int_equal(nvs_parse_size("0b1", &v), 0);
    assert_int_equal(v, 1);
    assert_int_equal(nvs_parse_size("012288", &v), NVS_EINPUT); /* Python refuses it too */
    assert_int_equal(nvs_parse_size("0x", &v), NVS_EINPUT);
    assert_int_equal(nvs_parse_size("12k", &v), NVS_EINPUT);
    assert_int_equal(nvs_parse_size("1__0", &v), NVS_EINPUT);
    assert_int_equal(nvs_parse_size("", &v), NVS_EINPUT);
    assert_null(nvs_gen_new(0x3001, 2, NULL, err, sizeof err));
    assert_non_null(strstr(err, "multiple of 4096"));
    assert_null(nvs_gen_new(0, 2, NULL, err, sizeof err));
    assert_null(nvs_gen_new(0x3000, 3, NULL, err, sizeof err));
    /* a read-only partition (under 12 KiB) uses every page: one page here */
    {
        uint8_t *img = NULL;
        assert_int_equal(gen_text("key,type,encoding,value\nro,namespace,,\nx,data,u8,1\n", 0x1000,
                                  2, err, sizeof err, &img),
                         0);
        assert_int_equal(img[0], 0xFE); /* ACTIVE */
        free(img);
    }
}

static void test_ints(void **s)
{
    uint64_t v;
    (void)s;
    assert_int_equal(nvs_parse_int(" 42 ", 4, NVS_TYPE_U8, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(nvs_parse_int("-1", 2, NVS_TYPE_I64, &v), 0);
    assert_int_equal(v, UINT64_MAX);
    assert_int_equal(nvs_parse_int("-9223372036854775808", 20, NVS_TYPE_I64, &v), 0);
    assert_int_equal(v, 1ull << 63);
    assert_int_equal(nvs_parse_int("9223372036854775808", 19, NVS_TYPE_I64, &v), NVS_ESIZE);
    assert_int_equal(nvs_parse_int("18446744073709551615", 20, NVS_TYPE_U64, &v), 0);
    assert_int_equal(nvs_parse_int("18446744073709551616", 20, NVS_TYPE_U64, &v), NVS_ESIZE);
    assert_int_equal(nvs_parse_int("-1", 2, NVS_TYPE_U32, &v), NVS_ESIZE);
    assert_int_equal(nvs_parse_int("-0", 2, NVS_TYPE_U32, &v), 0);
    assert_int_equal(nvs_parse_int("1_000", 5, NVS_TYPE_U16, &v), 0);
    assert_int_equal(v, 1000);
    assert_int_equal(nvs_parse_int("007", 3, NVS_TYPE_U8, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(nvs_parse_int("0x10", 4, NVS_TYPE_U8, &v), NVS_EINPUT);
    assert_int_equal(nvs_parse_int("", 0, NVS_TYPE_U8, &v), NVS_EINPUT);
    assert_int_equal(nvs_parse_int("1_", 2, NVS_TYPE_U8, &v), NVS_EINPUT);
    assert_int_equal(nvs_parse_int("-32768", 6, NVS_TYPE_I16, &v), 0);
    assert_int_equal(nvs_parse_int("32768", 5, NVS_TYPE_I16, &v), NVS_ESIZE);
}

static void check_b64(const char *in, const char *want, int rc_want)
{
    uint8_t *out = NULL;
    size_t n = 0;
    int rc = nvs_decode_base64(in, strlen(in), &out, &n);
    assert_int_equal(rc, rc_want);
    if (rc == 0) {
        assert_int_equal(n, strlen(want));
        assert_memory_equal(out, want, n);
    }
    free(out);
}

static void test_decoders(void **s)
{
    uint8_t *out = NULL;
    size_t n = 0;
    (void)s;
    check_b64("QUJD", "ABC", 0);
    check_b64("QUI=", "AB", 0);
    check_b64("QQ==", "A", 0);
    check_b64("QQ==garbage", "A", 0);   /* after complete padding: ignored */
    check_b64("Q U\nJ D", "ABC", 0);    /* outside the alphabet: skipped */
    check_b64("QUJD=", "ABC", 0);       /* a stray pad at a quad boundary */
    check_b64("QQ", "", NVS_EINPUT);    /* incorrect padding */
    check_b64("QUJDR", "", NVS_EINPUT); /* one more than a multiple of 4 */
    check_b64("", "", 0);
    assert_int_equal(nvs_decode_hex(" 0aFf \n", 7, &out, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(out[0], 0x0A);
    assert_int_equal(out[1], 0xFF);
    free(out);
    assert_int_equal(nvs_decode_hex("0g", 2, &out, &n), NVS_EINPUT);
    assert_int_equal(nvs_decode_hex("abc", 3, &out, &n), NVS_EINPUT);
    assert_int_equal(nvs_encoding("U8", NULL), NVS_TYPE_U8);
    assert_int_equal(nvs_encoding("blob", NULL), 0);
}

static void test_csv_reader(void **s)
{
    nvs_csv_t c;
    char err[256];
    const char *t = "# top comment\r\na,\"b,c\",\"d \"\"q\"\"\"\r\n\r\n"
                    "\"multi\nline\",x\n#skipped\nlast,\"open";
    (void)s;
    assert_int_equal(nvs_csv_read(t, strlen(t), true, &c, err, sizeof err), 0);
    assert_int_equal(c.n, 4);
    assert_int_equal(c.r[0].n, 3);
    assert_int_equal(c.r[0].line, 2);
    assert_string_equal(c.r[0].f[1], "b,c");
    assert_string_equal(c.r[0].f[2], "d \"q\"");
    assert_int_equal(c.r[1].n, 0); /* blank line */
    assert_int_equal(c.r[2].line, 4);
    assert_string_equal(c.r[2].f[0], "multi\nline");
    assert_int_equal(c.r[3].line, 7);
    assert_string_equal(c.r[3].f[1], "open"); /* unterminated quote: kept (not strict) */
    nvs_csv_free(&c);
    assert_int_equal(nvs_csv_read("a\0b", 3, true, &c, err, sizeof err), NVS_EINPUT);
    assert_non_null(strstr(err, "NUL"));
    /* BOM skipped; a comment line without skip_comments is data */
    assert_int_equal(nvs_csv_read("\xEF\xBB\xBF#x,y", 6, false, &c, err, sizeof err), 0);
    assert_int_equal(c.n, 1);
    assert_string_equal(c.r[0].f[0], "#x");
    nvs_csv_free(&c);
}

static void test_csv_writer(void **s)
{
    nvs_buf_t b = {0};
    nvs_csv_t c;
    char err[256];
    const char *row[4] = {"plain", "a,b", "say \"hi\"", "two\nlines"};
    (void)s;
    assert_int_equal(nvs_csv_write_row(&b, row, 4), 0);
    assert_string_equal(b.p, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\"\r\n");
    assert_int_equal(nvs_csv_read(b.p, b.len, false, &c, err, sizeof err), 0);
    assert_int_equal(c.n, 1);
    for (int i = 0; i < 4; i++)
        assert_string_equal(c.r[0].f[i], row[i]);
    nvs_csv_free(&c);
    nvs_buf_free(&b);
}

/* Reopening a namespace puts later items in it (no second namespace entry). */
static void test_namespace_reuse(void **s)
{
    uint8_t *img = NULL;
    char err[256];
    (void)s;
    assert_int_equal(gen_text("key,type,encoding,value\na,namespace,,\nx,data,u8,1\n"
                              "b,namespace,,\ny,data,u8,2\na,namespace,,\nz,data,u8,3\n",
                              0x3000, 2, err, sizeof err, &img),
                     0);
    /* entries: ns a (1), x, ns b (2), y, z */
    assert_int_equal(img[64 + 0 * 32 + 24], 1);
    assert_int_equal(img[64 + 1 * 32 + 0], 1);
    assert_int_equal(img[64 + 2 * 32 + 24], 2);
    assert_int_equal(img[64 + 3 * 32 + 0], 2);
    assert_int_equal(img[64 + 4 * 32 + 0], 1);
    assert_string_equal((char *)img + 64 + 4 * 32 + 8, "z");
    assert_int_equal(img[64 + 5 * 32], 0xFF); /* nothing more */
    free(img);
}

static char *mfg_text(const char *name)
{
    size_t n;
    return (char *)slurp(name, &n);
}

static void test_mfg_vectors(void **s)
{
    nvs_mfg_conf_t conf;
    nvs_mfg_values_t vals;
    char err[512] = "", *ct = mfg_text("mfg_config.csv"), *vt = mfg_text("mfg_values.csv");
    (void)s;
    assert_int_equal(nvs_mfg_conf_parse(ct, strlen(ct), &conf, err, sizeof err), 0);
    assert_int_equal(
        nvs_mfg_values_parse(vt, strlen(vt), &conf, "serial_no", &vals, err, sizeof err), 0);
    assert_int_equal(nvs_mfg_rows(&vals), 4);
    for (size_t i = 0; i < nvs_mfg_rows(&vals); i++) {
        nvs_buf_t csv = {0};
        char id[128], name[256];
        size_t wn, len;
        uint8_t *img = NULL, *want;
        char *wcsv;
        assert_int_equal(nvs_mfg_row(&conf, &vals, i, &csv, id, sizeof id, err, sizeof err), 0);
        snprintf(name, sizeof name, "mfg_expected_%s.csv", id);
        wcsv = (char *)slurp(name, &wn);
        assert_int_equal(csv.len, wn);
        assert_memory_equal(csv.p, wcsv, wn);
        snprintf(name, sizeof name, "mfg_expected_%s.bin", id);
        want = slurp(name, &wn);
        assert_int_equal(nvs_csv_generate(csv.p, csv.len, 0x4000, 2, NULL, &vec_opts, &img, &len,
                                          err, sizeof err),
                         0);
        assert_int_equal(len, wn);
        assert_memory_equal(img, want, wn);
        free(img);
        free(want);
        free(wcsv);
        nvs_buf_free(&csv);
    }
    nvs_mfg_values_free(&vals);
    /* without --fileid: 1, 2, 3, ... */
    assert_int_equal(nvs_mfg_values_parse(vt, strlen(vt), &conf, NULL, &vals, err, sizeof err), 0);
    {
        nvs_buf_t csv = {0};
        char id[16];
        assert_int_equal(nvs_mfg_row(&conf, &vals, 2, &csv, id, sizeof id, err, sizeof err), 0);
        assert_string_equal(id, "3");
        assert_non_null(strstr(csv.p, "hw_rev,data,u8,3\r\n")); /* REPEAT */
        assert_null(strstr(csv.p, "lot"));                      /* metadata column not written */
        nvs_buf_free(&csv);
    }
    nvs_mfg_values_free(&vals);
    nvs_mfg_conf_free(&conf);
    free(ct);
    free(vt);
}

/* nvs_mfg_image: one call from config + key lookup to the device's image (vector 001001). */
typedef struct kv {
    const char *k, *v;
} kv_t;

static const char *kv_lookup(void *ctx, const char *key)
{
    for (const kv_t *p = ctx; p->k; p++)
        if (strcmp(p->k, key) == 0) return p->v;
    return NULL;
}

static void test_mfg_image(void **s)
{
    static const kv_t vals[] = {{"serial_no", "SN-2026-001001"},
                                {"hw_rev", "3"},
                                {"mac_label", "24:0a:c4:00:10:01"},
                                {"batch", "77"},
                                {"secret", "f0d35357875c54b4ce36861070a42ec9"},
                                {"cert", "cert.pem"},
                                {NULL, NULL}};
    nvs_mfg_conf_t conf;
    nvs_buf_t csv = {0};
    char err[512] = "", *ct = mfg_text("mfg_config.csv");
    uint8_t *img = NULL, *want;
    size_t len, wn;
    (void)s;
    assert_int_equal(nvs_mfg_conf_parse(ct, strlen(ct), &conf, err, sizeof err), 0);
    assert_int_equal(nvs_mfg_image(&conf, kv_lookup, (void *)vals, 0x4000, 2, NULL, &vec_opts, &csv,
                                   &img, &len, err, sizeof err),
                     0);
    want = slurp("mfg_expected_SN-2026-001001.bin", &wn);
    assert_int_equal(len, wn);
    assert_memory_equal(img, want, wn);
    assert_non_null(strstr(csv.p, "serial_no,data,string,SN-2026-001001\r\n"));
    free(img);
    free(want);
    /* a value the lookup does not have: refused, named */
    assert_int_equal(nvs_mfg_image(&conf, kv_lookup, (void *)(vals + 1), 0x4000, 2, NULL, &vec_opts,
                                   NULL, &img, &len, err, sizeof err),
                     NVS_EINPUT);
    assert_null(img);
    assert_non_null(strstr(err, "`serial_no`"));
    nvs_buf_free(&csv);
    nvs_mfg_conf_free(&conf);
    free(ct);
}

static void mfg_expect(const char *conf_text, const char *values_text, const char *fileid,
                       const char *needle)
{
    nvs_mfg_conf_t conf;
    nvs_mfg_values_t vals;
    char err[512] = "";
    int rc = nvs_mfg_conf_parse(conf_text, strlen(conf_text), &conf, err, sizeof err);
    if (rc == 0) {
        rc = nvs_mfg_values_parse(values_text, strlen(values_text), &conf, fileid, &vals, err,
                                  sizeof err);
        if (rc == 0) {
            nvs_buf_t b = {0};
            char id[64];
            rc = nvs_mfg_row(&conf, &vals, 0, &b, id, sizeof id, err, sizeof err);
            nvs_buf_free(&b);
            nvs_mfg_values_free(&vals);
        }
        nvs_mfg_conf_free(&conf);
    }
    assert_int_equal(rc, NVS_EINPUT);
    if (!strstr(err, needle)) fail_msg("`%s` not in: %s", needle, err);
}

static void test_mfg_refusals(void **s)
{
    const char *conf = "dev,namespace,\nsn,data,string\nrev,data,u8,REPEAT\n";
    (void)s;
    mfg_expect("dev,namespace,\n\nsn,data,string\n", "sn\nA\n", NULL, "config line 2: empty");
    mfg_expect("dev,namespace,\nsn,data\n", "sn\nA\n", NULL, "config line 2");
    mfg_expect("dev,namespace,\nsn,data,str\n", "sn\nA\n", NULL, "encoding `str`");
    mfg_expect("dev,namespace,\nsn,data,string,ONCE\n", "sn\nA\n", NULL, "REPEAT");
    mfg_expect("sn,data,string\n", "sn\nA\n", NULL, "namespace");
    mfg_expect(conf, "sn\nA\n", NULL, "key `rev`");
    mfg_expect(conf, "sn,rev\nA,1\nB\n", NULL, "values line 3");
    mfg_expect(conf, "sn,rev\nA,1\n\nB,2\n", NULL, "values line 3: empty");
    mfg_expect(conf, "sn,rev\n", NULL, "no device rows");
    mfg_expect(conf, "sn,rev\nA,1\n", "serial", "--fileid `serial`");
    mfg_expect(conf, "sn,rev\n../x,1\n", "sn", "file id");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_many),
        cmocka_unit_test(test_blobs),
        cmocka_unit_test(test_v1),
        cmocka_unit_test(test_basic_enc),
        cmocka_unit_test(test_basic_enc_hmac),
        cmocka_unit_test(test_decrypt_round_trip),
        cmocka_unit_test(test_nvs_decrypt),
        cmocka_unit_test(test_v1_too_big),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_ints),
        cmocka_unit_test(test_decoders),
        cmocka_unit_test(test_csv_reader),
        cmocka_unit_test(test_csv_writer),
        cmocka_unit_test(test_namespace_reuse),
        cmocka_unit_test(test_mfg_vectors),
        cmocka_unit_test(test_mfg_refusals),
        cmocka_unit_test(test_mfg_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
