#!/usr/bin/env node
// SPDX-License-Identifier: MIT
// ctests `esptooljs.*`: hold espsim to an independent client, Espressif's esptool-js, run under
// Node over raw TCP (tcp-serial.mjs). Starts one simulator per chip, drives it through esptool-js
// and checks what esptool-js reports against the simulator's ready line, events and --flash-out
// dump. It must not reimplement the loader protocol: every byte on the wire is framed by
// esptool-js.
//
// Usage: node run.mjs --espsim PATH [--chips esp32,esp32s3] [--rom | --baud N] [--trace]
//                     [--keep] [--sim-arg ARG]...   (extra espsim arguments, e.g. to check that
//                                                   a --fault makes this test fail)
//
// Default (esptooljs.stub): esptool-js's real flow - main() uploads the stub JSON esptool-js
// ships and waits for "OHAI", then writeFlash (compressed and not, 16 KiB blocks, stub MD5),
// readFlash (READ_FLASH with ACKs), flashMd5sum, eraseFlash.
// --baud N (esptooljs.baud): the same at N baud (main() -> changeBaud(), stub form) against a
// --realtime espsim, so the faster write proves both sides switched.
// --rom (esptooljs.rom): ROM loader only, through esptool-js's lower-level methods:
// connect/sync, chip detection, description/features/crystal/MAC, readFlashId, writeFlash in ROM
// mode (FLASH_DEFL_* and FLASH_*), flashMd5sum and READ_FLASH_SLOW read-back.

import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import readline from "node:readline";
import { fileURLToPath } from "node:url";
import { TcpSerialPort } from "./tcp-serial.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OVERALL_TIMEOUT_MS = 110_000; // ctest kills at 120 s; leave time to reap children
const READY_TIMEOUT_MS = 10_000;
const STEP_TIMEOUT_MS = 30_000;
const EXIT_TIMEOUT_MS = 5_000;

// Loader opcodes esptool-js has no wrapper for (docs/SIMULATOR.md "ROM loader").
const OP_FLASH_BEGIN = 0x02;
const OP_SPI_ATTACH = 0x0d;
const OP_READ_FLASH_SLOW = 0x0e;
// esptool's ROM FLASH_WRITE_SIZE (docs/SIMULATOR.md "ROM loader").
const ROM_FLASH_WRITE_SIZE = 0x400;

const CHIPS = {
    esp32: { name: "ESP32", mac: "24:0a:c4:12:34:56", seed: 0x3201 },
    esp32s3: { name: "ESP32-S3", mac: "f4:12:fa:65:43:21", seed: 0x5303 },
};

// ---------------------------------------------------------------------------------------------
// Small harness: counted checks, bounded waits, children always reaped.

let passed = 0;
let failed = 0;
const children = new Set();

function log(msg) {
    process.stdout.write(`${msg}\n`);
}

function check(name, ok, detail = "") {
    if (ok) {
        passed++;
        log(`ok   - ${name}`);
    } else {
        failed++;
        log(`FAIL - ${name}${detail ? `: ${detail}` : ""}`);
    }
    return ok;
}

function withTimeout(promise, ms, what) {
    let timer;
    const t = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: timed out after ${ms} ms`)), ms);
    });
    return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

function killAll() {
    for (const child of children) {
        if (child.exitCode === null && child.signalCode === null) {
            child.kill("SIGKILL");
        }
    }
}

process.on("exit", killAll);
for (const sig of ["SIGINT", "SIGTERM"]) {
    process.on(sig, () => {
        killAll();
        process.exit(2);
    });
}

function parseArgs(argv) {
    const opts = { espsim: null, chips: Object.keys(CHIPS), trace: false, keep: false,
        rom: false, baud: 115200, simArgs: [] };
    for (let i = 2; i < argv.length; i++) {
        const a = argv[i];
        if (a === "--espsim") {
            opts.espsim = argv[++i];
        } else if (a === "--chips") {
            opts.chips = argv[++i].split(",").filter(Boolean);
        } else if (a === "--trace") {
            opts.trace = true;
        } else if (a === "--keep") {
            opts.keep = true;
        } else if (a === "--rom") {
            opts.rom = true;
        } else if (a === "--baud") {
            opts.baud = Number(argv[++i]);
            if (!Number.isInteger(opts.baud) || opts.baud < 9600) {
                throw new Error(`bad --baud ${argv[i]}`);
            }
        } else if (a === "--sim-arg") {
            opts.simArgs.push(argv[++i]);
        } else {
            throw new Error(`unknown argument ${a}`);
        }
    }
    if (!opts.espsim) {
        throw new Error("--espsim PATH is required");
    }
    for (const c of opts.chips) {
        if (!CHIPS[c]) {
            throw new Error(`unsupported chip ${c} (known: ${Object.keys(CHIPS).join(", ")})`);
        }
    }
    return opts;
}

// Fails (not skips) with the remedy when the npm dependency is absent or stale.
async function loadEsptoolJs() {
    const want = JSON.parse(readFileSync(path.join(HERE, "package.json"), "utf8"))
        .dependencies["esptool-js"];
    const pkgPath = path.join(HERE, "node_modules", "esptool-js", "package.json");
    const remedy = "run deploy/install-deps.sh (it runs `npm ci --prefix tests/esptooljs`)";
    if (!existsSync(pkgPath)) {
        throw new Error(`esptool-js is not installed in ${path.join(HERE, "node_modules")}: ` +
            remedy);
    }
    const have = JSON.parse(readFileSync(pkgPath, "utf8")).version;
    if (have !== want) {
        throw new Error(`esptool-js ${have} installed but package.json pins ${want}: ${remedy}`);
    }
    return import("esptool-js");
}

// ---------------------------------------------------------------------------------------------
// Simulator process.

async function startSim(espsim, chip, mac, flashOut, extra = []) {
    const args = ["--chip", chip, "--tcp", "0", "--mac", mac, "--flash-out", flashOut, ...extra];
    log(`# starting ${espsim} ${args.join(" ")}`);
    const child = spawn(espsim, args, { stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    const sim = { child, events: [], stderr: "", exited: null };
    const exited = new Promise((resolve) => {
        child.once("exit", (code, signal) => {
            sim.exited = { code, signal };
            resolve(sim.exited);
        });
    });
    sim.waitExit = (ms) => withTimeout(exited, ms, `${chip} espsim exit`);
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (s) => {
        // Bounded: keep the tail for diagnostics only.
        sim.stderr = (sim.stderr + s).slice(-8192);
    });
    const lines = readline.createInterface({ input: child.stdout });
    const ready = new Promise((resolve, reject) => {
        child.once("error", reject);
        exited.then((e) => reject(new Error(`espsim exited before ready (${JSON.stringify(e)})` +
            `; stderr: ${sim.stderr.trim()}`)));
        lines.on("line", (line) => {
            let ev;
            try {
                ev = JSON.parse(line);
            } catch {
                ev = { unparsed: line };
            }
            if (sim.events.length < 1000) {
                sim.events.push(ev);
            }
            if (sim.events.length === 1) {
                if (ev.event === "ready") {
                    resolve(ev);
                } else {
                    reject(new Error(`first stdout line is not a ready event: ${line}`));
                }
            }
        });
    });
    sim.ready = await withTimeout(ready, READY_TIMEOUT_MS, `${chip} espsim ready line`);
    return sim;
}

async function stopSim(sim) {
    if (sim.exited) {
        return sim.exited;
    }
    sim.child.kill("SIGTERM");
    try {
        return await sim.waitExit(EXIT_TIMEOUT_MS);
    } catch {
        sim.child.kill("SIGKILL");
        return sim.waitExit(EXIT_TIMEOUT_MS).catch(() => ({ code: null, signal: "lost" }));
    }
}

function parseSocketSpec(spec) {
    const m = /^socket:\/\/(127\.0\.0\.1|localhost|\[::1\]):(\d+)$/.exec(spec ?? "");
    if (!m) {
        throw new Error(`ready.port is not a loopback socket:// spec: ${spec}`);
    }
    return { host: m[1].replace(/^\[|\]$/g, ""), port: Number(m[2]) };
}

// ---------------------------------------------------------------------------------------------
// Data helpers.

// Deterministic test image: a mix of random and repetitive runs so that deflate produces a
// multi-block stream that really has to be inflated (not only stored blocks).
function makeImage(seed, size) {
    const out = new Uint8Array(size);
    let x = seed >>> 0 || 1;
    const next = () => {
        x ^= x << 13;
        x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5;
        x >>>= 0;
        return x;
    };
    let i = 0;
    while (i < size) {
        const run = 16 + (next() % 240);
        const repetitive = next() % 2 === 0;
        const b = next() & 0xff;
        for (let k = 0; k < run && i < size; k++, i++) {
            out[i] = repetitive ? (b + (k >> 4)) & 0xff : next() & 0xff;
        }
    }
    return out;
}

// esptool-js pads every file with 0xFF to a multiple of 4 before writing (writeFlash, padTo).
function padTo4(data) {
    const n = Math.ceil(data.length / 4) * 4;
    const out = new Uint8Array(n).fill(0xff);
    out.set(data);
    return out;
}

function md5hex(data) {
    return createHash("md5").update(data).digest("hex");
}

function u32le(...words) {
    const out = new Uint8Array(words.length * 4);
    const dv = new DataView(out.buffer);
    words.forEach((w, i) => dv.setUint32(i * 4, w >>> 0, true));
    return out;
}

function firstDiff(a, b) {
    const n = Math.min(a.length, b.length);
    for (let i = 0; i < n; i++) {
        if (a[i] !== b[i]) {
            return i;
        }
    }
    return a.length === b.length ? -1 : n;
}

function sameBytes(a, b) {
    return firstDiff(a, b) === -1;
}

const SECTOR = 0x1000;

// The ROM erases at *_BEGIN: every 4 KiB sector touched by [offset, offset + eraseSize)
// (docs/SIMULATOR.md "ROM loader" and "Timing" flash model).
function modelErase(flash, offset, eraseSize) {
    const start = Math.floor(offset / SECTOR) * SECTOR;
    const end = Math.ceil((offset + eraseSize) / SECTOR) * SECTOR;
    flash.fill(0xff, start, Math.min(end, flash.length));
}

// NOR programming only clears bits.
function modelProgram(flash, offset, data) {
    for (let i = 0; i < data.length; i++) {
        flash[offset + i] &= data[i];
    }
}

// ---------------------------------------------------------------------------------------------
// esptool-js helpers for what it has no ROM-mode wrapper for, built on its own command()/
// checkCommand() so the framing and response matching stay esptool-js's.

// esptool-js's IEspLoaderTerminal; keeps the lines so checks can look at what it reported.
function makeTerminal(tag) {
    let partial = "";
    const lines = [];
    const emit = (text) => {
        for (const line of text.split(/\r?\n|\r/)) {
            if (line.trim() !== "") {
                if (lines.length < 5000) {
                    lines.push(line);
                }
                log(`# [${tag}] ${line}`);
            }
        }
    };
    return {
        lines,
        clean() {},
        writeLine(s) {
            emit(partial + s);
            partial = "";
        },
        write(s) {
            partial += s;
            if (/[\r\n]/.test(partial) || partial.length > 4096) {
                const cut = Math.max(partial.lastIndexOf("\n"), partial.lastIndexOf("\r"));
                emit(cut >= 0 ? partial.slice(0, cut) : partial);
                partial = cut >= 0 ? partial.slice(cut + 1) : "";
            }
        },
    };
}

// ROM SPI_ATTACH takes 8 bytes {config, is_legacy=0, 0, 0, 0} (docs/SIMULATOR.md "ROM loader", esptool's
// flash_spi_attach). esptool-js's flashSpiAttach() always sends the stub's 4-byte form, so it
// is not used here.
async function romSpiAttach(loader, config = 0) {
    const pkt = new Uint8Array(8);
    pkt.set(u32le(config), 0);
    await loader.checkCommand("attach SPI flash (ROM form)", OP_SPI_ATTACH, pkt);
}

// esptool-js's flashMd5sum() hex-encodes the response bytes. A ROM answers with 32 ASCII hex
// characters (docs/SIMULATOR.md "ROM loader"), so in ROM mode esptool-js returns the hex of that ASCII (64
// chars); esptool decodes the text instead. Undo that here and insist on the ROM format.
async function romMd5(loader, addr, size) {
    const raw = await loader.flashMd5sum(addr, size);
    if (/^[0-9a-f]{64}$/.test(raw)) {
        const text = Buffer.from(raw, "hex").toString("latin1");
        if (/^[0-9a-f]{32}$/.test(text)) {
            return text;
        }
        throw new Error(`ROM MD5 reply is not 32 lower-case hex characters: ${JSON.stringify(text)}`);
    }
    throw new Error(`unexpected flashMd5sum() result ${raw} (expected the ROM's 32-char text)`);
}

// READ_FLASH_SLOW (0x0E, ROM only): {offset, length<=64} → 64 data bytes, then status.
async function romReadFlashSlow(loader, addr, size) {
    const out = new Uint8Array(size);
    for (let off = 0; off < size; off += 64) {
        const n = Math.min(64, size - off);
        const data = await loader.checkCommand("read flash slow", OP_READ_FLASH_SLOW,
            u32le(addr + off, n), 0, 64);
        if (!(data instanceof Uint8Array) || data.length !== 64) {
            throw new Error(`READ_FLASH_SLOW at 0x${(addr + off).toString(16)} returned ` +
                `${data?.length} bytes`);
        }
        out.set(data.subarray(0, n), off);
    }
    return out;
}

// ESP32 ROM: FLASH_BEGIN without the 5th word (docs/SIMULATOR.md "ROM loader": "must be absent" on ESP32/ESP8266
// ROMs), then esptool-js's own flashBlock() for the data packets.
async function romWriteUncompressed16(loader, data, offset) {
    const bs = loader.FLASH_WRITE_SIZE;
    const blocks = Math.ceil(data.length / bs);
    const timeout = loader.timeoutPerMb(loader.ERASE_REGION_TIMEOUT_PER_MB, data.length);
    await loader.checkCommand("enter Flash download mode (16-byte form)", OP_FLASH_BEGIN,
        u32le(data.length, blocks, bs, offset), 0, 0, timeout);
    for (let seq = 0; seq < blocks; seq++) {
        const block = new Uint8Array(bs).fill(0xff); // last block padded, as esptool does
        block.set(data.subarray(seq * bs, Math.min((seq + 1) * bs, data.length)));
        await loader.flashBlock(block, seq, loader.timeoutPerMb(loader.ERASE_WRITE_TIMEOUT_PER_MB,
            bs));
    }
}

function writeOptions(file, address, compress) {
    return {
        fileArray: [{ data: file, address }],
        flashMode: "keep",
        flashFreq: "keep",
        flashSize: "keep",
        eraseAll: false,
        compress,
        // MD5 is checked separately (romMd5) because of the ROM-mode decoding issue above.
    };
}

function macFromReady(ready) {
    return String(ready.mac ?? "").toLowerCase();
}

// esptool-js readFlashId(): W0 with manufacturer in bits 7:0, type 15:8, capacity 23:16;
// the ready line has them in JEDEC order (manufacturer first).
function jedecString(flashId) {
    const b = (s) => ((flashId >>> s) & 0xff).toString(16).padStart(2, "0");
    return b(0) + b(8) + b(16);
}

// ---------------------------------------------------------------------------------------------
// The ROM scenario for one chip.

async function romScenario(esp, chipKey, opts, tmp) {
    const spec = CHIPS[chipKey];
    const flashOut = path.join(tmp, `${chipKey}-flash.bin`);
    const sim = await startSim(opts.espsim, chipKey, spec.mac, flashOut, opts.simArgs);
    const ready = sim.ready;
    log(`# ready: ${JSON.stringify(ready)}`);
    check(`${chipKey}: ready line names the chip`, ready.chip === chipKey, `chip=${ready.chip}`);
    check(`${chipKey}: ready line echoes --mac`, macFromReady(ready) === spec.mac,
        `mac=${ready.mac}`);
    const { host, port } = parseSocketSpec(ready.port);
    const flashSize = Number(ready.flash_size);
    check(`${chipKey}: ready line has a flash size`, Number.isInteger(flashSize) &&
        flashSize >= 0x100000, `flash_size=${ready.flash_size}`);

    const serial = new TcpSerialPort({ host, port });
    const transport = new esp.Transport(serial, opts.trace);
    const terminal = makeTerminal(chipKey);
    const loader = new esp.ESPLoader({
        transport,
        baudrate: 115200,
        romBaudrate: 115200,
        terminal,
        debugLogging: opts.trace,
    });
    const model = new Uint8Array(flashSize > 0 ? flashSize : 0).fill(0xff);
    let connected = false;
    try {
        // 1. connect + SYNC + chip detection (esptool-js detectChip(): GET_SECURITY_INFO first,
        //    the 0x40001000 magic word as fallback, reconnecting on an unexpected answer).
        await withTimeout(loader.detectChip("default_reset"), STEP_TIMEOUT_MS, "detectChip");
        connected = true;
        check(`${chipKey}: esptool-js detects ${spec.name}`, loader.chip?.CHIP_NAME === spec.name,
            `detected ${loader.chip?.CHIP_NAME}`);
        check(`${chipKey}: SYNC replies come from a ROM (non-zero value)`,
            loader.syncStubDetected === false);
        check(`${chipKey}: not in Secure Download Mode`, loader.secureDownloadMode === false);
        // How detection went: ESP32 ROM has no GET_SECURITY_INFO, and esptool-js must have
        // recognised the ROM's "unsupported" frames (other opcode, status 1/0x05, reference
        // docs/SIMULATOR.md "ROM loader") and fallen back to the magic word without its reconnect-and-retry path.
        // ESP32-S3 answers GET_SECURITY_INFO with chip_id 9 (docs/SIMULATOR.md "Chips").
        const retried = terminal.lines.some((l) => l.includes("Autodetection failed"));
        check(`${chipKey}: detected without esptool-js's reconnect-and-retry`, !retried);
        if (chipKey === "esp32") {
            check(`${chipKey}: GET_SECURITY_INFO treated as unsupported`,
                loader.securityInfoCache === null);
        } else {
            check(`${chipKey}: GET_SECURITY_INFO reports chip_id 9`,
                loader.securityInfoCache?.chipId === 9,
                `chipId ${loader.securityInfoCache?.chipId}`);
        }

        // 2. What main() does before runStub(): description, features, crystal, MAC.
        const desc = await loader.chip.getChipDescription(loader);
        const features = await loader.chip.getChipFeatures(loader);
        const xtal = await loader.chip.getCrystalFreq(loader);
        log(`# ${chipKey}: ${desc}; features ${features}; crystal ${xtal} MHz`);
        check(`${chipKey}: chip description names ${spec.name}`,
            typeof desc === "string" && desc.startsWith(spec.name), desc);
        check(`${chipKey}: crystal is 40 MHz`, xtal === 40, `${xtal} MHz`);
        // ready.revision is "vMAJOR.MINOR"; esptool-js prints ESP32 revisions as the major only.
        const rev = /^v(\d+)\.(\d+)$/.exec(String(ready.revision ?? ""));
        if (rev) {
            const want = chipKey === "esp32" ? `(revision ${rev[1]})` :
                `(revision v${rev[1]}.${rev[2]})`;
            check(`${chipKey}: revision from eFuse matches the ready line`, desc.includes(want),
                `${desc} vs ${ready.revision}`);
        }
        const mac = await loader.chip.readMac(loader);
        check(`${chipKey}: MAC read via eFuse matches the ready line`, mac === macFromReady(ready),
            `esptool-js ${mac}, sim ${ready.mac}`);
        if (loader.chip.postConnect) {
            await loader.chip.postConnect(loader);
        }

        // ---- ROM-only from here: with the stub, esptool-js would skip SPI_ATTACH. ----
        log(`# ${chipKey}: ROM-only path (no runStub)`);
        await romSpiAttach(loader, 0);
        const flashId = await loader.readFlashId();
        check(`${chipKey}: readFlashId matches the ready line`,
            jedecString(flashId) === String(ready.flash_id).toLowerCase(),
            `esptool-js ${jedecString(flashId)}, sim ${ready.flash_id}`);
        const sizeStr = await loader.detectFlashSize();
        const sizeBytes = sizeStr ? loader.flashSizeBytes(sizeStr) : -1;
        check(`${chipKey}: detected flash size matches the ready line`, sizeBytes === flashSize,
            `esptool-js ${sizeStr}, sim ${flashSize}`);

        // esptool-js keeps FLASH_WRITE_SIZE at the stub's 0x4000 even in ROM mode; real ROMs
        // refuse FLASH_DATA blocks that large (esptool uses 0x400 with the ROM, docs/SIMULATOR.md "ROM loader").
        loader.FLASH_WRITE_SIZE = ROM_FLASH_WRITE_SIZE;

        // 3. Compressed ROM write (FLASH_DEFL_BEGIN/DATA, no DEFL_END) via writeFlash().
        const A = makeImage(spec.seed, 0x6000 + 0x1f1);
        const Ap = padTo4(A);
        const offA = 0x10000;
        await withTimeout(loader.writeFlash(writeOptions(A, offA, true)), STEP_TIMEOUT_MS,
            "writeFlash compressed");
        modelErase(model, offA, Math.ceil(Ap.length / ROM_FLASH_WRITE_SIZE) * ROM_FLASH_WRITE_SIZE);
        modelProgram(model, offA, Ap);
        check(`${chipKey}: ROM MD5 after compressed write`, await romMd5(loader, offA, Ap.length) ===
            md5hex(Ap));
        const backA = await romReadFlashSlow(loader, offA, Ap.length);
        check(`${chipKey}: READ_FLASH_SLOW returns the compressed-written image`,
            sameBytes(backA, Ap), `first difference at +0x${firstDiff(backA, Ap).toString(16)}`);

        // 4. Uncompressed ROM write (FLASH_BEGIN/DATA, last block padded with 0xFF).
        const B = makeImage(spec.seed ^ 0xb0b0, 0x2c00 + 0x57);
        const Bp = padTo4(B);
        const offB = 0x20000;
        if (chipKey === "esp32") {
            // esptool-js's flashBegin() appends the 5th (encrypted) word for every ROM; the ESP32
            // ROM takes the 16-byte form only (docs/SIMULATOR.md "ROM loader" item 5), so it must refuse.
            let refusal = null;
            try {
                await loader.flashBegin(Bp.length, offB);
            } catch (e) {
                refusal = String(e?.message ?? e);
            }
            check(`${chipKey}: ROM refuses the 20-byte FLASH_BEGIN esptool-js sends`,
                refusal !== null && /status 1,5\b/.test(refusal), refusal ?? "accepted");
            await withTimeout(romWriteUncompressed16(loader, Bp, offB), STEP_TIMEOUT_MS,
                "uncompressed write (16-byte FLASH_BEGIN)");
        } else {
            await withTimeout(loader.writeFlash(writeOptions(B, offB, false)), STEP_TIMEOUT_MS,
                "writeFlash uncompressed");
        }
        modelErase(model, offB, Bp.length);
        modelProgram(model, offB, Bp);
        check(`${chipKey}: ROM MD5 after uncompressed write`,
            await romMd5(loader, offB, Bp.length) === md5hex(Bp));

        // 5. Overwrite the start of A with a shorter image C: the ROM must erase the sectors C
        //    covers (else NOR AND-ing corrupts C) and only those (A's tail must survive).
        const C = makeImage(spec.seed ^ 0xc3c3, 0x2400 + 0x22);
        const Cp = padTo4(C);
        await withTimeout(loader.writeFlash(writeOptions(C, offA, true)), STEP_TIMEOUT_MS,
            "writeFlash compressed over A");
        modelErase(model, offA, Math.ceil(Cp.length / ROM_FLASH_WRITE_SIZE) * ROM_FLASH_WRITE_SIZE);
        modelProgram(model, offA, Cp);
        check(`${chipKey}: ROM MD5 after overwrite`, await romMd5(loader, offA, Cp.length) ===
            md5hex(Cp));
        const span = Ap.length;
        const backAC = await romReadFlashSlow(loader, offA, span);
        const wantAC = model.subarray(offA, offA + span);
        check(`${chipKey}: erase covers whole sectors of the new image, keeps the old tail`,
            sameBytes(backAC, wantAC),
            `first difference at 0x${(offA + firstDiff(backAC, wantAC)).toString(16)}`);
        const blank = 0x1000;
        check(`${chipKey}: ROM MD5 of never-written flash is that of 0xFF`,
            await romMd5(loader, 0x30000, blank) === md5hex(new Uint8Array(blank).fill(0xff)));
    } finally {
        if (connected || serial.opened) {
            await withTimeout(transport.disconnect(), 5000, "disconnect").catch((e) =>
                log(`# ${chipKey}: disconnect: ${e.message}`));
        }
        const ex = await stopSim(sim);
        check(`${chipKey}: espsim exits 0 on SIGTERM`, ex.code === 0, JSON.stringify(ex));
        if (failed > 0 || opts.trace) {
            log(`# ${chipKey}: espsim events: ${JSON.stringify(sim.events.slice(-40))}`);
            if (sim.stderr) {
                log(`# ${chipKey}: espsim stderr tail: ${sim.stderr.trim().slice(-2000)}`);
            }
        }
    }

    // 6. The dump written at SIGTERM must equal the model: our images, 0xFF everywhere else.
    if (existsSync(flashOut)) {
        const dump = readFileSync(flashOut);
        check(`${chipKey}: --flash-out dump has the flash size`, dump.length === flashSize,
            `${dump.length} bytes`);
        const d = firstDiff(new Uint8Array(dump.buffer, dump.byteOffset, dump.length), model);
        check(`${chipKey}: --flash-out dump equals the expected flash contents`, d === -1,
            `first difference at 0x${d.toString(16)}`);
    } else {
        check(`${chipKey}: --flash-out dump written`, false, `${flashOut} missing`);
    }
}

// ---------------------------------------------------------------------------------------------
// The full esptool-js flow with its own stub (the stub JSON esptool-js 0.7.0 ships in
// node_modules; espsim answers its upload with "OHAI" and then behaves like the stub).

function simEvents(sim, name, pred = () => true) {
    return sim.events.filter((e) => e.event === name && pred(e));
}

async function waitSimEvent(sim, name, pred = () => true, ms = 2000) {
    const end = Date.now() + ms;
    while (Date.now() < end) {
        const hit = simEvents(sim, name, pred);
        if (hit.length > 0) {
            return hit[0];
        }
        await new Promise((r) => setTimeout(r, 20));
    }
    return null;
}

// baud: the rate esptool-js switches to after the stub runs (main() -> changeBaud()). Raw TCP
// has no wire rate, so the bridge only records it (TcpSerialPort.setBaudRate); espsim then takes
// the new rate from the command. With a baud other than 115200 espsim runs --realtime, so the
// switch must show up as a write faster than the 115200 wire allows.
async function stubScenario(esp, chipKey, opts, tmp, baud = 115200) {
    const spec = CHIPS[chipKey];
    const tag = baud === 115200 ? `${chipKey}/stub` : `${chipKey}/stub@${baud}`;
    const realtime = baud !== 115200;
    const flashOut = path.join(tmp, `${chipKey}-stub-${baud}-flash.bin`);
    const sim = await startSim(opts.espsim, chipKey, spec.mac, flashOut,
        [...(realtime ? ["--realtime"] : []), ...opts.simArgs]);
    const { host, port } = parseSocketSpec(sim.ready.port);
    const flashSize = Number(sim.ready.flash_size);
    const serial = new TcpSerialPort({ host, port });
    const transport = new esp.Transport(serial, opts.trace);
    const loader = new esp.ESPLoader({ transport, baudrate: baud, romBaudrate: 115200,
        terminal: makeTerminal(tag), debugLogging: opts.trace });
    const model = new Uint8Array(flashSize).fill(0xff);
    const write = (files, compress) => withTimeout(loader.writeFlash({
        fileArray: files, flashMode: "keep", flashFreq: "keep", flashSize: "keep",
        eraseAll: false, compress, calculateMD5Hash: (img) => md5hex(img) }),
    STEP_TIMEOUT_MS, `writeFlash (${tag})`);
    try {
        // 1. main(): detect, upload the stub (MEM_*), wait for OHAI, change baud if asked.
        const name = await withTimeout(loader.main("default_reset"), STEP_TIMEOUT_MS, "main()");
        check(`${tag}: main() uploads and starts the stub`, loader.IS_STUB === true,
            `chip ${name}`);
        const stubEv = await waitSimEvent(sim, "stub");
        check(`${tag}: espsim switched to stub behaviour`, stubEv !== null);
        // espsim identifies the upload (docs/SIMULATOR.md "Uploaded programs"): esptool-js
        // 0.7.0 ships esp-flasher-stub builds that espsim knows by their text checksum
        check(`${tag}: espsim recognised esptool-js's esp-flasher-stub build`,
            stubEv?.kind === "esp-flasher-stub" && /esptool-js 0\.7\.0/.test(stubEv?.label ?? ""),
            JSON.stringify(stubEv));
        check(`${tag}: the SYNC before the upload came from the ROM`,
            loader.syncStubDetected === false);
        if (baud !== 115200) {
            const ev = await waitSimEvent(sim, "change_baudrate");
            check(`${tag}: CHANGE_BAUDRATE in the stub form (new ${baud}, current 115200)`,
                ev?.loader === "stub" && ev?.baud === baud && ev?.old_field === 115200 &&
                ev?.actual === baud, JSON.stringify(ev));
            check(`${tag}: the bridge was asked to switch the host rate`,
                serial.baudRate === baud, `${serial.baudRate}`);
        }

        // 2. Compressed write (FLASH_DEFL_* in 16 KiB blocks, FLASH_DEFL_END barrier) verified by
        //    esptool-js with the stub's raw 16-byte MD5 (writeFlash throws on a mismatch).
        const A = makeImage(spec.seed ^ 0x5757, (realtime ? 0x10000 : 0x9000) + 0x33);
        const Ap = padTo4(A);
        const offA = 0x10000;
        const t0 = Date.now();
        await write([{ data: A, address: offA }], true);
        const dt = (Date.now() - t0) / 1000;
        modelErase(model, offA, Ap.length);
        modelProgram(model, offA, Ap);
        check(`${tag}: compressed writeFlash verified by the stub MD5`, true);
        const defl = simEvents(sim, "defl_begin", (e) => e.offset === "0x10000");
        check(`${tag}: stub FLASH_DEFL_BEGIN carries the exact size and 16 KiB blocks`,
            defl.length === 1 && defl[0].size === Ap.length && defl[0].block_size === 0x4000,
            JSON.stringify(defl));
        if (realtime) {
            const z = defl[0]?.blocks * 0x4000;
            const floor115k = (z - 0x4000) * 10 / 115200; // lower bound of the compressed bytes
            log(`# ${tag}: ${Ap.length} bytes in ${dt.toFixed(3)} s; 115200 would need ` +
                `> ${floor115k.toFixed(3)} s on the wire`);
            check(`${tag}: the write runs at the new rate (faster than 115200 allows)`,
                dt < floor115k * 0.9, `${dt} s vs ${floor115k} s`);
        }

        // 3. Uncompressed stub write (FLASH_BEGIN/DATA padded to 16 KiB, FLASH_END) and two files
        //    in one call.
        const B = makeImage(spec.seed ^ 0xb1b1, 0x5000 + 0x11);
        const C = makeImage(spec.seed ^ 0xc2c2, 0x2000 + 0x7);
        const offB = 0x40000;
        const offC = 0x48000;
        await write([{ data: B, address: offB }, { data: C, address: offC }], false);
        for (const [data, off] of [[padTo4(B), offB], [padTo4(C), offC]]) {
            modelErase(model, off, data.length);
            modelProgram(model, off, data);
        }
        check(`${tag}: uncompressed writeFlash (two files) verified`, true);

        // 4. READ_FLASH with its ACK flow control, and the raw MD5 directly.
        const back = await withTimeout(loader.readFlash(offA, Ap.length), STEP_TIMEOUT_MS,
            "readFlash (stub)");
        check(`${tag}: READ_FLASH returns the image`, sameBytes(back, Ap),
            `first difference at +0x${firstDiff(back, Ap).toString(16)}`);
        // esptool-js returns once the data is in and leaves the final MD5 frame unread (its next
        // command flushes it), so the simulator's view is awaited.
        check(`${tag}: espsim saw READ_FLASH end with every packet acknowledged`,
            (await waitSimEvent(sim, "read_flash_done", (e) => e.acked === Ap.length)) !== null);
        check(`${tag}: flashMd5sum is the stub's raw digest`,
            await loader.flashMd5sum(offB, padTo4(B).length) === md5hex(padTo4(B)));

        // 5. ERASE_FLASH (skipped in realtime: a whole-chip erase takes seconds there).
        if (!realtime) {
            await withTimeout(loader.eraseFlash(), STEP_TIMEOUT_MS, "eraseFlash");
            model.fill(0xff);
            check(`${tag}: eraseFlash leaves 0xFF`, await loader.flashMd5sum(offA, Ap.length) ===
                md5hex(new Uint8Array(Ap.length).fill(0xff)));
            const D = makeImage(spec.seed ^ 0xd4d4, 0x3000 + 0x20);
            await write([{ data: D, address: 0x8000 }], true);
            modelProgram(model, 0x8000, padTo4(D));
        }
    } finally {
        await withTimeout(transport.disconnect(), 5000, "disconnect").catch(() => {});
        const ex = await stopSim(sim);
        check(`${tag}: espsim exits 0 on SIGTERM`, ex.code === 0, JSON.stringify(ex));
        if (failed > 0 || opts.trace) {
            log(`# ${tag}: espsim events: ${JSON.stringify(sim.events.slice(-40))}`);
        }
    }
    if (existsSync(flashOut)) {
        const dump = readFileSync(flashOut);
        const d = firstDiff(new Uint8Array(dump.buffer, dump.byteOffset, dump.length), model);
        check(`${tag}: --flash-out dump equals the expected flash contents`, d === -1,
            `first difference at 0x${d.toString(16)}`);
    } else {
        check(`${tag}: --flash-out dump written`, false, `${flashOut} missing`);
    }
}

// ---------------------------------------------------------------------------------------------

async function main() {
    const opts = parseArgs(process.argv);
    if (!existsSync(opts.espsim)) {
        throw new Error(`espsim not found at ${opts.espsim}`);
    }
    const esp = await loadEsptoolJs();
    const tmp = mkdtempSync(path.join(os.tmpdir(), "esptooljs-"));
    log(`# esptool-js ${JSON.parse(readFileSync(path.join(HERE, "node_modules", "esptool-js",
        "package.json"), "utf8")).version} under node ${process.version}; tmp ${tmp}`);
    try {
        for (const chip of opts.chips) {
            try {
                if (opts.rom) {
                    await romScenario(esp, chip, opts, tmp);
                } else {
                    await stubScenario(esp, chip, opts, tmp, opts.baud);
                }
            } catch (e) {
                check(`${chip}: ${opts.rom ? "ROM" : "stub"} scenario ran to the end`, false,
                    e?.stack ?? String(e));
            }
        }
    } finally {
        if (!opts.keep) {
            rmSync(tmp, { recursive: true, force: true });
        } else {
            log(`# kept ${tmp}`);
        }
    }
}

const watchdog = setTimeout(() => {
    log(`FAIL - overall time limit of ${OVERALL_TIMEOUT_MS} ms exceeded`);
    killAll();
    process.exit(1);
}, OVERALL_TIMEOUT_MS);

main()
    .catch((e) => {
        check("esptooljs test setup", false, e?.message ?? String(e));
    })
    .finally(() => {
        clearTimeout(watchdog);
        killAll();
        log(`esptooljs: ${passed} passed, ${failed} failed`);
        process.exit(failed === 0 && passed > 0 ? 0 : 1);
    });
