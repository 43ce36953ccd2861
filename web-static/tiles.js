// SPDX-License-Identifier: MIT
// tiles.js — the slot tiles: one <article> per slot built once and updated in place from Slot
// snapshots (slot events, GET /api/v1/slots) and progress events; the grid's column count so
// that all tiles fit the screen; the elapsed-time ticker; state changes announced to screen
// readers. Must not: call the API (actions go to the callbacks the app passes in).

import { iconSvg } from './icons.js';
import {
    chipName, classWords, clockTime, displayState, formatDuration, formatPercent, formatRate,
    gridColumns, percentOf, stageLine,
} from './model.js';

const MIN_ROW_H = 230; // px: below this the grid scrolls instead of shrinking the tiles

function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
}

function setText(e, text) {
    if (e.textContent !== text) e.textContent = text;
}

class Tile {
    constructor(name, grid) {
        this.name = name;
        this.grid = grid;
        this.slot = null;
        this.word = null;
        this.gotAt = 0;
        const id = `tile-${name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
        const a = el('article', 'tile st-idle');
        a.dataset.slot = name;
        a.setAttribute('aria-labelledby', `${id}-name ${id}-word`);
        this.root = a;

        const head = el('div', 'tile-head');
        const h = el('h3', 'slot-name', name);
        h.id = `${id}-name`;
        this.modeEl = el('span', 'slot-mode');
        head.append(h, this.modeEl);

        this.band = el('div', 'band');
        this.iconWrap = el('span', 'band-icon');
        this.wordEl = el('span', 'word', 'IDLE');
        this.wordEl.id = `${id}-word`;
        this.band.append(this.iconWrap, this.wordEl);

        const body = el('div', 'tile-body');
        this.stageEl = el('p', 'stage');
        this.progRow = el('div', 'progress-row');
        this.progEl = el('div', 'progress');
        this.progEl.setAttribute('role', 'progressbar');
        this.progEl.setAttribute('aria-valuemin', '0');
        this.progEl.setAttribute('aria-valuemax', '100');
        this.progEl.setAttribute('aria-label', `${name} progress`);
        this.barEl = el('div', 'bar');
        this.progEl.append(this.barEl);
        const pt = el('p', 'prog-text');
        this.pctEl = el('span', 'pct');
        this.rateEl = el('span', 'rate');
        pt.append(this.pctEl, this.rateEl);
        this.progRow.append(this.progEl, pt);

        const dl = el('dl', 'ident');
        const row = (label, cls, opt) => {
            const dt = el('dt', opt ? 'opt' : '', label);
            const dd = el('dd', cls + (opt ? ' opt' : ''));
            dl.append(dt, dd);
            return [dt, dd];
        };
        [, this.chipEl] = row('Chip', 'chip', true);
        [, this.macEl] = row('MAC', 'mac', false);
        [this.timeLabel, this.timeEl] = row('Time', 'elapsed', false);
        this.timeLabel.classList.add('when');
        this.timeEl.classList.add('when');

        this.failEl = el('div', 'failure');
        this.failEl.hidden = true;
        this.fclassEl = el('p', 'fclass');
        this.hintEl = el('p', 'hint');
        this.failEl.append(this.fclassEl, this.hintEl);

        this.noticeEl = el('p', 'notice');
        this.noticeEl.hidden = true;

        body.append(this.stageEl, this.progRow, dl, this.failEl, this.noticeEl);

        const actions = el('div', 'tile-actions');
        this.startBtn = el('button', 'btn btn-start');
        this.startBtn.type = 'button';
        this.startBtn.innerHTML = `${iconSvg('start')}Start`;
        this.startBtn.setAttribute('aria-label', `Start ${name}`);
        this.startBtn.addEventListener('click', () => grid.cb.onStart(name));
        this.cancelBtn = el('button', 'btn btn-cancel');
        this.cancelBtn.type = 'button';
        this.cancelBtn.innerHTML = `${iconSvg('cancel')}Cancel`;
        this.cancelBtn.setAttribute('aria-label', `Cancel ${name}`);
        this.cancelBtn.addEventListener('click', () => grid.cb.onCancel(name));
        this.detailBtn = el('button', 'btn btn-details', 'Details');
        this.detailBtn.type = 'button';
        this.detailBtn.setAttribute('aria-label', `Job details for ${name}`);
        this.detailBtn.addEventListener('click', () => {
            const s = this.slot;
            const uuid = s && (s.job_uuid || (s.last && s.last.job_uuid));
            if (uuid) grid.cb.onDetails(uuid);
        });
        actions.append(this.startBtn, this.cancelBtn, this.detailBtn);

        a.append(head, this.band, body, actions);
    }

    update(slot, announce) {
        this.slot = slot;
        this.gotAt = performance.now();
        const st = displayState(slot);
        this.root.className = `tile st-${st.cls}`;
        this.root.dataset.state = st.word;
        if (this.word !== st.word) {
            this.iconWrap.innerHTML = iconSvg(st.icon);
            setText(this.wordEl, st.word);
            this.wordEl.classList.toggle('long', st.word.length > 9);
            if (announce && this.word !== null) {
                let msg = `Slot ${this.name}: ${st.word}`;
                if (st.word === 'FAIL' && slot.last) {
                    msg += `, ${classWords(slot.last.error_class)}`;
                }
                this.grid.cb.announce(msg);
            }
            this.word = st.word;
        }
        setText(this.modeEl, slot.start ? `${slot.start}` : '');
        setText(this.stageEl, stageLine(slot));

        const running = slot.state === 'running';
        this.progRow.hidden = !running;
        if (running) this.progress(slot);

        setText(this.chipEl, chipName(slot.chip) || '–');
        setText(this.macEl, slot.mac || '–');
        this.tick();

        const last = slot.last;
        const failed = st.word === 'FAIL' && last;
        this.failEl.hidden = !failed;
        if (failed) {
            setText(this.fclassEl, classWords(last.error_class) || 'Failed');
            setText(this.hintEl, last.hint || last.message || '');
            this.failEl.title = last.message || '';
        }
        const notice = slot.recipe_error || (!slot.recipe ? 'No recipe for this slot.' : '');
        this.noticeEl.hidden = !notice || running;
        setText(this.noticeEl, notice ? `Cannot start: ${notice}` : '');

        this.syncActions();
        this.detailBtn.hidden = !(slot.job_uuid || (last && last.job_uuid));
    }

    progress(p) {
        const pc = percentOf(p);
        this.barEl.style.width = `${pc == null ? 0 : pc}%`;
        if (pc == null) this.progEl.removeAttribute('aria-valuenow');
        else this.progEl.setAttribute('aria-valuenow', pc.toFixed(0));
        setText(this.pctEl, formatPercent(pc));
        setText(this.rateEl, formatRate(p.rate_bps));
    }

    tick() {
        const s = this.slot;
        if (!s) return;
        if (s.state === 'running') {
            setText(this.timeLabel, 'Time');
            const ms = (s.elapsed_ms || 0) + (performance.now() - this.gotAt);
            setText(this.timeEl, formatDuration(ms));
        } else if (s.last && s.last.finished_at) {
            setText(this.timeLabel, 'Done at');
            setText(this.timeEl, clockTime(s.last.finished_at));
        } else {
            setText(this.timeLabel, 'Time');
            setText(this.timeEl, '–');
        }
    }

    syncActions() {
        const can = this.grid.canOperate;
        const acts = (this.slot && this.slot.actions) || {};
        this.startBtn.hidden = !can;
        this.cancelBtn.hidden = !can;
        this.startBtn.disabled = !acts.start;
        this.cancelBtn.disabled = !acts.cancel;
    }
}

export class TileGrid {
    /** cb: { onStart(name), onCancel(name), onDetails(uuid), announce(text) } */
    constructor(gridEl, cb) {
        this.el = gridEl;
        this.cb = cb;
        this.tiles = new Map();
        this.canOperate = false;
        this.ro = new ResizeObserver(() => this.layout());
        this.ro.observe(gridEl.parentElement);
        setInterval(() => {
            for (const t of this.tiles.values()) if (t.slot && t.slot.state === 'running') t.tick();
        }, 1000);
    }

    /** The full list of slots (config order): rebuilds the grid when the names changed. */
    setSlots(slots, announce = false) {
        const names = slots.map((s) => s.name);
        const same = names.length === this.tiles.size && names.every((n) => this.tiles.has(n));
        if (!same) {
            this.tiles.clear();
            this.el.replaceChildren();
            for (const n of names) {
                const t = new Tile(n, this);
                this.tiles.set(n, t);
                this.el.append(t.root);
            }
            this.layout();
        }
        for (const s of slots) this.tiles.get(s.name).update(s, announce);
    }

    updateSlot(slot) {
        const t = this.tiles.get(slot.name);
        if (t) t.update(slot, true);
        return Boolean(t);
    }

    progress(ev) {
        const t = this.tiles.get(ev.slot);
        if (!t || !t.slot || t.slot.state !== 'running') return;
        if (ev.job_uuid && t.slot.job_uuid && ev.job_uuid !== t.slot.job_uuid) return;
        // keep the snapshot current so a later redraw shows the same numbers
        Object.assign(t.slot, {
            bytes_done: ev.bytes_done, bytes_total: ev.bytes_total, percent: ev.percent,
            rate_bps: ev.rate_bps,
        });
        if (ev.stage && ev.stage !== t.slot.stage) {
            t.update({ ...t.slot, stage: ev.stage }, true);
        } else {
            t.progress(ev);
        }
    }

    slot(name) {
        const t = this.tiles.get(name);
        return t ? t.slot : null;
    }

    setCanOperate(can) {
        this.canOperate = can;
        for (const t of this.tiles.values()) t.syncActions();
    }

    layout() {
        const host = this.el.parentElement;
        const n = this.tiles.size;
        if (!n) return;
        const cs = getComputedStyle(host);
        const w = host.clientWidth - parseFloat(cs.paddingLeft) - parseFloat(cs.paddingRight);
        const h = host.clientHeight - parseFloat(cs.paddingTop) - parseFloat(cs.paddingBottom);
        const gap = parseFloat(getComputedStyle(this.el).rowGap) || 12;
        const narrow = window.matchMedia('(max-width: 1200px)').matches;
        const availH = narrow ? Math.max(h, window.innerHeight * 0.8) : h;
        const cols = gridColumns(n, w, availH, 0.82, gap);
        const rows = Math.ceil(n / cols);
        const rowH = Math.max(MIN_ROW_H, Math.floor((availH - gap * (rows - 1)) / rows));
        this.el.style.setProperty('--cols', String(cols));
        this.el.style.setProperty('--row-h', `${rowH}px`);
    }
}
