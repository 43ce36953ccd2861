#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write SYNTHETIC flasher-stub files for tests: esptool's JSON stub format (reference §8.2:
text/text_start, data/data_start, bss_start, entry) filled with pseudo-random bytes. They are not
firmware and never run on a chip; espsim only checks that an upload matches the format (entry
inside the uploaded text) and then behaves like a stub. Real stubs are never committed: users
point the daemon at an installed esptool's targets/stub_flasher/{1,2} directory.

usage: mkstub.py OUTDIR [--layout v1|v4.2]
  v1   (default) OUTDIR/<chip>.json          as esptool 4.8+ ships in stub_flasher/1 and /2
  v4.2           OUTDIR/stub_flasher_<short>.json as esptool 4.2-4.7 did
"""
import base64, json, os, random, sys

# chip: (short name of the v4.2 layout, IRAM text address, DRAM data address). Addresses are of
# the right kind for each chip (reference §8.2 gives the ESP32 and ESP8266 ones); the sizes
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


def make(chip, seed):
    rnd = random.Random(seed)
    _, text_start, data_start = CHIPS[chip]
    text = bytes(rnd.getrandbits(8) for _ in range(3584 + rnd.randrange(512)))
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
    out, layout = argv[1], "v1"
    if len(argv) >= 4 and argv[2] == "--layout":
        layout = argv[3]
    os.makedirs(out, exist_ok=True)
    for i, chip in enumerate(CHIPS):
        name = f"{chip}.json" if layout == "v1" else f"stub_flasher_{CHIPS[chip][0]}.json"
        with open(os.path.join(out, name), "w") as f:
            json.dump(make(chip, 1000 + i), f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
