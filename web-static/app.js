// SPDX-License-Identifier: MIT
// app.js — the dashboard's entry point: loads the station's state, keeps it live from the
// event stream (reloading on `reset` or a new daemon), and wires the header (station, recipes,
// shift statistics), the tiles, the jobs list, sign-in, operator actions and the engineer view.
// Must not: guess state the API did not give; every change shown comes from the station.

import { ApiError, get, getRole, getToken, probeRole, q, request, setAuth } from './api.js';
import { EngineerView } from './engineer.js';
import { iconSvg } from './icons.js';
import { JobList, renderJobDetail } from './jobs.js';
import { LiveStream } from './live.js';
import {
    formatRatePerHour, formatYield, hasVocabulary, roleCan, setVocabulary, shortHash,
} from './model.js';
import { TileGrid } from './tiles.js';

const $ = (id) => document.getElementById(id);
const SHIFT_KEY = 'espstation.shiftStart';
const ROLE_WORDS = { viewer: 'Viewer', mes: 'MES', operator: 'Operator', engineer: 'Engineer' };

const app = {
    station: null,
    bootId: null,
    loaded: false,
    loading: null,
    buffer: [],
    readAccess: 'open',
    statsTimer: null,
};

// ---------------------------------------------------------------- small UI helpers

let toastTimer = null;
function toast(text, isError = false) {
    const t = $('toast');
    t.textContent = text;
    t.classList.toggle('err', isError);
    t.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { t.hidden = true; }, isError ? 9000 : 4000);
}

function announce(text) {
    const a = $('announce');
    const p = document.createElement('p');
    p.textContent = text;
    a.append(p);
    setTimeout(() => p.remove(), 8000);
}

function confirmDialog(text, yesWord) {
    const d = $('confirm-dialog');
    $('confirm-text').textContent = text;
    $('confirm-yes').textContent = yesWord;
    d.returnValue = '';
    d.showModal();
    return new Promise((resolve) => {
        d.addEventListener('close', () => resolve(d.returnValue === 'yes'), { once: true });
    });
}

function errText(e) {
    if (e instanceof ApiError) return e.message;
    return 'The station cannot be reached.';
}

// ---------------------------------------------------------------- header

function shiftStart() {
    let s = null;
    try {
        s = localStorage.getItem(SHIFT_KEY);
    } catch {
        // no storage: the shift starts with the page
    }
    if (!s || Number.isNaN(new Date(s).getTime())) {
        s = new Date().toISOString();
        try {
            localStorage.setItem(SHIFT_KEY, s);
        } catch {
            // as above
        }
    }
    return s;
}

function showShiftStart() {
    const s = shiftStart();
    const d = new Date(s);
    const t = $('shift-start');
    t.dateTime = s;
    const today = new Date().toDateString() === d.toDateString();
    t.textContent = d.toLocaleString([], today ?
        { hour: '2-digit', minute: '2-digit', hour12: false } :
        { day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit', hour12: false });
}

async function loadStats() {
    clearTimeout(app.statsTimer);
    app.statsTimer = setTimeout(loadStats, 30000);
    try {
        const s = await get(`/api/v1/stats${q({ since: shiftStart() })}`);
        const st = s.station || {};
        $('stat-pass').textContent = String(st.pass ?? 0);
        $('stat-fail').textContent = String(st.fail ?? 0);
        $('stat-yield').textContent = formatYield(st.yield);
        $('stat-dph').textContent = formatRatePerHour(st.devices_per_hour);
    } catch {
        // shown again at the next refresh; the banner tells about the connection
    }
}

let statsSoon = null;
function statsSoonish() {
    clearTimeout(statsSoon);
    statsSoon = setTimeout(loadStats, 800);
}

function setStation(st) {
    if (!st) return;
    app.station = st;
    $('station-name').textContent = st.name || st.id || 'espstation';
    document.title = `${st.name || st.id || 'espstation'} — espstation`;
    // the station takes no jobs (its database file was deleted or replaced: docs/MES.md)
    const alarm = $('station-alarm');
    alarm.textContent = st.alarm || '';
    alarm.hidden = !st.alarm;
}

/** The station's alarm can rise at any time: look every 5 s. */
async function watchStation() {
    setTimeout(watchStation, 5000);
    try {
        setStation(await get('/api/v1/station'));
    } catch {
        // the banner tells about the connection
    }
}

/** Header recipes: one line per recipe with the slots that run it. */
function renderRecipes() {
    const groups = new Map();
    const none = [];
    for (const t of app.tiles.tiles.values()) {
        const s = t.slot;
        if (!s) continue;
        if (!s.recipe) {
            none.push(s.name);
            continue;
        }
        const g = groups.get(s.recipe.hash) || { r: s.recipe, slots: [] };
        g.slots.push(s.name);
        groups.set(s.recipe.hash, g);
    }
    const items = [];
    for (const { r, slots } of groups.values()) {
        const li = document.createElement('li');
        const name = document.createElement('span');
        name.className = 'r-name';
        name.textContent = `${r.name} ${r.version}`;
        const hash = document.createElement('span');
        hash.className = 'r-hash';
        hash.textContent = shortHash(r.hash);
        hash.title = r.hash;
        const sl = document.createElement('span');
        sl.className = 'r-slots';
        const all = groups.size === 1 && !none.length;
        sl.textContent = `— ${all ? 'all slots' : slots.join(', ')}`;
        li.append(name, ' ', hash, ' ', sl);
        items.push(li);
    }
    if (none.length) {
        const li = document.createElement('li');
        li.className = 'r-none';
        li.textContent = `No recipe — ${none.join(', ')}`;
        items.push(li);
    }
    $('recipes').replaceChildren(...items);
}

// ---------------------------------------------------------------- state and events

async function reload() {
    if (app.loading) return app.loading;
    app.buffer = [];
    app.loading = (async () => {
        try {
            await loadVocabulary();
            const [slots, station] = await Promise.all([get('/api/v1/slots'),
                get('/api/v1/station')]);
            setStation(station);
            app.readAccess = station.read_access || app.readAccess;
            app.tiles.setSlots(slots.slots, app.loaded);
            renderRecipes();
            const c = station.counters || {};
            await app.jobs.load((c.pass || 0) + (c.fail || 0) + (c.cancelled || 0) +
                (c.interrupted || 0));
            app.loaded = true;
            loadStats();
        } catch (e) {
            app.loaded = false;
            document.body.dataset.loaded = 'false';
            if (e instanceof ApiError && e.status === 401) needToken();
        } finally {
            app.loading = null;
            const buf = app.buffer;
            app.buffer = [];
            for (const [type, data] of buf) handleEvent(type, data);
            // for tests and kiosk scripts: the state shown is complete
            if (app.loaded) document.body.dataset.loaded = 'true';
        }
    })();
    return app.loading;
}

function handleEvent(type, data) {
    if (app.loading && type !== 'hello' && type !== 'reset') {
        app.buffer.push([type, data]);
        return;
    }
    switch (type) {
    case 'hello':
        setStation(data.station);
        // a new daemon (boot id) or nothing loaded yet: read everything; on a resumed
        // connection the daemon replays what we missed instead
        if (!app.loaded || (app.bootId && data.boot_id !== app.bootId)) reload();
        app.bootId = data.boot_id;
        break;
    case 'reset':
        reload();
        break;
    case 'slot':
        if (data.slot && !app.tiles.updateSlot(data.slot)) reload();
        else renderRecipes();
        break;
    case 'progress':
        app.tiles.progress(data);
        break;
    case 'job':
        if (data.job) app.jobs.add(data.job);
        statsSoonish();
        break;
    default:
        break;
    }
}

let bannerTimer = null;
function setConnected(up) {
    // A routine reconnect (the daemon closed an idle stream) takes well under a second: the
    // banner waits that long so it does not flicker, then stays until the stream is back.
    clearTimeout(bannerTimer);
    if (up) $('banner').hidden = true;
    else bannerTimer = setTimeout(() => { $('banner').hidden = false; }, 1000);
    const c = $('conn');
    c.dataset.up = String(up);
    $('conn-text').textContent = up ? 'Live' : 'Disconnected';
}

// ---------------------------------------------------------------- sign-in and roles

function applyRole() {
    const token = getToken();
    const role = token ? getRole() : '';
    const badge = $('role');
    if (token) {
        badge.dataset.role = role;
        badge.textContent = `Signed in: ${ROLE_WORDS[role] || role}`;
    } else {
        delete badge.dataset.role;
        badge.textContent = 'Read-only';
    }
    $('signin').hidden = Boolean(token);
    $('signout').hidden = !token;
    $('engineer-open').hidden = !roleCan(role, 'engineer');
    app.tiles.setCanOperate(Boolean(token) && roleCan(role, 'operate'));
}

function openSignIn(message) {
    $('token-error').textContent = message || '';
    $('token-input').value = '';
    $('token-dialog').showModal();
}

function needToken() {
    if (!$('token-dialog').open) openSignIn('This station needs a token to show its state.');
}

async function signIn(token) {
    try {
        const role = await probeRole(token);
        setAuth(token, role);
        $('token-dialog').close();
        applyRole();
        toast(`Signed in as ${ROLE_WORDS[role] || role}`);
        if (app.readAccess === 'token') {
            app.live.restart(true);
            reload();
        }
    } catch (e) {
        $('token-error').textContent = e instanceof ApiError && e.status === 401 ?
            'The station does not know this token.' : errText(e);
    }
}

function signOut() {
    setAuth('');
    applyRole();
    toast('Signed out: the page is read-only');
}

async function authFailed(e) {
    if (e instanceof ApiError && e.status === 401) {
        setAuth('');
        applyRole();
        openSignIn('The station no longer accepts this token; sign in again.');
        return true;
    }
    return false;
}

// ---------------------------------------------------------------- operator actions

async function startSlot(name) {
    try {
        // the tile follows the event stream, not this answer: a fast job's events can
        // arrive before the answer, which would then show an older state
        await request('POST', `/api/v1/slots/${encodeURIComponent(name)}/start`);
        toast(`Slot ${name}: started`);
    } catch (e) {
        if (!(await authFailed(e))) toast(`Slot ${name}: ${errText(e)}`, true);
    }
}

async function cancelSlot(name) {
    if (!(await confirmDialog(`Cancel the job on slot ${name}? The board will have to be ` +
        'flashed again.', 'Cancel the job'))) return;
    try {
        // the tile follows the event stream, not this answer: a fast job's events can
        // arrive before the answer, which would then show an older state
        await request('POST', `/api/v1/slots/${encodeURIComponent(name)}/cancel`);
        toast(`Slot ${name}: cancelled`);
    } catch (e) {
        if (!(await authFailed(e))) toast(`Slot ${name}: ${errText(e)}`, true);
    }
}

async function openJob(uuid) {
    const d = $('job-dialog');
    $('job-dialog-h').textContent = 'Job';
    if (!d.open) d.showModal();
    const j = await renderJobDetail($('job-detail'), uuid);
    if (j) $('job-dialog-h').textContent = `Job on slot ${j.slot} — board ${j.mac || 'unknown'}`;
}

// ---------------------------------------------------------------- start

// The station's words for stages and error classes (GET /api/v1/vocabulary): loaded once; a
// station whose reads need a token gives them after sign-in (reload).
async function loadVocabulary() {
    if (hasVocabulary()) return;
    try {
        setVocabulary(await get('/api/v1/vocabulary'));
    } catch {
        // names are shown as they are until it loads
    }
}

async function main() {
    app.tiles = new TileGrid($('grid'), {
        onStart: startSlot, onCancel: cancelSlot, onDetails: openJob, announce,
    });
    app.jobs = new JobList({
        listEl: $('job-list'), noteEl: $('jobs-note'), searchEl: $('mac-search'),
        filterEl: $('result-filter'), onOpen: openJob,
    });
    app.engineer = new EngineerView({
        dialog: $('engineer-dialog'), slotsTable: $('eng-slots'), form: $('upload-form'),
        recipeInput: $('upload-recipe'), imagesInput: $('upload-images'), log: $('upload-log'),
        toast, refresh: () => reload(),
    });
    $('banner').querySelector('.banner-icon').innerHTML = iconSvg('offline');
    $('signin').addEventListener('click', () => openSignIn(''));
    $('signout').addEventListener('click', signOut);
    $('token-cancel').addEventListener('click', () => $('token-dialog').close());
    $('token-form').addEventListener('submit', (e) => {
        e.preventDefault();
        signIn($('token-input').value.trim());
    });
    $('engineer-open').addEventListener('click', () => app.engineer.open());
    $('shift-reset').addEventListener('click', async () => {
        if (!(await confirmDialog('Start a new shift? Pass, fail, yield and boards per hour ' +
            'count from now on (no job is deleted).', 'Start a new shift'))) return;
        try {
            localStorage.setItem(SHIFT_KEY, new Date().toISOString());
        } catch {
            // no storage
        }
        showShiftStart();
        loadStats();
    });
    showShiftStart();
    applyRole();

    app.live = new LiveStream({ onEvent: handleEvent, onStatus: setConnected, token: getToken });
    // Reads may need a token (config "read_access": "token"); EventSource cannot send one,
    // so the stream is then read with fetch().
    await loadVocabulary();
    try {
        const st = await get('/api/v1/station');
        setStation(st);
        app.readAccess = st.read_access || 'open';
    } catch (e) {
        if (e instanceof ApiError && e.status === 401) {
            app.readAccess = 'token';
            if (!getToken()) needToken();
        }
    }
    app.live.start(app.readAccess === 'token');
    setTimeout(watchStation, 5000);

    // a token from an earlier visit in this tab: check it still works
    const tok = getToken();
    if (tok) {
        probeRole(tok).then((role) => {
            setAuth(tok, role);
            applyRole();
        }).catch((e) => authFailed(e));
    }
}

main();
