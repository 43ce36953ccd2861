// SPDX-License-Identifier: MIT
// screenshot.mjs — writes the operator guide's picture (docs/img/dashboard.png, or --out FILE):
// 8 slots in mixed states on a 1920×1080 screen — real-time simulators mid-flash, a passed and
// a failed board, a slot waiting for its board, an idle manual slot — with an operator signed in
// and some finished jobs in the list. Run by hand (not in CI):
//   node tests/web/screenshot.mjs [--espstation build/espstation --espsim build/espsim]
//        [--out docs/img/dashboard.png]
// Must not: stage anything: every state shown comes from the daemon and its simulators.

import fs from 'node:fs';
import path from 'node:path';

import {
    REPO, Station, TOKENS, launchBrowser, randomMac, sleep, tile, waitFor,
} from './harness.mjs';

const args = process.argv.slice(2);
const oi = args.indexOf('--out');
const out = path.resolve(oi >= 0 ? args[oi + 1] : path.join(REPO, 'docs', 'img', 'dashboard.png'));

const station = new Station({
    name: 'Line 2 — station 1',
    probeMs: 500,
    imageSize: 256 * 1024,
    slots: [
        { name: 'A1', chip: 'esp32', transport: 'rfc2217', start: 'loop', realtime: true,
            mac: randomMac('esp32') },
        // fast board swapped by the script a few times: finished jobs for the list
        { name: 'A2', chip: 'esp32s3', transport: 'rfc2217', start: 'loop',
            mac: randomMac('esp32s3') },
        { name: 'A3', chip: 'esp32c3', transport: 'rfc2217', start: 'loop', realtime: true,
            mac: randomMac('esp32c3') },
        { name: 'A4', chip: 'esp32', transport: 'pty', start: 'auto', faults: ['silent'] },
        { name: 'A5', chip: 'esp8266', transport: 'rfc2217', start: 'loop', realtime: true,
            mac: randomMac('esp8266') },
        { name: 'A6', chip: 'esp32c6', transport: 'tcp', start: 'loop', simLater: true },
        { name: 'A7', chip: 'esp32', transport: 'pty', start: 'manual' },
        { name: 'A8', chip: 'esp32s3', transport: 'rfc2217', start: 'loop', realtime: true,
            mac: randomMac('esp32s3') },
    ],
});

const state = (page, n) => tile(page, n).getAttribute('data-state');

async function main() {
    await station.setup();
    const browser = await launchBrowser();
    try {
        const context = await browser.newContext({ viewport: { width: 1920, height: 1080 } });
        const shift = new Date(Date.now() - 3600e3).toISOString();
        // the shift began an hour ago; the operator is signed in (Start / Cancel visible)
        await context.addInitScript(([shift, tok]) => {
            localStorage.setItem('espstation.shiftStart', shift);
            sessionStorage.setItem('espstation.token', tok);
            sessionStorage.setItem('espstation.role', 'operator');
        }, [shift, TOKENS.operator]);
        const page = await context.newPage();
        await page.goto(`${station.url}/`);
        // A2: five boards one after the other (SIGUSR2 = the operator swaps the board)
        const a2 = station.sims.get('A2');
        for (let i = 0; i < 5; i++) {
            await waitFor(async () => {
                const { jobs } = await station.api('/api/v1/jobs?slot=A2');
                return jobs.length === i + 1;
            }, 30000, `A2 job ${i + 1}`);
            if (i < 4) a2.proc.kill('SIGUSR2');
        }
        await waitFor(async () => (await state(page, 'A4')) === 'FAIL', 40000, 'A4 FAIL');
        // mid-flash on the real-time boards
        await waitFor(async () => {
            const pcs = await page.locator('article.tile[data-state="FLASHING"] .pct')
                .allTextContents();
            const mid = pcs.map((t) => parseFloat(t)).filter((p) => p >= 15 && p <= 85);
            return mid.length >= 3;
        }, 90000, 'three real-time slots mid-flash', 200);
        // the header's shift counters have caught up with the last job
        const want = (await station.api(`/api/v1/stats?since=${encodeURIComponent(shift)}`))
            .station.pass;
        await waitFor(async () => (await page.locator('#stat-pass').textContent()) ===
            String(want), 5000, 'the shift counters');
        const states = {};
        for (let i = 1; i <= 8; i++) states[`A${i}`] = await state(page, `A${i}`);
        console.log('states:', JSON.stringify(states));
        fs.mkdirSync(path.dirname(out), { recursive: true });
        await page.screenshot({ path: out });
        console.log(`wrote ${out}`);
    } finally {
        await browser.close();
        await station.close();
    }
}

main().catch((e) => {
    console.error(e.stack || String(e));
    process.exitCode = 1;
}).finally(() => sleep(0));
