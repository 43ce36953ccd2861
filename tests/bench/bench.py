#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""bench.py — how fast espstation flashes, measured against realtime simulators and compared
with the floor the timing model allows (docs/SIMULATOR.md "Timing").

What it runs (every simulator an ESP32 with `espsim --realtime`: bytes at the current baud,
10 bits per byte, datasheet erase/program times, the stub's overlap of receive and write):
  cli    `espstation flash` on one device over a pty (--strict-baud), stub and ROM loader
  station-N  `espstation serve` with N slots in auto mode over RFC 2217 (resets, strict baud),
         one job per slot, for N in --slots, stub and ROM loader
Each job writes the same 1 MiB application-like image (about 60 % compressible by zlib) at
0x10000 at 921600 baud (the recipe's baud / --baud). Reported: per device seconds, effective
kbit/s (image bytes × 8 / seconds), the floor and the ratio floor / measured, per station the
span from the first job's start to the last job's end, devices per hour, the daemon's CPU
seconds (utime + stime from /proc) and peak RSS (VmHWM), and the simulators' CPU for context.

Not a test: nothing is asserted, numbers are printed (and written as JSON with --out). The
stub files are synthetic (tests/data/mkstub.py): the simulator only checks their format.

usage: bench.py --build BUILD [--slots 1,8,32] [--loaders stub,rom] [--skip-cli] [--out FILE]
"""

import argparse
import hashlib
import json
import os
import random
import resource
import shutil
import signal
import socket
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
MKSTUB = os.path.join(HERE, "..", "data", "mkstub.py")
BAUD = 921600
SYNC_BAUD = 115200
APP_OFFSET = 0x10000
MIB = 1 << 20
CLK_TCK = os.sysconf("SC_CLK_TCK")

# ---- the image ----


def app_like(n=MIB, seed=6):
    """Application-like bytes: a tenth incompressible (like dense code), most of it drawn from
    a small vocabulary of short byte strings (like instructions and strings), some tables and
    zero fill. zlib -9 shrinks it to about 40 %."""
    r = random.Random(seed)
    words = [bytes(r.getrandbits(8) for _ in range(r.randrange(2, 7))) for _ in range(64)]
    out = bytearray()
    while len(out) < n:
        k = r.random()
        if k < 0.10:
            out += r.getrandbits(8 * 256).to_bytes(256, "little")
        elif k < 0.85:
            for _ in range(48):
                out += r.choice(words)
        else:
            out += (b"%08x" % r.getrandbits(32)) * 8 + bytes(64)
    return bytes(out[:n])


# ---- the floor: the timing model, restated (docs/SIMULATOR.md "Timing") ----

def slip_len(payload):
    return 2 + len(payload) + sum(1 for b in payload if b in (0xC0, 0xDB))


def wire(nbytes, baud):
    return nbytes * 10.0 / baud


def req(op, data, chk=0):
    return struct.pack("<BBHI", 0, op, len(data), chk) + data


def exch(req_payload_len, reply_len, baud, req_bytes=None):
    """One request/reply round trip on the wire (no device time): SLIP framing included."""
    n = slip_len(req_bytes) if req_bytes is not None else req_payload_len + 8 + 2
    return wire(n + reply_len + 8 + 2, baud)


def data_pkt(op, seq, chunk):
    body = struct.pack("<IIII", len(chunk), seq, 0, 0) + chunk
    chk = 0xEF
    for b in chunk:
        chk ^= b
    return req(op, body, chk)


def erase_time(next_sector, left, upto_sector):
    """Just-in-time / up-front erase: a 64 KiB block (200 ms) where 16 sectors remain and the
    sector is block-aligned, else 4 KiB sectors (45 ms)."""
    t = 0.0
    while left > 0 and next_sector <= upto_sector:
        if left >= 16 and next_sector % 16 == 0:
            t, next_sector, left = t + 0.200, next_sector + 16, left - 16
        else:
            t, next_sector, left = t + 0.045, next_sector + 1, left - 1
    return t, next_sector, left


def program_time(nbytes):
    return (nbytes + 255) // 256 * 0.0005


def stub_write_floor(image, z, offset, baud, blk=0x4000):
    """Stub: block n is ACKed when the stub starts on it; its erase + program run while block
    n+1 travels; the next command starts when that work is done."""
    nblk = (len(z) + blk - 1) // blk
    t = exch(20, 2, baud)  # FLASH_DEFL_BEGIN (20-byte form), stub reply
    d = zlib.decompressobj()
    nxt, left = offset // 4096, (offset % 4096 + len(image) + 4095) // 4096
    pos, done = offset, 0.0
    for i in range(nblk):
        chunk = z[i * blk:(i + 1) * blk]
        arrive = t + wire(slip_len(data_pkt(0x11, i, chunk)), baud)
        start = max(arrive, done)
        t = start + wire(12, baud)
        out = len(d.decompress(chunk))
        w = 0.0
        if out:
            e, nxt, left = erase_time(nxt, left, (pos + out) // 4096)
            w = e + program_time(out)
            pos += out
        done = start + w
    end_arrive = t + wire(slip_len(req(0x12, struct.pack("<I", 1))), baud)
    return max(end_arrive, done) + wire(12, baud)  # FLASH_DEFL_END(1): the last write


def rom_write_floor(image, z, offset, baud, blk=0x400):
    """ROM: FLASH_DEFL_BEGIN erases the whole region (size rounded up to 1 KiB) before it
    answers; each block is inflated and programmed before its reply."""
    size = (len(image) + 0x3FF) & ~0x3FF
    e, _, _ = erase_time(offset // 4096, (offset % 4096 + size + 4095) // 4096, 1 << 30)
    t = exch(16, 4, baud) + e
    d = zlib.decompressobj()
    for i in range((len(z) + blk - 1) // blk):
        chunk = z[i * blk:(i + 1) * blk]
        out = len(d.decompress(chunk))
        t += wire(slip_len(data_pkt(0x11, i, chunk)), baud) + program_time(out) + wire(14, baud)
    return t


def stub_upload_floor(stub_file):
    """MEM_BEGIN / MEM_DATA (0x1800 blocks) / MEM_END at the sync rate, ROM replies, OHAI, and
    the model's 1 ms stub start."""
    with open(stub_file) as f:
        s = json.load(f)
    import base64
    t = 0.0
    for key in ("text", "data"):
        if key not in s:
            continue
        seg = base64.b64decode(s[key])
        t += exch(16, 4, SYNC_BAUD)
        for i in range(0, len(seg), 0x1800):
            t += wire(slip_len(data_pkt(0x07, i // 0x1800, seg[i:i + 0x1800])), SYNC_BAUD)
            t += wire(14, SYNC_BAUD)
    return t + exch(8, 4, SYNC_BAUD) + wire(6, SYNC_BAUD) + 0.001


def floor(image, z, stub_file, reset):
    """Per-device floor (seconds) and its parts, for the command sequence the job sends to an
    ESP32: the small commands (sync with its 8 replies, chip detection, 5 eFuse words, flash ID
    with about 12 register accesses, SPI_SET_PARAMS) at their rates, the stub upload, the baud
    switch (11 ms in the stub, as modelled), the write and the MD5 (stub 0.25 µs/B, ROM 2 µs/B).
    Host-side waits (the 200 ms for the ROM's extra error frames after GET_SECURITY_INFO, the
    50 ms settle after a baud switch, image preparation) are not part of the floor."""
    p = {}
    p["reset"] = 0.1 if reset else 0.0  # EN held low 100 ms by the reset sequence
    small = exch(36, 4, SYNC_BAUD) + 7 * wire(14, SYNC_BAUD)  # SYNC: 8 replies
    small += exch(0, 4, SYNC_BAUD) + exch(4, 4, SYNC_BAUD)    # GET_SECURITY_INFO, magic
    small += 5 * exch(4, 4, SYNC_BAUD)                        # MAC + revision words
    if stub_file:
        p["stub_upload"] = stub_upload_floor(stub_file)
        small += exch(8, 2, SYNC_BAUD) + 0.011                # CHANGE_BAUDRATE + switch
        fast = 12 * exch(16, 2, BAUD) + exch(24, 2, BAUD)     # flash ID, SET_PARAMS
        p["write"] = stub_write_floor(image, z, APP_OFFSET, BAUD)
        p["md5"] = exch(16, 18, BAUD) + len(image) * 0.25e-6
    else:
        small += 2 * exch(4, 4, SYNC_BAUD) + exch(8, 4, SYNC_BAUD)  # ESP32 ROM clock words
        fast = 2 * exch(4, 4, BAUD) + exch(8, 4, BAUD)              # SPI pad eFuses, ATTACH
        fast += 12 * exch(16, 4, BAUD) + exch(24, 4, BAUD)
        p["write"] = rom_write_floor(image, z, APP_OFFSET, BAUD)
        p["md5"] = exch(16, 36, BAUD) + len(image) * 2e-6
    p["small_commands"] = small + fast
    p["total"] = sum(p.values())
    return p


# ---- processes ----

children = []


def start(args, **kw):
    p = subprocess.Popen(args, stdin=subprocess.DEVNULL, **kw)
    children.append(p)
    return p


def kill_all():
    for p in children:
        if p.poll() is None:
            p.kill()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def proc_cpu(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime
    except OSError:
        return None


def proc_hwm_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Sim:
    def __init__(self, build, tmp, transport, n, extra=()):
        args = [os.path.join(build, "espsim"), "--chip", "esp32", "--realtime", "--quiet",
                "--mac", "24:0a:c4:be:%02x:%02x" % (n >> 8, n & 0xFF)] + list(extra)
        args += ["--pty"] if transport == "pty" else ["--rfc2217", "0"]
        self.err = open(os.path.join(tmp, "sim%d.err" % n), "wb")
        self.proc = start(args, stdout=subprocess.PIPE, stderr=self.err)
        line = self.proc.stdout.readline()
        self.ready = json.loads(line)
        self.port = self.ready["port"]

    def cpu(self):
        return proc_cpu(self.proc.pid) or 0.0

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()


# ---- scenarios ----

def run_cli(build, tmp, image_path, stubs, loader):
    sim = Sim(build, tmp, "pty", 1, ["--strict-baud"])
    args = [os.path.join(build, "espstation"), "flash", "--port", sim.port, "--json", "--baud",
            str(BAUD)]
    if loader == "stub":
        args += ["--stub-dir", stubs]
    args += ["0x%x" % APP_OFFSET, image_path]
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    p = start(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = p.communicate(timeout=120)
    wall = time.monotonic() - t0
    # the only child reaped meanwhile is espstation: its CPU is the RUSAGE_CHILDREN delta
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    sim_cpu = sim.cpu()
    sim.stop()
    res = json.loads(out)
    if res.get("result") != "pass":
        raise SystemExit("cli %s failed: %s %s" % (loader, res.get("error_class"),
                                                   res.get("message")))
    return {"wall_s": wall, "job_s": res["duration_ms"] / 1000.0, "state_ms": res["state_ms"],
            "baud": res["baud"], "stub": res["stub"], "sim_cpu_s": sim_cpu, "cpu_s": cpu}


def wait_rows(db, n, timeout):
    t_end = time.monotonic() + timeout
    rows = []
    while time.monotonic() < t_end:
        try:
            con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=1)
            con.row_factory = sqlite3.Row
            rows = [dict(r) for r in con.execute("SELECT * FROM jobs")]
            con.close()
        except sqlite3.Error:
            rows = []
        if len([r for r in rows if r["result"] != "running"]) >= n:
            return rows
        time.sleep(0.2)
    raise SystemExit("station: only %d of %d jobs finished within %d s"
                     % (len([r for r in rows if r["result"] != "running"]), n, timeout))


def parse_ts(s):
    # started_at / finished_at: ISO 8601 UTC with milliseconds
    from datetime import datetime
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()


def run_station(build, tmp, image_path, image_sha, stubs, loader, n, db_dir=None):
    sims = [Sim(build, tmp, "rfc2217", 100 + i) for i in range(n)]
    recipe = {"name": "bench", "version": "1", "chip": "esp32", "baud": BAUD,
              "stub": os.path.relpath(stubs, tmp) if loader == "stub" else False,
              "images": [{"offset": "0x%x" % APP_OFFSET, "file": os.path.basename(image_path),
                          "sha256": image_sha}]}
    with open(os.path.join(tmp, "recipe.json"), "w") as f:
        json.dump(recipe, f)
    db = os.path.join(db_dir or tmp, "bench-%s-%d-%d.db" % (loader, n, os.getpid()))
    cfg = {"id": "bench", "database": db, "listen": "127.0.0.1:%d" % free_port(),
           "recipe": "recipe.json", "probe_interval_ms": 300,
           "slots": [{"name": "S%d" % (i + 1), "port": s.port, "start": "auto"}
                     for i, s in enumerate(sims)]}
    cfg_path = os.path.join(tmp, "station.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f)
    err = open(os.path.join(tmp, "serve-%s-%d.err" % (loader, n)), "wb")
    sims_cpu0 = sum(s.cpu() for s in sims)
    t0 = time.monotonic()
    d = start([os.path.join(build, "espstation"), "serve", "--config", cfg_path],
              stdout=subprocess.DEVNULL, stderr=err, cwd=tmp)
    rows = wait_rows(db, n, 60 + 15 * n)
    wall = time.monotonic() - t0
    cpu = proc_cpu(d.pid)
    hwm = proc_hwm_kib(d.pid)
    sims_cpu = sum(s.cpu() for s in sims) - sims_cpu0
    d.send_signal(signal.SIGTERM)
    try:
        d.wait(timeout=30)
    except subprocess.TimeoutExpired:
        d.kill()
    for s in sims:
        s.stop()
    fails = [r for r in rows if r["result"] != "pass"]
    if fails:
        raise SystemExit("station %s x%d: %d jobs failed, e.g. %s: %s" % (
            loader, n, len(fails), fails[0]["error_class"], fails[0]["message"]))
    starts = [parse_ts(r["started_at"]) for r in rows]
    ends = [parse_ts(r["finished_at"]) for r in rows]
    durs = [r["duration_ms"] / 1000.0 for r in rows]
    return {"n": n, "durations_s": durs, "span_s": max(ends) - min(starts),
            "serve_wall_s": wall, "daemon_cpu_s": cpu, "daemon_peak_rss_kib": hwm,
            "sims_cpu_s": sims_cpu, "bauds": sorted({r["baud"] for r in rows}),
            "state_ms": json.loads(rows[0]["state_ms"]),
            "state_ms_all": [json.loads(r["state_ms"]) for r in rows]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", required=True)
    ap.add_argument("--slots", default="1,8,32")
    ap.add_argument("--loaders", default="stub,rom")
    ap.add_argument("--skip-cli", action="store_true")
    ap.add_argument("--out")
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--db-dir", help="where the station database goes (default: the temp dir)")
    a = ap.parse_args()
    build = os.path.abspath(a.build)
    tmp = tempfile.mkdtemp(prefix="estn-bench-")
    results = {"machine": machine(), "baud": BAUD}
    try:
        image = app_like()
        z = zlib.compress(image, 9)
        image_path = os.path.join(tmp, "app.bin")
        with open(image_path, "wb") as f:
            f.write(image)
        sha = hashlib.sha256(image).hexdigest()
        stubs = os.path.join(tmp, "stubs")
        subprocess.run([sys.executable, MKSTUB, stubs], check=True)
        stub_file = os.path.join(stubs, "esp32.json")
        results["image"] = {"size": len(image), "zlib9": len(z), "ratio": len(z) / len(image)}
        print("image: %d bytes, zlib -9 %d bytes (%.0f %% of the size)"
              % (len(image), len(z), 100.0 * len(z) / len(image)))
        loaders = a.loaders.split(",")
        fl = {}
        for loader in loaders:
            for reset in (False, True):
                fl[(loader, reset)] = floor(image, z, stub_file if loader == "stub" else None,
                                            reset)
        results["floor"] = {"%s%s" % (l, "+reset" if r else ""): v for (l, r), v in fl.items()}
        for k, v in results["floor"].items():
            print("floor %-10s %s" % (k, ", ".join("%s %.3f s" % kv for kv in v.items())))
        if not a.skip_cli:
            for loader in loaders:
                r = run_cli(build, tmp, image_path, stubs, loader)
                f = fl[(loader, False)]["total"]
                r["floor_s"] = f
                r["ratio"] = f / r["job_s"]
                r["kbit_s"] = len(image) * 8 / r["job_s"] / 1000
                results["cli-%s" % loader] = r
                print("cli %-4s: job %.2f s (wall %.2f s), %.0f kbit/s effective, floor %.2f s, "
                      "ratio %.3f, espstation CPU %.2f s, baud %s, states %s"
                      % (loader, r["job_s"], r["wall_s"], r["kbit_s"], f, r["ratio"], r["cpu_s"],
                         r["baud"], r["state_ms"]))
        for loader in loaders:
            for n in [int(x) for x in a.slots.split(",") if x]:
                r = run_station(build, tmp, image_path, sha, stubs, loader, n, a.db_dir)
                f = fl[(loader, True)]["total"]
                d = r["durations_s"]
                r.update({"floor_s": f, "mean_s": sum(d) / len(d), "max_s": max(d),
                          "min_s": min(d), "ratio_mean": f / (sum(d) / len(d)),
                          "devices_per_hour": 3600.0 * n / r["span_s"],
                          "kbit_s_mean": len(image) * 8 / (sum(d) / len(d)) / 1000,
                          "daemon_cpu_pct": 100.0 * r["daemon_cpu_s"] / r["serve_wall_s"]})
                results["station-%s-%d" % (loader, n)] = r
                print("station %-4s x%-2d: per device mean %.2f s (min %.2f, max %.2f), %.0f kbit/s"
                      ", ratio %.3f; span %.2f s, %.0f devices/h; daemon CPU %.2f s (%.1f %% of one "
                      "core over %.1f s), peak RSS %.1f MiB; sims CPU %.1f s; baud %s"
                      % (loader, n, r["mean_s"], r["min_s"], r["max_s"], r["kbit_s_mean"],
                         r["ratio_mean"], r["span_s"], r["devices_per_hour"], r["daemon_cpu_s"],
                         r["daemon_cpu_pct"], r["serve_wall_s"],
                         (r["daemon_peak_rss_kib"] or 0) / 1024.0, r["sims_cpu_s"], r["bauds"]))
        if a.out:
            with open(a.out, "w") as f:
                json.dump(results, f, indent=1)
    finally:
        kill_all()
        if a.keep:
            print("files kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


def machine():
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=10).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except (OSError, subprocess.TimeoutExpired):
        pass
    return {"nproc": os.cpu_count(), "cpu": model, "kernel": os.uname().release}


if __name__ == "__main__":
    sys.exit(main())
