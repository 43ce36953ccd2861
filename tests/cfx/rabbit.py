# SPDX-License-Identifier: MIT
# rabbit.py — a private RabbitMQ for one test: its own directory (mnesia, logs, config, enabled
# plugins with the AMQP 1.0 plugin), a unique node name, AMQP and distribution listeners on free
# loopback ports, no shared epmd (-start_epmd false; an epmd that a helper of the start script
# spawns gets a private port on 127.0.0.1 and is killed by its environment at stop). Started,
# stopped (SIGTERM to its process group, SIGKILL after a bound) and started again on the same
# data (durable queues survive), always cleaned up.
# Must not: touch the system's RabbitMQ (/var/lib/rabbitmq, port 5672) or leave a process behind.

import os
import signal
import socket
import subprocess
import time

RABBIT_BIN = "/usr/lib/rabbitmq/bin/rabbitmq-server"


def available():
    return os.access(RABBIT_BIN, os.X_OK)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Broker:
    def __init__(self, ctx, tag="rmq", users=(), tls=None):
        """users: [(name, password)] (the first becomes rabbit's default user); tls: dict with
        cacertfile, certfile, keyfile (PEM paths) for a TLS listener on self.tls_port."""
        self.ctx = ctx
        self.dir = ctx.path(tag)
        os.makedirs(os.path.join(self.dir, "mnesia"), exist_ok=True)
        os.makedirs(os.path.join(self.dir, "log"), exist_ok=True)
        self.port = free_port()
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node = "estn%d%s@localhost" % (os.getpid(), tag)
        self.url = "amqp://127.0.0.1:%d" % self.port
        with open(os.path.join(self.dir, "enabled_plugins"), "w") as f:
            f.write("[rabbitmq_amqp1_0].\n")
        conf = ["listeners.tcp.1 = 127.0.0.1:%d" % self.port,
                "loopback_users = none",
                "log.console = true", "log.console.level = warning", "log.file.level = info"]
        self.tls_port = None
        if tls:
            self.tls_port = free_port()
            conf += ["listeners.ssl.default = 127.0.0.1:%d" % self.tls_port,
                     "ssl_options.cacertfile = %s" % tls["cacertfile"],
                     "ssl_options.certfile = %s" % tls["certfile"],
                     "ssl_options.keyfile = %s" % tls["keyfile"],
                     "ssl_options.verify = verify_none",
                     "ssl_options.fail_if_no_peer_cert = false"]
        for i, (user, pw) in enumerate(users):
            if i == 0:  # the default user rabbit creates at first boot
                conf += ["default_user = %s" % user, "default_pass = %s" % pw]
        with open(os.path.join(self.dir, "rabbitmq.conf"), "w") as f:
            f.write("\n".join(conf) + "\n")
        open(os.path.join(self.dir, "rabbitmq-env.conf"), "w").close()
        self.proc = None
        self.out_path = os.path.join(self.dir, "server.out")
        self.starts = 0

    def env(self):
        e = dict(os.environ)
        d = self.dir
        e.update({
            "HOME": d,
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": os.path.join(d, "mnesia"),
            "RABBITMQ_LOG_BASE": os.path.join(d, "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": os.path.join(d, "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": os.path.join(d, "rabbitmq"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": os.path.join(d, "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": os.path.join(d, "rabbitmq-env.conf"),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS":
                "-start_epmd false -erl_epmd_port %d -kernel inet_dist_use_interface {127,0,0,1}"
                % self.dist_port,
        })
        return e

    def start(self, timeout=150.0):
        """Start and wait (bounded) until the AMQP 1.0 port takes a connection."""
        self.starts += 1
        self.ctx.log("rabbitmq: start %d of %s on 127.0.0.1:%d" % (self.starts, self.node, self.port))
        out = open(self.out_path, "ab")
        t0 = time.monotonic()
        self.proc = subprocess.Popen([RABBIT_BIN], env=self.env(), stdin=subprocess.DEVNULL,
                                     stdout=out, stderr=subprocess.STDOUT, cwd=self.dir,
                                     start_new_session=True)
        out.close()
        deadline = t0 + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("rabbitmq-server exited (%s) while starting:\n%s"
                                   % (self.proc.returncode, self.tail()))
            if "completed with" in self.tail(4000) and self._port_open():
                self.ctx.log("rabbitmq: ready after %.1f s" % (time.monotonic() - t0))
                return time.monotonic() - t0
            time.sleep(0.25)
        self.stop()
        raise RuntimeError("rabbitmq-server not ready within %.0f s:\n%s" % (timeout, self.tail()))

    def _port_open(self):
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            return True
        except OSError:
            return False

    def tail(self, n=3000):
        try:
            with open(self.out_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-n:]
        except OSError:
            return ""

    def stop(self, timeout=30.0):
        """SIGTERM to the broker's process group (a clean Erlang shutdown), SIGKILL after the
        bound; then any epmd it spawned. Safe to call twice."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        if self.proc is not None:
            try:  # helpers left in the group
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._kill_epmd()
        self.proc = None

    def _kill_epmd(self):
        """epmd daemonizes out of the process group: find ours by its environment."""
        mark = ("RABBITMQ_NODENAME=%s" % self.node).encode()
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/comm" % pid) as f:
                    if f.read().strip() not in ("epmd", "beam.smp", "erl_child_setup"):
                        continue
                with open("/proc/%s/environ" % pid, "rb") as f:
                    if mark not in f.read().split(b"\0"):
                        continue
                os.kill(int(pid), signal.SIGKILL)
            except (OSError, ValueError):
                pass


def make_ca(ctx, name, host="localhost"):
    """A test CA and a server certificate for `host` signed by it (openssl command line, EC
    P-256, valid 2 days). Returns dict(cacertfile, certfile, keyfile)."""
    d = ctx.path(name)
    os.makedirs(d, exist_ok=True)
    p = lambda f: os.path.join(d, f)  # noqa: E731
    with open(p("ext.cnf"), "w") as f:
        f.write("subjectAltName=DNS:%s\n" % host)
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    run = lambda args: subprocess.run(["openssl"] + args, cwd=d, check=True,  # noqa: E731
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)
    run(["req", "-x509"] + ec + ["-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
                                 "-subj", "/CN=%s test CA" % name])
    run(["req"] + ec + ["-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=%s" % host])
    run(["x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
         "-CAcreateserial", "-out", "server.pem", "-days", "2", "-extfile", "ext.cnf"])
    return {"cacertfile": p("ca.pem"), "certfile": p("server.pem"), "keyfile": p("server.key")}
