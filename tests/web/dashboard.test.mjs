// SPDX-License-Identifier: MIT
// dashboard.test.mjs — the operator dashboard in headless Chromium against `espstation serve`
// with espsim boards: every tile appears; a slot goes from WAITING FOR BOARD to PASS when its
// board appears and shows the simulator's MAC; a silent board shows FAIL with the remedy hint;
// the jobs list finds a job by MAC and filters by result; the job detail shows the image MD5;
// without a token the page is read-only; an operator token enables Start and Cancel.
// Must not: take an expected value from the page or the daemon when the simulator or the test's
// own data can give it.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { after, before, test } from 'node:test';

import {
    TOKENS, Station, appImage, launchBrowser, openDashboard, randomMac, tile, waitFor,
} from './harness.mjs';

const MAC_A1 = randomMac('esp32');
const MAC_A3 = randomMac('esp32s3');

const station = new Station({
    name: 'Browser test station',
    slots: [
        // its board arrives later: WAITING FOR BOARD until the test starts the simulator
        { name: 'A1', chip: 'esp32', transport: 'tcp', start: 'auto', mac: MAC_A1,
            simLater: true },
        // a board that never answers: the job fails with no_sync
        { name: 'A2', chip: 'esp32c3', transport: 'pty', start: 'auto', faults: ['silent'] },
        // manual: idle until an operator presses Start
        { name: 'A3', chip: 'esp32s3', transport: 'pty', start: 'manual', mac: MAC_A3 },
        // loop mode on a port where no board ever answers: always waiting (cancellable)
        { name: 'A4', chip: 'esp32', transport: 'tcp', start: 'loop', simLater: true },
    ],
});
let browser;
let page;

// HTTP errors the test causes on purpose (unknown token, the role probe's 403/404) are logged
// by Chromium as console errors; script errors are what counts
const scriptErrors = (p) => p.errors.filter((e) => !/Failed to load resource/.test(e));

before(async () => {
    await station.setup();
    browser = await launchBrowser();
    page = await openDashboard(browser, station.url);
});

after(async () => {
    const errs = page ? scriptErrors(page) : [];
    if (errs.length) console.log('page errors:\n' + errs.join('\n'));
    if (browser) await browser.close();
    await station.close();
});

async function state(name) {
    return tile(page, name).getAttribute('data-state');
}

async function waitState(name, word, ms = 30000) {
    try {
        await waitFor(async () => (await state(name)) === word, ms, `slot ${name} to show ${word}`);
    } catch (e) {
        // say whether the page or the daemon is behind
        const api = await station.api(`/api/v1/slots/${name}`).catch((x) => x.message);
        throw new Error(`${e.message}; the tile shows ${await state(name).catch(() => '?')}; ` +
            `the API says ${JSON.stringify(api)}`);
    }
}

test('every slot has a tile, in config order, under the station name', async () => {
    await page.locator('article.tile').first().waitFor();
    const names = await page.locator('article.tile .slot-name').allTextContents();
    assert.deepEqual(names, ['A1', 'A2', 'A3', 'A4']);
    assert.equal(await page.locator('#station-name').textContent(), 'Browser test station');
    await waitFor(async () => (await page.locator('#conn').getAttribute('data-up')) === 'true',
        10000, 'the live connection');
    assert.equal(await page.locator('#banner').isVisible(), false);
    // the recipe line names the recipe and its short hash
    const recipes = await page.locator('#recipes').textContent();
    const hash = crypto.createHash('sha256')
        .update(fs.readFileSync(station.file('recipe.json'))).digest('hex');
    assert.match(recipes, /web-test 1\.0\.0/);
    assert.ok(recipes.includes(hash.slice(0, 8)), `recipe hash ${hash.slice(0, 8)} in ${recipes}`);
});

test('a silent board shows FAIL with the error class and its remedy hint', async () => {
    await waitState('A2', 'FAIL', 40000);
    const api = await station.api('/api/v1/slots/A2');
    assert.equal(api.last.result, 'fail');
    // a board that never answers cannot sync: the error class says so
    assert.equal(api.last.error_class, 'no_sync');
    const t = tile(page, 'A2');
    assert.equal(await t.locator('.failure .fclass').textContent(), 'No answer from the board');
    const hint = (await t.locator('.failure .hint').textContent()).trim();
    assert.ok(hint.length > 20, `hint shown: ${hint}`);
    assert.equal(hint, api.last.hint.trim());
    assert.ok(await t.locator('.failure .hint').isVisible());
    // never colour alone: the FAIL word and its icon are there
    assert.equal(await t.locator('.band .word').textContent(), 'FAIL');
    assert.equal(await t.locator('.band svg').count(), 1);
});

test('a slot goes from WAITING FOR BOARD to PASS and shows the simulator\'s MAC', async () => {
    await waitState('A1', 'WAITING FOR BOARD', 15000);
    // record every state the tile shows from now on
    await page.evaluate(() => {
        const t = document.querySelector('article.tile[data-slot="A1"]');
        window.__a1 = [t.dataset.state];
        new MutationObserver((recs) => {
            for (const r of recs) if (r.oldValue !== null) window.__a1.push(r.oldValue);
            window.__a1.push(t.dataset.state);
        }).observe(t, { attributes: true, attributeFilter: ['data-state'],
            attributeOldValue: true });
    });
    const sim = await station.startSim('A1');
    assert.equal(sim.ready.mac, MAC_A1);
    await waitState('A1', 'PASS', 40000);
    const seen = await page.evaluate(() => window.__a1.filter((s, i, a) => i === 0 ||
        s !== a[i - 1]));
    assert.equal(seen[0], 'WAITING FOR BOARD');
    assert.ok(seen.includes('FLASHING'), `states seen: ${seen.join(' → ')}`);
    assert.equal(seen.at(-1), 'PASS');
    // screen readers hear it (aria-live region)
    assert.equal(await page.locator('#announce').getAttribute('aria-live'), 'polite');
    assert.match(await page.locator('#announce').textContent(), /Slot A1: PASS/);
    const shown = (await tile(page, 'A1').locator('.mac').textContent()).trim();
    assert.equal(shown, sim.ready.mac, 'the tile shows the MAC the simulator reports');
    const { jobs } = await station.api('/api/v1/jobs?slot=A1');
    assert.equal(jobs.length, 1);
    assert.equal(jobs[0].result, 'pass');
    assert.equal(jobs[0].mac, sim.ready.mac, 'the record has the simulator\'s MAC');
    // the chip as the simulator is
    assert.equal((await tile(page, 'A1').locator('.chip').textContent()).trim(), 'ESP32');
});

test('the jobs list is live, finds a job by MAC and filters by result', async () => {
    const rows = page.locator('#job-list li');
    await waitFor(async () => (await rows.count()) >= 2, 10000, 'two jobs in the list');
    // whole MAC, typed in upper case with dashes: the board's history from the station
    const dashed = MAC_A1.toUpperCase().replace(/:/g, '-');
    await page.fill('#mac-search', dashed);
    await waitFor(async () => {
        const macs = await rows.evaluateAll((ls) => ls.map((l) => l.dataset.mac));
        return macs.length === 1 && macs[0] === MAC_A1;
    }, 10000, `only the job of ${MAC_A1} listed`);
    assert.equal(await rows.first().getAttribute('data-result'), 'pass');
    assert.match(await page.locator('#jobs-note').textContent(), /1 job of board/);
    // a part of a MAC filters the list
    await page.fill('#mac-search', MAC_A1.slice(-5));
    await waitFor(async () => {
        const macs = await rows.evaluateAll((ls) => ls.map((l) => l.dataset.mac));
        return macs.length >= 1 && macs.every((m) => m.endsWith(MAC_A1.slice(-5)));
    }, 10000, 'partial MAC match');
    // a board that was never here
    await page.fill('#mac-search', '02:00:00:00:00:01');
    await waitFor(async () => (await rows.count()) === 0, 10000, 'no job for an unknown MAC');
    await page.fill('#mac-search', '');
    await page.selectOption('#result-filter', 'fail');
    await waitFor(async () => {
        const rs = await rows.evaluateAll((ls) => ls.map((l) => l.dataset.result));
        return rs.length >= 1 && rs.every((r) => r === 'fail');
    }, 10000, 'only failed jobs');
    await page.selectOption('#result-filter', 'all');
});

test('the job detail shows the steps, the image and its MD5', async () => {
    await page.fill('#mac-search', MAC_A1);
    const row = page.locator(`#job-list li[data-mac="${MAC_A1}"] button`);
    await row.waitFor();
    await row.click();
    const dlg = page.locator('#job-dialog');
    await dlg.locator('table').first().waitFor();
    const text = await dlg.textContent();
    // the image is written at 0x10000 unpatched, so its MD5 is the file's own
    const md5 = crypto.createHash('md5').update(fs.readFileSync(station.file('app.bin')))
        .digest('hex');
    assert.ok(text.includes(md5), `MD5 ${md5} in the detail`);
    assert.ok(text.includes('0x10000'));
    assert.ok(text.includes(MAC_A1));
    assert.match(text, /Writing the flash/); // per-step timing of the data state
    await page.keyboard.press('Escape');
    await waitFor(async () => !(await dlg.isVisible()), 5000, 'the dialog to close');
    await page.fill('#mac-search', '');
});

test('without a token the page is read-only', async () => {
    assert.equal(await page.locator('#role').textContent(), 'Read-only');
    assert.ok(await page.locator('#signin').isVisible());
    assert.equal(await page.locator('#engineer-open').isVisible(), false);
    assert.equal(await page.locator('article.tile .btn-start:visible').count(), 0);
    assert.equal(await page.locator('article.tile .btn-cancel:visible').count(), 0);
});

test('an unknown token is refused; an operator token enables Start and Cancel', async () => {
    await page.click('#signin');
    await page.fill('#token-input', 'not-a-station-token-0000');
    await page.click('#token-form button[type="submit"]');
    await waitFor(async () => /does not know/.test(await page.locator('#token-error')
        .textContent()), 10000, 'the unknown-token message');
    await page.fill('#token-input', TOKENS.operator);
    await page.click('#token-form button[type="submit"]');
    await waitFor(async () => (await page.locator('#role').textContent()) ===
        'Signed in: Operator', 10000, 'the operator role');
    assert.equal(await page.locator('#engineer-open').isVisible(), false);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('espstation.token')),
        TOKENS.operator);

    // A3 (manual, idle): Start is offered and runs a job to PASS
    const a3 = tile(page, 'A3');
    await waitState('A3', 'IDLE');
    const start = a3.locator('.btn-start');
    await waitFor(async () => (await start.isVisible()) && (await start.isEnabled()), 10000,
        'A3 Start enabled');
    assert.equal(await a3.locator('.btn-cancel').isDisabled(), true);
    await start.click();
    await waitState('A3', 'PASS', 40000);
    assert.equal((await a3.locator('.mac').textContent()).trim(), MAC_A3);

    // A4 (loop, no board): Cancel is offered; confirming stops the slot
    const a4 = tile(page, 'A4');
    await waitState('A4', 'WAITING FOR BOARD');
    const cancel = a4.locator('.btn-cancel');
    await waitFor(async () => cancel.isEnabled(), 10000, 'A4 Cancel enabled');
    await cancel.click();
    await page.locator('#confirm-dialog').waitFor();
    await page.click('#confirm-yes');
    await waitState('A4', 'IDLE', 15000);
    const api = await station.api('/api/v1/slots/A4');
    assert.equal(api.state, 'idle');

    // keyboard: a tile's Start button is reachable and pressable with the keyboard
    await waitFor(async () => a4.locator('.btn-start').isEnabled(), 10000, 'A4 Start enabled');
    await a4.locator('.btn-start').focus();
    assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')),
        'Start A4');

    // sign out: read-only again
    await page.click('#signout');
    assert.equal(await page.locator('article.tile .btn-start:visible').count(), 0);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('espstation.token')), null);
});

test('an engineer token opens the engineer view: slots, recipes, upload and choice',
    async () => {
        if (await page.locator('#signout').isVisible()) await page.click('#signout');
        await page.click('#signin');
        await page.fill('#token-input', TOKENS.engineer);
        await page.click('#token-form button[type="submit"]');
        await waitFor(async () => page.locator('#engineer-open').isVisible(), 10000,
            'the Engineer button');
        await page.click('#engineer-open');
        const rows = page.locator('#eng-slots tbody tr[data-slot]');
        await waitFor(async () => (await rows.count()) === 4, 10000, 'four slot rows');
        const opts = await rows.first().locator('select option').allTextContents();
        assert.ok(opts.some((o) => o.startsWith('web-test 1.0.0')), opts.join(', '));

        // upload: a recipe and its image, checked here, stored by the station
        const image = appImage(0xbeef, 12 * 1024);
        fs.writeFileSync(station.file('upload-app.bin'), image);
        const recipe = JSON.stringify({
            name: 'uploaded', version: '2.0.0', chip: ['esp32s3'],
            images: [{ offset: '0x10000', file: 'upload-app.bin',
                sha256: crypto.createHash('sha256').update(image).digest('hex') }],
        }, null, 2);
        fs.writeFileSync(station.file('upload-recipe.json'), recipe);
        const recipeHash = crypto.createHash('sha256').update(recipe).digest('hex');
        // first with a wrong image: refused before anything is sent
        fs.mkdirSync(station.file('wrong'), { recursive: true });
        fs.writeFileSync(station.file('wrong', 'upload-app.bin'), image.subarray(1));
        await page.setInputFiles('#upload-recipe', station.file('upload-recipe.json'));
        await page.setInputFiles('#upload-images', station.file('wrong', 'upload-app.bin'));
        await page.click('#upload-form button[type="submit"]');
        await waitFor(async () => /its SHA-256 is/.test(await page.locator('#upload-log')
            .textContent()), 10000, 'the SHA-256 mismatch message');
        const { images } = await station.api('/api/v1/images');
        assert.ok(!images.some((i) => i.name === 'upload-app.bin'), 'nothing was uploaded');
        // then the right one
        await page.setInputFiles('#upload-images', station.file('upload-app.bin'));
        await page.click('#upload-form button[type="submit"]');
        await waitFor(async () => /Recipe uploaded 2\.0\.0 stored/.test(
            await page.locator('#upload-log').textContent()), 15000, 'the recipe stored');
        const stored = await station.api(`/api/v1/recipes/${recipeHash}`);
        assert.equal(stored.name, 'uploaded');
        // choose it for A3
        const a3row = page.locator('#eng-slots tbody tr[data-slot="A3"]');
        await waitFor(async () => (await a3row.locator(`option[value="${recipeHash}"]`).count())
            === 1, 10000, 'the new recipe in A3\'s choice');
        await a3row.locator('select').selectOption(recipeHash);
        await a3row.locator('button').click();
        await waitFor(async () => {
            const s = await station.api('/api/v1/slots/A3');
            return s.recipe && s.recipe.hash === recipeHash;
        }, 10000, 'A3 to run the uploaded recipe');
        await page.keyboard.press('Escape');
        // the header lists it for A3
        await waitFor(async () => (await page.locator('#recipes').textContent())
            .includes(`uploaded 2.0.0 ${recipeHash.slice(0, 8)} — A3`), 10000,
        'the header recipe line for A3');
        await page.click('#signout');
    });

test('no script errors on the page', () => {
    assert.deepEqual(scriptErrors(page), []);
});
