# SPDX-License-Identifier: MIT
# apistation.py — one station under test for the API suite: espsim boards, images and recipes,
# a token file with one token per role, the station config (listen on 127.0.0.1:<free port>,
# "http" limits), and `espstation serve` started, restarted and stopped like
# tests/integration/test_station.py does (its Daemon and StationSim are reused, not copied).
# Must not: derive expected values from the daemon's answers; leave a process running.

import hashlib
import json
import os
import secrets
import socket
import stat
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
INTEG = os.path.join(os.path.dirname(HERE), "integration")
sys.path.insert(0, INTEG)
sys.path.insert(0, HERE)

import esp_image as img  # noqa: E402
import test_station as ts  # noqa: E402
from apiclient import Client, OpenApi  # noqa: E402
from harness import TestFailure, check, free_tcp_port, sanitizer_report  # noqa: E402

ROLES = ("viewer", "mes", "operator", "engineer")
CHIPS_ALL = ["esp8266", "esp32", "esp32s3", "esp32c3", "esp32c6"]
OUI = ts.OUI


def new_token():
    # token_urlsafe: [A-Za-z0-9_-], inside the documented token alphabet; 32 characters.
    return secrets.token_urlsafe(24)


class SlotSpec:
    """One fixture slot: its board (an espsim) and how the slot starts jobs."""

    def __init__(self, name, chip="esp32c3", transport="tcp", start="manual", faults=(),
                 realtime=False, recipe=None, mac=None):
        self.name = name
        self.chip = chip
        self.transport = transport
        self.start = start
        self.faults = list(faults)
        self.realtime = realtime
        self.recipe = recipe  # file name relative to the config (None: the station's)
        self.mac = mac
        self.sim = None


class Station:
    """Files and processes of one station. `http` goes into the config's "http" section."""

    def __init__(self, ctx, slots, http=None, tokens=True, token_mode=0o600, recipe="quick",
                 probe_interval_ms=300, web_root=None, extra=None, app_size=8 * 1024):
        self.ctx = ctx
        if not hasattr(ctx, "daemons"):
            ctx.daemons = []
        self.api = OpenApi()
        self.slots = slots
        self.image_dir = ctx.path("images")
        os.makedirs(self.image_dir, exist_ok=True)
        # Recipes of the config (images beside them under images/, so the same files are what
        # POST /api/v1/recipes resolves in the image directory).
        self.app = ts.Image(0x10000, "app.bin", img.app_image("api-app", app_size), "app")
        self.slow = ts.Image(0x10000, "slow.bin", img.prng_bytes("api-slow", 64 * 1024), "app")
        self.recipes = {}
        self.recipes["quick"] = self.write_recipe("quick.json", "api-quick", "1.0.0", [self.app])
        self.recipes["slow"] = self.write_recipe("slow.json", "api-slow", "2.0.0", [self.slow])
        # tokens
        self.tokens = {}
        self.token_path = None
        if tokens:
            self.tokens = {r: new_token() for r in ROLES}
            self.token_path = ctx.path("tokens")
            lines = ["# espstation API tokens (test)", ""]
            lines += ["%s %s" % (r, t) for r, t in self.tokens.items()]
            fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write("\n".join(lines) + "\n")
            os.chmod(self.token_path, token_mode)
        self.wrong_token = new_token()
        # boards
        for i, s in enumerate(slots):
            extra_args = ["--realtime"] if s.realtime else []
            mac = s.mac or "%s:%02x:a9:%02x" % (OUI[s.chip], 0x10 + i, 0x40 + i)
            s.sim = ts.StationSim(ctx, s.chip, s.transport, mac=mac, jedec=0xEF4016,
                                  faults=s.faults, tag="sim-%s" % s.name, extra=extra_args)
        self.port = free_tcp_port()
        self.db = ctx.path("station.db")
        cfg = {"id": "api-st1", "name": "API test station", "database": "station.db",
               "listen": "127.0.0.1:%d" % self.port, "probe_interval_ms": probe_interval_ms,
               "image_dir": "images"}
        if recipe:
            cfg["recipe"] = "images/" + ("%s.json" % recipe if recipe in self.recipes else recipe)
        if self.token_path:
            cfg["token_file"] = "tokens"
        if http is not None:
            cfg["http"] = http
        if web_root is not None:
            cfg["web_root"] = web_root
        cfg.update(extra or {})
        cfg["slots"] = []
        for s in slots:
            e = {"name": s.name, "port": s.sim.port, "start": s.start}
            if s.recipe:
                e["recipe"] = "images/" + s.recipe
            cfg["slots"].append(e)
        self.cfg = cfg
        self.config_path = ctx.write_file("station.json", json.dumps(cfg, indent=2).encode())
        self.daemon = None
        self.starts = 0

    # ------------------------------------------------------------ files

    def write_recipe(self, fname, name, version, images, chips=None, **fields):
        """A recipe file in the image directory; returns (path, hash of its bytes, dict)."""
        rec = {"name": name, "version": version, "chip": chips or CHIPS_ALL}
        rec.update(fields)
        rec["images"] = []
        for im in images:
            p = os.path.join(self.image_dir, im.name)
            if not os.path.exists(p):
                with open(p, "wb") as f:
                    f.write(im.data)
            rec["images"].append({"offset": "0x%x" % im.offset, "file": im.name,
                                  "sha256": hashlib.sha256(im.data).hexdigest()})
        text = json.dumps(rec, indent=2).encode()
        path = os.path.join(self.image_dir, fname)
        with open(path, "wb") as f:
            f.write(text)
        return {"path": path, "hash": hashlib.sha256(text).hexdigest(), "recipe": rec,
                "text": text, "name": name, "version": version}

    def recipe_hash(self, key):
        return self.recipes[key]["hash"]

    # ------------------------------------------------------------ processes

    def start(self, ready_timeout=20.0, tag=None):
        self.starts += 1
        self.daemon = ts.Daemon(self.ctx, ["serve", "--config", self.config_path, "--verbose"],
                                tag=tag or "serve%d" % self.starts)
        self.wait_listening(ready_timeout)
        return self.daemon

    def wait_listening(self, timeout):
        """Until the daemon accepts connections on its port (it must stay alive)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.daemon.check_alive()
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=1)
                s.close()
                return
            except OSError:
                time.sleep(0.05)
        raise TestFailure("HOST: espstation does not listen on 127.0.0.1:%d within %.0f s\n%s"
                          % (self.port, timeout, self.daemon.describe()))

    def kill9(self):
        self.daemon.kill9()

    def stop(self, timeout=10.0):
        return self.daemon.stop(timeout)

    def restart(self, how="term"):
        if how == "kill":
            self.kill9()
        else:
            self.stop()
        return self.start()

    # ------------------------------------------------------------ clients

    def client(self, role=None, token=None):
        tok = token if token is not None else (self.tokens.get(role) if role else None)
        check(role is None or tok is not None, "TEST: no token for role %r" % role)
        return Client(self.port, self.api, token=tok, log=self.ctx.log)

    def slot(self, name):
        for s in self.slots:
            if s.name == name:
                return s
        raise TestFailure("TEST: no slot %r" % name)

    # ------------------------------------------------------------ database

    def db_jobs(self):
        return ts.jobs(self.db) or []

    def db_finished(self):
        return [r for r in self.db_jobs() if r["result"] != "running"]

    def wait(self, pred, timeout, what, poll=0.1):
        """Poll pred() (bounded) until it returns a true value; the daemon must stay alive."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = pred()
            if v:
                return v
            if self.daemon is not None:
                check(self.daemon.alive(), "HOST: espstation exited while waiting for %s\n%s"
                      % (what, self.daemon.describe()))
            time.sleep(poll)
        raise TestFailure("HOST: %s not reached within %.0f s\njobs:\n%s"
                          % (what, timeout, ts.summarize(self.db_jobs())))


def token_file_mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def with_daemon_log(fn):
    """A case runner: daemon stderr tails go into the log on failure (test_station's wrapper);
    when the case passed, every daemon still running must stop cleanly on SIGTERM (exit 0, no
    sanitizer report) and no daemon of the case may have printed a sanitizer report."""
    def run(ctx):
        fn(ctx)
        for d in getattr(ctx, "daemons", []):
            if d.alive():
                d.stop()
            err = d.stderr_text()
            san = sanitizer_report(err)
            check(san is None, "HOST: sanitizer report (%s) in espstation stderr (%s)\n%s"
                  % (san, d.tag, err[-4000:]))
    return ts._with_daemon_log(run)
