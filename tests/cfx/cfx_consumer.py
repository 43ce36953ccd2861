#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# cfx_consumer.py — read the CFX messages of espstation stations from an AMQP 1.0 broker with
# Debian's python3-qpid-proton (docs/CFX.md "Consuming"). Prints one JSON envelope per line,
# skips re-sent copies (the same UniqueID), accepts each message after it is printed.
#
#   python3 cfx_consumer.py --url amqp://mes:secret@broker:5672 --address /queue/cfx
#
# tests/cfx/test_cfx.py uses receive() below for every check, so this example stays right.

import argparse
import json
import os
import sys

from proton import Terminus
from proton.reactor import LinkOption
from proton.utils import BlockingConnection


class DurableQueue(LinkOption):
    """The station attaches to its address as a durable terminus (RabbitMQ declares a durable
    queue, whose messages survive a broker restart); the consumer must ask for the same."""

    def apply(self, link):
        link.source.durability = Terminus.DELIVERIES


def receive(url, address, on_message, idle_timeout=2.0, stop=None, connect_timeout=20.0,
            user=None, password=None):
    """Take messages from `address` until `stop()` is true or nothing came for idle_timeout
    seconds. on_message(envelope_dict, raw_bytes, amqp_message) per message; each message is
    accepted after on_message returns (so a crash of the consumer loses nothing). With user and
    password: SASL PLAIN (use amqps:// off a trusted network)."""
    kw = {}
    if user is not None:
        kw = {"user": user, "password": password, "allowed_mechs": "PLAIN",
              "allow_insecure_mechs": url.startswith("amqp://")}
    conn = BlockingConnection(url, timeout=connect_timeout, **kw)
    try:
        rcv = conn.create_receiver(address, credit=100, options=DurableQueue())
        while not (stop and stop()):
            try:
                m = rcv.receive(timeout=idle_timeout)
            except Exception as e:  # proton's Timeout: nothing arrived in idle_timeout
                if type(e).__name__ == "Timeout":
                    return
                raise
            body = m.body
            raw = bytes(body) if isinstance(body, (bytes, memoryview)) else str(body).encode()
            on_message(json.loads(raw.decode("utf-8")), raw, m)
            rcv.accept()
    finally:
        conn.close()


def main():
    ap = argparse.ArgumentParser(description="print CFX messages from an AMQP 1.0 broker")
    ap.add_argument("--url", default="amqp://127.0.0.1:5672")
    ap.add_argument("--address", default="/queue/cfx")
    ap.add_argument("--user", help="SASL PLAIN user (the password from $CFX_PASSWORD)")
    ap.add_argument("--idle", type=float, default=60.0, help="stop after this many idle seconds")
    a = ap.parse_args()
    seen = set()

    def show(env, raw, msg):
        if env["UniqueID"] in seen:  # a re-send after a reconnect: same UniqueID, same body
            return
        seen.add(env["UniqueID"])
        print(json.dumps(env, sort_keys=True), flush=True)

    receive(a.url, a.address, show, idle_timeout=a.idle, user=a.user,
            password=os.environ.get("CFX_PASSWORD") if a.user else None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
