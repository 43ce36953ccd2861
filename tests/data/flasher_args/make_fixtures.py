#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# make_fixtures.py — writes the small images used by the flasher_args.json import fixtures
# (tests/unit/test_recipe.c). Owns: the .bin files under idf-*/ and encrypted/. Must not: write
# anything but tiny synthetic data (no real firmware). Run from this directory; output is
# deterministic, so re-running changes nothing.
import struct


def image(chip_id, payload, entry=0x40080000):
    """A minimal ESP32-family image (PROTOCOL.md §11): header, extended header with the chip ID,
    one segment, zero padding to offset 15 mod 16, XOR checksum byte."""
    hdr = struct.pack("<BBBBI", 0xE9, 1, 0x02, 0x20, entry)
    ext = struct.pack("<B3sHBHH4sB", 0xEE, b"\0\0\0", chip_id, 0, 0, 0xFFFF, b"\0" * 4, 0)
    seg = struct.pack("<II", 0x3FFB0000, len(payload)) + payload
    body = hdr + ext + seg
    cks = 0xEF
    for b in payload:
        cks ^= b
    pad = (len(body) | 15) - len(body)
    return body + b"\0" * pad + bytes([cks])


def data(seed, n):
    """Deterministic bytes that are not an image (first byte != 0xE9)."""
    out = bytearray()
    x = seed
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append((x >> 16) & 0xFF)
    out[0] = 0x5A
    return bytes(out)


def partition_table(seed):
    return bytes([0xAA, 0x50]) + data(seed, 94)


FILES = {
    "idf-v4.0/bootloader/bootloader.bin": image(0, data(1, 64)),
    "idf-v4.0/partition_table/partition-table.bin": partition_table(2),
    "idf-v4.0/hello-world.bin": image(0, data(3, 200), entry=0x400D0000),
    "idf-v5.x/bootloader/bootloader.bin": image(5, data(4, 80), entry=0x403C0000),
    "idf-v5.x/partition_table/partition-table.bin": partition_table(5),
    "idf-v5.x/ota_data_initial.bin": b"\xff" * 8192,
    "idf-v5.x/station.bin": image(5, data(6, 300), entry=0x42000000),
    "idf-v6.0/bootloader/bootloader.bin": image(9, data(7, 96), entry=0x403C8000),
    "idf-v6.0/partition_table/partition-table.bin": partition_table(8),
    "idf-v6.0/app-s3.bin": image(9, data(9, 256), entry=0x42000000),
    "idf-v6.0/storage.bin": data(10, 4096),
    "encrypted/bootloader/bootloader.bin": image(5, data(11, 48)),
    "encrypted/app.bin": image(5, data(12, 64)),
}

if __name__ == "__main__":
    import os
    for path, content in FILES.items():
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(content)
