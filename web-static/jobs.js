// SPDX-License-Identifier: MIT
// jobs.js — the recent-jobs list (loaded from /api/v1/jobs, kept live from `job` events),
// its MAC search and result filter (a whole MAC also asks /api/v1/devices/{mac} for the board's
// full history), and the job detail dialog from /api/v1/jobs/{uuid}.
// Must not: change anything on the station (read-only endpoints only).

import { ApiError, get, q } from './api.js';
import { iconSvg } from './icons.js';
import {
    chipName, classWords, clockTime, formatBytes, formatHex, formatMs, jobMatches, normalizeMac,
    shortHash, stageWords,
} from './model.js';

const KEEP = 200; // jobs kept in the list
const PAGE = 1000;

const RESULT_ICON = { pass: 'pass', fail: 'fail', cancelled: 'cancel', interrupted: 'warn',
    running: 'flashing' };
const RESULT_WORD = { pass: 'PASS', fail: 'FAIL', cancelled: 'CANCELLED',
    interrupted: 'INTERRUPTED', running: 'RUNNING' };

function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
}

export class JobList {
    constructor({ listEl, noteEl, searchEl, filterEl, onOpen }) {
        this.listEl = listEl;
        this.noteEl = noteEl;
        this.searchEl = searchEl;
        this.filterEl = filterEl;
        this.onOpen = onOpen;
        this.jobs = []; // newest first
        this.bySeq = new Set();
        this.device = null; // { mac, jobs } when a whole MAC was searched
        this.deviceReq = 0;
        let t = null;
        searchEl.addEventListener('input', () => {
            clearTimeout(t);
            t = setTimeout(() => this.searchChanged(), 250);
        });
        searchEl.form.addEventListener('submit', (e) => {
            e.preventDefault();
            clearTimeout(t);
            this.searchChanged();
        });
        filterEl.addEventListener('change', () => this.render());
    }

    /**
     * Load the latest jobs. The seq cursor starts near the end (finished-job count minus what
     * we keep) so a long history is not read from the start; seq values are assigned in commit
     * order, so reading on from there to has_more=false gives the newest ones.
     */
    async load(finishedCount) {
        let after = Math.max(0, (finishedCount || 0) - KEEP);
        let got = await this.readFrom(after);
        if (got.length < KEEP && after > 0) got = await this.readFrom(0);
        this.jobs = [];
        this.bySeq.clear();
        for (const j of got.slice(-KEEP)) this.add(j, false);
        this.render();
    }

    async readFrom(after) {
        const out = [];
        for (let i = 0; i < 1000; i++) {
            const r = await get(`/api/v1/jobs${q({ after, limit: PAGE })}`);
            out.push(...r.jobs);
            if (out.length > KEEP * 4) out.splice(0, out.length - KEEP);
            if (!r.has_more || r.next_after === after) break;
            after = r.next_after;
        }
        return out;
    }

    /** A finished job (from a `job` event or a load); ignored when already listed. */
    add(job, render = true) {
        if (job.seq != null) {
            if (this.bySeq.has(job.seq)) return;
            this.bySeq.add(job.seq);
        }
        // newest first by seq (commit order)
        let i = 0;
        while (i < this.jobs.length && this.jobs[i].seq > job.seq) i++;
        this.jobs.splice(i, 0, job);
        if (this.jobs.length > KEEP) {
            const gone = this.jobs.pop();
            this.bySeq.delete(gone.seq);
        }
        if (this.device && job.mac === this.device.mac &&
            !this.device.jobs.some((j) => j.seq === job.seq)) {
            this.device.jobs.push(job);
        }
        if (render) this.render();
    }

    async searchChanged() {
        const mac = normalizeMac(this.searchEl.value);
        if (!mac) {
            this.device = null;
            this.render();
            return;
        }
        const req = ++this.deviceReq;
        try {
            const r = await get(`/api/v1/devices/${encodeURIComponent(mac)}`);
            if (req !== this.deviceReq) return;
            this.device = { mac, jobs: r.jobs || [] };
        } catch (e) {
            if (req !== this.deviceReq) return;
            this.device = null;
            this.noteEl.textContent = e instanceof ApiError ? e.message : 'Station not reachable';
            return;
        }
        this.render();
    }

    render() {
        const result = this.filterEl.value;
        const query = this.searchEl.value.trim();
        let shown;
        let note;
        if (this.device) {
            shown = this.device.jobs.filter((j) => jobMatches(j, result, '')).reverse();
            const n = shown.length;
            note = `${n} job${n === 1 ? '' : 's'} of board ${this.device.mac}` +
                ' (its whole history)';
        } else {
            shown = this.jobs.filter((j) => jobMatches(j, result, query));
            const filtered = query || (result && result !== 'all');
            note = filtered ?
                `${shown.length} of the last ${this.jobs.length} jobs match` :
                (this.jobs.length ? `Last ${this.jobs.length} jobs, newest first` :
                    'No finished jobs yet');
        }
        this.noteEl.textContent = note;
        const items = shown.map((j) => this.row(j));
        this.listEl.replaceChildren(...items);
    }

    row(j) {
        const li = el('li');
        li.dataset.uuid = j.uuid;
        li.dataset.result = j.result;
        li.dataset.mac = j.mac || '';
        const b = el('button', 'job-row');
        b.type = 'button';
        const res = el('span', `res res-${j.result}`);
        res.innerHTML = iconSvg(RESULT_ICON[j.result] || 'idle');
        res.append(RESULT_WORD[j.result] || j.result);
        const main = el('span', 'main');
        main.append(el('strong', null, j.slot), ' ', el('span', 'mac', j.mac || 'no MAC'));
        const when = el('span', 'when', clockTime(j.finished_at));
        const sub = el('span', 'sub', [chipName(j.chip), j.duration_ms != null ?
            formatMs(j.duration_ms) : '', j.error_class ? classWords(j.error_class) : '']
            .filter(Boolean).join(' · '));
        sub.style.gridColumn = '2 / -1';
        b.append(res, main, when, sub);
        b.setAttribute('aria-label', `${RESULT_WORD[j.result] || j.result}, slot ${j.slot}, ` +
            `MAC ${j.mac || 'unknown'}, ${clockTime(j.finished_at)}. Show details`);
        b.addEventListener('click', () => this.onOpen(j.uuid));
        li.append(b);
        return li;
    }
}

// ---------------------------------------------------------------- detail dialog

function dl(pairs) {
    const d = el('dl', 'summary');
    for (const [k, v] of pairs) {
        if (v === undefined) continue;
        const w = el('div');
        w.append(el('dt', null, k), el('dd', null, v === null || v === '' ? '–' : v));
        d.append(w);
    }
    return d;
}

function table(headers, rows, classes = []) {
    const t = el('table', 'table');
    const thead = el('thead');
    const tr = el('tr');
    for (const h of headers) {
        const th = el('th', null, h);
        th.scope = 'col';
        tr.append(th);
    }
    thead.append(tr);
    const tb = el('tbody');
    for (const r of rows) {
        const row = el('tr');
        r.forEach((c, i) => {
            const td = el('td', classes[i] || '');
            if (c instanceof Node) td.append(c);
            else td.textContent = c === null || c === undefined ? '–' : String(c);
            row.append(td);
        });
        tb.append(row);
    }
    t.append(thead, tb);
    return t;
}

/** Fill `container` with the job's detail; returns the job (for the dialog title). */
export async function renderJobDetail(container, uuid) {
    container.replaceChildren(el('p', 'note', 'Loading…'));
    let j;
    try {
        j = await get(`/api/v1/jobs/${encodeURIComponent(uuid)}`);
    } catch (e) {
        container.replaceChildren(el('p', 'form-error', e instanceof ApiError ? e.message :
            'The station cannot be reached.'));
        return null;
    }
    const parts = [];
    const rl = el('p', `result-line res-${j.result}`);
    rl.innerHTML = iconSvg(RESULT_ICON[j.result] || 'idle');
    rl.append(`${RESULT_WORD[j.result] || j.result} — slot ${j.slot}`);
    parts.push(rl);
    if (j.result === 'fail' || j.error_class) {
        const f = el('div', 'failure');
        f.append(el('p', 'fclass', classWords(j.error_class) +
            (j.failed_state ? ` (while: ${stageWords(j.failed_state)})` : '')));
        if (j.hint) f.append(el('p', 'hint', j.hint));
        if (j.message) f.append(el('p', 'note', j.message));
        parts.push(f);
    }
    parts.push(dl([
        ['Job', j.uuid], ['Board MAC', j.mac], ['Chip', [chipName(j.chip), j.revision]
            .filter(Boolean).join(' ')],
        ['Flash', [j.flash_id, j.flash_size ? formatBytes(j.flash_size) : ''].filter(Boolean)
            .join(' · ')],
        ['Recipe', [j.recipe_name, j.recipe_version, shortHash(j.recipe_hash)].filter(Boolean)
            .join(' · ')],
        ['Port', j.port], ['Started', j.started_at], ['Finished', j.finished_at],
        ['Duration', formatMs(j.duration_ms)], ['Baud', j.baud],
        ['Attempt', j.attempt != null ? `${j.attempt} (retries ${j.retries ?? 0})` : null],
        ['Bytes written / sent', j.bytes_written != null ?
            `${formatBytes(j.bytes_written)} / ${formatBytes(j.bytes_sent)}` : null],
        ['MES seq', j.seq],
    ]));

    const sm = j.state_ms || {};
    const entries = Object.entries(sm).filter(([, v]) => typeof v === 'number');
    if (entries.length) {
        parts.push(el('h3', null, 'Time per step'));
        const max = Math.max(1, ...entries.map(([, v]) => v));
        parts.push(table(['Step', 'Time', ''], entries.map(([k, v]) => {
            const bar = el('div', 'timing-bar');
            bar.style.width = `${Math.max(0.5, (100 * v) / max)}%`;
            return [stageWords(k), formatMs(v), bar];
        }), ['', 'num', 'bar-cell']));
    }

    const ims = Array.isArray(j.images) ? j.images : [];
    parts.push(el('h3', null, 'Images'));
    if (ims.length) {
        parts.push(table(['#', 'Offset', 'Size', 'Sent', 'MD5', 'Verified', 'Time'],
            ims.map((im) => [im.index, formatHex(im.offset, 5), formatBytes(im.size),
                formatBytes(im.compressed_size), im.md5,
                im.verified ? 'yes' : 'no', formatMs(im.duration_ms)]),
            ['num', 'mono', 'num', 'num', 'mono', '', 'num']));
    } else {
        parts.push(el('p', 'note', 'No image was written.'));
    }

    if (j.not_verified_reason) parts.push(el('p', 'note', `Not verified: ${j.not_verified_reason}`));

    const sec = j.security;
    if (sec && typeof sec.summary === 'string') {
        /* the unit's security read-out (docs/SECURITY-PROVISIONING.md §9), plain words */
        parts.push(el('h3', null, 'Security'));
        const pre = el('pre', 'security-summary', sec.summary);
        parts.push(pre);
        if (sec.efuse_error) parts.push(el('p', 'note', `eFuse blocks not read: ${sec.efuse_error}`));
    }

    const evs = Array.isArray(j.events) ? j.events : [];
    parts.push(el('h3', null, 'Events'));
    if (evs.length) {
        const wrap = el('div', 'events');
        wrap.tabIndex = 0;
        wrap.setAttribute('role', 'region');
        wrap.setAttribute('aria-label', 'Job events');
        wrap.append(table(['#', 'Time', 'Kind', 'Step', 'Detail'], evs.map((e) => [
            e.n, formatMs(e.t_ms), e.kind, e.state ? stageWords(e.state) : '',
            e.detail == null ? '' : (typeof e.detail === 'string' ? e.detail :
                JSON.stringify(e.detail)),
        ]), ['num', 'num', '', '', 'mono']));
        parts.push(wrap);
    } else {
        parts.push(el('p', 'note', 'No events recorded.'));
    }
    container.replaceChildren(...parts);
    return j;
}
