/* SPDX-License-Identifier: MIT */
/* fuzz_cfx_config.c — fuzz target for the station config's "cfx" section (cfx_config_parse in
 * daemon/cfx/cfx_config.c, docs/STATION.md "cfx"). Input: the section's JSON text, parsed with
 * the fuzzer's scratch directory as the config's directory (a relative credentials_file is
 * looked for there; an absolute one is opened read-only and non-blocking, never written).
 * Must not: connect anywhere or write a file. */
#include <stdlib.h>
#include <string.h>

#include "cfx.h"
#include "est_err.h"
#include "fuzz.h"

/* A refusal is EST_EUSAGE with one line naming a "$.cfx" path; an accepted section is enabled
 * with an amqp:// or amqps:// broker, an address and a handle, the documented bounds of
 * heartbeat_s, outbox_max, reconnect_max_s and interlock.timeout_ms, a CA with amqps://, and a
 * client certificate only together with its key. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cfx_cfg_t c;
    char err[512], *text = malloc(size + 1);
    int rc;
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = 0;
    memset(err, 0, sizeof err);
    rc = cfx_config_parse(text, fuzz_tmpdir(), "fuzz-station", &c, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECK(rc == EST_EUSAGE);
        FUZZ_CHECK(strncmp(err, "$.cfx", 5) == 0 && strchr(err, '\n') == NULL);
        FUZZ_CHECK(!c.enabled && c.broker == NULL);
    } else if (c.enabled) {
        FUZZ_CHECK(c.broker && (!strncmp(c.broker, "amqp://", 7) || !strncmp(c.broker, "amqps://", 8)));
        FUZZ_CHECK(c.address && c.address[0] && c.handle && c.handle[0] && c.request_address);
        FUZZ_CHECK(c.heartbeat_s >= 1 && c.heartbeat_s <= 300);
        FUZZ_CHECK(c.outbox_max >= 100 && c.outbox_max <= 10000000);
        FUZZ_CHECK(c.reconnect_max_s >= 1 && c.reconnect_max_s <= 3600);
        FUZZ_CHECK(c.interlock_timeout_ms >= 100 && c.interlock_timeout_ms <= 600000);
        FUZZ_CHECK(strncmp(c.broker, "amqps://", 8) || c.ca_file != NULL);
        FUZZ_CHECK(!c.cert_file == !c.key_file);
        FUZZ_CHECK(!c.credentials_file == !c.user && !c.user == !c.password);
    }
    cfx_config_free(&c);
    cfx_config_free(&c); /* cfx_config_free leaves an empty section */
    free(text);
    return 0;
}
