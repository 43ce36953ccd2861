#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# espsim's application reads its NVS partition at boot (--app-nvs-print, --nvs-offset,
# --nvs-size; sim_nvs.c): the reference NVS images of tests/data/vectors/nvs placed in the
# simulated flash, the values printed after a hard reset compared with the CSVs they were made
# from (restated here, not taken from the simulator), a missing key, a missing partition, a
# multi-page blob, bad options. Loopback only; bounded waits. Uses test_espsim.py's process code.
import argparse
import os
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import test_espsim as te  # noqa: E402
from test_espsim import Fail, Sim, check  # noqa: E402

VECTORS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data", "vectors", "nvs")
APP = b"\xe9\x03\x02\x20" + b"\x00" * 60  # an application header at 0x10000 (see t_app_print)


def vec(name):
    with open(os.path.join(VECTORS, name), "rb") as f:
        return f.read()


def flash_image(td, nvs, offset=0x9000):
    img = bytearray(b"\xff" * 0x20000)
    img[0x1000:0x1000 + len(APP)] = APP
    if nvs:
        img[offset:offset + len(nvs)] = nvs
    path = os.path.join(td, "flash.bin")
    with open(path, "wb") as f:
        f.write(img)
    return path


def boot_log(flash, *opts, until=b"nvs: "):
    sim = Sim("--chip", "esp32", "--rfc2217", "0", "--flash-in", flash, "--app-period", "0",
              "--app-print", "app ready", *opts)
    try:
        link = te.open_link(sim)
        te.hard_reset(link)
        log = te.read_until(link, lambda b: b"app ready\r\n" in b and b.count(until) >= 1
                            and b.endswith(b"\r\n"), secs=3.0)
        log += te.read_for(link, 0.2)
        link.close()
    finally:
        sim.stop()
    return log.decode(errors="replace")


def expect_lines(log, lines):
    for line in lines:
        check(line + "\r\n" in log, "%r not in the application output:\n%s" % (line, log))


def t_basic():
    """every scalar encoding, strings (also empty), hex2bin and base64 blobs, two namespaces"""
    with tempfile.TemporaryDirectory() as td:
        flash = flash_image(td, vec("basic.bin"))
        spec = ("factory:u8v,factory:i8v,factory:u16v,factory:i16v,factory:u32v,factory:i32v,"
                "factory:u64v,factory:i64v,factory:serial,factory:empty,factory:model,"
                "factory:token,wifi:ssid,wifi:chan,factory:chan,nope:x")
        log = boot_log(flash, "--app-nvs-print", spec, "--nvs-size", "0x3000")
    expect_lines(log, [
        "I (260) nvs: factory:u8v = 255", "I (260) nvs: factory:i8v = -128",
        "I (260) nvs: factory:u16v = 65535", "I (260) nvs: factory:i16v = -32768",
        "I (260) nvs: factory:u32v = 4294967295", "I (260) nvs: factory:i32v = -2147483648",
        "I (260) nvs: factory:u64v = 18446744073709551615",
        "I (260) nvs: factory:i64v = -9223372036854775808",
        "I (260) nvs: factory:serial = SN-000123", "I (260) nvs: factory:empty = ",
        "I (260) nvs: factory:model = ACME Sensor Pro (rev B)",
        "I (260) nvs: factory:token = 00112233445566778899aabbccddeeff",
        "I (260) nvs: wifi:ssid = factory-test", "I (260) nvs: wifi:chan = 6",
        "W (260) nvs: factory:chan not found", "W (260) nvs: nope:x not found"])
    check(log.index("app ready") < log.index("nvs: factory:u8v"), "order:\n" + log)


def t_mfg():
    """a manufacturing image at another offset: the device's own serial number"""
    with tempfile.TemporaryDirectory() as td:
        flash = flash_image(td, vec("mfg_expected_SN-2026-001002.bin"), offset=0xC000)
        log = boot_log(flash, "--app-nvs-print",
                       "device:serial_no,device:hw_rev,device:mac_label,device:secret",
                       "--nvs-offset", "0xc000", "--nvs-size", "0x4000")
    expect_lines(log, ["I (260) nvs: device:serial_no = SN-2026-001002",
                       "I (260) nvs: device:hw_rev = 3",
                       "I (260) nvs: device:mac_label = 24:0a:c4:00:10:02",
                       "I (260) nvs: device:secret = 1ab1a5ddc51397d4ccfaf3658935b5ac"])


def t_blobs():
    """a 10,000-byte blob over three pages (version 2 index + chunks), a file-backed string"""
    with tempfile.TemporaryDirectory() as td:
        flash = flash_image(td, vec("blobs.bin"))
        log = boot_log(flash, "--app-nvs-print", "certs:big,certs:small,certs:after,certs:long")
    big, small = vec("blob_big.bin"), vec("blob_small.bin")
    expect_lines(log, ["I (260) nvs: certs:big = %s... (10000 bytes)" % big[:64].hex(),
                       "I (260) nvs: certs:small = %s... (700 bytes)" % small[:64].hex(),
                       "I (260) nvs: certs:after = 123456"])
    check("I (260) nvs: certs:long = " + vec("longstr.txt").decode()[:100] in log,
          "long string:\n" + log)


def t_missing():
    """no NVS partition at the offset; a damaged entry is not reported"""
    with tempfile.TemporaryDirectory() as td:
        log = boot_log(flash_image(td, None), "--app-nvs-print", "device:serial_no")
        expect_lines(log, ["E (260) nvs: no NVS partition at 0x9000"])
        nvs = bytearray(vec("mfg_expected_SN-2026-001000.bin"))
        i = nvs.index(b"SN-2026-001000")
        nvs[i] ^= 0x01  # the string's data CRC no longer matches
        log = boot_log(flash_image(td, bytes(nvs)), "--app-nvs-print",
                       "device:serial_no,device:hw_rev")
        expect_lines(log, ["W (260) nvs: device:serial_no not found",
                           "I (260) nvs: device:hw_rev = 3"])
        log = boot_log(flash_image(td, None), "--app-nvs-print", "a:b", "--nvs-offset",
                       "0x400000", until=b"nvs: partition")
        check("nvs: partition 0x400000+0x6000 is not inside" in log, log)


def t_options():
    """bad option values are refused at start (status 2)"""
    for opts in (["--app-nvs-print", "nokey"], ["--app-nvs-print", "a:"],
                 ["--app-nvs-print", "a:b,"], ["--app-nvs-print", "a:b:c"],
                 ["--app-nvs-print", "namespace_too_long:k"], ["--nvs-offset", "0x9001"],
                 ["--nvs-size", "0"], ["--nvs-size", "12k"]):
        p = subprocess.run([te.ESPSIM, "--chip", "esp32", "--tcp", "0"] + opts,
                           capture_output=True, timeout=10)
        check(p.returncode == 2, "%s accepted (%d)" % (opts, p.returncode))


CASES = {"basic": t_basic, "mfg": t_mfg, "blobs": t_blobs, "missing": t_missing,
         "options": t_options}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--espsim", required=True)
    ap.add_argument("case", choices=sorted(CASES))
    args = ap.parse_args()
    te.ESPSIM = args.espsim
    try:
        CASES[args.case]()
    except Fail as e:
        print("FAIL: %s" % e)
        return 1
    print("ok: " + args.case)
    return 0


if __name__ == "__main__":
    sys.exit(main())
