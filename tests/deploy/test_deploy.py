#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_deploy.py — the installed station: `cmake --install` into a DESTDIR (the files and their
# modes), the installed daemon started from there with the installed example config against
# simulated boards (espsim from the build tree), the systemd unit (systemd-analyze verify and
# security, sysusers/tmpfiles in a scratch root), the udev rules, the .deb (cpack, dpkg-deb -I/-c,
# dependencies), and the man page against every subcommand's --help.
# Must not: touch the real system (/etc, /var, systemd, udev): everything goes to temp dirs.
# Exit status 77 = skipped (a tool this machine lacks), with a message saying which.

import argparse
import fnmatch
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import traceback
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import harness  # noqa: E402
from harness import Sim, TestFailure, check, free_tcp_port  # noqa: E402

SKIP = 77


class Skip(Exception):
    """A tool this case needs is not installed: the case is skipped (exit 77), not passed."""


# ---------------------------------------------------------------- helpers

def run(args, timeout=60, env=None, cwd=None, ok=True):
    """Run a command (bounded); returns CompletedProcess. ok=True: non-zero status fails."""
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env,
                           cwd=cwd, preexec_fn=harness._pdeathsig)
    except subprocess.TimeoutExpired:
        raise TestFailure("%s: no answer within %d s" % (" ".join(args), timeout))
    if ok and p.returncode != 0:
        raise TestFailure("%s: exit status %d\nstdout:\n%s\nstderr:\n%s"
                          % (" ".join(args), p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
    return p


def cache_value(build, name):
    with open(os.path.join(build, "CMakeCache.txt")) as f:
        for line in f:
            if line.startswith(name + ":"):
                return line.split("=", 1)[1].strip()
    return None


def install(ctx, prefix, destdir=None):
    """`cmake --install BUILD --prefix PREFIX` (into DESTDIR when given). Returns the root that
    holds the installed tree (DESTDIR, or "/" for a prefix install)."""
    env = dict(os.environ)
    env.pop("DESTDIR", None)
    if destdir:
        env["DESTDIR"] = destdir
    run([ctx.cmake, "--install", ctx.build, "--prefix", prefix], timeout=60, env=env)
    return destdir or "/"


def tree(root):
    """{relative path: lstat} of every file (not directory) under root."""
    out = {}
    for d, dirs, files in os.walk(root):
        for f in files:
            p = os.path.join(d, f)
            out[os.path.relpath(p, root)] = os.lstat(p)
    return out


def source_files(src, sub, patterns):
    """Files under src/sub matching any glob pattern, relative to src/sub (dotfiles skipped)."""
    base = os.path.join(src, sub)
    out = set()
    if not os.path.isdir(base):
        return out
    for d, dirs, files in os.walk(base):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        for f in files:
            if f.startswith("."):
                continue
            rel = os.path.relpath(os.path.join(d, f), base)
            if any(fnmatch.fnmatch(f, pat) for pat in patterns):
                out.add(rel)
    return out


def expected_files(ctx, prefix):
    """What an install with PREFIX must contain, relative to "/" (no leading slash); derived from
    the source tree (docs, dashboard files) and deploy/CMakeLists.txt's fixed list. Returns
    {path: kind} with kind "exe" (mode 0755) or "data" (0644)."""
    p = prefix.strip("/")
    exp = {
        p + "/bin/espstation": "exe",
        p + "/lib/systemd/system/espstation.service": "data",
        p + "/lib/sysusers.d/espstation.conf": "data",
        p + "/lib/tmpfiles.d/espstation.conf": "data",
        p + "/lib/modules-load.d/espstation.conf": "data",
        p + "/lib/udev/rules.d/70-espstation.rules": "data",
        p + "/share/man/man1/espstation.1": "data",
        p + "/share/doc/espstation/README.md": "data",
        p + "/share/doc/espstation/examples/station.example.json": "data",
        p + "/share/doc/espstation/examples/tokens.example": "data",
        p + "/share/doc/espstation/examples/71-espstation-slots.rules": "data",
    }
    if cache_value(ctx.build, "ESTN_INSTALL_ESPSIM") in ("ON", "1", "TRUE", "YES", None):
        exp[p + "/bin/espsim"] = "exe"
    for f in source_files(ctx.src, "docs", ["*.md", "*.png", "*.svg"]):
        exp[p + "/share/doc/espstation/" + f] = "data"
    for f in source_files(ctx.src, "web-static", ["*"]):
        exp[p + "/share/espstation/web/" + f] = "data"
    return exp


def check_modes(found, exp, what):
    for path, kind in sorted(exp.items()):
        st = found[path]
        check(stat.S_ISREG(st.st_mode), "%s: %s is not a regular file" % (what, path))
        want = 0o755 if kind == "exe" else 0o644
        check(stat.S_IMODE(st.st_mode) == want, "%s: %s has mode %o, expected %o"
              % (what, path, stat.S_IMODE(st.st_mode), want))


def compare_lists(found, exp, what):
    missing = sorted(set(exp) - set(found))
    extra = sorted(set(found) - set(exp))
    check(not missing and not extra, "%s: installed files differ from the expected list\n"
          "missing: %s\nunexpected: %s" % (what, missing or "-", extra or "-"))


def unit_value(text, key):
    vals = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith(key + "=")]
    return vals


# ---------------------------------------------------------------- cases

def case_install(ctx):
    """DESTDIR install with prefix /usr: exactly the expected files, modes, the unit's paths,
    examples identical to deploy/, and the installed programs run."""
    dest = ctx.path("destdir")
    install(ctx, "/usr", dest)
    found = tree(dest)
    exp = expected_files(ctx, "/usr")
    compare_lists(found, exp, "cmake --install (DESTDIR, prefix /usr)")
    check_modes(found, exp, "cmake --install")
    unit = open(os.path.join(dest, "usr/lib/systemd/system/espstation.service")).read()
    check(unit_value(unit, "ExecStart") == ["/usr/bin/espstation serve --config "
                                            "/etc/espstation/station.json"],
          "unit: ExecStart %r, expected the installed /usr/bin/espstation"
          % unit_value(unit, "ExecStart"))
    check(not re.search(r"@[A-Z_]+@", unit),
          "unit: a template variable was not substituted:\n" + unit)
    for doc in unit_value(unit, "Documentation")[0].split():
        if doc.startswith("file://"):
            check(os.path.exists(dest + doc[len("file://"):]),
                  "unit: Documentation %s is not installed" % doc)
    for src, dst in (("deploy/station.example.json", "examples/station.example.json"),
                     ("deploy/tokens.example", "examples/tokens.example"),
                     ("deploy/udev/71-espstation-slots.rules",
                      "examples/71-espstation-slots.rules")):
        a = open(os.path.join(ctx.src, src), "rb").read()
        b = open(os.path.join(dest, "usr/share/doc/espstation", dst), "rb").read()
        check(a == b, "installed %s differs from %s" % (dst, src))
    # A prefix install elsewhere puts the same files under that prefix, and the unit follows.
    other = ctx.path("other")
    install(ctx, "/opt/espstation", other)
    compare_lists(tree(other), expected_files(ctx, "/opt/espstation"),
                  "cmake --install (DESTDIR, prefix /opt/espstation)")
    unit = open(os.path.join(other, "opt/espstation/lib/systemd/system/espstation.service")).read()
    check(unit_value(unit, "ExecStart")[0].startswith("/opt/espstation/bin/espstation "),
          "unit of the /opt/espstation install: ExecStart %r" % unit_value(unit, "ExecStart"))
    # The installed programs run from the DESTDIR (no build-tree paths needed).
    exe = os.path.join(dest, "usr/bin/espstation")
    version = cache_value(ctx.build, "CMAKE_PROJECT_VERSION")
    out = run([exe, "--version"], timeout=10).stdout.strip()
    check(out == "espstation %s" % version, "installed espstation --version: %r, project version "
          "%s" % (out, version))
    if "usr/bin/espsim" in found:
        p = run([os.path.join(dest, "usr/bin/espsim"), "--help"], timeout=10, ok=False)
        check(p.returncode == 0 and "--chip" in p.stdout + p.stderr,
              "installed espsim --help: status %d\n%s" % (p.returncode, p.stdout + p.stderr))
    print("install: %d files as expected (prefix /usr and /opt/espstation)" % len(found))


def make_recipe(ctx, chips, size=48 * 1024):
    """A recipe with one application image at 0x10000 (never at a bootloader offset, so the
    written bytes are the image itself). Returns (recipe path, image bytes)."""
    rnd = hashlib.sha256(b"espstation deploy test").digest()
    data = bytearray()
    while len(data) < size:
        rnd = hashlib.sha256(rnd).digest()
        data += rnd
    data = bytes(data[:size])
    d = ctx.path("recipes/product")
    os.makedirs(d)
    with open(os.path.join(d, "app.bin"), "wb") as f:
        f.write(data)
    rec = {"name": "deploy-test", "version": "1.0.0", "chip": chips,
           "images": [{"label": "app", "offset": "0x10000", "file": "app.bin",
                       "sha256": hashlib.sha256(data).hexdigest()}]}
    path = os.path.join(d, "recipe.json")
    with open(path, "w") as f:
        json.dump(rec, f, indent=2)
    return path, data


def tokens_from_example(example_path, out_path):
    """The token file in the format tokens.example documents: its commented sample lines
    ("#<role> <token>") made active. Returns {role: token}."""
    roles = {}
    lines = []
    for line in open(example_path):
        m = re.match(r"^#(viewer|mes|operator|engineer)\s+(\S+)\s*$", line)
        if m:
            roles[m.group(1)] = m.group(2)
            lines.append("%s %s\n" % (m.group(1), m.group(2)))
    check(set(roles) == {"viewer", "mes", "operator", "engineer"},
          "tokens.example: sample lines for every role expected, found %r" % sorted(roles))
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("# written by test_deploy.py from tokens.example\n\n" + "".join(lines))
    return roles


def http_get(url, token=None, timeout=5):
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def http_post(url, token=None, timeout=5):
    req = urllib.request.Request(url, data=b"", method="POST")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Daemon:
    def __init__(self, ctx, args, env):
        self.ctx = ctx
        self.args = args
        self.err_path = ctx.path("daemon-stderr.txt")
        self._err = open(self.err_path, "wb")
        ctx.log("run: " + " ".join(args))
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self._err,
                                     stderr=self._err, env=env, cwd=ctx.tmp,
                                     preexec_fn=harness._pdeathsig)
        harness._children.append(self.proc)

    def stderr(self):
        self._err.flush()
        return open(self.err_path, "rb").read().decode("utf-8", "replace")

    def describe(self):
        return "%s (status %s)\nstderr (tail):\n%s" % (" ".join(self.args), self.proc.poll(),
                                                       self.stderr()[-4000:])

    def wait_for(self, pattern, timeout, what):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = rx.search(self.stderr())
            if m:
                return m
            check(self.proc.poll() is None, "installed espstation exited while waiting for %s\n%s"
                  % (what, self.describe()))
            time.sleep(0.1)
        raise TestFailure("%s not seen within %d s\n%s" % (what, timeout, self.describe()))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise TestFailure("installed espstation did not stop within 15 s of SIGTERM\n"
                              + self.describe())
        err = self.stderr()
        check(harness.sanitizer_report(err) is None, "sanitizer report\n" + self.describe())
        check(self.proc.returncode == 0, "installed espstation: exit status %s after SIGTERM\n%s"
              % (self.proc.returncode, self.describe()))


def case_serve(ctx):
    """The installed daemon (DESTDIR, prefix /usr) with the installed example config — only the
    site-specific values replaced (ports, paths) plus a stub directory laid out as DEPLOY.md
    says — flashes two simulated boards with the stub, and serves the installed dashboard files
    and the API with the example token file's roles."""
    dest = ctx.path("destdir")
    install(ctx, "/usr", dest)
    exe = os.path.join(dest, "usr/bin/espstation")
    examples = os.path.join(dest, "usr/share/doc/espstation/examples")
    cfg = json.load(open(os.path.join(examples, "station.example.json")))
    check(len(cfg.get("slots", [])) >= 2, "station.example.json: at least two slots expected")

    chips = ["esp32", "esp32c3"]
    recipe, image = make_recipe(ctx, chips)
    sims = [Sim(ctx, chip, "rfc2217", mac="24:0a:c4:de:01:%02x" % i, tag="sim%d" % i)
            for i, chip in enumerate(chips)]
    http_port = free_tcp_port()
    # Site-specific values only: every other setting of the example stays as shipped, so a
    # setting the daemon does not know (or a bad value) fails here.
    cfg["database"] = ctx.path("var/espstation.db")
    os.makedirs(ctx.path("var/images"))
    cfg["image_dir"] = ctx.path("var/images")
    cfg["recipe"] = recipe
    cfg["listen"] = "127.0.0.1:%d" % http_port
    tokens = None
    if "token_file" in cfg:
        cfg["token_file"] = ctx.path("tokens")
        tokens = tokens_from_example(os.path.join(examples, "tokens.example"), cfg["token_file"])
    # Flasher stubs as DEPLOY.md §4 installs them: a copy of esptool's targets/stub_flasher
    # directory (here synthetic files in the 4.8+ layout, stub_flasher/1/<chip>.json).
    stubs = ctx.path("var/stubs")
    run([sys.executable, os.path.join(ctx.src, "tests/data/mkstub.py"),
         os.path.join(stubs, "1")], timeout=30)
    cfg["stub_dir"] = stubs
    cfg["slots"] = cfg["slots"][:len(sims)]
    for slot, sim in zip(cfg["slots"], sims):
        slot["port"] = sim.port
    cfg_path = ctx.path("station.json")
    with open(cfg_path, "w") as f:
        json.dump(cfg, f, indent=2)

    # The installed dashboard, marked, so that serving it proves the installed layout is used.
    web = os.path.join(dest, "usr/share/espstation/web")
    index = os.path.join(web, "index.html")
    marker = "<!-- installed copy %s -->" % os.getpid()
    if os.path.exists(index):
        with open(index, "a") as f:
            f.write(marker + "\n")

    env = dict(os.environ)
    env.pop("ESPSTATION_WEB_ROOT", None)
    d = Daemon(ctx, [exe, "serve", "--config", cfg_path, "--verbose"], env)
    names = [s["name"] for s in cfg["slots"]]
    for name in names:
        d.wait_for(r"\[%s\] PASS " % re.escape(name), 60, "slot %s PASS" % name)

    # The API of the installed daemon: the example's tokens work with their roles, the MES
    # cursor lists the jobs, and / is the installed dashboard (the marked copy).
    base = "http://127.0.0.1:%d" % http_port
    deadline = time.monotonic() + 10
    while True:
        try:
            status, body = http_get(base + "/api/v1/station", tokens and tokens["viewer"])
            break
        except OSError as e:
            check(time.monotonic() < deadline, "HTTP %s: %s\n%s" % (base, e, d.describe()))
            time.sleep(0.2)
    check(status == 200, "GET /api/v1/station with the viewer token: %d %r" % (status, body))
    st = json.loads(body)
    check(st.get("id") == cfg["id"], "GET /api/v1/station: id %r, config says %r"
          % (st.get("id"), cfg["id"]))
    status, body = http_get(base + "/api/v1/jobs?after=0", tokens and tokens["mes"])
    check(status == 200, "GET /api/v1/jobs with the mes token: %d %r" % (status, body[:300]))
    macs = {j["mac"] for j in json.loads(body)["jobs"] if j["result"] == "pass"}
    check({s.ready["mac"] for s in sims} <= macs, "GET /api/v1/jobs: passing MACs %r, the "
          "simulators are %r" % (sorted(macs), [s.ready["mac"] for s in sims]))
    check(os.path.exists(index), "the dashboard's index.html is not installed in " + web)
    status, body = http_get(base + "/")
    check(status == 200 and marker.encode() in body,
          "GET /: %d; the installed index.html (with marker %s) was not served: the web root "
          "should be <bindir>/../share/espstation/web" % (status, marker))
    if tokens:
        status, _ = http_post(base + "/api/v1/slots/%s/cancel" % names[0], tokens["viewer"])
        check(status == 403, "POST cancel with the viewer token: %d, expected 403" % status)
        status, _ = http_post(base + "/api/v1/slots/%s/cancel" % names[0], "x" * 32)
        check(status == 401, "POST cancel with an unknown token: %d, expected 401" % status)
    print("serve: HTTP: the installed dashboard, the MES cursor, the example's token roles")
    d.stop()

    con = sqlite3.connect("file:%s?mode=ro" % cfg["database"], uri=True, timeout=5)
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM jobs WHERE result = 'pass' ORDER BY id")]
    con.close()
    for name, sim in zip(names, sims):
        mine = [r for r in rows if r["slot"] == name]
        check(mine, "database: no passing job for slot %s" % name)
        check(mine[0]["mac"] == sim.ready["mac"] and mine[0]["chip"] == sim.chip,
              "database: slot %s recorded %s %s, the simulator is %s %s"
              % (name, mine[0]["chip"], mine[0]["mac"], sim.chip, sim.ready["mac"]))
        stub_runs = [e for e in sim.events() if e.get("event") == "stub"]
        check(len(stub_runs) >= 1, "slot %s: the stub from stub_dir was not used (espsim saw "
              "no stub upload)" % name)
        dump = sim.stop_and_dump()
        check(dump[0x10000:0x10000 + len(image)] == image,
              "flash of the %s in slot %s differs from the recipe's image at 0x10000"
              % (sim.chip, name))
    print("serve: installed daemon flashed %s with the example config" % ", ".join(
        "%s (%s)" % (n, s.chip) for n, s in zip(names, sims)))


def case_unit(ctx):
    """systemd-analyze verify on the installed unit (no warnings allowed) and its security
    exposure; sysusers.d and tmpfiles.d files applied to a scratch root."""
    sa = shutil.which("systemd-analyze")
    if not sa:
        raise Skip("systemd-analyze not found (package systemd): unit not verified")
    # A prefix install (no DESTDIR) so that ExecStart names an executable that exists.
    root = ctx.path("prefix")
    install(ctx, root + "/usr")
    unit = os.path.join(root, "usr/lib/systemd/system/espstation.service")
    p = run([sa, "verify", "--man=no", unit], timeout=60, ok=False)
    out = (p.stdout + p.stderr).strip()
    check(p.returncode == 0 and out == "",
          "systemd-analyze verify %s: status %d, output:\n%s" % (unit, p.returncode, out))
    # Exposure: 0 (locked down) ... 10 (unprotected); the unit is 1.7 when written. A change
    # that weakens it beyond 2.5 must be a decision, not an accident.
    p = run([sa, "security", "--offline=yes", "--threshold=25", unit], timeout=60, ok=False)
    m = re.search(r"Overall exposure level for espstation.service: ([0-9.]+)", p.stdout)
    check(m and p.returncode == 0, "systemd-analyze security: status %d (threshold 2.5)\n%s"
          % (p.returncode, p.stdout[-3000:] + p.stderr[-1000:]))
    print("unit: verify clean, exposure %s" % m.group(1))
    text = open(unit).read()
    for want in ("User=espstation", "SupplementaryGroups=dialout", "StateDirectory=espstation",
                 "ConfigurationDirectory=espstation", "Restart=on-failure",
                 "DevicePolicy=closed", "DeviceAllow=char-ttyUSB rw", "DeviceAllow=char-ttyACM rw",
                 "ProtectSystem=strict", "ProtectHome=yes", "NoNewPrivileges=yes",
                 "PrivateTmp=yes", "SystemCallFilter=@system-service"):
        check(want in text.splitlines(), "unit: %r missing" % want)
    fams = unit_value(text, "RestrictAddressFamilies")
    check(fams and set(fams[0].split()) == {"AF_UNIX", "AF_INET", "AF_INET6", "AF_NETLINK"},
          "unit: RestrictAddressFamilies %r" % fams)

    if os.geteuid() != 0:
        print("unit: not root: sysusers.d/tmpfiles.d not applied to a scratch root (chown)")
        return
    scratch = ctx.path("scratch")
    os.makedirs(os.path.join(scratch, "etc"))
    with open(os.path.join(scratch, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\n")
    with open(os.path.join(scratch, "etc/group"), "w") as f:
        f.write("root:x:0:\ndialout:x:20:\n")
    for tool, sub in (("systemd-sysusers", "sysusers.d"), ("systemd-tmpfiles", "tmpfiles.d")):
        exe = shutil.which(tool)
        if not exe:
            print("unit: %s not found: %s file not applied" % (tool, sub))
            continue
        args = [exe, "--root=" + scratch]
        if tool == "systemd-tmpfiles":
            args.append("--create")
        run(args + [os.path.join(root, "usr/lib", sub, "espstation.conf")], timeout=30)
    if shutil.which("systemd-sysusers"):
        pw = [line.split(":") for line in open(os.path.join(scratch, "etc/passwd"))]
        user = [e for e in pw if e[0] == "espstation"]
        check(user and user[0][5] == "/var/lib/espstation" and "nologin" in user[0][6],
              "sysusers: espstation user %r" % user)
        groups = {line.split(":")[0]: line.strip().split(":")[3]
                  for line in open(os.path.join(scratch, "etc/group"))}
        check("espstation" in groups.get("dialout", "").split(","),
              "sysusers: espstation is not in dialout: %r" % groups.get("dialout"))
        if shutil.which("systemd-tmpfiles"):
            st = os.stat(os.path.join(scratch, "etc/espstation"))
            check(stat.S_IMODE(st.st_mode) == 0o755 and st.st_uid == 0,
                  "tmpfiles: /etc/espstation mode %o uid %d, expected 0755 root"
                  % (stat.S_IMODE(st.st_mode), st.st_uid))
            for sub in ("var/lib/espstation", "var/lib/espstation/images"):
                st = os.stat(os.path.join(scratch, sub))
                check(stat.S_IMODE(st.st_mode) == 0o750 and st.st_uid == int(user[0][2]),
                      "tmpfiles: /%s mode %o uid %d, expected 0750 espstation (%s)"
                      % (sub, stat.S_IMODE(st.st_mode), st.st_uid, user[0][2]))
        print("unit: sysusers.d created espstation in dialout; tmpfiles.d /etc/espstation and "
              "the state directory")


# udev rule syntax, as udev(7) defines it: KEY[{attr}] OP "value", comma separated.
UDEV_MATCH = {"ACTION", "DEVPATH", "KERNEL", "KERNELS", "NAME", "SYMLINK", "SUBSYSTEM",
              "SUBSYSTEMS", "DRIVER", "DRIVERS", "ATTR", "ATTRS", "SYSCTL", "ENV", "CONST",
              "TAG", "TAGS", "TEST", "PROGRAM", "RESULT"}
UDEV_ASSIGN = {"NAME", "SYMLINK", "OWNER", "GROUP", "MODE", "SECLABEL", "ATTR", "SYSCTL", "ENV",
               "TAG", "RUN", "LABEL", "GOTO", "IMPORT", "OPTIONS"}
UDEV_TOKEN = re.compile(r'\s*([A-Z]+)(\{[^}]*\})?\s*(==|!=|\+=|-=|:=|=)\s*"([^"]*)"\s*(,|$)')


def lint_udev(path):
    labels, gotos, rules = set(), set(), 0
    for n, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        pos, has_assign = 0, False
        while pos < len(line):
            m = UDEV_TOKEN.match(line, pos)
            check(m, "%s:%d: cannot parse at %r" % (path, n, line[pos:pos + 40]))
            key, op, val = m.group(1), m.group(3), m.group(4)
            if op in ("==", "!="):
                check(key in UDEV_MATCH, "%s:%d: %s is not a match key" % (path, n, key))
            else:
                check(key in UDEV_ASSIGN, "%s:%d: %s is not an assignment key" % (path, n, key))
                has_assign = True
            if key == "LABEL":
                labels.add(val)
            if key == "GOTO":
                gotos.add(val)
            if key == "SYMLINK" and op != "==":
                check(val.startswith("espstation/"), "%s:%d: symlink %r outside /dev/espstation/"
                      % (path, n, val))
            pos = m.end()
        check(has_assign, "%s:%d: a rule without an assignment does nothing" % (path, n))
        rules += 1
    check(gotos <= labels, "%s: GOTO without LABEL: %r" % (path, gotos - labels))
    return rules


def case_udev(ctx):
    """The udev rules parse (udev(7) syntax; `udevadm verify` too where udevadm has it), sort
    after 60-serial.rules (which sets ID_PATH), and the slot example names /dev/espstation/*."""
    paths = [os.path.join(ctx.src, "deploy/udev", f)
             for f in ("70-espstation.rules", "71-espstation-slots.rules")]
    for p in paths:
        n = lint_udev(p)
        check(os.path.basename(p) > "60-serial.rules", "%s must sort after 60-serial.rules" % p)
        print("udev: %s: %d rules" % (os.path.basename(p), n))
    slots = open(paths[1]).read()
    check(re.search(r'ENV\{ID_PATH\}=="[^"]+", SYMLINK\+="espstation/A1"', slots),
          "71-espstation-slots.rules: no example naming slot A1 by ID_PATH")
    for how in ("udevadm info", "espstation ports"):
        check(how in slots, "71-espstation-slots.rules does not explain %r" % how)
    udevadm = shutil.which("udevadm")
    if udevadm and run([udevadm, "verify", "--help"], ok=False, timeout=10).returncode == 0:
        run([udevadm, "verify"] + paths, timeout=30)
        print("udev: udevadm verify: ok")
    else:
        print("udev: udevadm verify not available (systemd >= 254): syntax checked here only")


def needed_packages(binary):
    """Debian packages of the shared libraries a binary needs (readelf + dpkg -S)."""
    out = run(["readelf", "-d", binary], timeout=20).stdout
    pkgs = set()
    for lib in re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out):
        p = run(["dpkg", "-S", "*/" + lib], timeout=20, ok=False)
        check(p.returncode == 0, "dpkg -S %s: no package owns it (%s)" % (lib, p.stderr.strip()))
        pkgs.add(p.stdout.split(":")[0].strip())
    return pkgs


def case_deb(ctx):
    """cpack -G DEB: the control fields, Depends covering every library the programs need,
    maintainer scripts, and the file list with owners and modes."""
    for tool in ("cpack", "dpkg-deb", "dpkg"):
        if not shutil.which(tool) and not (tool == "cpack" and os.path.exists(ctx.cpack)):
            raise Skip("%s not found: .deb not built" % tool)
    out = ctx.path("pkg")
    os.makedirs(out)
    run([ctx.cpack, "-G", "DEB", "--config", os.path.join(ctx.build, "CPackConfig.cmake"),
         "-B", out], timeout=100)
    debs = glob.glob(os.path.join(out, "*.deb"))
    check(len(debs) == 1, "cpack made %r" % debs)
    deb = debs[0]
    version = cache_value(ctx.build, "CMAKE_PROJECT_VERSION")
    arch = run(["dpkg", "--print-architecture"], timeout=10).stdout.strip()
    check(os.path.basename(deb) == "espstation_%s_%s.deb" % (version, arch),
          "package file name %s" % os.path.basename(deb))

    info = run(["dpkg-deb", "-I", deb], timeout=20).stdout
    fields = {}
    for line in run(["dpkg-deb", "-f", deb], timeout=20).stdout.splitlines():
        if line and not line[0].isspace() and ":" in line:
            k, v = line.split(":", 1)
            fields[k] = v.strip()
    for k, v in (("Package", "espstation"), ("Version", version), ("Architecture", arch)):
        check(fields.get(k) == v, "control %s: %r, expected %r" % (k, fields.get(k), v))
    for k in ("Maintainer", "Description", "Installed-Size", "Section", "Depends"):
        check(fields.get(k), "control: %s missing\n%s" % (k, info))
    depends = {re.split(r"[\s(]", alt.strip())[0] for dep in fields["Depends"].split(",")
               for alt in dep.split("|")}
    for s in ("postinst", "prerm", "postrm"):
        check(re.search(r"\b%s\b" % s, info), "control archive: %s missing\n%s" % (s, info))

    root = ctx.path("deb-root")
    run(["dpkg-deb", "-x", deb, root], timeout=30)
    ctrl = ctx.path("deb-control")
    run(["dpkg-deb", "-e", deb, ctrl], timeout=30)
    for s in ("postinst", "prerm", "postrm"):
        p = os.path.join(ctrl, s)
        check(stat.S_IMODE(os.stat(p).st_mode) == 0o755, "%s mode %o" % (s, os.stat(p).st_mode))
        run(["sh", "-n", p], timeout=10)
        check(open(p, "rb").read() == open(os.path.join(ctx.src, "deploy/debian", s), "rb").read(),
              "%s in the package differs from deploy/debian/%s" % (s, s))

    for exe in ("usr/bin/espstation", "usr/bin/espsim"):
        path = os.path.join(root, exe)
        if not os.path.exists(path):
            continue
        missing = needed_packages(path) - depends
        check(not missing, "Depends %r lacks %s, needed by %s" % (fields["Depends"],
                                                                 sorted(missing), exe))

    listing = run(["dpkg-deb", "-c", deb], timeout=20).stdout
    files = {}
    for line in listing.splitlines():
        parts = line.split(None, 5)
        if len(parts) == 6 and parts[0].startswith("-"):
            files[parts[5].lstrip("./")] = (parts[0], parts[1])
    exp = expected_files(ctx, "/usr")
    compare_lists(files, exp, "dpkg-deb -c")
    for path, (mode, owner) in files.items():
        check(owner == "root/root", "%s owned by %s in the package" % (path, owner))
        want = "-rwxr-xr-x" if exp[path] == "exe" else "-rw-r--r--"
        check(mode == want, "%s has mode %s in the package, expected %s" % (path, mode, want))
    unit = open(os.path.join(root, "usr/lib/systemd/system/espstation.service")).read()
    check(unit_value(unit, "ExecStart")[0].startswith("/usr/bin/espstation "),
          "packaged unit: ExecStart %r" % unit_value(unit, "ExecStart"))
    print("deb: %s, %d files, Depends: %s" % (os.path.basename(deb), len(files), fields["Depends"]))


def help_of(exe, args):
    p = run([exe] + args + ["--help"], timeout=10, ok=False)
    check(p.returncode == 0, "%s --help: status %d\n%s" % (" ".join(args), p.returncode,
                                                          p.stderr))
    return p.stdout


def man_text(path):
    """The man page source with roff escapes for '-' and fonts removed."""
    t = open(path).read()
    t = re.sub(r"\\f[BIRP]|\\f\(..|\\f\[[A-Z]*\]", "", t)
    return t.replace("\\-", "-").replace("\\(em", "-").replace("\\&", "")


def case_manpage(ctx):
    """docs/espstation.1 names every subcommand of `espstation --help` and every option of
    every subcommand's --help; groff renders it without warnings."""
    exe = os.path.join(ctx.build, "espstation")
    man_path = os.path.join(ctx.src, "docs/espstation.1")
    man = man_text(man_path)
    top = help_of(exe, [])
    cmds = re.findall(r"^  ([a-z][a-z-]*)\s{2,}", top.split("commands:", 1)[1], re.M)
    check(len(cmds) >= 5, "espstation --help: cannot find the command list:\n" + top)
    problems = []
    sections = re.findall(r"^\.SS\s+\"?(?:espstation\s+)?([a-z][a-z-]*)", man, re.M)
    for cmd in cmds:
        if cmd not in sections:
            problems.append("no .SS section for command %r" % cmd)
        text = help_of(exe, [cmd])
        for opt in sorted(set(re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", text))):
            if not re.search(r"(?<![\w-])%s(?![\w-])" % re.escape(opt), man):
                problems.append("%s: option %s (from its --help) not in the man page"
                                % (cmd, opt))
        for short in sorted(set(re.findall(r"(?<![\w-])(-[a-zA-Z])\b", text))):
            if not re.search(r"(?<![\w-])%s\b" % re.escape(short), man):
                problems.append("%s: option %s not in the man page" % (cmd, short))
    for opt in re.findall(r"(?<![\w-])(--[a-z][a-z0-9-]*)", top):
        if opt not in man:
            problems.append("espstation %s not in the man page" % opt)
    raw = open(man_path, "rb").read()
    check(all(b < 128 for b in raw), "docs/espstation.1: non-ASCII bytes (use roff escapes)")
    version = cache_value(ctx.build, "CMAKE_PROJECT_VERSION")
    th = re.search(r'^\.TH .*"espstation ([^"]+)"', raw.decode(), re.M)
    if not th or th.group(1) != version:
        problems.append(".TH names version %r, the project is %s" % (th and th.group(1), version))
    check(not problems, "docs/espstation.1 is incomplete:\n  " + "\n  ".join(problems))
    groff = shutil.which("groff")
    if groff:
        p = run([groff, "-man", "-Tutf8", "-ww", "-z", man_path], timeout=30, ok=False)
        check(p.returncode == 0 and p.stderr.strip() == "",
              "groff -man -ww: status %d\n%s" % (p.returncode, p.stderr))
        print("manpage: %d commands, rendered by groff without warnings" % len(cmds))
    else:
        print("manpage: %d commands (groff not found: rendering not checked)" % len(cmds))


def case_docs(ctx):
    """TROUBLESHOOTING.md has a section for every error class of jobs/proto/est_err.h; the
    config shown in DEPLOY.md is the shipped example; relative links of both guides resolve."""
    err_h = open(os.path.join(ctx.src, "jobs/proto/est_err.h")).read()
    # the body of EST_CLASS_MAP: its #define line and the continuation lines after it
    m = re.search(r"#define EST_CLASS_MAP\(XX\)((?:.*\\\n)*.*)", err_h)
    check(m, "est_err.h: EST_CLASS_MAP not found")
    classes = re.findall(r'XX\([A-Z0-9_]+,\s*"([a-z0-9_]+)"', m.group(1))
    check(len(classes) > 10, "est_err.h: cannot read EST_CLASS_MAP (%r)" % classes)
    ts = open(os.path.join(ctx.src, "docs/TROUBLESHOOTING.md")).read()
    sections = set(re.findall(r"^### `([a-z0-9_]+)`", ts, re.M))
    missing = [c for c in classes if c != "none" and c not in sections]
    check(not missing, "docs/TROUBLESHOOTING.md: no section for error class(es) %s" % missing)
    dep = open(os.path.join(ctx.src, "docs/DEPLOY.md")).read()
    shown = [json.loads(b) for b in re.findall(r"```json\n(.*?)```", dep, re.S)]
    example = json.load(open(os.path.join(ctx.src, "deploy/station.example.json")))
    check(example in shown, "docs/DEPLOY.md does not show deploy/station.example.json as it is")
    for name, text in (("DEPLOY.md", dep), ("TROUBLESHOOTING.md", ts)):
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            check(os.path.exists(os.path.join(ctx.src, "docs", target)),
                  "docs/%s links to %s, which does not exist" % (name, target))
    print("docs: %d error classes documented; DEPLOY.md shows the shipped example config"
          % (len(classes) - 1))


CASES = {"install": case_install, "serve": case_serve, "unit": case_unit, "udev": case_udev,
         "deb": case_deb, "manpage": case_manpage, "docs": case_docs}


class Ctx(harness.Ctx):
    def __init__(self, build, src, name, keep):
        super().__init__(build, "deploy-" + name, keep)
        self.src = os.path.abspath(src)
        self.cmake = cache_value(build, "CMAKE_COMMAND") or shutil.which("cmake")
        self.cpack = os.path.join(os.path.dirname(self.cmake), "cpack")


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--build")
    ap.add_argument("--source")
    ap.add_argument("--case")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--timeout", type=float, default=110)
    ap.add_argument("--keep", action="store_true")
    a = ap.parse_args()
    if a.list:
        print(";".join(CASES))
        return 0
    if not a.build or not a.source or a.case not in CASES:
        ap.error("need --build, --source and --case among: " + ", ".join(CASES))

    def on_alarm(signum, frame):
        raise TestFailure("test deadline of %.0f s reached" % a.timeout)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, lambda s, f: on_alarm(s, f))
    signal.alarm(int(a.timeout))
    ctx = Ctx(a.build, a.source, a.case, a.keep)
    status = 1
    try:
        CASES[a.case](ctx)
        status = 0
    except Skip as e:
        print("SKIP %s: %s" % (a.case, e))
        status = SKIP
    except TestFailure as e:
        print("FAIL %s: %s" % (a.case, e))
    except Exception:
        print("ERROR %s (test exception):" % a.case)
        traceback.print_exc()
    finally:
        signal.alarm(0)
        harness.kill_all_children()
        if status == 1:
            print("---- what ran ----")
            for line in ctx.log_lines:
                print(line)
        ctx.cleanup(status == 1)
    return status


if __name__ == "__main__":
    sys.exit(main())
