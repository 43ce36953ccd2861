#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_faults.py — the fault matrix (issue 7): `espstation serve --config` with three slots, one
# an espsim started with one `--fault SPEC` (or a port held by another program), the others
# clean. Per row: the faulty job's SQLite row (result, error_class, message, failed_state, NAK
# detail, retries), the hint on the daemon's result line, the clean slots' jobs pass with the
# right flash contents, the daemon keeps running and stops cleanly.
# Must not: derive an expected value from espstation's output, or leave a process running.
# Run one row: test_faults.py --build BUILD --case brownout (--list prints the rows).

import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import esp_image as img  # noqa: E402
import harness  # noqa: E402
import test_station as st  # noqa: E402
from harness import TestFailure, check, main  # noqa: E402

# The payload: half pseudo-random, half text, so it is sent deflated (FLASH_DEFL_*) in about 26
# blocks of 1 KiB (the ROM loader's block size): K of the block faults below lands mid-transfer.
# Rows with raw=True send pseudo-random bytes, which deflate cannot shrink: the daemon then
# writes them uncompressed (FLASH_BEGIN/FLASH_DATA, 48 blocks).
APP_SIZE = 48 * 1024
APP_OFFSET = 0x10000
WAIT_JOBS_S = 30  # all three jobs; a silent device needs the whole sync budget (~6 s)
CLEAN_MAX_MS = 5000  # a clean job's duration, whatever the faulty slot next to it does

# The clean slots: another chip on a pty (a "device path" slot: starts when the node exists)
# and one over RFC 2217 (an "always-present" slot: found by probing).
CLEAN = [("C1", "esp32c3", "pty", "60:55:f9:7a:00:01"),
         ("C2", "esp32s3", "rfc2217", "34:85:18:7a:00:02")]
FAULTY_MAC = "24:0a:c4:7a:00:0f"
RECIPE_CHIPS = ["esp32", "esp32c3", "esp32s3"]


def result_line(d, slot, uuid):
    """The daemon's result line for one job and the hint line under it (cli_serve.c prints
    est_class_hint(class) there): (class, message, hint)."""
    m = re.search(r"\[%s\] (?:FAIL|CANCELLED) (\S+) \S+: (.*) \(job %s, seq \d+\)\n"
                  r"\s+hint: ([^\n]*)" % (re.escape(slot), re.escape(uuid)), d.stderr_text())
    check(m, "HOST: no FAIL line with a hint for job %s on slot %s\n%s" % (uuid, slot,
                                                                          d.describe()))
    return m.group(1), m.group(2), m.group(3)


class Row:
    """One row of the matrix: how the faulty slot is set up and what its job must record."""

    def __init__(self, faults=(), chip="esp32", transport="pty", result="fail", cls=None,
                 states=(), hint=(), message=(), nak=None, retries=False, identity=True,
                 untouched=False, jedec=None, recipe_fields=None, app_offset=APP_OFFSET,
                 mac=FAULTY_MAC, raw=False, fired=None):
        self.faults = list(faults)
        self.chip = chip
        self.transport = transport
        self.result = result
        self.cls = cls
        self.states = states        # allowed failed_state values
        self.hint = hint            # words the hint must contain (case-insensitive)
        self.message = message      # regexes the message must match
        self.nak = nak              # (nak_op, nak_code)
        self.retries = retries      # a passing job must report retries > 0
        self.identity = identity    # chip and MAC were read before the failure
        self.untouched = untouched  # the faulty board's flash must still be blank
        self.jedec = jedec
        self.recipe_fields = recipe_fields or {}
        self.app_offset = app_offset
        self.mac = mac
        self.raw = raw
        self.fired = fired          # the sim must report this fault as fired ("fault" event)


class Station:
    """Sims, recipe and config of one row; the daemon once started."""

    def __init__(self, ctx, row, faulty_port=None, faulty_start="auto", faulty_tag="faulty",
                 faulty_extra=(), extra_slots=()):
        self.ctx = ctx
        self.row = row
        seed = "faults-%s" % ctx.name
        data = img.prng_bytes(seed, APP_SIZE) if row.raw else img.app_image(seed, APP_SIZE)
        self.app = st.Image(row.app_offset, "app.bin", data, "app")
        self.recipe, self.rec = st.write_recipe(ctx, "recipe.json", RECIPE_CHIPS, [self.app],
                                                **row.recipe_fields)
        self.clean = []
        slots = []
        for name, chip, tr, mac in CLEAN:
            s = st.StationSim(ctx, chip, tr, mac=mac, tag=name)
            check(s.ready["mac"] == mac, "SIM: ready mac %r, expected %r" % (s.ready["mac"], mac))
            self.clean.append((name, s))
            slots.append(st.slot_entry(name, s))
        self.faulty = None
        if faulty_port is None:
            self.faulty = st.StationSim(ctx, row.chip, row.transport, mac=row.mac,
                                        jedec=row.jedec, faults=row.faults, tag=faulty_tag,
                                        extra=faulty_extra)
            faulty_port = self.faulty.port
        slots.insert(0, {"name": "F1", "port": faulty_port, "start": faulty_start})
        slots += list(extra_slots)
        self.cfg, self.db = st.write_config(ctx, "station.json", slots, recipe=self.recipe,
                                            probe_interval_ms=300)
        self.d = None

    def start(self):
        self.d = st.serve(self.ctx, self.cfg)
        return self.d

    def wait_all(self, n_faulty=1):
        def done(rows):
            fin = st.finished(rows)
            return (len([r for r in fin if r["slot"] == "F1"]) >= n_faulty and
                    all(any(r["slot"] == name for r in fin) for name, _ in self.clean))
        return st.wait_jobs(self.db, done, WAIT_JOBS_S, "the jobs of all three slots", self.d)

    def check_clean(self, rows):
        for name, s in self.clean:
            mine = [r for r in rows if r["slot"] == name]
            check(len(mine) == 1, "HOST: slot %s (clean) has %d jobs, expected 1\n%s"
                  % (name, len(mine), st.summarize(rows)))
            # unaffected: not held up by the faulty slot's retries and timeouts either
            check(mine[0]["duration_ms"] is not None and mine[0]["duration_ms"] < CLEAN_MAX_MS,
                  "HOST: clean slot %s took %r ms (a clean job takes well under a second)"
                  % (name, mine[0]["duration_ms"]))
            writes = st.expected_writes(s.chip, [self.app], self.rec, s.ready["flash_size"])
            st.check_pass_row(self.db, mine[0], s, writes)
            st.check_dump(s, writes, "clean slot %s next to the faulty one" % name)

    def check_faulty(self, row_db):
        r = self.row
        tag = "faulty slot F1 (%s)" % " ".join(r.faults or ["no fault"])
        if r.fired:
            fired = [e for e in self.faulty.events() if e.get("event") == "fault"]
            check(any(e.get("fault") == r.fired for e in fired),
                  "TEST: the sim never fired its %r fault (fault events: %r): the row proves "
                  "nothing" % (r.fired, fired))
        check(row_db["result"] == r.result,
              "HOST: %s: result %r, expected %r (class %r, message %r)"
              % (tag, row_db["result"], r.result, row_db["error_class"], row_db["message"]))
        check(row_db["seq"] is not None and row_db["finished_at"],
              "HOST: %s: no seq/finished_at" % tag)
        if r.identity:
            check(row_db["chip"] == self.faulty.chip and row_db["mac"] == self.faulty.ready["mac"],
                  "HOST: %s: chip/mac %r/%r, the sim is %r/%r" % (
                      tag, row_db["chip"], row_db["mac"], self.faulty.chip,
                      self.faulty.ready["mac"]))
        if r.result == "pass":
            check(row_db["error_class"] is None, "HOST: %s: class %r on a pass"
                  % (tag, row_db["error_class"]))
            if r.retries:
                check((row_db["retries"] or 0) > 0, "HOST: %s: passed with retries=%r: the "
                      "dropped reply was not retried" % (tag, row_db["retries"]))
            return None
        check(row_db["error_class"] == r.cls, "HOST: %s: error_class %r, expected %r (message "
              "%r, state %r)" % (tag, row_db["error_class"], r.cls, row_db["message"],
                                 row_db["failed_state"]))
        msg = row_db["message"] or ""
        check(msg.strip(), "HOST: %s: empty message" % tag)
        for rx in r.message:
            check(re.search(rx, msg), "HOST: %s: message %r does not match /%s/" % (tag, msg, rx))
        if r.states:
            check(row_db["failed_state"] in r.states, "HOST: %s: failed_state %r, expected one "
                  "of %r" % (tag, row_db["failed_state"], list(r.states)))
        else:
            check(row_db["failed_state"], "HOST: %s: no failed_state" % tag)
        if r.nak:
            check((row_db["nak_op"], row_db["nak_code"]) == r.nak,
                  "HOST: %s: nak_op/nak_code %r/%r, expected 0x%02x/0x%04x"
                  % (tag, row_db["nak_op"], row_db["nak_code"], r.nak[0], r.nak[1]))
        cls, _, hint = result_line(self.d, "F1", row_db["uuid"])
        check(cls == r.cls, "HOST: %s: the result line says %r, the database %r"
              % (tag, cls, r.cls))
        for word in r.hint:
            check(word.lower() in hint.lower(), "HOST: %s: hint %r does not mention %r"
                  % (tag, hint, word))
        return hint


def check_daemon_kept_running(stn):
    """Every slot is done; the daemon must still run, start no further job, and stop cleanly."""
    time.sleep(0.5)
    stn.d.check_alive()
    rows = st.jobs(stn.db)
    stn.d.stop()
    rows2 = st.jobs(stn.db, readonly=False)
    check(len(rows2) == len(rows), "HOST: jobs started while stopping\n" + st.summarize(rows2))
    st.check_db_integrity(stn.db)
    return rows2


def faulty_rows(rows):
    return [r for r in rows if r["slot"] == "F1"]


def run_row(row):
    def case(ctx):
        ctx.require_executables("espsim", "espstation")
        stn = Station(ctx, row)
        stn.start()
        stn.wait_all()
        rows = check_daemon_kept_running(stn)
        mine = faulty_rows(rows)
        check(len(mine) == 1, "HOST: the faulty slot has %d jobs, expected 1 (auto mode)\n%s"
              % (len(mine), st.summarize(rows)))
        stn.check_faulty(mine[0])
        stn.check_clean(rows)
        if row.result == "pass":
            writes = st.expected_writes(row.chip, [stn.app], stn.rec,
                                        stn.faulty.ready["flash_size"])
            st.check_pass_row(stn.db, mine[0], stn.faulty, writes)
            st.check_dump(stn.faulty, writes, "the board with %s" % " ".join(row.faults))
        else:
            dump = stn.faulty.stop_and_dump()
            if row.untouched:
                check(dump == b"\xff" * len(dump),
                      "FLASH CONTENT: the faulty board's flash was written although the job "
                      "failed before writing (%s)" % mine[0]["failed_state"])
        return stn, mine[0]
    return case


# ---------------------------------------------------------------- rows with special checks

def case_bitflip(ctx):
    stn, r = run_row(ROWS["bitflip"])(ctx)
    ims = st.db_query(stn.db, "SELECT * FROM job_images WHERE job_uuid = ?", (r["uuid"],),
                      readonly=False)
    check(not ims or not any(i["verified"] for i in ims),
          "HOST: an image is recorded as verified in a job that failed its MD5 check: %r" % ims)


def wait_event(sim, name, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sim.count_events(name):
            return
        time.sleep(0.05)
    raise TestFailure("SIM: no %r event from %s within %.0f s" % (name, sim.tag, timeout))


def case_hangup(ctx):
    """The adapter vanishes after data block 5 (espsim closes the pty: /dev/pts/N is gone). The
    slot names it through a symlink, as /dev/serial/by-path names a USB adapter; the job fails
    with port_gone, the slot (loop mode) notices the port is gone, and when an adapter appears
    at that path again (a new sim, the link re-pointed) the slot flashes the new board."""
    ctx.require_executables("espsim", "espstation")
    row = ROWS["hangup"]
    link = ctx.path("by-path-fixture1")
    first = st.StationSim(ctx, row.chip, "pty", mac=row.mac, faults=row.faults, tag="faulty")
    os.symlink(first.port, link)
    stn = Station(ctx, row, faulty_port=link, faulty_start="loop")
    stn.faulty = first
    d = stn.start()
    rows = stn.wait_all()
    r = faulty_rows(rows)[0]
    check(r["port"] == link, "HOST: job port %r, the slot's port is %r" % (r["port"], link))
    stn.check_faulty(r)
    wait_event(first, "hangup", 5)
    check(not os.path.exists(link), "SIM: the pty still exists after the hangup fault")
    d.wait_stderr(r"\[F1\] info: board removed from %s" % re.escape(link), 5,
                  "the slot noticing the port went away")
    d.check_alive()
    # The adapter comes back (a clean board behind it).
    second = st.StationSim(ctx, row.chip, "pty", mac="24:0a:c4:7a:00:10", tag="replug")
    os.unlink(link)
    os.symlink(second.port, link)
    rows = st.wait_jobs(stn.db, lambda rs: len(st.finished(faulty_rows(rs))) >= 2, 20,
                        "a job on the re-plugged port", d)
    again = faulty_rows(rows)[1]
    writes = st.expected_writes(row.chip, [stn.app], stn.rec, second.ready["flash_size"])
    st.check_pass_row(stn.db, dict(again, port=second.port), second, writes)
    check(again["port"] == link, "HOST: job port %r, expected %r" % (again["port"], link))
    rows = check_daemon_kept_running(stn)
    check(len(faulty_rows(rows)) == 2, "HOST: %d jobs on F1, expected 2 (the failed one and the "
          "new board's)\n%s" % (len(faulty_rows(rows)), st.summarize(rows)))
    st.check_dump(second, writes, "the board behind the re-plugged port")
    stn.check_clean(rows)


# ---------------------------------------------------------------- port already open elsewhere

HOLDER = r"""
import fcntl, os, sys, termios, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
if sys.argv[2] == "flock":      # what pyserial's exclusive=True (esptool) and espstation do
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
else:                           # what screen/minicom-style programs do: exclusive mode only
    fcntl.ioctl(fd, termios.TIOCEXCL)
print("held", flush=True)
time.sleep(float(sys.argv[3]))
"""


def hold_port(ctx, path, how, seconds=60):
    p = subprocess.Popen([sys.executable, "-c", HOLDER, path, how, str(seconds)],
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         preexec_fn=harness._pdeathsig)
    harness._children.append(p)
    line = p.stdout.readline()
    check(line.strip() == b"held", "TEST: the port holder did not start (%r)" % line)
    ctx.log("port %s held by pid %d (%s)" % (path, p.pid, how))
    return p


def port_busy_case(how):
    def case(ctx):
        ctx.require_executables("espsim", "espstation")
        row = ROWS["port-busy-" + how]
        sim = st.StationSim(ctx, row.chip, "pty", mac=row.mac, tag="faulty")
        holder = hold_port(ctx, sim.port, how)
        stn = Station(ctx, row, faulty_port=sim.port)
        stn.faulty = sim
        stn.start()
        rows = stn.wait_all()
        r = faulty_rows(rows)[0]
        stn.check_faulty(r)
        check(holder.poll() is None, "TEST: the port holder died")
        check(sim.count_events("sync") == 0, "HOST: the job talked to a port held by another "
              "program (the sim answered a SYNC)")
        rows = check_daemon_kept_running(stn)
        stn.check_clean(rows)
        check(sim.stop_and_dump() == b"\xff" * sim.ready["flash_size"],
              "FLASH CONTENT: a port held elsewhere was written")
        harness._kill(holder)
    return case


def case_same_device(ctx):
    """Two slots name one device, F1 by its path and F2 by a symlink (as /dev/serial/by-path/
    names a USB adapter). Both names present at start: the config is refused. The link only
    appearing while F1 writes (an adapter plugged in later): F2's job fails with port_busy at
    once, F1's job is not disturbed and passes."""
    ctx.require_executables("espsim", "espstation")
    row = ROWS["port-busy-same-device"]
    link = ctx.path("by-path-fixture1")
    stn = Station(ctx, row, faulty_extra=["--realtime"],
                  extra_slots=[{"name": "F2", "port": link, "start": "auto"}])
    sim = stn.faulty
    os.symlink(sim.port, link)
    r = harness.run_espstation(ctx, ["serve", "--config", stn.cfg], timeout=10)
    harness.check_no_crash(r)
    check(r.status == 2 and re.search(r"same device", r.err) and "F1" in r.err and "F2" in r.err,
          "HOST: a config with two slots on one device (path and symlink) was not refused with a "
          "message naming both slots\n" + r.describe())
    check(not os.path.exists(stn.db), "HOST: the refused config created a database")
    os.unlink(link)

    d = stn.start()
    running = st.wait_mid_flash(stn.db, "F1", d, timeout=15)
    os.symlink(sim.port, link)
    rows = st.wait_jobs(stn.db, lambda rs: any(x["slot"] == "F2" and x["result"] != "running"
                                               for x in rs), 10, "slot F2's job", d)
    f2 = [x for x in rows if x["slot"] == "F2"][0]
    f1 = [x for x in rows if x["uuid"] == running["uuid"]][0]
    check(f1["result"] == "running", "TEST: F1's job ended (%r) before F2's open was tried"
          % f1["result"])
    check(f2["error_class"] == "port_busy" and f2["failed_state"] == "open",
          "HOST: F2 (the same device by another name, opened while F1 writes): %r/%r/%r, expected "
          "fail/port_busy in state open" % (f2["result"], f2["error_class"], f2["message"]))
    check(f2["mac"] is None, "HOST: F2 read a MAC (%r) from a port F1 holds" % f2["mac"])
    _, _, hint = result_line(d, "F2", f2["uuid"])
    check("modemmanager" in hint.lower(), "HOST: port_busy hint %r" % hint)
    stn.wait_all()
    rows = check_daemon_kept_running(stn)
    f1 = [x for x in rows if x["uuid"] == running["uuid"]][0]
    check(len([x for x in rows if x["slot"] == "F2"]) == 1, "HOST: F2 ran more than one job\n"
          + st.summarize(rows))
    writes = st.expected_writes(sim.chip, [stn.app], stn.rec, sim.ready["flash_size"])
    st.check_pass_row(stn.db, f1, sim, writes)
    st.check_dump(sim, writes, "the board F1 wrote while F2 tried its port")
    stn.check_clean(rows)


# ---------------------------------------------------------------- the matrix

ROWS = {
    # nothing answers: the whole sync budget, then no_sync with the wiring/boot-pin hint
    "silent": Row(["silent"], cls="no_sync", states=("sync",), identity=False,
                  untouched=True, hint=("boot", "powered")),
    # the application runs instead of the ROM loader (boot log + periodic text on the pty)
    "app": Row(["app"], cls="wrong_boot_mode", states=("sync",), identity=False,
               untouched=True, hint=("boot pin",)),
    # 24 noise bytes outside any frame after reply 12 (mid-transfer): ignored, the job passes
    "noise": Row(["noise:12"], result="pass", fired="noise"),
    # one reply lost (the 12th request: a data block): re-sent after the timeout, passes
    "drop-reply": Row(["drop-reply:12"], result="pass", retries=True, fired="drop-reply"),
    # the TX line breaks after the first SYNC answer: timeout after the retry budget
    "drop-replies": Row(["drop-replies"], cls="timeout", identity=False, untouched=True,
                        states=("detect",), hint=("cable",)),
    # NAKs with several codes, by name and by number
    "nak-begin": Row(["nak:0x02:0x06"], raw=True, cls="nak", states=("begin",),
                     nak=(0x02, 0x0106), untouched=True, fired="nak", hint=("rejected",),
                     message=(r"FLASH_BEGIN",)),
    "nak-defl-begin": Row(["nak:FLASH_DEFL_BEGIN:0x06"], cls="nak", states=("begin",),
                          nak=(0x10, 0x0106), untouched=True, fired="nak", hint=("rejected",),
                          message=(r"FLASH_DEFL_BEGIN",)),
    "nak-defl-data": Row(["nak:0x11:0x07"], cls="nak", states=("data",),
                         nak=(0x11, 0x0107), hint=("rejected",), fired="nak",
                         message=(r"FLASH_DEFL_DATA",)),
    "nak-md5": Row(["nak:SPI_FLASH_MD5:0x09"], cls="nak", states=("verify",),
                   nak=(0x13, 0x0109), hint=("rejected",), fired="nak",
                   message=(r"SPI_FLASH_MD5",)),
    "nak-attach": Row(["nak:SPI_ATTACH:0x05"], cls="nak", states=("attach",),
                      nak=(0x0D, 0x0105), untouched=True, fired="nak", hint=("rejected",),
                      message=(r"SPI_ATTACH",)),
    # a bit flips in flash after the ROM's write check: only the MD5 sees it
    "bitflip": Row(["bitflip"], cls="md5_mismatch", states=("verify",),
                   hint=("flash", "supply"), fired="bitflip"),
    # the port vanishes after data block 5
    "hangup": Row(["hangup:5"], cls="port_gone", states=("data",), hint=("usb",),
                  fired="hangup"),
    # the same over raw TCP: the device server drops the connection after data block 5
    "hangup-tcp": Row(["hangup:5"], transport="tcp", cls="port_gone", states=("data",),
                      hint=("usb",), fired="hangup"),
    # brown-out after data block 5 (its reply sent): the ROM banner mid-transfer
    "brownout": Row(["brownout:5"], cls="brownout", states=("data",), hint=("power",),
                    message=(r"(?i)reset|banner",), fired="brownout"),
    # the same over RFC 2217 (the banner arrives through the telnet stream)
    "brownout-rfc2217": Row(["brownout:5"], transport="rfc2217", cls="brownout",
                            states=("data",), hint=("power",), message=(r"(?i)reset|banner",),
                            fired="brownout"),
    # a 1 MB part (the JEDEC ID says so too, as on a module variant with a smaller flash) for
    # a recipe whose image runs past 1 MB: refused before anything is erased ...
    "flash-size": Row(["flash-size:1MB"], jedec=0xEF4014, cls="flash_too_small",
                      untouched=True, hint=("flash size",), app_offset=0xF8000,
                      states=("flash_id", "params"),
                      message=(r"(?i)1 ?MB",)),
    # ... and for a recipe that asks for at least 2 MB (checks.min_flash_size)
    "flash-size-min": Row(["flash-size:1MB"], jedec=0xEF4014, cls="flash_too_small",
                          untouched=True, hint=("flash size",), states=("flash_id", "params"),
                          recipe_fields={"checks": {"min_flash_size": "2MB"}}),
    # a chip the recipe does not list (recipe chips: esp32, esp32c3, esp32s3)
    "wrong-chip": Row([], chip="esp32h2", mac="74:4d:bd:7a:00:0f", cls="wrong_chip",
                      untouched=True, states=("detect", "read_efuse", "params"),
                      hint=("board type",), message=(r"(?i)h2",)),
    # the port is held by another program: flock (esptool/pyserial exclusive, another
    # espstation) or TIOCEXCL (screen, minicom)
    "port-busy-flock": Row([], cls="port_busy", states=("open",), identity=False,
                           hint=("ModemManager",)),
    "port-busy-excl": Row([], cls="port_busy", states=("open",), identity=False,
                          hint=("ModemManager",)),
    # another slot of the same daemon on the same device (F1 passes; F2 gets port_busy)
    "port-busy-same-device": Row([], result="pass"),
}

CASES = {name: run_row(row) for name, row in ROWS.items()}
CASES["bitflip"] = case_bitflip
CASES["hangup"] = case_hangup
CASES["port-busy-flock"] = port_busy_case("flock")
CASES["port-busy-excl"] = port_busy_case("excl")
CASES["port-busy-same-device"] = case_same_device

if __name__ == "__main__":
    sys.exit(main({k: st._with_daemon_log(v) for k, v in CASES.items()},
                  "espstation fault matrix: one faulty slot among clean ones"))
