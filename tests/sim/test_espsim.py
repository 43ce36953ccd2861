#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Self-tests of the espsim device simulator with a small independent client (stdlib only).
# The expected values come from the protocol reference and esptool's rules, written again here
# (not imported from the simulator). Loopback only; every wait is bounded.
import argparse
import hashlib
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import tty
import zlib

ESPSIM = None

SYNC_DATA = b"\x07\x07\x12\x20" + b"\x55" * 32


class Fail(Exception):
    pass


def check(cond, msg):
    if not cond:
        raise Fail(msg)


# --------------------------------------------------------------------------------------------
# simulator process


class Sim:
    def __init__(self, *args):
        self.proc = subprocess.Popen([ESPSIM, *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.events = []
        self.lock = threading.Lock()
        line = self._readline(5.0)
        if line is None:
            raise Fail("no ready line from espsim (stderr: %r)" % self._stderr())
        self.ready = json.loads(line)
        check(self.ready.get("event") == "ready", "first line is not ready: %r" % line)
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def _stderr(self):
        try:
            self.proc.kill()
            return self.proc.stderr.read().decode(errors="replace")
        except Exception:
            return ""

    def _readline(self, timeout):
        buf = b""
        end = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while time.monotonic() < end:
            r, _, _ = select.select([fd], [], [], max(0.0, end - time.monotonic()))
            if not r:
                break
            c = os.read(fd, 1)
            if not c:
                return None
            if c == b"\n":
                return buf.decode()
            buf += c
        return None

    def _pump(self):
        for line in self.proc.stdout:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self.lock:
                self.events.append(ev)

    def wait_event(self, name, timeout=2.0, pred=None):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            with self.lock:
                for ev in self.events:
                    if ev.get("event") == name and (pred is None or pred(ev)):
                        return ev
            time.sleep(0.01)
        raise Fail("no %s event within %.1fs (got %s)" % (name, timeout,
                                                          [e.get("event") for e in self.events]))

    def stop(self, sig=signal.SIGTERM):
        """Stops the simulator; fails on a non-zero exit or a sanitizer report."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.thread.join(2)
        err = self.proc.stderr.read().decode(errors="replace")
        check("Sanitizer" not in err and "runtime error" not in err, "sanitizer: %s" % err)
        check(self.proc.returncode == 0, "espsim exit status %r: %s" % (self.proc.returncode, err))
        return self.proc.returncode


# --------------------------------------------------------------------------------------------
# links


class PtyLink:
    def __init__(self, path):
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(self.fd)
        attrs = termios.tcgetattr(self.fd)
        attrs[4] = attrs[5] = termios.B115200
        termios.tcsetattr(self.fd, termios.TCSANOW, attrs)

    def write(self, b):
        os.write(self.fd, b)

    def set_baud(self, baud):
        attrs = termios.tcgetattr(self.fd)
        attrs[4] = attrs[5] = getattr(termios, "B%d" % baud)
        termios.tcsetattr(self.fd, termios.TCSADRAIN, attrs)

    def read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        return os.read(self.fd, 4096) if r else b""

    def close(self):
        os.close(self.fd)


class TcpLink:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=2)

    def write(self, b):
        self.s.sendall(b)

    def read(self, timeout):
        r, _, _ = select.select([self.s], [], [], timeout)
        if not r:
            return b""
        return self.s.recv(4096)

    def close(self):
        self.s.close()


IAC, SB, SE, WILL, WONT, DO, DONT = 255, 250, 240, 251, 252, 253, 254
COMPORT = 44


class Rfc2217Link:
    """Minimal RFC 2217 client behaving like pyserial's (requests, waits for answers)."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=2)
        self.data = bytearray()
        self.replies = []  # (code, value)
        self.opts = []
        self.state = 0
        self.sb = bytearray()
        self.verb = 0
        self.s.sendall(bytes([IAC, DO, 1, IAC, WILL, 3, IAC, DO, 3, IAC, WILL, COMPORT]))
        self._wait(lambda: (DO, COMPORT) in self.opts, "DO COM-PORT-OPTION")
        self.set_baud(115200)
        for code, val in ((2, 8), (3, 1), (4, 1)):  # datasize 8, parity none, stopsize 1
            self._sb(code, bytes([val]))
            self._wait_reply(code + 100, bytes([val]))

    def _sb(self, code, val):
        v = val.replace(b"\xff", b"\xff\xff")
        self.s.sendall(bytes([IAC, SB, COMPORT, code]) + v + bytes([IAC, SE]))

    def set_baud(self, baud):
        v = struct.pack(">I", baud)
        self._sb(1, v)
        self._wait_reply(101, v)

    def set_control(self, value):
        self._sb(5, bytes([value]))
        self._wait_reply(105, bytes([value]))

    def dtr(self, on):
        self.set_control(8 if on else 9)

    def rts(self, on):
        self.set_control(11 if on else 12)

    def _wait_reply(self, code, val):
        self._wait(lambda: (code, bytes(val)) in self.replies, "reply %d %r" % (code, val))
        self.replies.remove((code, bytes(val)))

    def _wait(self, cond, what, timeout=2.0):
        end = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > end:
                raise Fail("RFC 2217: no %s" % what)
            self._pump(0.05)

    def _pump(self, timeout):
        r, _, _ = select.select([self.s], [], [], timeout)
        if not r:
            return
        chunk = self.s.recv(4096)
        if not chunk:
            raise Fail("RFC 2217 server closed the connection")
        for b in chunk:
            if self.state == 0:
                if b == IAC:
                    self.state = 1
                else:
                    self.data.append(b)
            elif self.state == 1:
                if b == IAC:
                    self.data.append(b)
                    self.state = 0
                elif b in (WILL, WONT, DO, DONT):
                    self.verb = b
                    self.state = 2
                elif b == SB:
                    self.sb = bytearray()
                    self.state = 3
                else:
                    self.state = 0
            elif self.state == 2:
                self.opts.append((self.verb, b))
                self.state = 0
            elif self.state == 3:
                if b == IAC:
                    self.state = 4
                else:
                    self.sb.append(b)
            elif self.state == 4:
                if b == IAC:
                    self.sb.append(b)
                    self.state = 3
                else:
                    if len(self.sb) >= 2 and self.sb[0] == COMPORT:
                        self.replies.append((self.sb[1], bytes(self.sb[2:])))
                    self.state = 0

    def write(self, b):
        self.s.sendall(b.replace(b"\xff", b"\xff\xff"))

    def read(self, timeout):
        if not self.data:
            self._pump(timeout)
        out = bytes(self.data)
        self.data.clear()
        return out

    def close(self):
        self.s.close()


def open_link(sim):
    port = sim.ready["port"]
    if port.startswith("socket://"):
        return TcpLink(int(port.rsplit(":", 1)[1]))
    if port.startswith("rfc2217://"):
        return Rfc2217Link(int(port.rsplit(":", 1)[1]))
    return PtyLink(port)


# --------------------------------------------------------------------------------------------
# protocol client


def slip(pkt):
    return b"\xc0" + pkt.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


class Client:
    def __init__(self, link, status_len=4):
        self.link = link
        self.buf = bytearray()
        self.frames = []
        self.status_len = status_len
        self.garbage = bytearray()
        self.in_frame = False
        self.cur = bytearray()
        self.esc = False

    def _feed(self, data):
        for b in data:
            if b == 0xC0:
                # like esptool's reader: END closes a frame; bytes after it are outside one
                if self.in_frame and self.cur:
                    self.frames.append(bytes(self.cur))
                    self.in_frame = False
                else:
                    self.in_frame = True
                self.cur = bytearray()
                continue
            if not self.in_frame:
                self.garbage.append(b)
                continue
            if self.esc:
                self.cur.append({0xDC: 0xC0, 0xDD: 0xDB}.get(b, b))
                self.esc = False
            elif b == 0xDB:
                self.esc = True
            else:
                self.cur.append(b)

    def read_frame(self, timeout):
        end = time.monotonic() + timeout
        while not self.frames:
            left = end - time.monotonic()
            if left <= 0:
                return None
            self._feed(self.link.read(min(left, 0.05)))
        return self.frames.pop(0)

    def drain(self, timeout=0.15):
        frames = []
        while True:
            f = self.read_frame(timeout)
            if f is None:
                return frames
            frames.append(f)

    def send(self, op, data=b"", chk=0):
        self.link.write(slip(struct.pack("<BBHI", 0, op, len(data), chk) + data))

    def command(self, op, data=b"", chk=0, timeout=2.0):
        """Returns (value, data) of the first response with the same opcode."""
        self.send(op, data, chk)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            f = self.read_frame(end - time.monotonic())
            if f is None:
                break
            if len(f) < 8 or f[0] != 1:
                continue
            if f[1] == op:
                return struct.unpack("<I", f[4:8])[0], f[8:]
        raise Fail("no response to op 0x%02x" % op)

    def check_ok(self, op, data=b"", chk=0, out_len=0, timeout=2.0):
        val, d = self.command(op, data, chk, timeout)
        st = d[out_len:out_len + 2]
        check(len(d) == out_len + self.status_len,
              "op 0x%02x: response data %d bytes, want %d" % (op, len(d), out_len + self.status_len))
        check(st == b"\x00\x00", "op 0x%02x failed: status %s" % (op, st.hex()))
        return val, d[:out_len]

    def status(self, op, data=b"", chk=0, out_len=0):
        _, d = self.command(op, data, chk)
        return d[out_len], d[out_len + 1]

    def sync(self, tries=5):
        for _ in range(tries):
            self.send(0x08, SYNC_DATA)
            frames = self.drain(0.2)
            syncs = [f for f in frames if len(f) >= 8 and f[0] == 1 and f[1] == 0x08]
            if syncs:
                return syncs
        raise Fail("no SYNC reply")

    def read_reg(self, addr):
        return self.check_ok(0x0A, struct.pack("<I", addr))[0]

    def write_reg(self, addr, val, mask=0xFFFFFFFF):
        self.check_ok(0x09, struct.pack("<IIII", addr, val, mask, 0))


def data_pkt(payload, seq):
    chk = 0xEF
    for b in payload:
        chk ^= b
    return struct.pack("<IIII", len(payload), seq, 0, 0) + payload, chk


# Chip facts restated from the protocol reference (not from the simulator's sources).
CHIPS = {
    "esp8266": dict(magic=0xFFF0C101, status=2),
    "esp32": dict(magic=0x00F01D83, status=4, spi=0x3FF42000, old_spi=True, mac0=0x3FF5A004),
    "esp32s2": dict(magic=0x000007C6, status=4, spi=0x3F402000, mac0=0x3F41A044, secinfo=12),
    "esp32s3": dict(magic=0x00000009, status=4, spi=0x60002000, mac0=0x60007044, chip_id=9),
    "esp32c2": dict(magic=0x7C41A06F, status=4, spi=0x60002000, mac0=0x60008840, chip_id=12),
    "esp32c3": dict(magic=0x1B31506F, status=4, spi=0x60002000, mac0=0x60008844, chip_id=5),
    "esp32c6": dict(magic=0x2CE0806F, status=4, spi=0x60003000, mac0=0x600B0844, chip_id=13),
    "esp32h2": dict(magic=0xD7B73E80, status=4, spi=0x60003000, mac0=0x600B0844, chip_id=16),
}


def read_mac(c, chip):
    if chip == "esp8266":
        mac0, mac1, mac3 = c.read_reg(0x3FF00050), c.read_reg(0x3FF00054), c.read_reg(0x3FF0005C)
        if mac3 != 0:
            oui = ((mac3 >> 16) & 0xFF, (mac3 >> 8) & 0xFF, mac3 & 0xFF)
        elif ((mac1 >> 16) & 0xFF) == 0:
            oui = (0x18, 0xFE, 0x34)
        elif ((mac1 >> 16) & 0xFF) == 1:
            oui = (0xAC, 0xD0, 0x74)
        else:
            raise Fail("unknown ESP8266 OUI")
        return bytes(oui) + bytes([(mac1 >> 8) & 0xFF, mac1 & 0xFF, (mac0 >> 24) & 0xFF])
    a = CHIPS[chip]["mac0"]
    mac0, mac1 = c.read_reg(a), c.read_reg(a + 4)
    return struct.pack(">I", mac1)[2:4] + struct.pack(">I", mac0)


def spiflash_command(c, chip, opcode, read_bits=0, addr=None, addr_len=0, dummy_len=0):
    """esptool's run_spiflash_command register sequence (docs/SIMULATOR.md "ROM loader")."""
    info = CHIPS[chip]
    base = info.get("spi", 0x60000200)
    if chip == "esp8266":
        USR, USR1, USR2, W0, MOSI, MISO = 0x1C, 0x20, 0x24, 0x40, None, None
    elif info.get("old_spi"):
        USR, USR1, USR2, W0, MOSI, MISO = 0x1C, 0x20, 0x24, 0x80, 0x28, 0x2C
    else:
        USR, USR1, USR2, W0, MOSI, MISO = 0x18, 0x1C, 0x20, 0x58, 0x24, 0x28
    old_user, old_user2 = c.read_reg(base + USR), c.read_reg(base + USR2)
    user1 = 0
    if addr_len:
        user1 |= (addr_len - 1) << 26
    if dummy_len:
        user1 |= dummy_len - 1
    if chip == "esp8266":
        if read_bits:
            user1 |= (read_bits - 1) << 8
        c.write_reg(base + USR1, user1)
    else:
        if read_bits:
            c.write_reg(base + MISO, read_bits - 1)
        if addr_len or dummy_len:
            c.write_reg(base + USR1, user1)
    flags = 1 << 31
    if read_bits:
        flags |= 1 << 28
    if addr_len:
        flags |= 1 << 30
    if dummy_len:
        flags |= 1 << 29
    c.write_reg(base + USR, flags)
    c.write_reg(base + USR2, (7 << 28) | opcode)
    if addr_len:
        a = addr << (32 - addr_len) if chip in ("esp8266", "esp32") else addr
        c.write_reg(base + 0x04, a & 0xFFFFFFFF)
    c.write_reg(base + W0, 0)
    c.write_reg(base, 1 << 18)
    for _ in range(10):
        if c.read_reg(base) & (1 << 18) == 0:
            break
    else:
        raise Fail("SPI command did not complete")
    r = c.read_reg(base + W0)
    c.write_reg(base + USR, old_user)
    c.write_reg(base + USR2, old_user2)
    return r


def connect(sim, status_len=4):
    link = open_link(sim)
    c = Client(link, status_len)
    c.sync()
    c.drain(0.05)
    return c


# --------------------------------------------------------------------------------------------
# tests


def check_ready(ready, chip="esp32"):
    check(ready["chip"] == chip, "ready chip %r" % ready["chip"])
    check(re.fullmatch(r"([0-9a-f]{2}:){5}[0-9a-f]{2}", ready["mac"]), "mac %r" % ready["mac"])
    check(re.fullmatch(r"[0-9a-f]{6}", ready["flash_id"]), "flash_id %r" % ready["flash_id"])


def t_ready_pty():
    sim = Sim("--chip", "esp32", "--pty")
    try:
        r = sim.ready
        check_ready(r)
        check(r["port"].startswith("/dev/pts/"), "pty port %r" % r["port"])
        check(r["flash_id"] == "ef4016" and r["flash_size"] == 4 * 1024 * 1024, "flash %r" % r)
        c = connect(sim)
        c.link.close()
        # the host may close and reopen the slave: the device keeps working
        c = connect(sim)
        check(c.read_reg(0x40001000) == 0x00F01D83, "magic after reopen")
        c.link.close()
    finally:
        check(sim.stop() == 0, "exit status")
        sim.wait_event("exit")


def t_ready_tcp():
    sim = Sim("--chip", "esp32s3", "--tcp", "0", "--mac", "AA:BB:CC:00:11:22",
              "--flash-jedec", "0xC84018")
    try:
        r = sim.ready
        check_ready(r, "esp32s3")
        check(re.fullmatch(r"socket://127\.0\.0\.1:\d+", r["port"]), "tcp port %r" % r["port"])
        check(r["mac"] == "aa:bb:cc:00:11:22", "mac %r" % r["mac"])
        check(r["flash_id"] == "c84018" and r["flash_size"] == 16 * 1024 * 1024, "flash %r" % r)
        c = connect(sim)
        # a second concurrent client is closed at once
        port = int(r["port"].rsplit(":", 1)[1])
        s2 = socket.create_connection(("127.0.0.1", port), timeout=2)
        s2.settimeout(2)
        check(s2.recv(10) == b"", "second client should be closed")
        s2.close()
        c.write_reg(0x60002000 + 0x58, 0x12345678)  # state persists across connections
        c.link.close()
        sim.wait_event("disconnect")
        c = connect(sim)
        check(c.read_reg(0x60002000 + 0x58) == 0x12345678, "state across connections")
        c.link.close()
    finally:
        sim.stop()


def t_ready_rfc2217():
    sim = Sim("--chip", "esp32c3", "--rfc2217", "0")
    try:
        r = sim.ready
        check_ready(r, "esp32c3")
        check(re.fullmatch(r"rfc2217://127\.0\.0\.1:\d+", r["port"]), "rfc port %r" % r["port"])
        c = connect(sim)  # plain client that never touches the lines: download mode
        check(c.read_reg(0x40001000) == 0x1B31506F, "magic over rfc2217")
        c.link.close()
    finally:
        sim.stop()


def t_sync():
    for chip in ("esp32", "esp8266"):
        sim = Sim("--chip", chip, "--tcp", "0")
        try:
            c = Client(open_link(sim), CHIPS[chip]["status"])
            c.send(0x08, SYNC_DATA)
            frames = c.drain(0.3)
            syncs = [f for f in frames if f[1] == 0x08]
            check(len(syncs) == 8, "%s: %d SYNC replies, want 8" % (chip, len(syncs)))
            for f in syncs:
                val = struct.unpack("<I", f[4:8])[0]
                check(val != 0, "ROM SYNC value must be non-zero")
                check(len(f) == 8 + CHIPS[chip]["status"], "%s sync frame len %d" % (chip, len(f)))
                check(f[8:10] == b"\x00\x00", "sync status")
            # a malformed SYNC is not answered
            c.send(0x08, b"\x07\x07\x12\x20" + b"\x54" * 32)
            check(c.drain(0.2) == [], "malformed SYNC answered")
            sim.wait_event("sync")
        finally:
            sim.stop()


def t_magic():
    for chip, info in CHIPS.items():
        sim = Sim("--chip", chip, "--tcp", "0")
        try:
            c = connect(sim, info["status"])
            m = c.read_reg(0x40001000)
            check(m == info["magic"], "%s magic 0x%08x" % (chip, m))
        finally:
            sim.stop()


def t_mac_all():
    cases = [(chip, "24:0a:c4:12:34:56") for chip in CHIPS if chip != "esp8266"]
    cases += [("esp8266", "18:fe:34:a1:b2:c3"), ("esp8266", "ac:d0:74:01:02:03"),
              ("esp8266", "5c:cf:7f:de:ad:01")]
    for chip, mac in cases:
        sim = Sim("--chip", chip, "--tcp", "0", "--mac", mac)
        try:
            c = connect(sim, CHIPS[chip]["status"])
            got = read_mac(c, chip).hex(":")
            check(got == mac, "%s: MAC %s, want %s" % (chip, got, mac))
            if chip in ("esp32c6", "esp32h2"):
                mac1 = c.read_reg(CHIPS[chip]["mac0"] + 4)
                check(mac1 >> 16 == 0xFFFE, "%s MAC_EXT" % chip)
        finally:
            sim.stop()
    # seed-derived default MACs are stable and reported
    a = Sim("--chip", "esp32", "--tcp", "0", "--seed", "42")
    b = Sim("--chip", "esp32", "--tcp", "0", "--seed", "42")
    try:
        check(a.ready["mac"] == b.ready["mac"], "same seed, same MAC")
        c = connect(a)
        check(read_mac(c, "esp32").hex(":") == a.ready["mac"], "default MAC in eFuse")
    finally:
        a.stop()
        b.stop()


def t_jedec():
    for chip, jedec in (("esp32", 0xEF4016), ("esp32s3", 0xC84017), ("esp32c3", 0x204016),
                        ("esp8266", 0xEF4015)):
        sim = Sim("--chip", chip, "--tcp", "0", "--flash-jedec", "0x%06x" % jedec)
        try:
            st = CHIPS[chip]["status"]
            c = connect(sim, st)
            before = spiflash_command(c, chip, 0x9F, read_bits=24) & 0xFFFFFF
            check(before == 0xFFFFFF, "%s: JEDEC before attach 0x%06x" % (chip, before))
            if chip == "esp8266":
                c.check_ok(0x02, struct.pack("<IIII", 0, 0, 0x400, 0))  # FLASH_BEGIN(0,0)
            else:
                c.check_ok(0x0D, struct.pack("<IBBBB", 0, 0, 0, 0, 0))
            fid = spiflash_command(c, chip, 0x9F, read_bits=24) & 0xFFFFFF
            want = ((jedec >> 16) & 0xFF) | (jedec & 0xFF00) | ((jedec & 0xFF) << 16)
            check(fid == want, "%s: JEDEC W0 0x%06x, want 0x%06x" % (chip, fid, want))
            if chip != "esp8266":
                sfdp = spiflash_command(c, chip, 0x5A, read_bits=32, addr=0, addr_len=24,
                                        dummy_len=8)
                check(sfdp == 0x50444653, "%s: SFDP signature 0x%08x" % (chip, sfdp))
                st1 = spiflash_command(c, chip, 0x05, read_bits=8) & 0xFF
                check(st1 == 0, "status register 0x%02x" % st1)
        finally:
            sim.stop()


def flash_write(c, chip, offset, image, compress=False):
    blk = 0x400
    enc = b"\x00\x00\x00\x00" if chip not in ("esp32", "esp8266") else b""
    if compress:
        z = zlib.compress(image, 9)
        nblk = (len(z) + blk - 1) // blk
        usize = (len(image) + 0x3FF) // 0x400 * 0x400
        c.check_ok(0x10, struct.pack("<IIII", usize, nblk, blk, offset) + enc, timeout=5)
        for i in range(nblk):
            pkt, chk = data_pkt(z[i * blk:(i + 1) * blk], i)
            c.check_ok(0x11, pkt, chk)
    else:
        nblk = (len(image) + blk - 1) // blk
        c.check_ok(0x02, struct.pack("<IIII", len(image), nblk, blk, offset) + enc, timeout=5)
        for i in range(nblk):
            chunk = image[i * blk:(i + 1) * blk]
            chunk += b"\xff" * (blk - len(chunk))
            pkt, chk = data_pkt(chunk, i)
            c.check_ok(0x03, pkt, chk)


def rom_md5(c, offset, size):
    _, out = c.check_ok(0x13, struct.pack("<IIII", offset, size, 0, 0), out_len=32)
    return out.decode()


def t_flash_md5_esp32(compress=False):
    with tempfile.TemporaryDirectory() as td:
        out = os.path.join(td, "flash.bin")
        sim = Sim("--chip", "esp32", "--pty", "--flash-out", out)
        try:
            c = connect(sim)
            c.check_ok(0x0D, struct.pack("<IBBBB", 0, 0, 0, 0, 0))
            c.check_ok(0x0B, struct.pack("<IIIIII", 0, 4 * 1024 * 1024, 0x10000, 0x1000, 0x100,
                                         0xFFFF))
            image = bytes((i * 7 + (i >> 8)) & 0xFF for i in range(70000))
            image += b"\xff" * (-len(image) % 4)
            flash_write(c, "esp32", 0x10000, image, compress)
            got = rom_md5(c, 0x10000, len(image))
            check(got == hashlib.md5(image).hexdigest(), "MD5 %s" % got)
            check(re.fullmatch(r"[0-9a-f]{32}", got), "MD5 must be lower-case hex")
            # a block with a bad checksum is refused with ROM error 0x07
            blk = b"\x00" * 0x400
            c.check_ok(0x02, struct.pack("<IIII", 0x400, 1, 0x400, 0x200000))
            pkt, chk = data_pkt(blk, 0)
            check(c.status(0x03, pkt, chk ^ 1) == (1, 0x07), "bad checksum must give 0x07")
            # writing over data that was not erased fails the ROM's read-back check (0x08)
            c.check_ok(0x02, struct.pack("<IIII", 0x400, 1, 0x400, 0x200000))
            c.check_ok(0x03, *data_pkt(b"\x0f" * 0x400, 0))
            c.check_ok(0x02, struct.pack("<IIII", 0, 0, 0x400, 0x200000))  # erases nothing
            check(c.status(0x03, *data_pkt(b"\xf0" * 0x400, 0)) == (1, 0x08),
                  "programming 0 bits to 1 must fail")
            # MD5 beyond the ROM's default 2 MB fails until SPI_SET_PARAMS says more
            c.link.close()
        finally:
            check(sim.stop() == 0, "exit status")
        with open(out, "rb") as f:
            dump = f.read()
        check(len(dump) == 4 * 1024 * 1024, "dump size")
        check(dump[0x10000:0x10000 + len(image)] == image, "flash dump content")
        check(dump[:0x10000] == b"\xff" * 0x10000, "untouched flash stays erased")
        check(dump[0x200000:0x200400] == b"\x00" * 0x400, "NOR AND semantics")


def t_defl_md5_esp32():
    t_flash_md5_esp32(compress=True)
    # S3 needs the 5th word; ROM default flash size is 2 MB
    sim = Sim("--chip", "esp32s3", "--tcp", "0")
    try:
        c = connect(sim)
        c.check_ok(0x0D, struct.pack("<IBBBB", 0, 0, 0, 0, 0))
        image = os.urandom(5000) + b"\x00" * 3000
        flash_write(c, "esp32s3", 0x0, image, compress=True)
        check(rom_md5(c, 0, len(image)) == hashlib.md5(image).hexdigest(), "S3 MD5")
        enc = b"\x00" * 4
        st = c.status(0x02, struct.pack("<IIII", 0x1000, 4, 0x400, 0x300000) + enc)
        check(st == (1, 0x06), "write beyond the ROM's 2 MB default must fail, got %r" % (st,))
        c.check_ok(0x0B, struct.pack("<IIIIII", 0, 4 << 20, 0x10000, 0x1000, 0x100, 0xFFFF))
        c.check_ok(0x02, struct.pack("<IIII", 0x1000, 4, 0x400, 0x300000) + enc)
        # corrupt compressed data: inflate error 0x0B
        c.check_ok(0x10, struct.pack("<IIII", 0x1000, 1, 0x400, 0x100000) + enc)
        bad = b"\x78\x9c" + b"\xff" * 64
        check(c.status(0x11, *data_pkt(bad, 0)) == (1, 0x0B), "inflate error must give 0x0B")
    finally:
        sim.stop()


def t_unsupported_esp32():
    for chip, st in (("esp32", 4), ("esp8266", 2)):
        sim = Sim("--chip", chip, "--tcp", "0")
        try:
            c = connect(sim, st)
            c.read_reg(0x40001000)
            c.send(0x14)  # GET_SECURITY_INFO: not in these ROMs
            frames = c.drain(0.3)
            check(len(frames) == 8, "%s: %d error frames, want 8" % (chip, len(frames)))
            for f in frames:
                check(f[0] == 1 and f[1] != 0x14, "error frame must not echo the opcode")
                check(len(f) == 8 + st, "%s: error frame %d bytes" % (chip, len(f)))
                check(f[8] != 0 and f[9] == 0x05, "status (non-zero, 0x05)")
            # stub-only opcodes are unsupported as well
            c.send(0xD0)
            check(len(c.drain(0.3)) == 8, "ERASE_FLASH to ROM")
            # and the loader still works
            check(c.read_reg(0x40001000) == CHIPS[chip]["magic"], "ROM alive after error")
            sim.wait_event("unsupported")
        finally:
            sim.stop()


def t_status_len():
    for chip, info in CHIPS.items():
        sim = Sim("--chip", chip, "--tcp", "0")
        try:
            st = info["status"]
            c = connect(sim, st)
            _, d = c.command(0x0A, struct.pack("<I", 0x40001000))
            check(len(d) == st, "%s READ_REG status bytes %d" % (chip, len(d)))
            # size field = output + status bytes (observed in esptool traces)
            if chip in ("esp32s2", "esp32s3", "esp32c3"):
                _, d = c.command(0x14)
                n = info.get("secinfo", 20)
                check(len(d) == n + 4, "%s security info %d bytes" % (chip, len(d)))
                if n == 20:
                    check(struct.unpack("<I", d[12:16])[0] == info["chip_id"], "chip_id")
                # S2+ ROMs reject a 16-byte FLASH_BEGIN
                c.check_ok(0x0D, struct.pack("<IBBBB", 0, 0, 0, 0, 0))
                check(c.status(0x02, struct.pack("<IIII", 0, 0, 0x400, 0)) == (1, 0x05),
                      "%s: 16-byte FLASH_BEGIN" % chip)
            if chip == "esp32":
                c.check_ok(0x0D, struct.pack("<IBBBB", 0, 0, 0, 0, 0))
                check(c.status(0x02, struct.pack("<IIIII", 0, 0, 0x400, 0, 0)) == (1, 0x05),
                      "ESP32: 20-byte FLASH_BEGIN")
                check(c.status(0x02, struct.pack("<IIII", 0x1000, 4, 0x400, 0x1000000)) ==
                      (1, 0x06), "ESP32: beyond flash")
            if chip == "esp8266":
                _, d = c.command(0x02, struct.pack("<IIII", 0, 0, 0x400, 0))
                check(d == b"\x00\x00", "ESP8266 FLASH_BEGIN status %r" % d)
                # no SPI_SET_PARAMS on this ROM: the whole 4 MB part is writable
                c.check_ok(0x02, struct.pack("<IIII", 0x1000, 4, 0x400, 0x3F0000))
                c.check_ok(0x03, *data_pkt(b"\x12" * 0x400, 0))
        finally:
            sim.stop()


def classic_reset(link):
    link.dtr(False)
    link.rts(True)
    time.sleep(0.1)
    link.dtr(True)
    link.rts(False)
    time.sleep(0.05)
    link.dtr(False)


def hard_reset(link):
    link.rts(True)
    time.sleep(0.1)
    link.rts(False)


def read_for(link, secs):
    out = bytearray()
    end = time.monotonic() + secs
    while time.monotonic() < end:
        out += link.read(0.02)
    return bytes(out)


def read_until(link, pred, secs=2.0):
    """Reads until pred(data) holds or secs pass (bounded; robust on a loaded machine)."""
    out = bytearray()
    end = time.monotonic() + secs
    while time.monotonic() < end and not pred(bytes(out)):
        out += link.read(0.02)
    return bytes(out)


BOOT_RE = re.compile(rb"boot:(0x[0-9a-fA-F]+)(.*waiting for download)?", re.DOTALL)


def t_rfc2217_reset():
    for chip, boot in (("esp32", b"0x3"), ("esp32c3", b"0x5"), ("esp32s3", b"0x23")):
        sim = Sim("--chip", chip, "--rfc2217", "0")
        try:
            link = open_link(sim)
            link.dtr(True)  # pyserial opens with both lines asserted: no effect on the chip
            link.rts(True)
            classic_reset(link)
            log = read_until(link, lambda b: b"waiting for download" in b)
            m = BOOT_RE.search(log)
            check(m and m.group(2) is not None, "%s: no download boot log in %r" % (chip, log))
            check(m.group(1) == boot, "%s boot value %r" % (chip, m.group(1)))
            c = Client(link)
            c.sync()
            check(c.read_reg(0x40001000) == CHIPS[chip]["magic"], "magic after reset")
            sim.wait_event("reset", pred=lambda e: e.get("reason") == "en")
        finally:
            sim.stop()
    # ESP8266: the ROM log runs at 74880 baud, so a 115200 host sees garbage
    sim = Sim("--chip", "esp8266", "--rfc2217", "0")
    try:
        link = open_link(sim)
        classic_reset(link)
        log = read_until(link, lambda b: len(b) > 30, 1.0)
        check(len(log) > 10, "ESP8266 banner missing")
        check(b"boot mode" not in log and b"ets Jan" not in log, "ESP8266 log must be garbled")
        c = Client(link, 2)
        c.sync()
    finally:
        sim.stop()


def t_rfc2217_app():
    with tempfile.TemporaryDirectory() as td:
        img = os.path.join(td, "in.bin")
        with open(img, "wb") as f:
            f.write(b"\xff" * 0x1000 + b"\xe9\x03\x02\x20" + b"\x00" * 60)
        sim = Sim("--chip", "esp32", "--rfc2217", "0", "--flash-in", img, "--app-period", "50",
                  "--app-text", "HELLO FROM APP")
        try:
            link = open_link(sim)
            hard_reset(link)
            log = read_until(link, lambda b: b.count(b"HELLO FROM APP") >= 3)
            m = BOOT_RE.search(log)
            check(m and m.group(1) == b"0x13" and m.group(2) is None, "app boot log %r" % log)
            check(log.count(b"HELLO FROM APP") >= 3, "periodic app text missing: %r" % log)
            c = Client(link)
            c.send(0x08, SYNC_DATA)
            frames = c.drain(0.3)
            check(not [f for f in frames if len(f) >= 2 and f[1] == 0x08], "app answered SYNC")
            # back to download mode with the classic sequence
            classic_reset(link)
            c.garbage.clear()
            c.sync()
        finally:
            sim.stop()
    # blank flash: the ROM finds no image
    sim = Sim("--chip", "esp32", "--rfc2217", "0", "--app-period", "50")
    try:
        link = open_link(sim)
        hard_reset(link)
        log = read_until(link, lambda b: b"invalid header: 0xffffffff" in b)
        check(b"invalid header: 0xffffffff" in log, "blank flash log %r" % log)
    finally:
        sim.stop()


def t_app_print():
    """--app-print (repeatable, escapes): printed once per application start, after the boot log,
    at 115200; not in download mode; again after the next hard reset."""
    with tempfile.TemporaryDirectory() as td:
        img = os.path.join(td, "in.bin")
        with open(img, "wb") as f:
            f.write(b"\xff" * 0x1000 + b"\xe9\x03\x02\x20" + b"\x00" * 60)
        sim = Sim("--chip", "esp32", "--rfc2217", "0", "--flash-in", img, "--app-period", "0",
                  "--app-print", "I (300) app: init\\tdone", "--app-print", "station ready")
        try:
            link = open_link(sim)
            hard_reset(link)
            log = read_until(link, lambda b: b"station ready\r\n" in b)
            check(b"I (300) app: init\tdone\r\nstation ready\r\n" in log, "app print %r" % log)
            check(log.index(b"station ready") > log.index(b"application started"),
                  "printed before the boot log: %r" % log)
            sim.wait_event("app_print", pred=lambda e: e["lines"] == 2)
            hard_reset(link)
            log = read_until(link, lambda b: b"station ready" in b)
            check(log.count(b"station ready") == 1, "second start: %r" % log)
            classic_reset(link)  # download mode: the ROM banner, no application output
            log = read_until(link, lambda b: b"waiting for download" in b)
            check(b"station ready" not in log, "printed in download mode: %r" % log)
        finally:
            sim.stop()
    p = subprocess.run([ESPSIM, "--chip", "esp32", "--tcp", "0", "--app-print", "bad\\q"],
                       capture_output=True, timeout=10)
    check(p.returncode == 2, "--app-print with an unknown escape accepted (%d)" % p.returncode)


def esp8266_erase_size(offset, size):
    """esptool ESP8266ROM.get_erase_size, restated from the docs/SIMULATOR.md "ROM loader"."""
    sectors_per_block, sector = 16, 4096
    num = (size + sector - 1) // sector
    start = offset // sector
    head = sectors_per_block - (start % sectors_per_block)
    if num < head:
        head = num
    if num < 2 * head:
        return (num + 1) // 2 * sector
    return (num - head) * sector


def t_esp8266_erase_bug():
    with tempfile.TemporaryDirectory() as td:
        img, out = os.path.join(td, "in.bin"), os.path.join(td, "out.bin")
        with open(img, "wb") as f:
            f.write(b"\x00" * (1 << 20))
        for offset, size in ((0x0, 0x10000), (0x3000, 0x5000), (0x8000, 0x20000)):
            for rule in ("esptool", "plain"):
                sim = Sim("--chip", "esp8266", "--tcp", "0", "--flash-in", img,
                          "--flash-jedec", "0xEF4014", "--flash-out", out)
                try:
                    c = connect(sim, 2)
                    e = esp8266_erase_size(offset, size) if rule == "esptool" else size
                    nblk = (size + 0x3FF) // 0x400
                    c.check_ok(0x02, struct.pack("<IIII", e, nblk, 0x400, offset))
                    c.link.close()
                finally:
                    sim.stop()
                with open(out, "rb") as f:
                    dump = f.read()
                erased = [i for i in range(len(dump) // 4096)
                          if dump[i * 4096:(i + 1) * 4096] == b"\xff" * 4096]
                want = list(range(offset // 4096, (offset + size + 4095) // 4096))
                if rule == "esptool":
                    check(set(want) <= set(erased), "esptool rule must cover %r (erased %r)"
                          % (want, erased))
                else:
                    check(erased != want, "plain size must not erase exactly the region")
                    check(set(erased) > set(want), "plain size erases more than asked")


def t_faults():
    # silent: nothing answers
    sim = Sim("--chip", "esp32", "--tcp", "0", "--fault", "silent")
    try:
        c = Client(open_link(sim))
        c.send(0x08, SYNC_DATA)
        check(c.drain(0.3) == [] and not c.garbage, "silent chip answered")
    finally:
        sim.stop()
    # app over TCP: boot log on connect, no SYNC answer
    sim = Sim("--chip", "esp32c3", "--tcp", "0", "--fault", "app", "--app-period", "50")
    try:
        link = open_link(sim)
        log = read_until(link, lambda b: b"boot:0xc (SPI_FAST_FLASH_BOOT)" in b)
        check(b"boot:0xc (SPI_FAST_FLASH_BOOT)" in log, "app boot log %r" % log)
        c = Client(link)
        c.send(0x08, SYNC_DATA)
        check(not [f for f in c.drain(0.3) if f[1:2] == b"\x08"], "app answered SYNC")
    finally:
        sim.stop()
    # nak by name and by number
    sim = Sim("--chip", "esp32", "--tcp", "0", "--fault", "nak:FLASH_BEGIN:6",
              "--fault", "nak:0x13:0x09")
    try:
        c = connect(sim)
        check(c.status(0x02, struct.pack("<IIII", 0, 0, 0x400, 0)) == (1, 6), "nak FLASH_BEGIN")
        check(c.status(0x13, struct.pack("<IIII", 0, 16, 0, 0), out_len=0) == (1, 9), "nak MD5")
    finally:
        sim.stop()
    # brownout after the 2nd block: ROM banner mid-transfer, download mode, flash kept
    sim = Sim("--chip", "esp32", "--tcp", "0", "--fault", "brownout:2")
    try:
        c = connect(sim)
        c.check_ok(0x0D, struct.pack("<IBBBB", 0, 0, 0, 0, 0))
        c.check_ok(0x02, struct.pack("<IIII", 0x1000, 4, 0x400, 0))
        c.check_ok(0x03, *data_pkt(b"\x11" * 0x400, 0))
        c.check_ok(0x03, *data_pkt(b"\x22" * 0x400, 1))
        end = time.monotonic() + 2.0
        while b"waiting for download" not in bytes(c.garbage) and time.monotonic() < end:
            c.read_frame(0.05)
        check(b"BROWNOUT" in bytes(c.garbage) and b"waiting for download" in bytes(c.garbage),
              "brownout banner %r" % bytes(c.garbage))
        c.sync()
        c.check_ok(0x0D, struct.pack("<IBBBB", 0, 0, 0, 0, 0))
        check(rom_md5(c, 0, 0x800) == hashlib.md5(b"\x11" * 0x400 + b"\x22" * 0x400).hexdigest(),
              "flash kept across brown-out")
    finally:
        sim.stop()
    # bitflip: the ROM accepts the block, MD5 differs
    sim = Sim("--chip", "esp32", "--tcp", "0", "--fault", "bitflip")
    try:
        c = connect(sim)
        c.check_ok(0x0D, struct.pack("<IBBBB", 0, 0, 0, 0, 0))
        data = b"\x5a" * 0x400
        c.check_ok(0x02, struct.pack("<IIII", 0x400, 1, 0x400, 0x1000))
        c.check_ok(0x03, *data_pkt(data, 0))
        check(rom_md5(c, 0x1000, 0x400) != hashlib.md5(data).hexdigest(), "bitflip not visible")
    finally:
        sim.stop()
    # hangup after the first block over TCP: the connection closes
    sim = Sim("--chip", "esp32", "--tcp", "0", "--fault", "hangup:1")
    try:
        c = connect(sim)
        c.check_ok(0x0D, struct.pack("<IBBBB", 0, 0, 0, 0, 0))
        c.check_ok(0x02, struct.pack("<IIII", 0x400, 1, 0x400, 0x1000))
        c.send(0x03, *data_pkt(b"\x01" * 0x400, 0))
        sim.wait_event("disconnect")
    finally:
        sim.stop()
    # drop-reply:3 (third request unanswered once), flash-size override
    sim = Sim("--chip", "esp32", "--tcp", "0", "--fault", "drop-reply:3",
              "--fault", "flash-size:1MB")
    try:
        check(sim.ready["flash_size"] == 1 << 20, "flash-size override")
        c = connect(sim)  # request 1
        c.read_reg(0x40001000)  # request 2
        c.send(0x0A, struct.pack("<I", 0x40001000))  # request 3: dropped
        check(c.drain(0.2) == [], "reply 3 should be dropped")
        check(c.read_reg(0x40001000) == 0x00F01D83, "reply 4 arrives")
    finally:
        sim.stop()


def t_realtime():
    sim = Sim("--chip", "esp32", "--tcp", "0", "--realtime")
    try:
        c = connect(sim)
        c.check_ok(0x0D, struct.pack("<IBBBB", 0, 0, 0, 0, 0))
        img = bytes(range(256)) * 32  # 8 KiB = 8 blocks of 0x400
        t0 = time.monotonic()
        flash_write(c, "esp32", 0x10000, img)
        dt = time.monotonic() - t0
        # every block and reply crosses a 115200 wire: 10 bits per byte
        wire = (len(img) + 8 * (8 + 16 + 2) + 2 * 30 + 9 * 14) * 10 / 115200
        check(wire <= dt < wire + 1.5, "8 KiB at 115200 took %.2fs, wire floor %.2fs" % (dt, wire))
        c.check_ok(0x0F, struct.pack("<II", 921600, 0))
        t0 = time.monotonic()
        flash_write(c, "esp32", 0x20000, img)
        dt2 = time.monotonic() - t0
        check(dt2 < dt / 2, "921600 should be faster: %.2fs vs %.2fs" % (dt2, dt))
        check(rom_md5(c, 0x20000, len(img)) == hashlib.md5(img).hexdigest(), "realtime MD5")
    finally:
        sim.stop()


def t_pyserial_rfc2217():
    """esptool's transport: pyserial's rfc2217:// client with esptool's ClassicReset and
    HardReset line sequences. Skipped (exit 77) when pyserial is not installed."""
    try:
        import serial  # noqa: F401
    except ImportError:
        for py in ("/usr/bin/python3", "/usr/local/bin/python3"):
            if os.path.exists(py) and os.path.realpath(py) != os.path.realpath(sys.executable):
                r = subprocess.run([py, "-c", "import serial"], capture_output=True)
                if r.returncode == 0:  # run this case with the interpreter that has pyserial
                    os.execv(py, [py, os.path.abspath(__file__), "--espsim", ESPSIM,
                                  "pyserial_rfc2217"])
        print("SKIP pyserial_rfc2217: pyserial not installed")
        sys.exit(77)
    import serial
    sim = Sim("--chip", "esp32", "--rfc2217", "0")
    try:
        s = serial.serial_for_url(sim.ready["port"], baudrate=115200, timeout=0.3)
        # esptool ClassicReset: _setRTS re-writes DTR after every RTS change (Windows quirk)
        s.dtr = False
        s.rts = True
        s.dtr = s.dtr
        time.sleep(0.1)
        s.dtr = True
        s.rts = False
        s.dtr = s.dtr
        time.sleep(0.05)
        s.dtr = False
        log = s.read(s.in_waiting or 1) + s.read(200)
        m = BOOT_RE.search(log)
        check(m and m.group(2) is not None, "pyserial classic reset: %r" % log)
        s.reset_input_buffer()
        s.write(slip(struct.pack("<BBHI", 0, 0x08, 36, 0) + SYNC_DATA))
        time.sleep(0.2)
        check(s.read(2000).count(b"\xc0\x01\x08") == 8, "8 SYNC replies through pyserial")
        # esptool HardReset: the application boots
        s.rts = True
        time.sleep(0.1)
        s.rts = False
        time.sleep(0.3)
        log = s.read(4000)
        m = BOOT_RE.search(log)
        check(m and m.group(1) == b"0x13" and m.group(2) is None, "hard reset: %r" % log)
        s.close()
    finally:
        sim.stop()


def t_new_board():
    # raw TCP: the new board is in download mode, has the next MAC and blank flash
    sim = Sim("--chip", "esp32", "--tcp", "0", "--mac", "24:0a:c4:00:00:ff")
    try:
        c = connect(sim)
        c.check_ok(0x0D, struct.pack("<IBBBB", 0, 0, 0, 0, 0))
        flash_write(c, "esp32", 0x1000, b"\x00" * 0x400)
        sim.proc.send_signal(signal.SIGUSR2)
        ev = sim.wait_event("new_board")
        check(ev["mac"] == "24:0a:c4:00:01:00", "new board MAC %r" % ev["mac"])
        c.sync()
        check(read_mac(c, "esp32").hex(":") == "24:0a:c4:00:01:00", "eFuse MAC of new board")
        c.check_ok(0x0D, struct.pack("<IBBBB", 0, 0, 0, 0, 0))
        check(rom_md5(c, 0x1000, 0x400) == hashlib.md5(b"\xff" * 0x400).hexdigest(),
              "new board has blank flash")
    finally:
        sim.stop()
    # RFC 2217 with idle lines: the new board powers up and runs (blank flash: no image)
    sim = Sim("--chip", "esp32", "--rfc2217", "0", "--app-period", "50")
    try:
        link = open_link(sim)
        sim.proc.send_signal(signal.SIGUSR2)
        log = read_until(link, lambda b: b"invalid header" in b)
        check(b"boot:0x13" in log and b"invalid header" in log, "new board boot %r" % log)
        classic_reset(link)
        c = Client(link)
        c.sync()
    finally:
        sim.stop()


# --------------------------------------------------------------------------------------------
# flasher stub (docs/SIMULATOR.md "Flasher stub"); the stub file is synthetic (tests/data/mkstub.py)

HERE = os.path.dirname(os.path.abspath(__file__))
_STUB_DIRS = {}


def stub_dir(kind="legacy"):
    """Synthetic stubs of tests/data/mkstub.py; `kind` legacy or new (esp-flasher-stub)."""
    if kind not in _STUB_DIRS:
        d = tempfile.mkdtemp(prefix="espsim-stub-")
        subprocess.run([sys.executable, os.path.join(HERE, "..", "data", "mkstub.py"), d,
                        "--stub", kind], check=True, timeout=30)
        _STUB_DIRS[kind] = d
    return _STUB_DIRS[kind]


def upload_stub(c, chip, entry=None, expect_ohai=True, kind="legacy", stub=None):
    """esptool's stub upload (docs/PROTOCOL.md, flasher stub): MEM_BEGIN/MEM_DATA per segment,
    MEM_END(0, entry), then one frame that must be exactly "OHAI". Leaves c in stub mode (2
    status bytes). `stub`: a stub dict to upload instead of a synthetic file."""
    import base64
    if stub is None:
        with open(os.path.join(stub_dir(kind), chip + ".json")) as f:
            stub = json.load(f)
    for seg, start in (("text", "text_start"), ("data", "data_start")):
        if seg not in stub:
            continue
        blob = base64.b64decode(stub[seg])
        nblk = (len(blob) + 0x17FF) // 0x1800
        c.check_ok(0x05, struct.pack("<IIII", len(blob), nblk, 0x1800, stub[start]))
        for i in range(nblk):
            c.check_ok(0x07, *data_pkt(blob[i * 0x1800:(i + 1) * 0x1800], i))
    c.send(0x06, struct.pack("<II", 0, stub["entry"] if entry is None else entry))
    end = time.monotonic() + (3.0 if expect_ohai else 0.5)
    while time.monotonic() < end:
        f = c.read_frame(end - time.monotonic())
        if f is None:
            break
        if f == b"OHAI":
            check(expect_ohai, "OHAI although the upload should not start a stub")
            c.status_len = 2
            return stub
    check(not expect_ohai, "no OHAI after MEM_END")
    return stub


def stub_connect(sim, chip="esp32", kind="legacy"):
    c = connect(sim, CHIPS[chip]["status"])
    upload_stub(c, chip, kind=kind)
    return c


def stub_md5(c, offset, size):
    _, out = c.check_ok(0x13, struct.pack("<IIII", offset, size, 0, 0), out_len=16)
    return out.hex()


def stub_defl_write(c, offset, image, blk=0x4000, end=True, enc=b""):
    """Stub compressed write (docs/SIMULATOR.md "Flasher stub"): exact size, 16 KiB blocks, DEFL_END(1) barrier."""
    z = zlib.compress(image, 9)
    nblk = (len(z) + blk - 1) // blk
    c.check_ok(0x10, struct.pack("<IIII", len(image), nblk, blk, offset) + enc)
    for i in range(nblk):
        c.check_ok(0x11, *data_pkt(z[i * blk:(i + 1) * blk], i))
    if end:
        c.check_ok(0x12, struct.pack("<I", 1), timeout=5)
    return z


def test_image(size, seed):
    """About half compressible: 64-byte runs of random bytes and of a repeated byte."""
    import random
    rnd = random.Random(seed)
    out = bytearray()
    while len(out) < size:
        out += (bytes(rnd.getrandbits(8) for _ in range(64)) if rnd.random() < 0.5
                else bytes([rnd.getrandbits(8)]) * 64)
    return bytes(out[:size])


def t_stub_ohai():  # noqa: C901
    for chip in ("esp32", "esp8266", "esp32s3"):
        sim = Sim("--chip", chip, "--tcp", "0")
        try:
            c = stub_connect(sim, chip)
            sim.wait_event("stub")
            syncs = c.sync()
            check(len(syncs) == 8, "%s stub: %d SYNC replies" % (chip, len(syncs)))
            check(all(struct.unpack("<I", f[4:8])[0] == 0 for f in syncs), "stub SYNC value 0")
            val, d = c.command(0x0A, struct.pack("<I", 0x40001000))
            check(val == CHIPS[chip]["magic"] and d == b"\x00\x00", "%s stub READ_REG %r" % (chip, d))
            # an opcode the stub lacks: same opcode echoed, status (0xFF, 0) (legacy stub)
            _, d = c.command(0x0E, struct.pack("<II", 0, 16))
            check(d == b"\xff\x00", "%s stub unknown op status %r" % (chip, d))
            # ROM-only forms are refused: the 8-byte SPI_ATTACH (stub takes 4 bytes)
            check(c.status(0x0D, struct.pack("<IBBBB", 0, 0, 0, 0, 0))[0] != 0, "8-byte attach")
            c.check_ok(0x0D, struct.pack("<I", 0))
            # the stub attached the flash itself: SPI flash ID works without SPI_ATTACH
            if chip != "esp8266":
                c.check_ok(0x0B, struct.pack("<IIIIII", 0, 4 << 20, 0x10000, 0x1000, 0x100,
                                             0xFFFF))
            else:  # SPI_SET_PARAMS exists in the ESP8266 stub, not in its ROM (docs/SIMULATOR.md "Flasher stub")
                _, d = c.command(0x0B, struct.pack("<IIIIII", 0, 4 << 20, 0x10000, 0x1000,
                                                   0x100, 0xFFFF))
                check(d == b"\x00\x00", "ESP8266 stub SPI_SET_PARAMS %r" % d)
            fid = spiflash_command(c, chip, 0x9F, read_bits=24) & 0xFFFFFF
            check(fid == 0x1640EF, "%s stub JEDEC 0x%06x" % (chip, fid))
            # GET_SECURITY_INFO: S2+ only, size field without the status bytes
            if chip == "esp32s3":
                c.send(0x14)
                f = c.read_frame(1.0)
                check(f and struct.unpack("<H", f[2:4])[0] == 20 and len(f) == 8 + 22,
                      "stub security info frame %r" % f)
            # board swap returns to the ROM
            sim.proc.send_signal(signal.SIGUSR2)
            sim.wait_event("new_board")
            c.status_len = CHIPS[chip]["status"]
            c.drain(0.1)
            syncs = c.sync()
            check(struct.unpack("<I", syncs[0][4:8])[0] != 0, "%s: ROM after new board" % chip)
            _, d = c.command(0x0A, struct.pack("<I", 0x40001000))
            check(len(d) == CHIPS[chip]["status"], "ROM status length after new board")
        finally:
            sim.stop()
    # entry outside the uploaded RAM: the chip crashes (silent); --fault no-stub: hangs
    for args, entry in (((), 0x40000400), (("--fault", "no-stub"), None)):
        sim = Sim("--chip", "esp32", "--tcp", "0", *args)
        try:
            c = connect(sim)
            upload_stub(c, "esp32", entry=entry, expect_ohai=False)
            c.send(0x08, SYNC_DATA)
            check(c.drain(0.3) == [], "crashed/hung chip answered")
            sim.wait_event("jump", pred=lambda e: e["stub"] is False)
        finally:
            sim.stop()


def t_stub_write():
    for chip in ("esp32", "esp8266", "esp32c3"):
        with tempfile.TemporaryDirectory() as td:
            fin, fout = os.path.join(td, "in.bin"), os.path.join(td, "out.bin")
            with open(fin, "wb") as f:
                f.write(b"\x00" * (1 << 20))  # not erased: only what the stub erases turns 0xFF
            sim = Sim("--chip", chip, "--tcp", "0", "--flash-in", fin, "--flash-out", fout)
            try:
                c = stub_connect(sim, chip)
                # one 16 KiB compressed block, then a larger multi-block image
                small = test_image(0x4000, 1)
                stub_defl_write(c, 0x10000, small)
                check(stub_md5(c, 0x10000, len(small)) == hashlib.md5(small).hexdigest(),
                      "%s stub MD5 16 KiB" % chip)
                img = test_image(100 * 1024 + 12, 2)
                # the legacy stub (since v1.10.0) takes 16 or 20 bytes; other lengths: 0xC0
                z = zlib.compress(img, 9)
                nblk = (len(z) + 0x3FFF) // 0x4000
                check(c.status(0x10, struct.pack("<IIIIII", len(img), nblk, 0x4000, 0x21000, 0,
                                                 0)) == (0xC0, 0), "%s: 24-byte BEGIN" % chip)
                stub_defl_write(c, 0x21000, img, enc=b"\x00" * 4 if chip == "esp32c3" else b"")
                ev = sim.wait_event("defl_begin", pred=lambda e: e["offset"] == "0x21000")
                check(ev["size"] == len(img), "stub BEGIN size is the exact size")
                check(stub_md5(c, 0x21000, len(img)) == hashlib.md5(img).hexdigest(),
                      "%s stub MD5 multi-block" % chip)
                # uncompressed stub write, last block padded with 0xFF (docs/SIMULATOR.md "ROM loader")
                raw = test_image(0x5000 + 20, 3)
                nblk = (len(raw) + 0x3FFF) // 0x4000
                c.check_ok(0x02, struct.pack("<IIII", len(raw), nblk, 0x4000, 0x40000))
                for i in range(nblk):
                    blk = raw[i * 0x4000:(i + 1) * 0x4000]
                    c.check_ok(0x03, *data_pkt(blk + b"\xff" * (0x4000 - len(blk)), i))
                c.check_ok(0x04, struct.pack("<I", 1))
                check(stub_md5(c, 0x40000, len(raw)) == hashlib.md5(raw).hexdigest(), "raw write")
                # block size above 16 KiB: BAD_BLOCKSIZE (0xC2)
                check(c.status(0x10, struct.pack("<IIII", 0x1000, 1, 0x8000, 0x80000)) ==
                      (0xC2, 0), "block size 0x8000")
                c.link.close()
            finally:
                sim.stop()
            with open(fout, "rb") as f:
                dump = f.read()

            def sectors(off, size):
                return range(off // 4096, (off + size + 4095) // 4096)

            # just-in-time erase: exactly the sectors covering each write, nothing else
            touched = set(sectors(0x10000, 0x4000)) | set(sectors(0x21000, len(img))) | \
                set(sectors(0x40000, len(raw)))
            want = bytearray(b"\x00" * (1 << 20))
            for s in touched:
                want[s * 4096:(s + 1) * 4096] = b"\xff" * 4096
            want[0x10000:0x10000 + len(small)] = small
            want[0x21000:0x21000 + len(img)] = img
            want[0x40000:0x40000 + len(raw)] = raw
            bad = [i for i in range(0, 1 << 20, 4096) if dump[i:i + 4096] != want[i:i + 4096]]
            check(not bad, "%s: flash dump differs in sectors %s" % (chip, [hex(b) for b in bad]))


def t_stub_new():
    """A synthetic esp-flasher-stub upload (mkstub.py --stub new) makes espsim answer as that
    stub (src/command_handler.c): 16- and 20-byte BEGIN, deferred errors answered to the next
    command (not run), FLASH_END with bytes missing 0xC0, unknown opcode 0xC3, no reboot on
    FLASH_END(0), only the new rate in CHANGE_BAUDRATE."""
    sim = Sim("--chip", "esp32c3", "--tcp", "0")
    try:
        c = stub_connect(sim, "esp32c3", kind="new")
        ev = sim.wait_event("stub")
        check(ev.get("kind") == "esp-flasher-stub", "stub kind %r" % ev.get("kind"))
        img = test_image(40 * 1024 + 8, 5)
        stub_defl_write(c, 0x30000, img, enc=b"\x00" * 4)
        ev = sim.wait_event("defl_begin", pred=lambda e: e["offset"] == "0x30000")
        check(ev.get("encrypted") == 0, "20-byte BEGIN: encrypted word %r" % ev.get("encrypted"))
        check(stub_md5(c, 0x30000, len(img)) == hashlib.md5(img).hexdigest(), "new-stub write")
        c.check_ok(0x02, struct.pack("<IIIII", 0x4000, 1, 0x4000, 0x50000, 0))
        # FLASH_END before every byte: 0xC0 (the legacy stub says 0xC8)
        check(c.status(0x04, struct.pack("<I", 1)) == (0xC0, 0), "END with bytes missing")
        check(c.status(0x02, struct.pack("<IIIIII", 0, 0, 0x4000, 0, 0, 0)) == (0xC0, 0),
              "24-byte BEGIN")
        # unknown opcode: 0xC3 (legacy: 0xFF)
        check(c.status(0x0E, struct.pack("<II", 0, 16)) == (0xC3, 0), "unknown opcode")
        # corrupt compressed data: ACKed, the inflate error (0xC7) answers the NEXT command of
        # any kind, which is not run: a READ_REG gets (0xC7) and no value
        c.check_ok(0x10, struct.pack("<IIII", 0x8000, 1, 0x4000, 0x60000))
        check(c.status(0x11, *data_pkt(b"\x78\x9c" + b"\xff" * 0x100, 0)) == (0, 0), "ACK")
        val, d = c.command(0x0A, struct.pack("<I", 0x40001000))
        check(d == b"\xc7\x00" and val == 0, "deferred error on READ_REG: %r %r" % (val, d))
        val, d = c.command(0x0A, struct.pack("<I", 0x40001000))
        check(d == b"\x00\x00" and val == CHIPS["esp32c3"]["magic"], "READ_REG after it")
        # FLASH_DEFL_END(0) after a complete write: no reboot, the stub keeps answering
        small = test_image(0x2000, 6)
        stub_defl_write(c, 0x70000, small, end=False)
        c.check_ok(0x12, struct.pack("<I", 0))
        c.check_ok(0x0A, struct.pack("<I", 0x40001000))
        # MD5 error reply: size 2, no digest
        c.send(0x13, struct.pack("<IIII", 0x7FFFF000, 0x1000, 0, 0))
        f = c.read_frame(1.0)
        check(f and struct.unpack("<H", f[2:4])[0] == 2 and f[8:] == b"\xc4\x00",
              "MD5 error frame %r" % f)
        # CHANGE_BAUDRATE: the second word is ignored (a legacy stub would take 0 as divider 0)
        c.check_ok(0x0F, struct.pack("<II", 230400, 0))
        ev = sim.wait_event("change_baudrate", pred=lambda e: e.get("loader") == "stub")
        check(ev["actual"] == 230400, "new stub baud %r" % ev)
    finally:
        sim.stop()


def t_ram_app():
    """An uploaded program that is not a flasher stub runs (esptool's load_ram test images):
    no OHAI, its text at the loader's rate, no answers; a reset brings the ROM back. A small
    program at a stub's load address (esptool's ESP32-S3 test image loads at 0x40378000, where
    the S3 stubs load) is no stub either."""
    import base64
    small = {"text": base64.b64encode(bytes(range(96))).decode(), "text_start": 0x40378000,
             "entry": 0x40378004}
    sim = Sim("--chip", "esp32s3", "--tcp", "0")
    try:
        c = connect(sim)
        upload_stub(c, "esp32s3", stub=small, expect_ohai=False)
        ev = sim.wait_event("jump")
        check(ev["stub"] is False and ev.get("program") == "app", "S3 small program: %r" % ev)
        out = bytes(c.garbage) + read_for(c.link, 0.4)
        check(b"Hello world!" in out, "S3 RAM program text %r" % out[:100])
    finally:
        sim.stop()
    # a 4 KiB program at an address no stub build uses: a stub only if it carries the greeting
    # "OHAI" (a later build that moved); the family is the one whose address is nearer
    import random
    rnd = random.Random(3)
    body = bytearray(rnd.getrandbits(8) for _ in range(4096))
    for greet in (False, True):
        if greet:
            body[0x800:0x804] = b"OHAI"
        prog = {"text": base64.b64encode(bytes(body)).decode(), "text_start": 0x400A0000,
                "entry": 0x400A0100}
        sim = Sim("--chip", "esp32", "--tcp", "0")
        try:
            c = connect(sim)
            upload_stub(c, "esp32", stub=prog, expect_ohai=greet)
            ev = sim.wait_event("jump")
            want = "esp-flasher-stub" if greet else "app"
            check(ev.get("program") == want, "program with OHAI=%s: %r" % (greet, ev))
        finally:
            sim.stop()
    import random
    rnd = random.Random(7)
    prog = {"text": bytes(rnd.getrandbits(8) for _ in range(800)), "text_start": 0x4037C000,
            "entry": 0x4037C010}
    import base64
    stub = {"text": base64.b64encode(prog["text"]).decode(), "text_start": prog["text_start"],
            "entry": prog["entry"]}
    sim = Sim("--chip", "esp32c3", "--rfc2217", "0", "--ram-log", "ram app\\nstarted",
              "--app-period", "50")
    try:
        link = open_link(sim)
        c = Client(link)
        c.sync()
        c.drain(0.05)
        upload_stub(c, "esp32c3", stub=stub, expect_ohai=False)
        ev = sim.wait_event("jump")
        check(ev["stub"] is False and ev.get("program") == "app", "jump event %r" % ev)
        out = bytes(c.garbage) + read_for(link, 0.4)
        check(b"ram app\nstarted\r\n" in out, "RAM program log %r" % out[:200])
        check(out.count(b"Hello world!\r\n") >= 3, "RAM program text %r" % out[:200])
        c.send(0x08, SYNC_DATA)
        check(not [f for f in c.drain(0.3) if f[:2] == b"\x01\x08"], "RAM program answered")
        classic_reset(link)
        c.garbage.clear()
        c.sync()
    finally:
        sim.stop()


# esptool's watchdog_reset(): unlock, CONFIG1 = 5000, CONFIG0 = EN | stage-0 action 5 | ..., lock
WDT = {"esp32c3": (0x60008090, 0x600080A8), "esp32s3": (0x60008098, 0x600080B0),
       "esp32c6": (0x600B1C00, 0x600B1C18), "esp32h2": (0x600B1C00, 0x600B1C1C),
       "esp32s2": (0x3F408094, 0x3F4080AC)}


def watchdog_reset(c, chip):
    cfg0, wprot = WDT[chip]
    c.write_reg(wprot, 0x50D83AA1)
    c.write_reg(cfg0 + 4, 5000)
    c.write_reg(cfg0, (1 << 31) | (5 << 28) | (1 << 8) | 2)
    c.write_reg(wprot, 0)


def t_watchdog():
    """esptool --after watchdog_reset: the chip resets through its RTC watchdog and boots as
    its straps say: the application (here: invalid header on blank flash) when nothing holds
    the boot pin (raw TCP; RFC 2217 with the lines released), download mode when DTR holds it."""
    for chip in ("esp32c3", "esp32s3", "esp32c6", "esp32h2", "esp32s2"):
        sim = Sim("--chip", chip, "--tcp", "0")
        try:
            c = connect(sim)
            upload_stub(c, chip)
            c.garbage.clear()
            watchdog_reset(c, chip)
            ev = sim.wait_event("reset", pred=lambda e: e["reason"] == "watchdog", timeout=2)
            check(ev["mode"] == "app", "%s watchdog reset mode %r" % (chip, ev))
            out = bytes(c.garbage) + read_for(c.link, 0.3)
            check(b"rst:0x10 (" in out and b"invalid header" in out, "%s: %r" % (chip, out))
        finally:
            sim.stop()
    # locked: the write has no effect
    sim = Sim("--chip", "esp32c3", "--tcp", "0")
    try:
        c = connect(sim)
        c.write_reg(0x60008090, (1 << 31) | (5 << 28) | (1 << 8) | 2)
        time.sleep(0.2)
        c.sync()
    finally:
        sim.stop()
    # RFC 2217 with DTR holding the boot pin low: back to download mode, banner printed
    sim = Sim("--chip", "esp32c3", "--rfc2217", "0")
    try:
        link = open_link(sim)
        link.dtr(True)
        c = Client(link)
        c.sync()
        watchdog_reset(c, "esp32c3")
        ev = sim.wait_event("reset", pred=lambda e: e["reason"] == "watchdog", timeout=2)
        check(ev["mode"] == "download", "watchdog reset with DTR: %r" % ev)
        c.sync()
    finally:
        sim.stop()


def t_rfc2217_notify():
    """RFC 2217 §3: the server sends NOTIFY-MODEMSTATE (107) when the client agrees to the
    COM-PORT option and answers NOTIFY-MODEMSTATE / NOTIFY-LINESTATE polls (7 / 6); pyserial's
    client (esptool's) reads CTS/DSR/RI/CD from that answer (checked when it is installed)."""
    have_pyserial = _pyserial_reexec("rfc2217_notify")
    sim = Sim("--chip", "esp32", "--rfc2217", "0")
    try:
        link = open_link(sim)
        check(any(code == 107 for code, _ in link.replies), "no initial modem state")
        link._sb(7, b"")
        link._wait_reply(107, b"\x00")
        link._sb(6, b"")
        link._wait_reply(106, b"\x60")
        link._sb(11, b"\x00")  # mask: nothing
        link._wait_reply(111, b"\x00")
        c = Client(link)
        c.sync()
    finally:
        sim.stop()
    if not have_pyserial:
        print("note: pyserial not installed, its cts/dsr reads are not checked")
        return
    import serial
    sim = Sim("--chip", "esp32", "--rfc2217", "0")
    try:
        s = serial.serial_for_url(sim.ready["port"], baudrate=115200, timeout=0.3)
        check(s.cts is False and s.dsr is False and s.ri is False and s.cd is False,
              "pyserial modem lines")
        s.close()
    finally:
        sim.stop()


def t_rom_garble():
    """--fault rom-garble:K: ROM data block K arrives corrupted (0x07) and the ROM has counted
    it, so the same block sent again is refused (0x05); a new FLASH_DEFL_BEGIN and all blocks
    from 0 write the image (the recovery a host needs; docs/SIMULATOR.md "ROM loader")."""
    sim = Sim("--chip", "esp32", "--tcp", "0", "--fault", "rom-garble:3")
    try:
        c = connect(sim)
        c.check_ok(0x0D, struct.pack("<II", 0, 0))
        img = test_image(0x3000, 8)
        z = zlib.compress(img, 9)
        nblk = (len(z) + 0x3FF) // 0x400
        check(nblk >= 4, "test image needs 4 blocks")
        c.check_ok(0x10, struct.pack("<IIII", 0x3000, nblk, 0x400, 0x10000), timeout=5)
        for i in range(2):
            c.check_ok(0x11, *data_pkt(z[i * 0x400:(i + 1) * 0x400], i))
        blk2 = data_pkt(z[0x800:0xC00], 2)
        check(c.status(0x11, *blk2) == (1, 0x07), "garbled block: checksum error")
        sim.wait_event("fault", pred=lambda e: e["fault"] == "rom-garble")
        check(c.status(0x11, *blk2) == (1, 0x05), "resend of the counted block: 0x05")
        flash_write(c, "esp32", 0x10000, img, compress=True)  # BEGIN again, blocks from 0
        check(rom_md5(c, 0x10000, len(img)) == hashlib.md5(img).hexdigest(), "re-begun write")
    finally:
        sim.stop()


def t_stub_16mb():
    """Both stubs address flash with 24 bits on ESP32/C3 (legacy stub_flasher.h): on a 32 MB
    part, a write at 16 MB + x lands at x. The ESP32-S3 stub addresses all 32 MB."""
    for chip, alias in (("esp32", True), ("esp32c3", True), ("esp32s3", False)):
        sim = Sim("--chip", chip, "--tcp", "0", "--flash-jedec", "0xEF4019")
        try:
            c = stub_connect(sim, chip)
            c.check_ok(0x0B, struct.pack("<IIIIII", 0, 32 << 20, 0x10000, 0x1000, 0x100, 0xFFFF))
            img = test_image(0x3000, 9)
            stub_defl_write(c, 0x1000000 + 0x20000, img)
            low = stub_md5(c, 0x20000, len(img)) == hashlib.md5(img).hexdigest()
            check(low == alias, "%s: write at 16 MB + 0x20000 %s the low copy" %
                  (chip, "missed" if alias else "hit"))
        finally:
            sim.stop()


def t_usb_console():
    """--usb-otg / --usb-serial-jtag: the ROM's UARTDEV_BUF_NO says which port it talks on
    (esptool: S2 2, S3 3 = USB-OTG, S3 4 / C3 3 = USB-Serial/JTAG, else UART); over USB-OTG
    blocks above 0x800 bytes are refused, by the ROM and by the stub."""
    for chip, addr, args, want in (("esp32s3", 0x3FCEF14C, (), 0),
                                   ("esp32s3", 0x3FCEF14C, ("--usb-otg",), 3),
                                   ("esp32s3", 0x3FCEF14C, ("--usb-serial-jtag",), 4),
                                   ("esp32s2", 0x3FFFFD14, ("--usb-otg",), 2),
                                   ("esp32c3", 0x3FCDF07C, ("--usb-serial-jtag",), 3)):
        sim = Sim("--chip", chip, "--tcp", "0", *args)
        try:
            c = connect(sim, CHIPS[chip]["status"])
            val, _ = c.command(0x0A, struct.pack("<I", addr))
            check(val & 0xFF == want, "%s %s: UARTDEV_BUF_NO %r" % (chip, args, val))
            if "--usb-otg" in args:
                big = b"\x11" * 0x1800
                c.check_ok(0x05, struct.pack("<IIII", len(big), 1, 0x1800, 0x3FCA0000))
                check(c.status(0x07, *data_pkt(big, 0))[0] != 0, "%s: 0x1800 block taken" % chip)
                sim.wait_event("usb_block_refused")
                c.check_ok(0x05, struct.pack("<IIII", 0x800, 1, 0x800, 0x3FCA0000))
                c.check_ok(0x07, *data_pkt(big[:0x800], 0))
        finally:
            sim.stop()
    p = subprocess.run([ESPSIM, "--chip", "esp32", "--tcp", "0", "--usb-otg"],
                       capture_output=True, timeout=10)
    check(p.returncode == 2, "--usb-otg on ESP32 accepted (status %d)" % p.returncode)


def t_stub_erase_read():
    sim = Sim("--chip", "esp32", "--tcp", "0")
    try:
        c = stub_connect(sim)
        img = test_image(0x9000 + 100, 4)
        stub_defl_write(c, 0x100000, img)
        # READ_FLASH (docs/SIMULATOR.md "Flasher stub"): packets of packet_size, one ACK each, final raw MD5
        length = len(img)
        c.check_ok(0xD2, struct.pack("<IIII", 0x100000, length, 0x1000, 64))
        got = bytearray()
        while len(got) < length:
            f = c.read_frame(2.0)
            check(f is not None, "READ_FLASH packet missing after %d bytes" % len(got))
            check(len(f) == min(0x1000, length - len(got)), "packet length %d" % len(f))
            got += f
            if len(got) == 0x1000:  # strict flow control: nothing more before the ACK
                check(c.read_frame(0.2) is None, "second packet sent before the first ACK")
            c.link.write(slip(struct.pack("<I", len(got))))
        digest = c.read_frame(2.0)
        check(bytes(got) == img, "READ_FLASH data")
        check(digest == hashlib.md5(img).digest(), "READ_FLASH final MD5")
        c.read_reg(0x40001000)  # back in command mode
        # ERASE_REGION: aligned works; misaligned fails with status byte 1 (the legacy stub's
        # `verify_data_len() || handle_flash_erase()` turns its 0x32/0x33 into 1)
        c.check_ok(0xD1, struct.pack("<II", 0x101000, 0x2000))
        want = bytearray(img)
        want[0x1000:0x3000] = b"\xff" * 0x2000
        check(stub_md5(c, 0x100000, len(img)) == hashlib.md5(want).hexdigest(), "ERASE_REGION")
        check(c.status(0xD1, struct.pack("<II", 0x100800, 0x1000)) == (1, 0), "unaligned addr")
        check(c.status(0xD1, struct.pack("<II", 0x100000, 0x800)) == (1, 0), "unaligned size")
        # ERASE_FLASH: everything 0xFF
        c.check_ok(0xD0, timeout=5)
        check(stub_md5(c, 0x100000, len(img)) == hashlib.md5(b"\xff" * len(img)).hexdigest(),
              "ERASE_FLASH")
        check(stub_md5(c, 0, 4 << 20) == hashlib.md5(b"\xff" * (4 << 20)).hexdigest(),
              "whole chip erased")
    finally:
        sim.stop()


def t_stub_deferred():
    sim = Sim("--chip", "esp32", "--tcp", "0")
    try:
        c = stub_connect(sim)
        # corrupt compressed data: block 0 is ACKed, its inflate error (0xC7) comes with block 1
        z = zlib.compress(test_image(0x10000, 5), 9)
        bad = b"\x78\x9c" + b"\xff" * (0x4000 - 2)
        c.check_ok(0x10, struct.pack("<IIII", 0x10000, 2, 0x4000, 0x200000))
        check(c.status(0x11, *data_pkt(bad, 0)) == (0, 0), "bad block is ACKed on receipt")
        check(c.status(0x11, *data_pkt(z[:0x4000], 1)) == (0xC7, 0), "deferred inflate error")
        check(c.status(0x12, struct.pack("<I", 1))[0] != 0, "DEFL_END after an error")
        # a write beyond the size set by SPI_SET_PARAMS fails (0xC4) and surfaces at DEFL_END
        c.check_ok(0x0B, struct.pack("<IIIIII", 0, 1 << 20, 0x10000, 0x1000, 0x100, 0xFFFF))
        img = test_image(0x6000, 6)
        z = zlib.compress(img, 9)
        check(len(z) <= 0x4000, "test image must fit one block")
        c.check_ok(0x10, struct.pack("<IIII", len(img), 1, 0x4000, 0xFC000))
        check(c.status(0x11, *data_pkt(z, 0)) == (0, 0), "ACK before the write fails")
        check(c.status(0x12, struct.pack("<I", 1)) == (0xC4, 0), "deferred SPI error at END")
        # END before every announced byte: NOT_ENOUGH_DATA (0xC8); DATA without BEGIN: 0xC6
        c.check_ok(0x10, struct.pack("<IIII", len(img), 1, 0x4000, 0x10000))
        check(c.status(0x12, struct.pack("<I", 1)) == (0xC8, 0), "END before all data")
        check(c.status(0x04, struct.pack("<I", 1)) == (0xC8, 0), "still in flash mode")
        c.check_ok(0x10, struct.pack("<IIII", len(img), 1, 0x4000, 0x10000))
        c.check_ok(0x11, *data_pkt(z, 0))
        c.check_ok(0x12, struct.pack("<I", 1))
        check(c.status(0x11, *data_pkt(z, 0)) == (0xC6, 0), "DATA after END")
        # checksum and length errors are immediate
        c.check_ok(0x10, struct.pack("<IIII", len(img), 1, 0x4000, 0x10000))
        pkt, chk = data_pkt(z, 0)
        check(c.status(0x11, pkt, chk ^ 0x5A) == (0xC1, 0), "bad checksum 0xC1")
        check(c.status(0x11, pkt[:-1], chk) == (0xC0, 0), "length word mismatch 0xC0")
    finally:
        sim.stop()


def t_stub_faults():
    # nak with a stub code: 2 status bytes (code, 0)
    sim = Sim("--chip", "esp32", "--tcp", "0", "--fault", "nak:FLASH_DEFL_DATA:0xC1")
    try:
        c = stub_connect(sim)
        c.check_ok(0x10, struct.pack("<IIII", 0x1000, 1, 0x4000, 0x10000))
        _, d = c.command(0x11, *data_pkt(zlib.compress(b"\x00" * 0x1000), 0))
        check(d == b"\xc1\x00", "stub nak %r" % d)
    finally:
        sim.stop()
    # brown-out mid-transfer: the ROM banner, the ROM answers again (4 status bytes)
    sim = Sim("--chip", "esp32", "--tcp", "0", "--fault", "brownout:2")
    try:
        c = stub_connect(sim)
        img = test_image(0x40000, 7)
        z = zlib.compress(img, 9)
        c.check_ok(0x10, struct.pack("<IIII", len(img), (len(z) + 0x3FFF) // 0x4000, 0x4000, 0))
        c.check_ok(0x11, *data_pkt(z[:0x4000], 0))
        c.check_ok(0x11, *data_pkt(z[0x4000:0x8000], 1))
        end = time.monotonic() + 2.0
        while b"waiting for download" not in bytes(c.garbage) and time.monotonic() < end:
            c.read_frame(0.05)
        check(b"BROWNOUT" in bytes(c.garbage), "brownout banner %r" % bytes(c.garbage))
        c.status_len = 4
        syncs = c.sync()
        check(struct.unpack("<I", syncs[0][4:8])[0] != 0, "ROM after brown-out")
    finally:
        sim.stop()
    # drop-reply and noise in stub mode; hangup after a stub data block
    sim = Sim("--chip", "esp32", "--tcp", "0", "--fault", "drop-reply:20", "--fault", "noise:21")
    try:
        c = stub_connect(sim)  # about 6 requests in ROM mode for the synthetic stub upload
        sim.wait_event("stub")
        for _ in range(40):
            c.send(0x0A, struct.pack("<I", 0x40001000))
            if not c.drain(0.1):
                break
        else:
            raise Fail("no reply was dropped in stub mode")
        sim.wait_event("fault", pred=lambda e: e["fault"] == "drop-reply")
        check(c.read_reg(0x40001000) == 0x00F01D83, "stub answers after the dropped reply")
        sim.wait_event("fault", pred=lambda e: e["fault"] == "noise")
        c.read_frame(0.1)
        check(len(c.garbage) >= 20, "noise bytes outside frames")
    finally:
        sim.stop()
    sim = Sim("--chip", "esp32", "--tcp", "0", "--fault", "hangup:1", "--fault", "bitflip")
    try:
        c = stub_connect(sim)
        c.check_ok(0x10, struct.pack("<IIII", 0x1000, 1, 0x4000, 0x10000))
        c.send(0x11, *data_pkt(zlib.compress(b"\x00" * 0x1000), 0))
        sim.wait_event("disconnect")
        sim.wait_event("fault", pred=lambda e: e["fault"] == "bitflip")
    finally:
        sim.stop()


def change_baud_ok(c, new, old):
    """CHANGE_BAUDRATE: the reply comes at the old rate (docs/SIMULATOR.md "Baud rate")."""
    _, d = c.command(0x0F, struct.pack("<II", new, old))
    check(d[:2] == b"\x00\x00", "CHANGE_BAUDRATE status %r" % d)


def t_stub_baud_pty():
    # ROM form (second word 0) and stub form (second word = current rate) over a pty, where the
    # simulator takes the host's new rate from the command
    sim = Sim("--chip", "esp32", "--pty")
    try:
        c = connect(sim)
        change_baud_ok(c, 460800, 0)
        check(c.read_reg(0x40001000) == 0x00F01D83, "ROM at 460800")
        ev = sim.wait_event("change_baudrate")
        check(ev["baud"] == 460800 and ev["previous"] == 115200, "ROM change event %r" % ev)
        upload_stub(c, "esp32")
        change_baud_ok(c, 921600, 460800)
        check(c.read_reg(0x40001000) == 0x00F01D83, "stub at 921600")
        ev = sim.wait_event("change_baudrate", pred=lambda e: e.get("loader") == "stub")
        check(ev["actual"] == 921600, "stub real rate %r" % ev)
    finally:
        sim.stop()
    # legacy stub with a wrong "current" rate: its divider is off, the host (at the new rate)
    # reads garbage; with 0 the divider is 0 and the link is dead (docs/SIMULATOR.md "Flasher stub")
    for old, actual in ((230400, 460800), (0, 0)):
        sim = Sim("--chip", "esp32", "--pty")
        try:
            c = connect(sim)
            upload_stub(c, "esp32")
            change_baud_ok(c, 921600, old)
            ev = sim.wait_event("change_baudrate")
            check(ev["actual"] == actual, "real rate %r, want %d" % (ev, actual))
            c.send(0x0A, struct.pack("<I", 0x40001000))
            frames = [f for f in c.drain(0.3) if len(f) >= 8 and f[0] == 1 and f[1] == 0x0A]
            check(not frames, "old field %d: the reply must not be readable" % old)
        finally:
            sim.stop()
    # --strict-baud: espsim reads the host's rate from the pty (Linux reports the slave's termios
    # on the master), so a host that forgets its own tcsetattr reads garbage, as on hardware
    for stub in (False, True):
        for follow in (True, False):
            sim = Sim("--chip", "esp32", "--pty", "--strict-baud")
            try:
                c = connect(sim)
                if stub:
                    upload_stub(c, "esp32")
                change_baud_ok(c, 921600, 115200 if stub else 0)
                if follow:
                    c.link.set_baud(921600)  # espsim sees it when the next bytes arrive
                c.drain(0.05)
                c.send(0x0A, struct.pack("<I", 0x40001000))
                frames = [f for f in c.drain(0.3) if len(f) >= 8 and f[:2] == b"\x01\x0a"]
                what = "%s, host %s" % ("stub" if stub else "ROM", "follows" if follow else "forgets")
                check(bool(frames) == follow, "strict pty: %s: readable=%s" % (what, bool(frames)))
            finally:
                sim.stop()
    # ESP8266 ROM has no CHANGE_BAUDRATE; its stub has
    sim = Sim("--chip", "esp8266", "--pty")
    try:
        c = connect(sim, 2)
        c.send(0x0F, struct.pack("<II", 460800, 0))
        frames = c.drain(0.3)
        check(len(frames) == 8 and all(f[1] != 0x0F for f in frames), "ESP8266 ROM: unsupported")
        upload_stub(c, "esp8266")
        change_baud_ok(c, 460800, 115200)
        check(c.read_reg(0x40001000) == 0xFFF0C101, "ESP8266 stub at 460800")
    finally:
        sim.stop()


def _pyserial_reexec(case):
    """True when pyserial can be imported; otherwise re-runs `case` with another interpreter
    that has it (does not return), or returns False when none has."""
    try:
        import serial  # noqa: F401
        return True
    except ImportError:
        pass
    for py in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(py) and os.path.realpath(py) != os.path.realpath(sys.executable):
            r = subprocess.run([py, "-c", "import serial"], capture_output=True)
            if r.returncode == 0:  # run this case with the interpreter that has pyserial
                os.execv(py, [py, os.path.abspath(__file__), "--espsim", ESPSIM, case])
    return False


def _pyserial_or_skip(case):
    if not _pyserial_reexec(case):
        print("SKIP %s: pyserial not installed" % case)
        sys.exit(77)


class PyserialLink:
    def __init__(self, url):
        import serial
        self.s = serial.serial_for_url(url, baudrate=115200, timeout=0.05)

    def write(self, b):
        self.s.write(b)

    def read(self, timeout):
        self.s.timeout = timeout
        return self.s.read(max(1, self.s.in_waiting))

    def close(self):
        self.s.close()


def t_stub_baud_rfc2217():
    """pyserial's rfc2217:// client changes the host rate with SET-BAUDRATE, so espsim sees it:
    a host that follows CHANGE_BAUDRATE works, one that forgets reads garbage."""
    _pyserial_or_skip("stub_baud_rfc2217")
    for follow in (True, False):
        for stub in (False, True):
            sim = Sim("--chip", "esp32", "--rfc2217", "0")
            try:
                link = PyserialLink(sim.ready["port"])
                c = Client(link)
                c.sync()
                c.drain(0.05)
                if stub:
                    upload_stub(c, "esp32")
                change_baud_ok(c, 460800, 115200 if stub else 0)  # reply at the old rate
                if follow:
                    link.s.baudrate = 460800
                    sim.wait_event("host_baud", pred=lambda e: e["baud"] == 460800)
                time.sleep(0.06)  # esptool: 50 ms after the switch, then flush
                c.drain(0.05)
                c.garbage.clear()
                c.send(0x0A, struct.pack("<I", 0x40001000))
                frames = [f for f in c.drain(0.3) if len(f) >= 8 and f[:2] == b"\x01\x0a"]
                what = "%s host that %s" % ("stub" if stub else "ROM",
                                            "follows" if follow else "forgets")
                if follow:
                    check(frames and struct.unpack("<I", frames[0][4:8])[0] == 0x00F01D83,
                          "%s: no READ_REG reply at 460800" % what)
                else:
                    check(not frames, "%s: reply readable at the wrong rate" % what)
                link.close()
            finally:
                sim.stop()


def stub_write_model(image, z, offset, baud, blk=0x4000):
    """Expected duration of a stub compressed write under the timing model of docs/SIMULATOR.md "Timing",
    restated: wire time of every frame at `baud` (10 bits per byte, SLIP escapes counted), the
    stub ACKs a block when it starts on it, and writes it (just-in-time erase: a 64 KiB block
    when 16 sectors remain and it is aligned, else 45 ms sectors; 0.5 ms per 256-byte page)
    while the next block travels. Returns seconds from DEFL_BEGIN sent to DEFL_END's reply."""
    def wire(n):
        return n * 10.0 / baud

    def frame_len(payload):
        return len(slip(payload))

    nblk = (len(z) + blk - 1) // blk
    t = 0.0
    begin = struct.pack("<BBHI", 0, 0x10, 16, 0) + struct.pack("<IIII", len(image), nblk, blk,
                                                               offset)
    t += wire(frame_len(begin)) + wire(12)
    d = zlib.decompressobj()
    next_write, next_erase = offset, offset // 4096
    erase_left = (offset % 4096 + len(image) + 4095) // 4096
    done = 0.0
    for i in range(nblk):
        chunk = z[i * blk:(i + 1) * blk]
        pkt, _ = data_pkt(chunk, i)
        arrive = t + wire(frame_len(struct.pack("<BBHI", 0, 0x11, len(pkt), 0) + pkt))
        start = max(arrive, done)
        t = start + wire(12)  # the ACK reaches the host; it sends the next block
        out = len(d.decompress(chunk))
        w = 0.0
        if out:
            last = (next_write + out) // 4096
            while erase_left > 0 and next_erase <= last:
                if erase_left >= 16 and next_erase % 16 == 0:
                    w, next_erase, erase_left = w + 0.200, next_erase + 16, erase_left - 16
                else:
                    w, next_erase, erase_left = w + 0.045, next_erase + 1, erase_left - 1
            w += (out + 255) // 256 * 0.0005
            next_write += out
        done = start + w
    end = struct.pack("<BBHI", 0, 0x12, 4, 0) + struct.pack("<I", 1)
    arrive = t + wire(frame_len(end))
    return max(arrive, done) + wire(12)


def t_stub_realtime():
    sim = Sim("--chip", "esp32", "--tcp", "0", "--realtime")
    try:
        c = stub_connect(sim)
        change_baud_ok(c, 921600, 115200)
        time.sleep(0.05)
        c.drain(0.05)
        img = test_image(256 * 1024, 8)
        z = zlib.compress(img, 9)
        model = stub_write_model(img, z, 0x10000, 921600)
        t0 = time.monotonic()
        stub_defl_write(c, 0x10000, img)
        dt = time.monotonic() - t0
        floor = len(z) * 10 / 921600
        print("256 KiB (%d compressed) at 921600: %.3fs, model %.3fs, wire floor %.3fs"
              % (len(z), dt, model, floor))
        check(model * 0.9 <= dt <= model * 1.25 + 0.3,
              "stub write took %.2fs, model %.2fs" % (dt, model))
        t0 = time.monotonic()
        check(stub_md5(c, 0x10000, len(img)) == hashlib.md5(img).hexdigest(), "realtime MD5")
        check(time.monotonic() - t0 >= len(img) * 0.25e-6, "stub MD5 takes its modelled time")
    finally:
        sim.stop()


def find_esptool():
    """The real esptool, if any interpreter or PATH has it: (command prefix, major version)."""
    import shutil
    cands = [[py, "-m", "esptool"] for py in dict.fromkeys((sys.executable, "/usr/bin/python3"))
             if os.path.exists(py)]
    cands += [[p] for p in (shutil.which("esptool"), shutil.which("esptool.py")) if p]
    for cmd in cands:
        try:
            r = subprocess.run(cmd + ["version"], capture_output=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired):
            continue
        m = re.search(rb"(\d+)\.\d+", r.stdout)
        if r.returncode == 0 and m:
            return cmd, int(m.group(1)), r.stdout.decode(errors="replace").strip()
    return None, 0, ""


def t_esptool():
    """Espressif's esptool, unchanged, against espsim over a pty with its own stub: write_flash,
    read_flash, erase_region, verify_flash. Skipped (77) when esptool is not installed."""
    cmd, major, ver = find_esptool()
    if not cmd:
        print("SKIP esptool: esptool is not installed (`python3 -m esptool` not found; Debian 12 "
              "has no esptool package)")
        sys.exit(77)
    print("using %s (%s)" % (" ".join(cmd), ver.splitlines()[0] if ver else "?"))
    dash = (lambda s: s.replace("_", "-")) if major >= 5 else (lambda s: s)
    with tempfile.TemporaryDirectory() as td:
        img = test_image(0x12345, 9)
        img_path, rd_path = os.path.join(td, "app.bin"), os.path.join(td, "back.bin")
        with open(img_path, "wb") as f:
            f.write(img)
        sim = Sim("--chip", "esp32", "--pty", "--strict-baud")
        try:
            port = sim.ready["port"]

            def run(baud, *args):
                argv = cmd + ["--chip", "esp32", "--port", port, "--baud", str(baud),
                              "--before", dash("no_reset"), "--after", dash("no_reset")] + \
                    [dash(args[0])] + list(args[1:])
                r = subprocess.run(argv, capture_output=True, timeout=120)
                out = (r.stdout + r.stderr).decode(errors="replace")
                check(r.returncode == 0, "%s failed (%d):\n%s" % (" ".join(argv), r.returncode,
                                                                   out[-3000:]))
                return out

            out = run(115200, "write_flash", "0x10000", img_path)  # stub upload
            check("hash of data verified" in out.lower(),
                  "write_flash did not verify:\n" + out[-2000:])
            sim.wait_event("stub")
            # the stub keeps running (--after no_reset); esptool opens the port at 115200 (its
            # ROM rate), finds the stub by the SYNC value 0 and does not upload it again
            run(115200, "read_flash", "0x10000", str(len(img)), rd_path)
            with open(rd_path, "rb") as f:
                check(f.read() == img, "read_flash returned other data")
            run(115200, "erase_region", "0x20000", "0x2000")
            # last: CHANGE_BAUDRATE in the stub form (the stub then stays at 460800, so any
            # further esptool run, which starts at 115200, would fail as on hardware)
            run(460800, "verify_flash", "0x10000", img_path)
            sim.wait_event("change_baudrate", pred=lambda e: e.get("actual") == 460800)
            with sim.lock:
                stubs = [e for e in sim.events if e.get("event") == "stub"]
            check(len(stubs) == 1, "stub uploaded %d times" % len(stubs))
        finally:
            sim.stop()


TESTS = {
    "ready_pty": t_ready_pty,
    "ready_tcp": t_ready_tcp,
    "ready_rfc2217": t_ready_rfc2217,
    "sync": t_sync,
    "magic": t_magic,
    "mac_all": t_mac_all,
    "jedec": t_jedec,
    "flash_md5_esp32": t_flash_md5_esp32,
    "defl_md5_esp32": t_defl_md5_esp32,
    "unsupported_esp32": t_unsupported_esp32,
    "status_len": t_status_len,
    "rfc2217_reset": t_rfc2217_reset,
    "rfc2217_app": t_rfc2217_app,
    "app_print": t_app_print,
    "esp8266_erase_bug": t_esp8266_erase_bug,
    "faults": t_faults,
    "realtime": t_realtime,
    "pyserial_rfc2217": t_pyserial_rfc2217,
    "new_board": t_new_board,
    "stub_ohai": t_stub_ohai,
    "stub_write": t_stub_write,
    "stub_new": t_stub_new,
    "ram_app": t_ram_app,
    "watchdog": t_watchdog,
    "rfc2217_notify": t_rfc2217_notify,
    "stub_16mb": t_stub_16mb,
    "rom_garble": t_rom_garble,
    "usb_console": t_usb_console,
    "stub_erase_read": t_stub_erase_read,
    "stub_deferred": t_stub_deferred,
    "stub_faults": t_stub_faults,
    "stub_baud_pty": t_stub_baud_pty,
    "stub_baud_rfc2217": t_stub_baud_rfc2217,
    "stub_realtime": t_stub_realtime,
    "esptool": t_esptool,
}


def main():
    global ESPSIM
    ap = argparse.ArgumentParser()
    ap.add_argument("--espsim", required=True)
    ap.add_argument("tests", nargs="*")
    args = ap.parse_args()
    ESPSIM = args.espsim
    names = args.tests or list(TESTS)
    failed = 0
    for n in names:
        t0 = time.monotonic()
        try:
            TESTS[n]()
            print("PASS %s (%.2fs)" % (n, time.monotonic() - t0))
        except Fail as e:
            failed += 1
            print("FAIL %s: %s" % (n, e))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
