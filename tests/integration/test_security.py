#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_security.py — the security read-out of every job (issue 17 part 1,
# docs/SECURITY-PROVISIONING.md §9) against espsim's eFuse model (`--efuse-file`, a JSON eFuse
# state, docs/SIMULATOR.md "eFuses and security"): `espstation info --json` reports the unit's
# state decoded from GET_SECURITY_INFO and the eFuse blocks; the human output prints the summary.
# Must not: write flash (the dump stays erased) or burn eFuses (the file is unchanged).
# Run one case: test_security.py --build BUILD --case blank-c3 (--list prints the cases).

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from harness import Sim, check, check_no_crash, main, parse_json_result, run_espstation  # noqa

JEDEC = 0xEF4016  # 4 MB


def efuse_file(ctx, chip, tag, set_bits=()):
    """The chip's factory eFuse file (espsim writes it when it does not exist), then the given
    (block, word, mask) bits burnt into it by hand."""
    path = ctx.path("%s-efuse.json" % tag)
    sim = Sim(ctx, chip, "tcp", jedec=JEDEC, tag=tag + "-factory", extra=["--efuse-file", path])
    sim.stop_and_dump()
    with open(path) as f:
        st = json.load(f)
    for block, word, mask in set_bits:
        b = [x for x in st["blocks"] if x["block"] == block][0]
        b["words"][word] = "0x%08x" % (int(b["words"][word], 16) | mask)
    with open(path, "w") as f:
        json.dump(st, f)
    return path


def info(ctx, sim, json_out=True):
    args = ["info", "--port", sim.port] + (["--json"] if json_out else [])
    r = run_espstation(ctx, args, timeout=30)
    check_no_crash(r)
    check(r.status == 0, "HOST: info exit status %s\n%s" % (r.status, r.describe()))
    return r


def security_case(chip, set_bits, expect, source):
    def run(ctx):
        ctx.require_executables("espsim", "espstation")
        path = efuse_file(ctx, chip, "unit", set_bits)
        with open(path) as f:
            before = json.load(f)
        sim = Sim(ctx, chip, "tcp", jedec=JEDEC, extra=["--efuse-file", path])
        obj = parse_json_result(info(ctx, sim))
        sec = obj.get("security")
        check(isinstance(sec, dict), "HOST: no security object in %r" % obj)
        check(sec.get("source") == source, "HOST: source %r, expected %r" % (sec.get("source"),
                                                                             source))
        for k, v in expect.items():
            check(sec.get(k) == v, "HOST: security.%s = %r, expected %r (%r)" % (k, sec.get(k), v,
                                                                                  sec))
        check(isinstance(sec.get("efuse"), dict) and sec["efuse"]["chip"] == chip,
              "HOST: eFuse summary missing: %r" % sec)
        check(all(not b["used"] for b in sec["efuse"]["key_blocks"]),
              "HOST: a key block reads as used on a unit without keys: %r" % sec["efuse"])
        words = "flash encryption on" if expect.get("flash_encryption") else "flash encryption off"
        check(words in sec.get("summary", ""), "HOST: summary %r lacks %r" % (sec.get("summary"),
                                                                              words))
        human = info(ctx, sim, json_out=False)
        check("Security:\n  " + words in human.out,
              "HOST: human output lacks the security summary:\n%s" % human.out)
        dump = sim.stop_and_dump()
        check(dump == b"\xff" * len(dump), "HOST/SIM: info changed the flash")
        with open(path) as f:
            check(json.load(f) == before, "HOST/SIM: info changed the eFuses")

    return run


def sdm_case(flash_size):
    """Secure Download Mode (ENABLE_SECURITY_DOWNLOAD, ESP32-C3 BLOCK0 word 4 bit 5): written
    through the ROM's plain path and recorded "not verified"; without a flash size refused
    before anything is written."""
    def run(ctx):
        ctx.require_executables("espsim", "espstation")
        path = efuse_file(ctx, "esp32c3", "unit", ((0, 4, 1 << 5),))
        app = bytes((i * 7 + 3) & 0xFF for i in range(5000))
        ctx.write_file("app.bin", app)
        sim = Sim(ctx, "esp32c3", "tcp", jedec=JEDEC, extra=["--efuse-file", path])
        args = ["flash", "--port", sim.port, "--json"]
        if flash_size:
            args += ["--flash-size", flash_size]
        r = run_espstation(ctx, args + ["0x10000", ctx.path("app.bin")], timeout=60)
        check_no_crash(r)
        obj = parse_json_result(r)
        dump = sim.stop_and_dump()
        if not flash_size:
            check(r.status != 0 and obj.get("error_class") == "unsupported",
                  "HOST: expected unsupported without a flash size: %s" % r.describe())
            check("flash size must be given" in obj.get("message", ""), "HOST: %r" % obj)
            check(dump == b"\xff" * len(dump), "HOST/SIM: flash written although refused")
            return
        check(r.status == 0 and obj.get("result") == "pass", "HOST: %s" % r.describe())
        check(obj["security"]["secure_download"] is True, "HOST: %r" % obj["security"])
        check(obj["images"][0]["verified"] is False, "HOST: %r" % obj["images"])
        check("Secure Download Mode" in (obj.get("not_verified_reason") or ""),
              "HOST: not_verified_reason %r" % obj.get("not_verified_reason"))
        check(obj["images"][0]["compressed_size"] == obj["images"][0]["size"],
              "HOST: a compressed write in Secure Download Mode: %r" % obj["images"])
        check(dump[0x10000:0x10000 + len(app)] == app, "HOST/SIM: the image is not in flash")

    return run


CASES = {
    # a blank unit: not secured
    "blank-c3": security_case("esp32c3", (), {"flash_encryption": False, "secure_boot": False,
                                              "secure_download": False, "download_mode": "open",
                                              "flash_encryption_mode": "off"}, "secinfo+efuse"),
    # SPI_BOOT_CRYPT_CNT = 1 (BLOCK0 word 2 bit 18): flash encryption on, development mode
    "encrypted-c3": security_case("esp32c3", ((0, 2, 1 << 18),),
                                  {"flash_encryption": True,
                                   "flash_encryption_mode": "development",
                                   "secure_boot": False}, "secinfo+efuse"),
    # ESP32: no GET_SECURITY_INFO, the blocks alone; FLASH_CRYPT_CNT all 7 bits (word 0
    # bits 20..26, odd) = release mode; ABS_DONE_1 (word 6 bit 5) = Secure Boot v2
    "release-esp32": security_case("esp32", ((0, 0, 0x7F << 20), (0, 6, 1 << 5)),
                                   {"flash_encryption": True, "flash_encryption_mode": "release",
                                    "secure_boot": True}, "efuse"),
    "sdm-c3": sdm_case("4MB"),
    "sdm-c3-no-size": sdm_case(None),
}

if __name__ == "__main__":
    sys.exit(main(CASES, "security read-out integration tests against espsim's eFuse model"))
