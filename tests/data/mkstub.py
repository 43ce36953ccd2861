#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write SYNTHETIC flasher-stub files for tests: esptool's JSON stub format (docs/PROTOCOL.md,
stub files: text/text_start, data/data_start, bss_start, entry) filled with pseudo-random bytes
behind a marker. They are not firmware and never run on a chip. espsim recognises them by the
marker at the start of the text, "ESPSIM-SYNTHETIC-STUB:" then "legacy" or "new" and a NUL
(docs/SIMULATOR.md "Uploaded programs"), and then answers as that stub does. Real stubs are
never committed: users point the daemon at an installed esptool's targets/stub_flasher.

usage: mkstub.py OUTDIR [--layout v1|v4.2|esptool4|esptool5] [--stub legacy|new]
  v1   (default) OUTDIR/<chip>.json              as esptool 4.8+ ships in stub_flasher/1 and /2
  v4.2           OUTDIR/stub_flasher_<short>.json as esptool 4.2-4.7 did
  esptool4       OUTDIR/1/<chip>.json (legacy) and OUTDIR/2/<chip>.json (new), no version
                 file: a copy of esptool 4.8+'s targets/stub_flasher
  esptool5       the same plus OUTDIR/VERSION "5.3.1": how espstation tells a 5.x copy
  --stub         which stub the files claim to be (default legacy; ignored by esptool4/5)
"""
import base64, json, os, random, sys

# chip: (short name of the v4.2 layout, IRAM text address, DRAM data address). Addresses are of
# the right kind for each chip (docs/SIMULATOR.md "Flasher stub" gives the ESP32 and ESP8266 ones); the sizes
# are about those of the legacy stub.
CHIPS = {
    "esp8266": ("8266", 0x4010D000, 0x3FFFACAC),
    "esp32":   ("32",   0x400BE000, 0x3FFDEBAC),
    "esp32s2": ("32s2", 0x40028000, 0x3FFE2BF0),
    "esp32s3": ("32s3", 0x40378000, 0x3FCB2BF0),
    "esp32c2": ("32c2", 0x40380000, 0x3FCA2BF0),
    "esp32c3": ("32c3", 0x40380000, 0x3FCB2BF0),
    "esp32c6": ("32c6", 0x40800000, 0x40832BF0),
    "esp32h2": ("32h2", 0x40800000, 0x40832BF0),
    "esp32c5": ("32c5", 0x40800000, 0x40832BF0),
    "esp32p4": ("32p4", 0x4FF10000, 0x4FF42BF0),
}


MARKER = b"ESPSIM-SYNTHETIC-STUB:"


def make(chip, seed, kind="legacy"):
    rnd = random.Random(seed)
    _, text_start, data_start = CHIPS[chip]
    text = MARKER + kind.encode() + b"\0" + bytes(rnd.getrandbits(8)
                                                  for _ in range(3584 + rnd.randrange(512)))
    data = bytes(rnd.getrandbits(8) for _ in range(300 + rnd.randrange(64)))
    return {
        "entry": text_start + 0x658 if len(text) > 0x658 else text_start,
        "text": base64.b64encode(text).decode(),
        "text_start": text_start,
        "data": base64.b64encode(data).decode(),
        "data_start": data_start,
        "bss_start": data_start + len(data) + 0x100,
    }


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if len(argv) >= 2 else 2
    out, layout, kind = argv[1], "v1", "legacy"
    rest = argv[2:]
    while len(rest) >= 2:
        if rest[0] == "--layout" and rest[1] in ("v1", "v4.2", "esptool4", "esptool5"):
            layout = rest[1]
        elif rest[0] == "--stub" and rest[1] in ("legacy", "new"):
            kind = rest[1]
        else:
            print("mkstub.py: unknown option %s %s (see --help)" % (rest[0], rest[1]),
                  file=sys.stderr)
            return 2
        rest = rest[2:]
    if rest:
        print("mkstub.py: option %s needs a value (see --help)" % rest[0], file=sys.stderr)
        return 2
    if layout in ("esptool4", "esptool5"):
        for sub, k in (("1", "legacy"), ("2", "new")):
            d = os.path.join(out, sub)
            os.makedirs(d, exist_ok=True)
            for i, chip in enumerate(CHIPS):
                with open(os.path.join(d, f"{chip}.json"), "w") as f:
                    json.dump(make(chip, 1000 + i, k), f, indent=1)
        if layout == "esptool5":
            with open(os.path.join(out, "VERSION"), "w") as f:
                f.write("5.3.1\n")
        return 0
    os.makedirs(out, exist_ok=True)
    for i, chip in enumerate(CHIPS):
        name = f"{chip}.json" if layout == "v1" else f"stub_flasher_{CHIPS[chip][0]}.json"
        with open(os.path.join(out, name), "w") as f:
            json.dump(make(chip, 1000 + i, kind), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
