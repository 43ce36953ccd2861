#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_attacks.py — a second instance and a hostile network must not cost a result (issue 14,
# docs/RELIABILITY.md "Attacks and site faults"): two daemons on one database or one device
# server port, a connection flood under a 1024-descriptor limit while boards flash, event-stream
# and slowloris hogs with an operator's cancel still answered, a 128 MiB unauthenticated body
# refused from its headers, and the smaller request-smuggling and parsing cases.
# Every case runs `espstation serve` with espsim boards on 127.0.0.1 (clients also use other
# loopback source addresses, 127.0.0.2 and up, to be other hosts), bounded in time; everything
# it starts is killed at the end (harness).
# Must not: take an expected value from the daemon's answers where the issue or the docs say
# what it must be.

import hashlib
import http.client
import json
import os
import re
import resource
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "api"))

import apistation  # noqa: E402  (puts tests/integration on sys.path)
from apistation import SlotSpec, Station  # noqa: E402
import harness  # noqa: E402
from harness import TestFailure, check, main  # noqa: E402
import test_station as ts  # noqa: E402

OTHER_HOST = "127.0.0.2"  # the operator's dashboard PC, as far as the daemon can tell


# ---------------------------------------------------------------- raw HTTP

def connect(port, src="127.0.0.1", timeout=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def read_response(sk, timeout=5.0):
    """(status, headers, body bytes) of one response, or None when the peer closed without one
    (or nothing came within `timeout`)."""
    sk.settimeout(0.2)
    buf = b""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if b"\r\n\r\n" in buf:
            head, _, body = buf.partition(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
            if not m:
                return None
            hdrs = {}
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                hdrs[k.strip().lower()] = v.strip()
            want = int(hdrs.get("content-length", "0"))
            if len(body) >= want:
                return int(m.group(1)), hdrs, body[:want]
        try:
            chunk = sk.recv(65536)
        except socket.timeout:
            continue
        except (ConnectionResetError, BrokenPipeError):
            chunk = b""
        if not chunk:
            return None if b"\r\n\r\n" not in buf else read_partial(buf)
        buf += chunk
    return None


def read_partial(buf):
    head, _, body = buf.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    return (int(m.group(1)), {}, body) if m else None


def closed_within(sk, timeout):
    """True when the peer closes the connection within `timeout` (what it sent is dropped)."""
    sk.settimeout(0.1)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if not sk.recv(65536):
                return True
        except socket.timeout:
            continue
        except OSError:
            return True
    return False


def request(port, method, path, token=None, body=None, headers=None, src="127.0.0.1",
            timeout=5.0):
    """One request on a new connection → (status, headers, parsed JSON or raw body)."""
    sk = connect(port, src, timeout)
    try:
        h = {"Host": "127.0.0.1:%d" % port, "Connection": "close"}
        if token:
            h["Authorization"] = "Bearer " + token
        if body is not None:
            h["Content-Length"] = str(len(body))
            h.setdefault("Content-Type", "application/json")
        h.update(headers or {})
        head = "%s %s HTTP/1.1\r\n" % (method, path) + "".join("%s: %s\r\n" % kv
                                                            for kv in h.items()) + "\r\n"
        sk.sendall(head.encode("latin-1") + (body or b""))
        r = read_response(sk, timeout)
    finally:
        sk.close()
    check(r is not None, "HOST: no answer to %s %s" % (method, path))
    status, hdrs, raw = r
    try:
        return status, hdrs, json.loads(raw.decode("utf-8")) if raw else None
    except ValueError:
        return status, hdrs, raw


def daemon_fds(d):
    try:
        return len(os.listdir("/proc/%d/fd" % d.proc.pid))
    except OSError:
        return -1


def daemon_rss_kib(d):
    with open("/proc/%d/status" % d.proc.pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def raise_own_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def wait_final(s, uuids, timeout, what):
    def done():
        rows = {r["uuid"]: r for r in s.db_jobs()}
        return all(u in rows and rows[u]["result"] != "running" for u in uuids) and rows
    return s.wait(done, timeout, what)


def start_slot(s, slot, src=OTHER_HOST):
    st, _, body = request(s.port, "POST", "/api/v1/slots/%s/start" % slot,
                          token=s.tokens["operator"], body=b"{}", src=src)
    check(st == 202, "HOST: POST start %s as operator from %s: %s %r" % (slot, src, st, body))
    return body["slot"]["job_uuid"]


def wait_running(s, slot, timeout=20):
    s.wait(lambda: [r for r in s.db_jobs() if r["slot"] == slot and r["result"] == "running"],
           timeout, "a running job on %s" % slot)


# ---------------------------------------------------------------- 1. one daemon per database

def case_two_daemons(ctx):
    """A second daemon on the live database is refused before it writes anything (it names the
    first one's pid); the first one's running jobs record normally (pass, with their MAC)."""
    s = Station(ctx, [SlotSpec("R%d" % i, chip="esp32", transport="rfc2217", realtime=True,
                               recipe="slow.json", start="auto") for i in range(1, 3)]
                + [SlotSpec("P1", chip="esp32c3", transport="pty", realtime=True,
                            recipe="slow.json", start="auto")])
    first = s.start(tag="first")
    for name in ("R1", "R2", "P1"):
        wait_running(s, name)
    running = [r["uuid"] for r in s.db_jobs() if r["result"] == "running"]
    # the same config with its own HTTP port: the same database, the same boards
    cfg2 = dict(s.cfg)
    cfg2["listen"] = "127.0.0.1:%d" % harness.free_tcp_port()
    path2 = ctx.write_file("second.json", json.dumps(cfg2, indent=2).encode())
    second = ts.Daemon(ctx, ["serve", "--config", path2], tag="second")
    try:
        second.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        raise TestFailure("HOST: a second daemon on the same database is still running after "
                          "10 s\n%s" % second.describe())
    ctx.log("figure: second daemon refused after %.3f s" % (time.monotonic() - second.t0))
    err = second.stderr_text()
    check(second.proc.returncode != 0, "HOST: the second daemon exited %s\n%s"
          % (second.proc.returncode, err[-2000:]))
    check(re.search(r"in use by another espstation \(pid %d\b" % first.proc.pid, err),
          "HOST: the second daemon's refusal does not name the first one's pid %d:\n%s"
          % (first.proc.pid, err[-2000:]))
    rows = wait_final(s, running, 40, "the first daemon's jobs")
    ctx.log("figure: %d running jobs of the first daemon all recorded" % len(running))
    for u in running:
        r = rows[u]
        check(r["result"] == "pass" and r["mac"], "HOST: job %s of the first daemon (slot %s) "
              "ended %s / %s mac=%s (a second daemon must not touch it)"
              % (u, r["slot"], r["result"], r["error_class"], r["mac"]))
    first.check_alive()
    s.stop()
    check(not os.path.exists(s.db + ".lock"), "HOST: the database lock file is left after a "
          "clean stop")


def case_two_daemons_ports(ctx):
    """Another database, the same device server ports (spelled differently): refused too."""
    s = Station(ctx, [SlotSpec("T1", chip="esp32", transport="tcp", start="manual"),
                      SlotSpec("R1", chip="esp32c3", transport="rfc2217", start="manual")])
    first = s.start(tag="first")
    cfg2 = dict(s.cfg)
    cfg2["listen"] = "127.0.0.1:%d" % harness.free_tcp_port()
    cfg2["database"] = "other.db"
    cfg2["slots"] = [dict(e) for e in s.cfg["slots"]]
    cfg2["slots"][0]["port"] = cfg2["slots"][0]["port"].replace("127.0.0.1", "localhost")
    path2 = ctx.write_file("second.json", json.dumps(cfg2, indent=2).encode())
    second = ts.Daemon(ctx, ["serve", "--config", path2], tag="second")
    try:
        second.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        raise TestFailure("HOST: a second daemon on the same network ports is still running "
                          "after 10 s\n%s" % second.describe())
    err = second.stderr_text()
    check(second.proc.returncode != 0 and
          re.search(r"used by another espstation \(pid %d\b" % first.proc.pid, err),
          "HOST: a second daemon on the first one's network ports: exit %s\n%s"
          % (second.proc.returncode, err[-2000:]))
    check(not os.path.exists(ctx.path("other.db")), "HOST: the refused daemon created its "
          "database")
    first.check_alive()


# ---------------------------------------------------------------- 3. descriptor flood

class Flood:
    """Connections opened as fast as possible from `srcs`, each held `hold` s (sending nothing)
    then closed: the refused ones must not pile up in the daemon."""

    def __init__(self, port, srcs, hold=2.0, threads=2):
        self.port, self.srcs, self.hold = port, srcs, hold
        self.stop_ev = threading.Event()
        self.opened = 0
        self.failed = 0
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(threads)]

    def run(self, k):
        held = []
        i = 0
        while not self.stop_ev.is_set():
            now = time.monotonic()
            while held and now - held[0][0] > self.hold:
                held.pop(0)[1].close()
            try:
                sk = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sk.setblocking(False)
                sk.bind((self.srcs[(i + k) % len(self.srcs)], 0))
                sk.connect_ex(("127.0.0.1", self.port))
                held.append((now, sk))
                self.opened += 1
            except OSError:
                self.failed += 1
                time.sleep(0.01)
            i += 1
            if len(held) > 6000:
                time.sleep(0.005)
        for _, sk in held:
            sk.close()

    def start(self):
        for t in self.threads:
            t.start()

    def stop(self):
        self.stop_ev.set()
        for t in self.threads:
            t.join(timeout=10)


def case_fd_flood(ctx):
    """Under prlimit --nofile=1024 an unauthenticated connection flood (thousands of
    connections held open) must not starve the slots of descriptors: every job passes."""
    check(raise_own_nofile() >= 8192, "TEST: the test needs 8192 descriptors of its own")
    slots = [SlotSpec("T%d" % i, chip="esp32c3", transport="tcp") for i in range(1, 3)] + \
        [SlotSpec("P%d" % i, chip="esp32", transport="pty") for i in range(1, 3)]
    s = Station(ctx, slots)
    s.daemon = ts.Daemon.__new__(ts.Daemon)
    # the daemon under a 1024-descriptor limit (soft and hard), as a small unit would have
    d = s.daemon
    d.ctx, d.tag = ctx, "serve-prlimit"
    d.args = ["prlimit", "--nofile=1024:1024", ctx.espstation, "serve", "--config",
              s.config_path]
    d.err_path, d.out_path = ctx.path("prl-stderr.txt"), ctx.path("prl-stdout.txt")
    d._err, d._out = open(d.err_path, "wb"), open(d.out_path, "wb")
    d.t0 = time.monotonic()
    d.proc = subprocess.Popen(d.args, stdin=subprocess.DEVNULL, stdout=d._out, stderr=d._err,
                              preexec_fn=harness._pdeathsig, cwd=ctx.tmp)
    harness._children.append(d.proc)
    ctx.daemons.append(d)
    s.wait_listening(20)
    # the operator's dashboard: a keep-alive connection opened before the flood (the flood is
    # about descriptors and the boards; the API under a many-address flood is best effort)
    op = http.client.HTTPConnection("127.0.0.1", s.port, timeout=10,
                                    source_address=(OTHER_HOST, 0))
    auth = {"Authorization": "Bearer " + s.tokens["operator"], "Content-Type":
            "application/json"}

    def start(slot):
        op.request("POST", "/api/v1/slots/%s/start" % slot, body=b"{}", headers=auth)
        r = op.getresponse()
        body = r.read()
        check(r.status == 202, "HOST: POST start %s under the flood: %s %r" % (slot, r.status,
                                                                             body[:300]))
        return json.loads(body)["slot"]["job_uuid"]

    first = start_slot(s, "T1")  # one job before the flood: the station works
    wait_final(s, [first], 30, "the job before the flood")
    flood = Flood(s.port, ["127.0.0.%d" % (10 + i) for i in range(40)])
    uuids = []
    max_fds = 0
    try:
        op.request("GET", "/api/v1/station")
        op.getresponse().read()
        flood.start()
        time.sleep(1.0)
        t_end = time.monotonic() + 12
        while time.monotonic() < t_end:
            batch = [start(sl.name) for sl in slots]
            uuids += batch

            def done():
                rows = {r["uuid"]: r for r in s.db_jobs()}
                return all(u in rows and rows[u]["result"] != "running" for u in batch)
            deadline = time.monotonic() + 30
            while not done():
                check(time.monotonic() < deadline, "HOST: jobs not finished within 30 s under "
                      "the flood")
                d.check_alive()
                max_fds = max(max_fds, daemon_fds(d))
                time.sleep(0.1)
    finally:
        flood.stop()
    rows = {r["uuid"]: r for r in s.db_jobs()}
    bad = [rows[u] for u in uuids if rows[u]["result"] != "pass"]
    ctx.log("flood: %d connections opened, %d jobs, daemon fds up to %d" % (flood.opened,
                                                                            len(uuids), max_fds))
    check(flood.opened > 3000, "TEST: the flood opened only %d connections" % flood.opened)
    check(not bad, "HOST: %d of %d jobs failed under a connection flood:\n%s"
          % (len(bad), len(uuids), ts.summarize(bad)))
    check(max_fds < 1024 - 64, "HOST: the daemon held %d descriptors of 1024" % max_fds)
    s.wait(lambda: request(s.port, "GET", "/api/v1/station")[0] == 200, 5,
           "the API answering within 5 s of the flood's end")


# ---------------------------------------------------------------- 6. hogs

def open_stream(port, src):
    sk = connect(port, src)
    sk.sendall(b"GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream"
               b"\r\n\r\n")
    return sk


def case_hogs(ctx):
    """64 event streams and 70 slowloris connections from one client: the operator (another
    host) still gets a cancel and a GET answered; the hog's extra streams are refused."""
    s = Station(ctx, [SlotSpec("R1", chip="esp32", transport="rfc2217", realtime=True,
                               recipe="slow.json"), SlotSpec("A1")])
    s.start()
    uuid = start_slot(s, "R1")
    wait_running(s, "R1")
    hog = "127.0.0.1"
    socks, refused_streams = [], 0
    try:
        for _ in range(64):
            try:
                sk = open_stream(s.port, hog)
                socks.append(sk)
            except OSError:
                refused_streams += 1
        for _ in range(70):
            try:
                sk = connect(s.port, hog)
                sk.sendall(b"GET /api/v1/station HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                socks.append(sk)
            except OSError:
                pass
        time.sleep(0.5)
        t0 = time.monotonic()
        st, _, body = request(s.port, "POST", "/api/v1/slots/R1/cancel",
                              token=s.tokens["operator"], body=b"{}", src=OTHER_HOST)
        took = time.monotonic() - t0
        check(st in (200, 202), "HOST: the operator's cancel under the hogs: %s %r" % (st, body))
        check(took < 2.0, "HOST: the operator's cancel took %.2f s" % took)
        ctx.log("figure: operator cancel answered in %.3f s under the hogs" % took)
        st, _, _ = request(s.port, "GET", "/api/v1/slots", src="127.0.0.3")
        check(st == 200, "HOST: a viewer's GET under the hogs: %s" % st)
        # how many of the hog's streams got through (the rest 503 or closed)
        served = 0
        for sk in socks[:64]:
            r = read_response(sk, 0.3)
            served += r is not None and r[0] == 200
        ctx.log("hog: %d streams served of 64" % served)
        check(served <= 16, "HOST: one client holds %d event streams" % served)
    finally:
        for sk in socks:
            sk.close()
    rows = wait_final(s, [uuid], 20, "the cancelled job")
    check(rows[uuid]["result"] == "cancelled", "HOST: the cancelled job is %r"
          % rows[uuid]["result"])


def case_slowloris_deadline(ctx):
    """Headers that trickle in are cut at http.header_timeout_ms even while bytes keep coming."""
    s = Station(ctx, [SlotSpec("A1")], http={"header_timeout_ms": 2000})
    s.start()
    sk = connect(s.port)
    sk.sendall(b"GET /api/v1/station HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    t0 = time.monotonic()
    closed = False
    while time.monotonic() - t0 < 8:
        try:
            sk.sendall(b"X-Slow-%d: a\r\n" % int((time.monotonic() - t0) * 10))
        except OSError:
            closed = True
            break
        if closed_within(sk, 0.5):
            closed = True
            break
    took = time.monotonic() - t0
    sk.close()
    ctx.log("figure: trickling request closed after %.2f s (header_timeout_ms 2000)" % took)
    check(closed and took < 4.5, "HOST: a trickling request was %s" %
          ("closed after %.1f s (header_timeout_ms 2000)" % took if closed else
           "still open after 8 s"))


# ---------------------------------------------------------------- 8. bodies

def case_big_body(ctx):
    """A 128 MiB unauthenticated body is refused from the headers: the answer comes before the
    body is sent, no temp file, no RSS growth; the engineer's upload still works."""
    s = Station(ctx, [SlotSpec("A1")])
    d = s.start()
    st, _, _ = request(s.port, "GET", "/api/v1/station")
    rss0 = daemon_rss_kib(d)
    size = 128 * 1024 * 1024
    chunk = b"\0" * (1 << 20)
    answer_s = []
    for i, (method, path, token) in enumerate(
            [("PUT", "/api/v1/images/x%d.bin?sha256=%s" % (i, "0" * 64), None) for i in range(20)]
            + [("POST", "/api/v1/recipes", None), ("POST", "/api/v1/slots/A1/start", None),
               ("PUT", "/api/v1/images/v.bin?sha256=" + "0" * 64, s.tokens["viewer"]),
               ("GET", "/api/v1/station", None), ("POST", "/nowhere", None)]):
        sk = connect(s.port)
        hdr = "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %d\r\n" % (method, path, size)
        if token:
            hdr += "Authorization: Bearer %s\r\n" % token
        sk.sendall((hdr + "\r\n").encode())
        t_ans = time.monotonic()
        r = read_response(sk, 2.0)
        answer_s.append(time.monotonic() - t_ans)
        check(r is not None, "HOST: %s %s with a 128 MiB body: no answer from the headers "
              "within 2 s (the body is being read)" % (method, path))
        check(400 <= r[0] < 500 and r[1].get("content-type", "").startswith(
            "application/problem+json"), "HOST: %s %s 128 MiB: %s %r" % (method, path, r[0],
                                                                        r[1]))
        # the body sent anyway is not buffered: the connection closes
        sent = 0
        try:
            sk.settimeout(2)
            while sent < 16 * len(chunk):
                sk.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        sk.close()
    time.sleep(0.3)
    fds = os.listdir("/proc/%d/fd" % d.proc.pid)
    temp = [os.readlink("/proc/%d/fd/%s" % (d.proc.pid, f)) for f in fds]
    temp = [t for t in temp if "h2o" in t or "(deleted)" in t]
    check(not temp, "HOST: temp files open in the daemon: %r" % temp)
    rss1 = daemon_rss_kib(d)
    ctx.log("figure: 25 refused 128 MiB bodies: answered from the headers in at most %.3f s; "
            "RSS %d KiB -> %d KiB" % (max(answer_s), rss0, rss1))
    check(rss1 - rss0 < 8 * 1024, "HOST: RSS grew by %d KiB over refused bodies" % (rss1 - rss0))
    # the engineer's upload: beyond 4 MiB its buffered body is in a temp file, not in memory
    data = os.urandom(12 * 1024 * 1024)
    sk = connect(s.port, timeout=20)
    sk.sendall(("PUT /api/v1/images/ok.bin?sha256=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                "Authorization: Bearer %s\r\nContent-Type: application/octet-stream\r\n"
                "Content-Length: %d\r\nConnection: close\r\n\r\n"
                % (hashlib.sha256(data).hexdigest(), s.tokens["engineer"], len(data))).encode())
    sk.sendall(data[:8 * 1024 * 1024])
    time.sleep(0.5)
    mid = [os.readlink("/proc/%d/fd/%s" % (d.proc.pid, f))
           for f in os.listdir("/proc/%d/fd" % d.proc.pid)]
    sk.sendall(data[8 * 1024 * 1024:])
    r = read_response(sk, 20)
    sk.close()
    st = r[0] if r else None
    check(st == 201, "HOST: the engineer's 12 MiB upload: %r" % (r,))
    check([t for t in mid if "h2o.b" in t], "HOST: 8 MiB into an upload the daemon holds no "
          "temp file (the body is in memory): %r" % mid)
    with open(os.path.join(s.image_dir, "ok.bin"), "rb") as f:
        check(f.read() == data, "HOST: the uploaded image differs")


# ---------------------------------------------------------------- lower harm

def raw_exchange(port, data, timeout=3.0):
    sk = connect(port)
    try:
        sk.sendall(data)
        r = read_response(sk, timeout)
        closed = closed_within(sk, 1.0) if r is not None else True
    finally:
        sk.close()
    return r, closed


def case_smuggling(ctx):
    """RFC 9112 §6.1/§6.3: two Content-Length headers are refused (400); Content-Length with
    Transfer-Encoding: chunked is answered and the connection closed."""
    s = Station(ctx, [SlotSpec("A1")])
    s.start()
    r, _ = raw_exchange(s.port, b"POST /api/v1/slots/A1/cancel HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                        b"Content-Length: 2\r\nContent-Length: 40\r\n\r\n{}")
    check(r is not None and r[0] == 400 and r[1].get("content-type", "").startswith(
        "application/problem+json"), "HOST: duplicate Content-Length: %r" % (r,))
    r, closed = raw_exchange(s.port, b"POST /api/v1/slots/A1/cancel HTTP/1.1\r\nHost: "
                             b"127.0.0.1\r\nContent-Length: 7\r\nTransfer-Encoding: chunked\r\n"
                             b"\r\n2\r\n{}\r\n0\r\n\r\nGET /api/v1/station HTTP/1.1\r\nHost: "
                             b"127.0.0.1\r\n\r\n")
    check(r is not None and r[0] == 400, "HOST: Content-Length + chunked: %r" % (r,))
    check(closed, "HOST: Content-Length + chunked: the connection stayed open (RFC 9112 §6.1)")


def case_many_headers(ctx):
    """100-150 valid headers: problem+json (431), not h2o's plain text."""
    s = Station(ctx, [SlotSpec("A1")])
    s.start()
    for n in (100, 120, 150):
        hdrs = "".join("X-H%d: v\r\n" % i for i in range(n))
        r, _ = raw_exchange(s.port, ("GET /api/v1/station HTTP/1.1\r\nHost: 127.0.0.1\r\n%s\r\n"
                                     % hdrs).encode())
        check(r is not None and r[1].get("content-type", "").startswith(
            "application/problem+json"), "HOST: %d headers: %r" % (n, r and r[:2]))
        check(json.loads(r[2])["code"] in ("header_too_large", "bad_request"),
              "HOST: %d headers: %r" % (n, r[2][:200]))


def case_host_header(ctx):
    """DNS rebinding: a Host that is not an IP literal or a configured name is refused (421);
    the configured name and IP literals are served."""
    s = Station(ctx, [SlotSpec("A1")], http={"allowed_hosts": ["station-7.plant.example"]})
    s.start()
    for host, want in (("evil.example", 421), ("evil.example:%d" % s.port, 421),
                       ("127.0.0.1:%d" % s.port, 200), ("station-7.plant.example", 200),
                       ("STATION-7.plant.example:%d" % s.port, 200), ("[::1]", 200),
                       ("localhost:%d" % s.port, 200)):
        st, _, body = request(s.port, "GET", "/api/v1/station", headers={"Host": host})
        check(st == want, "HOST: Host %s: %s %r (want %d)" % (host, st, body, want))


def case_garbage_logged(ctx):
    """An endless garbage stream is answered 400, closed and logged once (rate-limited)."""
    s = Station(ctx, [SlotSpec("A1")])
    d = s.start()
    for _ in range(20):
        sk = connect(s.port)
        try:
            sk.sendall(os.urandom(4096).replace(b"\n", b"x"))
            for _ in range(20):
                sk.sendall(os.urandom(4096))
        except OSError:
            pass
        sk.close()
    time.sleep(0.5)
    n = len(re.findall(r"not HTTP", d.stderr_text()))
    check(1 <= n <= 3, "HOST: %d log lines about the garbage streams (want 1-3)\n%s"
          % (n, d.stderr_text()[-2000:]))


def case_deleted_database(ctx):
    """The database id is in the station and every jobs page; a deleted or replaced database
    file raises the alarm (GET /api/v1/station, one log line) and no job starts; a new database
    has a new id, so an MES sees that its cursor belongs to the old one."""
    s = Station(ctx, [SlotSpec("A1")])
    d = s.start()
    st, _, station = request(s.port, "GET", "/api/v1/station")
    dbid = station.get("database_id")
    check(isinstance(dbid, str) and re.match(r"^[0-9a-f]{32}$", dbid) and
          station.get("alarm") is None, "HOST: station: database_id %r alarm %r"
          % (dbid, station.get("alarm")))
    uuid = start_slot(s, "A1")
    wait_final(s, [uuid], 30, "the first job")
    st, _, page = request(s.port, "GET", "/api/v1/jobs?after=0")
    check(page.get("database_id") == dbid and len(page["jobs"]) == 1,
          "HOST: jobs page: database_id %r (station %r), %d jobs"
          % (page.get("database_id"), dbid, len(page.get("jobs", []))))
    os.remove(s.db)  # an engineer's cleanup script, a restore gone wrong
    t0 = time.monotonic()
    alarm = None
    while time.monotonic() - t0 < 5 and not alarm:
        time.sleep(0.2)
        alarm = request(s.port, "GET", "/api/v1/station")[2].get("alarm")
    check(alarm and "deleted" in alarm, "HOST: no alarm 5 s after the database was deleted: %r"
          % alarm)
    ctx.log("figure: deleted database noticed after %.1f s" % (time.monotonic() - t0))
    st, _, body = request(s.port, "POST", "/api/v1/slots/A1/start",
                          token=s.tokens["operator"], body=b"{}", src=OTHER_HOST)
    check(st != 202, "HOST: a job started into a deleted database: %s %r" % (st, body))
    time.sleep(0.5)
    st, _, slot = request(s.port, "GET", "/api/v1/slots/A1")
    check(slot["state"] != "running", "HOST: slot A1 runs a job after the alarm")
    check(len(re.findall(r"ALARM: the database", d.stderr_text())) == 1,
          "HOST: the alarm is not logged exactly once:\n%s" % d.stderr_text()[-2000:])
    s.stop()
    for ext in ("-wal", "-shm"):
        if os.path.exists(s.db + ext):
            os.remove(s.db + ext)
    s.start(tag="new-db")
    st, _, station2 = request(s.port, "GET", "/api/v1/station")
    st, _, page2 = request(s.port, "GET", "/api/v1/jobs?after=1")
    check(station2["database_id"] != dbid and page2["database_id"] == station2["database_id"],
          "HOST: a new database kept the id %r (station %r, page %r)"
          % (dbid, station2["database_id"], page2["database_id"]))


def case_outside_write_lock(ctx):
    """An outside process holds the database's write lock for 5 s while 8 jobs run: every job
    passes, with no wrong class (the loop never waits for SQLite)."""
    import sqlite3
    slots = [SlotSpec("S%d" % i, chip=("esp32", "esp32c3", "esp32s3")[i % 3],
                      transport=("pty", "tcp", "rfc2217")[i % 3], realtime=True,
                      recipe="slow.json") for i in range(8)]
    s = Station(ctx, slots)
    s.start()
    uuids = [start_slot(s, sl.name) for sl in slots]
    time.sleep(0.5)
    con = sqlite3.connect(s.db, timeout=10, isolation_level=None)
    t0 = time.monotonic()
    con.execute("BEGIN IMMEDIATE")
    time.sleep(5)
    con.execute("COMMIT")
    con.close()
    ctx.log("figure: outside write lock held %.1f s" % (time.monotonic() - t0))
    rows = wait_final(s, uuids, 60, "the 8 jobs")
    bad = [rows[u] for u in uuids if rows[u]["result"] != "pass"]
    check(not bad, "HOST: %d of 8 jobs failed while an outside process held the write lock:\n%s"
          % (len(bad), ts.summarize(bad)))


def case_read_only_database(ctx):
    """A database on a read-only file system (its directory bind-mounted read-only in a private
    mount namespace) is refused at start with a message saying so; the file is unchanged."""
    probe = subprocess.run(["unshare", "-m", "sh", "-c", 'mount --bind "$1" "$1"', "sh",
                            ctx.tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if os.geteuid() != 0 or probe.returncode != 0:
        print("SKIP read-only-database: needs root with mount namespaces (unshare -m, mount)")
        sys.exit(77)  # ctest SKIP_RETURN_CODE; the harness still cleans up
    s = Station(ctx, [SlotSpec("A1")])
    s.start()
    s.stop()
    before = open(s.db, "rb").read()
    d = ts.Daemon.__new__(ts.Daemon)
    d.ctx, d.tag = ctx, "serve-ro"
    script = ('mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && '
              'exec "$2" serve --config "$3"')
    d.args = ["unshare", "-m", "sh", "-c", script, "sh", ctx.tmp, ctx.espstation, s.config_path]
    d.err_path, d.out_path = ctx.path("ro-stderr.txt"), ctx.path("ro-stdout.txt")
    d._err, d._out = open(d.err_path, "wb"), open(d.out_path, "wb")
    d.t0 = time.monotonic()
    d.proc = subprocess.Popen(d.args, stdin=subprocess.DEVNULL, stdout=d._out, stderr=d._err,
                              preexec_fn=harness._pdeathsig, cwd="/")
    harness._children.append(d.proc)
    try:
        d.proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        raise TestFailure("HOST: espstation runs on a read-only database\n%s" % d.describe())
    err = d.stderr_text()
    if "mount" in err and "espstation" not in err:
        raise TestFailure("TEST: cannot make a read-only mount here (unshare -m, mount): %s"
                          % err[-500:])
    check(d.proc.returncode != 0 and re.search(r"[Rr]ead-only file system", err),
          "HOST: a read-only database: exit %s, stderr:\n%s" % (d.proc.returncode, err[-1500:]))
    check(open(s.db, "rb").read() == before, "HOST: the read-only database changed")


def case_nofile_too_small(ctx):
    """A config whose slots and http.max_connections do not fit in the descriptor limit is
    refused at start (usage error), naming the limit to raise and the largest max_connections
    that fits; with the limit raised it starts."""
    s = Station(ctx, [SlotSpec("A1"), SlotSpec("A2")], http={"max_connections": 1000})
    p = subprocess.run(["prlimit", "--nofile=512:512", ctx.espstation, "serve", "--config",
                        s.config_path], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=20, preexec_fn=harness._pdeathsig)
    err = p.stderr.decode("utf-8", "replace")
    # 48 + 2 slots x 4 + 1000 + 16 = 1072 needed; 512 - (48 + 8 + 16) = 440 fit
    check(p.returncode == 2 and "LimitNOFILE" in err and "at most 440" in err,
          "HOST: max_connections 1000 under a 512-descriptor limit: exit %s\n%s"
          % (p.returncode, err[-1500:]))
    d = ts.Daemon.__new__(ts.Daemon)
    d.ctx, d.tag = ctx, "serve-2048"
    d.args = ["prlimit", "--nofile=2048:2048", ctx.espstation, "serve", "--config",
              s.config_path]
    d.err_path, d.out_path = ctx.path("n-stderr.txt"), ctx.path("n-stdout.txt")
    d._err, d._out = open(d.err_path, "wb"), open(d.out_path, "wb")
    d.t0 = time.monotonic()
    d.proc = subprocess.Popen(d.args, stdin=subprocess.DEVNULL, stdout=d._out, stderr=d._err,
                              preexec_fn=harness._pdeathsig, cwd=ctx.tmp)
    harness._children.append(d.proc)
    ctx.daemons.append(d)
    s.daemon = d
    s.wait_listening(20)


def case_input_checks(ctx):
    """Parameters after the 32nd are refused (not dropped); invalid UTF-8 in a recipe is refused
    and nothing is stored; dotfiles in the web root are not served."""
    web = ctx.path("web")
    os.makedirs(os.path.join(web, "sub"))
    for name, data in (("index.html", b"<html>station</html>"), (".env", b"SECRET=1"),
                       ("sub/.htpasswd", b"user:hash"), (".hidden.js", b"x")):
        with open(os.path.join(web, name), "wb") as f:
            f.write(data)
    s = Station(ctx, [SlotSpec("A1")], web_root=web)
    s.start()
    # 32 parameters the endpoint takes (an unknown one is refused by its name, docs/API.md)
    q32 = "&".join("after=%d" % i for i in range(32))
    st, _, body = request(s.port, "GET", "/api/v1/jobs?" + q32)
    check(st == 200, "HOST: 32 query parameters: %s %r" % (st, body))
    st, _, body = request(s.port, "GET", "/api/v1/jobs?" + q32 + "&limit=abc")
    check(st == 400 and body["code"] == "bad_request", "HOST: a 33rd parameter (limit=abc, "
          "malformed): %s %r (docs: 400, never dropped)" % (st, body))
    rec = {"name": "utf8", "version": "1", "chip": ["esp32"], "images": []}
    # "bad-" then 0xC3 0x28: a two-byte sequence whose second byte is not a continuation
    raw = json.dumps(rec).encode().replace(b'"utf8"', b'"bad-\xc3\x28"')
    st, _, body = request(s.port, "POST", "/api/v1/recipes", token=s.tokens["engineer"],
                          body=raw)
    check(st == 400 and "UTF-8" in body.get("detail", ""), "HOST: a recipe with invalid "
          "UTF-8: %s %r" % (st, body))
    rows = ts.db_query(s.db, "SELECT name FROM recipes WHERE name LIKE 'bad-%'") or []
    check(not rows, "HOST: the invalid recipe was stored: %r" % rows)
    st, _, body = request(s.port, "GET", "/index.html")
    check(st == 200 and body == b"<html>station</html>", "HOST: /index.html: %s %r"
          % (st, body))
    for path in ("/.env", "/sub/.htpasswd", "/.hidden.js", "/%2eenv"):
        st, _, body = request(s.port, "GET", path)
        check(st == 404, "HOST: GET %s (a dotfile): %s %r" % (path, st, body))


CASES = {
    "two-daemons": case_two_daemons,
    "two-daemons-ports": case_two_daemons_ports,
    "fd-flood": case_fd_flood,
    "hogs": case_hogs,
    "slowloris-deadline": case_slowloris_deadline,
    "big-body": case_big_body,
    "smuggling": case_smuggling,
    "many-headers": case_many_headers,
    "host-header": case_host_header,
    "garbage-logged": case_garbage_logged,
    "input-checks": case_input_checks,
    "deleted-database": case_deleted_database,
    "outside-write-lock": case_outside_write_lock,
    "read-only-database": case_read_only_database,
    "nofile-too-small": case_nofile_too_small,
}


if __name__ == "__main__":
    sys.exit(main({k: apistation.with_daemon_log(v) for k, v in CASES.items()},
                  "attacks and site faults (issue 14): espstation serve under a hostile "
                  "network and a second instance"))
