#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_flash.py — `espstation flash` against `espsim`, end to end: every chip over every
# transport writes a bootloader (header-patched, PROTOCOL.md §11.4), a small odd-sized blob and a
# 1 MiB image; the sim's flash dump must equal the test's own expected flash byte for byte.
# Must not: derive any expected value from espstation's output (esp_image.py is the oracle).
# Run one case: test_flash.py --build BUILD --case esp32-pty (--list prints the cases).

import hashlib
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import esp_image as img  # noqa: E402
import harness  # noqa: E402
from harness import (Sim, check, expect_failure, expect_success, main,  # noqa: E402
                     run_espstation)

CHIPS = ("esp8266", "esp32", "esp32s3", "esp32c3")
TRANSPORTS = ("pty", "tcp", "rfc2217")

# Each transport also exercises a different set of options, so that every header field and
# every option value is covered somewhere. jedec None = the sim's default flash.
VARIANTS = {
    "pty": {"mode": "dio", "size": "detect", "freq": "keep", "jedec": 0xEF4016,
            "extra": []},
    "tcp": {"mode": "qio", "size": "detect", "freq": "80m", "jedec": 0xEF4015,
            "extra": ["--before", "no_reset", "--after", "no_reset"], "explicit_chip": True},
    "rfc2217": {"mode": "dout", "size": "keep", "freq": "20m", "jedec": None,
                "extra": []},
}

# Distinct, fixed MACs per case: the reported MAC must be the sim's, not a constant.
MAC_PREFIX = {"esp8266": {"pty": "18:fe:34", "tcp": "ac:d0:74", "rfc2217": "5c:cf:7f"}}
DEFAULT_PREFIX = "24:0a:c4"

APP_OFFSET = 0x10000
BLOB_OFFSET = 0x8000
BLOB_SIZE = 3001  # not a multiple of 4: padding must show in the flash and in the MD5


def mac_for(chip, transport):
    prefix = MAC_PREFIX.get(chip, {}).get(transport, DEFAULT_PREFIX)
    n = CHIPS.index(chip) * 16 + TRANSPORTS.index(transport)
    return "%s:%02x:%02x:%02x" % (prefix, 0xA0 + n % 32, 0x5A, 0x10 + n)


def opt_args(mode, size, freq):
    args = []
    if mode != "keep":
        args += ["--flash-mode", mode]
    if size != "keep":
        args += ["--flash-size", size]
    if freq != "keep":
        args += ["--flash-freq", freq]
    return args


def as_int(v):
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str):
        try:
            return int(v, 0)
        except ValueError:
            return None
    return None


def check_identity(obj, sim, chip, mac):
    r = sim.ready
    check(r["chip"] == chip, "SIM: ready chip %r, expected %r" % (r["chip"], chip))
    if mac is not None:
        check(r["mac"] == mac, "SIM: ready mac %r, expected the --mac %r" % (r["mac"], mac))
    check(obj.get("chip") == chip, "HOST: chip %r, expected %r" % (obj.get("chip"), chip))
    check(obj.get("mac") == r["mac"], "HOST: mac %r, sim has %r" % (obj.get("mac"), r["mac"]))
    check(obj.get("flash_id") == r["flash_id"],
          "HOST: flash_id %r, sim has %r" % (obj.get("flash_id"), r["flash_id"]))
    fs = obj.get("flash_size")
    check(isinstance(fs, int) and not isinstance(fs, bool) and fs == r["flash_size"],
          "HOST: flash_size %r, sim has %r" % (fs, r["flash_size"]))


def check_images(obj, files, compressed_expect):
    """files: [(offset, raw bytes, expected written bytes, is_app)]. compressed_expect:
    'yes' (compressed_size must be smaller for the 1 MiB image), 'no' (must not be), None."""
    imgs = obj.get("images")
    check(isinstance(imgs, list) and len(imgs) == len(files),
          "HOST: images %r: expected a list of %d entries" % (imgs, len(files)))
    by_off = {}
    for e in imgs:
        check(isinstance(e, dict), "HOST: images entry %r is not an object" % (e,))
        off = as_int(e.get("offset"))
        check(off is not None, "HOST: images entry without a usable offset: %r" % (e,))
        by_off[off] = e
    for off, raw, written, is_app in files:
        e = by_off.get(off)
        check(e is not None, "HOST: no images entry for offset 0x%x: %r" % (off, imgs))
        want_md5 = hashlib.md5(written).hexdigest()
        check(str(e.get("md5", "")).lower() == want_md5,
              "HOST: images[0x%x].md5 %r, MD5 of the padded/patched data is %s"
              % (off, e.get("md5"), want_md5))
        size = as_int(e.get("size"))
        # The contract does not say whether size is before or after the 4-byte padding.
        check(size in (len(raw), len(written)),
              "HOST: images[0x%x].size %r, file is %d bytes (%d padded)"
              % (off, e.get("size"), len(raw), len(written)))
        csize = as_int(e.get("compressed_size"))
        if is_app and compressed_expect == "yes":
            check(csize is not None and 0 < csize < len(written),
                  "HOST: images[0x%x].compressed_size %r: the 1 MiB half-compressible image "
                  "must be sent compressed by default" % (off, e.get("compressed_size")))
        if compressed_expect == "no":
            check(csize is None or csize == 0 or csize >= len(raw),
                  "HOST: images[0x%x].compressed_size %r with --no-compress"
                  % (off, e.get("compressed_size")))
    dur = obj.get("duration_ms")
    check(isinstance(dur, int) and not isinstance(dur, bool) and dur >= 0,
          "HOST: duration_ms %r is not a non-negative integer" % (dur,))


def compare_flash(dump, expected, regions=()):
    """regions: [(name, offset, length)] to say where a difference lies."""
    check(len(dump) == len(expected),
          "SIM/HOST: flash dump is %d bytes, flash size is %d" % (len(dump), len(expected)))
    diff = img.first_difference(dump, expected)
    if diff is None:
        return
    off, count = diff
    where = "outside every image (should be erased 0xFF)"
    for name, start, length in regions:
        if start <= off < start + length:
            where = "in %s at 0x%x + 0x%x" % (name, start, off - start)
    check(False, "FLASH CONTENT: %d bytes differ, first at 0x%x, %s (dump %s, expected %s)"
          % (count, off, where, dump[off:off + 16].hex(), expected[off:off + 16].hex()))


def check_sim_writes(sim, files, compressed):
    """What the sim saw (its documented events, docs/SIMULATOR.md), read after it exited.
    compressed: offsets that must have been written with FLASH_DEFL_*, or None for "none may".
    ESP32-family: every image verified with SPI_FLASH_MD5 over exactly the written bytes
    (PROTOCOL.md §10: esptool always verifies; the ESP8266 ROM has no MD5)."""
    evs = sim.events()
    stub = any(e.get("event") == "jump" for e in evs)
    if sim.chip == "esp8266" and stub:
        compressed = ()  # a stub may compress on the ESP8266; the ROM cannot
    defl = {as_int(e.get("offset")) for e in evs if e.get("event") == "defl_begin"}
    if compressed is None:
        check(not defl, "HOST: compressed writes at %s although --no-compress / ESP8266 ROM"
              % sorted(hex(o) for o in defl))
    else:
        for off in compressed:
            check(off in defl, "HOST: image at 0x%x not written compressed (sim saw FLASH_DEFL_"
                  "BEGIN at %s)" % (off, sorted(hex(o) for o in defl)))
    if img.CHIPS[sim.chip]["family"] == "esp8266":
        return
    md5s = [(as_int(e.get("offset")), as_int(e.get("size")), str(e.get("md5", "")).lower())
            for e in evs if e.get("event") == "md5"]
    for off, _raw, written, _is_app in files:
        want = (off, len(written), hashlib.md5(written).hexdigest())
        check(want in md5s, "HOST: no SPI_FLASH_MD5 over 0x%x+%d with the image's MD5 %s "
              "(sim saw %r)" % (off, len(written), want[2], md5s))


def flash_case(chip, transport):
    v = VARIANTS[transport]

    def run(ctx):
        ctx.require_executables("espsim", "espstation")
        mac = mac_for(chip, transport)
        sim = Sim(ctx, chip, transport, mac=mac, jedec=v["jedec"])
        flash_size = sim.ready["flash_size"]
        if v["jedec"] is not None:
            check(flash_size == img.jedec_size(v["jedec"]),
                  "SIM: ready flash_size %r for JEDEC 0x%06x" % (flash_size, v["jedec"]))
            check(sim.ready["flash_id"] == img.jedec_str(v["jedec"]),
                  "SIM: ready flash_id %r for JEDEC 0x%06x" % (sim.ready["flash_id"], v["jedec"]))
        boot_off = img.CHIPS[chip]["boot_offset"]
        # ESP32-S3 bootloader carries bytes after the digest (merged-binary style, odd length):
        # they must be kept as they are, and padded (PROTOCOL.md §11.4).
        trailer = img.prng_bytes("trailer", 37) if chip == "esp32s3" else b""
        boot = img.bootloader_image(chip, "%s-%s" % (chip, transport), trailer=trailer)
        blob = img.prng_bytes("blob-%s-%s" % (chip, transport), BLOB_SIZE)
        app = img.app_image("app-%s-%s" % (chip, transport))
        p_boot = ctx.write_file("boot.bin", boot)
        p_blob = ctx.write_file("blob.bin", blob)
        p_app = ctx.write_file("app.bin", app)

        w_boot = img.expected_written(chip, boot_off, boot, v["mode"], v["size"], v["freq"],
                                      detected_size=flash_size)
        w_blob = img.expected_written(chip, BLOB_OFFSET, blob, v["mode"], v["size"], v["freq"],
                                      detected_size=flash_size)
        w_app = img.expected_written(chip, APP_OFFSET, app, v["mode"], v["size"], v["freq"],
                                     detected_size=flash_size)
        # Self-check of the test: the options really change the header, and the digest.
        check(w_boot[2:4] != boot[2:4], "TEST: options do not change the header")
        check(w_app == app, "TEST: the app image must not be patched")

        args = ["flash", "--port", sim.port, "--json"] + opt_args(v["mode"], v["size"], v["freq"])
        if v.get("explicit_chip"):
            args += ["--chip", chip]
        args += v["extra"]
        # Deliberately not sorted by offset.
        args += ["0x%x" % APP_OFFSET, p_app, "0x%x" % boot_off, p_boot,
                 "0x%x" % BLOB_OFFSET, p_blob]
        r = run_espstation(ctx, args, timeout=100)
        obj = expect_success(r)
        check_identity(obj, sim, chip, mac)
        files = [(boot_off, boot, w_boot, False), (BLOB_OFFSET, blob, w_blob, False),
                 (APP_OFFSET, app, w_app, True)]
        check_images(obj, files, "yes" if chip != "esp8266" else None)
        dump = sim.stop_and_dump()
        check_sim_writes(sim, files, [APP_OFFSET] if chip != "esp8266" else None)
        expected = img.expected_flash(flash_size, [(boot_off, w_boot), (BLOB_OFFSET, w_blob),
                                                   (APP_OFFSET, w_app)])
        compare_flash(dump, expected, [("bootloader", boot_off, len(w_boot)),
                                       ("blob", BLOB_OFFSET, len(w_blob)),
                                       ("app", APP_OFFSET, len(w_app))])

    return run


def case_no_compress(ctx):
    """--no-compress on an ESP32-family chip (plain FLASH_BEGIN/FLASH_DATA path), with only the
    frequency changed in the header."""
    ctx.require_executables("espsim", "espstation")
    chip = "esp32s3"
    mac = "7c:df:a1:00:0c:01"
    sim = Sim(ctx, chip, "pty", mac=mac, jedec=0xEF4016)
    flash_size = sim.ready["flash_size"]
    boot = img.bootloader_image(chip, "nocompress")
    app = img.app_image("app-nocompress")
    p_boot = ctx.write_file("boot.bin", boot)
    p_app = ctx.write_file("app.bin", app)
    w_boot = img.expected_written(chip, 0x0, boot, freq="40m", detected_size=flash_size)
    check(w_boot != boot, "TEST: --flash-freq 40m must change the header")
    r = run_espstation(ctx, ["flash", "--port", sim.port, "--json", "--no-compress",
                             "--flash-freq", "40m", "0x0", p_boot, "0x%x" % APP_OFFSET, p_app],
                       timeout=100)
    obj = expect_success(r)
    check_identity(obj, sim, chip, mac)
    files = [(0x0, boot, w_boot, False), (APP_OFFSET, app, app, True)]
    check_images(obj, files, "no")
    dump = sim.stop_and_dump()
    check_sim_writes(sim, files, None)
    compare_flash(dump, img.expected_flash(flash_size, [(0x0, w_boot), (APP_OFFSET, app)]),
                  [("bootloader", 0x0, len(w_boot)), ("app", APP_OFFSET, len(app))])


def case_invalid_boot_unpatched(ctx):
    """An image at the bootloader offset that starts with 0xE9 but is not a valid image (wrong
    checksum byte) is written unchanged even with --flash-mode (PROTOCOL.md §11.4 rule 3)."""
    ctx.require_executables("espsim", "espstation")
    chip = "esp32"
    sim = Sim(ctx, chip, "tcp", mac="24:0a:c4:0b:ad:01", jedec=0xEF4016)
    flash_size = sim.ready["flash_size"]
    boot = bytearray(img.bootloader_image(chip, "badsum"))
    parsed = img.parse_image(chip, bytes(boot))
    boot[parsed["data_len"] - 1] ^= 0x5A  # break the XOR checksum
    boot = bytes(boot)
    check(not img.parse_image(chip, boot)["valid"], "TEST: corrupted image still valid")
    w_boot = img.expected_written(chip, 0x1000, boot, mode="dio", size="detect",
                                  detected_size=flash_size)
    check(w_boot == boot, "TEST: invalid image must be left alone by the oracle")
    p_boot = ctx.write_file("boot.bin", boot)
    r = run_espstation(ctx, ["flash", "--port", sim.port, "--json", "--flash-mode", "dio",
                             "--flash-size", "detect", "0x1000", p_boot], timeout=60)
    obj = expect_success(r)
    check_images(obj, [(0x1000, boot, w_boot, False)], None)
    dump = sim.stop_and_dump()
    compare_flash(dump, img.expected_flash(flash_size, [(0x1000, w_boot)]),
                  [("bootloader", 0x1000, len(w_boot))])


def reflash_case(chip, transport):
    """Two espstation runs against one sim (the sim keeps its flash). Run 1 fills the app
    region with other random data and puts a marker right behind the app's end; run 2 writes
    the app (and, all options 'keep', an unpatched bootloader) over it. Every byte of the old
    data under the new images must be gone (erase not too short: NOR programming only clears
    bits) and the marker must survive (erase not too long). On the ESP8266 ROM this is the
    erase-size work-around of PROTOCOL.md §4.5.3; on the ESP32 ROM the exact size must be sent."""

    def run(ctx):
        ctx.require_executables("espsim", "espstation")
        mac = "18:fe:34:c0:ff:ee" if chip == "esp8266" else "24:0a:c4:c0:ff:ee"
        sim = Sim(ctx, chip, transport, mac=mac, jedec=0xEF4016)
        flash_size = sim.ready["flash_size"]
        boot_off = img.CHIPS[chip]["boot_offset"]
        old_boot = img.bootloader_image(chip, "reflash-old")
        old_app = img.prng_bytes("reflash-old-app", 1 * img.MIB)
        marker_off = APP_OFFSET + 1 * img.MIB
        marker = img.prng_bytes("reflash-marker", 8 * 1024)
        new_boot = img.bootloader_image(chip, "reflash-new")
        new_app = img.app_image("reflash-new-app")
        paths = {n: ctx.write_file(n + ".bin", d) for n, d in
                 (("old_boot", old_boot), ("old_app", old_app), ("marker", marker),
                  ("new_boot", new_boot), ("new_app", new_app))}
        r1 = run_espstation(ctx, ["flash", "--port", sim.port, "--json",
                                  "0x%x" % boot_off, paths["old_boot"],
                                  "0x%x" % APP_OFFSET, paths["old_app"],
                                  "0x%x" % marker_off, paths["marker"]], timeout=100)
        expect_success(r1)
        r2 = run_espstation(ctx, ["flash", "--port", sim.port, "--json",
                                  "0x%x" % APP_OFFSET, paths["new_app"],
                                  "0x%x" % boot_off, paths["new_boot"]], timeout=100)
        obj = expect_success(r2)
        check_identity(obj, sim, chip, mac)
        check_images(obj, [(boot_off, new_boot, new_boot, False),
                           (APP_OFFSET, new_app, new_app, True)], None)
        dump = sim.stop_and_dump()
        expected = img.expected_flash(flash_size, [(boot_off, old_boot), (APP_OFFSET, old_app),
                                                   (marker_off, marker)])
        expected = img.expected_flash(flash_size, [(boot_off, new_boot), (APP_OFFSET, new_app)],
                                      base=expected)
        compare_flash(dump, expected, [("new bootloader", boot_off, len(new_boot)),
                                       ("new app", APP_OFFSET, len(new_app)),
                                       ("run-1 marker", marker_off, len(marker))])

    return run


def case_rom_garble(ctx):
    """espsim --fault rom-garble:3: the ROM refuses compressed data block 3 with 0x07 and has
    counted it (a resend would get 0x05). espstation begins the image again once
    (docs/PROTOCOL.md §4.5.7): two FLASH_DEFL_BEGINs at the app's offset, the flash holds the
    image byte for byte and the device's MD5 over it is the image's."""
    ctx.require_executables("espsim", "espstation")
    chip = "esp32"
    sim = Sim(ctx, chip, "tcp", mac="24:0a:c4:9a:4b:03", jedec=0xEF4016,
              faults=("rom-garble:3",))
    flash_size = sim.ready["flash_size"]
    app = img.app_image("app-rom-garble")
    r = run_espstation(ctx, ["flash", "--port", sim.port, "--json",
                             "0x%x" % APP_OFFSET, ctx.write_file("app.bin", app)], timeout=100)
    obj = expect_success(r)
    check(obj.get("retries") == 1, "HOST: retries %r, expected 1 (the image begun again)"
          % (obj.get("retries"),))
    check("beginning the image at 0x10000 again" in r.err,
          "HOST: no log line about beginning the image again:\n%s" % r.err[-2000:])
    files = [(APP_OFFSET, app, app, True)]
    check_images(obj, files, "yes")
    dump = sim.stop_and_dump()
    faults = [e for e in sim.events() if e.get("event") == "fault"]
    check(any(e.get("fault") == "rom-garble" for e in faults),
          "SIM: the rom-garble fault never fired (events %r)" % faults)
    begins = [e for e in events_of(sim, "defl_begin") if as_int(e.get("offset")) == APP_OFFSET]
    check(len(begins) == 2, "HOST: %d FLASH_DEFL_BEGIN at 0x%x, expected 2 (begun again once)"
          % (len(begins), APP_OFFSET))
    check_sim_writes(sim, files, [APP_OFFSET])
    compare_flash(dump, img.expected_flash(flash_size, [(APP_OFFSET, app)]),
                  [("app", APP_OFFSET, len(app))])


# ---- the flasher stub, baud changes, read-flash, erase (issue 6) ----
# The stub files are synthetic (tests/data/mkstub.py: esptool's JSON format, random bytes):
# espsim checks the upload and then behaves as the stub does (docs/SIMULATOR.md).

MKSTUB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "mkstub.py")


def make_stub_dir(ctx, name="stubs", layout="v1"):
    out = ctx.path(name)
    r = subprocess.run([sys.executable, MKSTUB, out, "--layout", layout], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 0, "TEST: mkstub.py failed: %s" % r.stderr)
    return out


def strict_pty_sim(ctx, chip, mac, tag="sim", realtime=False):
    """A pty sim with --strict-baud (the host's termios rate must follow CHANGE_BAUDRATE): Sim
    has no option for extra arguments, so a one-line wrapper adds it."""
    wrapper = ctx.path("espsim-strict.sh")
    extra = "--strict-baud" + (" --realtime" if realtime else "")
    with open(wrapper, "w") as f:
        f.write("#!/bin/sh\nexec '%s' %s \"$@\"\n" % (os.path.join(ctx.build, "espsim"), extra))
    os.chmod(wrapper, 0o755)
    real = ctx.espsim
    ctx.espsim = wrapper
    try:
        return Sim(ctx, chip, "pty", mac=mac, jedec=0xEF4016, tag=tag)
    finally:
        ctx.espsim = real


def events_of(sim, name):
    return [e for e in sim.events() if e.get("event") == name]


def check_stub_writes(sim, files):
    """Stub behaviour seen by the sim: the stub started once per connect, every compressed
    image announced with its exact size in 16 KiB blocks and closed with FLASH_DEFL_END(1)."""
    check(events_of(sim, "stub"), "HOST: the stub never started (no 'stub' event)")
    begins = {as_int(e.get("offset")): e for e in events_of(sim, "defl_begin")}
    for off, _raw, written, _is_app in files:
        e = begins.get(off)
        if e is None:
            continue  # sent uncompressed (deflate did not shrink it)
        check(as_int(e.get("block_size")) == 0x4000,
              "HOST: stub write at 0x%x with block size %r, expected 0x4000" % (off, e))
        check(as_int(e.get("size")) == len(written),
              "HOST: stub FLASH_DEFL_BEGIN at 0x%x announced %r bytes, the image has %d"
              % (off, e.get("size"), len(written)))
    ends = events_of(sim, "defl_end") + events_of(sim, "flash_end")
    check(len(ends) >= len(files) and all(as_int(e.get("flag")) == 1 for e in ends),
          "HOST: expected FLASH_(DEFL_)END(1) after every image with the stub, sim saw %r"
          % ends)


def stub_flash_case(chip):
    def run(ctx):
        ctx.require_executables("espsim", "espstation")
        stubs = make_stub_dir(ctx)
        mac = "18:fe:34:5b:00:01" if chip == "esp8266" else "24:0a:c4:5b:00:%02x" % len(chip)
        sim = Sim(ctx, chip, "pty", mac=mac, jedec=0xEF4016)
        flash_size = sim.ready["flash_size"]
        boot_off = img.CHIPS[chip]["boot_offset"]
        boot = img.bootloader_image(chip, "stub-" + chip)
        blob = img.prng_bytes("stub-blob-" + chip, BLOB_SIZE)
        app = img.app_image("stub-app-" + chip)
        w_boot = img.expected_written(chip, boot_off, boot, "dio", "detect",
                                      detected_size=flash_size)
        w_blob = img.pad4(blob)
        files = [(boot_off, boot, w_boot, False), (BLOB_OFFSET, blob, w_blob, False),
                 (APP_OFFSET, app, app, True)]
        args = ["flash", "--port", sim.port, "--json", "--stub-dir", stubs, "--flash-mode",
                "dio", "--flash-size", "detect",
                "0x%x" % boot_off, ctx.write_file("boot.bin", boot),
                "0x%x" % BLOB_OFFSET, ctx.write_file("blob.bin", blob),
                "0x%x" % APP_OFFSET, ctx.write_file("app.bin", app)]
        obj = expect_success(run_espstation(ctx, args, timeout=100))
        check(obj.get("stub") is True, "HOST: JSON stub %r, expected true" % obj.get("stub"))
        check(obj.get("baud") == 115200, "HOST: JSON baud %r, expected 115200" % obj.get("baud"))
        check_identity(obj, sim, chip, mac)
        check_images(obj, files, "yes")  # the stub compresses on the ESP8266 too
        dump = sim.stop_and_dump()
        check_stub_writes(sim, files)
        check_sim_writes(sim, files, [APP_OFFSET])
        # the stub verifies on the ESP8266 too (raw MD5)
        md5s = {(as_int(e.get("offset")), as_int(e.get("size"))) for e in events_of(sim, "md5")}
        check((APP_OFFSET, len(app)) in md5s, "HOST: app not MD5-verified by the stub: %r" % md5s)
        check(not events_of(sim, "spi_attach"), "HOST: SPI_ATTACH sent to the stub")
        compare_flash(dump, img.expected_flash(flash_size, [(o, w) for o, _r, w, _a in files]),
                      [("bootloader", boot_off, len(w_boot)), ("blob", BLOB_OFFSET, len(w_blob)),
                       ("app", APP_OFFSET, len(app))])

    return run


def case_stub_read_flash(ctx):
    """read-flash with the stub (READ_FLASH, acknowledged packets, MD5) over raw TCP returns the
    sim's flash byte for byte; an unaligned range and 'all' too; without the stub the ROM's
    READ_FLASH_SLOW reads a small range."""
    ctx.require_executables("espsim", "espstation")
    stubs = make_stub_dir(ctx)
    sim = Sim(ctx, "esp32", "tcp", mac="24:0a:c4:5b:01:01", jedec=0xEF4016)
    app = img.app_image("read-app")
    expect_success(run_espstation(ctx, ["flash", "--port", sim.port, "--json", "--stub-dir", stubs,
                                        "--after", "no_reset", "--before", "no_reset",
                                        "0x%x" % APP_OFFSET, ctx.write_file("app.bin", app)],
                                  timeout=60))
    expected = img.expected_flash(sim.ready["flash_size"], [(APP_OFFSET, app)])
    for off, size, name in ((APP_OFFSET, len(app), "app"), (0xF123 - 0x123, 0x3456, "part"),
                            (0, None, "all")):
        out = ctx.path("read-%s.bin" % name)
        r = run_espstation(ctx, ["read-flash", "--port", sim.port, "--json", "--stub-dir", stubs,
                                 "--before", "no_reset", "--after", "no_reset", "0x%x" % off,
                                 "all" if size is None else "0x%x" % size, out], timeout=60)
        obj = expect_success(r)
        want = expected[off:] if size is None else expected[off:off + size]
        with open(out, "rb") as f:
            got = f.read()
        check(got == want, "HOST: read-flash %s: %d bytes, %s" % (
            name, len(got), "differs at 0x%x" % (img.first_difference(got, want) or (0, 0))[0]))
        check(obj.get("md5") == hashlib.md5(want).hexdigest(),
              "HOST: read-flash JSON md5 %r" % obj.get("md5"))
        check(obj.get("stub") is True, "HOST: read-flash did not use the stub")
        check(not os.path.exists(out + ".partial"), "HOST: %s.partial left behind" % out)
    check(len(events_of(sim, "read_flash_done")) == 3,
          "HOST: expected 3 completed READ_FLASH runs, sim saw %r" % events_of(sim, "read_flash_done"))
    # ROM: READ_FLASH_SLOW needs a chip that runs the ROM loader (the stub above still runs)
    sim2 = Sim(ctx, "esp32s3", "pty", mac="7c:df:a1:5b:01:02", jedec=0xEF4016, tag="sim2")
    out = ctx.path("rom-read.bin")
    obj = expect_success(run_espstation(ctx, ["read-flash", "--port", sim2.port, "--json",
                                              "0x0", "300", out], timeout=60))
    check(obj.get("stub") is False, "HOST: ROM read-flash used a stub?")
    with open(out, "rb") as f:
        check(f.read() == b"\xff" * 300, "HOST: ROM read-flash of blank flash is not 0xFF")
    check(not events_of(sim2, "read_flash"), "HOST: the ROM got a READ_FLASH")


def case_stub_erase(ctx):
    """erase OFFSET SIZE (stub ERASE_REGION) blanks exactly that region; erase --all blanks
    everything; erase --all without a stub fails with 'unsupported'."""
    ctx.require_executables("espsim", "espstation")
    stubs = make_stub_dir(ctx)
    sim = Sim(ctx, "esp32c3", "pty", mac="24:0a:c4:5b:02:01", jedec=0xEF4016)
    app = img.prng_bytes("erase-app", 64 * 1024)
    expect_success(run_espstation(ctx, ["flash", "--port", sim.port, "--json", "--stub-dir", stubs,
                                        "0x%x" % APP_OFFSET, ctx.write_file("app.bin", app)],
                                  timeout=60))
    obj = expect_success(run_espstation(ctx, ["erase", "--port", sim.port, "--json", "--stub-dir",
                                              stubs, "0x%x" % (APP_OFFSET + 0x3000), "0x2000"],
                                        timeout=60))
    check(obj.get("operation") == "erase", "HOST: erase JSON %r" % obj)
    out = ctx.path("back.bin")
    expect_success(run_espstation(ctx, ["read-flash", "--port", sim.port, "--json", "--stub-dir",
                                        stubs, "0x%x" % APP_OFFSET, "0x10000", out], timeout=60))
    want = app[:0x3000] + b"\xff" * 0x2000 + app[0x5000:]
    with open(out, "rb") as f:
        got = f.read()
    check(got == want, "FLASH CONTENT: after erasing 0x%x+0x2000 the read-back differs at 0x%x"
          % (APP_OFFSET + 0x3000, (img.first_difference(got, want) or (0, 0))[0]))
    regions = events_of(sim, "erase_region")
    check(regions and as_int(regions[-1].get("offset")) == APP_OFFSET + 0x3000,
          "HOST: no ERASE_REGION at 0x%x: %r" % (APP_OFFSET + 0x3000, regions))
    r = run_espstation(ctx, ["erase", "--port", sim.port, "--json", "--stub-dir", stubs, "0x1001",
                             "0x1000"], timeout=30)
    expect_failure(r, "bad_offset")
    expect_success(run_espstation(ctx, ["erase", "--port", sim.port, "--json", "--stub-dir",
                                        stubs, "--all"], timeout=60))
    dump = sim.stop_and_dump()
    check(dump == b"\xff" * len(dump), "FLASH CONTENT: not blank after erase --all")
    # a fresh chip without a stub cannot erase everything
    sim2 = Sim(ctx, "esp32", "pty", mac="24:0a:c4:5b:02:02", jedec=0xEF4016, tag="sim2")
    expect_failure(run_espstation(ctx, ["erase", "--port", sim2.port, "--json", "--all"],
                                  timeout=30), "unsupported", ["stub"])


def baud_case(transport, stub):
    """--baud 921600: CHANGE_BAUDRATE in the ROM or stub form, the host follows (a pty sim with
    --strict-baud and RFC 2217 garble a host that does not), the flash is right, the rate is
    reported; afterwards a second job at 115200 still connects. Raw TCP (ser2net raw, a terminal
    server's TCP mode) cannot change the far UART's rate: no CHANGE_BAUDRATE is sent at all, the
    job stays at 115200 and says so."""

    def run(ctx):
        ctx.require_executables("espsim", "espstation")
        chip = "esp32" if stub else "esp32s3"
        mac = "24:0a:c4:5b:03:%02x" % (TRANSPORTS.index(transport) * 2 + stub)
        if transport == "pty":
            sim = strict_pty_sim(ctx, chip, mac)
        else:
            sim = Sim(ctx, chip, transport, mac=mac, jedec=0xEF4016)
        flash_size = sim.ready["flash_size"]
        stub_args = ["--stub-dir", make_stub_dir(ctx)] if stub else []
        app = img.app_image("baud-%s-%d" % (transport, stub))
        p_app = ctx.write_file("app.bin", app)
        r = run_espstation(ctx, ["flash", "--port", sim.port, "--json", "--verbose",
                                 "--baud", "921600"] + stub_args + ["0x%x" % APP_OFFSET, p_app],
                           timeout=100)
        obj = expect_success(r)
        if transport == "tcp":
            check(not events_of(sim, "change_baudrate"),
                  "HOST: CHANGE_BAUDRATE sent over raw TCP, whose far UART cannot follow: %r"
                  % events_of(sim, "change_baudrate"))
            check(obj.get("baud") == 115200,
                  "HOST: JSON baud %r over raw TCP, expected 115200" % obj.get("baud"))
            check("cannot change its line rate: staying at 115200" in r.err,
                  "HOST: no info line about the fixed rate over raw TCP; stderr: %s"
                  % r.err[-1500:])
            check(obj.get("stub") is stub, "HOST: JSON stub %r" % obj.get("stub"))
            expect_success(run_espstation(ctx, ["flash", "--port", sim.port, "--json"] +
                                          stub_args + ["0x%x" % APP_OFFSET, p_app], timeout=100))
            dump = sim.stop_and_dump()
            compare_flash(dump, img.expected_flash(flash_size, [(APP_OFFSET, app)]),
                          [("app", APP_OFFSET, len(app))])
            return
        check(obj.get("baud") == 921600, "HOST: JSON baud %r, expected 921600" % obj.get("baud"))
        check(obj.get("stub") is stub, "HOST: JSON stub %r" % obj.get("stub"))
        check(obj.get("baud_fallbacks") == 0, "HOST: baud fallbacks %r" % obj.get("baud_fallbacks"))
        changes = events_of(sim, "change_baudrate")
        check(changes and as_int(changes[0].get("baud")) == 921600,
              "HOST: no CHANGE_BAUDRATE to 921600: %r" % changes)
        want_old = 115200 if stub else 0
        check(as_int(changes[0].get("old_field")) == want_old,
              "HOST: CHANGE_BAUDRATE second word %r, expected %d (%s form, PROTOCOL.md §9)"
              % (changes[0].get("old_field"), want_old, "stub" if stub else "ROM"))
        hb = [as_int(e.get("baud")) for e in events_of(sim, "host_baud")]
        check(921600 in hb, "HOST: the host never switched to 921600 (host_baud %r)" % hb)
        # a second job at the sync rate: a reset (RFC 2217) or the rate set back (pty)
        expect_success(run_espstation(ctx, ["flash", "--port", sim.port, "--json"] + stub_args +
                                      ["0x%x" % APP_OFFSET, p_app], timeout=100))
        dump = sim.stop_and_dump()
        compare_flash(dump, img.expected_flash(flash_size, [(APP_OFFSET, app)]),
                      [("app", APP_OFFSET, len(app))])

    return run


def case_no_stub(ctx):
    """--no-stub with a stub directory: ROM loader, 1 KiB blocks, no RAM download."""
    ctx.require_executables("espsim", "espstation")
    stubs = make_stub_dir(ctx, layout="v4.2")
    sim = Sim(ctx, "esp32c3", "pty", mac="24:0a:c4:5b:04:01", jedec=0xEF4016)
    app = img.app_image("nostub-app")
    obj = expect_success(run_espstation(ctx, ["flash", "--port", sim.port, "--json", "--stub-dir",
                                              stubs, "--no-stub", "0x%x" % APP_OFFSET,
                                              ctx.write_file("app.bin", app)], timeout=100))
    check(obj.get("stub") is False, "HOST: --no-stub but JSON stub %r" % obj.get("stub"))
    dump = sim.stop_and_dump()
    check(not events_of(sim, "mem_begin"), "HOST: RAM download despite --no-stub")
    blocks = {as_int(e.get("block_size")) for e in events_of(sim, "defl_begin")}
    check(blocks == {0x400}, "HOST: ROM writes with block sizes %r, expected 0x400" % blocks)
    compare_flash(dump, img.expected_flash(sim.ready["flash_size"], [(APP_OFFSET, app)]),
                  [("app", APP_OFFSET, len(app))])


def case_stub_version_choice(ctx):
    """A stub_flasher directory holding 1/ and 2/ (issue 12): laid out as esptool 4 (no version)
    the legacy stub 1/ runs, as esptool 5 (VERSION 5.3.1) esp-flasher-stub 2/; --stub-version
    chooses either explicitly. espsim tells the stubs apart by what was uploaded (its `stub`
    event's kind); the JSON names the file that ran (stub_name); the image is written each time."""
    ctx.require_executables("espsim", "espstation")
    v4 = make_stub_dir(ctx, "stubs4", layout="esptool4")
    v5 = make_stub_dir(ctx, "stubs5", layout="esptool5")
    sim = Sim(ctx, "esp32", "rfc2217", mac="24:0a:c4:5b:12:01", jedec=0xEF4016)
    app = img.app_image("stub-choice-app")
    p_app = ctx.write_file("app.bin", app)
    runs = [(v4, None, "legacy", "1/esp32.json"),
            (v5, None, "esp-flasher-stub", "2/esp32.json"),
            (v5, "1", "legacy", "1/esp32.json"),
            (v4, "esp-flasher-stub", "esp-flasher-stub", "2/esp32.json")]
    for d, pick, _kind, name in runs:
        args = ["flash", "--port", sim.port, "--json", "--stub-dir", d]
        if pick is not None:
            args += ["--stub-version", pick]
        obj = expect_success(run_espstation(ctx, args + ["0x%x" % APP_OFFSET, p_app],
                                            timeout=100))
        sn = obj.get("stub_name")
        check(obj.get("stub") is True and isinstance(sn, str) and sn.startswith(name),
              "HOST: %s --stub-version %s: stub %r, stub_name %r, expected %s..."
              % (os.path.basename(d), pick, obj.get("stub"), sn, name))
        if d == v5:
            check("esptool 5.3.1" in sn, "HOST: stub_name %r does not name esptool 5.3.1" % sn)
    bad = run_espstation(ctx, ["flash", "--port", sim.port, "--json", "--stub-dir", v4,
                               "--stub-version", "3", "0x%x" % APP_OFFSET, p_app], timeout=30)
    check(bad.status == 2 and "--stub-version" in bad.err,
          "HOST: --stub-version 3 must be a usage error naming the option:\n%s" % bad.describe())
    dump = sim.stop_and_dump()
    kinds = [e.get("kind") for e in events_of(sim, "stub")]
    check(kinds == [k for _d, _p, k, _n in runs],
          "SIM: stubs that ran %r, expected %r" % (kinds, [k for _d, _p, k, _n in runs]))
    compare_flash(dump, img.expected_flash(sim.ready["flash_size"], [(APP_OFFSET, app)]),
                  [("app", APP_OFFSET, len(app))])


def case_stub_v42_layout_and_skip(ctx):
    """A stub directory in the esptool 4.2-4.7 layout (stub_flasher_32.json); then
    --skip-unchanged: the same images again are compared, not written."""
    ctx.require_executables("espsim", "espstation")
    stubs = make_stub_dir(ctx, layout="v4.2")
    sim = Sim(ctx, "esp32", "tcp", mac="24:0a:c4:5b:05:01", jedec=0xEF4016)
    app = img.app_image("skip-app")
    blob = img.prng_bytes("skip-blob", BLOB_SIZE)
    args = ["flash", "--port", sim.port, "--json", "--stub-dir", stubs, "--skip-unchanged",
            "0x%x" % APP_OFFSET, ctx.write_file("app.bin", app),
            "0x%x" % BLOB_OFFSET, ctx.write_file("blob.bin", blob)]
    obj = expect_success(run_espstation(ctx, args, timeout=100))
    check(obj.get("stub") is True, "HOST: stub_flasher_32.json not used")
    check(not any(i.get("skipped") for i in obj["images"]), "HOST: blank flash but skipped")
    n_begin = len(events_of(sim, "defl_begin")) + len(events_of(sim, "flash_begin"))
    obj = expect_success(run_espstation(ctx, args, timeout=100))
    check(all(i.get("skipped") is True and i.get("verified") is True for i in obj["images"]),
          "HOST: second run did not skip the unchanged images: %r" % obj["images"])
    n_begin2 = len(events_of(sim, "defl_begin")) + len(events_of(sim, "flash_begin"))
    check(n_begin2 == n_begin, "HOST: skipped images were written anyway")
    dump = sim.stop_and_dump()
    compare_flash(dump, img.expected_flash(sim.ready["flash_size"], [
        (APP_OFFSET, app), (BLOB_OFFSET, img.pad4(blob))]), [("app", APP_OFFSET, len(app))])


def case_stub_broken_file(ctx):
    """A malformed stub file for the chip: stub_failed, naming the file; a directory without a
    file for the chip: the ROM loader."""
    ctx.require_executables("espsim", "espstation")
    stubs = ctx.path("stubs")
    os.makedirs(stubs)
    with open(os.path.join(stubs, "esp32.json"), "w") as f:
        f.write('{"text": "AAAA", "entry": 1}')
    with open(os.path.join(stubs, "esp32c3.json"), "w") as f:
        f.write('{"text": "AAAA", "entry": 1}')
    sim = Sim(ctx, "esp32", "pty", mac="24:0a:c4:5b:06:01", jedec=0xEF4016)
    p_app = ctx.write_file("app.bin", img.prng_bytes("broken", 4096))
    expect_failure(run_espstation(ctx, ["flash", "--port", sim.port, "--json", "--stub-dir", stubs,
                                        "0x10000", p_app], timeout=60),
                   "stub_failed", ["esp32.json", "text_start"], ["stub"])
    os.remove(os.path.join(stubs, "esp32.json"))
    obj = expect_success(run_espstation(ctx, ["flash", "--port", sim.port, "--json", "--stub-dir",
                                              stubs, "0x10000", p_app], timeout=60))
    check(obj.get("stub") is False, "HOST: no esp32 stub, yet JSON stub %r" % obj.get("stub"))


def case_usb_otg(ctx):
    """ESP32-S3 on its native USB-OTG port (espsim --usb-otg refuses blocks above 0x800 bytes,
    PROTOCOL.md §4.3): the stub is uploaded and writes in 0x800-byte blocks and the flash is right;
    an ESP32-C3 on USB-Serial/JTAG (--usb-serial-jtag) flashes as usual in ROM mode."""
    ctx.require_executables("espsim", "espstation")
    stubs = make_stub_dir(ctx)
    sim = Sim(ctx, "esp32s3", "pty", mac="7c:df:a1:0b:07:01", jedec=0xEF4016, extra=["--usb-otg"])
    app = img.app_image("usb-otg-app", 200 * 1024)
    r = run_espstation(ctx, ["flash", "--port", sim.port, "--json", "--verbose", "--stub-dir",
                             stubs, "0x%x" % APP_OFFSET, ctx.write_file("app.bin", app)],
                       timeout=100)
    obj = expect_success(r)
    check(obj.get("stub") is True, "HOST: the stub did not run over USB-OTG")
    check("USB-OTG" in r.err, "HOST: no info line about USB-OTG; stderr: %s" % r.err[-1500:])
    dump = sim.stop_and_dump()
    refused = events_of(sim, "usb_block_refused")
    check(not refused, "HOST: blocks above 0x800 bytes sent over USB-OTG: %r" % refused)
    blocks = {as_int(e.get("block_size")) for e in events_of(sim, "defl_begin") +
              events_of(sim, "flash_begin")}
    check(blocks == {0x800}, "HOST: stub writes over USB-OTG with block sizes %r" % blocks)
    compare_flash(dump, img.expected_flash(sim.ready["flash_size"], [(APP_OFFSET, app)]),
                  [("app", APP_OFFSET, len(app))])
    sim2 = Sim(ctx, "esp32c3", "pty", mac="24:0a:c4:0b:07:02", jedec=0xEF4016, tag="sim2",
               extra=["--usb-serial-jtag"])
    expect_success(run_espstation(ctx, ["flash", "--port", sim2.port, "--json", "0x%x" % APP_OFFSET,
                                        ctx.path("app.bin")], timeout=100))
    compare_flash(sim2.stop_and_dump(), img.expected_flash(sim2.ready["flash_size"],
                                                           [(APP_OFFSET, app)]),
                  [("app", APP_OFFSET, len(app))])


# ---- the post-flash test (recipe "test", flash --test-expect): after the hard reset the board
# runs its application, whose output must contain the expected text. espsim --app-print says it
# once per application start (docs/SIMULATOR.md); RFC 2217 carries the reset lines.

READY = "I (312) app: station ready"


def test_images(ctx, chip, tag):
    """A valid bootloader (so that the sim's ROM boots the application) and an app."""
    boot_off = img.CHIPS[chip]["boot_offset"]
    boot = img.bootloader_image(chip, "post-test-" + tag)
    app = img.app_image("post-test-app-" + tag, 64 * 1024)
    return boot_off, boot, app, ["0x%x" % boot_off, ctx.write_file("boot.bin", boot),
                                 "0x%x" % APP_OFFSET, ctx.write_file("app.bin", app)]


def post_test_case(chip, baud):
    """Pass: flashed (at `baud`), reset, the application prints the expected line at 115200
    (the ESP8266's ROM log at 74880 before it): JSON test.passed, its output kept."""

    def run(ctx):
        ctx.require_executables("espsim", "espstation")
        sim = Sim(ctx, chip, "rfc2217", mac=mac_for(chip, "rfc2217"), jedec=0xEF4016,
                  extra=["--app-period", "0", "--app-print", "I (300) app: init",
                         "--app-print", READY])
        boot_off, boot, app, files = test_images(ctx, chip, chip)
        r = run_espstation(ctx, ["flash", "--port", sim.port, "--json", "--baud", str(baud),
                                 "--test-expect", "station ready", "--test-timeout", "8000"]
                           + files, timeout=100)
        obj = expect_success(r)
        t = obj.get("test")
        check(isinstance(t, dict) and t.get("ran") is True and t.get("passed") is True,
              "HOST: JSON test %r" % (t,))
        check(t.get("expect") == "station ready" and t.get("baud") == 115200,
              "HOST: JSON test %r" % (t,))
        out = t.get("output") or ""
        check(READY in out and "I (300) app: init\n" in out,
              "HOST: test output %r lacks the application's lines" % out[-500:])
        check("\r" not in out and len(out) <= 2048, "HOST: test output not cleaned/limited")
        check(isinstance(obj.get("state_ms", {}).get("test"), (int, float)),
              "HOST: no time in state test: %r" % obj.get("state_ms"))
        dump = sim.stop_and_dump()
        resets = [e.get("mode") for e in events_of(sim, "reset")]
        check(resets and resets[-1] == "app", "SIM: the last reset was %r, not into the app"
              % resets[-1:])
        check(events_of(sim, "app_print"), "SIM: the application never printed its lines")
        w_boot = img.expected_written(chip, boot_off, boot, detected_size=sim.ready["flash_size"])
        compare_flash(dump, img.expected_flash(sim.ready["flash_size"],
                                               [(boot_off, w_boot), (APP_OFFSET, app)]),
                      [("bootloader", boot_off, len(w_boot)), ("app", APP_OFFSET, len(app))])

    return run


def case_post_test_failed(ctx):
    """The application says something else: test_failed after the timeout, in state test, the
    output in the JSON (and the board flashed and verified all the same)."""
    ctx.require_executables("espsim", "espstation")
    sim = Sim(ctx, "esp32", "rfc2217", mac="24:0a:c4:7e:57:02", jedec=0xEF4016,
              extra=["--app-period", "0", "--app-print", "E (310) app: sensor not found"])
    _boot_off, _boot, _app, files = test_images(ctx, "esp32", "failed")
    r = run_espstation(ctx, ["flash", "--port", sim.port, "--json", "--test-expect",
                             "station ready", "--test-timeout", "1500"] + files, timeout=100)
    obj = expect_failure(r, "test_failed", ["station ready", "1500 ms"],
                         ["application", "fixture"])
    check(obj.get("failed_state") == "test", "HOST: failed_state %r" % obj.get("failed_state"))
    t = obj.get("test") or {}
    check(t.get("ran") is True and t.get("passed") is False, "HOST: JSON test %r" % (t,))
    check("sensor not found" in (t.get("output") or ""), "HOST: test output %r" % t)
    check(all(i.get("verified") for i in obj.get("images", [])),
          "HOST: images not verified before the test: %r" % obj.get("images"))
    sim.stop_and_dump()


def case_post_test_needs_reset(ctx):
    """A port without DTR/RTS (pty) cannot reset the board into its application: refused
    before anything is written; --after no_reset with a test is a usage error at once."""
    ctx.require_executables("espsim", "espstation")
    sim = Sim(ctx, "esp32", "pty", mac="24:0a:c4:7e:57:03", jedec=0xEF4016)
    _boot_off, _boot, _app, files = test_images(ctx, "esp32", "needs-reset")
    r = run_espstation(ctx, ["flash", "--port", sim.port, "--json", "--test-expect", "ready"]
                       + files, timeout=60)
    obj = expect_failure(r, "usage", ["cannot drive RTS", "nothing was written"])
    check(obj.get("failed_state") == "params", "HOST: failed_state %r" % obj.get("failed_state"))
    r = run_espstation(ctx, ["flash", "--port", sim.port, "--json", "--test-expect", "ready",
                             "--after", "no_reset"] + files, timeout=30)
    expect_failure(r, "usage", ["--after hard_reset"])
    r = run_espstation(ctx, ["flash", "--port", sim.port, "--json", "--test-timeout", "500"]
                       + files, timeout=30)
    expect_failure(r, "usage", ["--test-expect"])
    dump = sim.stop_and_dump()
    check(not events_of(sim, "defl_begin") and not events_of(sim, "flash_begin"),
          "HOST: something was written although the test could not run")
    check(dump == b"\xff" * len(dump), "FLASH CONTENT: written although the test could not run")


def case_post_test_station(ctx):
    """The station with a recipe "test": two RFC 2217 slots, one board reports ready, the
    other not; the jobs pass / fail with test_failed in state test, the state is recorded, and
    the failing job's events carry the application's output."""
    import test_station as ts  # the station harness (serve, database helpers)
    ctx.require_executables("espsim", "espstation")
    ctx.daemons = []
    try:
        boot = ts.Image(0x1000, "boot.bin", img.bootloader_image("esp32", "station-test"), "boot")
        app = ts.Image(0x10000, "app.bin", img.app_image("station-test-app", 48 * 1024), "app")
        rec_path, _ = ts.write_recipe(ctx, "tested.json", ["esp32"], [boot, app],
                                      test={"expect": "station ready", "timeout_ms": 3000})
        good = ts.StationSim(ctx, "esp32", "rfc2217", tag="good", mac="24:0a:c4:7e:57:10",
                             extra=["--app-period", "0", "--app-print", READY])
        bad = ts.StationSim(ctx, "esp32", "rfc2217", tag="bad", mac="24:0a:c4:7e:57:11",
                            extra=["--app-period", "0", "--app-print",
                                   "E (310) app: sensor not found"])
        cfg, db = ts.write_config(ctx, "station.json", [ts.slot_entry("T1", good),
                                                        ts.slot_entry("T2", bad)],
                                  recipe=rec_path)
        d = ts.serve(ctx, cfg)
        rows = ts.wait_jobs(db, lambda rs: {r["slot"] for r in ts.finished(rs)} >= {"T1", "T2"},
                            60, "a finished job on both slots", d)
        d.stop()
        first = {}
        for r in ts.finished(rows):
            first.setdefault(r["slot"], r)
        t1, t2 = first["T1"], first["T2"]
        check(t1["result"] == "pass", "HOST: T1 %s" % ts.summarize([t1]))
        check(t2["result"] == "fail" and t2["error_class"] == "test_failed" and
              t2["failed_state"] == "test", "HOST: T2 %s" % ts.summarize([t2]))
        for r in (t1, t2):
            check(ts.events_in_state(db, r["uuid"], "test"),
                  "HOST: no state event 'test' for %s" % r["slot"])
        logs = ts.db_query(db, "SELECT detail FROM job_events WHERE job_uuid = ? AND kind = "
                               "'log'", (t2["uuid"],)) or []
        check(any("sensor not found" in (e["detail"] or "") for e in logs),
              "HOST: the failed job's events lack the application's output: %r" % logs)
    finally:
        for dmn in ctx.daemons:  # never leave a daemon running, whatever happened
            if dmn.proc.poll() is None:
                harness._kill(dmn.proc)
            dmn._out.close()
            dmn._err.close()


CASES = {}
for _chip in CHIPS:
    for _tr in TRANSPORTS:
        CASES["%s-%s" % (_chip, _tr)] = flash_case(_chip, _tr)
CASES["esp32s3-pty-no-compress"] = case_no_compress
CASES["esp32-invalid-boot-unpatched"] = case_invalid_boot_unpatched
CASES["reflash-esp8266-tcp"] = reflash_case("esp8266", "tcp")
CASES["reflash-esp32-rfc2217"] = reflash_case("esp32", "rfc2217")
for _chip in ("esp32", "esp8266", "esp32c3"):
    CASES["stub-%s-pty" % _chip] = stub_flash_case(_chip)
CASES["stub-read-flash"] = case_stub_read_flash
CASES["stub-erase"] = case_stub_erase
for _tr in ("pty", "rfc2217", "tcp"):
    CASES["baud-921600-%s-stub" % _tr] = baud_case(_tr, True)
CASES["baud-921600-rfc2217-rom"] = baud_case("rfc2217", False)
CASES["baud-921600-pty-rom"] = baud_case("pty", False)
CASES["no-stub"] = case_no_stub
CASES["rom-garble"] = case_rom_garble
CASES["stub-v42-layout-skip-unchanged"] = case_stub_v42_layout_and_skip
CASES["stub-version-choice"] = case_stub_version_choice
CASES["stub-broken-file"] = case_stub_broken_file
CASES["usb-otg-and-serial-jtag"] = case_usb_otg
CASES["post-test-esp32-rfc2217"] = post_test_case("esp32", 460800)
CASES["post-test-esp8266-rfc2217"] = post_test_case("esp8266", 115200)
CASES["post-test-failed"] = case_post_test_failed
CASES["post-test-needs-reset"] = case_post_test_needs_reset
CASES["post-test-station"] = case_post_test_station

if __name__ == "__main__":
    sys.exit(main(CASES, "espstation flash integration tests against espsim"))
