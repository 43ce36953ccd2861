#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Simulator conformance: espsim driven with the byte sequences Espressif's esptool sends, per
esptool version, through the ROM loader and then through each flasher stub, checking the replies
a real chip gives. Needs no esptool: the requests are rebuilt here from esptool's sources
(function names of esptool/loader.py and esptool/cmds.py are cited at each builder; the facts
are collected in docs/SIMULATOR.md "Conformance test"). Stdlib only; loopback TCP; bounded.

usage: test_conformance.py --espsim PATH VERSION...   (VERSION: 4.11, 4.12, 5.3)
"""
import argparse
import base64
import hashlib
import json
import os
import struct
import sys
import time
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import test_espsim as T  # noqa: E402  (Sim, links, SLIP client, synthetic stub files)

check, Fail = T.check, T.Fail

# What differs between the esptool versions for these sequences.
#   stub_begin_words: words of FLASH_(DEFL_)BEGIN sent to a stub. esptool <= 4.11 sends 4
#     (loader.py flash_begin(): the 5th "encrypted" word only for a ROM that
#     SUPPORTS_ENCRYPTED_FLASH); 4.12.0 (loader.py ~1013/1300) and 5.3.1 (~1117/1473) send the
#     5th word to every stub as well.
#   default_stub: the stub the version uploads by default (4.x stub_flasher/1 = legacy,
#     5.x stub_flasher/2 = esp-flasher-stub); both are exercised with every version.
VERSIONS = {
    "4.11": dict(stub_begin_words=4, default_stub="legacy"),
    "4.12": dict(stub_begin_words=5, default_stub="legacy"),
    "5.3": dict(stub_begin_words=5, default_stub="new"),
}

# Facts per chip (docs/SIMULATOR.md "Chips"): ROM status bytes, the ROM's FLASH_BEGIN words
# (esptool SUPPORTS_ENCRYPTED_FLASH: S2 and later), GET_SECURITY_INFO length, RTC watchdog
# CONFIG0 / write-protect registers of esptool's watchdog_reset().
CHIPS = {
    "esp8266": dict(status=2, rom_words=4, secinfo=0, wdt=None),
    "esp32": dict(status=4, rom_words=4, secinfo=0, wdt=None),
    "esp32s2": dict(status=4, rom_words=5, secinfo=12, wdt=(0x3F408094, 0x3F4080AC)),
    "esp32s3": dict(status=4, rom_words=5, secinfo=20, wdt=(0x60008098, 0x600080B0)),
    "esp32c3": dict(status=4, rom_words=5, secinfo=20, wdt=(0x60008090, 0x600080A8)),
    "esp32c6": dict(status=4, rom_words=5, secinfo=20, wdt=(0x600B1C00, 0x600B1C18)),
}

MAGIC_REG = 0x40001000  # loader.py CHIP_DETECT_MAGIC_REG_ADDR
ROM_BLOCK = 0x400  # loader.py FLASH_WRITE_SIZE (ROM)
STUB_BLOCK = 0x4000  # loader.py STUB_CLASS FLASH_WRITE_SIZE
RAM_BLOCK = 0x1800  # loader.py ESP_RAM_BLOCK
SECTOR = 0x1000  # loader.py FLASH_SECTOR_SIZE


class Esptool:
    """Requests exactly as esptool builds them (loader.py command(): <BBHI direction 0, opcode,
    length, checksum> + data, SLIP-framed), and esptool's reading of the answers
    (check_command(): the status is the last STATUS_BYTES_LENGTH bytes, its first byte 0 = ok)."""

    def __init__(self, client, chip, version):
        self.c, self.chip, self.v = client, chip, VERSIONS[version]
        self.stub = False

    # -- framing and status

    def status_len(self):
        return 2 if self.stub else CHIPS[self.chip]["status"]

    def check_command(self, op, data=b"", chk=0, resp_len=0, timeout=3.0):
        val, d = self.c.command(op, data, chk, timeout)
        sl = self.status_len()
        check(len(d) == resp_len + sl, "op 0x%02x: %d data bytes, want %d + %d status" %
              (op, len(d), resp_len, sl))
        check(d[resp_len] == 0, "op 0x%02x: status %s" % (op, d[resp_len:].hex()))
        return val, d[:resp_len]

    def status(self, op, data=b"", chk=0):
        _, d = self.c.command(op, data, chk)
        return d[-self.status_len()], d[-self.status_len() + 1]

    @staticmethod
    def checksum(data):  # loader.py checksum(): 0xEF xor every byte
        x = 0xEF
        for b in data:
            x ^= b
        return x

    # -- ROM and stub commands (loader.py)

    def sync(self):  # sync(): SYNC 07 07 12 20 + 32 x 55; the loader answers 8 times
        return self.c.sync()

    def read_reg(self, addr):  # read_reg(): <I addr>
        return self.check_command(0x0A, struct.pack("<I", addr))[0]

    def write_reg(self, addr, value, mask=0xFFFFFFFF, delay_us=0):  # write_reg(): <IIII>
        self.check_command(0x09, struct.pack("<IIII", addr, value, mask, delay_us))

    def flash_spi_attach(self, hspi_arg=0):
        # flash_spi_attach(): <I arg>, the ROM form adds <BBBB is_legacy 0 0 0>
        arg = struct.pack("<I", hspi_arg)
        if not self.stub:
            arg += struct.pack("BBBB", 0, 0, 0, 0)
        self.check_command(0x0D, arg)

    def flash_set_parameters(self, size):
        # flash_set_parameters(): fl_id 0, total size, 64 KiB block, 4 KiB sector, 256 page,
        # status mask 0xFFFF
        self.check_command(0x0B, struct.pack("<IIIIII", 0, size, 0x10000, 0x1000, 0x100, 0xFFFF))

    def change_baud(self, baud, current):
        # change_baud(): <II new, second>; second = the current rate for a stub, 0 for the ROM
        self.check_command(0x0F, struct.pack("<II", baud, current if self.stub else 0))

    def begin_words(self):
        return self.v["stub_begin_words"] if self.stub else CHIPS[self.chip]["rom_words"]

    def flash_begin(self, size, offset):
        # flash_begin(): <IIII erase_size, num_blocks, FLASH_WRITE_SIZE, offset> [+ <I encrypted>]
        blk = STUB_BLOCK if self.stub else ROM_BLOCK
        nblk = (size + blk - 1) // blk
        erase = size
        if self.chip == "esp8266" and not self.stub:
            erase = esp8266_erase_size(offset, size)  # ESP8266ROM.get_erase_size()
        p = struct.pack("<IIII", erase, nblk, blk, offset)
        if self.begin_words() == 5:
            p += struct.pack("<I", 0)
        self.check_command(0x02, p, timeout=10)
        return nblk

    def flash_block(self, data, seq, op=0x03):  # flash_block(): <IIII len, seq, 0, 0> + data
        self.check_command(op, struct.pack("<IIII", len(data), seq, 0, 0) + data,
                           self.checksum(data), timeout=10)

    def flash_finish(self, reboot=False, op=0x04):  # flash_finish(): <I int(not reboot)>
        self.check_command(op, struct.pack("<I", int(not reboot)))

    def flash_defl_begin(self, size, compsize, offset):
        # flash_defl_begin(): stub: the uncompressed size; ROM: erase blocks x FLASH_WRITE_SIZE
        blk = STUB_BLOCK if self.stub else ROM_BLOCK
        nblk = (compsize + blk - 1) // blk
        write_size = size if self.stub else (size + blk - 1) // blk * blk
        p = struct.pack("<IIII", write_size, nblk, blk, offset)
        if self.begin_words() == 5:
            p += struct.pack("<I", 0)
        self.check_command(0x10, p, timeout=10)
        return nblk, blk

    def flash_md5sum(self, addr, size):
        # flash_md5sum(): <IIII addr, size, 0, 0>; ROM answers 32 hex characters, a stub 16 bytes
        _, d = self.check_command(0x13, struct.pack("<IIII", addr, size, 0, 0),
                                  resp_len=16 if self.stub else 32, timeout=10)
        return d.hex() if self.stub else d.decode()

    def read_flash_slow(self, offset, length):
        # read_flash_slow(): READ_FLASH_SLOW <II addr, 64> per 64 bytes; 64 data bytes each
        out = b""
        while len(out) < length:
            n = min(64, length - len(out))
            _, d = self.check_command(0x0E, struct.pack("<II", offset + len(out), n), resp_len=64)
            out += d[:n]
        return out

    def read_flash(self, offset, length):
        # read_flash() (stub): <IIII offset, length, FLASH_SECTOR_SIZE, 64>; then data packets,
        # each acknowledged with <I total received>; then the raw MD5 of all data
        self.check_command(0xD2, struct.pack("<IIII", offset, length, SECTOR, 64))
        data = b""
        while len(data) < length:
            p = self.c.read_frame(3.0)
            check(p is not None, "READ_FLASH: no data packet after %d bytes" % len(data))
            data += p
            self.c.link.write(T.slip(struct.pack("<I", len(data))))
        digest = self.c.read_frame(3.0)
        check(digest == hashlib.md5(data).digest(), "READ_FLASH digest %r" % digest)
        return data

    def erase_flash(self):  # erase_flash(): no data
        self.check_command(0xD0, timeout=30)

    def erase_region(self, offset, size):  # erase_region(): <II offset, size>
        self.check_command(0xD1, struct.pack("<II", offset, size), timeout=30)

    def get_security_info(self):  # get_security_info(): no data
        return self.check_command(0x14, resp_len=CHIPS[self.chip]["secinfo"])[1]

    def run_stub(self, stub):
        # run_stub(): per segment mem_begin(<IIII size, blocks, ESP_RAM_BLOCK, offset>),
        # mem_block(<IIII len, seq, 0, 0> + data, checksum); mem_finish(<II int(entry == 0),
        # entry>); then the stub's unrequested "OHAI" frame
        for seg in ("text", "data"):
            if seg not in stub:
                continue
            blob = base64.b64decode(stub[seg])
            nblk = (len(blob) + RAM_BLOCK - 1) // RAM_BLOCK
            self.check_command(0x05, struct.pack("<IIII", len(blob), nblk, RAM_BLOCK,
                                                 stub[seg + "_start"]))
            for i in range(nblk):
                part = blob[i * RAM_BLOCK:(i + 1) * RAM_BLOCK]
                self.check_command(0x07, struct.pack("<IIII", len(part), i, 0, 0) + part,
                                   self.checksum(part))
        entry = stub["entry"]
        self.check_command(0x06, struct.pack("<II", int(entry == 0), entry))
        f = self.c.read_frame(3.0)
        check(f == b"OHAI", "no OHAI after run_stub: %r" % f)
        self.stub = True
        self.c.status_len = 2


def esp8266_erase_size(offset, size):
    """ESP8266ROM.get_erase_size(): what makes the ROM's erase bug erase just the data."""
    sectors_per_block = 16
    num_sectors = (size + SECTOR - 1) // SECTOR
    start_sector = offset // SECTOR
    head_sectors = sectors_per_block - (start_sector % sectors_per_block)
    if num_sectors < head_sectors:
        head_sectors = num_sectors
    if num_sectors < 2 * head_sectors:
        return (num_sectors + 1) // 2 * SECTOR
    return (num_sectors - head_sectors) * SECTOR


def image(size, seed):
    return T.test_image(size, seed)


def write_image_rom(e, offset, img, compress):
    """cmds.py write_flash() through the ROM: blocks of FLASH_WRITE_SIZE, the last one padded
    with 0xFF (uncompressed), no FLASH_END (that would leave the loader)."""
    if compress:
        z = zlib.compress(img, 9)
        nblk, blk = e.flash_defl_begin(len(img), len(z), offset)
        for i in range(nblk):
            e.flash_block(z[i * blk:(i + 1) * blk], i, op=0x11)
    else:
        nblk = e.flash_begin(len(img), offset)
        for i in range(nblk):
            b = img[i * ROM_BLOCK:(i + 1) * ROM_BLOCK]
            e.flash_block(b + b"\xff" * (ROM_BLOCK - len(b)), i)


def write_image_stub(e, offset, img, compress):
    """cmds.py write_flash() through a stub: 16 KiB blocks, then READ_REG of the magic word as
    the barrier esptool uses (the stub ACKs a block before writing it)."""
    if compress:
        z = zlib.compress(img, 9)
        nblk, blk = e.flash_defl_begin(len(img), len(z), offset)
        for i in range(nblk):
            e.flash_block(z[i * blk:(i + 1) * blk], i, op=0x11)
    else:
        nblk = e.flash_begin(len(img), offset)
        for i in range(nblk):
            b = img[i * STUB_BLOCK:(i + 1) * STUB_BLOCK]
            e.flash_block(b + b"\xff" * (STUB_BLOCK - len(b)), i)
    e.read_reg(MAGIC_REG)


def rom_phase(sim, e):
    chip = e.chip
    syncs = e.sync()
    check(len(syncs) == 8, "%s ROM: %d SYNC replies" % (chip, len(syncs)))
    check(all(struct.unpack("<I", f[4:8])[0] != 0 for f in syncs), "ROM SYNC value non-zero")
    check(all(len(f) == 8 + e.status_len() for f in syncs), "ROM SYNC reply length")
    e.c.drain(0.05)
    # detect_chip(): GET_SECURITY_INFO first; ESP8266/ESP32 ROMs lack it and answer with the
    # "unsupported command" frames (another opcode, status 1 / 0x05), esptool then reads the
    # magic word
    if CHIPS[chip]["secinfo"]:
        info = e.get_security_info()
        check(len(info) == CHIPS[chip]["secinfo"], "security info length")
    else:
        e.c.send(0x14)
        frames = e.c.drain(0.2)
        check(frames and all(f[1] != 0x14 and f[8] == 1 and f[9] == 0x05 for f in frames),
              "%s ROM GET_SECURITY_INFO: %r" % (chip, frames[:1]))
    check(e.read_reg(MAGIC_REG) == T.CHIPS[chip]["magic"], "magic word")
    if chip == "esp8266":
        # the ESP8266 ROM has FLASH_BEGIN/DATA/END, MEM_*, SYNC and registers only: a plain
        # write (the stub's MD5 checks it below)
        write_image_rom(e, 0x20000, image(0x1800, 11), False)
        return
    e.flash_spi_attach(0)
    e.flash_set_parameters(4 << 20)
    img = image(0x1C00, 12)
    write_image_rom(e, 0x20000, img, False)
    check(e.flash_md5sum(0x20000, len(img)) == hashlib.md5(img).hexdigest(), "ROM MD5 raw")
    img2 = image(0x3000 + 7, 13)
    write_image_rom(e, 0x30000, img2, True)
    check(e.flash_md5sum(0x30000, len(img2)) == hashlib.md5(img2).hexdigest(), "ROM MD5 defl")
    check(e.read_flash_slow(0x30000, 128) == img2[:128], "ROM READ_FLASH_SLOW")
    e.change_baud(460800, 115200)
    sim.wait_event("change_baudrate", pred=lambda ev: ev["baud"] == 460800)


def stub_phase(sim, e, kind):
    chip = e.chip
    with open(os.path.join(T.stub_dir(kind), chip + ".json")) as f:
        stub = json.load(f)
    e.run_stub(stub)
    ev = sim.wait_event("stub")
    check(ev.get("kind") == {"legacy": "legacy", "new": "esp-flasher-stub"}[kind],
          "stub identified as %r" % ev.get("kind"))
    check(e.read_reg(MAGIC_REG) == T.CHIPS[chip]["magic"], "stub READ_REG")
    cur = 460800 if chip != "esp8266" else 115200
    e.change_baud(921600, cur)
    sim.wait_event("change_baudrate", pred=lambda ev: ev.get("loader") == "stub")
    e.flash_spi_attach(0)
    e.flash_set_parameters(4 << 20)
    if chip == "esp8266":
        rom_img = image(0x1800, 11)
        check(e.flash_md5sum(0x20000, len(rom_img)) == hashlib.md5(rom_img).hexdigest(),
              "ESP8266 ROM write, read back by the stub")
    # write_flash: compressed and raw images, the stub's raw MD5 of each
    img = image(0x9000 + 3, 21)
    write_image_stub(e, 0x40000, img, True)
    check(e.flash_md5sum(0x40000, len(img)) == hashlib.md5(img).hexdigest(), "stub MD5 defl")
    raw = image(0x4800 + 5, 22)
    write_image_stub(e, 0x60000, raw, False)
    check(e.flash_md5sum(0x60000, len(raw)) == hashlib.md5(raw).hexdigest(), "stub MD5 raw")
    # end of write_flash() with a stub: flash_begin(0, 0) then flash_defl_finish(False)
    e.flash_begin(0, 0)
    e.flash_finish(False, op=0x12)
    # read_flash()
    check(e.read_flash(0x40000, 0x2345) == img[:0x2345], "stub READ_FLASH data")
    # erase_region() and erase_flash()
    e.erase_region(0x40000, 0x2000)
    check(e.flash_md5sum(0x40000, 0x2000) == hashlib.md5(b"\xff" * 0x2000).hexdigest(),
          "erased region")
    e.erase_flash()
    check(e.flash_md5sum(0x60000, 0x1000) == hashlib.md5(b"\xff" * 0x1000).hexdigest(),
          "erased chip")
    if CHIPS[chip]["secinfo"]:
        e.get_security_info()


def after_phase(sim, e, kind):
    """How esptool leaves the stub (main() --after): no_reset = soft_reset(True):
    flash_begin(0, 0) + flash_finish(True); ESP8266 soft_reset = RUN_USER_CODE; watchdog_reset()
    on the chips that have it."""
    chip = e.chip
    e.flash_begin(0, 0)
    e.flash_finish(True)
    e.c.drain(0.2)
    syncs = e.c.sync()
    value = struct.unpack("<I", syncs[0][4:8])[0]
    if kind == "legacy":  # the legacy stub reboots on FLASH_END(0): the ROM answers again
        check(value != 0, "%s: legacy stub after FLASH_END(0) should be the ROM" % chip)
        sim.wait_event("reset", pred=lambda ev: ev["reason"] == "flash_end")
        e.stub = False
        e.c.status_len = CHIPS[chip]["status"]
        return
    check(value == 0, "%s: esp-flasher-stub keeps running after FLASH_END(0)" % chip)
    e.c.drain(0.05)
    if chip == "esp8266":  # RUN_USER_CODE: no reply; this stub does nothing with it
        e.c.send(0xD3)
        check(e.read_reg(MAGIC_REG) == T.CHIPS[chip]["magic"], "stub after RUN_USER_CODE")
    elif CHIPS[chip]["wdt"]:
        cfg0, wprot = CHIPS[chip]["wdt"]
        e.write_reg(wprot, 0x50D83AA1)  # watchdog_reset(): unlock
        e.write_reg(cfg0 + 4, 5000)  # timeout
        e.write_reg(cfg0, (1 << 31) | (5 << 28) | (1 << 8) | 2)  # enable, stage 0 resets
        e.write_reg(wprot, 0)  # lock
        sim.wait_event("reset", pred=lambda ev: ev["reason"] == "watchdog", timeout=2)


def legacy_run_user_code(version):
    """ESP8266 with the legacy stub: soft_reset(False) sends RUN_USER_CODE (no reply) and the
    application starts."""
    sim = T.Sim("--chip", "esp8266", "--tcp", "0")
    try:
        e = Esptool(T.Client(T.open_link(sim), 2), "esp8266", version)
        e.sync()
        e.c.drain(0.05)
        with open(os.path.join(T.stub_dir("legacy"), "esp8266.json")) as f:
            e.run_stub(json.load(f))
        e.c.send(0xD3)
        sim.wait_event("reset", pred=lambda ev: ev["reason"] == "run_user_code")
    finally:
        sim.stop()


def run_version(version):
    for chip in CHIPS:
        for kind in ("legacy", "new"):
            sim = T.Sim("--chip", chip, "--tcp", "0")
            try:
                e = Esptool(T.Client(T.open_link(sim), CHIPS[chip]["status"]), chip, version)
                try:
                    rom_phase(sim, e)
                    stub_phase(sim, e, kind)
                    after_phase(sim, e, kind)
                except Fail as ex:
                    raise Fail("esptool %s, %s, %s stub: %s" % (version, chip, kind, ex))
            finally:
                sim.stop()
    legacy_run_user_code(version)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--espsim", required=True)
    ap.add_argument("versions", nargs="+", choices=sorted(VERSIONS))
    args = ap.parse_args()
    T.ESPSIM = args.espsim
    failed = 0
    for v in args.versions:
        t0 = time.monotonic()
        try:
            run_version(v)
            print("PASS esptool %s (%.2fs)" % (v, time.monotonic() - t0))
        except Fail as ex:
            failed += 1
            print("FAIL %s" % ex)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
