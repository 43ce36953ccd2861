/* SPDX-License-Identifier: MIT */
/* cfx_msg.c — IPC-CFX envelopes and message bodies (docs/CFX.md "Catalogue", "Mappings").
 * Field names and enumerations follow the CFX SDK's classes named in docs/CFX.md.
 * Must not: do I/O. */
#include "cfx_msg.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *cfx_fmt_time(uint64_t unix_ms, char *buf)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    long off;
    char sign;
    if (!localtime_r(&t, &tm)) {
        snprintf(buf, CFX_TIME_LEN, "1970-01-01T00:00:00.000+00:00");
        return buf;
    }
    off = tm.tm_gmtoff / 60;
    sign = off < 0 ? '-' : '+';
    if (off < 0)
        off = -off;
    snprintf(buf, CFX_TIME_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03u%c%02u:%02u",
             (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100, tm.tm_mday % 100,
             tm.tm_hour % 100, tm.tm_min % 100, tm.tm_sec % 100, (unsigned)(unix_ms % 1000), sign,
             (unsigned)(off / 60 % 100), (unsigned)(off % 60));
    return buf;
}

const char *cfx_fmt_span(uint64_t ms, char *buf)
{
    uint64_t s = ms / 1000, d = s / 86400;
    unsigned h = (unsigned)(s / 3600 % 24), m = (unsigned)(s / 60 % 60), sec = (unsigned)(s % 60);
    int n = 0;
    if (d)
        n = snprintf(buf, CFX_SPAN_LEN, "%" PRIu64 ".", d);
    n += snprintf(buf + n, CFX_SPAN_LEN - (size_t)n, "%02u:%02u:%02u", h, m, sec);
    if (ms % 1000) /* .NET prints seven fraction digits (100 ns ticks) */
        snprintf(buf + n, CFX_SPAN_LEN - (size_t)n, ".%03u0000", (unsigned)(ms % 1000));
    return buf;
}

static cJSON *cfx_str_or_null(const char *s)
{
    return s ? cJSON_CreateString(s) : cJSON_CreateNull();
}

char *cfx_envelope(const char *name, const char *unique_id, uint64_t unix_ms, const char *source,
                   const char *target, const char *request_id, cJSON *body)
{
    char ts[CFX_TIME_LEN];
    cJSON *env = cJSON_CreateObject();
    char *out = NULL;
    if (!env || !body) {
        cJSON_Delete(env);
        cJSON_Delete(body);
        return NULL;
    }
    cJSON_AddStringToObject(env, "MessageName", name);
    cJSON_AddStringToObject(env, "Version", CFX_VERSION);
    cJSON_AddStringToObject(env, "TimeStamp", cfx_fmt_time(unix_ms, ts));
    cJSON_AddStringToObject(env, "UniqueID", unique_id);
    cJSON_AddItemToObject(env, "Source", cfx_str_or_null(source));
    cJSON_AddItemToObject(env, "Target", cfx_str_or_null(target));
    cJSON_AddItemToObject(env, "RequestID", cfx_str_or_null(request_id));
    cJSON_AddItemToObject(env, "MessageBody", body);
    out = cJSON_PrintUnformatted(env);
    cJSON_Delete(env);
    return out;
}

const char *cfx_work_result(const char *result)
{
    if (result && !strcmp(result, "pass"))
        return "Completed";
    if (result && !strcmp(result, "fail"))
        return "Failed";
    return "Aborted"; /* cancelled, interrupted */
}

/* Our error classes (jobs/proto/est_err.h) onto the SDK's FaultCause; docs/CFX.md "Faults". */
static const struct {
    const char *cls, *cause;
} cfx_causes[] = {
    {"port_not_found", "ElectricalFailure"}, {"port_busy", "LoadError"},
    {"port_gone", "UnloadError"},            {"port_error", "ElectricalFailure"},
    {"no_sync", "LoadError"},                {"wrong_boot_mode", "LoadError"},
    {"timeout", "ElectricalFailure"},        {"brownout", "PowerFailure"},
    {"nak", "MechanicalFailure"},            {"flash_not_detected", "MechanicalFailure"},
    {"md5_mismatch", "QualityCheck"},        {"test_failed", "QualityCheck"},
    {"wrong_chip", "QualityCheck"},          {"flash_too_small", "QualityCheck"},
    {"image_missing", "MissingDocumentation"}, {"image_invalid", "MissingDocumentation"},
    {"recipe_invalid", "MissingDocumentation"}, {"bad_offset", "MissingDocumentation"},
    {"stub_failed", "SoftwareFailure"},      {"unsupported", "SoftwareFailure"},
    {"protocol", "SoftwareFailure"},         {"internal", "SoftwareFailure"},
    {"usage", "SoftwareFailure"},            {"cancelled", "RemoteStop"},
};

const char *cfx_fault_cause(const char *error_class)
{
    for (size_t i = 0; error_class && i < sizeof cfx_causes / sizeof cfx_causes[0]; i++)
        if (!strcmp(cfx_causes[i].cls, error_class))
            return cfx_causes[i].cause;
    return "SoftwareFailure";
}

cJSON *cfx_body_endpoint(const char *handle, const char *request_uri, const char *request_addr)
{
    cJSON *b = cJSON_CreateObject();
    if (!b)
        return NULL;
    cJSON_AddStringToObject(b, "CFXHandle", handle);
    cJSON_AddItemToObject(b, "RequestNetworkUri", cfx_str_or_null(request_uri));
    cJSON_AddItemToObject(b, "RequestTargetAddress", cfx_str_or_null(request_addr));
    return b;
}

cJSON *cfx_body_handle(const char *handle)
{
    cJSON *b = cJSON_CreateObject();
    if (b)
        cJSON_AddStringToObject(b, "CFXHandle", handle);
    return b;
}

cJSON *cfx_body_heartbeat(const char *handle, unsigned interval_s)
{
    char span[CFX_SPAN_LEN];
    cJSON *b = cfx_body_handle(handle);
    if (b)
        cJSON_AddStringToObject(b, "HeartbeatFrequency",
                                cfx_fmt_span((uint64_t)interval_s * 1000, span));
    return b;
}

static void cfx_add_lane(cJSON *b, unsigned lane)
{
    char l[16];
    snprintf(l, sizeof l, "%u", lane);
    cJSON_AddStringToObject(b, "Lane", l);
}

cJSON *cfx_body_work_started(const cfx_job_t *j)
{
    cJSON *b = cJSON_CreateObject(), *units;
    if (!b)
        return NULL;
    cJSON_AddStringToObject(b, "TransactionID", j->uuid);
    cfx_add_lane(b, j->lane);
    /* The board is not identified yet when the work starts (its MAC is read after the sync):
     * no unit positions; UnitsPersonalized and UnitsTested name it by MAC. */
    cJSON_AddNumberToObject(b, "UnitCount", 0);
    units = cJSON_AddArrayToObject(b, "Units");
    (void)units;
    return b;
}

cJSON *cfx_body_work_completed(const cfx_job_t *j)
{
    cJSON *b = cJSON_CreateObject();
    if (!b)
        return NULL;
    cJSON_AddStringToObject(b, "TransactionID", j->uuid);
    cJSON_AddStringToObject(b, "Result", cfx_work_result(j->result));
    return b;
}

cJSON *cfx_body_units_personalized(const cfx_job_t *j)
{
    cJSON *b, *units, *u, *chars, *c;
    if (!j->mac || !*j->mac)
        return NULL;
    b = cJSON_CreateObject();
    if (!b)
        return NULL;
    cJSON_AddStringToObject(b, "TransactionId", j->uuid);
    units = cJSON_AddArrayToObject(b, "PersonalizedUnits");
    u = cJSON_CreateObject();
    cJSON_AddItemToArray(units, u);
    cJSON_AddStringToObject(u, "UnitIdentifier", j->mac);
    cJSON_AddNumberToObject(u, "UnitPositionNumber", 1);
    chars = cJSON_AddArrayToObject(u, "Characteristics");
    c = cJSON_CreateObject();
    cJSON_AddItemToArray(chars, c);
    cJSON_AddStringToObject(c, "Name", "MAC Address");
    cJSON_AddStringToObject(c, "Value", j->mac);
    if (j->chip) {
        c = cJSON_CreateObject();
        cJSON_AddItemToArray(chars, c);
        cJSON_AddStringToObject(c, "Name", "Chip");
        cJSON_AddStringToObject(c, "Value", j->chip);
    }
    return b;
}

static cJSON *cfx_test(const char *id, const char *name, bool passed, const char *error)
{
    cJSON *t = cJSON_CreateObject();
    if (!t)
        return NULL;
    cJSON_AddStringToObject(t, "UniqueIdentifier", id);
    cJSON_AddStringToObject(t, "TestName", name);
    cJSON_AddNullToObject(t, "TestStartTime");
    cJSON_AddNullToObject(t, "TestEndTime");
    cJSON_AddArrayToObject(t, "TestConditions");
    cJSON_AddNullToObject(t, "TestProcedure");
    cJSON_AddNullToObject(t, "Comments");
    cJSON_AddStringToObject(t, "Result", passed ? "Passed" : "Failed");
    cJSON_AddItemToObject(t, "Error", cfx_str_or_null(passed ? NULL : error));
    cJSON_AddArrayToObject(t, "SymptomsFound");
    cJSON_AddArrayToObject(t, "DefectsFound");
    cJSON_AddArrayToObject(t, "Measurements");
    return t;
}

cJSON *cfx_body_units_tested(const cfx_job_t *j, const char *verify_id, const char *test_id)
{
    cJSON *b, *units, *u, *tests;
    bool all = true;
    if (!j->verify_ran && !j->test_ran)
        return NULL;
    b = cJSON_CreateObject();
    if (!b)
        return NULL;
    cJSON_AddStringToObject(b, "TransactionId", j->uuid);
    cJSON_AddStringToObject(b, "TestMethod", "Automated");
    units = cJSON_AddArrayToObject(b, "TestedUnits");
    u = cJSON_CreateObject();
    cJSON_AddItemToArray(units, u);
    cJSON_AddItemToObject(u, "UnitIdentifier", cfx_str_or_null(j->mac && *j->mac ? j->mac : NULL));
    cJSON_AddNumberToObject(u, "UnitPositionNumber", 1);
    tests = cJSON_CreateArray();
    if (j->verify_ran) {
        cJSON_AddItemToArray(tests, cfx_test(verify_id, "FLASH_VERIFY", j->verify_passed,
                                             j->message));
        all = all && j->verify_passed;
    }
    if (j->test_ran) {
        cJSON_AddItemToArray(tests,
                             cfx_test(test_id, "POST_FLASH_TEST", j->test_passed, j->message));
        all = all && j->test_passed;
    }
    cJSON_AddStringToObject(u, "OverallResult", all ? "Passed" : "Failed");
    cJSON_AddItemToObject(u, "Tests", tests);
    return b;
}

cJSON *cfx_fault(const cfx_job_t *j, const char *occurrence_id)
{
    cJSON *f = cJSON_CreateObject();
    if (!f)
        return NULL;
    cJSON_AddStringToObject(f, "Cause", cfx_fault_cause(j->error_class));
    cJSON_AddStringToObject(f, "Severity", "Error");
    cJSON_AddStringToObject(f, "FaultCode", j->error_class ? j->error_class : "internal");
    cJSON_AddStringToObject(f, "FaultOccurrenceId", occurrence_id);
    cfx_add_lane(f, j->lane);
    cJSON_AddItemToObject(f, "Stage", cfx_str_or_null(j->slot));
    return f;
}

cJSON *cfx_body_fault_occurred(const cfx_job_t *j, const char *occurrence_id)
{
    cJSON *b = cJSON_CreateObject(), *f = cfx_fault(j, occurrence_id);
    if (!b || !f) {
        cJSON_Delete(b);
        cJSON_Delete(f);
        return NULL;
    }
    cJSON_AddItemToObject(b, "Fault", f);
    return b;
}

cJSON *cfx_body_fault_cleared(const char *occurrence_id)
{
    cJSON *b = cJSON_CreateObject();
    if (b)
        cJSON_AddStringToObject(b, "FaultOccurrenceId", occurrence_id);
    return b;
}

cJSON *cfx_body_state_changed(const char *stage, unsigned lane, const char *old_state,
                              uint64_t old_ms, const char *new_state, cJSON *fault)
{
    char span[CFX_SPAN_LEN];
    cJSON *b = cJSON_CreateObject();
    if (!b) {
        cJSON_Delete(fault);
        return NULL;
    }
    if (stage) {
        cJSON_AddStringToObject(b, "Stage", stage);
        cfx_add_lane(b, lane);
    }
    cJSON_AddStringToObject(b, "OldState", old_state);
    cJSON_AddStringToObject(b, "OldStateDuration", cfx_fmt_span(old_ms, span));
    cJSON_AddStringToObject(b, "NewState", new_state);
    cJSON_AddItemToObject(b, "RelatedFault", fault ? fault : cJSON_CreateNull());
    return b;
}

cJSON *cfx_body_recipe_activated(const char *name, const char *version, const char *hash,
                                 unsigned lane)
{
    char rev[96];
    cJSON *b = cJSON_CreateObject();
    if (!b)
        return NULL;
    snprintf(rev, sizeof rev, "%s%s%.12s", version ? version : "", version ? "+" : "",
             hash ? hash : "");
    cJSON_AddStringToObject(b, "RecipeName", name ? name : "");
    cJSON_AddStringToObject(b, "Revision", rev);
    cJSON_AddNumberToObject(b, "Lane", lane);
    cJSON_AddNullToObject(b, "Stage");
    cJSON_AddNumberToObject(b, "ExpectedCycleTime", 0);
    cJSON_AddNumberToObject(b, "ExpectedUnitsPerWorkTransaction", 1);
    cJSON_AddNumberToObject(b, "NumberOfComponentsPerUnit", 0);
    return b;
}
