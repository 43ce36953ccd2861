#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# mkseeds.py — writes the seed corpora tests/fuzz/corpus/<target>/ from the packet layouts of
# the protocol reference (§3–§4, §11) and the fixtures in tests/data. Deterministic: re-running
# changes nothing. Run from anywhere: python3 tests/fuzz/mkseeds.py
# Must not: write anything but synthetic data (no real firmware) below tests/fuzz/corpus/.
import hashlib
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
DATA = os.path.join(ROOT, "tests", "data")
CORPUS = os.path.join(HERE, "corpus")

OPS = {
    "FLASH_BEGIN": 0x02, "FLASH_DATA": 0x03, "FLASH_END": 0x04, "MEM_BEGIN": 0x05,
    "MEM_END": 0x06, "MEM_DATA": 0x07, "SYNC": 0x08, "WRITE_REG": 0x09, "READ_REG": 0x0A,
    "SPI_SET_PARAMS": 0x0B, "SPI_ATTACH": 0x0D, "READ_FLASH_SLOW": 0x0E,
    "CHANGE_BAUDRATE": 0x0F, "FLASH_DEFL_BEGIN": 0x10, "FLASH_DEFL_DATA": 0x11,
    "FLASH_DEFL_END": 0x12, "SPI_FLASH_MD5": 0x13, "GET_SECURITY_INFO": 0x14,
    "ERASE_FLASH": 0xD0, "ERASE_REGION": 0xD1, "READ_FLASH": 0xD2, "RUN_USER_CODE": 0xD3,
}


def put(target, name, content):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(content)


# ---- packets (PROTOCOL.md §3.2–§3.5) ----

def slip(payload):
    """§3.1: END, payload with C0 -> DB DC and DB -> DB DD, END."""
    return b"\xc0" + payload.replace(b"\xdb", b"\xdb\xdd").replace(b"\xc0", b"\xdb\xdc") + b"\xc0"


def checksum(data):
    c = 0xEF
    for b in data:
        c ^= b
    return c


def request(op, data=b"", chk=0):
    return struct.pack("<BBHI", 0, op, len(data), chk) + data


def response(op, value=0, out=b"", status=b"\0\0\0\0", size=None):
    """direction 1, echoed op, size (the legacy stub lies, §3.3), value, output, status."""
    data = out + status
    return struct.pack("<BBHI", 1, op, len(data) if size is None else size, value) + data


ROM4_OK = b"\0\0\0\0"     # ESP32-family ROM (§3.5)
ROM2_OK = b"\0\0"         # ESP8266 ROM
STUB_OK = b"\0\0"         # any stub


def rom4_fail(code):
    return bytes([1, code, 0, 0])


def rom2_fail(code):
    return bytes([1, code])


SYNC_REQ = request(OPS["SYNC"], b"\x07\x07\x12\x20" + b"\x55" * 32)
SYNC_ROM_VALUE = 0x20120707


def responses():
    """(name, frame) for every opcode in ROM (2- and 4-byte status) and stub forms."""
    out = []
    md5 = hashlib.md5(b"espstation fuzz seed").digest()
    for name, op in OPS.items():
        low = name.lower()
        value = SYNC_ROM_VALUE if op == OPS["SYNC"] else 0
        if op == OPS["READ_REG"]:
            value = 0x00F01D83  # an ESP32 magic word (§5.2)
        if op == OPS["SPI_FLASH_MD5"]:
            out.append((low + "-rom4", response(op, out=md5.hex().encode(), status=ROM4_OK)))
            out.append((low + "-stub", response(op, out=md5, status=STUB_OK, size=18)))
            out.append((low + "-rom-fail-short", response(op, status=rom4_fail(0x05))))
            out.append((low + "-rom-upper-hex", response(op, out=md5.hex().upper().encode())))
            continue
        if op == OPS["GET_SECURITY_INFO"]:
            full = struct.pack("<IB7sII", 0x00000001, 0, b"\0" * 7, 9, 1)  # ESP32-S3, api 1
            out.append((low + "-s3-rom4", response(op, out=full, status=ROM4_OK)))
            out.append((low + "-stub", response(op, out=full, status=STUB_OK, size=20)))
            out.append((low + "-s2-short", response(op, out=full[:12], status=ROM4_OK)))
            out.append((low + "-esp32-unsupported", response(op, status=rom4_fail(0x05))))
            out.append((low + "-8266-other-op", response(OPS["SYNC"], status=rom2_fail(0x05))))
            continue
        if op == OPS["READ_FLASH_SLOW"]:
            out.append((low + "-rom4", response(op, out=bytes(range(64)), status=ROM4_OK)))
            out.append((low + "-rom-fail", response(op, status=rom4_fail(0x09))))
            continue
        if op >= 0xD0:  # stub only
            out.append((low + "-stub", response(op, value, status=STUB_OK, size=2)))
            out.append((low + "-stub-fail-c1", response(op, status=b"\xc1\x00")))
            out.append((low + "-stub-raw-32", response(op, status=b"\x32\x00")))
            continue
        out.append((low + "-rom4", response(op, value, status=ROM4_OK)))
        out.append((low + "-rom2", response(op, value, status=ROM2_OK)))
        out.append((low + "-stub", response(op, value, status=STUB_OK, size=2)))
        out.append((low + "-rom4-fail-07", response(op, status=rom4_fail(0x07))))
        out.append((low + "-rom2-fail-05", response(op, status=rom2_fail(0x05))))
        out.append((low + "-stub-fail-c0ee", response(op, status=b"\xc0\xee")))
    out.append(("new-stub-c100", response(OPS["FLASH_DEFL_DATA"], status=b"\xc1\x00")))
    out.append(("stub-not-implemented", response(OPS["RUN_USER_CODE"], status=b"\xff\x00")))
    out.append(("read-flash-ack", struct.pack("<I", 0x1000)))
    out.append(("request-echo", SYNC_REQ))
    return out


def requests():
    data = bytes((i * 37) & 0xFF for i in range(64)) + b"\xc0\xdb" * 4
    return [
        ("sync", SYNC_REQ),
        ("read-reg", request(OPS["READ_REG"], struct.pack("<I", 0x40001000))),
        ("flash-begin-enc",
         request(OPS["FLASH_BEGIN"], struct.pack("<5I", 0x2000, 2, 0x1000, 0, 0))),
        ("flash-data", request(OPS["FLASH_DATA"], struct.pack("<4I", len(data), 0, 0, 0) + data,
                               checksum(data))),
        ("md5", request(OPS["SPI_FLASH_MD5"], struct.pack("<4I", 0, 0x2000, 0, 0))),
    ]


def slip_seeds():
    rs = dict(responses())
    boot = (b"ets Jun  8 2016 00:22:57\r\n\r\nrst:0x1 (POWERON_RESET),boot:0x3 "
            b"(DOWNLOAD_BOOT(UART0/UART1/SDIO_REI_REO_V2))\r\nwaiting for download\r\n")
    seeds = [
        ("sync-request", slip(SYNC_REQ)),
        ("sync-replies-rom4", slip(rs["sync-rom4"]) * 8),
        ("sync-replies-rom2", slip(rs["sync-rom2"]) * 8),
        ("boot-log-then-reply", boot + slip(rs["sync-rom4"])),
        ("md5-rom", slip(rs["spi_flash_md5-rom4"])),
        ("md5-stub", slip(rs["spi_flash_md5-stub"])),
        ("read-flash-slow-over-64", slip(rs["read_flash_slow-rom4"])),
        ("secinfo", slip(rs["get_security_info-s3-rom4"])),
        # §3.1: extra END bytes after a baud change
        ("baud-extra-ends", slip(rs["change_baudrate-rom4"]) + b"\xc0\xc0\xc0" +
         slip(rs["read_reg-rom4"])),
        ("escapes", slip(response(OPS["READ_REG"], 0xC0DBC0DB, status=ROM4_OK))),
        ("bad-escape", b"\xc0\x01\x0a\xdb\x01\xc0" + slip(rs["read_reg-rom4"])),
        ("esc-end", b"\xc0\x01\xdb\xc0" + slip(rs["sync-stub"])),
        ("noise-mid-frame", b"\xc0\x01\x03\x02\x00\x7f\x00\xfe\x13\xc0" +
         slip(rs["flash_data-rom4"])),
        ("oversize", slip(bytes(range(200))) + slip(rs["flash_end-rom4"])),
        ("partial-frame", slip(rs["sync-rom4"])[:9]),
        ("stub-greeting", slip(b"OHAI") + slip(rs["erase_region-stub"])),
        ("read-flash-stream", slip(bytes(range(256)) * 4) + slip(hashlib.md5(b"x").digest())),
        ("request-stream", b"".join(slip(r) for _, r in requests())),
    ]
    for name, s in seeds:
        put("slip", name, s)


def response_seeds():
    for name, frame in responses():
        put("response", name, frame)


# ---- images (PROTOCOL.md §11) ----

def image(chip_id, payload, entry=0x40080000, mode=2, size_freq=0x20, hash_appended=False,
          esp8266=False, segments=1, trailer=b""):
    hdr = struct.pack("<BBBBI", 0xE9, segments, mode, size_freq, entry)
    ext = b"" if esp8266 else struct.pack("<B3sHBHH4sB", 0xEE, b"\0\0\0", chip_id, 0, 0, 0xFFFF,
                                          b"\0" * 4, 1 if hash_appended else 0)
    body = hdr + ext
    cks = 0xEF
    per = max(1, len(payload) // segments)
    for i in range(segments):
        part = payload[i * per:(i + 1) * per] if i < segments - 1 else payload[i * per:]
        body += struct.pack("<II", 0x3FFB0000 + 0x1000 * i, len(part)) + part
        for b in part:
            cks ^= b
    pad = (len(body) | 15) - len(body)
    body += b"\0" * pad + bytes([cks])
    if hash_appended:
        body += hashlib.sha256(body).digest()
    return body + trailer


def image_seeds():
    for sub in ("idf-v4.0", "idf-v5.x", "idf-v6.0", "encrypted"):
        base = os.path.join(DATA, "flasher_args", sub)
        for dirpath, _, files in os.walk(base):
            for f in sorted(files):
                if f.endswith(".bin"):
                    rel = os.path.relpath(os.path.join(dirpath, f), base).replace("/", "-")
                    with open(os.path.join(dirpath, f), "rb") as fh:
                        content = fh.read()
                    if content[:1] == b"\xe9":
                        put("image", sub + "-" + rel, content)
    pl = bytes((i * 7 + 3) & 0xFF for i in range(96))
    put("image", "esp8266", image(0, pl, entry=0x40100000, esp8266=True, size_freq=0x40))
    put("image", "esp32-bootloader", image(0, pl))
    put("image", "esp32c3-sha", image(5, pl, entry=0x403C0000, hash_appended=True))
    put("image", "esp32s3-sha-merged", image(9, pl, hash_appended=True, trailer=b"\xff" * 64))
    put("image", "esp32c6-3seg", image(13, pl * 2, segments=3))
    put("image", "esp32h2-qio-80m", image(16, pl, mode=0, size_freq=0x3F))
    put("image", "esp32p4", image(18, pl, hash_appended=True))
    put("image", "esp32c2-bad-checksum", image(12, pl)[:-1] + b"\x00")


# ---- recipes, flasher_args.json, station configs ----

def recipe_seeds():
    for f in sorted(os.listdir(os.path.join(DATA, "recipes"))):
        with open(os.path.join(DATA, "recipes", f)) as fh:
            # fuzz_recipe.c loads images from a scratch copy of tests/data/flasher_args placed
            # next to the recipe, and refuses "..": drop the leading "../"
            put("recipe", f, fh.read().replace('"../flasher_args/', '"flasher_args/'))

    def sha(rel):
        with open(os.path.join(DATA, rel), "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()

    v4 = "flasher_args/idf-v4.0/"
    every = {
        "$schema": "recipe.schema.json",
        "description": "every setting",
        "name": "Every setting",
        "version": "0.1.0-rc.1+build.7",
        "chip": "esp32",
        "baud": 921600,
        "stub": "stub.json",
        "flash_mode": "qio",
        "flash_size": "detect",
        "flash_freq": "40m",
        "erase": "all",
        "compress": False,
        "verify": False,
        "before": "no-reset",
        "after": "no-reset",
        "images": [
            {"offset": 4096, "file": v4 + "bootloader/bootloader.bin", "label": "bootloader",
             "sha256": sha("flasher_args/idf-v4.0/bootloader/bootloader.bin")},
            {"offset": "0x8000", "file": v4 + "partition_table/partition-table.bin",
             "sha256": sha("flasher_args/idf-v4.0/partition_table/partition-table.bin")},
            {"offset": "0X10000", "file": v4 + "hello-world.bin", "label": "app",
             "sha256": sha("flasher_args/idf-v4.0/hello-world.bin")},
        ],
        "checks": {"min_flash_size": "2MB", "chip_revision": {"min": "1.0", "max": "v3.99"}},
        "test": {"expect": "hello", "timeout_ms": 100, "baud": 74880},
        "retry": {"attempts": 10},
    }
    put("recipe", "every-setting.json", json.dumps(every, indent=2) + "\n")
    s8266 = {"name": "esp8266", "version": "1", "chip": "esp8266", "flash_size": "4MB-c1",
             "flash_freq": "26m", "stub": False,
             "images": [{"offset": "0x110000", "file": "flasher_args/idf-v6.0/storage.bin",
                         "sha256": sha("flasher_args/idf-v6.0/storage.bin")}]}
    put("recipe", "esp8266.json", json.dumps(s8266))
    wrong = dict(every, chip=["esp32c3", "esp32h2"], stub=True)
    put("recipe", "wrong-chip-image.json", json.dumps(wrong))
    overlap = {"name": "o", "version": "1", "chip": "esp32s3", "images": [
        {"offset": 0, "file": "flasher_args/idf-v6.0/app-s3.bin",
         "sha256": sha("flasher_args/idf-v6.0/app-s3.bin")},
        {"offset": 0, "file": "flasher_args/idf-v6.0/storage.bin",
         "sha256": sha("flasher_args/idf-v6.0/storage.bin")}]}
    put("recipe", "overlap.json", json.dumps(overlap))
    put("recipe", "errors.json", json.dumps({
        "name": " bad", "version": "", "chip": ["esp32", "esp32"], "baud": 1.5, "flash_mode": 3,
        "images": [{"offset": "0x1001", "file": "/etc/passwd", "sha256": "ABC", "x": 1}],
        "checks": {"chip_revision": {"min": "v2.0", "max": "v1.0"}}, "unknown": None}))
    put("recipe", "parent.json", json.dumps({"name": "p", "version": "1", "chip": "esp32",
                                             "stub": "../stub.json", "images": [
        {"offset": 0, "file": "../x.bin", "sha256": "0" * 64}]}))
    # an image that runs past the flash size the recipe names; usb-reset
    small = {"name": "small", "version": "1", "chip": "esp8266", "flash_size": "256KB",
             "before": "usb-reset", "checks": {"min_flash_size": "256KB"}, "images": [
        {"offset": "0x3F000", "file": "flasher_args/idf-v6.0/storage.bin",
         "sha256": sha("flasher_args/idf-v6.0/storage.bin")},
        {"offset": 262144, "file": "flasher_args/idf-v6.0/app-s3.bin",
         "sha256": sha("flasher_args/idf-v6.0/app-s3.bin")}]}
    put("recipe", "past-flash-size.json", json.dumps(small))
    put("recipe", "number-errors.json", json.dumps({
        "name": "n", "version": "1", "chip": "esp32", "baud": 10000000, "images": [
            {"offset": 4097, "file": "a.bin", "sha256": "0" * 64},
            {"offset": "0xZZ", "file": "b.bin", "sha256": "0" * 64},
            {"offset": -4096, "file": "c.bin", "sha256": "0" * 64, "label": ""}],
        "test": {"expect": "", "timeout_ms": 99}, "retry": {"attempts": 0}}))
    put("recipe", "syntax-error.json", '{"name": "x",\n  "version": "1"\n  "chip": "esp32"}')


def flasher_args_seeds():
    for sub in ("idf-v4.0", "idf-v5.x", "idf-v6.0", "encrypted"):
        with open(os.path.join(DATA, "flasher_args", sub, "flasher_args.json")) as fh:
            put("flasher_args", sub + ".json", fh.read())
    # IDF v4.1 wrote "stub": "TRUE"; write_flash_args only (no flash_settings); absolute path
    put("flasher_args", "v41-write-flash-args.json", json.dumps({
        "write_flash_args": ["--flash-mode", "qio", "--flash_size", "2MB", "--flash_freq", "26m"],
        "flash_files": {"0x1000": "bootloader/bootloader.bin", "0x10000": "hello-world.bin"},
        "bootloader": {"offset": "0x1000", "file": "bootloader/bootloader.bin"},
        "app": {"offset": "0x10000", "file": "hello-world.bin"},
        "extra_esptool_args": {"after": "hard_reset", "before": "usb_reset", "stub": "TRUE",
                               "chip": "esp32"}}, indent=4))
    put("flasher_args", "bad-settings.json", json.dumps({
        "flash_settings": {"flash_mode": "fast", "flash_size": "3MB", "flash_freq": "1m"},
        "flash_files": {"0x1001": "x.bin", "banana": "y.bin", "0x0": "", "0x2000": 5},
        "extra_esptool_args": {"chip": "esp64", "before": "kick", "after": "sleep"}}))
    put("flasher_args", "missing-files.json", json.dumps({
        "flash_files": {"0x0": "no/such.bin", "0x8000": "/dev/null"},
        "extra_esptool_args": {"chip": "esp32c3"}}))


def config_seeds():
    put("config", "station-md.json", json.dumps({
        "id": "line3-st1", "name": "Line 3, station 1",
        "database": "/var/lib/espstation/espstation.db", "listen": "127.0.0.1:8080",
        "recipe": "recipes/sensor-v2.json", "probe_interval_ms": 2000,
        "slots": [
            {"name": "A1", "port": "/dev/serial/by-path/pci-0000:00:14.0-usb-0:1.1:1.0-port0",
             "start": "loop"},
            {"name": "A2", "port": "usb-serial:0001A7F3", "start": "auto"},
            {"name": "B1", "port": "rfc2217://10.0.0.21:4001", "start": "loop",
             "recipe": "recipes/other.json"},
            {"name": "B2", "port": "socket://10.0.0.21:4002", "before": "no_reset",
             "start": "manual"}]}, indent=2))
    put("config", "minimal.json", '{"slots":[{"port":"/dev/ttyUSB0"}]}')
    put("config", "every-setting.json", json.dumps({
        "id": "st", "name": "n", "database": "db.sqlite", "listen": "127.0.0.1:0",
        "stub_dir": "stubs", "token_file": "/etc/espstation/tokens", "image_dir": "/srv/img",
        "recipe": "/srv/r.json", "probe_interval_ms": 600000, "web_root": "web",
        "http": {"read_access": "token", "max_connections": 4096, "max_header_bytes": 1024,
                 "max_body_bytes": 67108864, "max_upload_bytes": 1073741824,
                 "idle_timeout_ms": 1000},
        "slots": [{"name": "s.1_a-b", "port": "/dev/ttyACM0", "before": "usb_reset",
                   "after": "no_reset", "start": "auto", "recipe": "r.json"}]}))
    put("config", "same-device.json", json.dumps({"slots": [
        {"port": "/dev/null"}, {"port": "/dev/../dev/null"}]}))
    put("config", "http-errors.json", json.dumps({"http": {"read_access": "closed",
        "max_connections": 0, "max_body_bytes": 1.5, "colour": 1}, "slots": [{"port": "/x"}]}))
    put("config", "errors.json", json.dumps({
        "slots": [{"name": "A", "port": "/dev/x"}, {"name": "A", "port": "/dev/x"}],
        "probe_interval_ms": 199.5}))
    slots = [{"port": "socket://127.0.0.1:%d" % (4000 + i)} for i in range(32)]
    put("config", "32-slots.json", json.dumps({"slots": slots}))


# ---- HTTP requests for fuzz_http.c (its scratch station: tokens, files and jobs) ----

TOK = {"viewer": "viewer-token-000000000001", "mes": "mes-token-000000000000002",
       "operator": "operator-token-0000000003", "engineer": "engineer-token-0000000004"}


def http(method, target, role=None, ctype=None, body=b"", extra=()):
    head = ["%s %s HTTP/1.1" % (method, target), "Host: 127.0.0.1:8080"]
    if role:
        head.append("Authorization: Bearer " + TOK.get(role, role))
    if ctype:
        head.append("Content-Type: " + ctype)
    head += list(extra)
    if body or method in ("POST", "PUT"):
        head.append("Content-Length: %d" % len(body))
    if isinstance(body, str):
        body = body.encode()
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def http_seeds():
    app = bytes((i * 7 + 3) & 0xFF for i in range(8192))
    app_sha = hashlib.sha256(app).hexdigest()
    r_json = ('{"name":"fuzz","version":"1.0","chip":"esp32c3","images":[{"offset":"0x10000",'
              '"file":"app.bin","sha256":"%s"}]}' % app_sha)
    r_hash = hashlib.sha256(r_json.encode()).hexdigest()
    secret_sha = hashlib.sha256(b"ESTN-FUZZ-SECRET-3b9e1c\n").hexdigest()
    job = "f0000000-0000-4000-8000-000000000002"
    js = "application/json"
    new_recipe = json.dumps({"name": "new", "version": "2", "chip": ["esp32c3", "esp32"],
                             "images": [{"offset": 65536, "file": "app.bin", "sha256": app_sha}]})
    hello = b"hello image\n"
    seeds = {
        "station": http("GET", "/api/v1/station"),
        "auth-engineer": http("GET", "/api/v1/auth", "engineer"),
        "auth-unknown": http("GET", "/api/v1/auth", "nobody-token-00000000000"),
        "slots": http("GET", "/api/v1/slots", "viewer"),
        "slot-a1": http("GET", "/api/v1/slots/A1"),
        "slot-unknown": http("GET", "/api/v1/slots/Z9"),
        "start": http("POST", "/api/v1/slots/A1/start", "operator"),
        "start-no-recipe": http("POST", "/api/v1/slots/A2/start", "operator"),
        "start-viewer": http("POST", "/api/v1/slots/A1/start", "viewer"),
        "start-no-token": http("POST", "/api/v1/slots/A1/start"),
        "start-unknown-token": http("POST", "/api/v1/slots/A1/start", "Bearer-nobody-000000000000"),
        "cancel": http("POST", "/api/v1/slots/A1/cancel", "operator"),
        "slot-recipe-null": http("PUT", "/api/v1/slots/A1/recipe", "engineer", js,
                                 '{"hash": null}'),
        "slot-recipe-hash": http("PUT", "/api/v1/slots/A1/recipe", "engineer", js,
                                 '{"hash": "%s"}' % r_hash),
        "jobs": http("GET", "/api/v1/jobs?after=0&limit=2&result=pass&mac=24:0a:c4:00:00:01"
                     "&slot=A1&since=2020-01-01"),
        "jobs-bad-limit": http("GET", "/api/v1/jobs?limit=abc&after=-1&since=yesterday"),
        "job": http("GET", "/api/v1/jobs/" + job),
        "job-unknown": http("GET", "/api/v1/jobs/f0000000-0000-4000-8000-00000000000f"),
        "device": http("GET", "/api/v1/devices/240AC4000001"),
        "device-dashes": http("GET", "/api/v1/devices/24-0a-c4-00-00-02"),
        "device-bad": http("GET", "/api/v1/devices/24:0a:c4"),
        "csv": http("GET", "/api/v1/jobs.csv?limit=100000&result=fail", "mes"),
        "csv-viewer": http("GET", "/api/v1/jobs.csv", "viewer"),
        "recipes": http("GET", "/api/v1/recipes"),
        "recipe": http("GET", "/api/v1/recipes/" + r_hash),
        "recipe-post": http("POST", "/api/v1/recipes", "engineer", js, new_recipe),
        "recipe-post-text": http("POST", "/api/v1/recipes", "engineer", "text/plain", new_recipe),
        "recipe-post-escape": http("POST", "/api/v1/recipes", "engineer", js, json.dumps(
            {"name": "esc", "version": "1", "chip": "esp32c3", "images": [
                {"offset": 0, "file": "../secret.txt", "sha256": secret_sha},
                {"offset": 4096, "file": "/etc/passwd", "sha256": "0" * 64}]})),
        "recipe-post-symlink": http("POST", "/api/v1/recipes", "engineer", js, json.dumps(
            {"name": "link", "version": "1", "chip": "esp32c3", "images": [
                {"offset": 0, "file": "leak.bin", "sha256": secret_sha}]})),
        "recipe-post-invalid": http("POST", "/api/v1/recipes", "engineer", js,
                                    '{"name": "", "images": [{"offset": "0x1001"}]}'),
        "image-put": http("PUT", "/api/v1/images/new.bin?sha256=" +
                          hashlib.sha256(hello).hexdigest(), "engineer",
                          "application/octet-stream", hello),
        "image-put-mismatch": http("PUT", "/api/v1/images/app.bin?sha256=" + "0" * 64,
                                   "engineer", "application/octet-stream", hello),
        "image-put-slash": http("PUT", "/api/v1/images/..%2Fx.bin?sha256=" + app_sha, "engineer",
                                "application/octet-stream", hello),
        "images": http("GET", "/api/v1/images"),
        "stats": http("GET", "/api/v1/stats?since=2026-11-21T10:04:05.123Z&until=2026-11-22"),
        "stats-offset": http("GET", "/api/v1/stats?since=2026-11-21T10:04%2B02:00"),
        "events": http("GET", "/api/v1/events", extra=["Last-Event-ID: 0badf00d:0"]),
        "events-bad-id": http("GET", "/api/v1/events?last_event_id=nope"),
        "metrics": http("GET", "/metrics"),
        "root": http("GET", "/"),
        "index": http("GET", "/index.html?v=1"),
        "app-js": http("GET", "/app.js"),
        "static-symlink": http("GET", "/leak.txt"),
        "static-dotdot": http("GET", "/../secret.txt"),
        "static-encoded": http("GET", "/%2e%2e/secret.txt"),
        "static-encoded-slash": http("GET", "/..%2fsecret.txt"),
        "method-not-allowed": http("DELETE", "/api/v1/slots/A1", "engineer"),
        "header-too-large": http("GET", "/api/v1/station", extra=["X-Pad: " + "a" * 2100]),
        "body-too-large": http("POST", "/api/v1/recipes", "engineer", js, " " * 9000 + "{}"),
        "not-http": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        "lf-only": b"GET /api/v1/slots/A1 HTTP/1.1\nAuthorization: Bearer " +
                   TOK["viewer"].encode() + b"\n\n",
    }
    for name, req in seeds.items():
        put("http", name, req)


# ---- Secure Boot v2 signature sectors (docs/SECURITY-PROVISIONING.md) ----

def sbv2_block(version, body, sha=0):
    """A 1216-byte signature block: magic, version, hash type, body, CRC32 of 1196 bytes."""
    import zlib
    blk = bytes([0xE7, version, sha, 0]) + body
    blk = blk[:1196].ljust(1196, b"\0")
    return blk + struct.pack("<I", zlib.crc32(blk) & 0xFFFFFFFF) + b"\0" * 16


def sbv2_seeds():
    vec = os.path.join(DATA, "vectors", "security")

    def read(name):
        with open(os.path.join(vec, name), "rb") as f:
            return f.read()
    rsa = read("c3_app_signed_rsa3072.bin")
    ecdsa = read("c3_app_signed_ecdsa256.bin")
    put("sbv2", "signed-rsa3072.bin", rsa)
    put("sbv2", "signed-ecdsa256.bin", ecdsa)
    put("sbv2", "tampered-rsa3072.bin", read("c3_app_signed_rsa3072_tampered.bin"))
    put("sbv2", "unsigned-unaligned.bin", read("c3_app_unsigned.bin"))
    body = bytes(range(256)) * 16  # one synthetic 4 KiB "image" sector
    rsa_blk, ecdsa_blk = rsa[-4096:][:1216], ecdsa[-4096:][:1216]
    put("sbv2", "lone-block.bin", rsa_blk)
    put("sbv2", "three-blocks.bin", body + (rsa_blk + ecdsa_blk + rsa_blk).ljust(4096, b"\xff"))
    digest = hashlib.sha384(body).digest()
    p384 = sbv2_block(3, digest + bytes([3]) + b"\x11" * 96 + b"\x22" * 96, sha=1)
    put("sbv2", "p384-block.bin", body + p384.ljust(4096, b"\xff"))
    p192 = sbv2_block(3, hashlib.sha256(body).digest() + bytes([1]) + b"\x33" * 128)
    put("sbv2", "p192-block.bin", body + p192.ljust(4096, b"\xff"))
    bad = bytearray(rsa)
    bad[-4096 + 1196] ^= 0xFF
    put("sbv2", "bad-crc.bin", bytes(bad))
    put("sbv2", "bad-version.bin", body + sbv2_block(7, b"").ljust(4096, b"\xff"))
    put("sbv2", "empty-sector.bin", b"\xff" * 8192)


def escrow_seeds():
    """Escrow blobs (docs/SECURITY-PROVISIONING.md §10.2) and GET_SECURITY_INFO outputs (§9);
    the ciphertexts are random-looking filler: no real key is involved."""
    def blob(label, secret_len, ct, version=1, alg=1, key_id=b"\x5a" * 32):
        return (b"ESKW" + bytes([version, alg, len(label), 0]) + key_id +
                struct.pack("<HH", secret_len, len(ct)) + label + ct)
    filler = hashlib.sha512(b"escrow-seed").digest() * 6  # 384 bytes
    put("escrow", "rsa3072-flash-key", blob(b"flash_encryption_key", 32, filler))
    put("escrow", "rsa3072-xts256-key", blob(b"flash_encryption_key", 64, filler))
    put("escrow", "no-label", blob(b"", 32, filler))
    put("escrow", "truncated", blob(b"nvs_key", 32, filler)[:-7])
    put("escrow", "bad-version", blob(b"nvs_key", 32, filler, version=2))
    put("escrow", "bad-alg", blob(b"nvs_key", 32, filler, alg=9))
    secinfo = struct.pack("<IB7BII", 0x85, 1, 4, 9, 0, 0, 0, 0, 0, 5, 3)
    put("escrow", "secinfo-c3-secured", secinfo)
    put("escrow", "secinfo-s2-12-bytes", secinfo[:12])



def espsim_efuse_seeds():
    """espsim --efuse-file bodies (docs/SIMULATOR.md "eFuses and security"): blank ESP32 and
    ESP32-C3 chips, a C3 with a key and purposes, and damaged variants."""
    def efuse_file(chip, nblocks, words_of, rs=True, fill=None):
        blocks = []
        for b in range(nblocks):
            n = words_of(b)
            o = {"block": b, "words": ["0x%08x" % ((fill or {}).get((b, i), 0)) for i in range(n)]}
            if rs and b >= 1:
                o["rs"] = ["0x00000000"] * 3
            blocks.append(o)
        return json.dumps({"chip": chip, "blocks": blocks}, indent=2)
    esp32 = efuse_file("esp32", 4, lambda b: 7 if b == 0 else 8, rs=False,
                       fill={(0, 1): 0x5e113322, (0, 6): 1})
    c3 = efuse_file("esp32c3", 11, lambda b: 6 if b <= 1 else 8,
                    fill={(1, 0): 0x5ef93a60, (4, 0): 0x01020304, (0, 2): 4 << 24 | 1 << 18})
    put("espsim_efuse", "esp32-blank.json", esp32)
    put("espsim_efuse", "esp32c3-key.json", c3)
    put("espsim_efuse", "esp32c3-wrong-count.json", c3.replace('"block": 10', '"block": 9', 1))
    put("espsim_efuse", "esp32c3-bad-hex.json", c3.replace("0x5ef93a60", "0xZZ", 1))
    put("espsim_efuse", "truncated.json", c3[:200])


def nvs_csv_seeds():
    """Generator CSVs (docs/DEVICE-DATA.md "Input CSV"): the NVS vectors' inputs, and rows for
    every encoding, quoting, comments, file rows (the fuzz loader: a path with "big" gives 700
    bytes, "fail" cannot be read), limits and refusals."""
    vec = os.path.join(DATA, "vectors", "nvs")
    for name in sorted(os.listdir(vec)):
        if name.endswith(".csv"):
            with open(os.path.join(vec, name), "rb") as f:
                put("nvs_csv", name, f.read())
    head = "key,type,encoding,value\n"
    put("nvs_csv", "every-encoding.csv", head + "ns,namespace,,\n" + "".join(
        "%s,data,%s,%s\n" % (e, e, v) for e, v in (
            ("u8", "0"), ("i8", "-1"), ("u16", "1_000"), ("i16", " 7 "), ("u32", "+42"),
            ("i32", "-2147483648"), ("u64", "18446744073709551615"),
            ("i64", "9223372036854775807"), ("string", "hello"), ("hex2bin", "00ff"),
            ("base64", "QUJD\n="), ("binary", "raw bytes"))))
    put("nvs_csv", "quoted.csv", head + '# comment\r\nns,namespace,,\r\n'
        '"k,1",data,string,"a ""quoted"", multi\nline value"\r\n'
        'k2,data,string,""\r\n\r\nk3,data,string,"open')
    put("nvs_csv", "files.csv", head + "ns,namespace,,\nf1,file,binary,big.bin\n"
        "f2,file,string,name.txt\nf3,file,hex2bin,0a0b\nf4,file,base64,big64\n"
        "f5,file,u8,7\nf6,file,binary,fail.bin\n")
    put("nvs_csv", "namespaces.csv", head + "a,namespace,,\nx,data,u8,1\nb,namespace,,\n"
        "y,data,u8,2\na,namespace,,\nz,data,u8,3\n")
    put("nvs_csv", "page-edge.csv", head + "ns,namespace,,\n" + "".join(
        "s%d,data,string,%s\n" % (i, "x" * (300 + 37 * i)) for i in range(14)) +
        "blob,data,hex2bin," + "ab" * 5000 + "\nlast,data,u8,1\n")
    put("nvs_csv", "string-3968.csv", head + "ns,namespace,,\nlong,data,string," +
        "y" * 3967 + "\nlonger,data,string," + "y" * 3968 + "\n")
    put("nvs_csv", "errors.csv", head + "k,data,u8,1\nns,namespace,,\n"
        "sixteen_chars_k,data,u8,256\nh,data,hex2bin,abc\nb,data,base64,Q\n"
        "t,blob,u8,1\ne,data,u9,1\nonly_key\n")
    put("nvs_csv", "no-header.csv", "ns,namespace,,\nk,data,u8,1\n")
    put("nvs_csv", "mfg-config-repeat.csv", "dev,namespace,\nsn,data,string\n"
        "rev,data,u8,REPEAT\nx_missing,data,u8\nblob,file,binary\n")


def stub_version_seeds():
    """Bodies of a copied stub_flasher's VERSION file / an installed esptool's __init__.py
    (docs/CLI.md "Flasher stubs", jobs/stub.c stub_esptool_version)."""
    put("stub_version", "version-5", "5.3.1\n")
    put("stub_version", "init-4", '__version__ = "4.12.0"\n')
    put("stub_version", "init-5dev", '# -*- coding\nfrom x import y\n__version__ = "5.0.dev3"\n')
    put("stub_version", "not-a-version", "v5\n")
    put("stub_version", "long", "5" + "1" * 40 + "\n")


def devdata_seeds():
    """Value templates (docs/DEVICE-DATA.md "Value sources"): every placeholder and spec, literal
    braces, and malformed ones."""
    for i, t in enumerate([
            "SN-{year}-{n:06}", "{n}", "{n:x}{n:X}{n:08X}{n:20}", "ACME-{mac:HEX}",
            "{mac}{mac:COLON}{mac:dash}{mac:DASH}{mac:hex}{mac:last3}{mac:LAST3}",
            "{yy}{month}{day}-{hour}{minute} d{doy} w{week}", "{flash_id}/{flash_id:HEX}",
            "{chip}:{chip:upper}:{rev}:{serial:upper}", "{{literal}} {{{n}}}", "plain",
            "SN-{n", "}", "{}", "{n:{year}}", "{n:0}", "{mac:weird}", "{unknown}",
            "x" * 3990 + "{n:020}"]):
        put("devdata", "t%02d.txt" % i, t)


def efuse_seeds():
    """eFuse planner inputs (docs/SECURITY-PROVISIONING.md §6): chip byte (0 esp32, 1 esp32s3,
    2 esp32c3, 3 esp32c6, 4 esp32s2), 11 blocks of 32 bytes as read from a chip, then 10-byte requests
    (op: 0 set, 1 set bytes, 2 key, 3 custom MAC, 4 protect; field/block index; value)."""
    def req(op, idx, value=b""):
        return bytes([op, idx]) + value.ljust(8, b"\0")[:8]

    def state(blocks=None):
        out = bytearray(11 * 32)
        for i, data in (blocks or {}).items():
            out[i * 32:i * 32 + len(data)] = data
        return bytes(out)
    secure = (req(2, 0, bytes([4])) + req(2, 0, bytes([9])) + req(0, 7, bytes([1])) +
              req(0, 18, bytes([1])) + req(0, 21, bytes([1])) + req(3, 0, bytes.fromhex("240ac4010203")) +
              req(4, 5, bytes([1])) + req(0, 0, bytes([1])))
    for chip in range(5):
        put("efuse", "blank-secure-%d" % chip, bytes([chip]) + state() + secure)
    used = state({0: bytes(10) + b"\x80\x04", 4: b"\xaa" * 32, 3: b"\x55"})
    put("efuse", "c3-key0-used", bytes([2]) + used + secure)
    put("efuse", "esp32-34-coding", bytes([0]) + state({0: bytes(24) + b"\x01"}) +
        req(2, 0, bytes([4, 0, 0x02])) + req(3, 0, bytes.fromhex("240ac4010203")))
    put("efuse", "s3-xts256", bytes([1]) + state() + req(2, 0, bytes([2, 1])))
    put("efuse", "write-protected", bytes([2]) + state({0: b"\xff\xff\xff\xff\x7f"}) + secure)


def plan_seeds():
    """The plan's settings: flash sizes (ESP8266 layouts too), frequencies, reset modes in both
    spellings, and near misses (docs/RECIPES.md, jobs/plan.c)."""
    for v in ("keep", "detect", "4MB", "512KB", "2MB-c1", "4MB-c1", "8MB-c1", "128MB", "3MB",
              "40m", "80m", "0m", "40", "hard_reset", "hard-reset", "no_reset", "default_reset",
              "usb-reset", "no-reset-no-sync"):
        put("plan", "seed-" + v, v)


if __name__ == "__main__":
    slip_seeds()
    response_seeds()
    image_seeds()
    recipe_seeds()
    flasher_args_seeds()
    config_seeds()
    http_seeds()
    sbv2_seeds()
    escrow_seeds()
    efuse_seeds()
    espsim_efuse_seeds()
    nvs_csv_seeds()
    devdata_seeds()
    stub_version_seeds()
    plan_seeds()
