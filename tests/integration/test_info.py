#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# test_info.py — `espstation info --json` against `espsim`: the chip, MAC, JEDEC flash ID and
# flash size reported must be the ones the sim was started with (and announces on its ready
# line). Must not: write flash; the sim's dump must stay fully erased.
# Run one case: test_info.py --build BUILD --case esp32c3-tcp (--list prints the cases).

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import esp_image as img  # noqa: E402
from harness import Sim, check, check_no_crash, main, parse_json_result, run_espstation  # noqa

INFO_CASES = {
    # name: (chip, transport, mac, jedec)
    "esp32c3-tcp": ("esp32c3", "tcp", "34:85:18:01:c3:7e", 0xEF4015),
    "esp8266-pty": ("esp8266", "pty", "5c:cf:7f:82:66:01", 0xEF4014),
    "esp32-rfc2217": ("esp32", "rfc2217", "24:0a:c4:32:00:99", 0xEF4016),
}


def info_case(chip, transport, mac, jedec):
    def run(ctx):
        ctx.require_executables("espsim", "espstation")
        sim = Sim(ctx, chip, transport, mac=mac, jedec=jedec)
        check(sim.ready["mac"] == mac, "SIM: ready mac %r, expected %r" % (sim.ready["mac"], mac))
        check(sim.ready["flash_id"] == img.jedec_str(jedec),
              "SIM: ready flash_id %r, expected %s" % (sim.ready["flash_id"], img.jedec_str(jedec)))
        check(sim.ready["flash_size"] == img.jedec_size(jedec),
              "SIM: ready flash_size %r, expected %d" % (sim.ready["flash_size"],
                                                         img.jedec_size(jedec)))
        r = run_espstation(ctx, ["info", "--port", sim.port, "--json"], timeout=30)
        check_no_crash(r)
        check(r.status == 0, "HOST: info exit status %s\n%s" % (r.status, r.describe()))
        obj = parse_json_result(r)
        if "result" in obj:
            check(obj["result"] == "pass", "HOST: info result %r" % obj["result"])
        check(obj.get("chip") == chip, "HOST: chip %r, expected %r" % (obj.get("chip"), chip))
        check(obj.get("mac") == mac, "HOST: mac %r, expected %r" % (obj.get("mac"), mac))
        check(obj.get("flash_id") == img.jedec_str(jedec),
              "HOST: flash_id %r, expected %r" % (obj.get("flash_id"), img.jedec_str(jedec)))
        fs = obj.get("flash_size")
        check(isinstance(fs, int) and not isinstance(fs, bool) and fs == img.jedec_size(jedec),
              "HOST: flash_size %r, expected %d" % (fs, img.jedec_size(jedec)))
        check("revision" in obj and obj["revision"] is not None,
              "HOST: info has no revision: %r" % obj)
        if "revision" in sim.ready:  # the sim announces it beyond the contract: compare
            check(obj["revision"] == sim.ready["revision"],
                  "HOST: revision %r, sim has %r" % (obj["revision"], sim.ready["revision"]))
        dump = sim.stop_and_dump()
        check(dump == b"\xff" * img.jedec_size(jedec), "HOST/SIM: info changed the flash")

    return run


CASES = {name: info_case(*spec) for name, spec in INFO_CASES.items()}

if __name__ == "__main__":
    sys.exit(main(CASES, "espstation info integration tests against espsim"))
