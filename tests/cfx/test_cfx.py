#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_cfx.py — IPC-CFX over AMQP 1.0 end to end (docs/CFX.md): `espstation serve` with espsim
# boards and a "cfx" section, a private RabbitMQ (rabbit.py) and the python3-qpid-proton consumer
# of docs/CFX.md (cfx_consumer.py). Every message received is validated against
# schema/cfx/cfx-messages.schema.json; its fields are compared with the job rows of the
# station's database (the record is the truth, not the daemon's answers).
#   delivery: 8 slots, 200 jobs with faults on some slots: every job's WorkStarted and
#             WorkCompleted, in order per slot, fields equal to the rows; then kill -9 of the
#             station mid-run 10 times: every recorded job's messages, none for another job.
#   outage:   the broker stopped for 60 s while the slots flash: nothing lost, re-sends only with
#             the same UniqueID, per-device time with the broker down not worse than with it up.
#   security: a world-readable credentials file is refused at start; over TLS with a test CA, an
#             untrusted broker certificate and a wrong password are said and retried while the
#             slots keep flashing; the right ones deliver everything.
# Skips (exit 77) when rabbitmq-server is not installed.
# Must not: use the system's broker, leave a process running, or take expected values from
# the messages themselves.

import datetime
import json
import os
import random
import signal
import sqlite3
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "api"))

import rabbit  # noqa: E402

if __name__ == "__main__" and "--list" not in sys.argv and not rabbit.available():
    print("SKIP: rabbitmq-server is not installed (%s); deploy/install-deps.sh installs the Debian "
          "package rabbitmq-server" % rabbit.RABBIT_BIN)
    sys.exit(77)

import jsonschema  # noqa: E402

import apistation  # noqa: E402  (puts tests/integration on sys.path)
from apistation import SlotSpec, Station  # noqa: E402
import cfx_consumer  # noqa: E402
from harness import TestFailure, check, main, run_espstation  # noqa: E402

SCHEMA = json.load(open(os.path.join(ROOT, "schema", "cfx", "cfx-messages.schema.json")))
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)
ADDRESS = "/queue/cfx-test"
RESULT = {"pass": "Completed", "fail": "Failed", "cancelled": "Aborted", "interrupted": "Aborted"}
JOB_MSGS = ("CFX.Production.WorkStarted", "CFX.Production.WorkCompleted",
            "CFX.Production.Assembly.UnitsPersonalized",
            "CFX.Production.TestAndInspection.UnitsTested", "CFX.ResourcePerformance.FaultOccurred")


class Inbox:
    """Everything the consumer received: in arrival order, de-duplicated by UniqueID (a copy
    must be byte-for-byte the same message)."""

    def __init__(self):
        self.order = []      # envelopes, first arrival of each UniqueID
        self.by_uid = {}
        self.copies = 0
        self.completed = set()  # TransactionIDs of the WorkCompleted received

    def add(self, env, raw, msg):
        errs = sorted(VALIDATOR.iter_errors(env), key=lambda e: list(e.path))
        check(not errs, "CFX: message does not validate against schema/cfx: %s\n%s"
              % ("; ".join("%s: %s" % ("/".join(map(str, e.path)), e.message) for e in errs[:3]),
                 raw[:600]))
        check(msg.id == env["UniqueID"], "CFX: AMQP message-id %r is not the UniqueID %r"
              % (msg.id, env["UniqueID"]))
        uid = env["UniqueID"]
        if uid in self.by_uid:
            check(self.by_uid[uid][1] == raw, "CFX: two different messages with UniqueID %s" % uid)
            self.copies += 1
            return
        self.by_uid[uid] = (env, raw)
        self.order.append(env)
        if env["MessageName"] == "CFX.Production.WorkCompleted":
            self.completed.add(env["MessageBody"]["TransactionID"])

    def drain(self, url, until=None, timeout=60.0, idle=2.0, **kw):
        deadline = time.monotonic() + timeout
        while True:
            cfx_consumer.receive(url, ADDRESS, self.add, idle_timeout=idle,
                                 stop=lambda: (until and until(self)) or time.monotonic() > deadline,
                                 **kw)
            if (until is None or until(self)) or time.monotonic() > deadline:
                return
            time.sleep(0.2)

    def of_job(self, uuid):
        out = []
        for env in self.order:
            b = env["MessageBody"]
            t = b.get("TransactionID") or b.get("TransactionId")
            if t is None and "Fault" in b:
                t = None
            if t == uuid:
                out.append(env)
        return out


def rows(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    con.row_factory = sqlite3.Row
    r = [dict(x) for x in con.execute("SELECT * FROM jobs ORDER BY id")]
    con.close()
    return r


def outbox_depth(db):
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    n = con.execute("SELECT count(*) FROM outbox WHERE sink = 'cfx' AND parked = 0").fetchone()[0]
    con.close()
    return n


def all_completed(db):
    """Until the WorkCompleted of every job finished now has arrived."""
    want = {r["uuid"] for r in rows(db) if r["result"] != "running"}
    return lambda inbox: want <= inbox.completed


def check_jobs(inbox, jobs, slot_names, station_handle):
    """Every finished job: its messages, equal to its row; per slot in start order."""
    known = {j["uuid"] for j in jobs}
    lane = {n: str(i + 1) for i, n in enumerate(slot_names)}
    for env in inbox.order:
        check(env["Source"] == station_handle, "CFX: Source %r, expected the handle %r"
              % (env["Source"], station_handle))
        b = env["MessageBody"]
        t = b.get("TransactionID") or b.get("TransactionId")
        if env["MessageName"] in JOB_MSGS and env["MessageName"] != "CFX.ResourcePerformance.FaultOccurred":
            check(t in known, "CFX: %s for job %s, which the database does not hold"
                  % (env["MessageName"], t))
    pos = {e["UniqueID"]: i for i, e in enumerate(inbox.order)}
    for j in jobs:
        if j["result"] == "running":
            continue
        mine = inbox.of_job(j["uuid"])
        names = [e["MessageName"] for e in mine]
        ws = [e for e in mine if e["MessageName"] == "CFX.Production.WorkStarted"]
        wc = [e for e in mine if e["MessageName"] == "CFX.Production.WorkCompleted"]
        check(len(ws) == 1 and len(wc) == 1,
              "CFX: job %s (%s, %s): %d WorkStarted and %d WorkCompleted (want 1 and 1): %s\n"
              "first messages received: %s"
              % (j["uuid"], j["slot"], j["result"], len(ws), len(wc), names,
                 [(e["MessageName"], e["MessageBody"].get("TransactionID")) for e in inbox.order[:8]]))
        check(pos[ws[0]["UniqueID"]] < pos[wc[0]["UniqueID"]],
              "CFX: job %s: WorkCompleted before WorkStarted" % j["uuid"])
        check(ws[0]["MessageBody"]["Lane"] == lane[j["slot"]],
              "CFX: job %s: Lane %r, slot %s is lane %s" % (j["uuid"], ws[0]["MessageBody"]["Lane"],
                                                           j["slot"], lane[j["slot"]]))
        check(wc[0]["MessageBody"]["Result"] == RESULT[j["result"]],
              "CFX: job %s: Result %r for a %s job" % (j["uuid"], wc[0]["MessageBody"]["Result"],
                                                       j["result"]))
        if j["result"] == "pass" and j["mac"]:
            pu = [e for e in mine if e["MessageName"] == "CFX.Production.Assembly.UnitsPersonalized"]
            check(len(pu) == 1, "CFX: job %s passed with MAC %s: %d UnitsPersonalized"
                  % (j["uuid"], j["mac"], len(pu)))
            unit = pu[0]["MessageBody"]["PersonalizedUnits"][0]
            check(unit["UnitIdentifier"] == j["mac"] and
                  {"Name": "MAC Address", "Value": j["mac"]} in unit["Characteristics"],
                  "CFX: job %s: UnitsPersonalized %r, the row's MAC is %s" % (j["uuid"], unit, j["mac"]))
        if j["result"] == "fail":
            faults = [e for e in inbox.order if e["MessageName"] == "CFX.ResourcePerformance.FaultOccurred"
                      and e["MessageBody"]["Fault"]["Stage"] == j["slot"]
                      and pos[ws[0]["UniqueID"]] < pos[e["UniqueID"]] < pos[wc[0]["UniqueID"]]]
            check(len(faults) == 1 and faults[0]["MessageBody"]["Fault"]["FaultCode"] == j["error_class"],
                  "CFX: failed job %s (%s): FaultOccurred %r" % (j["uuid"], j["error_class"],
                                                                 [f["MessageBody"] for f in faults]))
    # per slot: the jobs' WorkStarted in the order the rows were inserted, each job's messages
    # between its WorkStarted and the next job's
    for slot in slot_names:
        mine = [j for j in jobs if j["slot"] == slot and j["result"] != "running"]
        starts = [e for e in inbox.order if e["MessageName"] == "CFX.Production.WorkStarted"
                  and e["MessageBody"]["Lane"] == lane[slot]]
        got = [e["MessageBody"]["TransactionID"] for e in starts]
        want = [j["uuid"] for j in mine]
        check(got == want, "CFX: slot %s: WorkStarted order %s, rows %s" % (slot, got[:5], want[:5]))
        for a, b in zip(mine, mine[1:]):
            wc = [e for e in inbox.of_job(a["uuid"]) if e["MessageName"] == "CFX.Production.WorkCompleted"]
            ws = [e for e in inbox.of_job(b["uuid"]) if e["MessageName"] == "CFX.Production.WorkStarted"]
            check(pos[wc[0]["UniqueID"]] < pos[ws[0]["UniqueID"]],
                  "CFX: slot %s: job %s started before job %s completed" % (slot, b["uuid"], a["uuid"]))


def make_station(ctx, broker, n=8, fault_slots=(), realtime=False, cfx_extra=None):
    rng = random.Random(20261207)
    faults = ["bitflip", "nak:FLASH_BEGIN:0x05", "drop-replies"]
    slots = []
    for i in range(n):
        f = [rng.choice(faults)] if i in fault_slots else []
        slots.append(SlotSpec("S%d" % (i + 1), chip=["esp32c3", "esp32", "esp32s3"][i % 3],
                              faults=f, realtime=realtime))
    cfx = {"broker": broker.url, "address": ADDRESS, "heartbeat_s": 2, "handle": "estn.test.cfx1"}
    cfx.update(cfx_extra or {})
    st = Station(ctx, slots, extra={"cfx": cfx}, probe_interval_ms=300)
    return st, slots


def run_jobs(st, slots, total, deadline_s, stop=None):
    """Start jobs (POST /slots/{name}/start as operator) on whichever slot is free until `total`
    were accepted; returns how many."""
    c = st.client("operator")
    started = 0
    deadline = time.monotonic() + deadline_s
    while started < total and time.monotonic() < deadline and not (stop and stop()):
        for s in slots:
            if started >= total:
                break
            r = c.post("/api/v1/slots/%s/start" % s.name, {})
            if r.status == 202:
                started += 1
        time.sleep(0.02)
    return started


def wait_idle(st, timeout):
    st.wait(lambda: all(r["result"] != "running" for r in rows(st.db)), timeout, "every job finished")


@apistation.with_daemon_log
def case_delivery(ctx):
    broker = rabbit.Broker(ctx)
    broker.start()
    try:
        st, slots = make_station(ctx, broker, fault_slots=(5, 7))
        names = [s.name for s in slots]
        st.start()
        n = run_jobs(st, slots, 200, 120)
        check(n == 200, "HOST: only %d of 200 jobs could be started in 120 s" % n)
        wait_idle(st, 60)
        inbox = Inbox()
        inbox.drain(broker.url, until=all_completed(st.db), timeout=60)
        jobs = rows(st.db)
        check(len(jobs) == 200, "HOST: %d job rows, 200 expected" % len(jobs))
        check(any(j["result"] == "fail" for j in jobs) and any(j["result"] == "pass" for j in jobs),
              "TEST: the faults gave no failures (or nothing passed)")
        check_jobs(inbox, jobs, names, "estn.test.cfx1")
        st.wait(lambda: outbox_depth(st.db) == 0, 10, "an empty outbox")
        ctx.log("delivery: %d messages, %d re-sent copies" % (len(inbox.order), inbox.copies))
        # the endpoint's state as the station reports it: GET /api/v1/station's "cfx" member
        # (the client validates it against openapi.json) and the espstation_cfx_* metrics
        viewer = st.client("viewer")

        def cfx_state():
            return viewer.get("/api/v1/station").json.get("cfx") or {}
        st.wait(lambda: cfx_state().get("outbox") == 0, 10, "the station reporting an empty outbox")
        sc = cfx_state()
        check(sc.get("enabled") is True and sc.get("state") == "connected" and sc.get("error") is None
              and sc.get("alarm") is False, "API: the station's cfx member %r" % sc)
        mt = viewer.get("/metrics").text
        check("espstation_cfx_connected 1\n" in mt and "espstation_cfx_outbox_messages 0\n" in mt,
              "API: /metrics lacks the CFX lines: %r" % [l for l in mt.splitlines() if "cfx" in l])
        # kill -9 mid-run, 10 times: a job is either recorded with all its messages, or unknown
        rng = random.Random(7)
        for k in range(10):
            run_jobs(st, slots, len(slots), 5)
            time.sleep(rng.uniform(0.0, 0.4))
            st.kill9()
            st.start(tag="after-kill%d" % (k + 1))
        wait_idle(st, 30)
        st.daemon.wait_stderr(r"CFX: connected to", 30, "the station connected to the broker")
        st.stop()  # SIGTERM while connected: EndpointShuttingDown
        st.start(tag="final")
        jobs = rows(st.db)
        inbox.drain(broker.url, until=all_completed(st.db), timeout=60)
        check_jobs(inbox, jobs, names, "estn.test.cfx1")
        # the endpoint messages: one EndpointConnected per connection, Heartbeats at heartbeat_s,
        # EndpointShuttingDown from the SIGTERM stop above (kill -9 sends none); it follows the
        # last WorkCompleted in the queue
        inbox.drain(broker.url, until=lambda ib: any(e["MessageName"] == "CFX.EndpointShuttingDown"
                                                     for e in ib.order), timeout=20)
        kinds = [e["MessageName"] for e in inbox.order]
        hb = [e for e in inbox.order if e["MessageName"] == "CFX.Heartbeat"]
        check(kinds.count("CFX.EndpointConnected") >= 2 and hb and
              all(e["MessageBody"]["HeartbeatFrequency"] == "00:00:02" for e in hb),
              "CFX: %d EndpointConnected, %d Heartbeat (%s)" % (kinds.count("CFX.EndpointConnected"),
                                                              len(hb), hb[:1]))
        ra = [e["MessageBody"] for e in inbox.order if e["MessageName"] == "CFX.Production.RecipeActivated"]
        # 8 per daemon start (those of the last start may still be on their way)
        check(8 * (st.starts - 1) <= len(ra) <= 8 * st.starts and
              all(b["RecipeName"] == "api-quick" for b in ra) and
              sorted({b["Lane"] for b in ra}) == list(range(1, 9)),
              "CFX: RecipeActivated: %d for %d starts of 8 slots: %s" % (len(ra), st.starts, ra[:2]))
        check(kinds.count("CFX.EndpointShuttingDown") == 1,
              "CFX: %d EndpointShuttingDown after one SIGTERM stop" % kinds.count("CFX.EndpointShuttingDown"))
        interrupted = sum(1 for j in jobs if j["result"] == "interrupted")
        ctx.log("kill9: %d jobs, %d interrupted, %d messages" % (len(jobs), interrupted, len(inbox.order)))
        print("delivery: %d jobs (%d interrupted by kill -9), %d messages, %d re-sent copies"
              % (len(jobs), interrupted, len(inbox.order), inbox.copies))
    finally:
        broker.stop()


def finished_between(jobs, t0, t1):
    """Passed jobs that started and finished inside [t0, t1] (ISO text, unix seconds given)."""
    def iso(t):
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%03dZ" % int((t % 1) * 1000)
    a, b = iso(t0), iso(t1)
    return [j for j in jobs if j["result"] == "pass" and j["started_at"] >= a
            and (j["finished_at"] or "~") <= b]


def job_ms(j):
    """A job's time on the device: duration_ms, else finished_at - started_at."""
    if j.get("duration_ms") is not None:
        return j["duration_ms"]
    def t(iso):
        return datetime.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
            tzinfo=datetime.timezone.utc).timestamp()
    return int(round((t(j["finished_at"]) - t(j["started_at"])) * 1000))


def median(v):
    v = sorted(v)
    return v[len(v) // 2] if v else None


@apistation.with_daemon_log
def case_outage(ctx):
    broker = rabbit.Broker(ctx)
    broker.start()
    try:
        st, slots = make_station(ctx, broker, n=4, fault_slots=(3,), realtime=True,
                                 cfx_extra={"reconnect_max_s": 3})
        names = [s.name for s in slots]
        st.start()
        t_up0 = time.time()
        run_jobs(st, slots, 10 ** 6, 10)
        wait_idle(st, 30)
        t_up1 = time.time()
        broker.stop()  # SIGTERM: the broker goes away for 60 s while the slots keep flashing
        t_down0 = time.time()
        st.daemon.wait_stderr(r"CFX: amqp://127\.0\.0\.1:%d: " % broker.port, 20,
                              "the station saying the broker is gone")
        run_jobs(st, slots, 10 ** 6, 60)
        wait_idle(st, 30)
        t_down1 = time.time()
        down_rows = rows(st.db)
        check(outbox_depth(st.db) > 0, "HOST: nothing waits in the outbox while the broker is down")
        broker.start()
        inbox = Inbox()
        inbox.drain(broker.url, until=all_completed(st.db), timeout=90)
        jobs = rows(st.db)
        check_jobs(inbox, jobs, names, "estn.test.cfx1")
        st.wait(lambda: outbox_depth(st.db) == 0, 20, "an empty outbox after the broker came back")
        up = [job_ms(j) for j in finished_between(down_rows, t_up0, t_up1)]
        down = [job_ms(j) for j in finished_between(down_rows, t_down0, t_down1)]
        check(len(up) >= 4 and len(down) >= 8, "TEST: too few jobs to compare (%d up, %d down)"
              % (len(up), len(down)))
        mu, md = median(up), median(down)
        print("outage: %d jobs; per-device median %d ms with the broker up (%d jobs), %d ms while it "
              "was down (%d jobs); %d messages, %d re-sent copies"
              % (len(jobs), mu, len(up), md, len(down), len(inbox.order), inbox.copies))
        check(md <= mu * 1.3 + 250, "HOST: flashing slowed down while the broker was down: median %d "
              "ms per device, %d ms with the broker up" % (md, mu))
    finally:
        broker.stop()


def restart_with(st, **cfx):
    """Stop the daemon, change its config's cfx section, start it again."""
    if st.daemon is not None and st.daemon.alive():
        st.stop()
    st.cfg["cfx"].update(cfx)
    with open(st.config_path, "w") as f:
        json.dump(st.cfg, f, indent=2)
    return st.start()


@apistation.with_daemon_log
def case_security(ctx):
    tls = rabbit.make_ca(ctx, "ca-good")
    other = rabbit.make_ca(ctx, "ca-other")
    broker = rabbit.Broker(ctx, users=[("mes", "right-pw")], tls=tls)
    broker.start()
    try:
        cred = ctx.path("cfx-credentials")
        with open(cred, "w") as f:
            f.write("mes:wrong-pw\n")
        os.chmod(cred, 0o644)
        st, slots = make_station(ctx, broker, n=2, cfx_extra={
            "credentials_file": "cfx-credentials", "reconnect_max_s": 2,
            "broker": "amqps://localhost:%d" % broker.tls_port,
            "tls": {"ca_file": other["cacertfile"]}})
        # a credentials file others may read: refused at start, with what to do
        r = run_espstation(ctx, ["serve", "--config", st.config_path], timeout=30)
        check(r.status == 2 and "chmod 600" in r.err and "credentials_file" in r.err,
              "HOST: a world-readable credentials file: status %s, stderr %r" % (r.status, r.err[-500:]))
        os.chmod(cred, 0o600)
        # a CA that did not sign the broker's certificate: refused, said, flashing goes on
        st.start()
        st.daemon.wait_stderr(r"CFX: amqps://localhost:%d: .*certificate verify failed" % broker.tls_port,
                              30, "the station saying the broker's certificate is not trusted")
        n = run_jobs(st, slots, 4, 30)
        wait_idle(st, 30)
        check(n == 4 and all(j["result"] == "pass" for j in rows(st.db)),
              "HOST: jobs do not pass while the broker cannot be reached")
        # the right CA, the wrong password
        restart_with(st, tls={"ca_file": tls["cacertfile"]})
        st.daemon.wait_stderr(r"CFX: amqps://localhost:%d: .*Authentication failed" % broker.tls_port,
                              30, "the station saying the broker refused its credentials")
        run_jobs(st, slots, 2, 30)
        wait_idle(st, 30)
        check(outbox_depth(st.db) > 0, "HOST: the refused station's messages are not in the outbox")
        # the right password: connected over TLS, everything delivered
        with open(cred, "w") as f:
            f.write("mes:right-pw\n")
        restart_with(st)
        st.daemon.wait_stderr(r"CFX: connected to amqps://localhost:%d" % broker.tls_port, 30,
                              "the station connecting over TLS with the right password")
        inbox = Inbox()
        inbox.drain(broker.url, until=all_completed(st.db), timeout=60, user="mes",
                    password="right-pw")
        check_jobs(inbox, rows(st.db), [s.name for s in slots], "estn.test.cfx1")
        st.wait(lambda: outbox_depth(st.db) == 0, 20, "an empty outbox")
    finally:
        broker.stop()


if __name__ == "__main__":
    sys.exit(main({"delivery": case_delivery, "outage": case_outage, "security": case_security},
                  "IPC-CFX over AMQP 1.0 against a private RabbitMQ"))
