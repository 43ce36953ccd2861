/* SPDX-License-Identifier: MIT */
/* test_events.c — the event ring behind GET /api/v1/events: SSE framing, numbering, the resume
 * rules of docs/API.md (replay of the whole ring, other boot id, dropped events, ids from the
 * future, malformed ids), keep-alives, bounded takes, and slow clients dropped when they fall a
 * ring behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "events.h"

static cJSON *obj_with(const char *k, const char *v)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, k, v);
    return o;
}

static char *take(events_client_t *c)
{
    size_t n;
    char *b = events_client_take(c, &n);
    char *s = malloc(n + 1);
    if (n) memcpy(s, b, n);
    s[n] = 0;
    free(b);
    return s;
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

static events_client_t *attach(events_t *ev, const char *resume)
{
    return events_attach(ev, resume, resume ? strlen(resume) : 0, obj_with("id", "st"));
}

static void test_frames_and_numbering(void **state)
{
    events_t *ev = events_new("5f0c2a91");
    events_client_t *c;
    char *s;
    (void)state;
    assert_string_equal(events_boot_id(ev), "5f0c2a91");
    assert_int_equal(events_last_seq(ev), 0);
    c = attach(ev, NULL);
    assert_non_null(c);
    s = take(c);
    assert_non_null(strstr(s, "retry: 2000\n\n"));
    assert_non_null(strstr(s, "id: 5f0c2a91:0\nevent: hello\ndata: {\"seq\":0,\"boot_id\":"
                              "\"5f0c2a91\",\"time\":\""));
    assert_non_null(strstr(s, "\"station\":{\"id\":\"st\"}}\n\n"));
    free(s);
    assert_int_equal(events_publish(ev, "slot", obj_with("slot", "line1\nline2")), 1);
    assert_int_equal(events_publish(ev, "log", obj_with("message", "m")), 2);
    s = take(c);
    assert_non_null(strstr(s, "id: 5f0c2a91:1\nevent: slot\ndata: {\"seq\":1,"));
    /* a newline inside a value stays escaped: one data line per event */
    assert_non_null(strstr(s, "\"slot\":\"line1\\nline2\"}\n\n"));
    assert_non_null(strstr(s, "id: 5f0c2a91:2\nevent: log\n"));
    assert_int_equal(count(s, "data: "), 2);
    free(s);
    events_keepalive(ev);
    s = take(c);
    assert_string_equal(s, ": keep-alive\n\n");
    free(s);
    assert_int_equal(events_client_count(ev), 1);
    events_detach(c);
    assert_int_equal(events_client_count(ev), 0);
    events_free(ev);

    /* random boot ids: 8 hex digits, different per start (almost surely) */
    events_t *a = events_new(NULL), *b = events_new(NULL);
    char boot[EVENTS_BOOT_ID_LEN];
    uint64_t seq;
    assert_int_equal(strlen(events_boot_id(a)), 8);
    assert_string_not_equal(events_boot_id(a), events_boot_id(b));
    char id[32];
    snprintf(id, sizeof id, "%s:7", events_boot_id(a));
    assert_true(events_parse_id(id, strlen(id), boot, &seq));
    assert_int_equal(seq, 7);
    events_free(a);
    events_free(b);
}

static void test_resume_rules(void **state)
{
    events_t *ev = events_new("0000abcd");
    events_client_t *c;
    char *s;
    (void)state;
    for (int i = 0; i < 10; i++)
        events_publish(ev, "progress", obj_with("n", "x"));

    /* replay after 7: 8, 9, 10 in order; hello carries 7 so a drop right after it loses nothing */
    c = attach(ev, "0000abcd:7");
    s = take(c);
    assert_non_null(strstr(s, "id: 0000abcd:7\nevent: hello\ndata: {\"seq\":7,"));
    assert_null(strstr(s, "event: reset"));
    assert_int_equal(count(s, "event: progress"), 3);
    assert_true(strstr(s, "0000abcd:8\n") < strstr(s, "0000abcd:9\n"));
    assert_true(strstr(s, "0000abcd:9\n") < strstr(s, "0000abcd:10\n"));
    free(s);
    /* then live */
    events_publish(ev, "slot", obj_with("a", "b"));
    s = take(c);
    assert_non_null(strstr(s, "id: 0000abcd:11\nevent: slot"));
    free(s);
    events_detach(c);

    /* up to date: hello only */
    c = attach(ev, "0000abcd:11");
    s = take(c);
    assert_int_equal(count(s, "event: "), 1);
    free(s);
    events_detach(c);

    /* other boot id, future id, malformed id: hello (at the newest event) + reset */
    static const char *const bad[] = {"11112222:3",
                                      "0000abcd:12",
                                      "0000abcd",
                                      "0000ABCD:1",
                                      "0000abcd:-1",
                                      "0000abcd:99999999999999999999999",
                                      ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        c = attach(ev, bad[i]);
        s = take(c);
        if (!strstr(s, "id: 0000abcd:11\nevent: hello") ||
            !strstr(s, "id: 0000abcd:11\nevent: reset"))
            fail_msg("resume \"%s\": %s", bad[i], s);
        assert_int_equal(count(s, "event: "), 2);
        free(s);
        events_detach(c);
    }
    events_free(ev);
}

/* Everything pending, over as many takes as it needs. */
static char *take_all(events_client_t *c)
{
    size_t total = 0, n;
    char *all = calloc(1, 1), *b;
    while ((b = events_client_take(c, &n)) != NULL) {
        all = realloc(all, total + n + 1);
        memcpy(all + total, b, n);
        total += n;
        all[total] = 0;
        free(b);
        assert_true(n <= EVENTS_TAKE_MAX + 4096); /* one take stays bounded */
    }
    return all;
}

static void test_ring_drops_old_events(void **state)
{
    events_t *ev = events_new("0000abcd");
    events_client_t *c;
    char *s, id[32];
    (void)state;
    for (int i = 0; i < EVENTS_RING + 10; i++)
        events_publish(ev, "progress", obj_with("n", "x"));
    /* kept: 11 .. RING+10. Resuming after 10 needs 11 onwards: fine. After 9: 10 is gone. */
    snprintf(id, sizeof id, "0000abcd:%d", EVENTS_RING + 5);
    c = attach(ev, id);
    s = take_all(c);
    assert_null(strstr(s, "event: reset"));
    assert_int_equal(count(s, "event: progress"), 5);
    free(s);
    events_detach(c);
    c = attach(ev, "0000abcd:9");
    s = take_all(c);
    assert_non_null(strstr(s, "event: reset"));
    assert_non_null(strstr(s, "dropped"));
    assert_int_equal(count(s, "event: progress"), 0);
    free(s);
    events_detach(c);
    /* the whole ring replays, in order, without the client holding a copy of it */
    c = attach(ev, "0000abcd:10");
    assert_true(events_client_pending(c) > (size_t)EVENTS_RING * 50);
    s = take_all(c);
    assert_null(strstr(s, "event: reset"));
    assert_int_equal(count(s, "event: progress"), EVENTS_RING);
    snprintf(id, sizeof id, "id: 0000abcd:11\n");
    assert_non_null(strstr(s, id));
    snprintf(id, sizeof id, "id: 0000abcd:%d\n", EVENTS_RING + 10);
    assert_true(strstr(s, "id: 0000abcd:11\n") < strstr(s, id));
    assert_int_equal(events_client_pending(c), 0);
    free(s);
    events_detach(c);
    events_free(ev);
}

typedef struct {
    int calls;
    bool dropped;
} note_t;

static void note_cb(events_client_t *c, void *data)
{
    note_t *n = data;
    n->calls++;
    n->dropped = events_client_dropped(c);
}

/* A client that does not read is dropped once the ring overwrites an event it has not had;
 * one that reads is not. Neither holds more than its small own buffer. */
static void test_slow_client_is_dropped(void **state)
{
    events_t *ev = events_new("0000abcd");
    events_client_t *slow = attach(ev, NULL), *fast = attach(ev, NULL);
    note_t ns = {0}, nf = {0};
    size_t n;
    (void)state;
    events_client_set_notify(slow, note_cb, &ns);
    events_client_set_notify(fast, note_cb, &nf);
    free(events_client_take(fast, &n));
    free(events_client_take(slow, &n)); /* hello */
    for (int i = 0; i < EVENTS_RING; i++) {
        events_publish(ev, "log", obj_with("message", "m"));
        free(events_client_take(fast, &n)); /* this one reads */
        assert_true(n > 0);
    }
    assert_false(ns.dropped); /* a whole ring behind, but nothing lost yet */
    events_publish(ev, "log", obj_with("message", "one more"));
    assert_true(ns.dropped);
    assert_false(nf.dropped);
    assert_int_equal(events_client_pending(slow), 0);
    assert_null(events_client_take(slow, &n));
    assert_int_equal(ns.calls, EVENTS_RING + 1);
    events_detach(slow);
    /* keep-alives alone cannot grow a client's buffer past its cap either */
    for (int i = 0; i < 10000 && !nf.dropped; i++)
        events_keepalive(ev);
    assert_true(nf.dropped);
    events_free(ev); /* frees `fast` too */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_and_numbering),
        cmocka_unit_test(test_resume_rules),
        cmocka_unit_test(test_ring_drops_old_events),
        cmocka_unit_test(test_slow_client_is_dropped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
