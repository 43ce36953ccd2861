#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Self-tests of espsim's eFuses and security model through the serial protocol, the way espefuse
# and esptool drive a chip: program registers, GET_SECURITY_INFO, Secure Download Mode, encrypted
# writes against the espsecure vectors, the boot with flash encryption and Secure Boot v2, and
# the burn faults. Expected values are restated here from the sources named in
# docs/SIMULATOR.md "eFuses and security" (register map, Reed-Solomon code), not taken from the
# simulator. Loopback only; every wait is bounded. Uses test_espsim.py's client and process code.
import argparse
import hashlib
import json
import os
import signal
import struct
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_espsim as te  # noqa: E402
from test_espsim import Fail, Sim, check, connect, data_pkt  # noqa: E402

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "vectors",
                       "security")

# Controller bases (espefuse mem_definition.py) and the S2-and-later register offsets.
BASE = {"esp32s2": 0x3F41A000, "esp32s3": 0x60007000, "esp32c3": 0x60008800,
        "esp32c6": 0x600B0800, "esp32h2": 0x600B0800}
RD_OFF = [0x02C, 0x044, 0x05C, 0x07C, 0x09C, 0x0BC, 0x0DC, 0x0FC, 0x11C, 0x13C, 0x15C]
CONF, CMD, RS_ERR0 = 0x1CC, 0x1D4, 0x1C0
ESP32_BASE = 0x3FF5A000


def vec(name):
    with open(os.path.join(VECTORS, name), "rb") as f:
        return f.read()


# --------------------------------------------------------------------------------------------
# Reed-Solomon (44,32) as esptool's reedsolo RSCodec(12): GF(2^8) with 0x11D, roots 2^0..2^11


def _gf_mul(a, b):
    r = 0
    while b:
        if b & 1:
            r ^= a
        b >>= 1
        a <<= 1
        if a & 0x100:
            a ^= 0x11D
    return r


def rs_check(data):
    gen = [1]
    root = 1
    for _ in range(12):
        nxt = gen + [0]
        for j in range(len(gen)):
            nxt[j + 1] ^= _gf_mul(gen[j], root)
        gen = nxt
        root = _gf_mul(root, 2)
    buf = list(data) + [0] * 12
    for i in range(len(data)):
        c = buf[i]
        if c:
            for j in range(1, 13):
                buf[i + j] ^= _gf_mul(gen[j], c)
    return bytes(buf[len(data):])


class Efuses:
    """espefuse's register sequence for the S2-and-later controller (one block per burn)."""

    def __init__(self, c, chip):
        self.c, self.base = c, BASE[chip]

    def read_block(self, blk):
        n = 6 if blk <= 1 else 8
        return [self.c.read_reg(self.base + RD_OFF[blk] + 4 * i) for i in range(n)]

    def burn(self, blk, words, expect_reply=True, verify=True):
        words = list(words) + [0] * (8 - len(words))
        for i, w in enumerate(words):
            self.c.write_reg(self.base + 4 * i, w)
        if blk > 0:
            ck = rs_check(b"".join(struct.pack("<I", w) for w in words))
            for i in range(3):
                self.c.write_reg(self.base + 0x20 + 4 * i, struct.unpack("<I", ck[4 * i:4 * i + 4])[0])
        self.c.write_reg(self.base + CONF, 0x5A5A)
        if not expect_reply:
            self.c.send(0x09, struct.pack("<IIII", self.base + CMD, 2 | blk << 2, 0xFFFFFFFF, 0))
            return
        self.c.write_reg(self.base + CMD, 2 | blk << 2)
        check(self.c.read_reg(self.base + CMD) & 3 == 0, "PGM_CMD clears when the burn is done")
        self.reload(verify)

    def reload(self, verify=True):
        self.c.write_reg(self.base + CONF, 0x5AA5)
        self.c.write_reg(self.base + CMD, 1)
        if verify:  # (a burn that enables Secure Download Mode ends READ_REG access here)
            check(self.c.read_reg(self.base + CMD) & 3 == 0, "READ_CMD clears when done")

    def burn_key(self, idx, key32, purpose, xts=True):
        """burn-key: XTS keys go in byte-reversed (espefuse), then KEY_PURPOSE_idx."""
        data = key32[::-1] if xts else key32
        self.burn(4 + idx, struct.unpack("<8I", data))
        b0 = [0] * 6
        if idx < 2:
            b0[2] = purpose << (24 + 4 * idx)
        else:
            b0[3] = purpose << (4 * (idx - 2))
        self.burn(0, b0)


def start(chip, *extra, efuse_file=None):
    args = ["--chip", chip, "--tcp", "0"]
    if efuse_file:
        args += ["--efuse-file", efuse_file]
    sim = Sim(*args, *extra)
    return sim, connect(sim, 4)


def attach(c):
    c.check_ok(0x0D, struct.pack("<II", 0, 0))
    c.check_ok(0x0B, struct.pack("<IIIIII", 0, 4 * 1024 * 1024, 0x10000, 4096, 256, 0xFFFF))


def rom_write(c, offset, image, encrypted=0, compress=False, esp32=False):
    """ROM write; S2 and later send the 5th (encrypted) word, the ESP32 ROM takes 16 bytes."""
    import zlib
    blk = 0x400
    enc = b"" if esp32 else struct.pack("<I", encrypted)
    if compress:
        z = zlib.compress(image, 9)
        nblk = (len(z) + blk - 1) // blk
        c.check_ok(0x10, struct.pack("<IIII", len(image), nblk, blk, offset) + enc, timeout=5)
        for i in range(nblk):
            pkt, chk = data_pkt(z[i * blk:(i + 1) * blk], i)
            c.check_ok(0x11, pkt, chk)
        return
    nblk = (len(image) + blk - 1) // blk
    c.check_ok(0x02, struct.pack("<IIII", len(image), nblk, blk, offset) + enc, timeout=5)
    for i in range(nblk):
        chunk = image[i * blk:(i + 1) * blk]
        pkt, chk = data_pkt(chunk + b"\xff" * (blk - len(chunk)), i)
        c.check_ok(0x03, pkt, chk)


def dump(sim, path):
    with sim.lock:
        seen = sum(1 for ev in sim.events if ev.get("event") == "flash_dump")
    sim.proc.send_signal(signal.SIGUSR1)
    end = time.monotonic() + 5
    while time.monotonic() < end:
        with sim.lock:
            if sum(1 for ev in sim.events if ev.get("event") == "flash_dump") > seen:
                break
        time.sleep(0.02)
    else:
        raise Fail("no flash_dump event")
    with open(path, "rb") as f:
        return f.read()


def secinfo(c):
    _, out = c.check_ok(0x14, out_len=20)
    flags, cnt = struct.unpack("<IB", out[:5])
    return flags, cnt, list(out[5:11]), struct.unpack("<I", out[12:16])[0]


# --------------------------------------------------------------------------------------------
# tests


def t_efuse_regs():
    """Program/read registers, write-once, RS check on read, protections, file, new board."""
    with tempfile.TemporaryDirectory() as td:
        ef = os.path.join(td, "efuse.json")
        sim, c = start("esp32c3", "--mac", "60:55:f9:01:02:03", efuse_file=ef)
        try:
            check(te.read_mac(c, "esp32c3").hex(":") == "60:55:f9:01:02:03", "MAC via eFuse")
            e = Efuses(c, "esp32c3")
            check(e.read_block(3) == [0] * 8, "blank user block")
            e.burn(3, [0x11111111, 0x22222222, 0, 0, 0, 0, 0, 0x80000001])
            check(e.read_block(3)[:2] == [0x11111111, 0x22222222], "user block burnt")
            check(c.read_reg(e.base + RS_ERR0) == 0, "RS consistent: no error bits")
            check(c.read_reg(e.base) == 0, "program registers cleared after the burn")
            with open(ef) as f:
                saved = json.load(f)
            check(saved["chip"] == "esp32c3" and saved["blocks"][3]["words"][0] == "0x11111111",
                  "file rewritten after the burn")
            # write-once: a second burn ORs; its check bytes no longer match -> BLOCK3 flagged
            e.burn(3, [0x00000004])
            check(e.read_block(3)[0] == 0x11111115, "bits only go 0 -> 1")
            err = c.read_reg(e.base + RS_ERR0)
            check((err >> 8) & 7 != 0, "BLOCK3 error count set (0x%08x)" % err)
            # RD_DIS bit 0 hides BLOCK_KEY0 from the read registers; WR_DIS bit 23 freezes it
            e.burn(4, [0xCAFEF00D] + [0] * 7)
            check(e.read_block(4)[0] == 0xCAFEF00D, "key block readable")
            e.burn(0, [1 << 23, 1, 0, 0, 0, 0])
            check(e.read_block(4) == [0] * 8, "read-protected key block reads zeros")
            e.burn(4, [0xFFFFFFFF] * 8)
            with open(ef) as f:
                saved = json.load(f)
            check(saved["blocks"][4]["words"][0] == "0xcafef00d", "write-protected block unchanged")
        finally:
            sim.stop()
        # the state survives a restart (and the chip's reset)
        sim, c = start("esp32c3", "--mac", "60:55:f9:01:02:03", efuse_file=ef)
        try:
            e = Efuses(c, "esp32c3")
            check(e.read_block(3)[0] == 0x11111115, "eFuses persist across runs")
            check(te.read_mac(c, "esp32c3").hex(":") == "60:55:f9:01:02:03", "MAC from the file")
            sim.proc.send_signal(signal.SIGUSR2)  # new board: blank eFuses, next MAC
            sim.wait_event("new_board")
            c.drain(0.2)
            c.sync()
            c.drain(0.1)
            e = Efuses(c, "esp32c3")
            check(e.read_block(3) == [0] * 8, "a new board has blank eFuses")
            check(te.read_mac(c, "esp32c3").hex(":") == "60:55:f9:01:02:04", "new board's MAC")
        finally:
            sim.stop()
        # a file for another chip or a broken one is refused with a clear message
        with open(ef, "w") as f:
            f.write('{"chip": "esp32s3", "blocks": []}')
        p = te.subprocess.run([te.ESPSIM, "--chip", "esp32c3", "--tcp", "0", "--efuse-file", ef],
                              capture_output=True, timeout=10)
        check(p.returncode != 0 and b"esp32c3" in p.stderr, "wrong-chip file refused: %r" % p.stderr)
    # chips without an eFuse model refuse the option instead of ignoring it
    p = te.subprocess.run([te.ESPSIM, "--chip", "esp8266", "--tcp", "0", "--efuse-file",
                           "/nonexistent/efuse.json"], capture_output=True, timeout=10)
    check(p.returncode != 0 and b"no eFuse model" in p.stderr, "ESP8266: %r" % p.stderr)


def t_efuse_esp32():
    """ESP32: all blocks in one command, 3/4 coding (efuse_coding.json vectors)."""
    with open(os.path.join(VECTORS, "efuse_coding.json")) as f:
        v = json.load(f)["esp32_34"][1]
    sim, c = start("esp32")
    try:
        B = ESP32_BASE

        def burn():
            c.write_reg(B + 0xFC, 0x5A5A)
            c.write_reg(B + 0x104, 2)
            check(c.read_reg(B + 0x104) == 0, "ESP32 program command clears")
            c.write_reg(B + 0xFC, 0x5AA5)
            c.write_reg(B + 0x104, 1)

        c.write_reg(B + 0x1C + 6 * 4, 1)  # CODING_SCHEME = 1 (3/4)
        burn()
        check(c.read_reg(B + 6 * 4) & 3 == 1, "coding scheme burnt")
        for i, w in enumerate(v["words"]):
            c.write_reg(B + 0xD8 + 4 * i, int(w, 16))  # BLOCK3 write registers
        burn()
        data = bytes.fromhex(v["data"])
        got = b"".join(struct.pack("<I", c.read_reg(B + 0x78 + 4 * i)) for i in range(6))
        check(got == data, "3/4 block reads back decoded: %s" % got.hex())
        check(c.read_reg(B + 0x11C) == 0, "DEC_STATUS clean")
        # ESP32 ROM: no GET_SECURITY_INFO (unsupported-command answer, opcode not echoed)
        c.send(0x14)
        frames = c.drain(0.3)
        check(frames and all(f[1] != 0x14 for f in frames), "ESP32 ROM refuses GET_SECURITY_INFO")
    finally:
        sim.stop()


def t_secinfo():
    """GET_SECURITY_INFO reflects the burnt eFuses (flags, crypt count, key purposes)."""
    sim, c = start("esp32c3")
    try:
        flags, cnt, kp, chip_id = secinfo(c)
        check((flags, cnt, kp, chip_id) == (0, 0, [0] * 6, 5), "virgin C3: %r" % ((flags, cnt, kp),))
        e = Efuses(c, "esp32c3")
        b0 = [0] * 6
        b0[1] = 1 << 19 | 1 << 16          # DIS_PAD_JTAG, SOFT_DIS_JTAG = 1
        b0[2] = 1 << 18 | 1 << 22 | 4 << 24 | 9 << 28  # crypt cnt 1, REVOKE1, purposes 4 and 9
        b0[3] = 10 << 4 | 1 << 20 | 1 << 21  # KEY_PURPOSE_3 = 10, SECURE_BOOT_EN, AGGRESSIVE
        e.burn(0, b0)
        flags, cnt, kp, chip_id = secinfo(c)
        want = 1 | 2 | 1 << 4 | 1 << 6 | 1 << 7
        check(flags == want, "flags 0x%x, want 0x%x" % (flags, want))
        check(cnt == 1 and kp == [4, 9, 0, 10, 0, 0] and chip_id == 5, "cnt %d kp %r" % (cnt, kp))
    finally:
        sim.stop()
    sim, c = start("esp32s2")
    try:
        e = Efuses(c, "esp32s2")
        # DIS_DL_ICACHE/DCACHE, DIS_USB; the S2's own SOFT_DIS_JTAG w1[17], HARD_DIS_JTAG w1[18]
        e.burn(0, [0, 1 << 10 | 1 << 11 | 1 << 13 | 1 << 17 | 1 << 18, 0, 0, 0, 0])
        _, out = c.check_ok(0x14, out_len=12)
        flags = struct.unpack("<I", out[:4])[0]
        want = 1 << 6 | 1 << 7 | 1 << 8 | 1 << 9 | 1 << 10
        check(len(out) == 12 and flags == want, "S2: 12 bytes, flags 0x%x, want 0x%x" % (flags, want))
        # the S2's RS error registers are at +0x194/+0x198 (espefuse mem_definition)
        e.burn(3, [1])
        e.burn(3, [0, 0, 0, 0, 0, 0, 0, 0x80000000])
        check(c.read_reg(e.base + 0x194) >> 8 & 7 != 0, "S2 RD_RS_ERR0 at +0x194")
        check(c.read_reg(e.base + 0x1C0) == 0, "nothing at the S3's +0x1C0 on the S2")
    finally:
        sim.stop()
    # a hand-written --efuse-file may leave "rs" out: the blocks are consistent
    with tempfile.TemporaryDirectory() as td:
        ef = os.path.join(td, "efuse.json")
        blocks = [{"block": b, "words": ["0x0"] * (6 if b <= 1 else 8)} for b in range(11)]
        blocks[3]["words"][0] = "0x12345678"
        blocks[0]["words"][2] = "0x%x" % (1 << 18)  # SPI_BOOT_CRYPT_CNT = 1
        with open(ef, "w") as f:
            json.dump({"chip": "esp32c3", "blocks": blocks}, f)
        sim, c = start("esp32c3", efuse_file=ef)
        try:
            check(Efuses(c, "esp32c3").read_block(3)[0] == 0x12345678, "hand-written block loaded")
            check(c.read_reg(BASE["esp32c3"] + RS_ERR0) == 0, "rs computed: no error bits")
            check(secinfo(c)[1] == 1, "crypt counter from the file")
        finally:
            sim.stop()


def t_sdm():
    """Secure Download Mode: what the ROM refuses and what it still does."""
    with tempfile.TemporaryDirectory() as td:
        ef = os.path.join(td, "efuse.json")
        out = os.path.join(td, "flash.bin")
        sim, c = start("esp32s3", "--flash-out", out, efuse_file=ef)
        try:
            Efuses(c, "esp32s3").burn(0, [0, 0, 0, 0, 1 << 5, 0], verify=False)  # SDM
            c.send(0x0A, struct.pack("<I", 0x40001000))
            check(len(c.drain(0.3)) == 8, "SDM takes effect with the reload: READ_REG refused")
        finally:
            sim.stop()
        sim, c = start("esp32s3", "--flash-out", out, efuse_file=ef)
        try:
            flags, _, _, chip_id = secinfo(c)
            check(flags & 4 and chip_id == 9, "SDM flag in GET_SECURITY_INFO")
            refused = [(0x0A, struct.pack("<I", 0x40001000)),           # READ_REG
                       (0x09, struct.pack("<IIII", 0x3FF00000, 0, 0, 0)),  # WRITE_REG
                       (0x05, struct.pack("<IIII", 0x100, 1, 0x100, 0x40380000)),  # MEM_BEGIN
                       (0x10, struct.pack("<IIIII", 0x1000, 1, 0x400, 0x1000, 0)),  # DEFL_BEGIN
                       (0x13, struct.pack("<IIII", 0, 0x1000, 0, 0)),     # SPI_FLASH_MD5
                       (0x0E, struct.pack("<II", 0, 64))]                 # READ_FLASH_SLOW
            for op, data in refused:
                c.send(op, data)
                frames = c.drain(0.3)
                check(len(frames) == 8 and all(f[1] != op and f[-4:-2] == b"\x01\x05" for f in frames),
                      "SDM: op 0x%02x answered as unsupported (%d frames)" % (op, len(frames)))
            attach(c)
            image = os.urandom(4096)
            rom_write(c, 0x8000, image)
            c.check_ok(0x04, struct.pack("<I", 1))  # FLASH_END stay
            check(dump(sim, out)[0x8000:0x9000] == image, "SDM: plain write lands")
        finally:
            sim.stop()
        text = banner_after_reset(ef, "esp32s3")
        check("boot:0x23" in text and "wait uart download(secure mode)" in text
              and "waiting for download" not in text, "SDM banner: %r" % text)


def banner_after_reset(ef, chip):
    """The ROM banner after esptool's classic reset into download mode over RFC 2217."""
    sim = Sim("--chip", chip, "--rfc2217", "0", "--efuse-file", ef)
    try:
        link = te.open_link(sim)
        te.classic_reset(link)
        text = te.read_until(link, lambda d: b"boot:" in d and d.endswith(b"\r\n"), 3.0)
        text += te.read_for(link, 0.3)
        link.close()
        return text.decode(errors="replace")
    finally:
        sim.stop()


def t_download_disabled():
    with tempfile.TemporaryDirectory() as td:
        ef = os.path.join(td, "efuse.json")
        sim, c = start("esp32c3", efuse_file=ef)
        try:
            Efuses(c, "esp32c3").burn(0, [0, 0, 0, 0, 1, 0])  # DIS_DOWNLOAD_MODE
        finally:
            sim.stop()
        sim = Sim("--chip", "esp32c3", "--tcp", "0", "--efuse-file", ef)
        try:
            sim.wait_event("reset", pred=lambda e: e["mode"] == "download_disabled")
            link = te.open_link(sim)
            cl = te.Client(link, 4)
            cl.send(0x08, te.SYNC_DATA)
            check(cl.drain(0.5) == [], "no SYNC answer with download mode disabled")
            link.close()
        finally:
            sim.stop()
        text = banner_after_reset(ef, "esp32c3")
        check("boot:0x5" in text and "download" not in text.split("boot:0x5", 1)[1].split("\n", 1)[1],
              "download disabled: banner ends at the boot line: %r" % text)


XTS_CASES = [("esp32c3", "xts128_key.bin", "c3_xts128_0x10000.bin", 0x10000),
             ("esp32s3", "xts256_key.bin", "s3_xts256_0x20000.bin", 0x20000)]


def t_encrypted_write():
    """FLASH_BEGIN/FLASH_DEFL_BEGIN with encrypted = 1 store the espsecure ciphertext."""
    plain = vec("plain_app.bin")
    for chip, keyf, ctf, addr in XTS_CASES:
        for compress in (False, True):
            with tempfile.TemporaryDirectory() as td:
                out = os.path.join(td, "flash.bin")
                sim, c = start(chip, "--flash-out", out)
                try:
                    e = Efuses(c, chip)
                    key = vec(keyf)
                    if len(key) == 32:
                        e.burn_key(0, key, 4)  # XTS_AES_128_KEY
                    else:
                        e.burn_key(0, key[:32], 2)  # XTS_AES_256_KEY_1
                        e.burn_key(1, key[32:], 3)  # XTS_AES_256_KEY_2
                    attach(c)
                    rom_write(c, addr, plain, encrypted=1, compress=compress)
                    got = dump(sim, out)[addr:addr + len(plain)]
                    check(got == vec(ctf), "%s %s: flash holds the espsecure ciphertext" %
                          (chip, "compressed" if compress else "plain"))
                    rom_write(c, 0x80000, plain, encrypted=0)
                    check(dump(sim, out)[0x80000:0x80000 + len(plain)] == plain,
                          "encrypted = 0 writes plaintext")
                finally:
                    sim.stop()
    # blank eFuses: the all-zero key; what reads back is ciphertext, not the data (issue 12)
    with tempfile.TemporaryDirectory() as td:
        out = os.path.join(td, "flash.bin")
        sim, c = start("esp32c3", "--flash-out", out)
        try:
            attach(c)
            rom_write(c, 0x10000, plain, encrypted=1)
            got = dump(sim, out)[0x10000:0x10000 + len(plain)]
            check(got != plain and got[:16] != plain[:16], "blank eFuses: ciphertext stored")
            check(hashlib.md5(got).hexdigest() == te.rom_md5(c, 0x10000, len(plain)),
                  "MD5 reads the ciphertext")
        finally:
            sim.stop()


def esp32_burn_fe_key(c, key):
    """ESP32: BLOCK1 = the key byte-reversed (espefuse burn_key), FLASH_CRYPT_CONFIG = 0xF."""
    B = ESP32_BASE
    for i, w in enumerate(struct.unpack("<8I", key[::-1])):
        c.write_reg(B + 0x98 + 4 * i, w)
    c.write_reg(B + 0x1C + 5 * 4, 0xF << 28)
    c.write_reg(B + 0xFC, 0x5A5A)
    c.write_reg(B + 0x104, 2)
    c.write_reg(B + 0xFC, 0x5AA5)
    c.write_reg(B + 0x104, 1)


def t_stub_encrypted_write():
    """The stubs' encrypted paths: legacy FLASH_ENCRYPT_DATA (0xD4; also the ESP32's only way),
    esp-flasher-stub's encrypted word in FLASH_BEGIN."""
    plain = vec("plain_app.bin")
    cases = [("esp32", "legacy", "esp32_fe_key.bin", "esp32_aes256_0x10000.bin", 0x10000),
             ("esp32c3", "legacy", "xts128_key.bin", "c3_xts128_0x10000.bin", 0x10000),
             ("esp32c3", "new", "xts128_key.bin", "c3_xts128_0x10000.bin", 0x10000)]
    for chip, kind, keyf, ctf, addr in cases:
        with tempfile.TemporaryDirectory() as td:
            out = os.path.join(td, "flash.bin")
            sim, c = start(chip, "--flash-out", out)
            try:
                if chip == "esp32":
                    esp32_burn_fe_key(c, vec(keyf))
                else:
                    Efuses(c, chip).burn_key(0, vec(keyf), 4)
                te.upload_stub(c, chip, kind=kind)
                blk = 0x4000
                nblk = len(plain) // blk
                if kind == "legacy":
                    c.check_ok(0x02, struct.pack("<IIII", len(plain), nblk, blk, addr))
                    for i in range(nblk):
                        c.check_ok(0xD4, *data_pkt(plain[i * blk:(i + 1) * blk], i))
                else:
                    c.check_ok(0x02, struct.pack("<IIIII", len(plain), nblk, blk, addr, 1))
                    for i in range(nblk):
                        c.check_ok(0x03, *data_pkt(plain[i * blk:(i + 1) * blk], i))
                c.check_ok(0x04, struct.pack("<I", 1), timeout=5)
                got = dump(sim, out)[addr:addr + len(plain)]
                check(got == vec(ctf), "%s %s stub: flash holds the espsecure ciphertext" %
                      (chip, kind))
            finally:
                sim.stop()


def run_app(c, sim):
    """FLASH_END(1): the ROM runs the code in flash; returns the text the chip prints."""
    c.garbage.clear()
    c.check_ok(0x04, struct.pack("<I", 1))
    end = time.monotonic() + 1.5
    buf = bytes(c.garbage)  # text that came in the same read as the reply
    while time.monotonic() < end:
        buf += c.link.read(0.1)
    return buf.decode(errors="replace")


def t_secure_boot():
    """Secure Boot v2: a signed image whose key digest is burnt boots; others do not."""
    cases = [
        ("rsa ok", "c3_app_signed_rsa3072.bin", "sbv2_rsa3072_digest.bin", False, True),
        ("tampered", "c3_app_signed_rsa3072_tampered.bin", "sbv2_rsa3072_digest.bin", False, False),
        ("unsigned", "c3_app_unsigned.bin", "sbv2_rsa3072_digest.bin", False, False),
        ("wrong key", "c3_app_signed_ecdsa256.bin", "sbv2_rsa3072_digest.bin", False, False),
        ("ecdsa ok", "c3_app_signed_ecdsa256.bin", "sbv2_ecdsa256_digest.bin", False, True),
        ("revoked", "c3_app_signed_rsa3072.bin", "sbv2_rsa3072_digest.bin", True, False),
    ]
    for name, img, dig, revoke, boots in cases:
        sim, c = start("esp32c3", "--app-print", "station ready")
        try:
            e = Efuses(c, "esp32c3")
            e.burn_key(0, vec(dig), 9, xts=False)  # SECURE_BOOT_DIGEST0
            b0 = [0] * 6
            b0[3] = 1 << 20  # SECURE_BOOT_EN
            if revoke:
                b0[2] = 1 << 21  # SECURE_BOOT_KEY_REVOKE0
            e.burn(0, b0)
            attach(c)
            rom_write(c, 0, vec(img))  # the bootloader offset of the C3
            text = run_app(c, sim)
            ev = sim.wait_event("boot_check")
            if boots:
                check("station ready" in text and "verification succeeded" in text and ev["ok"],
                      "%s: should boot: %r" % (name, text[-200:]))
            else:
                check("station ready" not in text and "secure boot verification failed" in text
                      and not ev["ok"], "%s: must not boot: %r" % (name, text[-200:]))
        finally:
            sim.stop()
    # ESP32 (revision 3): ABS_DONE_1 with the RSA key digest in BLOCK2, bootloader at 0x1000
    for img, boots in (("c3_app_signed_rsa3072.bin", True), ("c3_app_signed_rsa3072_tampered.bin", False)):
        sim, c = start("esp32", "--app-print", "station ready")
        try:
            B = ESP32_BASE
            for i, w in enumerate(struct.unpack("<8I", vec("sbv2_rsa3072_digest.bin"))):
                c.write_reg(B + 0xB8 + 4 * i, w)  # BLOCK2 write registers
            c.write_reg(B + 0x1C + 6 * 4, 1 << 5)  # ABS_DONE_1
            c.write_reg(B + 0xFC, 0x5A5A)
            c.write_reg(B + 0x104, 2)
            c.write_reg(B + 0xFC, 0x5AA5)
            c.write_reg(B + 0x104, 1)
            attach(c)
            rom_write(c, 0x1000, vec(img), esp32=True)
            text = run_app(c, sim)
            check(("station ready" in text) == boots, "ESP32 %s: boots=%s: %r" % (img, boots, text[-160:]))
        finally:
            sim.stop()
    # Secure Boot off: the unsigned image just runs (today's behaviour)
    sim, c = start("esp32c3", "--app-print", "station ready")
    try:
        attach(c)
        rom_write(c, 0, vec("c3_app_unsigned.bin"))
        check("station ready" in run_app(c, sim), "unsecured chip runs an unsigned image")
    finally:
        sim.stop()


def t_flash_encryption_boot():
    """Crypt counter odd: the ROM decrypts with the burnt key; plaintext no longer boots."""
    img = vec("c3_app_unsigned.bin")
    for encrypted, boots in ((1, True), (0, False)):
        sim, c = start("esp32c3", "--app-print", "station ready")
        try:
            e = Efuses(c, "esp32c3")
            e.burn_key(0, vec("xts128_key.bin"), 4)
            e.burn(0, [0, 0, 1 << 18, 0, 0, 0])  # SPI_BOOT_CRYPT_CNT = 1
            attach(c)
            rom_write(c, 0, img + b"\xff" * (-len(img) % 16), encrypted=encrypted)
            text = run_app(c, sim)
            if boots:
                check("station ready" in text, "encrypted image boots: %r" % text[-200:])
            else:
                check("station ready" not in text and "invalid header" in text,
                      "plaintext on an encrypting chip does not boot: %r" % text[-200:])
        finally:
            sim.stop()


def t_efuse_faults():
    # a block that reads back wrong
    sim, c = start("esp32c3", "--fault", "efuse-bad-block:3")
    try:
        e = Efuses(c, "esp32c3")
        e.burn(3, [0x10] + [0] * 7)
        got = e.read_block(3)
        check(got[:2] == [0x10 ^ 0x01010101, 0x01010101], "bad block reads back wrong: %r" % got)
        err = c.read_reg(e.base + RS_ERR0)
        check((err >> 8) & 7 == 7 and (err >> 15) & 1, "too many to correct: ERR_NUM 7, FAIL (C3: bit 15)")
    finally:
        sim.stop()
    # hangup during a burn: the bits are burnt, the reply never comes, the link drops
    with tempfile.TemporaryDirectory() as td:
        ef = os.path.join(td, "efuse.json")
        sim, c = start("esp32c3", "--fault", "efuse-hangup:2", efuse_file=ef)
        try:
            e = Efuses(c, "esp32c3")
            e.burn(3, [1] + [0] * 7)
            e.burn(4, [0xABCD] + [0] * 7, expect_reply=False)
            check(c.drain(0.5) == [], "no reply to the burn that hung up")
            sim.wait_event("fault", pred=lambda ev: ev.get("fault") == "efuse-hangup")
            c2 = connect(sim, 4)
            e2 = Efuses(c2, "esp32c3")
            e2.reload()  # the reload the host never got to do
            check(e2.read_block(4)[0] == 0xABCD, "hangup: the block was burnt")
        finally:
            sim.stop()
    # brown-out during a burn: nothing burnt, the chip resets (banner, loader state lost)
    sim, c = start("esp32c3", "--fault", "efuse-brownout:1")
    try:
        e = Efuses(c, "esp32c3")
        e.burn(3, [7] + [0] * 7, expect_reply=False)
        sim.wait_event("reset", pred=lambda ev: ev["reason"] == "brownout")
        c.drain(0.3)
        c.sync()
        c.drain(0.1)
        check(Efuses(c, "esp32c3").read_block(3)[0] == 0, "brown-out: nothing burnt")
    finally:
        sim.stop()


TESTS = {name[2:]: fn for name, fn in globals().items() if name.startswith("t_")}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--espsim", required=True)
    ap.add_argument("test", choices=sorted(TESTS))
    a = ap.parse_args()
    te.ESPSIM = a.espsim
    try:
        TESTS[a.test]()
    except Fail as e:
        print("FAIL:", e)
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
