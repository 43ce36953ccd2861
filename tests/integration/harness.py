# SPDX-License-Identifier: MIT
# harness.py — process plumbing for the black-box integration tests: start espsim and read its
# JSON event lines, run espstation with a hard timeout, check results, clean up.
# Must not: know anything about how espstation or espsim work inside; every child process it
# starts is killed by the end of the test whatever happens (PDEATHSIG + explicit kill).

import argparse
import ctypes
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import atexit as _atexit
import tempfile as _tempfile

# The daemon locks every network port it serves across processes (docs/STATION.md, in
# $ESPSTATION_LOCK_DIR or /run/lock). Tests that run at the same time use the same placeholder
# ports (socket://127.0.0.1:9), so each test process gets a lock directory of its own; the
# daemons one test starts share it, so a test of the lock itself still sees both.
if "ESPSTATION_LOCK_DIR" not in os.environ:
    _lock_dir = _tempfile.mkdtemp(prefix="estn-locks-")
    os.environ["ESPSTATION_LOCK_DIR"] = _lock_dir
    _atexit.register(shutil.rmtree, _lock_dir, True)

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer",
                     "ThreadSanitizer", "runtime error:")

_children = []  # every Popen we started, for the final sweep


class TestFailure(Exception):
    """An assertion about espstation/espsim behaviour that did not hold."""


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def _pdeathsig():
    # Children die with the test process even if it is SIGKILLed (e.g. by a ctest timeout).
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _kill(proc):
    if proc.poll() is None:
        try:
            proc.kill()
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass


def kill_all_children():
    for p in _children:
        _kill(p)


def free_tcp_port():
    """A loopback port that nothing listens on (bound then closed; nobody else in the suite
    binds fixed ports, the sims use port 0)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def sanitizer_report(text):
    for m in SANITIZER_MARKERS:
        if m in text:
            return m
    return None


class Ctx:
    """Per-test context: paths of the executables, a private temp dir, a log of what ran."""

    def __init__(self, build, name, keep=False):
        self.build = os.path.abspath(build)
        self.espsim = os.path.join(self.build, "espsim")
        self.espstation = os.path.join(self.build, "espstation")
        self.name = name
        self.keep = keep
        self.tmp = tempfile.mkdtemp(prefix="estn-integ-%s-" % name.replace("/", "_"))
        self.sims = []
        self.log_lines = []

    def log(self, msg):
        self.log_lines.append(msg)

    def path(self, name):
        return os.path.join(self.tmp, name)

    def write_file(self, name, data):
        p = self.path(name)
        with open(p, "wb") as f:
            f.write(data)
        return p

    def require_executables(self, *names):
        for n in names:
            p = os.path.join(self.build, n)
            check(os.access(p, os.X_OK), "executable %s not found (build target %r first)" % (p, n))

    def cleanup(self, failed):
        for s in self.sims:
            s.kill()
        if failed or self.keep:
            # Images and flash dumps stay for a post-mortem (rerun byte for byte: seeds are fixed).
            print("test files kept in %s" % self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)


class Sim:
    """One espsim process. Its stdout is drained by a thread so the pipe never fills; every
    line is kept (JSON events) for diagnostics."""

    def __init__(self, ctx, chip, transport, mac=None, jedec=None, faults=(), tag="sim",
                 ready_timeout=15.0, extra=()):
        self.ctx = ctx
        self.chip = chip
        self.transport = transport
        self.tag = tag
        self.flash_out = ctx.path("%s-flash.bin" % tag)
        self.stderr_path = ctx.path("%s-stderr.txt" % tag)
        args = [ctx.espsim, "--chip", chip]
        if transport == "pty":
            args.append("--pty")
        elif transport == "tcp":
            args += ["--tcp", "0"]
        elif transport == "rfc2217":
            args += ["--rfc2217", "0"]
        else:
            raise ValueError(transport)
        if mac:
            args += ["--mac", mac]
        if jedec is not None:
            args += ["--flash-jedec", "0x%06X" % jedec]
        args += ["--flash-out", self.flash_out]
        for f in faults:
            args += ["--fault", f]
        args += list(extra)  # any other espsim option (--app-print TEXT, --usb-otg, ...)
        self.args = args
        ctx.log("start: " + " ".join(args))
        self._stderr_f = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr_f, preexec_fn=_pdeathsig, cwd=ctx.tmp)
        _children.append(self.proc)
        ctx.sims.append(self)
        self.lines = []
        self._q = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.ready = self._wait_ready(ready_timeout)
        self.port = self.ready.get("port")

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.lines.append(line)
            self._q.put(line)
        self._q.put(None)

    def _wait_ready(self, timeout):
        try:
            line = self._q.get(timeout=timeout)
        except queue.Empty:
            raise TestFailure("SIM: espsim printed no ready line within %.0f s (%s)"
                              % (timeout, " ".join(self.args)))
        if line is None:
            self.proc.wait(timeout=5)
            raise TestFailure("SIM: espsim exited (status %s) before its ready line; stderr: %s"
                              % (self.proc.returncode, self.stderr_text()[-2000:]))
        try:
            ev = json.loads(line)
        except ValueError:
            raise TestFailure("SIM: first stdout line is not JSON: %r" % line[:300])
        check(isinstance(ev, dict) and ev.get("event") == "ready",
              "SIM: first stdout line is not a ready event: %r" % line[:300])
        for key in ("port", "chip", "mac", "flash_id", "flash_size"):
            check(key in ev, "SIM: ready line lacks %r: %r" % (key, line[:300]))
        prefix = {"pty": "/dev/pts/", "tcp": "socket://127.0.0.1:",
                  "rfc2217": "rfc2217://127.0.0.1:"}[self.transport]
        check(str(ev["port"]).startswith(prefix),
              "SIM: ready port %r does not start with %r" % (ev["port"], prefix))
        if self.transport in ("tcp", "rfc2217"):
            self._check_loopback_only(int(str(ev["port"]).rsplit(":", 1)[1]))
        self.ctx.log("ready: " + line)
        return ev

    def _check_loopback_only(self, port):
        """The sims must listen on 127.0.0.1 only (never on a wildcard address)."""
        try:
            with open("/proc/net/tcp") as f:
                rows = f.read().splitlines()[1:]
            with open("/proc/net/tcp6") as f:
                rows += f.read().splitlines()[1:]
        except OSError:
            return
        for row in rows:
            cols = row.split()
            addr, hexport = cols[1].rsplit(":", 1)
            if int(hexport, 16) == port and cols[3] == "0A":  # 0A = LISTEN
                check(addr == "0100007F",
                      "SIM: espsim listens on %s (hex), not on 127.0.0.1 only" % addr)

    def stderr_text(self):
        try:
            if not self._stderr_f.closed:
                self._stderr_f.flush()
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def events(self):
        out = []
        for line in list(self.lines):
            try:
                out.append(json.loads(line))
            except ValueError:
                pass
        return out

    def stop_and_dump(self, timeout=20.0):
        """SIGTERM: the sim writes its flash to --flash-out and exits. Returns the bytes."""
        check(self.proc.poll() is None,
              "SIM: espsim died during the test (status %s); stderr: %s"
              % (self.proc.returncode, self.stderr_text()[-2000:]))
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise TestFailure("SIM: espsim did not exit within %.0f s of SIGTERM" % timeout)
        self._reader.join(timeout=5)
        err = self.stderr_text()
        san = sanitizer_report(err)
        check(san is None, "SIM: sanitizer report (%s) in espsim stderr:\n%s" % (san, err[-4000:]))
        check(self.proc.returncode == 0,
              "SIM: espsim exit status %s after SIGTERM; stderr: %s"
              % (self.proc.returncode, err[-2000:]))
        check(os.path.exists(self.flash_out), "SIM: no flash dump written to %s" % self.flash_out)
        with open(self.flash_out, "rb") as f:
            return f.read()

    def kill(self):
        _kill(self.proc)
        if not self._stderr_f.closed:
            self._stderr_f.close()


class Result:
    def __init__(self, args, status, out, err, elapsed):
        self.args = args
        self.status = status
        self.out = out
        self.err = err
        self.elapsed = elapsed
        self.json = None

    def describe(self):
        return ("command: %s\nexit status: %s (%.1f s)\nstdout: %s\nstderr: %s"
                % (" ".join(self.args), self.status, self.elapsed, self.out[-3000:],
                   self.err[-3000:]))


def run_espstation(ctx, args, timeout=60.0):
    """Run espstation; never hangs the test: killed after `timeout` s (then a failure)."""
    cmd = [ctx.espstation] + list(args)
    ctx.log("run: " + " ".join(cmd))
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=_pdeathsig, cwd=ctx.tmp)
    _children.append(proc)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(proc)
        out, err = proc.communicate()
        raise TestFailure("HOST: espstation hung: killed after %.0f s\ncommand: %s\nstdout: %s\n"
                          "stderr: %s" % (timeout, " ".join(cmd),
                                          out.decode(errors="replace")[-2000:],
                                          err.decode(errors="replace")[-2000:]))
    r = Result(cmd, proc.returncode, out.decode("utf-8", "replace"),
               err.decode("utf-8", "replace"), time.monotonic() - t0)
    ctx.log("exit status %s after %.1f s" % (r.status, r.elapsed))
    ctx.log("stdout: " + r.out.strip()[-3000:])
    ctx.log("stderr: " + r.err.strip()[-3000:])
    return r


def check_no_crash(r):
    check(r.status is not None and r.status >= 0,
          "HOST: espstation killed by signal %s\n%s" % (-(r.status or 0), r.describe()))
    san = sanitizer_report(r.err)
    check(san is None, "HOST: sanitizer report (%s) in espstation stderr\n%s" % (san, r.describe()))


def parse_json_result(r):
    """--json: exactly one JSON object on stdout."""
    text = r.out.strip()
    check(text != "", "HOST: --json printed nothing on stdout\n" + r.describe())
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise TestFailure("HOST: stdout is not exactly one JSON object (%s)\n%s"
                          % (e, r.describe()))
    check(isinstance(obj, dict), "HOST: --json output is not an object\n" + r.describe())
    r.json = obj
    return obj


def expect_failure(r, error_class, message_parts=(), hint_parts=()):
    """Non-zero exit, no crash, one JSON object with result fail, the class, a message and a
    hint (non-empty; containing the given parts, case-insensitively)."""
    check_no_crash(r)
    check(r.status != 0, "HOST: exit status 0 although %s was expected\n%s"
          % (error_class, r.describe()))
    obj = parse_json_result(r)
    check(obj.get("result") == "fail", "HOST: result %r, expected 'fail'\n%s"
          % (obj.get("result"), r.describe()))
    check(obj.get("error_class") == error_class, "HOST: error_class %r, expected %r\n%s"
          % (obj.get("error_class"), error_class, r.describe()))
    for key in ("message", "hint"):
        v = obj.get(key)
        check(isinstance(v, str) and v.strip() != "", "HOST: %r missing or empty\n%s"
              % (key, r.describe()))
    for part in message_parts:
        if isinstance(part, str):
            ok = part.lower() in obj["message"].lower()
        else:  # compiled regex
            ok = part.search(obj["message"]) is not None
        check(ok, "HOST: message %r does not mention %r"
              % (obj["message"], getattr(part, "pattern", part)))
    for part in hint_parts:
        check(part.lower() in obj["hint"].lower(),
              "HOST: hint %r does not mention %r" % (obj["hint"], part))
    return obj


def expect_success(r):
    check_no_crash(r)
    obj = parse_json_result(r)
    check(r.status == 0 and obj.get("result") == "pass",
          "HOST: run failed (exit %s, result %r, error_class %r, message %r)\n%s"
          % (r.status, obj.get("result"), obj.get("error_class"), obj.get("message"),
             r.describe()))
    return obj


def main(cases, description):
    """Common entry point: --build DIR --case NAME (or --list). Each case is fn(ctx)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--build", help="build directory holding espstation and espsim")
    ap.add_argument("--case", help="case to run")
    ap.add_argument("--list", action="store_true", help="print the case names")
    ap.add_argument("--timeout", type=float, default=170.0,
                    help="overall deadline in seconds (keep below the ctest TIMEOUT)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir")
    ap.add_argument("--verbose", action="store_true",
                    help="print commands, outputs and sim events even when the case passes")
    a = ap.parse_args()
    if a.list:
        print(";".join(cases))
        return 0
    if not a.build or a.case not in cases:
        ap.error("need --build and a --case among: " + ", ".join(cases))

    def on_alarm(signum, frame):
        raise TestFailure("test deadline of %.0f s reached" % a.timeout)

    def on_term(signum, frame):
        raise TestFailure("terminated by signal %d" % signum)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.alarm(int(a.timeout))
    ctx = Ctx(a.build, a.case, keep=a.keep or os.environ.get("ESTN_INTEG_KEEP") == "1")
    failed = True
    try:
        cases[a.case](ctx)
        failed = False
    except TestFailure as e:
        print("FAIL %s: %s" % (a.case, e))
    except Exception:
        print("ERROR %s (test harness exception):" % a.case)
        traceback.print_exc()
    finally:
        signal.alarm(0)
        kill_all_children()
        if failed or a.verbose:
            print("---- what ran ----")
            for line in ctx.log_lines:
                print(line)
            for s in ctx.sims:
                print("---- %s stderr (tail) ----" % s.tag)
                print(s.stderr_text()[-3000:])
                print("---- %s events (tail) ----" % s.tag)
                for line in s.lines[-40:]:
                    print(line)
        ctx.cleanup(failed)
    if not failed:
        print("PASS %s" % a.case)
    sys.stdout.flush()
    return 1 if failed else 0
