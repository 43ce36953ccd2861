/* SPDX-License-Identifier: MIT */
/* fuzz_escrow.c — fuzz target for the key-escrow blob parser and the GET_SECURITY_INFO decoder
 * of the provisioning core (jobs/prov/escrow.c, jobs/prov/secinfo.c;
 * docs/SECURITY-PROVISIONING.md §9, §10). Input: an escrow blob (also read as a
 * GET_SECURITY_INFO output). Invariants: a blob that parses has the magic, version 1, a label of
 * printable length inside the blob and a ciphertext that ends exactly at the end of the input;
 * unwrapping with a fixed test key never succeeds for a blob not made for that key; the
 * security-info decoder accepts exactly 12 and 20 bytes and its summary agrees with the flags.
 * Must not: keep state between inputs (the test key is made once). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "escrow.h"
#include "fuzz.h"
#include "secinfo.h"

static char *g_priv;
static size_t g_priv_len;

static void make_key(void)
{
    static int done;
    EVP_PKEY *pk;
    BIO *b;
    char *data;
    long n;
    if (done) return;
    done = 1;
    pk = EVP_RSA_gen(3072);
    b = BIO_new(BIO_s_mem());
    FUZZ_CHECK(pk && b && PEM_write_bio_PrivateKey(b, pk, NULL, NULL, 0, NULL, NULL) == 1);
    n = BIO_get_mem_data(b, &data);
    g_priv = malloc((size_t)n);
    FUZZ_CHECK(g_priv != NULL);
    memcpy(g_priv, data, (size_t)n);
    g_priv_len = (size_t)n;
    BIO_free(b);
    EVP_PKEY_free(pk);
}

static void check_secinfo(const uint8_t *data, size_t size)
{
    secinfo_t si;
    secinfo_summary_t s;
    char line[64];
    int rc = secinfo_parse(data, size, &si, NULL, 0);
    FUZZ_CHECK((rc == 0) == (size == 12 || size == 20));
    if (rc != 0) return;
    FUZZ_CHECK(si.has_chip_id == (size == 20));
    secinfo_summarize(&si, &s);
    FUZZ_CHECK(s.secure_boot == ((si.flags & SECINFO_SECURE_BOOT_EN) != 0));
    FUZZ_CHECK(s.secure_download == ((si.flags & SECINFO_SECURE_DOWNLOAD_ENABLE) != 0));
    FUZZ_CHECK(s.flash_encryption == (__builtin_popcount(si.flash_crypt_cnt) % 2 == 1));
    FUZZ_CHECK(s.n_secure_boot_digests + s.n_flash_keys <= 7);
    FUZZ_CHECK(secinfo_describe(&s, line, sizeof line) < sizeof line);
    FUZZ_CHECK(strlen(line) < sizeof line);
    for (unsigned i = 0; i < 7; i++)
        FUZZ_CHECK(secinfo_key_purpose_name(si.key_purposes[i]) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    escrow_info_t info;
    uint8_t out[512];
    size_t out_len = 1;
    char err[200];
    make_key();
    check_secinfo(data, size);
    if (escrow_parse(data, size, &info, err, sizeof err) != 0) {
        FUZZ_CHECK(err[0] != 0);
        return 0;
    }
    FUZZ_CHECK(size >= ESCROW_HDR_LEN && memcmp(data, "ESKW", 4) == 0);
    FUZZ_CHECK(info.version == 1 && info.algorithm == ESCROW_ALG_RSA_OAEP_SHA256);
    FUZZ_CHECK(strlen(info.label) <= ESCROW_MAX_LABEL);
    FUZZ_CHECK(info.ciphertext + info.ciphertext_len == data + size);
    FUZZ_CHECK(info.secret_len > 0 && info.ciphertext_len > 0);
    /* the fuzzer cannot know the private key: unwrap must fail cleanly */
    FUZZ_CHECK(escrow_unwrap(g_priv, g_priv_len, data, size, out, sizeof out, &out_len, &info,
                             err, sizeof err) == -1);
    FUZZ_CHECK(out_len == 0 && err[0] != 0);
    return 0;
}
