#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_http.py — the HTTP server's own behaviour over real sockets (what api_handle's unit tests
# cannot see): connection limit (503 problem+json), header/body limits at h2o and API level,
# idle timeout, the event stream of a real job (ids, order, resume with Last-Event-ID, reset on
# another boot id), SIGTERM with clients connected (streams end, daemon exits 0, no sanitizer
# report), static files. The end-to-end API suite (every endpoint, roles, schemas) is tests/api.
# Must not: derive expected values from the daemon's output alone; leave a process running.
import hashlib
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Sim, TestFailure, check, free_tcp_port, main, sanitizer_report  # noqa: E402

TOKEN = "engineer-token-for-the-http-test-0001"


class Serve:
    """`espstation serve` on a config written into the test's temp dir."""

    def __init__(self, ctx, cfg):
        self.ctx = ctx
        self.port = free_tcp_port()
        cfg = dict(cfg)
        cfg.setdefault("listen", "127.0.0.1:%d" % self.port)
        cfg.setdefault("database", ctx.path("station.db"))
        cfg.setdefault("token_file", ctx.path("tokens"))
        ctx.write_file("tokens", ("engineer %s\n" % TOKEN).encode())
        os.chmod(ctx.path("tokens"), 0o600)
        ctx.write_file("station.json", json.dumps(cfg).encode())
        self.err_path = ctx.path("serve-stderr.txt")
        self._err = open(self.err_path, "wb")
        args = [ctx.espstation, "serve", "--config", ctx.path("station.json")]
        ctx.log("run: " + " ".join(args))
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._err,
                                     stderr=self._err, preexec_fn=harness._pdeathsig,
                                     cwd=ctx.tmp)
        harness._children.append(self.proc)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            check(self.proc.poll() is None, "HOST: espstation serve exited\n" + self.stderr())
            if "HTTP API and dashboard on" in self.stderr():
                return
            time.sleep(0.05)
        raise TestFailure("HOST: espstation serve did not start listening\n" + self.stderr())

    def stderr(self):
        self._err.flush()
        with open(self.err_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def conn(self, timeout=10):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, token=None):
        c = self.conn()
        h = dict(headers or {})
        if token:
            h["Authorization"] = "Bearer " + token
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        c.close()
        return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data

    def stop(self, timeout=10):
        check(self.proc.poll() is None, "HOST: espstation exited early\n" + self.stderr())
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise TestFailure("HOST: espstation did not stop within %d s of SIGTERM\n%s"
                              % (timeout, self.stderr()))
        check(self.proc.returncode == 0, "HOST: exit status %s after SIGTERM\n%s"
              % (self.proc.returncode, self.stderr()))
        san = sanitizer_report(self.stderr())
        check(san is None, "HOST: sanitizer report (%s)\n%s" % (san, self.stderr()))


def problem(status, headers, data, want_status, want_code):
    check(status == want_status, "HTTP: status %d, expected %d: %r" % (status, want_status, data))
    check(headers.get("content-type", "").startswith("application/problem+json"),
          "HTTP: %d without problem+json: %r" % (status, headers))
    p = json.loads(data)
    check(p.get("code") == want_code and p.get("status") == want_status,
          "HTTP: problem %r, expected code %s" % (p, want_code))
    return p


def raw_http(port, payload, timeout=5):
    """Send raw bytes, return everything the server answers before closing (or timeout)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(payload)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            if b"\r\n\r\n" in out:
                head, _, rest = out.partition(b"\r\n\r\n")
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        if len(rest) >= int(line.split(b":")[1]):
                            s.close()
                            return out
    except socket.timeout:
        pass
    s.close()
    return out


def basic_cfg(ctx, **http):
    return {"id": "http-test", "slots": [{"name": "A1", "port": "socket://127.0.0.1:9"}],
            "http": http}


# ---------------------------------------------------------------- cases

def case_limits(ctx):
    ctx.require_executables("espstation")
    sv = Serve(ctx, basic_cfg(ctx, max_connections=3, max_header_bytes=1024,
                              max_body_bytes=2048, max_upload_bytes=4096, idle_timeout_ms=1500))
    # request line + headers over max_header_bytes: 431 problem
    st, h, d = sv.request("GET", "/api/v1/station", headers={"X-Pad": "x" * 1500})
    problem(st, h, d, 431, "header_too_large")
    # a JSON body over max_body_bytes (but under the upload limit h2o enforces): 413 problem
    st, h, d = sv.request("POST", "/api/v1/recipes", body=b" " * 3000, token=TOKEN,
                          headers={"Content-Type": "application/json"})
    problem(st, h, d, 413, "payload_too_large")
    # over every limit: h2o refuses it itself
    st, h, d = sv.request("PUT", "/api/v1/images/x.bin?sha256=" + "0" * 64, body=b"\0" * 5000,
                          token=TOKEN, headers={"Content-Type": "application/octet-stream"})
    problem(st, h, d, 413, "payload_too_large")  # h2o's own answer, as problem+json
    # a request h2o cannot parse at all: h2o writes a fixed plain-text 400 and closes (docs)
    out = raw_http(sv.port, b"BLAH\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 400"), "HTTP: garbage request answered %r" % out[:300])
    # a parsable request with a bad target: the API's problem+json
    out = raw_http(sv.port, b"GET /api/v1/slots/%zz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 400") and b'"code":"bad_request"' in out,
          "HTTP: bad percent-encoding answered %r" % out[:300])
    # connection limit: 3 idle connections, the 4th is refused with a 503 problem. The
    # connections of the requests above are closed by now on our side; give the daemon a moment
    # to see them go (a closed connection counts until the server has read its end).
    time.sleep(1.0)
    held = [socket.create_connection(("127.0.0.1", sv.port), timeout=5) for _ in range(3)]
    # well within the 500 ms after which a connection that sent nothing may be closed to make
    # room for a new one (docs/API.md "Limits"): here the limit itself is what is tested
    time.sleep(0.2)
    out = raw_http(sv.port, b"GET /api/v1/station HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    check(out.startswith(b"HTTP/1.1 503"), "HTTP: 4th connection answered %r" % out[:200])
    body = json.loads(out.partition(b"\r\n\r\n")[2])
    check(body["code"] == "too_many_connections", "HTTP: 503 body %r" % body)
    # idle timeout: the held connections are closed by the server
    t0 = time.monotonic()
    for s in held:
        s.settimeout(5)
        check(s.recv(1) == b"", "HTTP: an idle connection got data instead of a close")
        s.close()
    took = time.monotonic() - t0
    check(took < 4.5, "HTTP: idle connections closed only after %.1f s (idle_timeout 1.5 s)" % took)
    # the closes just seen may still be in the daemon's loop for a moment
    deadline = time.monotonic() + 3
    while True:
        st, h, d = sv.request("GET", "/api/v1/station")
        if st == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    check(st == 200, "HTTP: after the idle close, a new request gave %d" % st)
    # the refusals and successes are counted
    st, h, d = sv.request("GET", "/metrics")
    check(b'espstation_http_requests_total{code="503"} 1' in d, "HTTP: metrics %r" % d[-600:])
    sv.stop()


def write_recipe(ctx, size=96 * 1024):
    os.makedirs(ctx.path("images"), exist_ok=True)
    data = bytes((i * 31 + 7) & 0xFF for i in range(size))
    ctx.write_file("images/app.bin", data)
    recipe = {"name": "http-test", "version": "1.0", "chip": "esp32",
              "images": [{"offset": "0x10000", "file": "app.bin",
                          "sha256": hashlib.sha256(data).hexdigest()}]}
    ctx.write_file("images/recipe.json", json.dumps(recipe).encode())
    return ctx.path("images/recipe.json")


class Events:
    """A raw server-sent events reader."""

    def __init__(self, port, path="/api/v1/events", last_id=None, timeout=10):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        req = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n" % path
        if last_id:
            req += "Last-Event-ID: %s\r\n" % last_id
        self.s.sendall((req + "\r\n").encode())
        self.buf = b""
        self.head = None
        self.text = ""
        self.closed = False

    def _fill(self):
        chunk = self.s.recv(65536)
        if not chunk:
            self.closed = True
            return
        self.buf += chunk
        if self.head is None and b"\r\n\r\n" in self.buf:
            self.head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        if self.head is not None:
            # de-chunk what is complete
            while True:
                line, sep, rest = self.buf.partition(b"\r\n")
                if not sep:
                    break
                n = int(line.split(b";")[0], 16)
                if len(rest) < n + 2:
                    break
                if n == 0:
                    self.closed = True
                self.text += rest[:n].decode("utf-8")
                self.buf = rest[n + 2:]

    def next(self, deadline):
        """The next event as (id, type, data dict), comments skipped; None when closed."""
        while True:
            if "\n\n" in self.text:
                block, _, self.text = self.text.partition("\n\n")
                ev = {}
                for line in block.split("\n"):
                    if line.startswith(":") or not line:
                        continue
                    k, _, v = line.partition(": ")
                    ev[k] = v
                if "event" in ev:
                    return ev.get("id"), ev["event"], json.loads(ev["data"])
                continue
            if self.closed:
                return None
            check(time.monotonic() < deadline, "HTTP: no event in time; have %r" % self.text[-500:])
            self._fill()

    def close(self):
        self.s.close()


def case_events(ctx):
    ctx.require_executables("espstation", "espsim")
    sim = Sim(ctx, "esp32", "tcp", mac="24:0a:c4:aa:00:01")
    recipe = write_recipe(ctx)
    sv = Serve(ctx, {"id": "ev", "image_dir": ctx.path("images"), "recipe": recipe,
                     "slots": [{"name": "A1", "port": sim.port, "start": "manual"}]})
    ev = Events(sv.port)
    deadline = time.monotonic() + 30
    first = ev.next(deadline)
    check(first[1] == "hello", "HTTP: first event %r" % (first,))
    boot = first[2]["boot_id"]
    check(first[0] == "%s:%d" % (boot, first[2]["seq"]), "HTTP: hello id %r" % (first,))
    st, h, d = sv.request("POST", "/api/v1/slots/A1/start", token=TOKEN)
    check(st == 202, "HTTP: start gave %d %r" % (st, d))
    seen, last_seq, job = [], first[2]["seq"], None
    while job is None:
        e = ev.next(deadline)
        check(e is not None, "HTTP: the stream ended early")
        eid, typ, data = e
        check(eid == "%s:%d" % (boot, data["seq"]), "HTTP: id %s vs data seq %s" % (eid, data["seq"]))
        check(data["seq"] == last_seq + 1, "HTTP: seq %d after %d" % (data["seq"], last_seq))
        last_seq = data["seq"]
        seen.append((eid, typ, data))
        if typ == "job":
            job = data["job"]
    check(job["result"] == "pass" and job["mac"] == "24:0a:c4:aa:00:01",
          "HTTP: job event %r" % job)
    stages = [d["slot"]["stage"] for _, t, d in seen if t == "slot" and d["slot"]["stage"]]
    for a, b in (("open", "sync"), ("sync", "data"), ("data", "verify")):
        check(a in stages and b in stages and stages.index(a) < stages.index(b),
              "HTTP: stage order %r" % stages)
    check(any(t == "progress" for _, t, _ in seen), "HTTP: no progress event")
    ev.close()
    # resume from the middle: exactly the events after it, in order
    mid = len(seen) // 2
    ev = Events(sv.port, last_id=seen[mid][0])
    hello = ev.next(deadline)
    check(hello[1] == "hello" and hello[0] == seen[mid][0], "HTTP: resume hello %r" % (hello,))
    for want in seen[mid + 1:]:
        got = ev.next(deadline)
        check(got[0] == want[0] and got[1] == want[1], "HTTP: replay %r, expected %r"
              % (got[:2], want[:2]))
    ev.close()
    # another boot id: hello then reset
    ev = Events(sv.port, path="/api/v1/events?last_event_id=00000000:3")
    check(ev.next(deadline)[1] == "hello", "HTTP: no hello")
    check(ev.next(deadline)[1] == "reset", "HTTP: no reset for another boot id")
    # SIGTERM with this client connected: the stream ends, the daemon exits 0
    sv.proc.send_signal(signal.SIGTERM)
    while ev.next(time.monotonic() + 10) is not None:
        pass
    ev.close()
    try:
        sv.proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        raise TestFailure("HOST: no exit after SIGTERM\n" + sv.stderr())
    check(sv.proc.returncode == 0, "HOST: exit %s\n%s" % (sv.proc.returncode, sv.stderr()))
    san = sanitizer_report(sv.stderr())
    check(san is None, "HOST: sanitizer report (%s)\n%s" % (san, sv.stderr()))


def case_static(ctx):
    ctx.require_executables("espstation")
    os.makedirs(ctx.path("web"), exist_ok=True)
    ctx.write_file("web/index.html", b"<!doctype html><title>t</title>")
    ctx.write_file("web/app.js", b"console.log(1)")
    ctx.write_file("outside.txt", b"secret")
    os.symlink(ctx.path("outside.txt"), ctx.path("web/link.txt"))
    cfg = basic_cfg(ctx)
    cfg["web_root"] = ctx.path("web")
    sv = Serve(ctx, cfg)
    st, h, d = sv.request("GET", "/")
    check(st == 200 and d.startswith(b"<!doctype") and h.get("cache-control") == "no-cache"
          and h.get("content-type", "").startswith("text/html"), "HTTP: / %d %r" % (st, h))
    st, h, d = sv.request("GET", "/app.js")
    check(st == 200 and h.get("content-type", "").startswith("text/javascript"),
          "HTTP: app.js %d %r" % (st, h))
    for path in ("/%2e%2e/outside.txt", "/link.txt", "/../outside.txt", "/missing"):
        out = raw_http(sv.port, ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
        check(b"secret" not in out and out.split(b"\r\n")[0] in
              (b"HTTP/1.1 404 Not Found", b"HTTP/1.1 400 Bad Request"),
              "HTTP: %s answered %r" % (path, out[:200]))
    sv.stop()


CASES = {"limits": case_limits, "events": case_events, "static": case_static}

if __name__ == "__main__":
    sys.exit(main(CASES, "espstation HTTP server tests"))
