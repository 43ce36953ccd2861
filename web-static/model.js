// SPDX-License-Identifier: MIT
// model.js — what the dashboard shows, as pure functions of the API's data: the operator's
// state word for a slot (IDLE … FAIL), stage and error class names in plain words (from the
// station's vocabulary), number and time formatting. Must not: touch the DOM or the network (the Node unit test imports it).

/** The operator-facing states, in the order of a job. `cls` is the CSS/icon key. */
export const STATES = {
    IDLE: { word: 'IDLE', cls: 'idle', icon: 'idle' },
    WAITING: { word: 'WAITING FOR BOARD', cls: 'waiting', icon: 'waiting' },
    FLASHING: { word: 'FLASHING', cls: 'flashing', icon: 'flashing' },
    VERIFYING: { word: 'VERIFYING', cls: 'verifying', icon: 'verifying' },
    TESTING: { word: 'TESTING', cls: 'testing', icon: 'testing' },
    PASS: { word: 'PASS', cls: 'pass', icon: 'pass' },
    FAIL: { word: 'FAIL', cls: 'fail', icon: 'fail' },
};

// The station's words (GET /api/v1/vocabulary, daemon/station/vocab.c): job states ("stages")
// and error classes in operator words. The dashboard loads them at start (app.js); until then,
// and for a name the vocabulary lacks (a newer daemon), the raw name is shown, so nothing is
// hidden. No copy of the words is kept here.
const vocab = { stages: new Map(), classes: new Map() };

/** Take the words of a vocabulary (the API's JSON); false when it is not one. */
export function setVocabulary(v) {
    if (!v || !Array.isArray(v.job_states) || !Array.isArray(v.error_classes)) return false;
    vocab.stages = new Map(v.job_states.map((s) => [s.name, s.words]));
    vocab.classes = new Map(v.error_classes.map((c) => [c.name, c.words]));
    return true;
}

export function hasVocabulary() {
    return vocab.stages.size > 0;
}

// Stages in which the board is being tested (a recipe's post-flash test); named loosely so a
// daemon that calls the stage "test" or "test_*" is shown as TESTING.
function isTestStage(stage) {
    return stage === 'test' || (typeof stage === 'string' && stage.startsWith('test_'));
}

export function stageWords(stage) {
    if (stage == null) return '';
    return vocab.stages.get(stage) || stage.replace(/_/g, ' ');
}

export function classWords(cls) {
    if (!cls) return '';
    return vocab.classes.get(cls) || cls.replace(/_/g, ' ');
}

/**
 * The operator state of a slot (API `Slot`). A running job shows its phase; otherwise the last
 * result (pass or fail) stays on the tile until the next job starts, so an operator who looks
 * up later still sees which board to take out. Cancelled / interrupted jobs do not stay.
 */
export function displayState(slot) {
    if (!slot) return STATES.IDLE;
    if (slot.state === 'running') {
        if (slot.stage === 'verify') return STATES.VERIFYING;
        if (isTestStage(slot.stage)) return STATES.TESTING;
        return STATES.FLASHING;
    }
    const last = slot.last;
    if (slot.state !== 'stopped' && last && (last.result === 'pass' || last.result === 'fail')) {
        return last.result === 'pass' ? STATES.PASS : STATES.FAIL;
    }
    if (slot.state === 'waiting' || slot.state === 'probing') return STATES.WAITING;
    return STATES.IDLE;
}

/** The line under the state word: what the slot is doing right now, in plain words. */
export function stageLine(slot) {
    if (!slot) return '';
    switch (slot.state) {
    case 'running':
        return stageWords(slot.stage) || 'Starting';
    case 'waiting':
    case 'probing': {
        const last = slot.last;
        if (last && (last.result === 'pass' || last.result === 'fail')) return 'Next board, please';
        return slot.state === 'probing' ? 'Looking for a board' : 'Put a board in the fixture';
    }
    case 'stopped':
        return 'Station stopped';
    default: {
        if (slot.recipe_error || !slot.recipe) return 'Cannot start: no recipe';
        const last = slot.last;
        if (last && last.result === 'cancelled') return 'Last job cancelled';
        if (last && last.result === 'interrupted') return 'Last job interrupted';
        if (slot.start === 'manual') return 'Press Start to flash';
        return 'Not running';
    }
    }
}

/** kbit/s from bytes per second, or '' when unknown. */
export function formatRate(bps) {
    if (bps == null || !Number.isFinite(bps) || bps < 0) return '';
    const kbit = (bps * 8) / 1000;
    return (kbit >= 100 ? kbit.toFixed(0) : kbit.toFixed(1)) + ' kbit/s';
}

/** Progress in percent (0…100) from a Slot or progress event, or null when unknown. */
export function percentOf(p) {
    if (!p) return null;
    if (typeof p.percent === 'number' && Number.isFinite(p.percent)) {
        return Math.max(0, Math.min(100, p.percent));
    }
    if (p.bytes_total > 0 && p.bytes_done != null) {
        return Math.max(0, Math.min(100, (100 * p.bytes_done) / p.bytes_total));
    }
    return null;
}

export function formatPercent(pc) {
    if (pc == null) return '';
    return (pc >= 99.95 || pc === 0 ? pc.toFixed(0) : pc.toFixed(1)) + ' %';
}

/** m:ss or h:mm:ss from milliseconds. */
export function formatDuration(ms) {
    if (ms == null || !Number.isFinite(ms) || ms < 0) return '';
    const s = Math.floor(ms / 1000);
    const h = Math.floor(s / 3600);
    const m = Math.floor((s % 3600) / 60);
    const ss = String(s % 60).padStart(2, '0');
    return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** "5.2 s" for short durations (per-state timings), else m:ss. */
export function formatMs(ms) {
    if (ms == null || !Number.isFinite(ms)) return '';
    if (ms < 1000) return `${Math.round(ms)} ms`;
    if (ms < 60000) return `${(ms / 1000).toFixed(1)} s`;
    return formatDuration(ms);
}

export function formatBytes(n) {
    if (n == null || !Number.isFinite(n)) return '';
    if (n < 1024) return `${n} B`;
    if (n < 1024 * 1024) return `${(n / 1024).toFixed(n % 1024 ? 1 : 0)} KiB`;
    return `${(n / 1048576).toFixed(n % 1048576 ? 1 : 0)} MiB`;
}

export function formatHex(n, digits = 0) {
    if (n == null || !Number.isFinite(n)) return '';
    return '0x' + n.toString(16).padStart(digits, '0');
}

/** Yield 0…1 as a percentage, '–' when there is none. */
export function formatYield(y) {
    if (y == null || !Number.isFinite(y)) return '–';
    return (y * 100).toFixed(y === 1 || y === 0 ? 0 : 1) + ' %';
}

export function formatRatePerHour(v) {
    if (v == null || !Number.isFinite(v)) return '–';
    return v >= 100 ? v.toFixed(0) : v.toFixed(1);
}

/** Chip names as Espressif writes them (esp32s3 → ESP32-S3). */
export function chipName(chip) {
    if (!chip) return '';
    const m = /^esp(\d+)([a-z]\d+)?$/i.exec(chip);
    if (!m) return chip.toUpperCase();
    return 'ESP' + m[1] + (m[2] ? '-' + m[2].toUpperCase() : '');
}

export function shortHash(h) {
    return h ? h.slice(0, 8) : '';
}

/**
 * A MAC typed by an operator (any case, ':' '-' '.' or no separators) in canonical form
 * aa:bb:cc:dd:ee:ff, or null when it is not a whole MAC.
 */
export function normalizeMac(s) {
    if (typeof s !== 'string') return null;
    const hex = s.trim().toLowerCase().replace(/[\s:.-]/g, '');
    if (!/^[0-9a-f]{12}$/.test(hex)) return null;
    return hex.match(/../g).join(':');
}

/** The hex digits of a (partial) MAC search string, for substring matching. */
export function macDigits(s) {
    return (s || '').toLowerCase().replace(/[^0-9a-f]/g, '');
}

/** Does a job match the list's filters (result, MAC substring)? */
export function jobMatches(job, result, macQuery) {
    if (result && result !== 'all' && job.result !== result) return false;
    const q = macDigits(macQuery);
    if (q && !macDigits(job.mac || '').includes(q)) return false;
    return true;
}

/** Local clock time hh:mm:ss of an ISO time (for lists), '' if absent. */
export function clockTime(iso) {
    if (!iso) return '';
    const d = new Date(iso);
    if (Number.isNaN(d.getTime())) return '';
    return d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit',
        hour12: false });
}

/**
 * Columns for n tiles in a w×h area so that tiles are as large as possible at about the
 * preferred aspect ratio (width / height); the grid may scroll when tiles would get smaller
 * than the minimum.
 */
export function gridColumns(n, w, h, aspect = 0.82, gap = 12) {
    if (n <= 0 || w <= 0 || h <= 0) return 1;
    let best = 1;
    let bestScale = -1;
    for (let c = 1; c <= n; c++) {
        const r = Math.ceil(n / c);
        const tw = (w - gap * (c - 1)) / c;
        const th = (h - gap * (r - 1)) / r;
        if (tw <= 0 || th <= 0) break;
        const scale = Math.min(tw / aspect, th);
        if (scale > bestScale + 1e-9) {
            bestScale = scale;
            best = c;
        }
    }
    return best;
}

/** Role names → what the page lets that role do. */
export function roleCan(role, what) {
    const rank = { viewer: 0, mes: 0, operator: 1, engineer: 2 }[role];
    if (rank === undefined) return false;
    if (what === 'operate') return rank >= 1;
    if (what === 'engineer') return rank >= 2;
    return false;
}
