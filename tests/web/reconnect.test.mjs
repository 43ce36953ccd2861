// SPDX-License-Identifier: MIT
// reconnect.test.mjs — the dashboard when the daemon goes away: stopping `espstation serve`
// shows the "connection lost — reconnecting" banner; starting it again (new boot id) hides the
// banner by itself, the page reloads the state, keeps the jobs from before, and live updates
// flow again (a board that appears after the restart is flashed and shown as PASS).
// A network drop (a proxy in between cuts the connections) resumes the stream from the last
// event id: the missed events are replayed and nothing is reloaded.
// Must not: reload the page or touch it between the stop and the recovery.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
    Proxy, TOKENS, Station, launchBrowser, openDashboard, randomMac, sleep, tile, waitFor,
} from './harness.mjs';

const MAC_B1 = randomMac('esp32c3');
const MAC_B2 = randomMac('esp32');

const station = new Station({
    name: 'Reconnect test station',
    slots: [
        { name: 'B1', chip: 'esp32c3', transport: 'pty', start: 'auto', mac: MAC_B1 },
        { name: 'B2', chip: 'esp32', transport: 'tcp', start: 'auto', mac: MAC_B2,
            simLater: true },
        // no board ever: cancelled while the page is offline
        { name: 'B3', chip: 'esp32', transport: 'tcp', start: 'loop', simLater: true },
    ],
});
let browser;
let page;
let proxy;

// the refused connections while the daemon is down are logged by Chromium, not script errors
const scriptErrors = (p) => p.errors.filter((e) =>
    !/Failed to load resource|ERR_CONNECTION_REFUSED|EventSource/.test(e));

before(async () => {
    await station.setup();
    // the page talks to the daemon through a proxy the test can cut
    proxy = await new Proxy(station.httpPort).start();
    browser = await launchBrowser();
    page = await openDashboard(browser, proxy.url);
});

after(async () => {
    const errs = page ? scriptErrors(page) : [];
    if (errs.length) console.log('page errors:\n' + errs.join('\n'));
    if (browser) await browser.close();
    if (proxy) await proxy.close();
    await station.close();
});

const banner = () => page.locator('#banner');

test('a dropped stream resumes from the last event, without reloading the state', async () => {
    await waitFor(async () => (await page.locator('#conn').getAttribute('data-up')) === 'true',
        10000, 'the live connection');
    await waitFor(async () => (await page.locator('body').getAttribute('data-loaded')) ===
        'true', 10000, 'the state loaded');
    await waitFor(async () => (await tile(page, 'B3').getAttribute('data-state')) ===
        'WAITING FOR BOARD', 15000, 'B3 waiting');
    const gets = [];
    page.on('request', (r) => gets.push(r.url()));
    proxy.cut();
    await waitFor(async () => banner().isVisible(), 10000, 'the banner while cut off');
    // something happens while the page cannot hear it (the daemon runs on)
    const r = await fetch(`${station.url}/api/v1/slots/B3/cancel`, { method: 'POST',
        headers: { Authorization: `Bearer ${TOKENS.operator}` } });
    assert.equal(r.status, 202);
    await sleep(500);
    assert.equal(await tile(page, 'B3').getAttribute('data-state'), 'WAITING FOR BOARD');
    proxy.restore();
    await waitFor(async () => !(await banner().isVisible()), 15000, 'the banner to go away');
    await waitFor(async () => (await tile(page, 'B3').getAttribute('data-state')) === 'IDLE',
        10000, 'B3 idle: the missed event replayed');
    const events = gets.filter((u) => u.includes('/api/v1/events'));
    assert.ok(events.length >= 1 && events.every((u) => /[?&]last_event_id=[0-9a-f]{8}%3A\d+/
        .test(u)), `reconnects ask to resume: ${events.join(' ')}`);
    assert.deepEqual(gets.filter((u) => u.includes('/api/v1/slots')), [],
        'a resumed stream needs no reload of the slots');
});

test('stopping the daemon shows the banner; a restart recovers by itself', async () => {
    await waitFor(async () => (await tile(page, 'B1').getAttribute('data-state')) === 'PASS',
        40000, 'B1 to pass');
    await waitFor(async () => (await page.locator('#conn').getAttribute('data-up')) === 'true',
        10000, 'the live connection');
    assert.equal(await banner().isVisible(), false);
    const boot1 = (await station.api('/api/v1/station')).boot_id;

    await station.stopDaemon();
    await waitFor(async () => banner().isVisible(), 10000, 'the connection-lost banner');
    assert.match(await banner().textContent(), /Connection lost — reconnecting/);
    assert.equal(await page.locator('#conn-text').textContent(), 'Disconnected');
    // it stays up while the station is away (the page keeps retrying)
    await sleep(2500);
    assert.ok(await banner().isVisible(), 'banner still shown while the daemon is down');

    await station.startDaemon();
    const boot2 = (await station.api('/api/v1/station')).boot_id;
    assert.notEqual(boot2, boot1, 'a new daemon has a new boot id');
    await waitFor(async () => !(await banner().isVisible()), 20000, 'the banner to go away');
    assert.equal(await page.locator('#conn-text').textContent(), 'Live');

    // the state was reloaded from the new daemon: B1's result is still shown (from the
    // database) and the list still has its job
    assert.equal(await tile(page, 'B1').getAttribute('data-state'), 'PASS');
    assert.equal((await tile(page, 'B1').locator('.mac').textContent()).trim(), MAC_B1);
    await waitFor(async () => (await page.locator(`#job-list li[data-mac="${MAC_B1}"]`).count())
        >= 1, 10000, 'B1\'s job in the list after the restart');

    // live again: a board that appears now is shown going to PASS without a page reload
    await waitFor(async () => (await tile(page, 'B2').getAttribute('data-state')) ===
        'WAITING FOR BOARD', 15000, 'B2 waiting');
    const sim = await station.startSim('B2');
    await waitFor(async () => (await tile(page, 'B2').getAttribute('data-state')) === 'PASS',
        40000, 'B2 to pass after the restart');
    assert.equal((await tile(page, 'B2').locator('.mac').textContent()).trim(), sim.ready.mac);
    await waitFor(async () => (await page.locator(`#job-list li[data-mac="${MAC_B2}"]`).count())
        === 1, 10000, 'B2\'s job in the live list');
});

test('no script errors on the page', () => {
    assert.deepEqual(scriptErrors(page), []);
});
