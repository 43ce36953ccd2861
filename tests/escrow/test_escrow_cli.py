#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_escrow_cli.py — `espstation escrow` (docs/SECURITY-PROVISIONING.md §10): a secret wrapped
# for an escrow key made here with openssl unwraps with the private key only (into a new 0600
# file), `info` shows the key id openssl computes, the blob unwraps with the documented openssl
# command too, and escrowed flash keys decrypt espsecure's ciphertexts back to plain_app.bin.
# One case per run: test_escrow_cli.py --espstation BIN --openssl BIN --vectors DIR CASE.
# Writes only below a temporary directory.
import argparse
import hashlib
import os
import stat
import subprocess
import sys
import tempfile

ARGS = None


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def esc(args, want=0):
    p = subprocess.run([ARGS.espstation, "escrow"] + args, capture_output=True, text=True,
                       timeout=30)
    if want is not None and p.returncode != want:
        fail("espstation escrow %s: exit %d, expected %d\nstdout: %s\nstderr: %s"
             % (" ".join(args), p.returncode, want, p.stdout, p.stderr))
    return p


def ossl(args, **kw):
    return subprocess.run([ARGS.openssl] + args, check=True, capture_output=True, timeout=60, **kw)


def keypair(d, name):
    priv, pub = os.path.join(d, name + ".pem"), os.path.join(d, name + "_pub.pem")
    ossl(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:3072", "-out", priv])
    ossl(["pkey", "-in", priv, "-pubout", "-out", pub])
    return priv, pub


def vec(name):
    return os.path.join(ARGS.vectors, name)


def read(path):
    with open(path, "rb") as f:
        return f.read()


def case_roundtrip(d):
    priv, pub = keypair(d, "escrow")
    secret = os.path.join(d, "secret.bin")
    with open(secret, "wb") as f:
        f.write(bytes(range(64)))
    blob = os.path.join(d, "unit.eskw")
    esc(["wrap", "--pubkey", pub, "--label", "flash_encryption_key", secret, blob])
    if bytes(range(16, 32)) in read(blob):
        fail("the blob contains the secret")
    info = esc(["info", blob]).stdout
    der = ossl(["pkey", "-pubin", "-in", pub, "-outform", "DER"]).stdout
    if "key id: " + hashlib.sha256(der).hexdigest() not in info or \
            "label: flash_encryption_key" not in info or "secret: 64 bytes" not in info:
        fail("info output: " + info)
    out = os.path.join(d, "back.bin")
    esc(["unwrap", "--key", priv, "--output", out, blob])
    if read(out) != bytes(range(64)):
        fail("unwrapped secret differs")
    if stat.S_IMODE(os.stat(out).st_mode) != 0o600:
        fail("unwrapped secret is not mode 0600")
    # the documented openssl recovery gives the same bytes
    raw = read(blob)
    ct = raw[44 + raw[6]:]
    p = subprocess.run([ARGS.openssl, "pkeyutl", "-decrypt", "-inkey", priv,
                        "-pkeyopt", "rsa_padding_mode:oaep", "-pkeyopt", "rsa_oaep_md:sha256",
                        "-pkeyopt", "rsa_mgf1_md:sha256"], input=ct, capture_output=True,
                       check=True, timeout=30)
    if p.stdout != bytes(range(64)):
        fail("openssl pkeyutl recovery differs")


def case_wrong_key(d):
    priv, pub = keypair(d, "escrow")
    other, _ = keypair(d, "other")
    blob = os.path.join(d, "unit.eskw")
    esc(["wrap", "--pubkey", pub, vec("xts128_key.bin"), blob])
    p = esc(["unwrap", "--key", other, "--output", os.path.join(d, "k.bin"), blob], want=1)
    if "another escrow key" not in p.stderr:
        fail("wrong key message: " + p.stderr)
    if os.path.exists(os.path.join(d, "k.bin")):
        fail("output written despite the wrong key")
    damaged = bytearray(read(blob))
    damaged[-5] ^= 1
    with open(os.path.join(d, "damaged.eskw"), "wb") as f:
        f.write(damaged)
    esc(["info", os.path.join(d, "damaged.eskw")])  # the header is still fine
    p = esc(["unwrap", "--key", priv, "--output", os.path.join(d, "k2.bin"),
             os.path.join(d, "damaged.eskw")], want=1)
    if "damaged" not in p.stderr or os.path.exists(os.path.join(d, "k2.bin")):
        fail("damaged blob: " + p.stderr)
    p = esc(["unwrap", "--key", priv, "--output", os.path.join(d, "k3.bin"),
             os.path.join(d, "missing.eskw")], want=1)
    if "missing.eskw" not in p.stderr:
        fail("missing blob: " + p.stderr)


def recover(d, keys, keyfile, cipher, addr, extra):
    priv, pub = keys
    blob = os.path.join(d, keyfile + ".eskw")
    esc(["wrap", "--pubkey", pub, "--label", "flash_encryption_key", vec(keyfile), blob])
    out = os.path.join(d, cipher + ".plain")
    esc(["decrypt-flash", "--key", priv, "--blob", blob, "--address", addr] + extra +
        [vec(cipher), out])
    if read(out) != read(vec("plain_app.bin")):
        fail("decrypted dump differs from plain_app.bin")


def case_recover_xts(d):
    keys = keypair(d, "escrow")
    recover(d, keys, "xts128_key.bin", "c3_xts128_0x10000.bin", "0x10000", [])
    recover(d, keys, "xts256_key.bin", "s3_xts256_0x20000.bin", "0x20000", [])


def case_recover_esp32(d):
    recover(d, keypair(d, "escrow"), "esp32_fe_key.bin", "esp32_aes256_0x10000.bin", "0x10000",
            ["--esp32", "--flash-crypt-conf", "0xf"])


def case_refusals(d):
    priv, pub = keypair(d, "escrow")
    blob = os.path.join(d, "unit.eskw")
    esc(["wrap", "--pubkey", pub, vec("xts128_key.bin"), blob])
    existing = os.path.join(d, "exists.bin")
    with open(existing, "wb") as f:
        f.write(b"keep")
    p = esc(["unwrap", "--key", priv, "--output", existing, blob], want=1)
    if "never written over" not in p.stderr or read(existing) != b"keep":
        fail("overwrite not refused: " + p.stderr)
    esc(["unwrap", "--key", priv, "--output", "-", blob], want=2)
    esc(["unwrap", "--key", priv, blob], want=2)
    esc(["frobnicate"], want=2)
    esc(["info"], want=2)
    esc(["info", "--bogus", blob], want=2)
    esc(["decrypt-flash", "--key", priv, "--blob", blob, "--address", "zz", "a", "b"], want=2)
    p = esc(["info", vec("plain_app.bin")], want=1)
    if "not an escrow blob" not in p.stderr:
        fail("info on a non-blob: " + p.stderr)
    p = esc(["wrap", "--pubkey", priv, vec("xts128_key.bin"), os.path.join(d, "x.eskw")], want=1)
    if "PEM public key" not in p.stderr:
        fail("wrap with a private key file: " + p.stderr)
    if esc(["--help"]).stdout.find("decrypt-flash") < 0:
        fail("help text")


def main():
    global ARGS
    ap = argparse.ArgumentParser()
    ap.add_argument("--espstation", required=True)
    ap.add_argument("--openssl", required=True)
    ap.add_argument("--vectors", required=True)
    ap.add_argument("case")
    ARGS = ap.parse_args()
    fn = globals().get("case_" + ARGS.case)
    if not fn:
        fail("unknown case " + ARGS.case)
    with tempfile.TemporaryDirectory(prefix="estn-escrow-") as d:
        fn(d)
    print("ok " + ARGS.case)


if __name__ == "__main__":
    main()
