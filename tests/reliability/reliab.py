# SPDX-License-Identifier: MIT
# reliab.py — what the long reliability runs (crash_safety.py, soak.py) share: the daemon with
# its HTTP address read from its start line, a small API client, an MES-style cursor poller, the
# daemon's RSS and open descriptors from /proc, and the database checks.
# Must not: know how espstation works inside (everything goes through its process, its API and
# its database file), or leave a process running (harness.py's PDEATHSIG + sweep).

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import harness  # noqa: E402
import test_station as st  # noqa: E402
from harness import TestFailure, check  # noqa: E402

URL_RE = re.compile(r"HTTP API and dashboard on (http://[0-9.:\[\]a-z]+/)")


def wait_url(d, timeout=15):
    """The daemon's API address from its start line (the config listens on port 0)."""
    m = d.wait_stderr(URL_RE.pattern, timeout, "the HTTP API start line")
    return m.group(1)


def api_get(url, path, timeout=5):
    """GET url+path → (status, parsed JSON or None)."""
    req = urllib.request.Request(url.rstrip("/") + path, headers={"Accept": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read().decode("utf-8"))
    except urllib.error.HTTPError as e:
        body = e.read().decode("utf-8", "replace")
        try:
            return e.code, json.loads(body)
        except ValueError:
            return e.code, None


class CursorPoller:
    """An MES client: GET /api/v1/jobs?after=<cursor> in a loop, remembering every job it was
    told about. Survives daemon restarts (the cursor is its own); each finished job must come
    exactly once, in increasing seq."""

    def __init__(self, interval=0.03):
        self.cursor = 0
        self.reported = {}  # seq -> Job as the API reported it
        self.errors = []
        self.interval = interval
        self._stop = threading.Event()
        self._thread = None
        self.url = None

    def poll_once(self):
        while True:
            status, body = api_get(self.url, "/api/v1/jobs?after=%d&limit=1000" % self.cursor)
            if status != 200 or not isinstance(body, dict):
                raise OSError("GET /api/v1/jobs: status %s" % status)
            for job in body.get("jobs", []):
                seq = job.get("seq")
                if not isinstance(seq, int) or seq <= self.cursor:
                    self.errors.append("job seq %r after cursor %d: %r" % (seq, self.cursor, job))
                    continue
                if seq in self.reported:
                    self.errors.append("seq %d reported twice" % seq)
                self.reported[seq] = job
                self.cursor = seq
            if body.get("next_after") != self.cursor:
                self.errors.append("next_after %r, last seq %d" % (body.get("next_after"),
                                                                   self.cursor))
                self.cursor = max(self.cursor, body.get("next_after") or 0)
            if not body.get("has_more"):
                return

    def _run(self):
        while not self._stop.is_set():
            try:
                self.poll_once()
            except (OSError, ValueError):
                pass  # the daemon is starting, or was just killed: try again
            self._stop.wait(self.interval)

    def start(self, url):
        self.url = url
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self):
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=10)
            self._thread = None


def proc_sample(pid):
    """(RSS in KiB, open descriptors) of a live process, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            rss = [int(line.split()[1]) for line in f if line.startswith("VmRSS:")]
        fds = len(os.listdir("/proc/%d/fd" % pid))
    except (OSError, ValueError, IndexError):
        return None
    return (rss[0] if rss else None), fds


def integrity(db):
    """PRAGMA integrity_check and foreign_key_check must both be clean. A kill that lands
    before the daemon created its database leaves no file: nothing to check (and nothing can
    have been reported; the callers compare with what the API said)."""
    if not os.path.exists(db):
        return
    st.check_db_integrity(db)


def all_jobs(db):
    if not os.path.exists(db):
        return []  # killed before the database was created
    rows = st.jobs(db, readonly=False)
    check(rows is not None, "HOST: database %s not readable" % db)
    return rows


def serve(ctx, cfg_path, tag, extra_args=(), wrapper=()):
    """espstation serve (optionally under a wrapper such as valgrind)."""
    d = st.Daemon.__new__(st.Daemon)
    d.ctx = ctx
    d.tag = tag
    d.args = list(wrapper) + [ctx.espstation, "serve", "--config", cfg_path] + list(extra_args)
    d.err_path = ctx.path("%s-stderr.txt" % tag)
    d.out_path = ctx.path("%s-stdout.txt" % tag)
    d._err = open(d.err_path, "wb")
    d._out = open(d.out_path, "wb")
    ctx.log("run: " + " ".join(d.args))
    d.t0 = time.monotonic()
    d.proc = subprocess.Popen(d.args, stdin=subprocess.DEVNULL, stdout=d._out, stderr=d._err,
                              preexec_fn=harness._pdeathsig, cwd=ctx.tmp)
    harness._children.append(d.proc)
    ctx.daemons.append(d)
    return d


def fmt_table(header, rows):
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    def line(r):
        return "| " + " | ".join(str(x).rjust(w) for x, w in zip(r, widths)) + " |"
    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


__all__ = ["TestFailure", "check", "harness", "st", "wait_url", "api_get", "CursorPoller",
           "proc_sample", "integrity", "all_jobs", "serve", "fmt_table"]


def script_main(a, name, tag, run, describe, log_tail=20, daemon_tail=None, err_tail=4000,
                term_fails=False):
    """The frame of a long run (crash_safety.py, soak.py): the overall deadline (SIGALRM), the
    temp directory, `run(ctx, a)`, one summary line (`describe(summary)`) and the JSON report
    line, and on failure the end of the log and of the daemons' stderr. Returns the exit status.
    `term_fails`: SIGTERM ends the run as a failure (with the log) instead of killing it."""
    def on_alarm(signum, frame):
        raise TestFailure("deadline of %.0f s reached" % a.timeout)

    signal.signal(signal.SIGALRM, on_alarm)
    if term_fails:
        signal.signal(signal.SIGTERM, lambda s, f: (_ for _ in ()).throw(TestFailure("SIGTERM")))
    signal.alarm(int(a.timeout))
    if a.tmpdir:
        os.makedirs(a.tmpdir, exist_ok=True)
        tempfile.tempdir = a.tmpdir
    ctx = harness.Ctx(a.build, tag, keep=a.keep)
    ctx.daemons = []
    failed = True
    try:
        ctx.require_executables("espsim", "espstation")
        summary = run(ctx, a)
        failed = False
        print("%s: %s" % (name, describe(summary)))
        if a.report:
            with open(a.report, "a") as f:
                f.write(json.dumps(summary) + "\n")
    except TestFailure as e:
        print("FAIL %s (seed %d): %s" % (name.replace(" ", "-"), a.seed, e))
    except Exception:
        print("ERROR %s (seed %d):" % (name.replace(" ", "-"), a.seed))
        traceback.print_exc()
    finally:
        signal.alarm(0)
        harness.kill_all_children()
        if failed:
            for line in ctx.log_lines[-log_tail:]:
                print(line)
            for d in ctx.daemons[-daemon_tail:] if daemon_tail else ctx.daemons:
                try:
                    print("---- %s stderr (tail) ----\n%s" % (d.tag, d.stderr_text()[-err_tail:]))
                except (OSError, ValueError):
                    pass
        ctx.cleanup(failed)
    if not failed:
        print("PASS %s" % name.replace(" ", "-"))
    return 1 if failed else 0
