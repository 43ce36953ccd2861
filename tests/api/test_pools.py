#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_pools.py — the exactly-once pools through the HTTP API (docs/API.md "Pools",
# docs/DEVICE-DATA.md "Pools and exactly-once allocation"): import a values CSV (engineer), list
# with the counts and the low-level warning (viewer), page the items, void, create a counter;
# refusals (viewer writes, duplicate labels, header mismatch, void of an unknown item) change
# nothing; the pool survives a kill -9 of the daemon. Every answer is checked against
# schema/openapi.json by the client.
import os
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import apistation as st  # noqa: E402  (puts tests/integration on sys.path)
from apistation import SlotSpec, Station  # noqa: E402
from harness import check, main  # noqa: E402

CSV = "serial,batch\nSN-0001,7\nSN-0002,7\nSN-0003,8\n"


def pool_by_name(c, name):
    pools = {p["name"]: p for p in c.ok("GET", "/api/v1/pools")["pools"]}
    check(name in pools, "HOST: pool %s not listed: %r" % (name, sorted(pools)))
    return pools[name]


def db_states(s, pool):
    db = sqlite3.connect(s.db)
    try:
        return dict(db.execute("SELECT label, state FROM pool_items WHERE pool = ?", (pool,)))
    finally:
        db.close()


def case_pools(ctx):
    s = Station(ctx, [SlotSpec("A1")])
    s.start()
    viewer = s.client("viewer")
    eng = s.client("engineer")
    check(viewer.ok("GET", "/api/v1/pools") == {"pools": []}, "HOST: a new station has pools")
    # viewers may not change pools
    viewer.expect(403, "POST", "/api/v1/pools/serials/import?low_water=5", body=CSV.encode(),
                  content_type="text/csv", code="forbidden")
    r = eng.ok("POST", "/api/v1/pools/serials/import?low_water=5", body=CSV.encode(),
               content_type="text/csv")
    check(r == {"pool": "serials", "added": 3}, "HOST: import answered %r" % r)
    p = pool_by_name(viewer, "serials")
    check((p["kind"], p["free"], p["consumed"], p["low_water"], p["low"]) ==
          ("values", 3, 0, 5, True), "HOST: pool listed as %r (3 free < 5: low)" % p)
    # a duplicate label refuses the whole file, naming the line
    dup = "serial,batch\nSN-0004,9\nSN-0002,9\n"
    r = eng.expect(400, "POST", "/api/v1/pools/serials/import", body=dup.encode(),
                   content_type="text/csv", code="bad_request")
    check("line 3" in r.problem()["detail"] and "SN-0002" in r.problem()["detail"],
          "HOST: duplicate refused with %r" % r.problem()["detail"])
    eng.expect(400, "POST", "/api/v1/pools/serials/import", body=b"serial,lot\nX,1\n",
               content_type="text/csv", code="bad_request")
    check(len(db_states(s, "serials")) == 3, "HOST: a refused import added items")
    more = "serial,batch\n" + "".join("SN-%04d,9\n" % i for i in range(4, 10))
    r = eng.ok("POST", "/api/v1/pools/serials/import?low_water=2", body=more.encode(),
               content_type="text/csv")
    check(r["added"] == 6, "HOST: second import answered %r" % r)
    check(pool_by_name(viewer, "serials")["low"] is False, "HOST: 9 free >= 2 still low")
    # items, paged
    r = viewer.ok("GET", "/api/v1/pools/serials/items?limit=4")
    check([i["label"] for i in r["items"]] == ["SN-0001", "SN-0002", "SN-0003", "SN-0004"] and
          r["items"][2]["value"] == {"serial": "SN-0003", "batch": "8"} and
          r["next_after"] == 3, "HOST: first page %r" % r)
    r = viewer.ok("GET", "/api/v1/pools/serials/items?limit=4&after=%d" % r["next_after"])
    check([i["label"] for i in r["items"]] == ["SN-0005", "SN-0006", "SN-0007", "SN-0008"],
          "HOST: second page %r" % r)
    viewer.expect(404, "GET", "/api/v1/pools/nope/items", code="not_found")
    viewer.expect(400, "GET", "/api/v1/pools/serials/items?state=gone", code="bad_request")
    # void
    r = eng.ok("POST", "/api/v1/pools/serials/void", body={"label": "SN-0002", "reason": "torn"})
    check(r == {"pool": "serials", "label": "SN-0002", "state": "void"}, "HOST: void %r" % r)
    eng.expect(404, "POST", "/api/v1/pools/serials/void", body={"label": "SN-9999"},
               code="not_found")
    eng.expect(400, "POST", "/api/v1/pools/serials/void", body={"lab": 1}, code="bad_request")
    r = viewer.ok("GET", "/api/v1/pools/serials/items?state=void")
    check([i["label"] for i in r["items"]] == ["SN-0002"], "HOST: void items %r" % r)
    # a counter
    r = eng.ok("POST", "/api/v1/pools", body={"name": "sn", "format": "SN-{year}-{n:06}",
                                             "start": 1000, "step": 1}, status=201)
    check(r == {"pool": "sn"}, "HOST: counter answered %r" % r)
    eng.expect(400, "POST", "/api/v1/pools", body={"name": "sn2", "format": "SN-{mac}"},
               code="bad_request")
    eng.expect(400, "POST", "/api/v1/pools", body={"name": "sn", "format": "SN-{n}"},
               code="bad_request")
    p = pool_by_name(viewer, "sn")
    check(p["kind"] == "counter" and p["format"] == "SN-{year}-{n:06}" and p["low"] is False,
          "HOST: counter listed as %r" % p)
    # the pool survives a kill -9; a reservation of a job the crash left running is released at
    # the next start (the job becomes interrupted, nothing was written)
    uuid = "0badc0de-0000-4000-8000-000000000001"
    db = sqlite3.connect(s.db)
    with db:
        db.execute("INSERT INTO jobs (uuid, slot, port, started_at) VALUES (?, 'A1', 'x', "
                   "'2026-01-01T00:00:00.000Z')", (uuid,))
        db.execute("UPDATE pool_items SET state = 'reserved', slot = 'A1', job_uuid = ?, "
                   "mac = '24:0a:c4:00:00:01' WHERE pool = 'serials' AND label = 'SN-0003'",
                   (uuid,))
        db.execute("INSERT INTO pool_uses (item_id, job_uuid, slot, mac, at) SELECT id, ?, 'A1', "
                   "'24:0a:c4:00:00:01', '2026-01-01T00:00:00.000Z' FROM pool_items "
                   "WHERE pool = 'serials' AND label = 'SN-0003'", (uuid,))
    db.close()
    before = db_states(s, "serials")
    check(before["SN-0003"] == "reserved", "HOST: fixture not written")
    s.restart("kill")
    after = db_states(s, "serials")
    check(after.pop("SN-0003") == "free", "HOST: the crashed job's reservation was not released")
    before.pop("SN-0003")
    check(after == before, "HOST: the pool changed across kill -9")
    db = sqlite3.connect(s.db)
    try:
        res = db.execute("SELECT result FROM jobs WHERE uuid = ?", (uuid,)).fetchone()[0]
        out = db.execute("SELECT outcome FROM pool_uses WHERE job_uuid = ?", (uuid,)).fetchone()[0]
    finally:
        db.close()
    check((res, out) == ("interrupted", "released"), "HOST: job %s, use %s" % (res, out))
    p = pool_by_name(s.client("viewer"), "serials")
    check((p["free"], p["void"]) == (8, 1), "HOST: after restart %r" % p)


CASES = {"pools": case_pools}

if __name__ == "__main__":
    sys.exit(main({k: st.with_daemon_log(v) for k, v in CASES.items()},
                  "pools through the HTTP API"))
