// SPDX-License-Identifier: MIT
// layout.test.mjs — the dashboard's size and access rules, against real daemons whose slots
// wait for boards that never come (no simulators needed): 8 tiles fit a 1920×1080 screen with
// no scrolling and a state word legible from 2 m; 32 tiles all show unclipped state words; a
// station whose reads need a token asks for one and then stays live through the fetch()-read
// event stream.
// Must not: depend on pixel-exact sizes beyond the stated minimums.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { TOKENS, Station, launchBrowser, openDashboard, tile, waitFor } from './harness.mjs';

const slots = (n) => Array.from({ length: n }, (_, i) => ({
    name: `${'ABCD'[Math.floor(i / 8)]}${(i % 8) + 1}`, chip: 'esp32', transport: 'tcp',
    start: 'loop', simLater: true,
}));

const eight = new Station({ name: 'Eight', slots: slots(8), probeMs: 1000,
    readAccess: 'token' });
const many = new Station({ name: 'Thirty-two', slots: slots(32), probeMs: 2000 });
let browser;

before(async () => {
    await Promise.all([eight.setup(), many.setup()]);
    browser = await launchBrowser();
});

after(async () => {
    if (browser) await browser.close();
    await Promise.all([eight.close(), many.close()]);
});

/** Geometry of every tile and its state word, measured in the page. */
async function measure(page) {
    return page.evaluate(() => {
        const vw = window.innerWidth;
        const vh = window.innerHeight;
        const tiles = [...document.querySelectorAll('article.tile')].map((t) => {
            const r = t.getBoundingClientRect();
            const w = t.querySelector('.band .word');
            const band = t.querySelector('.band').getBoundingClientRect();
            const wr = w.getBoundingClientRect();
            return {
                name: t.dataset.slot, top: r.top, bottom: r.bottom, left: r.left, right: r.right,
                width: r.width, wordPx: parseFloat(getComputedStyle(w).fontSize),
                wordClipped: w.scrollWidth > w.clientWidth + 1 || wr.right > band.right + 1 ||
                    wr.bottom > band.bottom + 1,
            };
        });
        const grid = document.querySelector('.slots');
        return { vw, vh, tiles, gridScrolls: grid.scrollHeight > grid.clientHeight + 1,
            pageScrolls: document.documentElement.scrollHeight > vh + 1 };
    });
}

test('reads need a token: the page asks for one, then shows the station live', async () => {
    const page = await openDashboard(browser, eight.url);
    try {
        await waitFor(async () => page.locator('#token-dialog').isVisible(), 10000,
            'the token prompt');
        assert.match(await page.locator('#token-error').textContent(), /needs a token/);
        await page.fill('#token-input', TOKENS.viewer);
        await page.click('#token-form button[type="submit"]');
        await waitFor(async () => (await page.locator('#role').textContent()) ===
            'Signed in: Viewer', 10000, 'the viewer role');
        await waitFor(async () => (await page.locator('article.tile').count()) === 8, 10000,
            'eight tiles');
        await waitFor(async () => (await page.locator('#conn').getAttribute('data-up')) ===
            'true', 10000, 'the live connection (fetch-read stream with the token)');
        // a viewer cannot act
        assert.equal(await page.locator('article.tile .btn-start:visible').count(), 0);
        await waitFor(async () => (await tile(page, 'A3').getAttribute('data-state')) ===
            'WAITING FOR BOARD', 10000, 'A3 waiting');
        // a change made elsewhere arrives through the stream
        const r = await fetch(`${eight.url}/api/v1/slots/A3/cancel`, { method: 'POST',
            headers: { Authorization: `Bearer ${TOKENS.operator}` } });
        assert.equal(r.status, 202);
        await waitFor(async () => (await tile(page, 'A3').getAttribute('data-state')) ===
            'IDLE', 10000, 'A3 idle after the cancel');
    } finally {
        await page.context().close();
    }
});

test('8 tiles fit a 1920×1080 screen without scrolling, legible from 2 m', async () => {
    const page = await openDashboard(browser, eight.url);
    try {
        // signed in through sessionStorage of this new context
        await page.evaluate((tok) => {
            sessionStorage.setItem('espstation.token', tok);
            sessionStorage.setItem('espstation.role', 'viewer');
        }, TOKENS.viewer);
        await page.reload();
        await waitFor(async () => (await page.locator('article.tile').count()) === 8, 10000,
            'eight tiles');
        const m = await measure(page);
        assert.equal(m.gridScrolls, false, 'the tile area does not scroll');
        assert.equal(m.pageScrolls, false, 'the page does not scroll');
        for (const t of m.tiles) {
            assert.ok(t.top >= 0 && t.bottom <= m.vh && t.left >= 0 && t.right <= m.vw,
                `tile ${t.name} inside the screen: ${JSON.stringify(t)}`);
            // ~40 px type is about 11 mm on a 24" full-HD screen: readable at 2 m
            assert.ok(t.wordPx >= 40, `tile ${t.name} state word ${t.wordPx}px`);
            assert.equal(t.wordClipped, false, `tile ${t.name} state word clipped`);
        }
    } finally {
        await page.context().close();
    }
});

test('32 tiles: every one present with its state word unclipped', async () => {
    const page = await openDashboard(browser, many.url);
    try {
        await waitFor(async () => (await page.locator('article.tile').count()) === 32, 10000,
            '32 tiles');
        const waiting = page.locator('article.tile[data-state="WAITING FOR BOARD"]');
        await waitFor(async () => (await waiting.count()) === 32, 15000, 'all 32 waiting')
            .catch(async (e) => {
                const shown = await page.locator('article.tile').evaluateAll((ts) =>
                    ts.map((t) => `${t.dataset.slot}=${t.dataset.state}`).join(' '));
                const api = (await many.api('/api/v1/slots')).slots
                    .map((x) => `${x.name}=${x.state}`).join(' ');
                throw new Error(`${e.message}\npage: ${shown}\napi: ${api}`);
            });
        const m = await measure(page);
        const names = m.tiles.map((t) => t.name);
        assert.deepEqual(names, slots(32).map((s) => s.name));
        for (const t of m.tiles) {
            assert.equal(t.wordClipped, false, `tile ${t.name} state word clipped`);
            assert.ok(t.wordPx >= 16, `tile ${t.name} state word ${t.wordPx}px`);
            assert.ok(t.width >= 150, `tile ${t.name} ${t.width}px wide`);
        }
        // the first screen holds at least four rows of eight
        const visible = m.tiles.filter((t) => t.bottom <= m.vh).length;
        assert.ok(visible >= 32, `${visible} of 32 tiles on the first screen`);
    } finally {
        await page.context().close();
    }
});
