#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_api.py — the HTTP API end to end (issue 4 acceptance): `espstation serve` with espsim
# boards, every endpoint, the role matrix (from docs/API.md's table), the MES cursor across a
# kill -9 and a SIGTERM restart, the event stream's order and resume, and the limits. Every
# response is checked against schema/openapi.json (apiclient.OpenApi).
# Must not: take an expected value from the daemon's own answers where docs/API.md or the
# database says what it must be; leave a process running (harness kills everything).

import csv
import hashlib
import http.client
import io
import json
import os
import re
import signal
import socket
import sqlite3
import sys
import threading
import time
import urllib.parse
from datetime import datetime, timedelta, timezone

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import apistation as st  # noqa: E402  (puts tests/integration on sys.path)
from apiclient import EventStream  # noqa: E402
from apistation import SlotSpec, Station  # noqa: E402
import esp_image as img  # noqa: E402
from harness import TestFailure, check, main  # noqa: E402
import test_station as ts  # noqa: E402

ISO_RE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
HEX64_RE = re.compile(r"^[0-9a-f]{64}$")
BOOT_RE = re.compile(r"^[0-9a-f]{8}$")
MAC_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")
FINAL = ("pass", "fail", "cancelled", "interrupted")
SLOT_STATES = ("idle", "waiting", "probing", "running", "stopped")
# docs/API.md "Job", in the documented order (also the jobs.csv column order).
JOB_FIELDS = ["seq", "uuid", "slot", "port", "recipe_hash", "recipe_name", "recipe_version",
              "chip", "revision", "mac", "flash_id", "flash_size", "started_at", "finished_at",
              "duration_ms", "result", "error_class", "message", "hint", "failed_state", "baud",
              "stub_name", "attempt", "final", "retries", "bytes_written", "bytes_sent"]
# Job fields that are columns of the jobs table with the same meaning.
DB_FIELDS = ["seq", "uuid", "slot", "port", "recipe_hash", "chip", "revision", "mac", "flash_id",
             "flash_size", "started_at", "finished_at", "duration_ms", "result", "error_class",
             "message", "failed_state", "baud", "stub_name", "attempt", "retries",
             "bytes_written", "bytes_sent"]
NAK_FAULT = "nak:FLASH_DEFL_BEGIN:6"  # every job on that board fails with class nak


def parse_iso(s):
    check(isinstance(s, str) and ISO_RE.match(s), "HOST: %r is not an ISO-8601 UTC time with "
          "milliseconds" % (s,))
    return datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def iso(dt):
    return dt.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + \
        "%03dZ" % (dt.microsecond // 1000)


def q(path, **params):
    return path + "?" + urllib.parse.urlencode(params)


# ---------------------------------------------------------------- common checks

def check_job_vs_db(job, row, recipes, what):
    """An API Job against its database row (and the recipes table for name/version)."""
    check(list(job.keys()) == JOB_FIELDS or set(job.keys()) == set(JOB_FIELDS),
          "HOST: %s: Job fields %s, docs/API.md has %s" % (what, sorted(job), JOB_FIELDS))
    for k in DB_FIELDS:
        check(job[k] == row[k], "HOST: %s: %s is %r in the API, %r in the database"
              % (what, k, job[k], row[k]))
    check(job["final"] is bool(row["final"]), "HOST: %s: final is %r in the API, %r in the "
          "database" % (what, job["final"], row["final"]))
    rec = recipes.get(row["recipe_hash"])
    if rec is not None:
        check(job["recipe_name"] == rec["name"] and job["recipe_version"] == rec["version"],
              "HOST: %s: recipe %r/%r, the recipes table says %r/%r"
              % (what, job["recipe_name"], job["recipe_version"], rec["name"], rec["version"]))
    if row["result"] == "pass":
        check(job["hint"] is None, "HOST: %s: hint %r on a passed job" % (what, job["hint"]))


def db_recipes(s):
    rows = ts.db_query(s.db, "SELECT hash, name, version FROM recipes") or []
    return {r["hash"]: r for r in rows}


RUNNING_ONLY = ("stage", "job_uuid", "bytes_done", "bytes_total", "percent", "rate_bps",
                "elapsed_ms")


def check_slot_shape(slot, what):
    check(slot["state"] in SLOT_STATES, "HOST: %s: state %r" % (what, slot["state"]))
    if slot["state"] != "running":
        extra = {k: slot[k] for k in RUNNING_ONLY if slot[k] is not None}
        check(not extra, "HOST: %s: %r while %s (docs: null unless running)"
              % (what, extra, slot["state"]))
    want = {"start": slot["state"] in ("idle", "waiting") and slot["recipe"] is not None,
            "cancel": slot["state"] in ("waiting", "probing", "running")}
    check(slot["actions"] == want, "HOST: %s: actions %r while %s%s (docs: %r)"
          % (what, slot["actions"], slot["state"], "" if slot["recipe"] else " without recipe",
             want))
    if slot["mac"] is not None:
        check(MAC_RE.match(slot["mac"]), "HOST: %s: mac %r" % (what, slot["mac"]))
    if slot["recipe"] is not None:
        check(HEX64_RE.match(slot["recipe"]["hash"]), "HOST: %s: recipe hash %r"
              % (what, slot["recipe"]["hash"]))


def start_job(s, slot, op=None):
    """POST start as operator: 202; returns the slot from the answer."""
    op = op or s.client("operator")
    r = op.expect(202, "POST", "/api/v1/slots/%s/start" % slot)
    return r.json["slot"]


def finished_count(s, slot=None):
    return len([r for r in s.db_finished() if slot is None or r["slot"] == slot])


def run_jobs(s, slot, n, timeout=60):
    """n jobs one after the other on a manual slot; returns their database rows."""
    op = s.client("operator")
    rows = []
    for _ in range(n):
        before = {r["uuid"] for r in s.db_finished()}
        start_job(s, slot, op)
        new = s.wait(lambda: [r for r in s.db_finished()
                              if r["uuid"] not in before and r["slot"] == slot],
                     timeout, "a finished job on slot %s" % slot, poll=0.05)
        rows.append(new[0])
        s.wait(lambda: op.get("/api/v1/slots/%s" % slot).json["state"] != "running", 10,
               "slot %s no longer running" % slot, poll=0.05)
    return rows


def wait_running(s, slot, data=True, timeout=30):
    """The slot's job is running (and writing, with data=True): its database row."""
    def pred():
        rows = [r for r in s.db_jobs() if r["slot"] == slot and r["result"] == "running"]
        if rows and (not data or ts.events_in_state(s.db, rows[0]["uuid"], "data")):
            return rows[0]
        return None
    return s.wait(pred, timeout, "slot %s's job %s" % (slot, "writing" if data else "running"),
                  poll=0.05)


# ---------------------------------------------------------------- station, slots

def case_station(ctx):
    s = Station(ctx, [SlotSpec("A1"), SlotSpec("B1", chip="esp32", recipe="slow.json"),
                      SlotSpec("NR", recipe="missing.json")])
    s.start()
    c = s.client()
    st1 = c.ok("GET", "/api/v1/station")
    check(st1["id"] == "api-st1" and st1["name"] == "API test station",
          "HOST: station id/name %r/%r, the config says api-st1 / API test station"
          % (st1["id"], st1["name"]))
    check(isinstance(st1["version"], str) and st1["version"], "HOST: empty version")
    check(BOOT_RE.match(st1["boot_id"]), "HOST: boot_id %r is not 8 hex digits"
          % st1["boot_id"])
    started = parse_iso(st1["started_at"])
    now = datetime.now(timezone.utc)
    check(abs((now - started).total_seconds()) < 30, "HOST: started_at %s is not now (%s)"
          % (st1["started_at"], iso(now)))
    check(st1["read_access"] == "open", "HOST: read_access %r, config default is open"
          % st1["read_access"])
    want = [("A1", s.recipe_hash("quick")), ("B1", s.recipe_hash("slow")), ("NR", None)]
    got = [(x["name"], x["recipe"] and x["recipe"]["hash"]) for x in st1["slots"]]
    check(got == want, "HOST: station slots/recipe hashes %r, expected (config order, sha256 of "
          "the recipe files) %r" % (got, want))
    rq = st1["slots"][0]["recipe"]
    check(rq["name"] == "api-quick" and rq["version"] == "1.0.0",
          "HOST: slot A1 recipe %r" % rq)
    zero = {"jobs_total": 0, "pass": 0, "fail": 0, "cancelled": 0, "interrupted": 0,
            "running": 0}
    check(st1["counters"] == zero, "HOST: counters %r on an empty database" % st1["counters"])
    time.sleep(0.3)
    st2 = c.ok("GET", "/api/v1/station")
    check(st2["uptime_ms"] >= st1["uptime_ms"] + 250, "HOST: uptime_ms %r then %r 300 ms later"
          % (st1["uptime_ms"], st2["uptime_ms"]))
    check(st2["boot_id"] == st1["boot_id"], "HOST: boot_id changed without a restart")
    run_jobs(s, "A1", 2)
    start_job(s, "B1")
    wait_running(s, "B1", data=False)
    st3 = c.ok("GET", "/api/v1/station")
    # docs: jobs_total is the sum of the finished (final) rows; running = slots running a job
    check(st3["counters"] == dict(zero, jobs_total=2, **{"pass": 2, "running": 1}),
          "HOST: counters %r after 2 passed jobs with one running" % st3["counters"])
    s.client("operator").expect(202, "POST", "/api/v1/slots/B1/cancel")
    s.wait(lambda: finished_count(s, "B1") == 1, 10, "the cancelled job recorded")
    s.restart("term")
    st4 = c.ok("GET", "/api/v1/station")
    check(st4["boot_id"] != st1["boot_id"] and BOOT_RE.match(st4["boot_id"]),
          "HOST: boot_id %r after a restart (was %r)" % (st4["boot_id"], st1["boot_id"]))
    check(st4["counters"] == dict(zero, jobs_total=3, **{"pass": 2, "cancelled": 1}),
          "HOST: counters %r after a restart (database: 2 pass, 1 cancelled)" % st4["counters"])


def case_slots(ctx):
    specs = [SlotSpec("A1", chip="esp32c3"), SlotSpec("A2", chip="esp32", transport="rfc2217",
                                                      start="auto"),
             SlotSpec("A3", chip="esp8266", transport="pty", start="loop"),
             SlotSpec("NR", recipe="missing.json")]
    s = Station(ctx, specs)
    s.start()
    c = s.client()
    # A2 (auto) flashes its board by itself; then it goes idle.
    s.wait(lambda: finished_count(s, "A2") == 1 and finished_count(s, "A3") == 1, 30,
           "the auto and loop slots' first jobs")
    lst = c.ok("GET", "/api/v1/slots")["slots"]
    check([x["name"] for x in lst] == ["A1", "A2", "A3", "NR"],
          "HOST: slots %r, config order is A1 A2 A3 NR" % [x["name"] for x in lst])
    for x, spec in zip(lst, specs):
        what = "slot %s" % spec.name
        check_slot_shape(x, what)
        check(x["port"] == spec.sim.port, "HOST: %s: port %r, config %r"
              % (what, x["port"], spec.sim.port))
        check(x["start"] == spec.start, "HOST: %s: start %r, config %r"
              % (what, x["start"], spec.start))
        one = c.ok("GET", "/api/v1/slots/%s" % spec.name)
        for k in ("name", "port", "start", "recipe", "recipe_error", "last"):
            check(one[k] == x[k], "HOST: %s: %s differs between /slots and /slots/{name}: "
                  "%r / %r" % (what, k, x[k], one[k]))
    by = {x["name"]: x for x in lst}
    a1 = by["A1"]
    check(a1["state"] == "idle" and a1["last"] is None and a1["job_uuid"] is None,
          "HOST: manual slot A1 before any job: %r" % a1)
    check(a1["actions"] == {"start": True, "cancel": False}, "HOST: A1 actions %r (idle manual "
          "slot with a recipe)" % a1["actions"])
    check(a1["recipe"]["hash"] == s.recipe_hash("quick") and a1["recipe_error"] is None,
          "HOST: A1 recipe %r error %r" % (a1["recipe"], a1["recipe_error"]))
    check(a1["counters"] == {"pass": 0, "fail": 0}, "HOST: A1 counters %r" % a1["counters"])
    rows = {r["slot"]: r for r in s.db_finished()}
    for name in ("A2", "A3"):
        x = by[name]
        row = rows[name]
        last = x["last"]
        check(last is not None and last["job_uuid"] == row["uuid"] and last["seq"] == row["seq"]
              and last["result"] == "pass" and last["error_class"] is None and
              last["mac"] == row["mac"] and last["finished_at"] == row["finished_at"],
              "HOST: slot %s last %r, database row %r" % (name, last, row))
        check(x["mac"] == row["mac"] and x["chip"] == row["chip"] and
              x["flash_id"] == row["flash_id"],
              "HOST: slot %s chip/mac/flash_id %r/%r/%r, the last job's %r/%r/%r"
              % (name, x["chip"], x["mac"], x["flash_id"], row["chip"], row["mac"],
                 row["flash_id"]))
        check(x["counters"] == {"pass": 1, "fail": 0}, "HOST: %s counters %r"
              % (name, x["counters"]))
    check(by["A2"]["state"] == "idle", "HOST: auto slot A2 after its job: %r (docs: idle)"
          % by["A2"]["state"])
    check(by["A3"]["state"] in ("waiting", "probing"), "HOST: loop slot A3 after its job: %r"
          % by["A3"]["state"])
    nr = by["NR"]
    check(nr["recipe"] is None and isinstance(nr["recipe_error"], str) and
          "missing.json" in nr["recipe_error"],
          "HOST: slot NR (recipe file missing): recipe %r, recipe_error %r (should name "
          "missing.json)" % (nr["recipe"], nr["recipe_error"]))
    check(nr["actions"]["start"] is False, "HOST: slot NR without recipe offers start")
    c.expect(404, "GET", "/api/v1/slots/NOPE", code="not_found")
    # a running slot
    s2 = s.client("operator")
    sl = start_job(s, "A1", s2)
    check(sl["name"] == "A1", "HOST: start answered slot %r" % sl["name"])
    got = c.ok("GET", "/api/v1/slots/A1")
    if got["state"] == "running":
        check(UUID_RE.match(got["job_uuid"] or "") and got["stage"] and
              isinstance(got["elapsed_ms"], int) and got["actions"] ==
              {"start": False, "cancel": True},
              "HOST: running slot A1: %r" % got)
    s.wait(lambda: finished_count(s, "A1") == 1, 20, "A1's job")
    got = c.ok("GET", "/api/v1/slots/A1")
    check(got["counters"] == {"pass": 1, "fail": 0} and got["last"]["result"] == "pass",
          "HOST: A1 after one passed job: %r" % got)


def case_start_cancel(ctx):
    specs = [SlotSpec("R1", chip="esp32", transport="rfc2217", realtime=True,
                      recipe="slow.json"),
             SlotSpec("NR", recipe="missing.json")]
    s = Station(ctx, specs)
    s.start()
    op = s.client("operator")
    sl = start_job(s, "R1", op)
    check(sl["state"] == "running" and UUID_RE.match(sl["job_uuid"] or ""),
          "HOST: POST start answered slot %r (docs: starts a job now)" % sl)
    op.expect(409, "POST", "/api/v1/slots/R1/start", code="slot_busy")
    row = wait_running(s, "R1")
    check(row["uuid"] == sl["job_uuid"], "HOST: started job %s, the database runs %s"
          % (sl["job_uuid"], row["uuid"]))

    def writing():
        x = op.get("/api/v1/slots/R1").json
        return x if x["bytes_done"] and x["bytes_done"] > 0 else None
    x = s.wait(writing, 15, "bytes_done > 0 on R1")
    check(x["state"] == "running" and x["stage"] is not None and x["job_uuid"] == row["uuid"]
          and x["bytes_total"] >= len(s.slow.data) and 0 <= x["percent"] <= 100 and
          x["actions"] == {"start": False, "cancel": True} and isinstance(x["elapsed_ms"], int),
          "HOST: running slot R1: %r" % x)
    check(abs(x["percent"] - 100.0 * x["bytes_done"] / x["bytes_total"]) < 0.2,
          "HOST: percent %r for %r/%r bytes" % (x["percent"], x["bytes_done"], x["bytes_total"]))
    r = op.expect(202, "POST", "/api/v1/slots/R1/cancel")
    rows = s.wait(lambda: [r for r in s.db_finished() if r["uuid"] == row["uuid"]], 10,
                  "the cancelled job's final row")
    check(rows[0]["result"] == "cancelled", "HOST: cancelled job recorded %r"
          % rows[0]["result"])
    x = s.wait(lambda: op.get("/api/v1/slots/R1").json["state"] == "idle" and
               op.get("/api/v1/slots/R1").json, 10, "R1 idle after cancel")
    check(x["last"]["result"] == "cancelled" and x["last"]["job_uuid"] == row["uuid"],
          "HOST: R1 last after cancel: %r" % x["last"])
    op.expect(409, "POST", "/api/v1/slots/R1/cancel", code="conflict")
    r = op.expect(409, "POST", "/api/v1/slots/NR/start", code="no_recipe")
    check("missing.json" in r.json["detail"], "HOST: no_recipe detail %r does not name the "
          "recipe error (missing.json)" % r.json["detail"])
    op.expect(404, "POST", "/api/v1/slots/NOPE/start", code="not_found")
    op.expect(404, "POST", "/api/v1/slots/NOPE/cancel", code="not_found")
    # A full job after all that.
    start_job(s, "R1", op)
    s.wait(lambda: finished_count(s, "R1") == 2, 30, "R1's second job")
    last = [r for r in s.db_finished() if r["slot"] == "R1"][-1]
    check(last["result"] == "pass", "HOST: R1's second job %r %r" % (last["result"],
                                                                    last["message"]))


def case_cancel_loop(ctx):
    """docs: cancel "cancels the running job (recorded cancelled) and stops presence detection
    (idle until the next start)" — for a loop slot while it runs a job, while it probes and
    while it waits; 409 conflict once idle."""
    specs = [SlotSpec("L1", chip="esp32", transport="rfc2217", start="loop", realtime=True,
                      recipe="slow.json"),
             SlotSpec("W1", chip="esp32c3", transport="rfc2217", start="loop",
                      faults=["silent"])]
    s = Station(ctx, specs, probe_interval_ms=300)
    s.start()
    op = s.client("operator")
    bad = []

    def stays_idle(slot, what):
        time.sleep(1.2)  # four probe intervals
        x = op.get("/api/v1/slots/%s" % slot).json
        if x["state"] != "idle":
            bad.append("%s: %s 1.2 s after cancel (docs: idle until the next start)"
                       % (what, x["state"]))
        r = op.request("POST", "/api/v1/slots/%s/cancel" % slot)
        if r.status != 409:
            bad.append("%s: a second cancel answered %s (docs: 409 conflict when nothing runs "
                       "or waits)" % (what, r.status))
    # 1. L1 flashes its board by itself (loop): cancel the running job
    row = wait_running(s, "L1")
    op.expect(202, "POST", "/api/v1/slots/L1/cancel")
    s.wait(lambda: [r for r in s.db_finished() if r["uuid"] == row["uuid"]], 10,
           "the cancelled job's row")
    check([r["result"] for r in s.db_finished() if r["uuid"] == row["uuid"]] == ["cancelled"],
          "HOST: L1's cancelled job not recorded cancelled")
    stays_idle("L1", "loop slot cancelled while running")
    # 2. W1 (no board answers) while it probes
    s.wait(lambda: op.get("/api/v1/slots/W1").json["state"] == "probing", 10, "W1 probing",
           poll=0.02)
    op.expect(202, "POST", "/api/v1/slots/W1/cancel")
    stays_idle("W1", "loop slot cancelled while probing")
    # 3. after a restart, W1 again, while it waits between probes
    s.restart("term")
    s.wait(lambda: op.get("/api/v1/slots/W1").json["state"] == "waiting", 10, "W1 waiting",
           poll=0.02)
    op.expect(202, "POST", "/api/v1/slots/W1/cancel")
    stays_idle("W1", "loop slot cancelled while waiting")
    check(finished_count(s, "W1") == 0, "HOST: cancelling presence detection recorded a job")
    check(not bad, "HOST: cancel on loop slots:\n  " + "\n  ".join(bad))


def case_slot_recipe(ctx):
    specs = [SlotSpec("A1"), SlotSpec("R1", chip="esp32", transport="rfc2217", realtime=True,
                                      recipe="slow.json")]
    s = Station(ctx, specs)
    s.start()
    eng = s.client("engineer")
    alt = ts.Image(0x20000, "alt.bin", img.app_image("api-alt", 12 * 1024), "app")
    sha = hashlib.sha256(alt.data).hexdigest()
    eng.expect(201, "PUT", q("/api/v1/images/alt.bin", sha256=sha), body=alt.data)
    rec = {"name": "api-alt", "version": "3.1.4", "chip": st.CHIPS_ALL,
           "images": [{"offset": "0x20000", "file": "alt.bin", "sha256": sha}]}
    text = json.dumps(rec).encode()
    h = hashlib.sha256(text).hexdigest()
    eng.expect(201, "POST", "/api/v1/recipes", body=text, content_type="application/json")
    r = eng.expect(200, "PUT", "/api/v1/slots/A1/recipe", body={"hash": h})
    check(r.json["slot"]["recipe"] == {"name": "api-alt", "version": "3.1.4", "hash": h},
          "HOST: A1 recipe after PUT: %r" % r.json["slot"]["recipe"])
    stn = eng.ok("GET", "/api/v1/station")
    check(stn["slots"][0]["recipe"]["hash"] == h, "HOST: station slot A1 recipe %r"
          % stn["slots"][0]["recipe"])
    recs = {x["hash"]: x for x in eng.ok("GET", "/api/v1/recipes")["recipes"]}
    check(recs[h]["slots"] == ["A1"], "HOST: recipe %s slots %r, expected ['A1']"
          % (h[:12], recs[h]["slots"]))
    rows = run_jobs(s, "A1", 1)
    check(rows[0]["recipe_hash"] == h and rows[0]["result"] == "pass",
          "HOST: A1's job ran recipe %s (%s), expected %s" % (rows[0]["recipe_hash"],
                                                              rows[0]["result"], h))
    ims = ts.db_query(s.db, "SELECT offset FROM job_images WHERE job_uuid = ?",
                      (rows[0]["uuid"],))
    check([i["offset"] for i in ims] == [0x20000], "HOST: the job wrote %r, the recipe says "
          "0x20000" % ims)
    s.restart("term")
    x = eng.ok("GET", "/api/v1/slots/A1")
    check(x["recipe"] and x["recipe"]["hash"] == h, "HOST: A1's recipe after a restart: %r "
          "(docs: the choice survives restarts)" % x["recipe"])
    # a recipe loaded from the config works too
    r = eng.expect(200, "PUT", "/api/v1/slots/A1/recipe", body={"hash": s.recipe_hash("slow")})
    check(r.json["slot"]["recipe"]["hash"] == s.recipe_hash("slow"), "HOST: %r"
          % r.json["slot"]["recipe"])
    r = eng.expect(200, "PUT", "/api/v1/slots/A1/recipe", body={"hash": None})
    check(r.json["slot"]["recipe"]["hash"] == s.recipe_hash("quick"),
          "HOST: {hash: null} gave %r, the config's recipe is %s"
          % (r.json["slot"]["recipe"], s.recipe_hash("quick")))
    eng.expect(404, "PUT", "/api/v1/slots/A1/recipe", body={"hash": "ab" * 32},
               code="not_found")
    eng.expect(404, "PUT", "/api/v1/slots/NOPE/recipe", body={"hash": h}, code="not_found")
    eng.expect(400, "PUT", "/api/v1/slots/A1/recipe", body="{\"hash\": ", code="bad_request")
    start_job(s, "R1")
    wait_running(s, "R1", data=False)
    eng.expect(409, "PUT", "/api/v1/slots/R1/recipe", body={"hash": h}, code="slot_busy")
    s.wait(lambda: finished_count(s, "R1") == 1, 30, "R1's job")


def case_slot_recipe_image_gone(ctx):
    """docs: PUT slot recipe is 422 recipe_invalid/image_missing "if the recipe no longer
    loads": its image was removed from the image directory after it was stored and used."""
    s = Station(ctx, [SlotSpec("A1"), SlotSpec("B1", chip="esp32")])
    s.start()
    eng = s.client("engineer")
    alt = ts.Image(0x20000, "alt.bin", img.app_image("api-alt", 12 * 1024), "app")
    sha = hashlib.sha256(alt.data).hexdigest()
    eng.expect(201, "PUT", q("/api/v1/images/alt.bin", sha256=sha), body=alt.data)
    rec = {"name": "api-alt", "version": "3.1.4", "chip": st.CHIPS_ALL,
           "images": [{"offset": "0x20000", "file": "alt.bin", "sha256": sha}]}
    text = json.dumps(rec)
    h = hashlib.sha256(text.encode()).hexdigest()
    eng.expect(201, "POST", "/api/v1/recipes", body=text)
    eng.expect(200, "PUT", "/api/v1/slots/A1/recipe", body={"hash": h})
    run_jobs(s, "A1", 1)
    os.unlink(os.path.join(s.image_dir, "alt.bin"))
    r = eng.request("PUT", "/api/v1/slots/B1/recipe", body={"hash": h})
    if r.status == 200:
        # What the slot would then do with it: the job's result says whether it "loads".
        run_jobs(s, "B1", 1)
        last = [x for x in s.db_finished() if x["slot"] == "B1"][-1]
        raise TestFailure("HOST: PUT /api/v1/slots/B1/recipe with a recipe whose image is gone "
                          "answered 200 (docs: 422 recipe_invalid/image_missing); B1's next job "
                          "then: %s %s %s" % (last["result"], last["error_class"],
                                              last["message"]))
    check(r.status == 422 and r.problem()["code"] in ("image_missing", "recipe_invalid"),
          "HOST: %s, expected 422 image_missing/recipe_invalid" % r.describe())
    x = eng.ok("GET", "/api/v1/slots/B1")
    check(x["recipe"]["hash"] == s.recipe_hash("quick"), "HOST: a refused PUT changed B1's "
          "recipe to %r" % x["recipe"])


# ---------------------------------------------------------------- jobs

def make_mixed_jobs(s, n_pass=6, n_fail=3):
    """n_pass passed jobs on A1, n_fail failed on F1 (a board that NAKs), one cancelled on R1."""
    run_jobs(s, "A1", n_pass // 2)
    run_jobs(s, "F1", n_fail)
    run_jobs(s, "A1", n_pass - n_pass // 2)
    start_job(s, "R1")
    wait_running(s, "R1")
    s.client("operator").expect(202, "POST", "/api/v1/slots/R1/cancel")
    s.wait(lambda: finished_count(s, "R1") == 1, 10, "the cancelled job")
    return s.db_finished()


def mixed_station(ctx, **kw):
    return Station(ctx, [SlotSpec("A1", chip="esp32c3"),
                         SlotSpec("F1", chip="esp32", faults=[NAK_FAULT]),
                         SlotSpec("R1", chip="esp32", transport="rfc2217", realtime=True,
                                  recipe="slow.json")], **kw)


def case_jobs(ctx):
    s = mixed_station(ctx)
    s.start()
    c = s.client()
    empty = c.ok("GET", "/api/v1/jobs")
    dbid = empty.get("database_id")
    check({k: v for k, v in empty.items() if k != "database_id"} ==
          {"jobs": [], "next_after": 0, "has_more": False} and isinstance(dbid, str) and
          re.match(r"^[0-9a-f]{32}$", dbid), "HOST: /jobs on an empty database: %r" % empty)
    check(c.ok("GET", "/api/v1/station")["database_id"] == dbid,
          "HOST: the jobs page and the station name different databases")
    rows = make_mixed_jobs(s)
    check(len(rows) == 10, "TEST: %d jobs made, expected 10" % len(rows))
    rows.sort(key=lambda r: r["seq"])
    recipes = db_recipes(s)
    full = c.ok("GET", "/api/v1/jobs")
    check([j["seq"] for j in full["jobs"]] == [r["seq"] for r in rows] and
          full["has_more"] is False and full["next_after"] == rows[-1]["seq"],
          "HOST: /jobs seqs %r next_after %r has_more %r; database seqs %r"
          % ([j["seq"] for j in full["jobs"]], full["next_after"], full["has_more"],
             [r["seq"] for r in rows]))
    for j, r in zip(full["jobs"], rows):
        check_job_vs_db(j, r, recipes, "job seq %s" % r["seq"])
        if r["result"] == "fail":
            check(j["error_class"] == "nak" and isinstance(j["hint"], str) and j["hint"],
                  "HOST: failed job: class %r hint %r" % (j["error_class"], j["hint"]))
    # paging with limit 3
    seen, after, pages = [], 0, 0
    while True:
        pg = c.ok("GET", q("/api/v1/jobs", after=after, limit=3))
        pages += 1
        check(len(pg["jobs"]) <= 3, "HOST: limit=3 returned %d jobs" % len(pg["jobs"]))
        want_next = pg["jobs"][-1]["seq"] if pg["jobs"] else after
        check(pg["next_after"] == want_next, "HOST: next_after %r, last seq %r"
              % (pg["next_after"], want_next))
        check(all(j["seq"] > after for j in pg["jobs"]), "HOST: after=%d returned seqs %r"
              % (after, [j["seq"] for j in pg["jobs"]]))
        seen += pg["jobs"]
        after = pg["next_after"]
        if not pg["has_more"]:
            break
        check(pages < 10, "HOST: paging does not end")
    check(seen == full["jobs"], "HOST: pages of 3 differ from the full list")
    check(pages == 4, "HOST: 10 jobs in pages of 3 took %d pages (has_more wrong)" % pages)
    last = c.ok("GET", q("/api/v1/jobs", after=rows[-1]["seq"]))
    check(last == {"jobs": [], "next_after": rows[-1]["seq"], "has_more": False,
                   "database_id": dbid},
          "HOST: polling past the end: %r" % last)
    pg = c.ok("GET", q("/api/v1/jobs", after=rows[-2]["seq"], limit=1000))
    check([j["seq"] for j in pg["jobs"]] == [rows[-1]["seq"]], "HOST: limit=1000 %r" % pg)
    # filters
    for res in FINAL:
        want = [r["seq"] for r in rows if r["result"] == res]
        got = c.ok("GET", q("/api/v1/jobs", result=res))
        check([j["seq"] for j in got["jobs"]] == want, "HOST: result=%s gave seqs %r, database "
              "%r" % (res, [j["seq"] for j in got["jobs"]], want))
    for slot in ("A1", "F1", "R1"):
        want = [r["seq"] for r in rows if r["slot"] == slot]
        got = c.ok("GET", q("/api/v1/jobs", slot=slot))
        check([j["seq"] for j in got["jobs"]] == want, "HOST: slot=%s gave %r, database %r"
              % (slot, [j["seq"] for j in got["jobs"]], want))
    mac = [r["mac"] for r in rows if r["slot"] == "F1"][0]
    want = [r["seq"] for r in rows if r["mac"] == mac]
    got = c.ok("GET", q("/api/v1/jobs", mac=mac))
    check([j["seq"] for j in got["jobs"]] == want, "HOST: mac=%s gave %r, database %r"
          % (mac, [j["seq"] for j in got["jobs"]], want))
    since = rows[4]["finished_at"]
    want = [r["seq"] for r in rows if r["finished_at"] >= since]
    got = c.ok("GET", q("/api/v1/jobs", since=since))
    check([j["seq"] for j in got["jobs"]] == want, "HOST: since=%s gave %r, database %r"
          % (since, [j["seq"] for j in got["jobs"]], want))
    # a filter with paging: next_after is the last returned seq, never reordered
    passed = [r["seq"] for r in rows if r["result"] == "pass"]
    pg = c.ok("GET", q("/api/v1/jobs", result="pass", limit=2, after=passed[1]))
    check([j["seq"] for j in pg["jobs"]] == passed[2:4] and pg["next_after"] == passed[3] and
          pg["has_more"] is True, "HOST: result=pass&limit=2&after=%d: %r (expected seqs %r)"
          % (passed[1], [(j["seq"]) for j in pg["jobs"]], passed[2:4]))
    # combined
    got = c.ok("GET", q("/api/v1/jobs", slot="A1", result="fail"))
    check(got["jobs"] == [], "HOST: slot=A1&result=fail should be empty: %r" % got)
    # an unknown parameter is refused naming it, never ignored (issue 15 item 10)
    r = c.expect(400, "GET", q("/api/v1/jobs", unknown_param="x", limit=2), code="bad_request")
    check("unknown_param" in r.json.get("detail", ""), "HOST: the 400 does not name the "
          "parameter: %r" % r.json)
    for bad in ({"limit": "abc"}, {"limit": 0}, {"limit": 1001}, {"after": "x"},
                {"result": "running"}, {"result": "passed"}, {"since": "yesterday"},
                {"since": "2026-13-45T99:00:00.000Z"}):
        c.expect(400, "GET", q("/api/v1/jobs", **bad), code="bad_request")


def case_jobs_until_final(ctx):
    """?until= (finished before) and ?final=true|false filter /jobs and /jobs.csv (issue 15
    item 10); an unknown query parameter on any endpoint is a 400 naming it."""
    s = Station(ctx, [SlotSpec("A1", chip="esp32c3"),
                      SlotSpec("B1", chip="esp32", faults=["brownout:2"], recipe="retry.json")])
    s.write_recipe("retry.json", "api-retry", "1.0.0", [s.app], retry={"attempts": 3})
    s.start()
    c = s.client()
    run_jobs(s, "A1", 2)
    run_jobs(s, "B1", 1)  # attempt 1 browns out (final false), attempt 2 passes
    s.wait(lambda: len([r for r in s.db_finished() if r["slot"] == "B1"]) == 2, 20,
           "both attempts on B1")
    s.wait(lambda: c.get("/api/v1/slots/B1").json["state"] != "running", 10, "B1 idle")
    run_jobs(s, "A1", 2)
    rows = sorted(s.db_finished(), key=lambda r: r["seq"])
    check(len(rows) == 6 and sorted(r["final"] for r in rows) == [0, 1, 1, 1, 1, 1],
          "TEST: expected 6 rows, one retried: %r" % [(r["slot"], r["final"]) for r in rows])
    for val, want in (("true", 1), ("false", 0)):
        got = c.ok("GET", q("/api/v1/jobs", final=val))
        exp = [r["seq"] for r in rows if r["final"] == want]
        check([j["seq"] for j in got["jobs"]] == exp,
              "HOST: final=%s gave %r, database %r" % (val, [j["seq"] for j in got["jobs"]], exp))
    until = rows[3]["finished_at"]
    exp = [r["seq"] for r in rows if r["finished_at"] < until]
    got = c.ok("GET", q("/api/v1/jobs", until=until))
    check([j["seq"] for j in got["jobs"]] == exp and len(exp) < len(rows),
          "HOST: until=%s gave %r, database %r" % (until, [j["seq"] for j in got["jobs"]], exp))
    since = rows[1]["finished_at"]
    exp = [r["seq"] for r in rows if since <= r["finished_at"] < until and r["final"] == 1]
    got = c.ok("GET", q("/api/v1/jobs", since=since, until=until, final="true"))
    check([j["seq"] for j in got["jobs"]] == exp, "HOST: since&until&final=true gave %r, "
          "database %r" % ([j["seq"] for j in got["jobs"]], exp))
    mes = s.client("mes")
    r = mes.expect(200, "GET", q("/api/v1/jobs.csv", final="false"))
    lines = list(csv.reader(io.StringIO(r.text, newline="")))
    check(len(lines) == 2 and lines[1][1] == [x for x in rows if not x["final"]][0]["uuid"],
          "HOST: jobs.csv?final=false: %r" % lines)
    for bad in ({"final": "yes"}, {"final": "1"}, {"until": "tomorrow"}):
        c.expect(400, "GET", q("/api/v1/jobs", **bad), code="bad_request")
    # unknown parameters: refused on every endpoint, the parameter named
    for path, params in (("/api/v1/jobs", {"finale": "true"}),
                         ("/api/v1/jobs", {"Until": until}),
                         ("/api/v1/jobs.csv", {"status": "pass"}),
                         ("/api/v1/stats", {"from": until}),
                         ("/api/v1/station", {"verbose": "1"}),
                         ("/api/v1/slots", {"x": ""}),
                         ("/metrics", {"name": "a"})):
        cl = mes if path.endswith(".csv") else c
        r = cl.expect(400, "GET", q(path, **params), code="bad_request")
        name = list(params)[0]
        check("'%s'" % name in r.json.get("detail", ""),
              "HOST: %s?%s: the 400 does not name the parameter: %r" % (path, name, r.json))
    # the parameters an endpoint does read still work
    c.ok("GET", q("/api/v1/stats", since=since, until=until))


def case_wrong_chip_traced(ctx):
    """A wrong-chip board is refused after its MAC and revision are read: the database, the API
    and jobs.csv carry the board's own values, never "v0.0" or a null MAC (issue 15 item 9)."""
    s = Station(ctx, [SlotSpec("W1", chip="esp32", recipe="c3only.json")])
    s.write_recipe("c3only.json", "api-c3", "1.0.0", [s.app], chips=["esp32c3"])
    s.start()
    sim = s.slots[0].sim
    row = run_jobs(s, "W1", 1)[0]
    want = {"chip": "esp32", "mac": sim.ready["mac"], "revision": sim.ready["revision"],
            "result": "fail", "error_class": "wrong_chip"}
    check({k: row[k] for k in want} == want, "HOST: database row %r, expected %r"
          % ({k: row[k] for k in want}, want))
    job = s.client().ok("GET", "/api/v1/jobs/%s" % row["uuid"])
    check({k: job[k] for k in want} == want, "HOST: API job %r, expected %r"
          % ({k: job[k] for k in want}, want))
    r = s.client("mes").expect(200, "GET", "/api/v1/jobs.csv")
    rows = list(csv.DictReader(io.StringIO(r.text, newline="")))
    check(len(rows) == 1 and {k: rows[0][k] for k in want} == want, "HOST: jobs.csv %r" % rows)


def case_job_detail(ctx):
    s = mixed_station(ctx)
    s.start()
    c = s.client()
    rows = make_mixed_jobs(s, n_pass=1, n_fail=1)
    recipes = db_recipes(s)
    listed = {j["uuid"]: j for j in c.ok("GET", "/api/v1/jobs")["jobs"]}
    for row in rows:
        d = c.ok("GET", "/api/v1/jobs/%s" % row["uuid"])
        what = "job %s (%s)" % (row["uuid"], row["result"])
        job = {k: d[k] for k in JOB_FIELDS}
        check(job == listed[row["uuid"]], "HOST: %s: /jobs/{uuid} differs from /jobs:\n%r\n%r"
              % (what, job, listed[row["uuid"]]))
        check_job_vs_db(job, row, recipes, what)
        ev = d["events"]
        db_ev = ts.db_query(s.db, "SELECT * FROM job_events WHERE job_uuid = ? ORDER BY n",
                            (row["uuid"],))
        check([e["n"] for e in ev] == list(range(len(ev))) and len(ev) == len(db_ev),
              "HOST: %s: events n %r, database has %d events" % (what, [e["n"] for e in ev],
                                                                  len(db_ev)))
        for e, de in zip(ev, db_ev):
            check((e["t_ms"], e["kind"], e["state"]) == (de["t_ms"], de["kind"], de["state"]),
                  "HOST: %s: event %r, database %r" % (what, e, de))
            check(e["detail"] == (json.loads(de["detail"]) if de["detail"] else None),
                  "HOST: %s: event %d detail %r, database %r" % (what, e["n"], e["detail"],
                                                                 de["detail"]))
        check(all(a["t_ms"] <= b["t_ms"] for a, b in zip(ev, ev[1:])), "HOST: %s: t_ms goes "
              "back" % what)
        states = [e["state"] for e in ev if e["kind"] == "state"]
        check(states and states[0] == "open", "HOST: %s: first state %r (JOB_STATE_MAP starts "
              "with open)" % (what, states[:1]))
        db_sm = json.loads(row["state_ms"]) if row["state_ms"] else {}
        check(d["state_ms"] == db_sm, "HOST: %s: state_ms %r, database %r"
              % (what, d["state_ms"], db_sm))
        check(set(d["state_ms"]) <= set(states), "HOST: %s: state_ms names states %r the job "
              "never entered (%r)" % (what, sorted(d["state_ms"]), states))
        ims = ts.db_query(s.db, "SELECT * FROM job_images WHERE job_uuid = ? ORDER BY idx",
                          (row["uuid"],))
        got = [(i["index"], i["offset"], i["size"], i["compressed_size"], i["md5"],
                i["patched"], i["verified"]) for i in d["images"]]
        want = [(i["idx"], i["offset"], i["size"], i["compressed_size"], i["md5"],
                 bool(i["patched"]), bool(i["verified"])) for i in ims]
        check(got == want, "HOST: %s: images %r, database %r" % (what, got, want))
        if row["result"] == "pass":
            data = img.pad4(s.app.data if row["slot"] == "A1" else s.slow.data)
            check([(i["offset"], i["size"], i["md5"]) for i in d["images"]] ==
                  [(0x10000, len(data), hashlib.md5(data).hexdigest())],
                  "HOST: %s: images %r, the recipe writes %d bytes at 0x10000 with MD5 %s"
                  % (what, d["images"], len(data), hashlib.md5(data).hexdigest()))
        if row["result"] == "fail":
            check(d["error_class"] == "nak" and d["failed_state"] and d["hint"],
                  "HOST: %s: class %r failed_state %r hint %r" % (what, d["error_class"],
                                                                  d["failed_state"], d["hint"]))
    # a running job
    start_job(s, "R1")
    row = wait_running(s, "R1")
    d = c.ok("GET", "/api/v1/jobs/%s" % row["uuid"])
    check(d["seq"] is None and d["result"] == "running" and d["finished_at"] is None,
          "HOST: running job: seq %r result %r finished_at %r (docs: null, running, null)"
          % (d["seq"], d["result"], d["finished_at"]))
    check("data" in [e["state"] for e in d["events"]], "HOST: running job's events %r lack "
          "the data state the database has" % d["events"])
    c.expect(404, "GET", "/api/v1/jobs/00000000-0000-4000-8000-000000000000", code="not_found")
    s.wait(lambda: finished_count(s, "R1") == 2, 30, "R1's job")


def case_devices(ctx):
    s = mixed_station(ctx)
    s.start()
    c = s.client()
    run_jobs(s, "A1", 2)
    run_jobs(s, "F1", 1)
    run_jobs(s, "A1", 1)
    rows = sorted(s.db_finished(), key=lambda r: r["seq"])
    recipes = db_recipes(s)
    mac = s.slot("A1").sim.ready["mac"]
    mine = [r for r in rows if r["mac"] == mac]
    check(len(mine) == 3, "TEST: %d jobs of board %s" % (len(mine), mac))
    bare = mac.replace(":", "")
    for spelling in (mac, mac.upper(), mac.replace(":", "-"), mac.replace(":", "-").upper(),
                     bare, bare.upper(), mac[:8].upper() + mac[8:]):
        d = c.ok("GET", "/api/v1/devices/%s" % spelling)
        check(d["mac"] == mac, "HOST: /devices/%s: mac %r, expected %r" % (spelling, d["mac"],
                                                                           mac))
        check([j["uuid"] for j in d["jobs"]] == [r["uuid"] for r in mine],
              "HOST: /devices/%s: jobs %r, database (oldest first) %r"
              % (spelling, [j["uuid"] for j in d["jobs"]], [r["uuid"] for r in mine]))
        for j, r in zip(d["jobs"], mine):
            check_job_vs_db(j, r, recipes, "device job %s" % r["uuid"])
    other = s.slot("F1").sim.ready["mac"]
    d = c.ok("GET", "/api/v1/devices/%s" % other)
    check([j["result"] for j in d["jobs"]] == ["fail"], "HOST: F1's board: %r" % d)
    d = c.ok("GET", "/api/v1/devices/02:00:00:00:00:99")
    check(d == {"mac": "02:00:00:00:00:99", "jobs": []}, "HOST: unknown MAC: %r" % d)
    for bad in ("zz:00:00:00:00:01", "02:00:00:00:00", "0200000000011", "02:00:00:00:00:01:02",
                "02_00_00_00_00_01", "02:00-00:00:00:01x"):
        c.expect(400, "GET", "/api/v1/devices/%s" % urllib.parse.quote(bad), code="bad_request")


# ---------------------------------------------------------------- recipes, images

def case_recipes(ctx):
    s = Station(ctx, [SlotSpec("A1"), SlotSpec("B1", chip="esp32", recipe="slow.json")])
    s.start()
    c = s.client()
    eng = s.client("engineer")
    lst = c.ok("GET", "/api/v1/recipes")["recipes"]
    by = {x["hash"]: x for x in lst}
    for key, slot in (("quick", "A1"), ("slow", "B1")):
        h = s.recipe_hash(key)
        check(h in by, "HOST: the config's %s recipe %s is not listed: %r" % (key, h, lst))
        check(by[h]["slots"] == [slot] and by[h]["name"] == s.recipes[key]["name"] and
              by[h]["version"] == s.recipes[key]["version"],
              "HOST: recipe %s listed as %r" % (key, by[h]))
        one = c.ok("GET", "/api/v1/recipes/%s" % h)
        check(one["recipe"] == s.recipes[key]["recipe"], "HOST: /recipes/{hash} recipe %r, the "
              "file has %r" % (one["recipe"], s.recipes[key]["recipe"]))
        check({k: one[k] for k in by[h]} == by[h], "HOST: /recipes/{hash} %r differs from the "
              "list entry %r" % (one, by[h]))
    app_sha = hashlib.sha256(s.app.data).hexdigest()

    def recipe(**changes):
        r = {"name": "posted", "version": "9.9.9", "chip": ["esp32c3", "esp32"],
             "images": [{"offset": "0x10000", "file": "app.bin", "sha256": app_sha}]}
        for k, v in changes.items():
            if k == "image":
                r["images"][0].update(v)
            elif v is None:
                del r[k]
            else:
                r[k] = v
        return json.dumps(r, indent=1)  # str: sent as application/json
    text = recipe()
    h = hashlib.sha256(text.encode()).hexdigest()
    r = eng.expect(201, "POST", "/api/v1/recipes", body=text)
    check(r.json["hash"] == h and r.json["name"] == "posted" and r.json["version"] == "9.9.9"
          and r.json["slots"] == [], "HOST: POST recipe answered %r (hash must be the sha256 "
          "of the posted bytes, %s)" % (r.json, h))
    parse_iso(r.json["created_at"])
    r2 = eng.expect(200, "POST", "/api/v1/recipes", body=text)
    check(r2.json == r.json, "HOST: posting the same recipe again answered %r, first %r"
          % (r2.json, r.json))
    lst = c.ok("GET", "/api/v1/recipes")["recipes"]
    check(lst[0]["hash"] == h, "HOST: the newest recipe is not first: %r"
          % [x["hash"][:8] for x in lst])
    check([x["created_at"] for x in lst] == sorted([x["created_at"] for x in lst],
                                                   reverse=True),
          "HOST: recipes not newest first: %r" % [x["created_at"] for x in lst])
    one = c.ok("GET", "/api/v1/recipes/%s" % h)
    check(one["recipe"] == json.loads(text), "HOST: stored recipe %r, posted %r"
          % (one["recipe"], json.loads(text)))
    row = ts.db_query(s.db, "SELECT json FROM recipes WHERE hash = ?", (h,))
    check(row and row[0]["json"] == text, "HOST: the recipes table does not hold the "
          "posted bytes")
    # invalid recipes: 422 with errors naming JSON paths
    for name, body, path_rx, codes in (
            ("missing-version", recipe(version=None), r"^\$", ("recipe_invalid",)),
            ("bad-offset", recipe(image={"offset": "0x10001"}), r"^\$\.images\[0\]\.offset",
             ("recipe_invalid",)),
            ("unknown-chip", recipe(chip="esp99"), r"^\$\.chip", ("recipe_invalid",)),
            ("unknown-field", recipe(verfy=True), r"^\$\.verfy", ("recipe_invalid",))):
        r = eng.expect(422, "POST", "/api/v1/recipes", body=body, code=codes)
        errs = r.json.get("errors")
        check(isinstance(errs, list) and errs and all(
            isinstance(e, dict) and set(e) >= {"path", "message"} for e in errs),
            "HOST: %s recipe: errors %r" % (name, errs))
        check(any(re.search(path_rx, e["path"]) for e in errs), "HOST: %s recipe: no error at "
              "/%s/: %r" % (name, path_rx, errs))
        if name == "missing-version":
            check(any("version" in e["path"] + e["message"] for e in errs),
                  "HOST: missing version not named: %r" % errs)
    eng.expect(422, "POST", "/api/v1/recipes", body=recipe(image={"file": "nothere.bin"}),
               code="image_missing")
    eng.expect(422, "POST", "/api/v1/recipes",
               body=recipe(image={"sha256": hashlib.sha256(b"other").hexdigest()}),
               code=("recipe_invalid", "image_missing"))
    # confinement to the image directory
    secret = ctx.write_file("outside.bin", s.app.data)  # same bytes, right sha256, outside
    os.symlink(secret, os.path.join(s.image_dir, "link-out.bin"))
    os.symlink("app.bin", os.path.join(s.image_dir, "link-in.bin"))
    os.makedirs(os.path.join(s.image_dir, "sub"))
    for f in (secret, "../outside.bin", "sub/../../outside.bin", "link-out.bin",
              "./../outside.bin"):
        r = eng.expect(422, "POST", "/api/v1/recipes", body=recipe(image={"file": f}),
                       code="recipe_invalid")
        # docs: "422 recipe_invalid with the path": the JSON path of the offending entry
        check(any(e["path"] == "$.images[0].file" for e in r.json.get("errors") or []),
              "HOST: refusal of file %r does not give the path $.images[0].file: %s"
              % (f, json.dumps(r.json)[:400]))
    eng.expect(201, "POST", "/api/v1/recipes", body=recipe(image={"file": "link-in.bin"}))
    eng.expect(415, "POST", "/api/v1/recipes", body=text.encode(), content_type="text/plain",
               code="unsupported_media_type")
    eng.expect((400, 422), "POST", "/api/v1/recipes", body=b'{"name": "x",',
               content_type="application/json", code=("bad_request", "recipe_invalid"))
    c.expect(404, "GET", "/api/v1/recipes/%s" % ("0" * 64), code="not_found")
    n = len(c.ok("GET", "/api/v1/recipes")["recipes"])
    check(n == 4, "HOST: %d recipes listed, expected 4 (2 from the config, 2 posted)" % n)


def case_images_slash_names(ctx):
    """Names with an encoded slash are names (RFC 3986: %2F in a segment is data), refused like
    any other bad name, with a status schema/openapi.json documents for the operation."""
    s = Station(ctx, [SlotSpec("A1")])
    s.start()
    eng = s.client("engineer")
    data = b"slash"
    sha = hashlib.sha256(data).hexdigest()
    before = set(os.listdir(s.image_dir))
    for bad in ("a%2Fb", "..%2Foutside.bin", "sub%2F..%2F..%2Foutside.bin", "a%2f"):
        eng.expect((400, 404, 422), "PUT", q("/api/v1/images/%s" % bad, sha256=sha), body=data)
    check(set(os.listdir(s.image_dir)) == before and not os.path.exists(ctx.path("outside.bin")),
          "HOST: a refused name left a file")


def case_images(ctx):
    s = Station(ctx, [SlotSpec("A1")])
    s.start()
    c = s.client()
    eng = s.client("engineer")
    before = set(os.listdir(s.image_dir))
    data = img.prng_bytes("upload", 50001)
    sha = hashlib.sha256(data).hexdigest()
    r = eng.expect(201, "PUT", q("/api/v1/images/fw-1.0.bin", sha256=sha), body=data)
    check(r.json == {"name": "fw-1.0.bin", "size": len(data), "sha256": sha},
          "HOST: upload answered %r" % r.json)
    p = os.path.join(s.image_dir, "fw-1.0.bin")
    check(open(p, "rb").read() == data, "HOST: the uploaded file's bytes differ")
    check(set(os.listdir(s.image_dir)) == before | {"fw-1.0.bin"},
          "HOST: image directory after one upload: %r (leftover temp files?)"
          % sorted(set(os.listdir(s.image_dir)) - before))
    r = eng.expect(200, "PUT", q("/api/v1/images/fw-1.0.bin", sha256=sha), body=data)
    check(r.json == {"name": "fw-1.0.bin", "size": len(data), "sha256": sha},
          "HOST: identical re-upload answered %r" % r.json)
    other = data[:-1] + b"\x00"
    eng.expect(409, "PUT", q("/api/v1/images/fw-1.0.bin",
                             sha256=hashlib.sha256(other).hexdigest()), body=other,
               code="conflict")
    check(open(p, "rb").read() == data, "HOST: a refused upload changed the file")
    eng.expect(422, "PUT", q("/api/v1/images/fw-2.bin", sha256=sha), body=other,
               code="checksum_mismatch")
    check(not os.path.exists(os.path.join(s.image_dir, "fw-2.bin")),
          "HOST: an upload with the wrong sha256 left a file")
    eng.expect((400, 422), "PUT", "/api/v1/images/fw-3.bin", body=data)
    check(not os.path.exists(os.path.join(s.image_dir, "fw-3.bin")),
          "HOST: an upload without sha256 left a file")
    long_ok = "a" * 128
    eng.expect(201, "PUT", q("/api/v1/images/%s" % long_ok, sha256=sha), body=data)
    # Names that are not one path component of [A-Za-z0-9][A-Za-z0-9._-]{0,127}: refused
    # (docs/API.md does not say with which 4xx; any of these is accepted).
    for bad in (".hidden", "-dash", "..", "%2E%2E", "a%20b", "a" * 129, "x%00y", "%C3%A9.bin",
                "_x", "."):
        r = eng.expect((400, 404, 422), "PUT", q("/api/v1/images/%s" % bad, sha256=sha),
                       body=data)
    check(set(os.listdir(s.image_dir)) == before | {"fw-1.0.bin", long_ok},
          "HOST: refused names left files: %r" % sorted(set(os.listdir(s.image_dir)) - before))
    check(not os.path.exists(ctx.path("outside.bin")), "HOST: an upload escaped the directory")
    lst = c.ok("GET", "/api/v1/images")["images"]
    by = {x["name"]: x for x in lst}
    for name in ("fw-1.0.bin", long_ok, "app.bin"):
        check(name in by, "HOST: %s not in the image list %r" % (name, sorted(by)))
        with open(os.path.join(s.image_dir, name), "rb") as f:
            b = f.read()
        check(by[name]["size"] == len(b) and by[name]["sha256"] == hashlib.sha256(b).hexdigest(),
              "HOST: image %s listed as %r" % (name, by[name]))
        parse_iso(by[name]["modified_at"])
    # an upload with another content type than application/octet-stream, or none: 415
    eng.expect(415, "PUT", q("/api/v1/images/fw-4.bin", sha256=sha), body=data,
               content_type="application/json", code="unsupported_media_type")
    check(not os.path.exists(os.path.join(s.image_dir, "fw-4.bin")),
          "HOST: a refused upload left a file")
    # "The body must be sent as Content-Type: application/octet-stream; another type, or none,
    # is 415."
    eng.expect(415, "PUT", q("/api/v1/images/fw-5.bin", sha256=sha), body=data,
               headers={"Content-Type": None}, code="unsupported_media_type")


# ---------------------------------------------------------------- stats, metrics, csv

def stats_station(ctx):
    s = mixed_station(ctx)
    s.start()
    op = s.client("operator")
    # A new board (new MAC) for every passed job, so "passed boards" = passed jobs.
    for _ in range(6):
        ts.signal_sim(s.slot("A1").sim, signal.SIGUSR2)
        time.sleep(0.2)
        run_jobs(s, "A1", 1)
    run_jobs(s, "F1", 3)
    start_job(s, "R1", op)
    wait_running(s, "R1")
    op.expect(202, "POST", "/api/v1/slots/R1/cancel")
    s.wait(lambda: finished_count(s, "R1") == 1, 10, "the cancelled job")
    return s


def case_stats(ctx, dph_null_rule=False):
    """Stats against the database. The rule "devices_per_hour null when none" is checked only
    with dph_null_rule (its own case, stats-null-when-none), so that a difference there does
    not hide the rest."""
    s = stats_station(ctx)
    c = s.client()
    rows = s.db_finished()
    t_req = datetime.now(timezone.utc)
    stt = c.ok("GET", "/api/v1/stats")
    since, until = parse_iso(stt["since"]), parse_iso(stt["until"])
    check(abs((until - t_req).total_seconds()) < 5 and
          abs((until - since) - timedelta(hours=24)) < timedelta(seconds=5),
          "HOST: default window %s .. %s (docs: the last 24 h)" % (stt["since"], stt["until"]))
    passed = [r for r in rows if r["result"] == "pass"]
    check(len({r["mac"] for r in passed}) == 6, "TEST: the passed jobs are not 6 boards")
    bad = []  # every difference, reported together

    def want(cond, msg):
        if not cond:
            bad.append(msg)

    def expect_group(g, rs, what, w_since, w_until):
        for res in FINAL:
            n = len([r for r in rs if r["result"] == res])
            want(g[res] == n, "%s: %s = %r, database %d" % (what, res, g[res], n))
        p = len([r for r in rs if r["result"] == "pass"])
        f = len([r for r in rs if r["result"] == "fail"])
        if p + f == 0:
            want(g["yield"] is None, "%s: yield %r without pass/fail (docs: null)"
                 % (what, g["yield"]))
        else:
            want(g["yield"] is not None and abs(g["yield"] - p / (p + f)) < 1e-6,
                 "%s: yield %r, expected %r" % (what, g["yield"], p / (p + f)))
        durs = sorted(r["duration_ms"] for r in rs if r["result"] == "pass")
        if not durs:
            want(g["duration_ms"] == {"mean": None, "p95": None}, "%s: duration_ms %r without "
                 "a passed job (docs: null)" % (what, g["duration_ms"]))
            if dph_null_rule:
                want(g["devices_per_hour"] is None, "%s: devices_per_hour %r without a passed "
                     "job (docs: null when none)" % (what, g["devices_per_hour"]))
            return
        mean = sum(durs) / len(durs)
        want(g["duration_ms"]["mean"] is not None and abs(g["duration_ms"]["mean"] - mean) <= 1,
             "%s: mean %r, database %.1f" % (what, g["duration_ms"]["mean"], mean))
        want(g["duration_ms"]["p95"] is not None and
             durs[0] <= g["duration_ms"]["p95"] <= durs[-1],
             "%s: p95 %r outside [%d, %d]" % (what, g["duration_ms"]["p95"], durs[0], durs[-1]))
        # docs: passed jobs / hours between the first job's start (not before since) and the
        # window's end
        first = min(parse_iso(r["started_at"]) for r in rs)
        hours = (w_until - max(first, w_since)).total_seconds() / 3600
        dph = p / hours
        want(g["devices_per_hour"] is not None and abs(g["devices_per_hour"] - dph) <= 0.05 * dph,
             "%s: devices_per_hour %r, expected about %.1f (%d passed in %.5f h)"
             % (what, g["devices_per_hour"], dph, p, hours))

    def expect_stats(st_, rs, what):
        w_since, w_until = parse_iso(st_["since"]), parse_iso(st_["until"])
        expect_group(st_["station"], rs, "%s station" % what, w_since, w_until)
        slots = {x["name"]: x for x in st_["slots"]}
        for name in ("A1", "F1", "R1"):
            if name not in slots:
                bad.append("%s: no slot %s in %r" % (what, name, sorted(slots)))
                continue
            expect_group(slots[name], [r for r in rs if r["slot"] == name],
                         "%s slot %s" % (what, name), w_since, w_until)
        fails = {}
        for r in rs:
            if r["result"] == "fail":
                fails[r["error_class"]] = fails.get(r["error_class"], 0) + 1
        want(st_["failures_by_class"] == fails, "%s: failures_by_class %r, database %r"
             % (what, st_["failures_by_class"], fails))
    expect_stats(stt, rows, "24 h")
    # an explicit window after everything: empty
    later = iso(datetime.now(timezone.utc) + timedelta(hours=1))
    e = c.ok("GET", q("/api/v1/stats", since=later,
                      until=iso(datetime.now(timezone.utc) + timedelta(hours=2))))
    want(e["since"] == later, "since %r, asked %r" % (e["since"], later))
    expect_stats(e, [], "empty window")
    # a window around the failed jobs only (finished_at inside the window counts)
    f_rows = sorted((r for r in rows if r["slot"] == "F1"), key=lambda r: r["seq"])
    w0, w1 = f_rows[0]["started_at"], f_rows[-1]["finished_at"]
    w = c.ok("GET", q("/api/v1/stats", since=w0, until=w1))
    expect_stats(w, [r for r in rows if w0 <= r["finished_at"] <= w1], "window %s..%s"
                 % (w0, w1))
    for bad_param in ({"since": "today"}, {"until": "2026-02-30T00:00:00Z"},
                      {"since": "2026-11-21T25:00:00Z"}):
        r = c.request("GET", q("/api/v1/stats", **bad_param))
        want(r.status == 400, "GET /api/v1/stats?%s answered %s (docs: 400)"
             % (urllib.parse.urlencode(bad_param), r.status))
    check(not bad, "HOST: %d stats values differ from docs/API.md and the database:\n  %s"
          % (len(bad), "\n  ".join(bad)))


def case_stats_null_when_none(ctx):
    case_stats(ctx, dph_null_rule=True)


PROM_SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$')
PROM_LABEL = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(,|$)')


def parse_prometheus(text):
    """Prometheus text format 0.0.4: {name: type}, [(name, {labels}, value)]."""
    types, helps, samples = {}, {}, []
    for ln, line in enumerate(text.split("\n"), 1):
        if line == "":
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] in ("TYPE", "HELP"):
                if parts[1] == "TYPE":
                    check(len(parts) == 4 and parts[3] in ("counter", "gauge", "histogram",
                                                           "summary", "untyped"),
                          "HOST: metrics line %d: bad TYPE %r" % (ln, line))
                    check(parts[2] not in types, "HOST: metrics: two TYPE lines for %s"
                          % parts[2])
                    types[parts[2]] = parts[3]
                else:
                    helps[parts[2]] = parts[3] if len(parts) > 3 else ""
            continue
        m = PROM_SAMPLE.match(line)
        check(m, "HOST: metrics line %d is not a sample: %r" % (ln, line))
        labels = {}
        body = m.group(3) or ""
        pos = 0
        while pos < len(body):
            lm = PROM_LABEL.match(body, pos)
            check(lm, "HOST: metrics line %d: bad labels %r" % (ln, body))
            labels[lm.group(1)] = lm.group(2).replace('\\"', '"').replace("\\n", "\n") \
                .replace("\\\\", "\\")
            pos = lm.end()
        v = m.group(4)
        try:
            val = float(v) if v not in ("+Inf", "-Inf", "NaN") else float(v.lower())
        except ValueError:
            raise TestFailure("HOST: metrics line %d: value %r" % (ln, v))
        samples.append((m.group(1), labels, val))
    return types, helps, samples


def case_metrics(ctx):
    s = stats_station(ctx)
    c = s.client()
    c.expect(404, "GET", "/api/v1/slots/NOPE1")
    c.expect(404, "GET", "/api/v1/slots/NOPE2")
    es = EventStream(c)
    es.next(what="hello")
    r = c.expect(200, "GET", "/metrics")
    check(r.media() == "text/plain" and "version=0.0.4" in r.ctype.replace(" ", ""),
          "HOST: /metrics content type %r" % r.ctype)
    types, helps, samples = parse_prometheus(r.text)
    for name, typ in (("espstation_jobs_total", "counter"), ("espstation_slot_state", "gauge"),
                      ("espstation_slot_bytes_done", "gauge"),
                      ("espstation_job_duration_seconds", "histogram"),
                      ("espstation_http_requests_total", "counter"),
                      ("espstation_events_clients", "gauge"),
                      ("espstation_build_info", "gauge")):
        check(types.get(name) == typ, "HOST: metric %s has TYPE %r, expected %s"
              % (name, types.get(name), typ))
    check("espstation_uptime_seconds" in types, "HOST: no espstation_uptime_seconds")

    def get(name):
        return [(lb, v) for n, lb, v in samples if n == name]
    rows = s.db_finished()
    want = {}
    for row in rows:
        want[(row["slot"], row["result"])] = want.get((row["slot"], row["result"]), 0) + 1
    got = {(lb["slot"], lb["result"]): v for lb, v in get("espstation_jobs_total")}
    for k, n in want.items():
        check(got.get(k) == n, "HOST: espstation_jobs_total%r = %r, database %d"
              % (k, got.get(k), n))
    check(all(v == want.get(k, 0) for k, v in got.items()), "HOST: espstation_jobs_total %r, "
          "database %r" % (got, want))
    slots = {x["name"]: x["state"] for x in c.ok("GET", "/api/v1/slots")["slots"]}
    states = {}
    for lb, v in get("espstation_slot_state"):
        check(v in (0, 1), "HOST: slot_state value %r" % v)
        states.setdefault(lb["slot"], {})[lb["state"]] = v
    for name, state in slots.items():
        check(states.get(name, {}).get(state) == 1 and sum(states[name].values()) == 1,
              "HOST: espstation_slot_state for %s: %r, the slot is %s"
              % (name, states.get(name), state))
    check({lb["slot"] for lb, _ in get("espstation_slot_bytes_done")} == set(slots),
          "HOST: espstation_slot_bytes_done slots %r" % get("espstation_slot_bytes_done"))
    buckets = [(lb["le"], v) for lb, v in get("espstation_job_duration_seconds_bucket")]
    check([b for b, _ in buckets] == ["1", "2", "5", "10", "20", "30", "60", "120", "+Inf"] or
          [float(b) for b, _ in buckets] == [1, 2, 5, 10, 20, 30, 60, 120, float("inf")],
          "HOST: histogram buckets %r, docs: 1,2,5,10,20,30,60,120,+Inf" % buckets)
    vals = [v for _, v in buckets]
    check(vals == sorted(vals), "HOST: histogram buckets not cumulative: %r" % buckets)
    passed = [r for r in rows if r["result"] == "pass"]
    count = get("espstation_job_duration_seconds_count")
    total = get("espstation_job_duration_seconds_sum")
    check(count and count[0][1] == len(passed) == vals[-1],
          "HOST: histogram count %r, +Inf %r, passed jobs since start %d"
          % (count, vals[-1], len(passed)))
    want_sum = sum(r["duration_ms"] for r in passed) / 1000.0
    check(total and abs(total[0][1] - want_sum) < 0.05 + 0.01 * want_sum,
          "HOST: histogram sum %r, database %.3f s" % (total, want_sum))
    for le, v in buckets:
        n = len([r for r in passed if r["duration_ms"] / 1000.0 <= float(le)])
        check(v == n, "HOST: bucket le=%s is %r, database %d" % (le, v, n))
    up = get("espstation_uptime_seconds")
    check(up and 0 < up[0][1] < 600, "HOST: uptime %r" % up)
    codes = {lb["code"]: v for lb, v in get("espstation_http_requests_total")}
    check(codes.get("404") == 2, "HOST: http_requests_total{code=404} %r after exactly two "
          "404 answers" % codes.get("404"))
    check(sum(codes.values()) >= c.count + s.client("operator").count,
          "HOST: http_requests_total %r below the requests made" % codes)
    check([v for _, v in get("espstation_events_clients")] == [1],
          "HOST: events_clients %r with one stream open" % get("espstation_events_clients"))
    bi = get("espstation_build_info")
    version = c.ok("GET", "/api/v1/station")["version"]
    check(len(bi) == 1 and bi[0][0].get("version") == version and bi[0][1] == 1,
          "HOST: build_info %r, station version %r" % (bi, version))
    es.close()

    def clients_zero():
        _, _, smp = parse_prometheus(c.expect(200, "GET", "/metrics").text)
        return [v for n, _, v in smp if n == "espstation_events_clients"] == [0]
    # The daemon notices a gone client only when a write to it fails: the keep-alive comments
    # (every 15 s, docs/API.md) find it within two of them.
    t0 = time.monotonic()
    s.wait(clients_zero, 40, "espstation_events_clients back to 0 after the stream closed",
           poll=0.5)
    print("events_clients back to 0 %.1f s after the client closed" % (time.monotonic() - t0))


def csv_value(v):
    """A JSON value as jobs.csv writes it: null empty, booleans as in JSON."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def case_jobs_csv(ctx):
    s = stats_station(ctx)
    mes = s.client("mes")
    jobs = mes.ok("GET", "/api/v1/jobs")["jobs"]
    r = mes.expect(200, "GET", "/api/v1/jobs.csv")
    check(r.media() == "text/csv" and "charset=utf-8" in r.ctype.replace(" ", "").lower(),
          "HOST: jobs.csv content type %r" % r.ctype)
    rows = list(csv.reader(io.StringIO(r.text, newline="")))
    check(rows and rows[0] == JOB_FIELDS, "HOST: jobs.csv header %r, docs (Job order) %r"
          % (rows[:1], JOB_FIELDS))
    check(len(rows) - 1 == len(jobs), "HOST: jobs.csv has %d rows, /jobs %d"
          % (len(rows) - 1, len(jobs)))
    for row, j in zip(rows[1:], jobs):
        want = [csv_value(j[k]) for k in JOB_FIELDS]
        check(row == want, "HOST: jobs.csv row\n%r\n/jobs says\n%r" % (row, want))
    check(r.text.endswith("\r\n") or r.text.endswith("\n"), "HOST: jobs.csv does not end "
          "with a line break")
    # paging and filters: the same as /jobs
    for params in ({"limit": 3}, {"after": jobs[2]["seq"], "limit": 4}, {"result": "fail"},
                   {"slot": "A1"}, {"mac": jobs[0]["mac"]}, {"since": jobs[5]["finished_at"]},
                   {"after": jobs[-1]["seq"]}):
        r = mes.expect(200, "GET", q("/api/v1/jobs.csv", **params))
        got = list(csv.reader(io.StringIO(r.text, newline="")))
        want = mes.ok("GET", q("/api/v1/jobs", **params))["jobs"]
        check(got[0] == JOB_FIELDS and [x[0] for x in got[1:]] ==
              [str(j["seq"]) for j in want],
              "HOST: jobs.csv?%s seqs %r, /jobs %r" % (urllib.parse.urlencode(params),
                                                       [x[0] for x in got[1:]],
                                                       [j["seq"] for j in want]))
    mes.expect(200, "GET", q("/api/v1/jobs.csv", limit=100000))
    mes.expect(400, "GET", q("/api/v1/jobs.csv", limit=100001), code="bad_request")
    mes.expect(400, "GET", q("/api/v1/jobs.csv", limit="x"), code="bad_request")
    eng = s.client("engineer")
    r = eng.expect(200, "GET", "/api/v1/jobs.csv")
    check(len(list(csv.reader(io.StringIO(r.text, newline="")))) == len(jobs) + 1,
          "HOST: engineer's jobs.csv differs")


# ---------------------------------------------------------------- static files

def case_static(ctx):
    web = ctx.path("web")
    os.makedirs(os.path.join(web, "sub"))
    files = {"index.html": b"<!doctype html><title>api test</title><p>index</p>\n",
             "app.js": b"console.log('api test');\n", "style.css": b"p { color: red }\n",
             "sub/page.html": b"<!doctype html><p>sub page</p>\n"}
    for name, data in files.items():
        with open(os.path.join(web, name), "wb") as f:
            f.write(data)
    secret = ctx.write_file("secret.txt", b"SECRET-OUTSIDE-THE-WEB-ROOT\n")
    os.symlink(secret, os.path.join(web, "leak.txt"))
    s = Station(ctx, [SlotSpec("A1")], web_root=web)
    s.start()
    c = s.client()
    for path, name in (("/", "index.html"), ("/index.html", "index.html")):
        r = c.expect(200, "GET", path)
        check(r.raw == files[name], "HOST: GET %s body %r" % (path, r.raw[:200]))
        check(r.media() == "text/html", "HOST: GET %s content type %r" % (path, r.ctype))
        check("no-cache" in (r.headers.get("cache-control") or ""),
              "HOST: GET %s Cache-Control %r (docs: no-cache)" % (path,
                                                                 r.headers.get("cache-control")))
    for path, types in (("/app.js", ("application/javascript", "text/javascript")),
                        ("/style.css", ("text/css",)), ("/sub/page.html", ("text/html",))):
        r = c.expect(200, "GET", path)
        check(r.raw == files[path[1:]] and r.media() in types,
              "HOST: GET %s: %s %r" % (path, r.ctype, r.raw[:100]))
    for path in ("/leak.txt", "/../secret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt",
                 "/sub/../../secret.txt", "/sub/%2e%2e/%2e%2e/secret.txt",
                 "/sub/..%2f..%2fsecret.txt", "/nope.html", "/sub/nope.js"):
        r = c.expect(404, "GET", path)
        check(b"SECRET" not in r.raw, "HOST: GET %s leaked the file outside the web root"
              % path)


# ---------------------------------------------------------------- event stream

EVENT_KEYS = {
    "hello": {"seq", "boot_id", "time", "station"},
    "slot": {"seq", "boot_id", "time", "slot"},
    "progress": {"seq", "boot_id", "time", "slot", "job_uuid", "stage", "bytes_done",
                 "bytes_total", "percent", "rate_bps"},
    "job": {"seq", "boot_id", "time", "job"},
    "log": {"seq", "boot_id", "time", "slot", "job_uuid", "level", "message"},
    "reset": {"seq", "boot_id", "time", "reason"},
}
# Members of event data that are documented API objects: checked with the component schemas.
EVENT_OBJECTS = {"hello": ("station", "Station"), "slot": ("slot", "Slot"), "job": ("job", "Job")}


def event_schemas(api):
    """The event payload schemas schema/openapi.json gives in the stream's content entry."""
    op = api.doc["paths"]["/api/v1/events"]["get"]
    media = op["responses"]["200"]["content"]["text/event-stream"]
    return {k: api.deref(v) for k, v in media.get("x-event-schemas", {}).items()}


def event_checker(api):
    """Checks every event received: documented type and members, id = <boot_id>:<seq> matching
    the data, ISO time, and the embedded Station/Slot/Job against schema/openapi.json."""
    def run(ev):
        check(ev.type in EVENT_KEYS, "HOST: undocumented event type %r: %s" % (ev.type, ev.raw))
        d = ev.data
        check(isinstance(d, dict) and set(d) == EVENT_KEYS[ev.type],
              "HOST: %s event members %r, docs/API.md: %r" % (ev.type, sorted(d) if
                                                               isinstance(d, dict) else d,
                                                               sorted(EVENT_KEYS[ev.type])))
        check(isinstance(d["seq"], int) and BOOT_RE.match(str(d["boot_id"])),
              "HOST: %s event seq/boot_id %r/%r" % (ev.type, d["seq"], d["boot_id"]))
        check(ev.id == "%s:%d" % (d["boot_id"], d["seq"]), "HOST: %s event id %r, data says "
              "boot_id %r seq %r" % (ev.type, ev.id, d["boot_id"], d["seq"]))
        parse_iso(d["time"])
        sch = event_schemas(api).get(ev.type)
        check(sch is not None, "SCHEMA: no x-event-schemas entry for event %r" % ev.type)
        api.validate_instance(sch, d, "the data of a %s event" % ev.type)
        if ev.type == "slot":
            check_slot_shape(d["slot"], "slot event %s" % ev.id)
        if ev.type in EVENT_OBJECTS:
            member, schema = EVENT_OBJECTS[ev.type]
            sch = api.schema_named(schema)
            check(sch is not None, "SCHEMA: no components.schemas.%s" % schema)
            api.validate_instance(sch, d[member], "the %s of a %s event" % (member, ev.type))
        if ev.type == "progress":
            check(0 <= d["bytes_done"] <= d["bytes_total"] and
                  abs(d["percent"] - 100.0 * d["bytes_done"] / max(d["bytes_total"], 1)) < 0.2,
                  "HOST: progress event %s" % ev.raw)
        if ev.type == "log":
            check(d["level"] in ("warn", "error"), "HOST: log level %r" % d["level"])
    return run


def stream(c, **kw):
    es = EventStream(c, validate_event=event_checker(c.api), **kw)
    check(es.status == 200, "HOST: GET /api/v1/events answered %s" % es.status)
    return es


def seq_of(ev):
    return ev.data["seq"]


def check_contiguous(evs, what, first=None):
    seqs = [seq_of(e) for e in evs]
    if first is not None and seqs:
        check(seqs[0] == first, "HOST: %s: first seq %d, expected %d" % (what, seqs[0], first))
    check(all(b == a + 1 for a, b in zip(seqs, seqs[1:])),
          "HOST: %s: seqs not contiguous: %r" % (what, seqs))


def dedupe(xs):
    out = []
    for x in xs:
        if not out or out[-1] != x:
            out.append(x)
    return out


def is_subsequence(sub, seq):
    it = iter(seq)
    return all(x in it for x in sub)


def case_events_order(ctx):
    s = Station(ctx, [SlotSpec("A1"), SlotSpec("R1", chip="esp32", transport="rfc2217",
                                                realtime=True, recipe="slow.json"),
                      SlotSpec("F1", chip="esp32", faults=[NAK_FAULT])])
    s.start()
    c = s.client()
    es = stream(c)
    hello = es.next(what="hello")
    check(hello.type == "hello", "HOST: first event %r, docs: hello" % hello)
    station = c.ok("GET", "/api/v1/station")
    check(hello.data["station"]["id"] == station["id"] and
          hello.data["boot_id"] == station["boot_id"], "HOST: hello %s, station %r"
          % (hello.raw[:300], station))
    allev = [hello]  # hello carries the seq the stream continues after (docs/API.md)
    for slot, timeout in (("R1", 40), ("A1", 20), ("F1", 20)):
        sl = start_job(s, slot)
        uuid = sl["job_uuid"]
        evs = es.until(lambda e: e.type == "job" and e.data["job"]["uuid"] == uuid, timeout,
                       "the job event of %s's job" % slot)
        allev += evs
        result = "fail" if slot == "F1" else "pass"
        row = [r for r in s.db_finished() if r["uuid"] == uuid]
        check(row and row[0]["result"] == result, "HOST: the job event came before the row "
              "was committed (database: %r)" % row)
        job = evs[-1].data["job"]
        check(job["seq"] == row[0]["seq"] and job["result"] == result,
              "HOST: job event %r, database seq %r" % (job, row[0]["seq"]))
        logs = [e for e in evs if e.type == "log"]
        check(all(e.data["slot"] == slot and e.data["job_uuid"] == uuid for e in logs),
              "HOST: log events of another job during %s's: %r" % (slot, logs))
        if result == "fail":
            check(any(e.data["level"] == "error" for e in logs), "HOST: %s's job failed (%s) "
                  "without a log event of level error (docs: log — warnings and errors of a "
                  "job): %r" % (slot, row[0]["error_class"], logs))
        check_job_vs_db(job, row[0], db_recipes(s), "job event")
        check_contiguous(allev, "the stream (hello, then the events up to %s's job)" % slot)
        mine = [e for e in evs if (e.type == "slot" and e.data["slot"]["name"] == slot) or
                (e.type == "progress" and e.data["slot"] == slot)]
        stages = dedupe([e.data["slot"]["stage"] for e in mine if e.type == "slot" and
                         e.data["slot"]["state"] == "running" and
                         e.data["slot"]["job_uuid"] == uuid])
        prog = [e for e in mine if e.type == "progress"]
        detail = c.ok("GET", "/api/v1/jobs/%s" % uuid)
        states = dedupe([e["state"] for e in detail["events"] if e["kind"] == "state"])
        ctx.log("%s: slot-event stages %r; job states %r; %d progress events"
                % (slot, stages, states, len(prog)))
        check(len(stages) >= 3, "HOST: only %d stages of %s's job came as slot events: %r "
              "(job states %r)" % (len(stages), slot, stages, states))
        check(is_subsequence(stages, states), "HOST: the stages of %s's slot events %r are not "
              "in the order of the job's events %r" % (slot, stages, states))
        # Every state change of the job is a stage change of its slot (docs: "slot — a slot's
        # state or stage changed"); the final "done" may come when the slot has left running.
        want = [x for x in states if x != "idle"]
        check(stages == want or (want and want[-1] == "done" and stages == want[:-1]),
              "HOST: %s's slot events show stages %r, the job went through %r"
              % (slot, stages, want))
        for e in prog:
            check(e.data["job_uuid"] == uuid and e.data["stage"] in states,
                  "HOST: progress event %s" % e.raw)
        done = [e.data["bytes_done"] for e in prog]
        check(done == sorted(done), "HOST: progress bytes_done goes back: %r" % done)
        times = [parse_iso(e.data["time"]) for e in prog]
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
        check(all(g >= 0.24 for g in gaps), "HOST: progress events closer than 250 ms: %r"
              % [round(g, 3) for g in gaps])
        if slot == "R1":
            check(len(prog) >= 5, "HOST: only %d progress events during a ~6 s write"
                  % len(prog))
            # 115200 baud, 10 bits a byte, incompressible data: at most 11520 image bytes/s
            rates = [e.data["rate_bps"] for e in prog if e.data["rate_bps"] is not None]
            check(rates and all(2000 <= r <= 14000 for r in rates[1:]),
                  "HOST: rate_bps %r for a 115200-baud write of incompressible data" % rates)
        last_prog = max([evs.index(e) for e in prog] or [-1])
        check(last_prog < len(evs) - 1, "HOST: progress after the job event")
        # after the job: a slot event with the slot no longer running and this job as last
        after = es.until(lambda e: e.type == "slot" and e.data["slot"]["name"] == slot and
                         e.data["slot"]["state"] != "running", 10,
                         "%s's slot event after the job" % slot)
        allev += after
        sl = after[-1].data["slot"]
        check(sl["last"] and sl["last"]["job_uuid"] == uuid, "HOST: slot event after the job: "
              "last %r" % sl["last"])
    es.close()


def case_events_resume(ctx):
    s = Station(ctx, [SlotSpec("R1", chip="esp32", transport="rfc2217", realtime=True,
                               recipe="slow.json"), SlotSpec("A1")])
    s.start()
    c = s.client()
    ref = stream(c)  # stays connected the whole time: the reference
    h0 = ref.next(what="hello")
    a = stream(c)
    ha = a.next(what="hello")
    check(ha.type == "hello" and seq_of(ha) == seq_of(h0), "HOST: two hellos with nothing in "
          "between: seqs %d and %d (docs: the latest event's seq)" % (seq_of(h0), seq_of(ha)))
    uuid = start_job(s, "R1")["job_uuid"]
    got_a = a.until(lambda e: e.type == "progress", 20, "the first progress event")
    got_a += [a.next(what="two more events"), a.next(what="two more events")]
    check_contiguous([ha] + got_a, "hello and the first events")
    last_id = got_a[-1].id
    a.close()
    time.sleep(1.2)  # the job goes on: events happen while the client is away
    t_back = datetime.now(timezone.utc)
    b = stream(c, last_event_id=last_id)
    hb = b.next(what="hello on the resumed stream")
    check(hb.type == "hello" and seq_of(hb) == seq_of(got_a[-1]),
          "HOST: resumed after %s: first event %s (docs: hello carrying the requested seq)"
          % (last_id, hb.raw[:200]))
    got_b = b.until(lambda e: e.type == "job" and e.data["job"]["uuid"] == uuid, 30,
                    "the job event after resuming")
    check(all(e.type != "reset" for e in got_b), "HOST: a resume in the same boot gave reset")
    check(seq_of(got_b[0]) == seq_of(got_a[-1]) + 1, "HOST: resumed after %s but the first "
          "event is %s (missed or repeated events)" % (last_id, got_b[0].id))
    check_contiguous(got_a + got_b, "events before and after the reconnect")
    check(parse_iso(got_b[0].data["time"]) < t_back, "HOST: the first event after resuming "
          "(%s) is not one from the 1.2 s absence (no replay?)" % got_b[0].raw[:200])
    ref_evs = ref.until(lambda e: e.type == "job" and e.data["job"]["uuid"] == uuid, 10,
                        "the job event on the reference stream")
    ref_by = {seq_of(e): (e.type, e.data) for e in ref_evs}
    for e in got_a + got_b:
        check(ref_by.get(seq_of(e)) == (e.type, e.data), "HOST: event %s differs from the "
              "uninterrupted stream's: %s / %r" % (e.id, e.raw[:200], ref_by.get(seq_of(e))))
    # ?last_event_id= works the same, from the middle of what b saw
    mid = got_b[len(got_b) // 2]
    q3 = stream(c, query={"last_event_id": mid.id})
    h3 = q3.next(what="hello")
    check(h3.type == "hello" and seq_of(h3) == seq_of(mid), "HOST: ?last_event_id=%s: first "
          "event %s" % (mid.id, h3.raw[:200]))
    got_q = q3.until(lambda e: e.type == "job" and e.data["job"]["uuid"] == uuid, 10,
                     "the job event via ?last_event_id=")
    want = [(e.type, e.data) for e in got_b if seq_of(e) > seq_of(mid)]
    check([(e.type, e.data) for e in got_q] == want, "HOST: ?last_event_id=%s replayed %r, "
          "expected %r" % (mid.id, [e.id for e in got_q], [seq_of(e) for e in got_b
                                                           if seq_of(e) > seq_of(mid)]))
    # and live events continue on a resumed stream
    uuid2 = start_job(s, "A1")["job_uuid"]
    more = b.until(lambda e: e.type == "job" and e.data["job"]["uuid"] == uuid2, 20,
                   "a later job's event on the resumed stream")
    check_contiguous(got_b + more, "the resumed stream going on live")
    del h0, ha
    for x in (ref, b, q3):
        x.close()


def case_events_restart(ctx):
    s = Station(ctx, [SlotSpec("A1")])
    s.start()
    c = s.client()
    for how in ("term", "kill"):
        es = stream(c)
        h1 = es.next(what="hello")
        uuid = start_job(s, "A1")["job_uuid"]
        evs = es.until(lambda e: e.type == "job" and e.data["job"]["uuid"] == uuid, 20,
                       "the job event")
        last = evs[-1].id
        if how == "term":
            s.stop()
            deadline = time.monotonic() + 5
            ev = None
            while time.monotonic() < deadline:
                ev = es.next_or_none(max(0.01, deadline - time.monotonic()))
                if ev is None or ev == "closed":
                    break
            check(ev == "closed", "HOST: the event stream is still open 5 s after SIGTERM")
            ctx.log("stream end after SIGTERM: %s" % (es.error or "clean"))
        else:
            s.kill9()
        es.close()
        s.start()
        kw = {"last_event_id": last} if how == "term" else {"query": {"last_event_id": last}}
        es2 = stream(c, **kw)
        h2 = es2.next(what="hello after the restart")
        check(h2.type == "hello" and h2.data["boot_id"] != h1.data["boot_id"],
              "HOST: after a restart (%s): first event %s (old boot %s)"
              % (how, h2.raw[:200], h1.data["boot_id"]))
        r = es2.next(what="reset after hello")
        check(r.type == "reset" and r.data["boot_id"] == h2.data["boot_id"] and
              isinstance(r.data["reason"], str) and r.data["reason"] and
              seq_of(r) == seq_of(h2),
              "HOST: resuming %s after a restart (%s): second event %s after %s, docs: reset "
              "with hello's seq" % (last, how, r.raw[:200], h2.raw[:120]))
        uuid = start_job(s, "A1")["job_uuid"]
        live = es2.until(lambda e: e.type == "job" and e.data["job"]["uuid"] == uuid, 20,
                         "a live job event after the reset")
        check_contiguous([r] + live, "the stream after hello + reset")
        es2.close()
        # a fresh client (no Last-Event-ID) gets hello and no reset
        es3 = stream(c)
        es3.next(what="hello")
        ev = es3.next_or_none(0.5)
        check(ev is None or ev.type != "reset", "HOST: a new client without Last-Event-ID got "
              "reset")
        es3.close()
    # Malformed resume points: the parameter is a 400, the header gives hello + reset.
    for bad in ("garbage", "%s:" % h2.data["boot_id"], "12345678:-1", ":5"):
        es = EventStream(c, query={"last_event_id": bad})
        check(es.status == 400 and es.response.problem()["code"] == "bad_request",
              "HOST: ?last_event_id=%s answered %s (docs: 400)" % (bad, es.status))
        es = stream(c, last_event_id=bad)
        h = es.next(what="hello")
        r = es.next(what="reset")
        check(h.type == "hello" and r.type == "reset", "HOST: Last-Event-ID: %s gave %s then %s "
              "(docs: hello + reset)" % (bad, h.type, r.type))
        es.close()


def case_events_dropped(ctx, full=False):
    """docs: the daemon keeps the last 4096 events; a resume point older than that gets hello +
    reset, a kept one is replayed: 50 and 300 events back, and with full=True (its own case,
    events-replay-full) all 4096, read as fast as possible."""
    specs = [SlotSpec("M%d" % i, chip=chip) for i, chip in
             enumerate(("esp32c3", "esp32", "esp32s3", "esp8266"), 1)]
    s = Station(ctx, specs, app_size=4096)
    s.start()
    c = s.client()

    def latest():
        es = stream(c)
        h = es.next(what="hello")
        es.close()
        return seq_of(h)
    driver = Driver(s, [x.name for x in specs], [])
    driver.start()
    try:
        s.wait(lambda: driver.error is None and latest() > 4096 + 200, 80,
               "more than 4296 events", poll=0.5)
    finally:
        driver.stop.set()
        driver.join(10)
    check(driver.error is None, "Driver: %s" % driver.error)
    s.wait(lambda: all(r["result"] != "running" for r in s.db_jobs()), 20, "no job running")
    time.sleep(0.5)
    top = latest()
    time.sleep(0.3)
    check(latest() == top, "TEST: events still happening with no job running")
    boot = c.ok("GET", "/api/v1/station")["boot_id"]
    ctx.log("%d events, %d jobs" % (top, len(s.db_finished())))
    # dropped: the event after the resume point is no longer kept
    for resume in (1, top - 4097):
        es = stream(c, last_event_id="%s:%d" % (boot, resume))
        h, r = es.next(what="hello"), es.next(what="reset")
        check(h.type == "hello" and r.type == "reset" and seq_of(h) == seq_of(r) == top,
              "HOST: resume from %d of %d (kept: the last 4096): %s then %s (docs: hello + "
              "reset at the latest seq)" % (resume, top, h.raw[:100], r.raw[:100]))
        es.close()
    # kept: replayed in full, in order, then live
    for resume in ((top - 4096,) if full else (top - 50, top - 300)):
        es = stream(c, query={"last_event_id": "%s:%d" % (boot, resume)})
        h = es.next(what="hello")
        check(h.type == "hello" and seq_of(h) == resume, "HOST: resume from %d: %s"
              % (resume, h.raw[:100]))
        got = es.until(lambda e: seq_of(e) >= top, 30, "the replay up to seq %d" % top)
        check(all(e.type != "reset" for e in got), "HOST: reset while resuming from a kept "
              "event (%d of %d)" % (resume, top))
        check_contiguous([h] + got, "replay from %d" % resume)
        es.close()


def case_events_replay_full(ctx):
    case_events_dropped(ctx, full=True)


# ---------------------------------------------------------------- roles

WHO = ("none", "viewer", "mes", "operator", "engineer", "wrong")


def expected_status(need, who, read_access, ok):
    """What docs/API.md ("Authentication and roles") says a request gets: a tuple of statuses
    and a note when the document allows more than one reading (reported, never silently
    chosen from the daemon's behaviour)."""
    if need == "static":  # "always open so the page can load and ask for a token"
        return (ok,), None
    if need == "auth":  # "open to everyone; a token the file does not list: 401"
        return ((401,), None) if who == "wrong" else ((ok,), None)
    if need in ("operator", "engineer"):  # "Writes always need a token of the right role"
        if who in ("none", "wrong"):
            return (401,), None
        allowed = ("operator", "engineer") if need == "operator" else ("engineer",)
        return ((ok,), None) if who in allowed else ((403,), None)
    if need == "read":
        if read_access == "token":
            return ((401,), None) if who in ("none", "wrong") else ((ok,), None)
        if who == "wrong":
            return (ok, 401), ("an unknown token on an open read: 401 only 'where one is "
                               "needed'")
        return (ok,), None
    # need == "csv": "jobs.csv always needs a role above viewer: mes, operator or engineer, as
    # the table says" (open reads or not).
    if who in ("none", "wrong"):
        return (401,), None
    if who == "viewer":
        return (403,), None
    return (ok,), None


def role_matrix(ctx, read_access):
    web = ctx.path("web")
    os.makedirs(web)
    with open(os.path.join(web, "index.html"), "wb") as f:
        f.write(b"<!doctype html><title>roles</title>\n")
    http = {"read_access": read_access} if read_access == "token" else None
    s = Station(ctx, [SlotSpec("A1"), SlotSpec("NR", recipe="missing.json")], http=http,
                web_root=web)
    s.start()
    eng = s.client("engineer")
    row = run_jobs(s, "A1", 1)[0]
    stn = eng.ok("GET", "/api/v1/station")
    check(stn["read_access"] == read_access, "HOST: station read_access %r, config %r"
          % (stn["read_access"], read_access))
    bad_sha = hashlib.sha256(b"not this").hexdigest()
    # (method, path, body, need, status when allowed): the allowed requests are chosen so that
    # their answer does not depend on the order of the matrix (nothing changes state).
    endpoints = [
        ("GET", "/api/v1/station", None, "read", 200),
        ("GET", "/api/v1/auth", None, "auth", 200),
        ("GET", "/api/v1/slots", None, "read", 200),
        ("GET", "/api/v1/slots/A1", None, "read", 200),
        ("GET", "/api/v1/jobs", None, "read", 200),
        ("GET", "/api/v1/jobs/%s" % row["uuid"], None, "read", 200),
        ("GET", "/api/v1/devices/%s" % row["mac"], None, "read", 200),
        ("GET", "/api/v1/jobs.csv", None, "csv", 200),
        ("GET", "/api/v1/recipes", None, "read", 200),
        ("GET", "/api/v1/recipes/%s" % s.recipe_hash("quick"), None, "read", 200),
        ("GET", "/api/v1/images", None, "read", 200),
        ("GET", "/api/v1/stats", None, "read", 200),
        ("GET", "/api/v1/events", None, "read", 200),
        ("GET", "/metrics", None, "read", 200),
        ("GET", "/", None, "static", 200),
        ("GET", "/index.html", None, "static", 200),
        ("POST", "/api/v1/slots/NR/start", None, "operator", 409),
        ("POST", "/api/v1/slots/A1/cancel", None, "operator", 409),
        ("PUT", "/api/v1/slots/A1/recipe", {"hash": "ab" * 32}, "engineer", 404),
        ("POST", "/api/v1/recipes", {"name": "x"}, "engineer", 422),
        ("PUT", q("/api/v1/images/matrix.bin", sha256=bad_sha), b"payload", "engineer", 422),
    ]
    table, bad, notes = [], [], []
    for method, path, body, need, ok in endpoints:
        for who in WHO:
            token = {"none": None, "wrong": s.wrong_token}.get(who, s.tokens.get(who))
            c = s.client(token=token) if token else s.client()
            if path == "/api/v1/events":
                es = EventStream(c)
                status = es.status
                resp = es.response
                if status == 200:
                    es.next(what="hello")
                es.close()
            else:
                resp = c.request(method, path, body=body)
                status = resp.status
            want, note = expected_status(need, who, read_access, ok)
            table.append("%-6s %-48s %-8s -> %s (docs: %s)" % (method, path[:48], who, status,
                                                              "/".join(map(str, want))))
            if status not in want:
                bad.append(table[-1])
            if note:
                notes.append("%s %s as %s: got %s; %s" % (method, path[:40], who, status, note))
            if resp is not None and status in (401, 403):
                p = resp.problem()
                code = "unauthorized" if status == 401 else "forbidden"
                if p["code"] != code:
                    bad.append("%s %s as %s: problem code %r, expected %r"
                               % (method, path, who, p["code"], code))
                if status == 401:
                    wa = resp.headers.get("www-authenticate", "")
                    if wa.replace(" ", "") != 'Bearerrealm="espstation"':
                        bad.append("%s %s as %s: WWW-Authenticate %r, docs: Bearer "
                                   "realm=\"espstation\"" % (method, path, who, wa))
    # GET /api/v1/auth says what each role may do (docs/API.md's role table)
    may = {"none": (read_access == "open", False, False, False),
           "viewer": (True, False, False, False), "mes": (True, True, False, False),
           "operator": (True, True, True, False), "engineer": (True, True, True, True)}
    for who, want in may.items():
        c = s.client(token=s.tokens[who]) if who != "none" else s.client()
        got = c.ok("GET", "/api/v1/auth")
        m = got["may"]
        if (got["role"] != (None if who == "none" else who) or
                (m["read"], m["export"], m["operate"], m["engineer"]) != want):
            bad.append("GET /api/v1/auth as %s: %r, docs: role %s may %r" % (who, got, who, want))
    for line in table:
        ctx.log(line)
    for n in notes:
        print("NOTE (docs ambiguous): " + n)
    check(not os.path.exists(os.path.join(s.image_dir, "matrix.bin")),
          "HOST: a refused upload left a file")
    check(not bad, "HOST: %d role-matrix cells differ from docs/API.md:\n  %s"
          % (len(bad), "\n  ".join(bad)))
    print("role matrix (%s reads): %d cells as documented" % (read_access, len(table)))


def case_role_matrix_open(ctx):
    role_matrix(ctx, "open")


def case_role_matrix_token(ctx):
    role_matrix(ctx, "token")


def case_no_token_file(ctx):
    s = Station(ctx, [SlotSpec("A1"), SlotSpec("NR", recipe="missing.json")], tokens=False)
    s.start()
    c = s.client()
    c.ok("GET", "/api/v1/station")
    writes = [("POST", "/api/v1/slots/A1/start", None), ("POST", "/api/v1/slots/A1/cancel", None),
              ("PUT", "/api/v1/slots/A1/recipe", {"hash": None}),
              ("POST", "/api/v1/recipes", {"name": "x"}),
              ("PUT", q("/api/v1/images/x.bin", sha256="0" * 64), b"x")]
    for method, path, body in writes:
        for token in (None, st.new_token()):
            r = s.client(token=token).expect(403, method, path, body=body, code="forbidden")
            check("token_file" in r.json["detail"], "HOST: %s %s without a token file: detail "
                  "%r does not say to configure token_file" % (method, path, r.json["detail"]))
    time.sleep(0.5)
    check(s.db_jobs() == [], "HOST: a refused start ran a job")


def case_token_file_mode(ctx):
    for mode in (0o644, 0o604, 0o606, 0o602):
        s = Station(ctx, [SlotSpec("A1")], token_mode=mode)
        r = ts.run_espstation(ctx, ["serve", "--config", s.config_path], timeout=15)
        ts.harness.check_no_crash(r)
        check(r.status != 0, "HOST: serve started with token file mode %o\n%s"
              % (mode, r.describe()))
        check("chmod" in r.err and "tokens" in r.err, "HOST: token file mode %o: the refusal "
              "does not name chmod and the file\n%s" % (mode, r.describe()))
        for tok in s.tokens.values():
            check(tok not in r.err and tok not in r.out, "HOST: a token appears in the output")
        for sim in [x.sim for x in s.slots]:
            sim.kill()
    s = Station(ctx, [SlotSpec("A1")], token_mode=0o640)
    s.start()
    s.client("viewer").ok("GET", "/api/v1/station")
    s.stop()


def case_token_not_logged(ctx):
    s = Station(ctx, [SlotSpec("A1"), SlotSpec("NR", recipe="missing.json")],
                http={"read_access": "token"})
    s.start()
    for who in WHO:
        token = {"none": None, "wrong": s.wrong_token}.get(who, s.tokens.get(who))
        c = s.client(token=token)
        for method, path, body in (("GET", "/api/v1/station", None),
                                   ("GET", "/api/v1/jobs.csv", None),
                                   ("GET", "/metrics", None),
                                   ("POST", "/api/v1/slots/NR/start", None),
                                   ("POST", "/api/v1/recipes", {"name": "bad"}),
                                   ("PUT", "/api/v1/slots/NOPE/recipe", {"hash": None})):
            c.request(method, path, body=body)
        es = EventStream(c)
        if es.status == 200:
            es.next(what="hello")
        es.close()
    run_jobs(s, "A1", 1)
    s.stop()
    err = s.daemon.stderr_text()
    with open(s.daemon.out_path, "rb") as f:
        out = f.read().decode("utf-8", "replace")
    for who, tok in list(s.tokens.items()) + [("wrong", s.wrong_token)]:
        check(tok not in err and tok not in out and tok[:12] not in err,
              "HOST: the %s token appears in the daemon's output:\n%s" % (who, err[-3000:]))
    ctx.log("role= in the log: %s" % ("role=" in err))


# ---------------------------------------------------------------- MES cursor

class Poller(threading.Thread):
    """A MES client: polls /api/v1/jobs?after=<cursor>&limit=<small> with its last next_after,
    through daemon restarts (connection errors are retried, like a real MES would)."""

    def __init__(self, s):
        super().__init__(daemon=True)
        self.s = s
        self.c = s.client("mes")
        self.cursor = 0
        self.seen = []
        self.stop = threading.Event()
        self.error = None
        self.polls = 0
        self.refused = 0
        self.lock = threading.Lock()

    def poll_once(self, limit):
        pg = self.c.ok("GET", q("/api/v1/jobs", after=self.cursor, limit=limit))
        self.polls += 1
        if pg["jobs"]:
            check(pg["next_after"] == pg["jobs"][-1]["seq"], "HOST: next_after %r, last seq %r"
                  % (pg["next_after"], pg["jobs"][-1]["seq"]))
        else:
            check(pg["next_after"] == self.cursor, "HOST: empty page with next_after %r, after "
                  "was %r" % (pg["next_after"], self.cursor))
        with self.lock:
            self.seen += pg["jobs"]
            self.cursor = pg["next_after"]
        return pg

    def run(self):
        limits = [1, 3, 7, 2, 5]
        i = 0
        try:
            while not self.stop.is_set():
                try:
                    pg = self.poll_once(limits[i % len(limits)])
                except (OSError, http.client.HTTPException):
                    self.refused += 1  # the daemon is restarting: poll again with the cursor
                    time.sleep(0.05)
                    continue
                i += 1
                if not pg["has_more"]:
                    time.sleep(0.05)
        except Exception as e:  # reported by the main thread
            self.error = e


class Driver(threading.Thread):
    """Keeps the manual slots busy (POST start as operator) and swaps the boards of the loop
    slots (espsim SIGUSR2) after each of their jobs."""

    def __init__(self, s, manual, loop):
        super().__init__(daemon=True)
        self.s = s
        self.op = s.client("operator")
        self.manual = manual
        self.loop = loop
        self.stop = threading.Event()
        self.error = None
        self.starts = 0
        self.loop_done = {n: 0 for n in loop}

    def run(self):
        try:
            while not self.stop.is_set():
                for name in self.manual:
                    try:
                        r = self.op.request("POST", "/api/v1/slots/%s/start" % name)
                    except (OSError, http.client.HTTPException):
                        time.sleep(0.05)
                        continue
                    check(r.status in (202, 409), "HOST: start answered %s" % r.describe())
                    if r.status == 409:  # busy, or "conflict while the daemon stops"
                        check(r.problem()["code"] in ("slot_busy", "conflict"),
                              "HOST: %s" % r.describe())
                    else:
                        self.starts += 1
                rows = ts.jobs(self.s.db) or []
                for name in self.loop:
                    n = len([x for x in rows if x["slot"] == name and x["result"] != "running"])
                    if n > self.loop_done[name]:
                        self.loop_done[name] = n
                        sim = self.s.slot(name).sim
                        if sim.proc.poll() is None:
                            sim.proc.send_signal(signal.SIGUSR2)
                time.sleep(0.05)
        except Exception as e:
            self.error = e


def case_mes_cursor(ctx):
    specs = [SlotSpec("M1", chip="esp32c3"), SlotSpec("M2", chip="esp32"),
             SlotSpec("M3", chip="esp32s3"), SlotSpec("M4", chip="esp8266"),
             SlotSpec("L1", chip="esp32c3", transport="rfc2217", start="loop"),
             SlotSpec("L2", chip="esp32", transport="rfc2217", start="loop")]
    s = Station(ctx, specs, probe_interval_ms=200, app_size=4096)
    s.start()
    poller = Poller(s)
    driver = Driver(s, ["M1", "M2", "M3", "M4"], ["L1", "L2"])
    poller.start()
    driver.start()
    t0 = time.monotonic()

    def alive():
        for th in (poller, driver):
            if th.error is not None:
                raise TestFailure("%s thread: %s" % (type(th).__name__, th.error))
    restarts = []

    def wait_finished(n, timeout):
        def pred():
            alive()
            return len(s.db_finished()) >= n
        s.wait(pred, timeout, "%d finished jobs" % n)
    try:
        # kill -9, SIGTERM, kill -9 again, each in the middle of running jobs and polls
        for at, how in ((40, "kill"), (90, "term"), (140, "kill")):
            wait_finished(at, 30)
            restarts.append((how, len(s.db_finished()), poller.cursor,
                             len([r for r in s.db_jobs() if r["result"] == "running"])))
            if how == "kill":
                s.kill9()
            else:
                s.stop()
            time.sleep(0.3)  # the poller and the driver hit a closed port meanwhile
            s.start()
        wait_finished(200, 40)
    finally:
        driver.stop.set()
        driver.join(10)
    alive()
    # Let the running jobs finish, then the poller catch up with the database.
    s.wait(lambda: all(r["result"] != "running" for r in s.db_jobs()), 20, "no job running")
    for name in ("L1", "L2"):  # the loop slots must not start again: stop them
        s.client("operator").request("POST", "/api/v1/slots/%s/cancel" % name)
    s.wait(lambda: all(r["result"] != "running" for r in s.db_jobs()), 20, "no job running")
    final = s.db_finished()
    top = max(r["seq"] for r in final)
    s.wait(lambda: (alive() or True) and poller.cursor >= top and
           max(r["seq"] for r in s.db_finished()) == top, 20,
           "the poller reaching seq %d" % top)
    poller.stop.set()
    poller.join(10)
    alive()
    pg = poller.poll_once(1000)
    check(pg["jobs"] == [] and pg["has_more"] is False, "HOST: jobs after the end: %r" % pg)
    s.stop()
    took = time.monotonic() - t0
    rows = sorted(s.db_finished(), key=lambda r: r["seq"])
    check(all(r["result"] != "running" for r in s.db_jobs()), "TEST: jobs left running")
    seqs = [j["seq"] for j in poller.seen]
    print("MES: %d jobs (%s) in %.1f s, %d polls, %d refused connections, restarts (how, "
          "finished jobs, the client's cursor, jobs running) %r"
          % (len(rows), ", ".join("%s %d" % (res, len([r for r in rows if r["result"] == res]))
                                  for res in FINAL), took, poller.polls, poller.refused,
             restarts))
    check(len(rows) >= 100, "TEST: only %d jobs ran" % len(rows))
    check(all(cur > 0 for _, _, cur, _ in restarts), "TEST: the MES client had not started "
          "reading before a restart: %r" % restarts)
    check(len(set(seqs)) == len(seqs), "HOST: the MES client saw seqs twice: %r"
          % sorted({x for x in seqs if seqs.count(x) > 1}))
    check(seqs == sorted(seqs), "HOST: seqs out of order")
    check([r["seq"] for r in rows] == list(range(1, len(rows) + 1)),
          "HOST: database seqs are not 1..%d without gaps: %r" % (len(rows),
                                                                  [r["seq"] for r in rows]))
    check(seqs == [r["seq"] for r in rows], "HOST: the MES client saw seqs %r, database has %r "
          "(missing %r)" % (seqs, [r["seq"] for r in rows],
                            sorted(set(r["seq"] for r in rows) - set(seqs))))
    uuids = [j["uuid"] for j in poller.seen]
    check(len(set(uuids)) == len(uuids), "HOST: a job was seen twice under different seqs")
    recipes = db_recipes(s)
    for j, r in zip(poller.seen, rows):
        check_job_vs_db(j, r, recipes, "MES job seq %d" % r["seq"])
    interrupted = [r for r in rows if r["result"] == "interrupted"]
    ctx.log("interrupted by the restarts: %d" % len(interrupted))


def case_mes_example(ctx):
    """tests/api/examples/mes_poll.py (the docs/MES.md example) stores every job once, across
    a daemon restart and its own reruns."""
    s = Station(ctx, [SlotSpec("A1"), SlotSpec("F1", chip="esp32", faults=[NAK_FAULT])])
    s.start()
    script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "examples", "mes_poll.py")
    tok = ctx.write_file("mes-token", (s.tokens["mes"] + "\n").encode())
    mesdb = ctx.path("mes.db")

    def poll_once():
        r = ts.harness.subprocess.run(
            [sys.executable, script, "--url", "http://127.0.0.1:%d" % s.port, "--db", mesdb,
             "--token-file", tok, "--once", "--limit", "3"], capture_output=True, text=True,
            timeout=30)
        check(r.returncode == 0, "EXAMPLE: mes_poll.py exit %s\nstdout: %s\nstderr: %s"
              % (r.returncode, r.stdout, r.stderr))
        return r.stdout

    def compare():
        con = sqlite3.connect(mesdb)
        got = [tuple(x) for x in con.execute("SELECT seq, uuid, result, mac FROM results "
                                             "ORDER BY seq")]
        cur = con.execute("SELECT next_after FROM cursor").fetchall()
        con.close()
        rows = sorted(s.db_finished(), key=lambda r: r["seq"])
        want = [(r["seq"], r["uuid"], r["result"], r["mac"]) for r in rows]
        check(got == want, "EXAMPLE: the MES database has %r, the station %r" % (got, want))
        check(cur == [(rows[-1]["seq"],)], "EXAMPLE: cursor %r, last seq %d"
              % (cur, rows[-1]["seq"]))
    run_jobs(s, "A1", 4)
    run_jobs(s, "F1", 1)
    poll_once()
    compare()
    poll_once()
    compare()
    run_jobs(s, "A1", 2)
    s.restart("kill")
    run_jobs(s, "F1", 2)
    poll_once()
    compare()
    # the station's database replaced: the example refuses to go on silently
    s.stop()
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(s.db + suffix):
            os.unlink(s.db + suffix)
    s.start()
    run_jobs(s, "A1", 1)
    r = ts.harness.subprocess.run(
        [sys.executable, script, "--url", "http://127.0.0.1:%d" % s.port, "--db", mesdb,
         "--token-file", tok, "--once"], capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and "replaced" in r.stderr, "EXAMPLE: a replaced station database "
          "was not detected: exit %s, %s" % (r.returncode, r.stderr))


# ---------------------------------------------------------------- limits

def raw_connect(s):
    return socket.create_connection(("127.0.0.1", s.port), timeout=5)


def read_until_closed(sock, timeout):
    """Bytes received until the peer closes (or resets); None when still open at `timeout`."""
    sock.settimeout(0.1)
    data = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            return data
        if not chunk:
            return data
        data += chunk
    return None


def raw_response(data):
    """(status, headers, body) of the first HTTP response in `data`, or None."""
    if not data or b"\r\n\r\n" not in data:
        return None
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        return None
    hdrs = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs[k.strip().lower()] = v.strip()
    return int(m.group(1)), hdrs, body


def check_job_survived(s, slot, uuid, what):
    rows = s.wait(lambda: [r for r in s.db_finished() if r["uuid"] == uuid], 40,
                  "the job running during the %s" % what)
    check(rows[0]["result"] == "pass", "HOST: the job running during the %s: %s %s %s"
          % (what, rows[0]["result"], rows[0]["error_class"], rows[0]["message"]))
    s.daemon.check_alive()


def limits_station(ctx, http):
    s = Station(ctx, [SlotSpec("R1", chip="esp32", transport="rfc2217", realtime=True,
                               recipe="slow.json"), SlotSpec("A1")], http=http)
    s.start()
    uuid = start_job(s, "R1")["job_uuid"]
    wait_running(s, "R1")
    return s, uuid


def case_limits_requests(ctx):
    s, uuid = limits_station(ctx, {"max_body_bytes": 4096, "max_header_bytes": 4096,
                                   "max_upload_bytes": 65536})
    eng = s.client("engineer")
    big = {"name": "big", "version": "1", "chip": "esp32", "images": [],
           "description": "x" * 6000}
    eng.expect(413, "POST", "/api/v1/recipes", body=big, code="payload_too_large")
    small = dict(big, description="x" * 1000)
    eng.expect(422, "POST", "/api/v1/recipes", body=small, code="recipe_invalid")
    eng.expect(413, "PUT", "/api/v1/slots/A1/recipe", body={"hash": None, "pad": "y" * 5000},
               code="payload_too_large")
    data = img.prng_bytes("big-upload", 60000)  # below max_upload_bytes, above max_body_bytes
    eng.expect(201, "PUT", q("/api/v1/images/ok.bin", sha256=hashlib.sha256(data).hexdigest()),
               body=data)
    c = s.client()
    # malformed and mistyped JSON
    eng.expect(400, "PUT", "/api/v1/slots/A1/recipe", body="{", code="bad_request")
    eng.expect(400, "PUT", "/api/v1/slots/A1/recipe", body="[1, 2]", code="bad_request")
    eng.expect(400, "PUT", "/api/v1/slots/A1/recipe", body=b"\xff\xfe{}",
               content_type="application/json", code="bad_request")
    eng.expect((400, 415), "PUT", "/api/v1/slots/A1/recipe", body='{"hash": null}',
               content_type="text/plain", code=("bad_request", "unsupported_media_type"))
    eng.expect((400, 422), "POST", "/api/v1/recipes", body="{\"name\": [",
               code=("bad_request", "recipe_invalid"))
    eng.expect(415, "POST", "/api/v1/recipes", body="name=x",
               content_type="application/x-www-form-urlencoded", code="unsupported_media_type")
    c.expect(400, "GET", q("/api/v1/jobs", limit="abc"), code="bad_request")
    # a method the API does not have on a path: 405 problem (method_not_allowed is a code)
    r = c.request("DELETE", "/api/v1/station", validate=False)
    check(r.status == 405, "HOST: DELETE /api/v1/station: %s (docs: method_not_allowed)"
          % r.describe())
    check("GET" in [m.strip() for m in r.headers.get("allow", "").split(",")],
          "HOST: 405 without an Allow header naming GET: %r" % r.headers.get("allow"))
    p = r.problem()
    check(p["code"] == "method_not_allowed", "HOST: DELETE /api/v1/station: code %r" % p["code"])
    prob = s.api.schema_named("Problem")
    if prob is not None:
        s.api.validate_instance(prob, r.json, "DELETE /api/v1/station -> 405")
    # garbage on the wire: a 400 or a closed connection, never a crash
    for junk in (b"GARBAGE\r\n\r\n", b"GET /api/v1/station HTTP/9.9\r\n\r\n",
                 b"GET /api/v1/station HTTP/1.1\r\nContent-Length: -5\r\nHost: x\r\n\r\n",
                 b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 64):
        sock = raw_connect(s)
        sock.sendall(junk)
        got = read_until_closed(sock, 5)
        sock.close()
        resp = raw_response(got) if got else None
        check(got is not None and (resp is None or 400 <= resp[0] < 500),
              "HOST: junk %r: %r" % (junk[:30], (got or b"(still open)")[:200]))
    s.daemon.check_alive()
    x = c.ok("GET", "/api/v1/slots/R1")
    check(x["state"] == "running" and x["job_uuid"] == uuid, "HOST: R1 after the bad requests: "
          "%r" % x)
    check_job_survived(s, "R1", uuid, "bad requests")


def case_limits_header(ctx):
    """Headers beyond max_header_bytes: 431 header_too_large, a response the document has."""
    s, uuid = limits_station(ctx, {"max_header_bytes": 4096})
    c = s.client()
    c.expect(200, "GET", "/api/v1/station", headers={"X-Pad": "p" * 3000})
    c.expect(431, "GET", "/api/v1/station", headers={"X-Pad": "p" * 8000},
             code="header_too_large")
    c.expect(431, "GET", "/api/v1/slots", headers={"X-Pad-%d" % i: "q" * 90 for i in range(80)},
             code="header_too_large")
    s.client("operator").expect(431, "POST", "/api/v1/slots/A1/start",
                                headers={"X-Pad": "p" * 8000}, code="header_too_large")
    time.sleep(0.3)
    check(finished_count(s, "A1") == 0 and not [r for r in s.db_jobs() if r["slot"] == "A1"],
          "HOST: a refused start ran a job")
    check_job_survived(s, "R1", uuid, "oversized headers")


def case_limits_upload(ctx):
    """An upload above max_upload_bytes: 413 payload_too_large (problem+json) and no file."""
    s, uuid = limits_station(ctx, {"max_body_bytes": 4096, "max_upload_bytes": 65536})
    eng = s.client("engineer")
    data = img.prng_bytes("big-upload", 70000)
    eng.expect(413, "PUT", q("/api/v1/images/big.bin", sha256=hashlib.sha256(data).hexdigest()),
               body=data, code="payload_too_large")
    check(not os.path.exists(os.path.join(s.image_dir, "big.bin")),
          "HOST: a too large upload left a file")
    data = data[:65536]
    eng.expect(201, "PUT", q("/api/v1/images/max.bin", sha256=hashlib.sha256(data).hexdigest()),
               body=data)
    check_job_survived(s, "R1", uuid, "uploads")


def case_limits_connections(ctx):
    n = 8
    s, uuid = limits_station(ctx, {"max_connections": n})
    c = s.client()
    c.ok("GET", "/api/v1/station")
    socks = []
    try:
        for attempt in range(5):
            for _ in range(n):
                sk = raw_connect(s)
                sk.sendall(b"GET /api/v1/sta")  # a request in progress: the connection is busy
                socks.append(sk)
            time.sleep(0.3)
            # A connection the client has just closed may count until the daemon has seen the
            # close: then one of these n was the one refused. Start over in that case.
            if all(read_until_closed(sk, 0.05) is None for sk in socks):
                break
            ctx.log("attempt %d: one of the %d connections was refused; again" % (attempt, n))
            for sk in socks:
                sk.close()
            socks = []
            time.sleep(0.5)
        check(len(socks) == n, "HOST: %d idle connections were never all accepted "
              "(max_connections %d)" % (n, n))
        extra = []
        refused = 0
        for _ in range(3):
            try:
                r = c.request("GET", "/api/v1/station", timeout=5)
                extra.append(r.status)
                check(r.status == 503, "HOST: connection %d of max_connections %d: %s (docs: "
                      "refused with 503 or closed)" % (n + 1, n, r.describe()))
                r.problem()
                check(r.json["code"] == "too_many_connections", "HOST: 503 with code %r"
                      % r.json["code"])
            except (OSError, http.client.HTTPException):
                refused += 1
        ctx.log("over the limit: statuses %r, %d closed" % (extra, refused))
        x = s.daemon.alive()
        check(x, "HOST: espstation died at the connection limit")
    finally:
        for sk in socks:
            sk.close()
    s.wait(lambda: c.request("GET", "/api/v1/station").status == 200, 5,
           "the API answering again after the connections closed")
    # many short connections in a row (each closed): nothing leaks
    for _ in range(3 * n):
        c.ok("GET", "/api/v1/station")
    check_job_survived(s, "R1", uuid, "connection flood")


def case_limits_idle(ctx):
    s, uuid = limits_station(ctx, {"idle_timeout_ms": 1000})
    # 1. a connection that never sends anything
    sk = raw_connect(s)
    t0 = time.monotonic()
    got = read_until_closed(sk, 6)
    took = time.monotonic() - t0
    sk.close()
    check(got is not None, "HOST: an idle connection is still open after 6 s (idle_timeout_ms "
          "1000)")
    check(0.5 <= took <= 4.0, "HOST: an idle connection was closed after %.2f s "
          "(idle_timeout_ms 1000)" % took)
    # 2. a keep-alive connection after one answered request
    sk = raw_connect(s)
    sk.sendall(b"GET /api/v1/station HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    sk.settimeout(5)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = sk.recv(65536)
        check(chunk, "HOST: connection closed before the response")
        buf += chunk
    status, hdrs, body = raw_response(buf)
    check(status == 200, "HOST: keep-alive request answered %s" % status)
    want = int(hdrs.get("content-length", "-1"))
    while want >= 0 and len(body) < want:
        body += sk.recv(65536)
    s.api.check_response("GET", "/api/v1/station", status, hdrs.get("content-type"),
                         json.loads(body))
    t0 = time.monotonic()
    rest = read_until_closed(sk, 6)
    took = time.monotonic() - t0
    sk.close()
    check(rest is not None and 0.5 <= took <= 4.0, "HOST: a keep-alive connection idle after "
          "its response: closed after %s" % ("%.2f s" % took if rest is not None else
                                            "more than 6 s"))
    # 3. a request that stops half way (slow loris)
    sk = raw_connect(s)
    sk.sendall(b"GET /api/v1/station HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    t0 = time.monotonic()
    got = read_until_closed(sk, 6)
    took = time.monotonic() - t0
    sk.close()
    check(got is not None and took <= 4.0, "HOST: a half-sent request held the connection "
          "%s" % ("%.2f s" % took if got is not None else "more than 6 s"))
    resp = raw_response(got)
    check(resp is None or 400 <= resp[0] < 500, "HOST: half-sent request answered %r" % got[:200])
    # 4. active clients are unaffected: requests 0.5 s apart on new connections
    c = s.client()
    for _ in range(4):
        c.ok("GET", "/api/v1/slots/R1")
        time.sleep(0.5)
    check_job_survived(s, "R1", uuid, "idle connections")


# ---------------------------------------------------------------- entry point

CASES = {
    "station": case_station,
    "slots": case_slots,
    "start-cancel": case_start_cancel,
    "cancel-loop": case_cancel_loop,
    "slot-recipe": case_slot_recipe,
    "slot-recipe-image-gone": case_slot_recipe_image_gone,
    "jobs": case_jobs,
    "jobs-until-final": case_jobs_until_final,
    "wrong-chip-traced": case_wrong_chip_traced,
    "job-detail": case_job_detail,
    "devices": case_devices,
    "recipes": case_recipes,
    "images": case_images,
    "images-slash-names": case_images_slash_names,
    "stats": case_stats,
    "stats-null-when-none": case_stats_null_when_none,
    "metrics": case_metrics,
    "jobs-csv": case_jobs_csv,
    "static": case_static,
    "events-order": case_events_order,
    "events-resume": case_events_resume,
    "events-restart": case_events_restart,
    "events-dropped": case_events_dropped,
    "events-replay-full": case_events_replay_full,
    "role-matrix-open": case_role_matrix_open,
    "role-matrix-token": case_role_matrix_token,
    "no-token-file": case_no_token_file,
    "token-file-mode": case_token_file_mode,
    "token-not-logged": case_token_not_logged,
    "mes-cursor": case_mes_cursor,
    "mes-example": case_mes_example,
    "limits-requests": case_limits_requests,
    "limits-header": case_limits_header,
    "limits-upload": case_limits_upload,
    "limits-connections": case_limits_connections,
    "limits-idle": case_limits_idle,
}


if __name__ == "__main__":
    sys.exit(main({k: st.with_daemon_log(v) for k, v in CASES.items()},
                  "HTTP API end-to-end tests: espstation serve + espsim + an HTTP client"))
