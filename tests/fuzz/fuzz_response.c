/* SPDX-License-Identifier: MIT */
/* fuzz_response.c — fuzz target for response parsing (jobs/proto/cmd.c, PROTOCOL.md §3.3–§3.7).
 * Input: one decoded frame. Parsed as a job does and with every output length; each result is
 * held against the frame bytes (2- and 4-byte status), then the MD5, security-info and
 * status-text decoders run on it. Must not: keep state between inputs. */
#include <string.h>

#include "cmd.h"
#include "est_err.h"
#include "fuzz.h"

/* A job parses a frame's header first (output length 0), then with the output length its
 * command expects: 0, 12/20 GET_SECURITY_INFO, 16 stub MD5, 32 ROM MD5, 64 READ_FLASH_SLOW. */

static void check_text(uint8_t status, uint8_t error)
{
    char buf[96];
    /* every capacity, down to 1, must give a NUL-terminated prefix of the full text */
    char full[96];
    cmd_status_text(status, error, false, full, sizeof full);
    FUZZ_CHECK(strncmp(full, "status 0x", 9) == 0 && strlen(full) < sizeof full);
    for (size_t cap = 1; cap <= 12; cap++) {
        cmd_status_text(status, error, false, buf, cap);
        FUZZ_CHECK(strlen(buf) == cap - 1 && strncmp(buf, full, cap - 1) == 0);
    }
    cmd_status_text(status, error, true, full, sizeof full);
    FUZZ_CHECK(strncmp(full, "status 0x", 9) == 0 && strlen(full) < sizeof full);
    FUZZ_CHECK(cmd_status_text(status, error, true, NULL, 0) != NULL);
}

static void check_resp(const uint8_t *f, size_t n, size_t out_len)
{
    cmd_resp_t r;
    uint8_t md5[16];
    cmd_secinfo_t si;
    int rc;

    memset(&r, 0xA5, sizeof r);
    rc = cmd_parse_resp(f, n, out_len, &r);
    if (rc != 0) {
        FUZZ_CHECK(rc == EST_EPROTO);
        /* refused: not a response, or a short frame that claims success */
        FUZZ_CHECK(n < CMD_HDR_LEN + 2 || f[0] != 0x01 ||
                   (n < CMD_HDR_LEN + out_len + 2 && f[CMD_HDR_LEN] == 0));
        return;
    }
    FUZZ_CHECK(n >= CMD_HDR_LEN + 2 && f[0] == 0x01);
    FUZZ_CHECK(r.op == f[1] && r.size == cmd_get_le16(f + 2) && r.value == cmd_get_le32(f + 4));
    FUZZ_CHECK(r.data_len == n - CMD_HDR_LEN);
    if (n >= CMD_HDR_LEN + out_len + 2) {
        /* §3.5: the status is the two bytes after the output, whatever follows them */
        FUZZ_CHECK(r.out_len == out_len);
        FUZZ_CHECK(out_len ? r.out == f + CMD_HDR_LEN : r.out == NULL);
        FUZZ_CHECK(r.status == f[CMD_HDR_LEN + out_len] && r.error == f[CMD_HDR_LEN + out_len + 1]);
    } else {
        /* a failing loader sends the status without the output */
        FUZZ_CHECK(r.out == NULL && r.out_len == 0);
        FUZZ_CHECK(r.status != 0 && r.status == f[CMD_HDR_LEN] && r.error == f[CMD_HDR_LEN + 1]);
    }
    FUZZ_CHECK(cmd_resp_code(&r) == (uint16_t)(r.status << 8 | r.error));
    FUZZ_CHECK(cmd_resp_unsupported(&r) == (r.status != 0 && r.error == 0x05));

    rc = cmd_parse_md5(&r, md5);
    FUZZ_CHECK(rc == 0 || rc == EST_EPROTO);
    if (rc == 0) {
        FUZZ_CHECK(r.status == 0 && (r.out_len == 16 || r.out_len == 32));
        if (r.out_len == 16) FUZZ_CHECK(memcmp(md5, r.out, 16) == 0);
    }
    rc = cmd_parse_secinfo(&r, &si);
    FUZZ_CHECK(rc == 0 || rc == EST_EPROTO);
    if (rc == 0) {
        FUZZ_CHECK(r.status == 0 && (r.out_len == 12 || r.out_len == 20));
        FUZZ_CHECK(si.has_chip_id == (r.out_len == 20));
        FUZZ_CHECK(si.flags == cmd_get_le32(r.out) && si.flash_crypt_cnt == r.out[4]);
    }
    check_text(r.status, r.error);
}

/* The output length a job expects for a response to `op` (ROM and stub forms). */
static size_t expected_out(uint8_t op, int variant, size_t data_len)
{
    switch (op) {
    case CMD_SPI_FLASH_MD5: return variant ? 16 : 32;
    case CMD_GET_SECURITY_INFO: return cmd_secinfo_out_len(data_len);
    case CMD_READ_FLASH_SLOW: return 64;
    default: return 0;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const size_t lens[] = {0, 1, 2, 4, 12, 16, 20, 32, 64, 4096};
    cmd_resp_t r;
    const char *name;

    /* What a job does with a frame: header parse with no output, then with the expected one. */
    if (cmd_parse_resp(data, size, 0, &r) == 0) {
        name = cmd_op_name(r.op);
        FUZZ_CHECK(name != NULL && name[0] != '\0');
        for (int v = 0; v < 2; v++)
            check_resp(data, size, expected_out(r.op, v, r.data_len));
    }
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++)
        check_resp(data, size, lens[i]);
    check_resp(data, size, size); /* output as long as the frame: always the short form */
    FUZZ_CHECK(cmd_secinfo_out_len(size) == (size >= 22 ? 20u : 12u));
    if (size >= 2) check_text(data[0], data[1]);
    return 0;
}
