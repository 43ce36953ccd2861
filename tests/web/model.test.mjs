// SPDX-License-Identifier: MIT
// model.test.mjs — unit tests of web-static/model.js and sha256.js under Node (no browser, no
// daemon): the slot → operator state mapping, formatting, MAC parsing, grid sizing, and the
// fallback SHA-256 against Node's crypto.
// Must not: depend on the DOM.

import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';

import fs from 'node:fs';

import {
    chipName, displayState, formatDuration, formatPercent, formatRate, gridColumns, jobMatches,
    normalizeMac, percentOf, roleCan, setVocabulary, stageLine,
} from '../../web-static/model.js';
import { Sha256 } from '../../web-static/sha256.js';

// The words come from the station (GET /api/v1/vocabulary); vocabulary.json is that answer
// (tests/unit/test_vocab.c keeps it equal to what the daemon serves).
assert.ok(setVocabulary(JSON.parse(fs.readFileSync(new URL('./vocabulary.json', import.meta.url)))));

const slot = (o) => ({ name: 'A1', state: 'idle', stage: null, last: null, start: 'auto',
    recipe: { name: 'r', version: '1', hash: 'a'.repeat(64) }, recipe_error: null, ...o });

test('slot states map to the operator words', () => {
    const w = (o) => displayState(slot(o)).word;
    assert.equal(w({}), 'IDLE');
    assert.equal(w({ state: 'waiting' }), 'WAITING FOR BOARD');
    assert.equal(w({ state: 'probing' }), 'WAITING FOR BOARD');
    for (const st of ['open', 'reset', 'sync', 'detect', 'begin', 'data', 'after_reset']) {
        assert.equal(w({ state: 'running', stage: st }), 'FLASHING', st);
    }
    assert.equal(w({ state: 'running', stage: 'verify' }), 'VERIFYING');
    assert.equal(w({ state: 'running', stage: 'test' }), 'TESTING');
    assert.equal(w({ state: 'idle', last: { result: 'pass' } }), 'PASS');
    assert.equal(w({ state: 'waiting', last: { result: 'fail' } }), 'FAIL');
    // the result stays until the next job starts
    assert.equal(w({ state: 'probing', last: { result: 'pass' } }), 'PASS');
    assert.equal(w({ state: 'running', stage: 'sync', last: { result: 'fail' } }), 'FLASHING');
    // cancelled / interrupted jobs do not stay on the tile
    assert.equal(w({ state: 'idle', last: { result: 'cancelled' } }), 'IDLE');
    assert.equal(w({ state: 'waiting', last: { result: 'interrupted' } }), 'WAITING FOR BOARD');
    assert.equal(w({ state: 'stopped', last: { result: 'pass' } }), 'IDLE');
});

test('stage lines say what happens in plain words', () => {
    assert.equal(stageLine(slot({ state: 'running', stage: 'data' })), 'Writing the flash');
    assert.equal(stageLine(slot({ state: 'running', stage: 'some_new_stage' })),
        'some new stage');
    assert.equal(stageLine(slot({ state: 'idle', recipe: null })), 'Cannot start: no recipe');
    assert.equal(stageLine(slot({ state: 'idle', start: 'manual' })), 'Press Start to flash');
    assert.equal(stageLine(slot({ state: 'waiting' })), 'Put a board in the fixture');
});

test('formatting', () => {
    assert.equal(formatRate(86213), '690 kbit/s');
    assert.equal(formatRate(1000), '8.0 kbit/s');
    assert.equal(formatRate(null), '');
    assert.equal(percentOf({ percent: 11.8 }), 11.8);
    assert.equal(percentOf({ percent: null, bytes_done: 1, bytes_total: 4 }), 25);
    assert.equal(percentOf({ percent: null, bytes_done: null, bytes_total: null }), null);
    assert.equal(formatPercent(100), '100 %');
    assert.equal(formatPercent(11.84), '11.8 %');
    assert.equal(formatDuration(65000), '1:05');
    assert.equal(formatDuration(3723000), '1:02:03');
    assert.equal(chipName('esp32s3'), 'ESP32-S3');
    assert.equal(chipName('esp8266'), 'ESP8266');
    assert.equal(chipName('esp32'), 'ESP32');
});

test('MACs typed any way are found', () => {
    assert.equal(normalizeMac('24-0A-C4-12-34-56'), '24:0a:c4:12:34:56');
    assert.equal(normalizeMac(' 240ac4123456 '), '24:0a:c4:12:34:56');
    assert.equal(normalizeMac('24:0a:c4:12:34'), null);
    assert.equal(normalizeMac('24:0a:c4:12:34:5g'), null);
    const job = { mac: '24:0a:c4:12:34:56', result: 'pass' };
    assert.ok(jobMatches(job, 'all', '34:56'));
    assert.ok(jobMatches(job, 'pass', '3456'));
    assert.ok(!jobMatches(job, 'fail', ''));
    assert.ok(!jobMatches(job, 'all', '99'));
});

test('grid: 8 tiles on a 1920×1080 screen use 4 columns; 32 use more', () => {
    assert.equal(gridColumns(8, 1496, 980), 4);
    assert.ok(gridColumns(32, 1496, 980) >= 7);
    assert.equal(gridColumns(1, 1496, 980), 1);
});

test('roles', () => {
    assert.ok(!roleCan('viewer', 'operate'));
    assert.ok(roleCan('operator', 'operate'));
    assert.ok(!roleCan('operator', 'engineer'));
    assert.ok(roleCan('engineer', 'engineer'));
    assert.ok(!roleCan('', 'operate'));
});

test('fallback SHA-256 equals Node\'s for edge lengths and split updates', () => {
    for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 1000, 100003]) {
        const data = crypto.randomBytes(n);
        const want = crypto.createHash('sha256').update(data).digest('hex');
        assert.equal(new Sha256().update(data).hex(), want, `length ${n}`);
        const cut = Math.floor(n / 3);
        const s = new Sha256();
        s.update(data.subarray(0, cut)).update(data.subarray(cut, cut + 7))
            .update(data.subarray(cut + 7));
        assert.equal(s.hex(), want, `length ${n} in pieces`);
    }
});
