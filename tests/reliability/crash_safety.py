#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# crash_safety.py — SIGKILL the station daemon at random moments while 8 jobs run at once, many
# times over one database, and check after every kill: PRAGMA integrity_check / foreign keys ok,
# every finished job an MES client had been told about (GET /api/v1/jobs?after=<cursor>) is still
# there unchanged, the jobs the kill interrupted are marked `interrupted` at the next start; at
# the end a clean run flashes every board correctly and the client has seen each finished job
# exactly once. Sims run in real time (115200 baud, datasheet flash timing) so a kill can land
# in any state of a job.
# Must not: take any expected value from the daemon's own output but the API it is checking.
#
#   crash_safety.py --build build --kills 50 [--seed N] [--max-delay 4] [--report FILE]

import argparse
import collections
import os
import random
import re
import sys
import time

import reliab
from reliab import TestFailure, check, harness, st

import esp_image as img  # noqa: E402  (path set up by reliab)

# 8 slots: mixed chips, 5 ptys (device-path slots: their job starts at once), 2 RFC 2217 and
# 1 raw TCP (probed first). Fixed MACs, so a row can be traced to its board.
SLOTS = [("A1", "esp32", "pty"), ("A2", "esp32c3", "pty"), ("A3", "esp32s3", "rfc2217"),
         ("A4", "esp8266", "pty"), ("A5", "esp32", "tcp"), ("A6", "esp32c3", "pty"),
         ("A7", "esp32s3", "pty"), ("A8", "esp32", "rfc2217")]
OUI = st.OUI


def build_station(ctx):
    app = st.Image(0x10000, "app.bin", img.app_image("crash-app", 32 * 1024), "app")
    recipe, rec = st.write_recipe(ctx, "recipe.json", sorted({c for _, c, _ in SLOTS}), [app])
    sims, slots = [], []
    for i, (name, chip, tr) in enumerate(SLOTS):
        mac = "%s:%02x:c7:%02x" % (OUI[chip], 0x40 + i, 0x10 + i)
        s = st.StationSim(ctx, chip, tr, mac=mac, tag=name, extra=["--realtime", "--quiet"])
        sims.append(s)
        slots.append(st.slot_entry(name, s))
    cfg, db = st.write_config(ctx, "station.json", slots, recipe=recipe, probe_interval_ms=300,
                              listen="127.0.0.1:0")
    return app, rec, sims, cfg, db


def last_state(db, uuid):
    rows = st.db_query(db, "SELECT state FROM job_events WHERE job_uuid = ? AND kind = 'state' "
                           "ORDER BY n DESC LIMIT 1", (uuid,), readonly=False)
    return rows[0]["state"] if rows else "(none)"


def check_reported(poller, rows, when):
    """Every job the API reported is in the database with the same seq, result and class."""
    by_uuid = {r["uuid"]: r for r in rows}
    check(not poller.errors, "HOST: the MES cursor saw inconsistencies %s: %s"
          % (when, poller.errors[:5]))
    for seq, job in poller.reported.items():
        r = by_uuid.get(job["uuid"])
        check(r is not None, "HOST: job %s (seq %d, %s) reported by the API is gone %s"
              % (job["uuid"], seq, job["result"], when))
        for k in ("seq", "result", "error_class", "finished_at", "mac", "slot"):
            check(r[k] == job[k], "HOST: job %s: %s is %r in the database %s, the API had "
                  "reported %r" % (job["uuid"], k, r[k], when, job[k]))


def run(ctx, a):
    rng = random.Random(a.seed)
    ctx.log("seed %d" % a.seed)
    ctx.daemons = []
    app, rec, sims, cfg, db = build_station(ctx)
    poller = reliab.CursorPoller()
    running_prev = set()     # uuids left running by the previous kill
    kill_states = collections.Counter()
    n_running_at_kill = []
    early_kills = 0
    t_start = time.monotonic()
    for i in range(a.kills):
        d = reliab.serve(ctx, cfg, "serve-%03d" % i)
        # Mostly anywhere in the jobs; one kill in six while the daemon starts (database
        # opening, crashed jobs being marked, slots and HTTP coming up: a few ms).
        delay = rng.uniform(0.0, 0.03) if rng.random() < 1 / 6 else rng.uniform(0.0, a.max_delay)
        deadline = time.monotonic() + delay
        url = None
        while time.monotonic() < deadline:
            if url is None:
                m = reliab.URL_RE.search(d.stderr_text())
                if m:
                    url = m.group(1)
                    poller.start(url)
            check(d.alive(), "HOST: espstation exited by itself (kill %d)\n%s" % (i, d.describe()))
            time.sleep(0.001 if delay < 0.1 else 0.005)
        d.kill9()
        poller.stop()
        err = d.stderr_text()
        d._out.close()
        d._err.close()
        check(harness.sanitizer_report(err) is None, "HOST: sanitizer report\n" + err[-4000:])

        reliab.integrity(db)
        rows = reliab.all_jobs(db)
        by_uuid = {r["uuid"]: r for r in rows}
        check_reported(poller, rows, "after kill %d" % (i + 1))
        # The previous kill's running jobs: marked interrupted once this start got past opening
        # the database (its start line), still running or interrupted before that.
        started = re.search(r"espstation \S+: station ", err) is not None
        early_kills += not started
        m = re.search(r"(\d+) job\(s\) left running by an earlier crash marked interrupted", err)
        if started and running_prev:
            check(m and int(m.group(1)) == len(running_prev),
                  "HOST: start %d: %d job(s) were left running, the daemon says %r"
                  % (i, len(running_prev), m and m.group(0)))
        for u in running_prev:
            r = by_uuid[u]
            if started:
                check(r["result"] == "interrupted", "HOST: job %s left running by kill %d is %r "
                      "after the next start" % (u, i, r["result"]))
            check(r["result"] in ("running", "interrupted"), "HOST: job %s left running by a "
                  "kill became %r" % (u, r["result"]))
            if r["result"] == "interrupted":
                check(r["seq"] is not None and r["finished_at"], "HOST: interrupted job %s has "
                      "no seq/finished_at" % u)
        running_prev = {r["uuid"] for r in rows if r["result"] == "running"}
        for u in running_prev:
            if u not in by_uuid or by_uuid[u]["started_at"] is None:
                continue
            kill_states[last_state(db, u)] += 1
        n_running_at_kill.append(len([u for u in running_prev]))
        if a.verbose:
            print("kill %3d after %.2f s: %d running, %d finished so far"
                  % (i + 1, delay, len(running_prev), len(poller.reported)))
            sys.stdout.flush()

    # A clean run on the same database: the interrupted ones marked, every board flashed.
    before = {r["uuid"] for r in reliab.all_jobs(db)}
    d = reliab.serve(ctx, cfg, "serve-final")
    url = reliab.wait_url(d)
    poller.start(url)
    rows = st.wait_jobs(db, lambda rs: len([r for r in rs if r["uuid"] not in before and
                                            r["result"] != "running"]) == len(SLOTS), 60,
                        "a job on every slot after the crashes", d)
    if running_prev:
        d.wait_stderr(r"%d job\(s\) left running by an earlier crash marked interrupted"
                      % len(running_prev), 5, "the interrupted-jobs message")
    # The client catches up while the daemon still answers (every job is finished: auto slots
    # are idle now), then the daemon stops.
    poller.stop()
    poller.poll_once()
    d.stop(timeout=15)
    rows = reliab.all_jobs(db)
    reliab.integrity(db)
    check_reported(poller, rows, "after the final run")
    new = [r for r in rows if r["uuid"] not in before]
    check(len(new) == len(SLOTS) and all(r["result"] == "pass" for r in new),
          "HOST: the run after %d kills did not pass on every slot\n%s"
          % (a.kills, st.summarize(new)))
    check(all(r["result"] != "running" for r in rows), "HOST: jobs still running after a clean "
          "stop:\n" + st.summarize([r for r in rows if r["result"] == "running"]))
    for u in running_prev:
        check([r["result"] for r in rows if r["uuid"] == u] == ["interrupted"],
              "HOST: job %s of the last kill not marked interrupted" % u)
    finished = {r["seq"]: r for r in rows if r["result"] != "running"}
    missing = sorted(set(finished) - set(poller.reported))
    extra = sorted(set(poller.reported) - set(finished))
    check(not missing and not extra, "HOST: the MES cursor missed seqs %r / saw unknown %r"
          % (missing[:10], extra[:10]))
    for s, (name, chip, tr) in zip(sims, SLOTS):
        r = [x for x in new if x["slot"] == name][0]
        writes = st.expected_writes(chip, [app], rec, s.ready["flash_size"])
        st.check_pass_row(db, r, s, writes)
        st.check_dump(s, writes, "slot %s after %d kills" % (name, a.kills))
    took = time.monotonic() - t_start
    results = collections.Counter(r["result"] for r in rows)
    summary = {
        "kills": a.kills, "seed": a.seed, "max_delay_s": a.max_delay, "seconds": round(took, 1),
        "jobs": len(rows), "results": dict(results),
        "running_at_kill_mean": round(sum(n_running_at_kill) / max(1, len(n_running_at_kill)), 2),
        "kill_states": dict(kill_states.most_common()), "kills_during_start": early_kills,
        "mes_reported": len(poller.reported),
    }
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True)
    ap.add_argument("--kills", type=int, default=50)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--max-delay", type=float, default=4.0,
                    help="kill uniformly 0..this many seconds after the daemon was started")
    ap.add_argument("--timeout", type=float, default=1500.0, help="overall deadline (s)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--tmpdir", help="parent of the run's temp dir (default: the system's)")
    ap.add_argument("--verbose", action="store_true")
    ap.add_argument("--report", help="append the summary (JSON line) to this file")
    a = ap.parse_args()
    if a.seed is None:
        a.seed = int(time.time()) % 100000

    return reliab.script_main(a, "crash safety", "crash", run, str, log_tail=40, daemon_tail=2,
                              err_tail=3000, term_fails=True)


if __name__ == "__main__":
    sys.exit(main())
