#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_station.py — the station daemon end to end: `espstation serve` with many espsim boards
# (mixed chips, RFC 2217 / pty / TCP, faults, real-time sims), crash and graceful stop, loop
# mode, config errors, `espstation recipe check|import`, `espstation demo`. The record is read
# from the SQLite database; flash dumps are compared with esp_image.py's expected flash.
# Must not: derive any expected value from espstation's output; leave a process running.

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import esp_image as img  # noqa: E402
import harness  # noqa: E402
from harness import (Sim, TestFailure, check, free_tcp_port, main, run_espstation,  # noqa: E402
                     sanitizer_report)

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO, "tests", "data", "flasher_args")
MIB = img.MIB

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Bootloader offsets of chips esp_image.py does not model (PROTOCOL.md §12): the images the tests
# write to these chips never sit at their bootloader offset, so only padding applies.
OTHER_BOOT_OFFSET = {"esp32s2": 0x1000, "esp32c6": 0x0, "esp32h2": 0x0, "esp32c2": 0x0}


# ---------------------------------------------------------------- processes

class StationSim(Sim):
    """harness.Sim with extra command-line options (--realtime, --seed ...)."""

    def __init__(self, ctx, chip, transport, mac=None, jedec=None, faults=(), tag="sim",
                 extra=(), ready_timeout=15.0):
        self.ctx = ctx
        self.chip = chip
        self.transport = transport
        self.tag = tag
        self.flash_out = ctx.path("%s-flash.bin" % tag)
        self.stderr_path = ctx.path("%s-stderr.txt" % tag)
        args = [ctx.espsim, "--chip", chip, {"pty": "--pty", "tcp": "--tcp",
                                             "rfc2217": "--rfc2217"}[transport]]
        if transport != "pty":
            args.append("0")
        if mac:
            args += ["--mac", mac]
        if jedec is not None:
            args += ["--flash-jedec", "0x%06X" % jedec]
        args += ["--flash-out", self.flash_out]
        for f in faults:
            args += ["--fault", f]
        args += list(extra)
        self.args = args
        ctx.log("start: " + " ".join(args))
        self._stderr_f = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr_f, preexec_fn=harness._pdeathsig,
                                     cwd=ctx.tmp)
        harness._children.append(self.proc)
        ctx.sims.append(self)
        self.lines = []
        self._q = harness.queue.Queue()
        self._reader = harness.threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.ready = self._wait_ready(ready_timeout)
        self.port = self.ready.get("port")

    def count_events(self, name, **fields):
        n = 0
        for ev in self.events():
            if ev.get("event") == name and all(ev.get(k) == v for k, v in fields.items()):
                n += 1
        return n


class Daemon:
    """One `espstation serve` (or `demo`) process; stdout/stderr go to files in the temp dir."""

    def __init__(self, ctx, args, tag="serve"):
        self.ctx = ctx
        self.tag = tag
        self.args = [ctx.espstation] + list(args)
        self.err_path = ctx.path("%s-stderr.txt" % tag)
        self.out_path = ctx.path("%s-stdout.txt" % tag)
        self._err = open(self.err_path, "wb")
        self._out = open(self.out_path, "wb")
        ctx.log("run: " + " ".join(self.args))
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL, stdout=self._out,
                                     stderr=self._err, preexec_fn=harness._pdeathsig, cwd=ctx.tmp)
        harness._children.append(self.proc)
        ctx.daemons.append(self)

    def alive(self):
        return self.proc.poll() is None

    def stderr_text(self):
        self._err.flush()
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def describe(self):
        return "%s (status %s)\nstderr (tail):\n%s" % (" ".join(self.args), self.proc.poll(),
                                                       self.stderr_text()[-4000:])

    def check_alive(self):
        check(self.alive(), "HOST: espstation exited unexpectedly\n" + self.describe())

    def signal_and_wait(self, sig, timeout):
        """Send `sig`; the daemon must exit within `timeout` s (else it is killed: failure)."""
        self.check_alive()
        self.proc.send_signal(sig)
        t0 = time.monotonic()
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)
            raise TestFailure("HOST: espstation did not exit within %.0f s of %s (killed)\n%s"
                              % (timeout, signal.Signals(sig).name, self.describe()))
        took = time.monotonic() - t0
        self.ctx.log("%s: exit status %s %.1f s after %s" % (self.tag, self.proc.returncode,
                                                            took, signal.Signals(sig).name))
        err = self.stderr_text()
        san = sanitizer_report(err)
        check(san is None, "HOST: sanitizer report (%s) in espstation stderr\n%s"
              % (san, self.describe()))
        return self.proc.returncode, took

    def stop(self, timeout=10.0):
        """SIGTERM: exit status 0 within `timeout` s."""
        rc, took = self.signal_and_wait(signal.SIGTERM, timeout)
        check(rc == 0, "HOST: espstation exit status %s after SIGTERM (expected 0)\n%s"
              % (rc, self.describe()))
        return took

    def kill9(self):
        self.check_alive()
        self.proc.kill()
        self.proc.wait(timeout=5)
        check(self.proc.returncode == -signal.SIGKILL, "TEST: kill -9 did not kill espstation")

    def wait_stderr(self, pattern, timeout, what):
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        while time.monotonic() < deadline:
            m = rx.search(self.stderr_text())
            if m:
                return m
            self.check_alive()
            time.sleep(0.05)
        raise TestFailure("HOST: %s not seen within %.0f s (no match for /%s/ in stderr)\n%s"
                          % (what, timeout, pattern, self.describe()))


def serve(ctx, config_path, tag="serve"):
    return Daemon(ctx, ["serve", "--config", config_path, "--verbose"], tag=tag)


# ---------------------------------------------------------------- database

def db_query(path, sql, args=(), readonly=True):
    """Rows as dicts, or None when the database is not readable yet (absent, being created)."""
    if not os.path.exists(path):
        return None
    uri = "file:%s%s" % (urllib.parse.quote(path), "?mode=ro" if readonly else "")
    try:
        con = sqlite3.connect(uri, uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        con.row_factory = sqlite3.Row
        return [dict(r) for r in con.execute(sql, args)]
    except sqlite3.Error:
        return None
    finally:
        con.close()


def jobs(path, readonly=True):
    return db_query(path, "SELECT * FROM jobs ORDER BY id", readonly=readonly)


def summarize(rows):
    if rows is None:
        return "(database not readable)"
    return "\n".join("  %s %s chip=%s mac=%s flash_id=%s result=%s class=%s msg=%s" % (
        r["slot"], r["uuid"], r["chip"], r["mac"], r["flash_id"], r["result"], r["error_class"],
        (r["message"] or "")[:160]) for r in rows) or "  (no jobs)"


def wait_jobs(db, pred, timeout, what, daemon=None):
    """Poll the jobs table (bounded) until pred(rows) holds; the daemon must stay alive."""
    deadline = time.monotonic() + timeout
    rows = None
    while time.monotonic() < deadline:
        rows = jobs(db)
        if rows is not None and pred(rows):
            return rows
        if daemon is not None:
            check(daemon.alive(), "HOST: espstation exited while waiting for %s\njobs:\n%s\n%s"
                  % (what, summarize(rows), daemon.describe()))
        time.sleep(0.1)
    raise TestFailure("HOST: %s not reached within %.0f s\njobs:\n%s%s"
                      % (what, timeout, summarize(rows),
                         "\n" + daemon.describe() if daemon is not None else ""))


def finished(rows):
    return [r for r in rows if r["result"] != "running"]


def check_db_integrity(db):
    rows = db_query(db, "PRAGMA integrity_check", readonly=False)
    check(rows is not None and [list(r.values())[0] for r in rows] == ["ok"],
          "HOST: PRAGMA integrity_check: %r" % rows)
    rows = db_query(db, "PRAGMA foreign_key_check", readonly=False)
    check(rows == [], "HOST: PRAGMA foreign_key_check: %r" % rows)


# ---------------------------------------------------------------- recipes and expectations

class Image:
    def __init__(self, offset, name, data, label=None, boot=False):
        self.offset = offset
        self.name = name
        self.data = data
        self.label = label
        self.boot = boot  # a bootloader: patched per PROTOCOL.md §11.4 when the recipe says so


def write_recipe(ctx, fname, chips, images, **fields):
    """Image files and a recipe next to them; returns (path, recipe dict)."""
    rec = {"name": "station-test", "version": "1.0.%d" % len(fname), "chip": chips}
    rec.update(fields)
    rec["images"] = []
    for im in images:
        p = ctx.path(im.name)
        if not os.path.exists(p):
            ctx.write_file(im.name, im.data)
        entry = {"offset": "0x%x" % im.offset, "file": im.name,
                 "sha256": hashlib.sha256(im.data).hexdigest()}
        if im.label:
            entry["label"] = im.label
        rec["images"].append(entry)
    path = ctx.write_file(fname, json.dumps(rec, indent=2).encode())
    return path, rec


def boot_offset(chip):
    if chip in img.CHIPS:
        return img.CHIPS[chip]["boot_offset"]
    return OTHER_BOOT_OFFSET[chip]


def expected_writes(chip, images, recipe, flash_size):
    """[(offset, bytes)] the job must write: padding, and header patching only for an image at
    the chip's bootloader offset (esp_image.expected_written is the oracle)."""
    mode = recipe.get("flash_mode", "keep")
    size = recipe.get("flash_size", "keep")
    freq = recipe.get("flash_freq", "keep")
    if size not in ("keep", "detect"):
        size = int(size[:-2]) * (MIB if size.endswith("MB") else 1024)
    out = []
    for im in images:
        if chip not in img.CHIPS:
            check(im.offset != boot_offset(chip), "TEST: no oracle for %s bootloaders" % chip)
            out.append((im.offset, img.pad4(im.data)))
        else:
            out.append((im.offset, img.expected_written(chip, im.offset, im.data, mode, size,
                                                        freq, detected_size=flash_size)))
    return sorted(out)


def check_dump(sim, writes, what):
    dump = sim.stop_and_dump()
    size = sim.ready["flash_size"]
    check(len(dump) == size, "SIM: %s dump is %d bytes, flash is %d" % (what, len(dump), size))
    exp = img.expected_flash(size, writes)
    diff = img.first_difference(dump, exp)
    if diff is not None:
        where = "outside every image"
        for off, data in writes:
            if off <= diff[0] < off + len(data):
                where = "in the image at 0x%x (+0x%x)" % (off, diff[0] - off)
        raise TestFailure("FLASH CONTENT: %s (%s %s): first difference at 0x%x %s, %d bytes "
                          "differ" % (what, sim.chip, sim.transport, diff[0], where, diff[1]))


def check_pass_row(db, row, sim, writes):
    """A passing job: identity from the sim's ready line, and job_images as the oracle says."""
    r = sim.ready
    tag = "slot %s (%s %s)" % (row["slot"], sim.chip, sim.transport)
    check(row["result"] == "pass" and row["error_class"] is None,
          "HOST: %s: result %r, class %r, message %r" % (tag, row["result"], row["error_class"],
                                                          row["message"]))
    check(UUID_RE.match(row["uuid"] or ""), "HOST: %s: uuid %r" % (tag, row["uuid"]))
    check(row["chip"] == sim.chip, "HOST: %s: chip %r, expected %r" % (tag, row["chip"],
                                                                       sim.chip))
    check(row["mac"] == r["mac"], "HOST: %s: mac %r, the sim's is %r" % (tag, row["mac"],
                                                                         r["mac"]))
    check(row["flash_id"] == r["flash_id"], "HOST: %s: flash_id %r, the sim's is %r"
          % (tag, row["flash_id"], r["flash_id"]))
    check(row["flash_size"] == r["flash_size"], "HOST: %s: flash_size %r, the sim's is %r"
          % (tag, row["flash_size"], r["flash_size"]))
    if sim.chip != "esp8266":
        check(row["revision"] == r["revision"], "HOST: %s: revision %r, the sim's is %r"
              % (tag, row["revision"], r["revision"]))
    check(row["seq"] is not None and row["finished_at"], "HOST: %s: no seq/finished_at" % tag)
    check(row["port"] == sim.port, "HOST: %s: port %r, expected %r" % (tag, row["port"],
                                                                       sim.port))
    ims = db_query(db, "SELECT * FROM job_images WHERE job_uuid = ? ORDER BY offset",
                   (row["uuid"],), readonly=False)
    check(ims is not None and [(i["offset"], i["size"]) for i in ims]
          == [(off, len(data)) for off, data in writes],
          "HOST: %s: job_images (offset, size) %r, expected %r"
          % (tag, ims and [(i["offset"], i["size"]) for i in ims],
             [(off, len(data)) for off, data in writes]))
    for i, (off, data) in zip(ims, writes):
        check(i["md5"] == hashlib.md5(data).hexdigest(),
              "HOST: %s: job_images md5 at 0x%x is %s, the written bytes have %s"
              % (tag, off, i["md5"], hashlib.md5(data).hexdigest()))
        check(i["verified"] == (0 if sim.chip == "esp8266" else 1),
              "HOST: %s: job_images.verified %r at 0x%x" % (tag, i["verified"], off))


def write_config(ctx, fname, slots, recipe=None, db="station.db", **extra):
    cfg = {"id": "itest", "name": "integration test station", "database": db,
           "listen": "127.0.0.1:%d" % free_tcp_port()}
    if recipe:
        cfg["recipe"] = os.path.basename(recipe)
    cfg.update(extra)
    cfg["slots"] = slots
    return ctx.write_file(fname, json.dumps(cfg, indent=2).encode()), ctx.path(db)


def slot_entry(name, sim, start="auto", recipe=None):
    s = {"name": name, "port": sim.port, "start": start}
    if recipe:
        s["recipe"] = os.path.basename(recipe)
    return s


def events_in_state(db, uuid, state):
    rows = db_query(db, "SELECT n FROM job_events WHERE job_uuid = ? AND kind = 'state' AND "
                        "state = ?", (uuid, state))
    return bool(rows)


def signal_sim(sim, sig):
    check(sim.proc.poll() is None, "SIM: espsim %s died (status %s)" % (sim.tag,
                                                                        sim.proc.returncode))
    sim.proc.send_signal(sig)


def check_sim_survived_usr2(sim):
    time.sleep(0.3)
    if sim.proc.poll() is not None:
        raise TestFailure(
            "SIM: espsim %s exited (status %s) on SIGUSR2: BLOCKED on the simulator's "
            "\"new board\" feature (SIGUSR2: new MAC, erased flash), which this espsim lacks"
            % (sim.tag, sim.proc.returncode))


# ---------------------------------------------------------------- case 1: eight mixed boards

# (chip, transport, JEDEC ID); MACs are fixed per slot so that a constant cannot pass.
EIGHT = [("esp32", "rfc2217", 0xEF4016), ("esp32s3", "pty", 0xEF4017),
         ("esp32c3", "rfc2217", 0xC84016), ("esp8266", "pty", 0xEF4016),
         ("esp32", "pty", 0xEF4015), ("esp32c6", "rfc2217", 0xEF4016),
         ("esp32c3", "pty", 0xEF4016), ("esp8266", "rfc2217", 0x204016)]
OUI = {"esp8266": "18:fe:34", "esp32": "24:0a:c4", "esp32s3": "34:85:18", "esp32c3": "60:55:f9",
       "esp32c6": "40:4c:ca", "esp32s2": "7c:df:a1", "esp32h2": "74:4d:bd"}


def eight(ctx, fault_slot=None, fault=None, fault_class=None):
    chips = sorted({c for c, _, _ in EIGHT})
    blob = Image(0x8000, "blob.bin", img.compressible_bytes("eight-blob", 3001), "blob")
    app = Image(0x10000, "app.bin", img.app_image("eight-app", 192 * 1024), "app")
    station_recipe, station_rec = write_recipe(ctx, "station-recipe.json", chips, [blob, app])
    # Slot 7 (esp32c3, pty) has its own recipe with a bootloader whose header is patched
    # (PROTOCOL.md §11.4), slot 4 (esp8266, pty) one with fixed flash parameters.
    c3_boot = Image(0x0, "boot-c3.bin", img.bootloader_image("esp32c3", "eight"), "bootloader",
                    boot=True)
    c3_recipe, c3_rec = write_recipe(ctx, "c3-recipe.json", "esp32c3", [c3_boot, app],
                                     flash_mode="dio", flash_size="detect", flash_freq="80m")
    e8_boot = Image(0x0, "boot-8266.bin", img.bootloader_image("esp8266", "eight"),
                    "bootloader", boot=True)
    e8_recipe, e8_rec = write_recipe(ctx, "e8-recipe.json", "esp8266", [e8_boot, blob],
                                     flash_mode="dout", flash_size="4MB", flash_freq="40m")
    per_slot = {6: (c3_recipe, c3_rec, [c3_boot, app]), 3: (e8_recipe, e8_rec, [e8_boot, blob])}

    sims, slots = [], []
    for i, (chip, tr, jedec) in enumerate(EIGHT):
        faults = [fault] if i == fault_slot else []
        mac = "%s:%02x:51:%02x" % (OUI[chip], 0x30 + i, 0x70 + i)
        s = StationSim(ctx, chip, tr, mac=mac, jedec=jedec, faults=faults, tag="s%d" % (i + 1))
        check(s.ready["mac"] == mac, "SIM: ready mac %r, expected %r" % (s.ready["mac"], mac))
        sims.append(s)
        slots.append(slot_entry("A%d" % (i + 1), s,
                                recipe=per_slot[i][0] if i in per_slot else None))
    cfg, db = write_config(ctx, "station.json", slots, recipe=station_recipe,
                           probe_interval_ms=300)
    d = serve(ctx, cfg)
    rows = wait_jobs(db, lambda rs: len(finished(rs)) == 8, 60, "8 finished jobs", d)
    time.sleep(0.5)  # no further job may start: every slot is in auto mode
    rows = jobs(db)
    check(len(rows) == 8, "HOST: %d jobs, expected exactly 8 (auto = one job per board)\n%s"
          % (len(rows), summarize(rows)))
    d.stop()
    by_slot = {r["slot"]: r for r in rows}
    check(sorted(by_slot) == ["A%d" % (i + 1) for i in range(8)],
          "HOST: one job per slot expected\n" + summarize(rows))
    for i, s in enumerate(sims):
        row = by_slot["A%d" % (i + 1)]
        ims, rec = (per_slot[i][2], per_slot[i][1]) if i in per_slot else ([blob, app],
                                                                           station_rec)
        writes = expected_writes(s.chip, ims, rec, s.ready["flash_size"])
        if i == fault_slot:
            check(row["result"] == "fail" and row["error_class"] == fault_class,
                  "HOST: faulty slot A%d (%s): result %r class %r, expected fail/%s (%s)"
                  % (i + 1, fault, row["result"], row["error_class"], fault_class,
                     row["message"]))
            check(row["message"] and row["failed_state"], "HOST: failed job without message "
                  "or failed_state: %r" % row)
            check(row["mac"] == s.ready["mac"] and row["chip"] == s.chip,
                  "HOST: failed job's identity %r/%r, sim %r/%r"
                  % (row["chip"], row["mac"], s.chip, s.ready["mac"]))
            dump = s.stop_and_dump()
            if fault_class == "nak":
                # nak_code is the status word as the CLI prints it: status 1, error 6
                check(row["nak_op"] == 0x10 and row["nak_code"] == 0x0106,
                      "HOST: nak_op/nak_code %r/%r, expected 0x10/0x0106"
                      % (row["nak_op"], row["nak_code"]))
                # the NAKed FLASH_DEFL_BEGIN was never executed: nothing was erased or written
                check(dump == b"\xff" * len(dump), "FLASH CONTENT: flash written although "
                      "FLASH_DEFL_BEGIN was refused")
            else:
                check(dump != img.expected_flash(len(dump), writes),
                      "TEST: the bitflip fault left the flash intact")
            continue
        check_pass_row(db, row, s, writes)
        check_dump(s, writes, "slot A%d" % (i + 1))
    check_db_integrity(db)


def case_eight_mixed(ctx):
    eight(ctx)


def case_eight_fault_nak(ctx):
    eight(ctx, fault_slot=2, fault="nak:0x10:6", fault_class="nak")


def case_eight_fault_bitflip(ctx):
    eight(ctx, fault_slot=1, fault="bitflip", fault_class="md5_mismatch")


# ---------------------------------------------------------------- case 2: 32 slots

def case_thirty_two(ctx):
    n = 32
    chips = ("esp32", "esp32s3", "esp32c3", "esp8266")
    app = Image(0x10000, "app.bin", img.app_image("thirty-two", 64 * 1024), "app")
    recipe, rec = write_recipe(ctx, "recipe.json", list(chips), [app])
    sims, slots = [], []
    for i in range(n):
        chip = chips[i % 4]
        mac = "%s:%02x:32:%02x" % (OUI[chip], i, 0x80 + i)
        s = StationSim(ctx, chip, "pty" if i % 2 == 0 else "tcp", mac=mac, jedec=0xEF4014,
                       tag="s%02d" % (i + 1))
        sims.append(s)
        slots.append(slot_entry("%s%d" % ("ABCD"[i // 8], i % 8 + 1), s))
    cfg, db = write_config(ctx, "station.json", slots, recipe=recipe, probe_interval_ms=300)
    t0 = time.monotonic()
    d = serve(ctx, cfg)
    rows = wait_jobs(db, lambda rs: len(finished(rs)) == n, 90, "%d finished jobs" % n, d)
    took = time.monotonic() - t0
    rows = jobs(db)
    d.stop()
    print("32 slots: all %d jobs finished %.1f s after the daemon started" % (n, took))
    check(len(rows) == n, "HOST: %d jobs, expected %d\n%s" % (len(rows), n, summarize(rows)))
    by_slot = {r["slot"]: r for r in rows}
    for i, s in enumerate(sims):
        name = slots[i]["name"]
        check(name in by_slot, "HOST: no job for slot %s\n%s" % (name, summarize(rows)))
        writes = expected_writes(s.chip, [app], rec, s.ready["flash_size"])
        check_pass_row(db, by_slot[name], s, writes)
        check_dump(s, writes, "slot %s" % name)
    check_db_integrity(db)


# ---------------------------------------------------------------- case 3: recipes

def case_recipe_check(ctx):
    data = img.app_image("recipe-check", 8192)
    ctx.write_file("app.bin", data)
    sha = hashlib.sha256(data).hexdigest()
    good = {"name": "r", "version": "1", "chip": ["esp32", "esp32c3"],
            "images": [{"offset": "0x10000", "file": "app.bin", "sha256": sha}]}

    def variant(**changes):
        r = json.loads(json.dumps(good))
        for k, v in changes.items():
            if k == "image":
                r["images"][0].update(v)
            elif v is None:
                del r[k]
            else:
                r[k] = v
        return json.dumps(r)

    p = ctx.write_file("good.json", json.dumps(good).encode())
    r = run_espstation(ctx, ["recipe", "check", p], timeout=20)
    harness.check_no_crash(r)
    check(r.status == 0 and "OK" in r.out, "HOST: a good recipe was not accepted\n"
          + r.describe())
    expect_hash = hashlib.sha256(open(p, "rb").read()).hexdigest()
    check(expect_hash in r.out, "HOST: recipe check does not print the recipe's sha256 %s\n%s"
          % (expect_hash, r.describe()))

    bad = [
        ("syntax", '{"name": "r", "version": "1",\n "chip": "esp32",,}', r"\$: .*JSON",
         "recipe_invalid"),
        ("missing-field", variant(version=None), r"\$: .*version", "recipe_invalid"),
        ("wrong-type", variant(baud="fast"), r"\$\.baud: ", "recipe_invalid"),
        ("bad-offset", variant(image={"offset": "0x10001"}), r"\$\.images\[0\]\.offset: ",
         "recipe_invalid"),
        ("unknown-chip", variant(chip="esp99"), r"\$\.chip: .*esp99", "recipe_invalid"),
        ("unknown-property", variant(verfy=True), r"\$\.verfy: ", "recipe_invalid"),
        ("sha256-mismatch", variant(image={"sha256": hashlib.sha256(b"x").hexdigest()}),
         r"\$\.images\[0\]\.sha256: ", "image_invalid"),
        ("missing-file", variant(image={"file": "no-such.bin"}),
         r"\$\.images\[0\]\.file: .*no-such\.bin", "image_missing"),
    ]
    for name, text, rx, cls in bad:
        p = ctx.write_file("bad-%s.json" % name, text.encode())
        r = run_espstation(ctx, ["recipe", "check", p], timeout=20)
        harness.check_no_crash(r)
        check(r.status == 1, "HOST: recipe check of a %s recipe: exit %s, expected 1\n%s"
              % (name, r.status, r.describe()))
        check(re.search(rx, r.err), "HOST: recipe check of a %s recipe: no message matching "
              "/%s/\n%s" % (name, rx, r.describe()))
        check(cls in r.err, "HOST: recipe check of a %s recipe does not name the class %s\n%s"
              % (name, cls, r.describe()))


# fixture dir -> (chip, transport, JEDEC ID)
# v4.0 says flash_size "detect": an 8 MB flash makes the patch visible (the image says 4 MB).
IMPORTS = {"idf-v4.0": ("esp32", "rfc2217", 0xEF4017),
           "idf-v5.x": ("esp32c3", "pty", 0xEF4016),
           "idf-v6.0": ("esp32s3", "rfc2217", 0xEF4017)}


def recipe_import(ctx, fixture):
    chip, tr, jedec = IMPORTS[fixture]
    src = os.path.join(FIXTURES, fixture, "flasher_args.json")
    with open(src) as f:
        fa = json.load(f)
    os.makedirs(ctx.path("rec"))
    out = ctx.path("rec/recipe.json")
    r = run_espstation(ctx, ["recipe", "import", src, "-o", out], timeout=20)
    harness.check_no_crash(r)
    check(r.status == 0 and os.path.exists(out), "HOST: recipe import of %s failed\n%s"
          % (fixture, r.describe()))
    # deterministic: a second import gives the same bytes
    out2 = ctx.path("rec/recipe2.json")
    r2 = run_espstation(ctx, ["recipe", "import", src, "-o", out2], timeout=20)
    check(r2.status == 0 and open(out, "rb").read() == open(out2, "rb").read(),
          "HOST: importing %s twice gave different recipes\n%s" % (fixture, r2.describe()))
    # an existing recipe is kept, and the refusal names the option that overwrites it
    before = open(out, "rb").read()
    with open(out, "ab") as f:
        f.write(b" ")
    r3 = run_espstation(ctx, ["recipe", "import", src, "-o", out], timeout=20)
    harness.check_no_crash(r3)
    check(r3.status != 0 and "--force" in r3.err and open(out, "rb").read() == before + b" ",
          "HOST: importing over an existing recipe: not refused naming --force\n%s"
          % r3.describe())
    r3 = run_espstation(ctx, ["recipe", "import", src, "-o", out, "--force"], timeout=20)
    check(r3.status == 0 and open(out, "rb").read() == before,
          "HOST: recipe import --force did not overwrite\n%s" % r3.describe())
    with open(out) as f:
        rec = json.load(f)
    chips = rec["chip"] if isinstance(rec["chip"], list) else [rec["chip"]]
    check(chips == [chip], "HOST: imported chip %r, expected [%r]" % (rec["chip"], chip))
    want = sorted((int(off, 0), os.path.join(FIXTURES, fixture, fn))
                  for off, fn in fa["flash_files"].items())
    got = sorted((int(str(i["offset"]), 0),
                  os.path.normpath(os.path.join(os.path.dirname(out), i["file"])))
                 for i in rec["images"])
    check([o for o, _ in got] == [o for o, _ in want] and
          all(os.path.samefile(a, b) for (_, a), (_, b) in zip(got, want)),
          "HOST: imported images %r, flasher_args.json has %r" % (got, want))
    fs = fa["flash_settings"]
    for k in ("flash_mode", "flash_size", "flash_freq"):
        check(rec.get(k) == fs[k], "HOST: imported %s %r, flasher_args.json says %r"
              % (k, rec.get(k), fs[k]))
    images = []
    for off, path in want:
        with open(path, "rb") as f:
            data = f.read()
        images.append(Image(off, path, data, boot=off == boot_offset(chip)))

    s = StationSim(ctx, chip, tr, mac="%s:%02x:44:01" % (OUI[chip], len(fixture)), jedec=jedec,
                   tag="sim")
    slot = dict(slot_entry("A1", s), recipe="rec/recipe.json")  # relative to the config
    cfg, db = write_config(ctx, "station.json", [slot], probe_interval_ms=300)
    d = serve(ctx, cfg)
    rows = wait_jobs(db, lambda rs: len(finished(rs)) == 1, 30, "the imported recipe's job", d)
    d.stop()
    writes = expected_writes(chip, images, rec, s.ready["flash_size"])
    boots = [w for w, im in zip(writes, sorted(images, key=lambda x: x.offset)) if im.boot]
    check(len(boots) == 1 and boots[0][1] != img.pad4(
        [im.data for im in images if im.boot][0]),
        "TEST: the %s bootloader should need patching (flash params %r)" % (fixture, fs))
    check_pass_row(db, rows[0], s, writes)
    check_dump(s, writes, fixture)


def case_recipe_import_v4_0(ctx):
    recipe_import(ctx, "idf-v4.0")


def case_recipe_import_v5_x(ctx):
    recipe_import(ctx, "idf-v5.x")


def case_recipe_import_v6_0(ctx):
    recipe_import(ctx, "idf-v6.0")


def case_recipe_import_encrypted(ctx):
    src = os.path.join(FIXTURES, "encrypted", "flasher_args.json")
    out = ctx.path("recipe.json")
    r = run_espstation(ctx, ["recipe", "import", src, "-o", out], timeout=20)
    harness.check_no_crash(r)
    check(r.status == 1, "HOST: import of an encrypted build: exit %s, expected 1\n%s"
          % (r.status, r.describe()))
    check("encrypt" in r.err.lower(), "HOST: the refusal does not mention encryption\n"
          + r.describe())
    check(not os.path.exists(out), "HOST: a recipe was written for an encrypted build")


# ---------------------------------------------------------------- cases 4, 5: crash and stop

def slow_recipe(ctx):
    """A recipe whose job lasts several seconds on a --realtime sim: 64 KiB that deflate cannot
    shrink, at 115200 baud (about 6 s on the wire)."""
    app = Image(0x10000, "slow.bin", img.prng_bytes("slow", 64 * 1024), "app")
    return write_recipe(ctx, "slow-recipe.json", ["esp32", "esp32c3", "esp8266"], [app])


def wait_mid_flash(db, slot, d, timeout=30):
    """The slot's job is running and has reached the data phase."""
    def pred(rows):
        return any(r["slot"] == slot and r["result"] == "running" and
                   events_in_state(db, r["uuid"], "data") for r in rows)
    rows = wait_jobs(db, pred, timeout, "slot %s's job writing flash" % slot, d)
    return [r for r in rows if r["slot"] == slot and r["result"] == "running"][0]


def case_crash_restart(ctx):
    quick = Image(0x10000, "quick.bin", img.app_image("quick", 16 * 1024), "app")
    qrecipe, _ = write_recipe(ctx, "quick-recipe.json", ["esp32c3", "esp8266"], [quick])
    srecipe, _ = slow_recipe(ctx)
    f1 = StationSim(ctx, "esp32c3", "pty", tag="fast1")
    f2 = StationSim(ctx, "esp8266", "pty", tag="fast2")
    rt = StationSim(ctx, "esp32", "rfc2217", tag="realtime", extra=["--realtime"])
    slots = [slot_entry("F1", f1), slot_entry("F2", f2), slot_entry("R1", rt, recipe=srecipe)]
    cfg, db = write_config(ctx, "station.json", slots, recipe=qrecipe, probe_interval_ms=300)
    d = serve(ctx, cfg)
    running = wait_mid_flash(db, "R1", d)
    before = wait_jobs(db, lambda rs: len([r for r in rs if r["result"] == "pass"]) == 2, 20,
                       "the two quick jobs", d)
    running = [r for r in jobs(db) if r["uuid"] == running["uuid"]][0]
    check(running["result"] == "running", "TEST: the slow job ended before the crash (%r)"
          % running["result"])
    d.kill9()
    rows = jobs(db, readonly=False)
    check([r["result"] for r in rows if r["uuid"] == running["uuid"]] == ["running"],
          "TEST: the row is not left running by the crash")
    done_before = {r["uuid"]: r for r in rows if r["result"] != "running"}
    check(len(done_before) == 2, "TEST: expected 2 finished jobs before the crash\n"
          + summarize(rows))

    # Restart on the same database with every slot manual: no new job may start.
    cfg2, _ = write_config(ctx, "station-manual.json",
                           [dict(s, start="manual") for s in slots], recipe=qrecipe,
                           probe_interval_ms=300)
    d2 = serve(ctx, cfg2, tag="serve2")
    rows = wait_jobs(db, lambda rs: all(r["result"] != "running" for r in rs), 15,
                     "the crashed job marked interrupted", d2)
    d2.wait_stderr(r"1 job\(s\) left running by an earlier crash marked interrupted", 5,
                   "the start-up message about the interrupted job")
    time.sleep(0.5)
    rows = jobs(db)
    d2.stop()
    rows = jobs(db, readonly=False)
    check(len(rows) == 3, "HOST: %d jobs after the restart, expected 3\n%s"
          % (len(rows), summarize(rows)))
    old = [r for r in rows if r["uuid"] == running["uuid"]]
    check(len(old) == 1 and old[0]["result"] == "interrupted",
          "HOST: the crashed job is %r, expected 'interrupted'" % (old and old[0]["result"]))
    check(old[0]["seq"] is not None and old[0]["finished_at"],
          "HOST: the interrupted job has no seq/finished_at")
    check(old[0]["seq"] > max(r["seq"] for r in done_before.values()),
          "HOST: the interrupted job's seq %r is not after the finished jobs' seqs"
          % old[0]["seq"])
    for uuid, r in done_before.items():
        now = [x for x in rows if x["uuid"] == uuid]
        check(now == [r], "HOST: finished job %s changed or vanished across the crash: %r -> %r"
              % (uuid, r, now))
    check_db_integrity(db)
    check(rt.proc.poll() is None, "SIM: the real-time sim died")


def case_sigterm_mid_job(ctx):
    srecipe, _ = slow_recipe(ctx)
    rt = StationSim(ctx, "esp32", "rfc2217", tag="realtime", extra=["--realtime"])
    cfg, db = write_config(ctx, "station.json", [slot_entry("R1", rt)], recipe=srecipe,
                           probe_interval_ms=300)
    d = serve(ctx, cfg)
    running = wait_mid_flash(db, "R1", d)
    took = d.stop(timeout=5)
    ctx.log("daemon stopped %.2f s after SIGTERM" % took)
    rows = jobs(db, readonly=False)
    check(len(rows) == 1, "HOST: %d jobs, expected 1\n%s" % (len(rows), summarize(rows)))
    # docs/STATION.md: "running jobs are cancelled, recorded as `interrupted`"
    check(rows[0]["uuid"] == running["uuid"] and rows[0]["result"] == "interrupted",
          "HOST: the job stopped by SIGTERM is %r, docs/STATION.md says 'interrupted'\n%s"
          % (rows[0]["result"], summarize(rows)))
    check(rows[0]["seq"] is not None and rows[0]["finished_at"], "HOST: no seq/finished_at")
    check("stopped" in d.stderr_text(), "HOST: no 'stopped' line\n" + d.describe())
    # the port was closed: the sim saw its client go
    deadline = time.monotonic() + 3
    while rt.count_events("disconnect") < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    check(rt.count_events("disconnect") >= 1, "HOST: the RFC 2217 connection was not closed")
    check_db_integrity(db)


def case_sigterm_while_probing(ctx):
    """SIGTERM while a slot probes an always-present port that has no board (a silent device):
    the probe is cancelled and the daemon exits, no job recorded."""
    app = Image(0x10000, "app.bin", img.app_image("probe", 8192), "app")
    recipe, _ = write_recipe(ctx, "recipe.json", ["esp32"], [app])
    s = StationSim(ctx, "esp32", "rfc2217", faults=["silent"], tag="silent")
    cfg, db = write_config(ctx, "station.json", [slot_entry("P1", s)], recipe=recipe,
                           probe_interval_ms=300)
    d = serve(ctx, cfg)
    d.wait_stderr(r"(?s)\[P1\] probing.*\[P1\] probing", 15, "a second probe")
    d.stop(timeout=5)
    rows = jobs(db, readonly=False)
    check(rows == [], "HOST: probes were recorded as jobs\n" + summarize(rows))


# ---------------------------------------------------------------- case 6: loop mode

def case_loop_rfc2217(ctx):
    app = Image(0x10000, "app.bin", img.app_image("loop", 32 * 1024), "app")
    recipe, rec = write_recipe(ctx, "recipe.json", ["esp32c3"], [app])
    s = StationSim(ctx, "esp32c3", "rfc2217", mac="60:55:f9:10:0b:01", tag="loop")
    cfg, db = write_config(ctx, "station.json", [slot_entry("L1", s, start="loop")],
                           recipe=recipe, probe_interval_ms=300)
    d = serve(ctx, cfg)
    rows = wait_jobs(db, lambda rs: len(finished(rs)) >= 1, 20, "the first board's job", d)
    writes = expected_writes("esp32c3", [app], rec, s.ready["flash_size"])
    check_pass_row(db, rows[0], s, writes)
    resets0 = s.count_events("reset")
    time.sleep(3.0)  # ten probe intervals with the same board in the fixture
    rows = jobs(db)
    check(len(rows) == 1, "HOST: the same board was flashed again in loop mode\n"
          + summarize(rows))
    probes = s.count_events("reset") - resets0
    check(probes >= 3, "HOST: only %d resets of the board in 3 s: the slot does not probe every "
          "300 ms" % probes)
    ctx.log("%d probe resets while the finished board stayed" % probes)

    t_sig = time.time() * 1000
    signal_sim(s, signal.SIGUSR2)  # espsim: take the board out, put a new one in (new MAC)
    check_sim_survived_usr2(s)
    rows = wait_jobs(db, lambda rs: len(finished(rs)) >= 2, 20, "the new board's job", d)
    time.sleep(1.5)  # five more intervals: the new board is not flashed twice either
    rows = jobs(db)
    check(len(rows) == 2, "HOST: %d jobs after one board swap, expected 2\n%s"
          % (len(rows), summarize(rows)))
    new = rows[1]
    check(new["result"] == "pass", "HOST: the new board's job: %r\n%s" % (new["result"],
                                                                         summarize(rows)))
    check(new["mac"] != rows[0]["mac"], "HOST: the new job has the old MAC %r" % new["mac"])
    swaps = [ev for ev in s.events() if ev.get("event") == "new_board"]
    check(len(swaps) == 1 and swaps[0].get("t_ms", 0) >= t_sig - 1000,
          "SIM: expected one new_board event after SIGUSR2, got %r" % swaps)
    check(new["mac"] == swaps[0]["mac"], "HOST: new job's MAC %r, the sim's new board has %r"
          % (new["mac"], swaps[0]["mac"]))
    d.stop()
    check_dump(s, writes, "the swapped board")


# ---------------------------------------------------------------- case 7: config errors

def case_config_errors(ctx):
    slot = {"name": "A1", "port": "/dev/null-no-such-port", "start": "manual"}
    good = {"database": "x.db", "slots": [slot, dict(slot, name="A2", port="/dev/null-2")]}

    def mutate(f):
        c = json.loads(json.dumps(good))
        f(c)
        return json.dumps(c)

    cases = [
        ("malformed", '{"database": "x.db", "slots": [', r"\$: .*JSON"),
        ("unknown-key", mutate(lambda c: c.update(databse="y.db")), r"\$\.databse: "),
        ("unknown-slot-key", mutate(lambda c: c["slots"][1].update(strat="auto")),
         r"\$\.slots\[1\]\.strat: "),
        ("duplicate-port", mutate(lambda c: c["slots"][1].update(port=slot["port"])),
         r"\$\.slots\[1\]\.port: "),
        ("duplicate-name", mutate(lambda c: c["slots"][1].update(name="A1")),
         r"\$\.slots\[1\]\.name: "),
        ("bad-start", mutate(lambda c: c["slots"][0].update(start="sometimes")),
         r"\$\.slots\[0\]\.start: "),
        ("no-port", mutate(lambda c: c["slots"][0].pop("port")), r"\$\.slots\[0\]\.port: "),
        # a typo in a port spec is refused at load, not shown as an empty fixture (issue 15)
        ("bad-port-number", mutate(lambda c: c["slots"][1].update(
            port="rfc2217://127.0.0.1:19199x")), r"\$\.slots\[1\]\.port: .*19199x"),
        ("bad-port-range", mutate(lambda c: c["slots"][0].update(port="socket://host:70000")),
         r"\$\.slots\[0\]\.port: "),
        ("bad-port-host", mutate(lambda c: c["slots"][0].update(port="socket://:4000")),
         r"\$\.slots\[0\]\.port: "),
        ("bad-port-relative", mutate(lambda c: c["slots"][0].update(port="COM3")),
         r"\$\.slots\[0\]\.port: .*COM3"),
        ("probe-interval", mutate(lambda c: c.update(probe_interval_ms=50)),
         r"\$\.probe_interval_ms: "),
        ("no-slots", mutate(lambda c: c.pop("slots")), r"\$\.slots: "),
        ("wrong-type", mutate(lambda c: c.update(slots={"A1": slot})), r"\$\.slots: "),
        ("missing-stub-dir", mutate(lambda c: c.update(stub_dir="no-such-stubs")),
         r"stub_dir .*no-such-stubs.*No such file.*stub_flasher"),
    ]
    for name, text, rx in cases:
        p = ctx.write_file("bad-%s.json" % name, text.encode())
        r = run_espstation(ctx, ["serve", "--config", p], timeout=10)
        harness.check_no_crash(r)
        check(r.status == 2, "HOST: serve with a %s config: exit %s, expected 2\n%s"
              % (name, r.status, r.describe()))
        check(re.search(rx, r.err), "HOST: serve with a %s config: no message matching /%s/\n%s"
              % (name, rx, r.describe()))
        check(not os.path.exists(ctx.path("x.db")) and not os.path.exists(ctx.path("y.db")),
              "HOST: serve with a %s config created a database" % name)


def case_broken_recipe_slot(ctx):
    app = Image(0x10000, "app.bin", img.app_image("broken", 16 * 1024), "app")
    good, rec = write_recipe(ctx, "good.json", ["esp32", "esp32c3"], [app])
    with open(good) as f:
        bad = json.load(f)
    bad["images"][0]["sha256"] = hashlib.sha256(b"another build").hexdigest()
    ctx.write_file("bad-sha.json", json.dumps(bad).encode())
    bad["images"][0]["sha256"] = rec["images"][0]["sha256"]
    bad["images"][0]["file"] = "missing.bin"
    ctx.write_file("bad-file.json", json.dumps(bad).encode())
    b1 = StationSim(ctx, "esp32", "rfc2217", tag="b1")
    b2 = StationSim(ctx, "esp32c3", "pty", tag="b2")
    ok = StationSim(ctx, "esp32c3", "pty", tag="ok")
    slots = [slot_entry("B1", b1, recipe="bad-sha.json"),
             slot_entry("B2", b2, start="loop", recipe="bad-file.json"),
             slot_entry("OK", ok)]
    cfg, db = write_config(ctx, "station.json", slots, recipe=good, probe_interval_ms=300)
    d = serve(ctx, cfg)
    rows = wait_jobs(db, lambda rs: len(finished(rs)) >= 1, 20, "the good slot's job", d)
    time.sleep(1.0)
    rows = jobs(db)
    d.check_alive()
    err = d.stderr_text()
    d.stop()
    check([r["slot"] for r in rows] == ["OK"], "HOST: jobs %r, expected one on slot OK\n%s"
          % ([r["slot"] for r in rows], summarize(rows)))
    check_pass_row(db, rows[0], ok, expected_writes("esp32c3", [app], rec,
                                                    ok.ready["flash_size"]))
    for slot, rx in (("B1", r"bad-sha\.json.*sha256"), ("B2", r"bad-file\.json.*missing\.bin")):
        check(re.search(r"\[%s\][^\n]*%s" % (slot, rx), err) or
              re.search(r"slot %s[^\n]*%s" % (slot, rx), err),
              "HOST: no message saying why slot %s cannot start (/%s/)\n%s"
              % (slot, rx, err[-3000:]))
    check(b1.count_events("connect") == 0, "HOST: slot B1 (broken recipe) touched its port")


# ---------------------------------------------------------------- reset modes: recipe and slot

def case_reset_modes(ctx):
    """One precedence rule (docs/STATION.md "Reset modes"): a slot's before/after are defaults
    that a recipe's own choice overrides. R1: slot after no_reset, recipe with a post-flash test
    (the test chooses hard_reset): the board is reset and the test passes (it used to fail every
    board with usage). R2: the same with "reset_override": true: the slot forbids the reset the
    test needs, so the recipe is refused for R2 before any board (no job, the reason logged).
    R3: recipe "before": "no-reset" on a default slot: the job syncs without a reset."""
    ready = "I (312) app: station ready"
    boot = Image(0x1000, "boot.bin", img.bootloader_image("esp32", "reset-modes"), "boot")
    app = Image(0x10000, "app.bin", img.app_image("reset-modes", 24 * 1024), "app")
    tested, _ = write_recipe(ctx, "tested.json", ["esp32"], [boot, app],
                             test={"expect": "station ready", "timeout_ms": 3000})
    nores, _ = write_recipe(ctx, "no-reset-before.json", ["esp32"], [app], before="no-reset")
    r1 = StationSim(ctx, "esp32", "rfc2217", tag="r1", mac="24:0a:c4:7e:57:21",
                    extra=["--app-period", "0", "--app-print", ready])
    r2 = StationSim(ctx, "esp32", "rfc2217", tag="r2", mac="24:0a:c4:7e:57:22",
                    extra=["--app-period", "0", "--app-print", ready])
    r3 = StationSim(ctx, "esp32", "pty", tag="r3", mac="24:0a:c4:7e:57:23")
    s1 = slot_entry("R1", r1, recipe=tested)
    s1["after"] = "no_reset"
    s2 = slot_entry("R2", r2, recipe=tested)
    s2["after"] = "no_reset"
    s2["reset_override"] = True
    s3 = slot_entry("R3", r3, recipe=nores)
    cfg, db = write_config(ctx, "station.json", [s1, s2, s3])
    d = serve(ctx, cfg)
    rows = wait_jobs(db, lambda rs: {r["slot"] for r in finished(rs)} >= {"R1", "R3"}, 60,
                     "a finished job on R1 and R3", d)
    time.sleep(0.5)
    rows = jobs(db)
    d.check_alive()
    err = d.stderr_text()
    d.stop()
    first = {}
    for r in finished(rows):
        first.setdefault(r["slot"], r)
    t1, t3 = first["R1"], first["R3"]
    check(t1["result"] == "pass", "HOST: R1 (recipe test over the slot's after no_reset) %s"
          % summarize([t1]))
    check(events_in_state(db, t1["uuid"], "test"), "HOST: R1's job never reached state test")
    check("R2" not in {r["slot"] for r in rows}, "HOST: R2 (reset_override no_reset and a "
          "recipe test) ran a job: %s" % summarize(rows))
    check(re.search(r"R2[^\n]*needs after hard_reset", err),
          "HOST: no message saying why slot R2 cannot use the recipe\n%s" % err[-3000:])
    check(r2.count_events("connect") == 0, "HOST: slot R2 (refused recipe) touched its port")
    check(t3["result"] == "pass", "HOST: R3 %s" % summarize([t3]))
    check(not events_in_state(db, t3["uuid"], "reset"),
          "HOST: R3's recipe says before no-reset, but its job went through state reset")


# ---------------------------------------------------------------- retry policy

def _retry_case(ctx, fault, attempts, expect, recipe_extra=None, bauds=None):
    """One auto slot with `fault`, recipe retry.attempts = `attempts`, a clean slot beside it.
    `expect` = [(result, error_class or None)] per attempt of the faulty slot's board."""
    app = Image(0x10000, "app.bin", img.app_image("retry", 24 * 1024), "app")
    fields = {"retry": {"attempts": attempts}}
    fields.update(recipe_extra or {})
    rec_path, rec = write_recipe(ctx, "retry.json", ["esp32"], [app], **fields)
    bad = StationSim(ctx, "esp32", "pty", faults=[fault], tag="bad")
    ok = StationSim(ctx, "esp32", "pty", tag="ok")
    cfg, db = write_config(ctx, "station.json", [slot_entry("R1", bad), slot_entry("OK", ok)],
                           recipe=rec_path)
    d = serve(ctx, cfg)
    rows = wait_jobs(db, lambda rs: len([r for r in finished(rs) if r["slot"] == "R1"])
                     >= len(expect) and any(r["slot"] == "OK" for r in finished(rs)), 40,
                     "%d attempts on R1 and the clean slot's job" % len(expect), d)
    time.sleep(1.0)  # nothing further may come: the board is decided
    rows = finished(jobs(db))
    d.check_alive()
    err = d.stderr_text()
    d.stop()
    r1 = [r for r in rows if r["slot"] == "R1"]
    got = [(r["result"], r["error_class"]) for r in r1]
    check(got == expect, "HOST: R1 attempts %r, expected %r\n%s" % (got, expect, summarize(rows)))
    check([r["attempt"] for r in r1] == list(range(1, len(expect) + 1)),
          "HOST: attempt numbers %r" % [r["attempt"] for r in r1])
    check([r["final"] for r in r1] == [0] * (len(expect) - 1) + [1],
          "HOST: final flags %r (only the deciding attempt is final)" % [r["final"] for r in r1])
    if bauds is not None:
        check([r["baud"] for r in r1] == bauds, "HOST: rates per attempt %r, expected %r"
              % ([r["baud"] for r in r1], bauds))
    check(len({r["mac"] for r in r1}) == 1, "HOST: attempts on different boards? %r"
          % [r["mac"] for r in r1])
    okr = [r for r in rows if r["slot"] == "OK"]
    check(len(okr) == 1 and okr[0]["result"] == "pass", "HOST: clean slot: %s" % summarize(okr))
    if len(expect) > 1:
        check(re.search(r"\[R1\][^\n]*attempt 1 of %d failed" % attempts, err),
              "HOST: no log line about the retry\n%s" % err[-3000:])


def case_retry_brownout(ctx):
    # espsim browns out once per board: the second attempt passes
    _retry_case(ctx, "brownout:2", 3, [("fail", "brownout"), ("pass", None)])


def case_retry_lower_baud(ctx):
    # retry.lower_baud: the second attempt flashes at half the first one's rate
    _retry_case(ctx, "brownout:2", 3, [("fail", "brownout"), ("pass", None)],
                recipe_extra={"baud": 921600, "retry": {"attempts": 3, "lower_baud": True}},
                bauds=[921600, 460800])


def case_retry_exhausted(ctx):
    # a bit flips in every write: every attempt fails the verification; no fourth attempt
    _retry_case(ctx, "bitflip", 3, [("fail", "md5_mismatch")] * 3)


def case_retry_not_for_wrong_chip(ctx):
    # a failure no retry can cure is decided at once
    app = Image(0x10000, "app.bin", img.app_image("retry", 8 * 1024), "app")
    rec_path, _ = write_recipe(ctx, "retry.json", ["esp32c3"], [app], retry={"attempts": 3})
    bad = StationSim(ctx, "esp32", "pty", tag="bad")
    cfg, db = write_config(ctx, "station.json", [slot_entry("R1", bad)], recipe=rec_path)
    d = serve(ctx, cfg)
    wait_jobs(db, lambda rs: len(finished(rs)) >= 1, 20, "the wrong-chip job", d)
    time.sleep(1.0)
    rows = finished(jobs(db))
    d.stop()
    check([(r["result"], r["error_class"], r["attempt"], r["final"]) for r in rows] ==
          [("fail", "wrong_chip", 1, 1)], "HOST: %s" % summarize(rows))


# ---------------------------------------------------------------- stub directory of the station

def case_station_stub_dir(ctx):
    """The config's stub_dir reaches the jobs: a slot whose recipe does not say otherwise runs
    the (synthetic) stub; a recipe with "stub": false stays on the ROM loader."""
    stubs = ctx.path("stubs")
    subprocess.run([sys.executable, os.path.join(REPO, "tests", "data", "mkstub.py"), stubs],
                   check=True, timeout=30)
    app = Image(0x10000, "app.bin", img.app_image("stubdir", 40 * 1024), "app")
    with_stub, _ = write_recipe(ctx, "with-stub.json", ["esp32"], [app])
    rom_only, _ = write_recipe(ctx, "rom-only.json", ["esp32"], [app], stub=False)
    a = StationSim(ctx, "esp32", "pty", tag="a")
    b = StationSim(ctx, "esp32", "pty", tag="b")
    cfg, db = write_config(ctx, "station.json",
                           [slot_entry("S1", a, recipe=with_stub),
                            slot_entry("S2", b, recipe=rom_only)], stub_dir="stubs")
    d = serve(ctx, cfg)
    rows = wait_jobs(db, lambda rs: len(finished(rs)) >= 2, 30, "both jobs", d)
    d.stop()
    check(all(r["result"] == "pass" for r in finished(rows)), "HOST: %s" % summarize(rows))
    check(a.count_events("stub") == 1, "HOST: slot S1 did not run the stub from stub_dir "
          "(espsim stub events: %d)" % a.count_events("stub"))
    check(b.count_events("stub") == 0, "HOST: slot S2's recipe says no stub, yet one ran")


def case_station_stub_choice(ctx):
    """A stub_dir holding 1/ and 2/ of esptool 5 (VERSION 5.3.1, issue 12): a recipe that does
    not choose runs esp-flasher-stub (2/), one with "stub_version": "legacy" the legacy stub
    (1/); espsim tells them apart by the upload (its stub event's kind) and the job row records
    which file ran (stub_name); a ROM-only recipe records none."""
    stubs = ctx.path("stubs")
    subprocess.run([sys.executable, os.path.join(REPO, "tests", "data", "mkstub.py"), stubs,
                    "--layout", "esptool5"], check=True, timeout=30)
    app = Image(0x10000, "app.bin", img.app_image("stubchoice", 40 * 1024), "app")
    dflt, _ = write_recipe(ctx, "default.json", ["esp32"], [app])
    legacy, _ = write_recipe(ctx, "legacy.json", ["esp32"], [app], stub_version="legacy")
    rom_only, _ = write_recipe(ctx, "rom-only.json", ["esp32"], [app], stub=False)
    sims = [StationSim(ctx, "esp32", "pty", tag=t) for t in ("a", "b", "c")]
    cfg, db = write_config(ctx, "station.json",
                           [slot_entry("S1", sims[0], recipe=dflt),
                            slot_entry("S2", sims[1], recipe=legacy),
                            slot_entry("S3", sims[2], recipe=rom_only)], stub_dir="stubs")
    d = serve(ctx, cfg)
    rows = wait_jobs(db, lambda rs: len(finished(rs)) >= 3, 40, "three jobs", d)
    d.stop()
    check(all(r["result"] == "pass" for r in finished(rows)), "HOST: %s" % summarize(rows))
    by_slot = {r["slot"]: r for r in finished(rows)}
    for slot, sim, kind, name in (("S1", sims[0], "esp-flasher-stub", "2/esp32.json"),
                                  ("S2", sims[1], "legacy", "1/esp32.json")):
        check(sim.count_events("stub", kind=kind) == 1 and sim.count_events("stub") == 1,
              "SIM: slot %s should have run %s (stub events: %r)"
              % (slot, kind, [e for e in sim.events() if e.get("event") == "stub"]))
        sn = by_slot[slot].get("stub_name")
        check(isinstance(sn, str) and sn.startswith(name) and "esptool 5.3.1" in sn,
              "HOST: slot %s job row stub_name %r, expected %s (..., esptool 5.3.1)"
              % (slot, sn, name))
    check(sims[2].count_events("stub") == 0 and by_slot["S3"].get("stub_name") is None,
          "HOST: slot S3 (ROM only): stub_name %r" % by_slot["S3"].get("stub_name"))


# ---------------------------------------------------------------- case 8: demo

PR_SET_CHILD_SUBREAPER = 36


def _children_of(pid):
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        fields = st.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid:
            out.append(int(d))
    return out


def _comm(pid):
    """The process's name, None when it is gone (or a zombie: it has exited)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                return None
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return None


def case_demo(ctx):
    # Orphans of the demo come to us, so a leaked espsim is seen (and cleaned up) here.
    harness.ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    db = ctx.path("demo.db")
    d = Daemon(ctx, ["demo", "--slots", "3", "--fast", "--db", db, "--listen",
                     "127.0.0.1:%d" % free_tcp_port()], tag="demo")
    sims = []
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(sims) < 3:
            sims = [p for p in _children_of(d.proc.pid) if _comm(p) == "espsim"]
            d.check_alive()
            time.sleep(0.1)
        check(len(sims) == 3, "HOST: demo runs %d espsim processes, expected 3" % len(sims))

        def enough(rs):
            done = [r for r in finished(rs) if r["result"] == "pass"]
            slots = {}
            for r in done:
                slots[r["slot"]] = slots.get(r["slot"], 0) + 1
            return len(slots) == 3 and max(slots.values()) >= 2
        wait_jobs(db, enough, 25, "a job on every slot and a swapped board flashed", d)
        rc, took = d.signal_and_wait(signal.SIGINT, 10)
        check(rc == 0, "HOST: demo exit status %s after SIGINT\n%s" % (rc, d.describe()))
        rows = jobs(db, readonly=False)
        check(all(r["result"] in ("pass", "interrupted") for r in rows),
              "HOST: demo jobs failed\n" + summarize(rows))
        done = [r for r in rows if r["result"] == "pass"]
        macs = [r["mac"] for r in done]
        check(len(set(macs)) == len(macs), "HOST: a demo board was flashed twice (MACs %r)\n%s"
              % (macs, summarize(rows)))
        check_db_integrity(db)
        left = [p for p in sims if _comm(p) == "espsim"]
        check(not left, "HOST: espsim processes %r left running after the demo stopped" % left)
    finally:
        for p in _children_of(os.getpid()):  # adopted orphans only: harness reaps its own
            if p not in (c.pid for c in harness._children):
                try:
                    os.kill(p, signal.SIGKILL)
                    os.waitpid(p, 0)
                except (ProcessLookupError, ChildProcessError):
                    pass


# ---------------------------------------------------------------- entry point


# ---------------------------------------------------------------- a slow disk (issue: loop)

def slow_disk_run(ctx, tag, slow_ms):
    """Eight boards (EIGHT), one auto job each, on a database whose every fsync takes slow_ms
    (the store's test VFS, ESTN_TEST_SLOW_FSYNC_MS; 0 = the normal disk). Returns the job rows
    by slot and the daemon's /metrics text taken after the last result."""
    blob = Image(0x8000, "blob.bin", img.compressible_bytes("slow-blob", 3001), "blob")
    app = Image(0x10000, "app.bin", img.app_image("slow-app", 192 * 1024), "app")
    chips = sorted({c for c, _, _ in EIGHT})
    recipe, _ = write_recipe(ctx, "%s-recipe.json" % tag, chips, [blob, app])
    slots = []
    for i, (chip, tr, jedec) in enumerate(EIGHT):
        mac = "%s:%02x:52:%02x" % (OUI[chip], 0x40 + i, 0x80 + i)
        sim = StationSim(ctx, chip, tr, mac=mac, jedec=jedec, tag="%s-s%d" % (tag, i + 1))
        slots.append(slot_entry("A%d" % (i + 1), sim))
    cfg, db = write_config(ctx, "%s.json" % tag, slots, recipe=recipe, db="%s.db" % tag,
                           probe_interval_ms=300)
    listen = json.loads(open(cfg).read())["listen"]
    if slow_ms:
        os.environ["ESTN_TEST_SLOW_FSYNC_MS"] = str(slow_ms)
    try:
        d = serve(ctx, cfg, tag=tag)
    finally:
        os.environ.pop("ESTN_TEST_SLOW_FSYNC_MS", None)
    rows = wait_jobs(db, lambda rs: len(finished(rs)) == 8, 60, "8 finished jobs", d)
    with urllib.request.urlopen("http://%s/metrics" % listen, timeout=10) as r:
        metrics = r.read().decode()
    d.stop(timeout=20)
    check_db_integrity(db)
    return {r["slot"]: r for r in rows}, metrics


def metric(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    check(m is not None, "HOST: /metrics has no %s\n%s" % (name, text[:2000]))
    return float(m.group(1))


def case_slow_disk(ctx):
    """Every commit's fsync takes 250 ms: the eight jobs keep their timing (each within 25 %
    + 0.5 s of the same board on the normal disk) and the event loop never stalls (lag < 20 ms),
    because the record is written on the store's writer thread, not on the loop."""
    base, base_metrics = slow_disk_run(ctx, "normal", 0)
    ctx.log("normal disk: loop lag max %.1f ms" % (metric(base_metrics,
                                                          "espstation_loop_lag_max_seconds") * 1e3))
    slow, metrics = slow_disk_run(ctx, "slow", 250)
    for slot in sorted(base):
        b, s = base[slot], slow[slot]
        check(b["result"] == "pass" and s["result"] == "pass",
              "HOST: slot %s: %s / %s (%s), expected pass on both disks"
              % (slot, b["result"], s["result"], s["message"]))
        check(s["duration_ms"] <= b["duration_ms"] * 1.25 + 500,
              "HOST: slot %s took %d ms with slow fsyncs, %d ms without: the disk held the jobs"
              % (slot, s["duration_ms"], b["duration_ms"]))
    lag = metric(metrics, "espstation_loop_lag_max_seconds")
    write_max = metric(metrics, "espstation_store_write_max_seconds")
    ctx.log("slow disk: loop lag max %.1f ms, longest store write %.0f ms" % (lag * 1e3,
                                                                           write_max * 1e3))
    check(write_max >= 0.25, "TEST: no store write took the injected 250 ms (%.3f s): the slow "
          "VFS was not in use" % write_max)
    check(lag < 0.020, "HOST: the event loop stalled %.1f ms during the slow-disk run" % (lag * 1e3))

CASES = {
    "eight-mixed": case_eight_mixed,
    "slow-disk": case_slow_disk,
    "eight-fault-nak": case_eight_fault_nak,
    "eight-fault-bitflip": case_eight_fault_bitflip,
    "thirty-two": case_thirty_two,
    "recipe-check": case_recipe_check,
    "recipe-import-v4.0": case_recipe_import_v4_0,
    "recipe-import-v5.x": case_recipe_import_v5_x,
    "recipe-import-v6.0": case_recipe_import_v6_0,
    "recipe-import-encrypted": case_recipe_import_encrypted,
    "crash-restart": case_crash_restart,
    "sigterm-mid-job": case_sigterm_mid_job,
    "sigterm-while-probing": case_sigterm_while_probing,
    "loop-rfc2217": case_loop_rfc2217,
    "config-errors": case_config_errors,
    "broken-recipe-slot": case_broken_recipe_slot,
    "reset-modes": case_reset_modes,
    "demo": case_demo,
    "retry-brownout": case_retry_brownout,
    "retry-exhausted": case_retry_exhausted,
    "retry-lower-baud": case_retry_lower_baud,
    "retry-not-for-wrong-chip": case_retry_not_for_wrong_chip,
    "stub-dir": case_station_stub_dir,
    "stub-choice": case_station_stub_choice,
}


def _with_daemon_log(fn):
    """On failure, the daemons' stderr tails go into the case's 'what ran' log."""
    def run(ctx):
        ctx.daemons = []
        try:
            fn(ctx)
        finally:
            for d in ctx.daemons:
                if d.proc.poll() is None:
                    harness._kill(d.proc)
                d._out.close()
                d._err.close()
                with open(d.err_path, "rb") as f:
                    tail = f.read().decode("utf-8", "replace")[-5000:]
                ctx.log("---- %s stderr (tail) ----\n%s" % (d.tag, tail))
    return run


if __name__ == "__main__":
    sys.exit(main({k: _with_daemon_log(v) for k, v in CASES.items()},
                  "espstation serve/recipe/demo end-to-end tests against espsim"))
