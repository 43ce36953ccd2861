#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_errors.py — `espstation flash` on bad input and faulty devices: each case must end within
# 30 s with a non-zero exit (not a signal), no sanitizer report, one JSON object with the right
# error_class, a message and a hint; input errors must leave the sim's flash untouched.
# Must not: accept a pass by luck: every case also checks the sim survived and is unchanged.
# Run one case: test_errors.py --build BUILD --case missing-file (--list prints the cases).

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import esp_image as img  # noqa: E402
from harness import Sim, check, expect_failure, free_tcp_port, main, run_espstation  # noqa

TIMEOUT = 30.0  # "no hang": every case must finish well within this


def code_re(code):
    """Status code in a message: 6 / 06 / 0x06 / 0x0106 (ROM status byte 1, error byte)."""
    return re.compile(r"(?i)(?<![0-9a-z])(0x)?0*(1?0)?%x(?![0-9a-z])" % code)


def _untouched(sim):
    dump = sim.stop_and_dump()
    check(dump == b"\xff" * sim.ready["flash_size"],
          "HOST: flash was modified although the job was refused")


def _input_error_case(chip, transport, jedec, offset, size, error_class, msg_parts=()):
    def run(ctx):
        ctx.require_executables("espsim", "espstation")
        sim = Sim(ctx, chip, transport, jedec=jedec)
        p = ctx.write_file("image.bin", img.prng_bytes("err-%s" % ctx.name, size))
        r = run_espstation(ctx, ["flash", "--port", sim.port, "--json", "0x%x" % offset, p],
                           timeout=TIMEOUT)
        expect_failure(r, error_class, msg_parts)
        _untouched(sim)

    return run


def case_missing_file(ctx):
    ctx.require_executables("espsim", "espstation")
    sim = Sim(ctx, "esp32", "tcp", jedec=0xEF4016)
    good = ctx.write_file("good.bin", img.prng_bytes("good", 4096))
    missing = ctx.path("does-not-exist.bin")
    r = run_espstation(ctx, ["flash", "--port", sim.port, "--json", "0x10000", good,
                             "0x20000", missing], timeout=TIMEOUT)
    expect_failure(r, "image_missing", ["does-not-exist.bin"])
    _untouched(sim)


def case_wrong_chip_arg(ctx):
    """--chip names another chip than the one connected (error class wrong_chip, docs/TROUBLESHOOTING.md)."""
    ctx.require_executables("espsim", "espstation")
    sim = Sim(ctx, "esp32c3", "tcp", jedec=0xEF4016)
    p = ctx.write_file("app.bin", img.app_image("wrong-chip", 8192))
    r = run_espstation(ctx, ["flash", "--port", sim.port, "--json", "--chip", "esp32s3",
                             "0x10000", p], timeout=TIMEOUT)
    obj = expect_failure(r, "wrong_chip", [re.compile(r"(?i)c3")])
    # the board is refused after its MAC and revision are read, so it can be traced; values
    # are the board's own, never placeholders (issue 15 item 9)
    check(obj.get("mac") == sim.ready["mac"] and obj.get("revision") == sim.ready["revision"]
          and obj.get("chip") == "esp32c3",
          "HOST: a wrong-chip board: chip %r mac %r revision %r, the board is esp32c3 %s %s"
          % (obj.get("chip"), obj.get("mac"), obj.get("revision"), sim.ready["mac"],
             sim.ready["revision"]))
    _untouched(sim)


def case_image_for_other_chip(ctx):
    """An ESP32-S3 bootloader (image chip ID 9) offered to an ESP32-C3 (ID 5): esptool refuses
    it unless forced (PROTOCOL.md §4.5.2, §11.3)."""
    ctx.require_executables("espsim", "espstation")
    sim = Sim(ctx, "esp32c3", "pty", jedec=0xEF4016)
    p = ctx.write_file("s3-boot.bin", img.bootloader_image("esp32s3", "other-chip"))
    r = run_espstation(ctx, ["flash", "--port", sim.port, "--json", "0x0", p], timeout=TIMEOUT)
    expect_failure(r, "wrong_chip", ["s3-boot.bin"])
    _untouched(sim)


def _port_case(port_fn):
    def run(ctx):
        ctx.require_executables("espstation")
        port, mention = port_fn()
        p = ctx.write_file("image.bin", img.prng_bytes("port", 4096))
        r = run_espstation(ctx, ["flash", "--port", port, "--json", "0x10000", p],
                           timeout=TIMEOUT)
        expect_failure(r, "port_not_found", [mention])

    return run


def _closed(scheme):
    def fn():
        port = free_tcp_port()
        return "%s://127.0.0.1:%d" % (scheme, port), str(port)

    return fn


def _fault_case(chip, transport, faults, error_class, msg_parts=(), hint_parts=(), extra=()):
    def run(ctx):
        ctx.require_executables("espsim", "espstation")
        sim = Sim(ctx, chip, transport, jedec=0xEF4016, faults=faults)
        boot_off = img.CHIPS[chip]["boot_offset"]
        p_boot = ctx.write_file("boot.bin", img.bootloader_image(chip, "fault"))
        p_app = ctx.write_file("app.bin", img.app_image("fault-app", 64 * 1024))
        r = run_espstation(ctx, ["flash", "--port", sim.port, "--json"] + list(extra)
                           + ["0x%x" % boot_off, p_boot, "0x10000", p_app], timeout=TIMEOUT)
        expect_failure(r, error_class, msg_parts, hint_parts)
        # The sim must have survived the host's behaviour (and exits cleanly on SIGTERM).
        sim.stop_and_dump()

    return run


def case_bad_port_spec(ctx):
    """A malformed --port is a usage error: exit status 2 (docs/CLI.md), the spec named, nothing
    opened (issue 15 item 13)."""
    ctx.require_executables("espstation")
    for spec in ("COM3", "rfc2217://127.0.0.1:19199x", "socket://127.0.0.1", "socket://h:0",
                 "usb-serial:"):
        r = run_espstation(ctx, ["info", "--port", spec, "--json"], timeout=TIMEOUT)
        obj = expect_failure(r, "usage", [spec])
        check(r.status == 2, "HOST: --port %s: exit %s, expected 2 (usage)\n%s"
              % (spec, r.status, r.describe()))
        check(obj.get("chip") is None, "HOST: --port %s: %r" % (spec, obj))


CASES = {
    "missing-file": case_missing_file,
    "bad-port-spec": case_bad_port_spec,
    "offset-unaligned": _input_error_case("esp32c3", "tcp", 0xEF4016, 0x10800, 4096,
                                          "bad_offset", [re.compile(r"(?i)10800|67584")]),
    "offset-beyond-flash": _input_error_case("esp32", "pty", 0xEF4016, 0x800000, 4096,
                                             "bad_offset"),
    "image-larger-than-flash": _input_error_case("esp32", "tcp", 0xEF4014, 0x0, 2 * img.MIB,
                                                 "flash_too_small"),
    "image-past-flash-end": _input_error_case("esp8266", "pty", 0xEF4014, 0x10000, img.MIB,
                                              "flash_too_small"),
    "wrong-chip-arg": case_wrong_chip_arg,
    "image-for-other-chip": case_image_for_other_chip,
    "port-tty-nonexistent": _port_case(lambda: ("/dev/ttyNONEXISTENT", "/dev/ttyNONEXISTENT")),
    "port-tcp-closed": _port_case(_closed("socket")),
    "port-rfc2217-closed": _port_case(_closed("rfc2217")),
    "silent-pty": _fault_case("esp32", "pty", ["silent"], "no_sync", hint_parts=["boot"]),
    "silent-rfc2217": _fault_case("esp32s3", "rfc2217", ["silent"], "no_sync",
                                  hint_parts=["boot"]),
    "app-rfc2217": _fault_case("esp32", "rfc2217", ["app"], "wrong_boot_mode"),
    "app-pty": _fault_case("esp32", "pty", ["app"], "wrong_boot_mode"),
    "nak-flash-begin-esp8266": _fault_case("esp8266", "tcp", ["nak:0x02:0x06"], "nak",
                                           ["FLASH_BEGIN", code_re(6)]),
    "nak-flash-begin-esp32-no-compress": _fault_case("esp32", "tcp", ["nak:0x02:0x06"], "nak",
                                                     ["FLASH_BEGIN", code_re(6)],
                                                     extra=["--no-compress"]),
    "nak-flash-defl-begin-esp32s3": _fault_case("esp32s3", "pty", ["nak:0x10:0x08"], "nak",
                                                ["FLASH_DEFL_BEGIN", code_re(8)]),
}

if __name__ == "__main__":
    sys.exit(main(CASES, "espstation error-handling integration tests against espsim"))
