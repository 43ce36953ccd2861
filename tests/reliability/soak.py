#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# soak.py — thousands of jobs over 8 slots with random faults: every slot is a device server
# port (raw TCP or RFC 2217, loop mode) behind which "boards" are swapped as on a real line: each
# board is a fresh espsim on the same port with a random chip, MAC and (often) a random fault.
# Checked: every clean board passes, no job ends in class `internal`, no slot gets stuck (a clean
# board is flashed within 20 s, no job runs for ever), the daemon's open descriptors come back to
# their idle count and its RSS stays flat, a clean stop at the end, the database intact and an
# MES cursor that saw every finished job exactly once. Optionally under valgrind.
# Must not: take any expected value from the daemon but the API it is checking.
#
#   soak.py --build build --jobs 2000 [--seed N] [--valgrind] [--report FILE]

import argparse
import collections
import json
import os
import random
import subprocess
import sys
import time

import reliab
from reliab import TestFailure, check, harness, st

import esp_image as img  # noqa: E402  (path set up by reliab)

N_SLOTS = 8
CHIPS = ["esp32", "esp32c3", "esp32s3", "esp8266"]
OUI = dict(st.OUI, esp32c6="40:4c:ca", esp32h2="74:4d:bd")
CLEAN_DEADLINE_S = 20.0  # a clean board must have its final job by then (else: a stuck slot)
FAULTY_DWELL_S = 2.0     # a faulty board that gets no job is swapped after this
JOB_MAX_S = 60.0         # no job may run longer


def random_fault(rng):
    """(fault args, chip override or None, JEDEC or None, label): about half the boards are
    clean; the rest get one fault of the matrix (K chosen at random)."""
    k = rng.randint(2, 12)
    table = [
        ([], None, None, "clean"),
        (["noise:%d" % k], None, None, "noise"),
        (["drop-reply:%d" % k], None, None, "drop-reply"),
        (["drop-replies"], None, None, "drop-replies"),
        (["nak:FLASH_DEFL_DATA:0x07"], None, None, "nak-data"),
        (["nak:SPI_FLASH_MD5:0x09"], None, None, "nak-md5"),
        (["nak:0x02:0x06"], None, None, "nak-begin"),
        (["bitflip"], None, None, "bitflip"),
        (["hangup:%d" % rng.randint(1, 6)], None, None, "hangup"),
        (["brownout:%d" % rng.randint(1, 6)], None, None, "brownout"),
        (["silent"], None, None, "silent"),
        (["app"], None, None, "app"),
        (["sync-drop:%d" % rng.randint(1, 3)], None, None, "sync-drop"),
        (["flash-size:1MB"], None, 0xEF4014, "flash-1MB"),
        ([], rng.choice(["esp32h2", "esp32c6"]), None, "wrong-chip"),
    ]
    if rng.random() < 0.5:
        return table[0]
    return rng.choice(table[1:])


class Board:
    """One espsim on a slot's fixed port; a new Board is a new board in the fixture."""

    def __init__(self, ctx, slot, transport, port, serial, rng):
        self.slot = slot
        self.faults, chip, jedec, self.label = random_fault(rng)
        self.chip = chip or rng.choice(CHIPS)
        self.mac = "%s:%02x:%02x:%02x" % (OUI[self.chip], 0x50 + (serial >> 16) % 0x40,
                                           (serial >> 8) & 0xFF, serial & 0xFF)
        args = [ctx.espsim, "--chip", self.chip, "--%s" % transport, str(port), "--mac",
                self.mac, "--quiet", "--seed", str(serial)]
        if jedec:
            args += ["--flash-jedec", "0x%06X" % jedec]
        for f in self.faults:
            args += ["--fault", f]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, preexec_fn=harness._pdeathsig)
        harness._children.append(self.proc)
        line = self.proc.stdout.readline()
        try:
            ready = json.loads(line)
        except ValueError:
            ready = {}
        check(ready.get("event") == "ready", "SIM: no ready line from %s (%r)"
              % (" ".join(args), line[:200]))
        self.t0 = time.monotonic()
        self.final = None  # its final job row (as the API reported it)

    def remove(self):
        harness._kill(self.proc)
        harness._children.remove(self.proc)
        self.proc.stdout.close()


def build_config(ctx, n_slots, ports):
    app = st.Image(0x10000, "app.bin", img.app_image("soak-app", 16 * 1024), "app")
    recipe, _ = st.write_recipe(ctx, "recipe.json", CHIPS, [app], retry={"attempts": 2})
    slots = []
    for i in range(n_slots):
        tr = "tcp" if i % 2 == 0 else "rfc2217"
        scheme = "socket" if tr == "tcp" else "rfc2217"
        slots.append({"name": "S%d" % (i + 1), "port": "%s://127.0.0.1:%d" % (scheme, ports[i]),
                      "start": "loop"})
    cfg, db = st.write_config(ctx, "station.json", slots, recipe=recipe, probe_interval_ms=200,
                              listen="127.0.0.1:0")
    return cfg, db, [(s["name"], "tcp" if i % 2 == 0 else "rfc2217")
                     for i, s in enumerate(slots)]


def run(ctx, a):
    rng = random.Random(a.seed)
    slow = 5 if a.valgrind else 1  # valgrind runs the daemon ~20-50 times slower
    ctx.daemons = []
    ports = [harness.free_tcp_port() for _ in range(a.slots)]
    cfg, db, slots = build_config(ctx, a.slots, ports)
    wrapper = []
    if a.valgrind:
        wrapper = ["valgrind", "--quiet", "--error-exitcode=99", "--leak-check=full",
                   "--show-leak-kinds=definite", "--errors-for-leak-kinds=definite",
                   "--log-file=" + ctx.path("valgrind.log")]
    d = reliab.serve(ctx, cfg, "soak", wrapper=wrapper)
    url = reliab.wait_url(d, timeout=60 if a.valgrind else 15)
    pid = d.proc.pid
    poller = reliab.CursorPoller()
    poller.url = url
    # The idle baseline: every slot waiting, no board behind any port (probes are refused).
    idle_fds = []  # (jobs so far, fds) taken while every slot was waiting
    t_idle = time.monotonic() + (10 if a.valgrind else 1.5)
    while time.monotonic() < t_idle:
        status, body = reliab.api_get(url, "/api/v1/slots")
        smp = reliab.proc_sample(pid)
        if status == 200 and smp and all(s["state"] == "waiting" for s in body["slots"]):
            idle_fds.append((0, smp[1]))
        time.sleep(0.1)
    check(idle_fds, "HOST: the slots never all waited while no board was present")
    rss_idle = reliab.proc_sample(pid)[0]
    serial = 0
    boards = {}
    for (name, tr), port in zip(slots, ports):
        serial += 1
        boards[name] = Board(ctx, name, tr, port, serial, rng)
    t_start = time.monotonic()
    samples = []   # (t, jobs, rss_kb, fds)
    outcomes = collections.Counter()  # (label, final result/class)
    per_slot = collections.Counter()
    seen = 0
    swaps = 0
    last_sample = 0.0
    while len(poller.reported) < a.jobs:
        check(d.alive(), "HOST: espstation died\n" + d.describe())
        poller.poll_once()
        seqs = sorted(poller.reported)
        for seq in seqs[seen:]:
            job = poller.reported[seq]
            per_slot[job["slot"]] += 1
            check(job["error_class"] != "internal", "HOST: job %s ended in class internal: %s"
                  % (job["uuid"], job["message"]))
            b = boards.get(job["slot"])
            if b and job["final"] and job["mac"] == b.mac:
                b.final = job
        seen = len(seqs)
        now = time.monotonic()
        status, body = reliab.api_get(url, "/api/v1/slots")
        check(status == 200, "HOST: GET /api/v1/slots: %s" % status)
        states = {s["name"]: s for s in body["slots"]}
        for (name, tr), port in zip(slots, ports):
            b = boards[name]
            s = states[name]
            if s["state"] == "running" and (s.get("elapsed_ms") or 0) > JOB_MAX_S * 1000 * slow:
                raise TestFailure("HOST: slot %s: a job has run for %s ms (stuck)\n%s"
                                  % (name, s["elapsed_ms"], json.dumps(s)))
            done = b.final is not None
            if not done and b.label == "clean" and now - b.t0 > CLEAN_DEADLINE_S * slow:
                raise TestFailure("HOST: slot %s is stuck: a clean board (%s %s) got no final "
                                  "job in %.0f s; slot %s" % (name, b.chip, b.mac,
                                                              CLEAN_DEADLINE_S * slow,
                                                              json.dumps(s)))
            give_up = (not done and b.label != "clean" and now - b.t0 > FAULTY_DWELL_S * slow and
                       s["state"] != "running")
            if done or give_up:
                if done:
                    res = b.final["result"] if b.final["result"] == "pass" else \
                        "%s/%s" % (b.final["result"], b.final["error_class"])
                    if b.label == "clean":
                        check(b.final["result"] == "pass", "HOST: a clean board failed: %s"
                              % json.dumps(b.final))
                else:
                    res = "no job"
                outcomes[(b.label, res)] += 1
                b.remove()
                serial += 1
                swaps += 1
                boards[name] = Board(ctx, name, tr, port, serial, rng)
        if now - last_sample >= a.sample_s:
            last_sample = now
            smp = reliab.proc_sample(pid)
            if smp:
                samples.append((round(now - t_start, 1), len(poller.reported), smp[0], smp[1]))
        time.sleep(0.02)

    # Let the last boards finish, then an idle moment: no slot holds its port.
    for b in boards.values():
        b.remove()
    deadline = time.monotonic() + (120 if a.valgrind else 30)
    final_idle = None
    while time.monotonic() < deadline:
        status, body = reliab.api_get(url, "/api/v1/slots")
        smp = reliab.proc_sample(pid)
        if status == 200 and smp and all(s["state"] == "waiting" for s in body["slots"]):
            final_idle = smp if final_idle is None else (smp[0], min(smp[1], final_idle[1]))
            if len(samples) and time.monotonic() > deadline - (110 if a.valgrind else 28):
                break
        time.sleep(0.1)
    check(final_idle is not None, "HOST: slots did not all go back to waiting with no boards")
    poller.poll_once()
    took = d.stop(timeout=120 if a.valgrind else 15)
    rows = reliab.all_jobs(db)
    reliab.integrity(db)
    check(not poller.errors, "HOST: MES cursor inconsistencies: %s" % poller.errors[:5])
    check(all(r["result"] != "running" for r in rows), "HOST: jobs left running after the stop")
    finished = {r["seq"] for r in rows}
    check(finished == set(poller.reported), "HOST: the MES cursor saw %d jobs, the database has "
          "%d finished" % (len(poller.reported), len(finished)))
    elapsed = time.monotonic() - t_start
    summary = {"jobs": len(rows), "boards": swaps + a.slots, "seconds": round(elapsed, 1),
               "jobs_per_s": round(len(rows) / elapsed, 2), "seed": a.seed,
               "valgrind": a.valgrind, "stop_s": round(took, 2),
               "per_slot": dict(sorted(per_slot.items())),
               "results": dict(collections.Counter(r["result"] for r in rows)),
               "classes": dict(collections.Counter(r["error_class"] for r in rows
                                                   if r["error_class"]).most_common()),
               "outcomes": {"%s -> %s" % k: v for k, v in sorted(outcomes.items())}}
    # No stuck slot: each did a fair part (RFC 2217 slots are slower: their probe resets the
    # board through the lines; the clean-board deadline above is the sharp check).
    fair = len(rows) / a.slots
    for name, _ in slots:
        check(per_slot[name] > fair * 0.25, "HOST: slot %s ran only %d of %d jobs"
              % (name, per_slot[name], len(rows)))
    if samples:
        summary["rss_kb"] = [(s[1], s[2]) for s in samples]
        summary["fds"] = [(s[1], s[3]) for s in samples]
    summary["idle_fds_start"] = min(f for _, f in idle_fds)
    summary["idle_fds_end"] = final_idle[1]
    summary["rss_kb_idle_start"] = rss_idle
    summary["rss_kb_end"] = final_idle[0]
    if not a.valgrind:
        # Descriptors: with every slot waiting and no board present, the count is what the
        # daemon needs with nothing open (listener, loop, database, signal pipes...).
        base = min(f for _, f in idle_fds)
        check(final_idle[1] <= base, "HOST: %d descriptors open at the end with no job running, "
              "%d earlier: a descriptor leak" % (final_idle[1], base))
        # RSS: flat after warm-up. It grows over the first ~900 jobs (SQLite's page cache
        # filling, HTTP and image-cache pools), so only a long run's second half is judged.
        warm = [s for s in samples if s[1] >= a.jobs // 2]
        if a.jobs >= 1000 and len(warm) >= 2:
            grow = max(s[2] for s in warm) - warm[0][2]
            summary["rss_growth_after_warmup_kb"] = grow
            check(grow < a.rss_slack_kb, "HOST: RSS grew by %d KiB after warm-up (%d -> max "
                  "%d KiB): a leak?" % (grow, warm[0][2], max(s[2] for s in warm)))
    if a.valgrind:
        log = open(ctx.path("valgrind.log"), encoding="utf-8", errors="replace").read()
        summary["valgrind_log_bytes"] = len(log)
        check(d.proc.returncode == 0 and "definitely lost" not in log and
              "Invalid" not in log and "uninitialised" not in log,
              "HOST: valgrind reports problems (exit %s):\n%s" % (d.proc.returncode, log[-6000:]))
    return summary


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build", required=True)
    ap.add_argument("--jobs", type=int, default=2000, help="stop after this many job rows")
    ap.add_argument("--slots", type=int, default=N_SLOTS)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--sample-s", type=float, default=2.0, help="RSS/fd sampling period")
    ap.add_argument("--rss-slack-kb", type=int, default=2048)
    ap.add_argument("--valgrind", action="store_true", help="run the daemon under valgrind")
    ap.add_argument("--timeout", type=float, default=3600.0, help="overall deadline (s)")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--tmpdir", help="parent of the run's temp dir (default: the system's)")
    ap.add_argument("--report", help="append the summary (JSON line) to this file")
    a = ap.parse_args()
    if a.seed is None:
        a.seed = int(time.time()) % 100000

    return reliab.script_main(
        a, "soak", "soak", run,
        lambda summary: json.dumps({k: v for k, v in summary.items() if k not in ("rss_kb", "fds")}))


if __name__ == "__main__":
    sys.exit(main())
