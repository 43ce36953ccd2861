#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_nvs_cli.py — `espstation nvs` on the reference vectors (tests/data/vectors/nvs/README.md):
# every output byte for byte, the refusals (exit status 1 with the line and key, 2 for usage
# errors), the manufacturing run (CSV and image per device), random and HMAC-derived keys.
# One case per run: test_nvs_cli.py --espstation BIN --vectors DIR CASE. Writes only below a
# temporary directory (the vector directory is read-only).
import argparse
import glob
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import zlib

ARGS = None


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def run(args, cwd=None, want=0):
    p = subprocess.run([ARGS.espstation, "nvs"] + args, cwd=cwd or ARGS.vectors,
                       capture_output=True, text=True, timeout=20)
    if want is not None and p.returncode != want:
        fail("espstation nvs %s: exit %d, expected %d\nstdout: %s\nstderr: %s"
             % (" ".join(args), p.returncode, want, p.stdout, p.stderr))
    return p


def vec(name):
    with open(os.path.join(ARGS.vectors, name), "rb") as f:
        return f.read()


def same(path, vector):
    with open(path, "rb") as f:
        got = f.read()
    want = vec(vector)
    if got != want:
        first = next((i for i in range(min(len(got), len(want))) if got[i] != want[i]),
                     min(len(got), len(want)))
        fail("%s differs from %s (%d vs %d bytes, first difference at 0x%x)"
             % (path, vector, len(got), len(want), first))


def keys_crc_ok(part):
    return (len(part) == 4096 and zlib.crc32(part[:64], 0xFFFFFFFF).to_bytes(4, "little")
            == part[64:68] and part[68:] == b"\xff" * (4096 - 68))


def generate_case(tmp, csv, vector, size, extra=()):
    out = os.path.join(tmp, vector)
    p = run(["generate"] + list(extra) + [csv, out, size])
    same(out, vector)
    if "Created NVS binary" not in p.stdout:
        fail("no summary line: " + p.stdout)


def case_basic(tmp):
    generate_case(tmp, "basic.csv", "basic.bin", "0x3000")


def case_many(tmp):
    generate_case(tmp, "many.csv", "many.bin", "0x8000")


def case_blobs(tmp):
    generate_case(tmp, "blobs.csv", "blobs.bin", "0x6000")


def case_v1(tmp):
    generate_case(tmp, "v1.csv", "v1.bin", "0x3000", ["--version", "1"])


def case_v1_too_big(tmp):
    out = os.path.join(tmp, "x.bin")
    p = run(["generate", "--version", "1", "v1_too_big.csv", out, "0x3000"], want=1)
    for needle in ("v1_too_big.csv", "line 3", "`cert`", "1984"):
        if needle not in p.stderr:
            fail("%r not in the message: %s" % (needle, p.stderr))
    if os.listdir(tmp):
        fail("a refused input left files: %s" % os.listdir(tmp))
    # version 2 takes it (strings up to 4000 bytes)
    run(["generate", "v1_too_big.csv", out, "0x3000"])


def case_basic_enc(tmp):
    out = os.path.join(tmp, "basic_enc.bin")
    run(["encrypt", "basic.csv", out, "0x3000", "--inputkey", "nvs_keys.bin"])
    same(out, "basic_enc.bin")


def case_basic_enc_hmac(tmp):
    # the reference's own spelling of the options, outputs relative to --outdir
    run(["encrypt", "basic.csv", "basic_enc_hmac.bin", "0x3000", "--keygen", "--keyfile",
         "hmac_derived_keys.bin", "--key_protect_hmac", "--kp_hmac_inputkey", "hmac_key.bin",
         "--outdir", tmp])
    same(os.path.join(tmp, "basic_enc_hmac.bin"), "basic_enc_hmac.bin")
    same(os.path.join(tmp, "keys", "hmac_derived_keys.bin"), "hmac_derived_keys.bin")


def case_mfg(tmp):
    args = ["mfg", "--conf", "mfg_config.csv", "--values", "mfg_values.csv", "--prefix",
            "mfg_expected", "--fileid", "serial_no", "--size", "0x4000", "--outdir", tmp]
    p = run(args)
    sns = sorted(f[len("mfg_expected_"):-4] for f in os.listdir(ARGS.vectors)
                 if f.startswith("mfg_expected_") and f.endswith(".bin"))
    if len(sns) != 4:
        fail("expected 4 mfg vectors, found %r" % sns)
    for sn in sns:
        same(os.path.join(tmp, "csv", "mfg_expected-%s.csv" % sn), "mfg_expected_%s.csv" % sn)
        same(os.path.join(tmp, "bin", "mfg_expected-%s.bin" % sn), "mfg_expected_%s.bin" % sn)
    if len(os.listdir(os.path.join(tmp, "bin"))) != 4 or "Created 4" not in p.stdout:
        fail("unexpected outputs: %s / %s" % (os.listdir(os.path.join(tmp, "bin")), p.stdout))
    # a second run refuses to overwrite, before writing anything
    p = run(args, want=1)
    if "already exists" not in p.stderr:
        fail("second run: " + p.stderr)
    # without --fileid the files are numbered
    run(["mfg", "--conf", "mfg_config.csv", "--values", "mfg_values.csv", "--prefix", "dev",
         "--size", "0x4000", "--outdir", os.path.join(tmp, "n")])
    same(os.path.join(tmp, "n", "bin", "dev-3.bin"), "mfg_expected_SN-2026-001002.bin")


def case_mfg_encrypt(tmp):
    """mfg encrypted: with --inputkey every image equals `nvs encrypt` of the device's CSV with
    those keys; with --keygen each device gets keys of its own (HMAC-derived here: the vector's
    keys file) and --kp-hmac-keygen gives every device a different HMAC key."""
    base = ["mfg", "--conf", "mfg_config.csv", "--values", "mfg_values.csv", "--prefix", "e",
            "--fileid", "serial_no", "--size", "0x4000"]
    sns = ["SN-2026-00100%d" % i for i in range(4)]
    run(base + ["--outdir", os.path.join(tmp, "a"), "--inputkey", "nvs_keys.bin"])
    run(base + ["--outdir", os.path.join(tmp, "b"), "--keygen", "--key-protect-hmac",
                "--kp-hmac-inputkey", "hmac_key.bin"])
    for sn in sns:
        for d, keys in (("a", "nvs_keys.bin"), ("b", "hmac_derived_keys.bin")):
            ref = os.path.join(tmp, "ref-%s-%s.bin" % (d, sn))
            run(["encrypt", "mfg_expected_%s.csv" % sn, ref, "0x4000", "--inputkey", keys])
            if open(ref, "rb").read() != open(os.path.join(tmp, d, "bin", "e-%s.bin" % sn),
                                              "rb").read():
                fail("mfg %s: the image of %s is not `nvs encrypt` of its CSV" % (d, sn))
        same(os.path.join(tmp, "b", "keys", "keys-e-%s.bin" % sn), "hmac_derived_keys.bin")
    run(base + ["--outdir", os.path.join(tmp, "c"), "--keygen", "--key-protect-hmac",
                "--kp-hmac-keygen"])
    hk = [open(os.path.join(tmp, "c", "keys", "hmac-keys-e-%s.bin" % sn), "rb").read()
          for sn in sns]
    if len(set(hk)) != 4 or any(len(k) != 32 for k in hk):
        fail("--kp-hmac-keygen: not one 32-byte HMAC key per device")
    p = run(base + ["--outdir", os.path.join(tmp, "b"), "--keygen"], want=1)
    if "already exists" not in p.stderr:
        fail("existing outputs: " + p.stderr)
    p = run(base + ["--outdir", tmp, "--keygen", "--keyfile", "k.bin"], want=2)
    if "keys-P-ID" not in p.stderr:
        fail("--keyfile with mfg: " + p.stderr)


def case_decrypt(tmp):
    """decrypt: both encrypted vectors give basic.bin back; refusals"""
    run(["decrypt", "basic_enc.bin", "nvs_keys.bin", os.path.join(tmp, "p1.bin")])
    same(os.path.join(tmp, "p1.bin"), "basic.bin")
    run(["decrypt", "--outdir", tmp, "basic_enc_hmac.bin", "hmac_derived_keys.bin", "p2.bin"])
    same(os.path.join(tmp, "p2.bin"), "basic.bin")
    p = run(["decrypt", "cert.pem", "nvs_keys.bin", os.path.join(tmp, "x.bin")], want=1)
    if "multiple of 4096" not in p.stderr:
        fail("decrypt of a non-image: " + p.stderr)
    run(["decrypt", "basic_enc.bin", os.path.join(tmp, "x.bin")], want=2)


def case_keygen(tmp):
    outs = []
    for i in range(2):
        d = os.path.join(tmp, "run%d" % i)
        run(["encrypt", "basic.csv", "enc.bin", "0x3000", "--keygen", "--outdir", d])
        keys = glob.glob(os.path.join(d, "keys", "keys-*.bin"))
        if len(keys) != 1:
            fail("keygen wrote %r" % keys)
        part = open(keys[0], "rb").read()
        if not keys_crc_ok(part) or part[:32] == part[32:64]:
            fail("%s is not an nvs_keys partition image" % keys[0])
        outs.append((part, open(os.path.join(d, "enc.bin"), "rb").read(), keys[0]))
    if outs[0][0] == outs[1][0] or outs[0][1] == outs[1][1]:
        fail("two --keygen runs made the same keys")
    # the image is a function of the keys: the written keys file reproduces it
    again = os.path.join(tmp, "again.bin")
    run(["encrypt", "basic.csv", again, "0x3000", "--inputkey", outs[0][2]])
    if open(again, "rb").read() != outs[0][1]:
        fail("--inputkey with the generated keys gives another image")
    plain = vec("basic.bin")
    if outs[0][1][:64] != plain[:64]:
        fail("page header or bitmap differs from the plain image")


def case_generate_key(tmp):
    run(["generate-key", "--keyfile", "k", "--outdir", tmp])
    part = open(os.path.join(tmp, "keys", "k.bin"), "rb").read()
    if not keys_crc_ok(part):
        fail("generate-key: not an nvs_keys image")
    run(["generate-key", "--keyfile", "h.bin", "--outdir", tmp, "--key-protect-hmac",
         "--kp-hmac-inputkey", "hmac_key.bin"])
    same(os.path.join(tmp, "keys", "h.bin"), "hmac_derived_keys.bin")
    run(["generate-key", "--keyfile", "g.bin", "--outdir", tmp, "--key-protect-hmac",
         "--kp-hmac-keygen"])
    hk = open(os.path.join(tmp, "keys", "hmac-g.bin"), "rb").read()
    part = open(os.path.join(tmp, "keys", "g.bin"), "rb").read()
    e = hmac.new(hk, b"\x5a\x5a\xbe\xae" * 8, hashlib.sha256).digest()
    t = hmac.new(hk, b"\xa5\xa5\xde\xce" * 8, hashlib.sha256).digest()
    if len(hk) != 32 or part[:64] != e + t or not keys_crc_ok(part):
        fail("--kp-hmac-keygen: the keys are not derived from the HMAC key written")
    p = run(["generate-key", "--keyfile", "x.txt", "--outdir", tmp], want=2)
    if ".bin" not in p.stderr:
        fail("keyfile extension: " + p.stderr)


def case_usage(tmp):
    out = os.path.join(tmp, "o.bin")
    p = run(["--help"])
    if "espstation nvs generate" not in p.stdout or "--kp-hmac-inputkey" not in p.stdout:
        fail("--help: " + p.stdout)
    run(["generate", "--help"])
    for args, needle in [
        ([], "usage"),
        (["frobnicate"], "unknown subcommand"),
        (["generate", "--bogus", "basic.csv", out, "0x3000"], "unknown option"),
        (["generate", "basic.csv", out, "0x3001"], "multiple of 4096"),
        (["generate", "basic.csv", out, "12k"], "multiple of 4096"),
        (["generate", "basic.csv", out], "needs"),
        (["generate", "--version", "3", "basic.csv", out, "0x3000"], "1 or 2"),
        (["generate", "--version"], "missing"),
        (["encrypt", "basic.csv", out, "0x3000"], "--inputkey"),
        (["encrypt", "basic.csv", out, "0x3000", "--inputkey", "nvs_keys.bin", "--keygen"],
         "one of"),
        (["generate", "basic.csv", out, "0x3000", "--inputkey", "nvs_keys.bin"], "encrypt"),
        (["encrypt", "basic.csv", out, "0x3000", "--keygen", "--kp-hmac-keygen"],
         "--key-protect-hmac"),
        (["mfg", "--conf", "mfg_config.csv", "--values", "mfg_values.csv", "--prefix", "p"],
         "--size"),
        (["mfg", "--conf", "c", "--values", "v", "--prefix", "a/b", "--size", "0x4000"],
         "prefix"),
        (["generate", "--keygen=1", "basic.csv", out, "0x3000"], "no value"),
    ]:
        p = run(args, want=2)
        if needle not in p.stderr:
            fail("espstation nvs %s: %r not in: %s" % (" ".join(args), needle, p.stderr))
    if os.path.exists(out):
        fail("a usage error wrote the output")


def case_errors(tmp):
    out = os.path.join(tmp, "o.bin")
    bad = os.path.join(tmp, "bad.csv")
    with open(bad, "w") as f:
        f.write("key,type,encoding,value\n# comment\nns,namespace,,\n"
                "a_key_of_16_chr,data,u8,1\nthis_key_is_16ch,data,u8,1\n")
    novalue = os.path.join(tmp, "novalue.csv")
    with open(novalue, "w") as f:
        f.write("serial_no,hw_rev,mac_label,batch,cert\nSN-1,1,aa,2,cert.pem\n")
    for args, needle in [
        (["generate", bad, out, "0x3000"], ["line 5", "this_key_is_16ch", "15"]),
        (["generate", "many.csv", out, "0x3000"], ["larger size"]),
        (["generate", "missing.csv", out, "0x3000"], ["missing.csv"]),
        (["encrypt", "basic.csv", out, "0x3000", "--inputkey", "missing_keys.bin"],
         ["missing_keys.bin"]),
        (["encrypt", "basic.csv", out, "0x3000", "--keygen", "--key-protect-hmac",
          "--kp-hmac-inputkey", "nvs_keys.bin", "--outdir", tmp], ["32 bytes"]),
        (["mfg", "--conf", "mfg_values.csv", "--values", "mfg_values.csv", "--prefix", "p",
          "--size", "0x4000", "--outdir", tmp], ["mfg_values.csv", "line 1"]),
        (["mfg", "--conf", "mfg_config.csv", "--values", "mfg_config.csv", "--prefix", "p",
          "--size", "0x4000", "--outdir", tmp], ["values line 3", "4 value(s) for 3"]),
        (["mfg", "--conf", "mfg_config.csv", "--values", novalue, "--prefix", "p",
          "--size", "0x4000", "--outdir", tmp], ["config line 6", "`secret`", "not a column"]),
        (["mfg", "--conf", "mfg_config.csv", "--values", "mfg_values.csv", "--prefix", "p",
          "--fileid", "nope", "--size", "0x4000", "--outdir", tmp], ["--fileid `nope`"]),
    ]:
        p = run(args, want=1)
        for n in needle:
            if n not in p.stderr:
                fail("espstation nvs %s: %r not in: %s" % (" ".join(args), n, p.stderr))
    if os.path.exists(out) or glob.glob(os.path.join(tmp, "**", "*.partial"), recursive=True):
        fail("a failed run left an output")


def case_post_flash(tmp):
    """End to end: per-device images from `nvs mfg`, written by `espstation flash` into a
    simulated ESP32 whose application reports its NVS serial number at boot (espsim
    --app-nvs-print); the post-flash test (--test-expect) passes on the board's own serial and
    fails (test_failed) on another's."""
    if not ARGS.espsim:
        fail("--espsim is needed for this case")
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "sim"))
    import test_espsim as te
    te.ESPSIM = ARGS.espsim
    run(["mfg", "--conf", "mfg_config.csv", "--values", "mfg_values.csv", "--prefix", "dev",
         "--fileid", "serial_no", "--size", "0x4000", "--outdir", tmp])
    app = os.path.join(tmp, "app.bin")
    with open(app, "wb") as f:
        f.write(b"\xe9\x03\x02\x20" + b"\x00" * 60)
    for serial, expect, want in (("SN-2026-001001", "SN-2026-001001", 0),
                                 ("SN-2026-001003", "SN-2026-001000", 1)):
        sim = te.Sim("--chip", "esp32", "--rfc2217", "0", "--app-period", "0",
                     "--app-nvs-print", "device:serial_no,device:hw_rev", "--nvs-size", "0x4000")
        try:
            p = subprocess.run([ARGS.espstation, "flash", "--port", sim.ready["port"], "--json",
                                "--test-expect", "device:serial_no = " + expect,
                                "--test-timeout", "3000", "0x1000", app, "0x9000",
                                os.path.join(tmp, "bin", "dev-%s.bin" % serial)],
                               capture_output=True, text=True, timeout=60)
        finally:
            sim.stop()
        if p.returncode != want:
            fail("flash %s, expecting %s: exit %d\n%s\n%s" % (serial, expect, p.returncode,
                                                               p.stdout, p.stderr))
        out = (json.loads(p.stdout).get("test") or {}).get("output") or ""
        if "device:serial_no = %s\n" % serial not in out or "device:hw_rev = 3" not in out:
            fail("the board did not report %s: %r" % (serial, out[-400:]))
        if want and '"test_failed"' not in p.stdout:
            fail("a wrong serial is not test_failed: " + p.stdout)


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--espstation", required=True)
    ap.add_argument("--vectors", required=True)
    ap.add_argument("--espsim")
    ap.add_argument("case")
    ARGS = ap.parse_args()
    fn = globals().get("case_" + ARGS.case)
    if not fn:
        fail("unknown case " + ARGS.case)
    with tempfile.TemporaryDirectory(prefix="estn-nvs-") as tmp:
        fn(tmp)
    print("ok: " + ARGS.case)


if __name__ == "__main__":
    main()
