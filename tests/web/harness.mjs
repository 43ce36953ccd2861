// SPDX-License-Identifier: MIT
// harness.mjs — what the dashboard's browser tests stand on: espsim boards, a recipe with a
// generated image, a token file and a station config in a temporary directory, `espstation
// serve` on a free loopback port, and Debian's Chromium driven by playwright-core.
// Must not: use any address but 127.0.0.1; leave a process running (every child is killed by
// pid on exit); derive an expected value from what the daemon or the page says.

import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';

export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, '..', '..');
export const CHROMIUM = '/usr/bin/chromium';

// ---------------------------------------------------------------- arguments

/** --espstation PATH --espsim PATH (ctest passes both) or ESPSTATION / ESPSIM. */
export function toolPaths() {
    const args = process.argv.slice(2);
    const opt = (name, env) => {
        const i = args.indexOf(name);
        if (i >= 0 && args[i + 1]) return path.resolve(args[i + 1]);
        return process.env[env] ? path.resolve(process.env[env]) : null;
    };
    const espstation = opt('--espstation', 'ESPSTATION') ||
        path.join(REPO, 'build', 'espstation');
    const espsim = opt('--espsim', 'ESPSIM') || path.join(REPO, 'build', 'espsim');
    for (const [what, p] of [['espstation', espstation], ['espsim', espsim]]) {
        if (!fs.existsSync(p)) {
            throw new Error(`${what} not found at ${p}: build it (cmake --build build) or pass ` +
                `--${what} PATH`);
        }
    }
    return { espstation, espsim };
}

// ---------------------------------------------------------------- processes

const children = new Set();

function killAll() {
    for (const c of children) {
        if (c.exitCode === null && c.signalCode === null) {
            try {
                process.kill(c.pid, 'SIGKILL');
            } catch {
                // already gone
            }
        }
    }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM']) {
    process.on(sig, () => {
        killAll();
        process.exit(1);
    });
}

function track(child) {
    children.add(child);
    child.on('exit', () => children.delete(child));
    return child;
}

function waitExit(child, ms) {
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
    return new Promise((resolve) => {
        const t = setTimeout(() => resolve(false), ms);
        child.once('exit', () => {
            clearTimeout(t);
            resolve(true);
        });
    });
}

export function sleep(ms) {
    return new Promise((r) => setTimeout(r, ms));
}

/** Poll `fn` until it returns a truthy value (bounded); throws with `what` on timeout. */
export async function waitFor(fn, timeoutMs, what, intervalMs = 100) {
    const end = Date.now() + timeoutMs;
    let last;
    for (;;) {
        try {
            last = await fn();
            if (last) return last;
        } catch (e) {
            last = e;
        }
        if (Date.now() > end) {
            throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}` +
                (last instanceof Error ? ` (last error: ${last.message})` : ''));
        }
        await sleep(intervalMs);
    }
}

// Ports handed out in this process: the kernel may give a just-released port again, and two
// slots on one port are a config error.
const usedPorts = new Set();

/** A loopback TCP port free now and not handed out before in this process. */
export async function freePort() {
    for (;;) {
        const p = await anyFreePort();
        if (!usedPorts.has(p)) {
            usedPorts.add(p);
            return p;
        }
    }
}

function anyFreePort() {
    return new Promise((resolve, reject) => {
        const s = net.createServer();
        s.unref();
        s.on('error', reject);
        s.listen(0, '127.0.0.1', () => {
            const { port } = s.address();
            s.close(() => resolve(port));
        });
    });
}

/** A listener on `port` that closes every connection at once (a fixture without a board). */
function holdPort(port) {
    return new Promise((resolve, reject) => {
        const srv = net.createServer((c) => c.destroy());
        srv.on('error', reject);
        srv.listen(port, '127.0.0.1', () => resolve(srv));
    });
}

function closeServer(srv) {
    return new Promise((resolve) => srv.close(() => resolve()));
}

// ---------------------------------------------------------------- data

/** Deterministic pseudo-random bytes (xorshift32), so a failing run can be repeated. */
function prng(seed, n) {
    const out = Buffer.alloc(n);
    let x = seed >>> 0 || 1;
    for (let i = 0; i < n; i++) {
        x ^= x << 13; x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5; x >>>= 0;
        out[i] = x & 0xff;
    }
    return out;
}

/** An application image: 0xE9 header-like start, half random (incompressible), half text. */
export function appImage(seed, size) {
    const half = size >> 1;
    const text = Buffer.alloc(size - half);
    const line = Buffer.from(`espstation web test image ${seed} `);
    for (let i = 0; i < text.length; i++) text[i] = line[i % line.length];
    const img = Buffer.concat([prng(seed, half), text]);
    img[0] = 0xe9; img[1] = 0x03; img[2] = 0x01; img[3] = 0x10;
    return img;
}

export const OUI = { esp8266: '18:fe:34', esp32: '24:0a:c4', esp32s3: '34:85:18',
    esp32c3: '60:55:f9', esp32c6: '40:4c:ca', esp32s2: '7c:df:a1', esp32h2: '74:4d:bd' };

/** A MAC of the chip's OUI that no other test run uses the same way (random low bytes). */
export function randomMac(chip) {
    const b = crypto.randomBytes(3);
    return `${OUI[chip]}:${[...b].map((x) => x.toString(16).padStart(2, '0')).join(':')}`;
}

export const TOKENS = {
    operator: `op-${crypto.randomBytes(12).toString('hex')}`,
    engineer: `eng-${crypto.randomBytes(12).toString('hex')}`,
    viewer: `view-${crypto.randomBytes(12).toString('hex')}`,
};

// ---------------------------------------------------------------- espsim

export class Sim {
    /** opts: { chip, transport: 'pty'|'tcp'|'rfc2217', port (tcp/rfc2217; 0 = any), mac,
     *  faults: [], realtime, tag } */
    constructor(ctx, opts) {
        this.ctx = ctx;
        this.opts = opts;
        this.tag = opts.tag || 'sim';
    }

    async start() {
        const o = this.opts;
        const args = ['--chip', o.chip];
        if (o.transport === 'pty') args.push('--pty');
        else args.push(o.transport === 'tcp' ? '--tcp' : '--rfc2217', String(o.port ?? 0));
        if (o.mac) args.push('--mac', o.mac);
        for (const f of o.faults || []) args.push('--fault', f);
        if (o.realtime) args.push('--realtime');
        args.push('--quiet');
        const err = fs.openSync(this.ctx.file(`${this.tag}-stderr.txt`), 'w');
        this.proc = track(spawn(this.ctx.tools.espsim, args,
            { stdio: ['ignore', 'pipe', err], cwd: this.ctx.dir }));
        fs.closeSync(err);
        this.ready = await new Promise((resolve, reject) => {
            const rl = readline.createInterface({ input: this.proc.stdout });
            const t = setTimeout(() => reject(new Error(`espsim ${this.tag}: no ready line`)),
                15000);
            rl.on('line', (line) => {
                let ev;
                try {
                    ev = JSON.parse(line);
                } catch {
                    return;
                }
                if (ev.event === 'ready') {
                    clearTimeout(t);
                    resolve(ev);
                }
            });
            this.proc.once('exit', (code) => {
                clearTimeout(t);
                reject(new Error(`espsim ${this.tag} exited (${code}) before its ready line: ` +
                    this.ctx.read(`${this.tag}-stderr.txt`).slice(-2000)));
            });
        });
        this.proc.stdout.resume();
        return this;
    }

    /** The daemon's name for the port (the ready line's). */
    get port() {
        return this.ready.port;
    }

    async stop() {
        if (!this.proc || this.proc.exitCode !== null) return;
        this.proc.kill('SIGTERM');
        if (!(await waitExit(this.proc, 5000))) this.proc.kill('SIGKILL');
    }
}

// ---------------------------------------------------------------- the station

export class Station {
    /**
     * slots: [{ name, chip, transport, start, faults, realtime, mac, simLater }] — simLater:
     * the port is reserved but its espsim starts only when the test says (startSim).
     */
    constructor({ name = 'Web test station', slots, probeMs = 300, readAccess = 'open',
        imageSize = 64 * 1024 } = {}) {
        this.tools = toolPaths();
        this.name = name;
        this.slotDefs = slots;
        this.probeMs = probeMs;
        this.readAccess = readAccess;
        this.imageSize = imageSize;
        this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'espstation-web-'));
        this.sims = new Map();
        this.daemon = null;
    }

    file(...names) {
        return path.join(this.dir, ...names);
    }

    read(name) {
        try {
            return fs.readFileSync(this.file(name), 'utf8');
        } catch {
            return '';
        }
    }

    async setup() {
        const image = appImage(0x5eb, this.imageSize);
        fs.writeFileSync(this.file('app.bin'), image);
        const chips = [...new Set(this.slotDefs.map((s) => s.chip))].sort();
        this.recipe = {
            name: 'web-test', version: '1.0.0', chip: chips,
            images: [{ label: 'app', offset: '0x10000', file: 'app.bin',
                sha256: crypto.createHash('sha256').update(image).digest('hex') }],
        };
        fs.writeFileSync(this.file('recipe.json'), JSON.stringify(this.recipe, null, 2));
        fs.writeFileSync(this.file('tokens'), Object.entries(TOKENS)
            .map(([role, tok]) => `${role} ${tok}`).join('\n') + '\n', { mode: 0o600 });
        fs.chmodSync(this.file('tokens'), 0o600);

        const slots = [];
        for (const d of this.slotDefs) {
            const sim = new Sim(this, { ...d, tag: d.name });
            if (d.simLater) {
                // No board yet: the port is held by a listener that hangs up at once (the
                // slot's probes find no board), so no other program on the machine can take
                // it before the test starts the simulator there.
                sim.opts.port = await freePort();
                sim.plannedPort = `socket://127.0.0.1:${sim.opts.port}`;
                sim.placeholder = await holdPort(sim.opts.port);
            } else {
                await sim.start();
            }
            this.sims.set(d.name, sim);
            slots.push({ name: d.name, port: sim.ready ? sim.port : sim.plannedPort,
                start: d.start || 'auto' });
        }
        this.httpPort = await freePort();
        this.url = `http://127.0.0.1:${this.httpPort}`;
        const cfg = {
            id: 'web-test', name: this.name, database: 'station.db',
            listen: `127.0.0.1:${this.httpPort}`, recipe: 'recipe.json', token_file: 'tokens',
            probe_interval_ms: this.probeMs, slots,
        };
        if (this.readAccess !== 'open') cfg.http = { read_access: this.readAccess };
        fs.writeFileSync(this.file('station.json'), JSON.stringify(cfg, null, 2));
        await this.startDaemon();
        return this;
    }

    async startSim(name) {
        const sim = this.sims.get(name);
        if (sim.placeholder) {
            await closeServer(sim.placeholder);
            sim.placeholder = null;
        }
        await sim.start();
        return sim;
    }

    async startDaemon() {
        this.runs = (this.runs || 0) + 1;
        const tag = `serve${this.runs}`;
        const out = fs.openSync(this.file(`${tag}-stdout.txt`), 'w');
        const err = fs.openSync(this.file(`${tag}-stderr.txt`), 'w');
        this.daemonTag = tag;
        this.daemon = track(spawn(this.tools.espstation,
            ['serve', '--config', this.file('station.json'), '--verbose'],
            { stdio: ['ignore', out, err], cwd: this.dir,
                env: { ...process.env, ESPSTATION_WEB_ROOT: path.join(REPO, 'web-static'),
                    ESPSTATION_LOCK_DIR: this.dir } }));
        fs.closeSync(out);
        fs.closeSync(err);
        const d = this.daemon;
        const end = Date.now() + 20000;
        for (;;) {
            if (d.exitCode !== null || d.signalCode !== null) {
                throw new Error(`espstation exited (${d.exitCode ?? d.signalCode}) at start:\n` +
                    this.stderrTail());
            }
            try {
                const r = await fetch(`${this.url}/api/v1/station`,
                    { headers: { Authorization: `Bearer ${TOKENS.viewer}` } });
                if (r.ok) break;
            } catch {
                // not listening yet
            }
            if (Date.now() > end) {
                throw new Error('espstation did not answer GET /api/v1/station within 20 s:\n' +
                    this.stderrTail());
            }
            await sleep(100);
        }
    }

    stderrTail() {
        return this.read(`${this.daemonTag}-stderr.txt`).slice(-3000);
    }

    /**
     * SIGTERM; resolves when the daemon has exited cleanly: status 0 and no sanitizer report
     * (the tests also run against an ASan + UBSan build).
     */
    async stopDaemon() {
        const d = this.daemon;
        if (!d) return;
        if (d.exitCode === null && d.signalCode === null) {
            d.kill('SIGTERM');
            if (!(await waitExit(d, 15000))) {
                d.kill('SIGKILL');
                await waitExit(d, 5000);
                throw new Error('espstation did not exit within 15 s of SIGTERM');
            }
        }
        const err = this.read(`${this.daemonTag}-stderr.txt`);
        const san = /ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:/.exec(err);
        if (san || d.exitCode !== 0) {
            throw new Error(`espstation exit status ${d.exitCode} (signal ${d.signalCode})` +
                `${san ? `, sanitizer report (${san[0]})` : ''}:\n${this.stderrTail()}`);
        }
    }

    /** GET an API path as JSON (viewer token, so it works with read_access "token" too). */
    async api(p, token = TOKENS.viewer) {
        const r = await fetch(`${this.url}${p}`, { headers: { Authorization: `Bearer ${token}` } });
        if (!r.ok) throw new Error(`GET ${p}: HTTP ${r.status}: ${await r.text()}`);
        return r.json();
    }

    async close() {
        try {
            await this.stopDaemon();
        } finally {
            for (const s of this.sims.values()) {
                await s.stop();
                if (s.placeholder) await closeServer(s.placeholder);
            }
            if (!process.env.ESTN_KEEP_TMP) fs.rmSync(this.dir, { recursive: true, force: true });
        }
    }
}

// ---------------------------------------------------------------- a cuttable connection

/**
 * A loopback TCP proxy in front of the daemon, so a test can drop the browser's connections
 * (as a network outage does) while the daemon keeps running: cut() closes every connection
 * and refuses new ones until restore().
 */
export class Proxy {
    constructor(targetPort) {
        this.targetPort = targetPort;
        this.socks = new Set();
        this.down = false;
    }

    async start() {
        this.server = net.createServer((c) => {
            if (this.down) {
                c.destroy();
                return;
            }
            const u = net.connect(this.targetPort, '127.0.0.1');
            const pair = [c, u];
            for (const s of pair) {
                this.socks.add(s);
                s.on('error', () => {});
                s.on('close', () => {
                    this.socks.delete(s);
                    for (const o of pair) o.destroy();
                });
            }
            c.pipe(u);
            u.pipe(c);
        });
        await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
        this.url = `http://127.0.0.1:${this.server.address().port}`;
        return this;
    }

    cut() {
        this.down = true;
        for (const s of this.socks) s.destroy();
    }

    restore() {
        this.down = false;
    }

    async close() {
        this.cut();
        await new Promise((resolve) => this.server.close(resolve));
    }
}

// ---------------------------------------------------------------- browser

let pw = null;
async function playwright() {
    if (pw) return pw;
    try {
        pw = await import('playwright-core');
    } catch {
        throw new Error('playwright-core is not installed: run deploy/install-deps.sh (it runs ' +
            '`npm ci --prefix tests/web`)');
    }
    return pw;
}

/** Debian's Chromium, headless. Root cannot use Chromium's sandbox, hence --no-sandbox. */
export async function launchBrowser() {
    if (!fs.existsSync(CHROMIUM)) {
        throw new Error(`${CHROMIUM} not found: apt-get install chromium (deploy/install-deps.sh)`);
    }
    const { chromium } = await playwright();
    return chromium.launch({
        executablePath: CHROMIUM,
        headless: true,
        args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
        timeout: 30000,
    });
}

/** A page with the dashboard open; page errors are collected in page.errors. */
export async function openDashboard(browser, url, { width = 1920, height = 1080 } = {}) {
    const context = await browser.newContext({ viewport: { width, height } });
    const page = await context.newPage();
    page.errors = [];
    page.on('pageerror', (e) => page.errors.push(e.message));
    page.on('console', (m) => {
        if (m.type() === 'error') page.errors.push(`console: ${m.text()}`);
    });
    page.setDefaultTimeout(20000);
    await page.goto(`${url}/`, { waitUntil: 'load' });
    return page;
}

/** The tile of slot `name`. */
export function tile(page, name) {
    return page.locator(`article.tile[data-slot="${name}"]`);
}
