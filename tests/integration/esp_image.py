# SPDX-License-Identifier: MIT
# esp_image.py — deterministic test data for the integration tests: synthetic bootloader images
# (PROTOCOL.md §11.1–11.3), payload images, and the test's OWN model of what must end up in flash
# (4-byte padding §4.5.2, header patching §11.4, size/mode/freq codes §12).
# Must not: ask espstation or espsim anything, or share code with them; it is the independent
# oracle the flash dumps are compared against.

import hashlib
import struct

SECTOR = 0x1000
MIB = 1024 * 1024

# Per-chip facts used by the oracle (PROTOCOL.md §5.3 chip IDs, §12 bootloader offsets).
CHIPS = {
    "esp8266": {"family": "esp8266", "boot_offset": 0x0, "chip_id": None},
    "esp32": {"family": "esp32", "boot_offset": 0x1000, "chip_id": 0},
    "esp32s3": {"family": "esp32", "boot_offset": 0x0, "chip_id": 9},
    "esp32c3": {"family": "esp32", "boot_offset": 0x0, "chip_id": 5},
}

# Segment load addresses that look like each chip's bootloader (DRAM, IRAM) and an entry point.
_BOOT_LAYOUT = {
    "esp8266": (0x40100004, [(0x40100000, 0x0A40), (0x3FFE8000, 0x0720), (0x3FFE8720, 0x0B10)]),
    "esp32": (0x40080400, [(0x3FFF0030, 0x0B54), (0x40078000, 0x0C2C), (0x40080400, 0x0A10)]),
    "esp32s3": (0x403C8A00, [(0x3FCD0000, 0x0A94), (0x403B6000, 0x0C18), (0x403BA000, 0x0B40)]),
    "esp32c3": (0x403CE000, [(0x3FCD5820, 0x0974), (0x403CC710, 0x0C04), (0x403CE710, 0x0B9C)]),
}

MODE_CODES = {"qio": 0, "qout": 1, "dio": 2, "dout": 3}
# Frequency codes for ESP8266, ESP32, ESP32-S3, ESP32-C3 (PROTOCOL.md §12).
FREQ_CODES = {"40m": 0x0, "26m": 0x1, "20m": 0x2, "80m": 0xF}
SIZE_CODES_ESP32 = {1 * MIB: 0, 2 * MIB: 1, 4 * MIB: 2, 8 * MIB: 3, 16 * MIB: 4}
SIZE_CODES_ESP8266 = {512 * 1024: 0, 256 * 1024: 1, 1 * MIB: 2, 2 * MIB: 3, 4 * MIB: 4}
# JEDEC capacity byte -> bytes (PROTOCOL.md §7.3, the subset the tests use).
JEDEC_CAPACITY = {0x14: 1 * MIB, 0x15: 2 * MIB, 0x16: 4 * MIB, 0x17: 8 * MIB, 0x18: 16 * MIB}


def prng_bytes(seed, n):
    """Deterministic pseudo-random bytes (SHA-256 in counter mode), stable across Python
    versions, so a failing run can be reproduced byte for byte."""
    out = bytearray()
    key = ("estn-integ:%s:" % seed).encode()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(key + counter.to_bytes(8, "little")).digest()
        counter += 1
    return bytes(out[:n])


def compressible_bytes(seed, n):
    """Text-like data that deflates well but is not a single repeated byte."""
    out = bytearray()
    line = 0
    while len(out) < n:
        out += ("%s line %08d: the quick brown fox flashes the lazy dog\n" % (seed, line)).encode()
        line += 1
    return bytes(out[:n])


def app_image(seed, size=1 * MIB):
    """The payload image: first half random, second half compressible. It starts with 0xE9 and
    a header-like byte pattern on purpose: written anywhere but the bootloader offset it must
    never be patched (PROTOCOL.md §11.4 rule 1)."""
    half = size // 2
    data = bytearray(prng_bytes(seed, half) + compressible_bytes(seed, size - half))
    data[0:4] = b"\xe9\x03\x01\x10"
    return bytes(data)


def size_code(chip, nbytes):
    table = SIZE_CODES_ESP8266 if CHIPS[chip]["family"] == "esp8266" else SIZE_CODES_ESP32
    return table[nbytes]


def jedec_size(jedec):
    """Flash size from a --flash-jedec value 0xMMTTCC (CC = capacity code)."""
    return JEDEC_CAPACITY[jedec & 0xFF]


def jedec_str(jedec):
    """The ready line / JSON spelling: manufacturer, type, capacity as six hex digits."""
    return "%06x" % jedec


def _checksum(data):
    c = 0xEF
    for b in data:
        c ^= b
    return c


def bootloader_image(chip, seed, mode="qout", size_nbytes=None, freq="26m", hash_appended=True,
                     trailer=b""):
    """A small but complete bootloader image for `chip` (PROTOCOL.md §11.1–11.3): magic 0xE9,
    three segments, ESP32-family extended header with the chip's ID, zero padding up to
    len % 16 == 15, the XOR checksum, and for ESP32-family the SHA-256 of everything before it
    when `hash_appended`. `trailer` is appended after the digest (merged-binary style)."""
    info = CHIPS[chip]
    entry, segs = _BOOT_LAYOUT[chip]
    if size_nbytes is None:
        size_nbytes = 1 * MIB if info["family"] == "esp32" else 512 * 1024
    hdr = struct.pack("<BBBBI", 0xE9, len(segs), MODE_CODES[mode],
                      (size_code(chip, size_nbytes) << 4) | FREQ_CODES[freq], entry)
    if info["family"] == "esp32":
        # WP pin disabled, default drive strengths, chip ID, min rev 0, min_rev_full 0,
        # max_rev_full 0xFFFF (no upper limit), reserved, hash-appended flag (§11.2).
        hdr += struct.pack("<BBBBHBHH4sB", 0xEE, 0, 0, 0, info["chip_id"], 0, 0, 0xFFFF,
                           b"\0" * 4, 1 if hash_appended else 0)
        assert len(hdr) == 24
    body = bytearray(hdr)
    seg_data_all = bytearray()
    for i, (addr, length) in enumerate(segs):
        assert length % 4 == 0
        data = prng_bytes("%s:boot:%s:%d" % (seed, chip, i), length)
        body += struct.pack("<II", addr, length) + data
        seg_data_all += data
    while len(body) % 16 != 15:
        body.append(0)
    body.append(_checksum(seg_data_all))
    if info["family"] == "esp32" and hash_appended:
        body += hashlib.sha256(body).digest()
    return bytes(body) + trailer


def parse_image(chip, data):
    """Our own parser: returns a dict with data_len (end of the checksum byte), hash_appended,
    chip_id, and valid (checksum right, digest right if appended, chip ID right), or None when
    the bytes do not even have an image's structure."""
    info = CHIPS[chip]
    if len(data) < 8 or data[0] != 0xE9:
        return None
    nseg = data[1]
    if nseg > 16:
        return None
    pos = 8
    chip_id = None
    hash_flag = False
    if info["family"] == "esp32":
        if len(data) < 24:
            return None
        chip_id = struct.unpack_from("<H", data, 12)[0]
        hash_flag = data[23] == 1
        pos = 24
    xor = 0xEF
    for _ in range(nseg):
        if pos + 8 > len(data):
            return None
        _addr, length = struct.unpack_from("<II", data, pos)
        pos += 8
        if length > 16 * MIB or pos + length > len(data):
            return None
        for b in data[pos:pos + length]:
            xor ^= b
        pos += length
    while pos % 16 != 15:
        pos += 1
    if pos >= len(data):
        return None
    checksum_ok = data[pos] == xor
    data_len = pos + 1
    valid = checksum_ok
    if info["family"] == "esp32":
        valid = valid and chip_id == info["chip_id"]
        if hash_flag:
            if data_len + 32 > len(data):
                return None
            digest = hashlib.sha256(data[:data_len]).digest()
            valid = valid and digest == data[data_len:data_len + 32]
    return {"data_len": data_len, "hash_appended": hash_flag, "chip_id": chip_id,
            "checksum_ok": checksum_ok, "valid": valid}


def pad4(data):
    """esptool pads every file with 0xFF to a multiple of 4 bytes (PROTOCOL.md §4.5.2)."""
    return data + b"\xff" * (-len(data) % 4)


def expected_written(chip, offset, data, mode="keep", size="keep", freq="keep",
                     detected_size=None):
    """The bytes espstation must write for one (offset, file): padded, and patched when the
    header-patching rule of PROTOCOL.md §11.4 applies. `size` is "keep", "detect" (use
    `detected_size` bytes) or a byte count."""
    out = bytearray(pad4(data))
    info = CHIPS[chip]
    if offset != info["boot_offset"] or (mode, size, freq) == ("keep", "keep", "keep"):
        return bytes(out)
    parsed = parse_image(chip, bytes(data))
    if parsed is None or not parsed["valid"]:
        return bytes(out)
    if mode != "keep":
        out[2] = MODE_CODES[mode]
    hi = out[3] >> 4
    lo = out[3] & 0xF
    if size != "keep":
        hi = size_code(chip, detected_size if size == "detect" else size)
    if freq != "keep":
        lo = FREQ_CODES[freq]
    out[3] = (hi << 4) | lo
    if info["family"] == "esp32" and parsed["hash_appended"]:
        n = parsed["data_len"]
        out[n:n + 32] = hashlib.sha256(bytes(out[:n])).digest()
    return bytes(out)


def expected_flash(flash_size, writes, base=None):
    """Whole-flash image after `writes` [(offset, bytes)] on an erased (0xFF) flash, or on top of
    `base` (bytes of a previous expected flash)."""
    img = bytearray(base) if base is not None else bytearray(b"\xff" * flash_size)
    for off, data in writes:
        img[off:off + len(data)] = data
    return bytes(img)


def first_difference(a, b):
    """(offset, count of differing bytes) or None — for readable failure messages."""
    if a == b:
        return None
    n = min(len(a), len(b))
    first = None
    count = abs(len(a) - len(b))
    step = 4096
    for base in range(0, n, step):
        x = a[base:base + step]
        y = b[base:base + step]
        if x != y:
            for i in range(len(x)):
                if x[i] != y[i]:
                    count += 1
                    if first is None:
                        first = base + i
    if first is None:
        first = n
    return first, count


def _self_test():
    for chip in CHIPS:
        img = bootloader_image(chip, "selftest")
        p = parse_image(chip, img)
        assert p is not None and p["valid"], chip
        patched = expected_written(chip, CHIPS[chip]["boot_offset"], img, mode="dio",
                                   size="detect", freq="80m", detected_size=4 * MIB)
        assert patched[2] == 2 and patched[3] == (size_code(chip, 4 * MIB) << 4 | 0xF)
        assert parse_image(chip, patched)["valid"], chip
        assert expected_written(chip, 0x10000, img, mode="dio") == img
    print("esp_image self-test ok")


if __name__ == "__main__":
    _self_test()
