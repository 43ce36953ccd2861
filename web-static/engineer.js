// SPDX-License-Identifier: MIT
// engineer.js — the engineer view: choose each slot's recipe (GET /api/v1/recipes, PUT
// /api/v1/slots/{name}/recipe) and upload a recipe with its images (PUT /api/v1/images/{name},
// then POST /api/v1/recipes). Shown only to an engineer token; the daemon checks the role again.
// Must not: send a recipe whose images were not checked against its sha256 fields first.

import { ApiError, get, request } from './api.js';
import { shortHash } from './model.js';
import { sha256Blob } from './sha256.js';

const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
}

function recipeLabel(r) {
    return r ? `${r.name} ${r.version} (${shortHash(r.hash)})` : 'none';
}

function problemText(e) {
    if (!(e instanceof ApiError)) return 'The station cannot be reached.';
    let s = e.message;
    if (e.errors.length) s += ': ' + e.errors.map((x) => `${x.path} ${x.message}`).join('; ');
    return s;
}

export class EngineerView {
    constructor({ dialog, slotsTable, form, recipeInput, imagesInput, log, toast, refresh }) {
        this.dialog = dialog;
        this.tbody = slotsTable.tBodies[0];
        this.form = form;
        this.recipeInput = recipeInput;
        this.imagesInput = imagesInput;
        this.log = log;
        this.toast = toast;
        this.refresh = refresh;
        form.addEventListener('submit', (e) => {
            e.preventDefault();
            this.upload();
        });
    }

    async open() {
        this.log.replaceChildren();
        this.dialog.showModal();
        await this.loadSlots();
    }

    async loadSlots() {
        const wait = el('tr');
        const wtd = el('td', 'note', 'Loading…');
        wtd.colSpan = 4;
        wait.append(wtd);
        this.tbody.replaceChildren(wait);
        let slots;
        let recipes;
        try {
            [{ slots }, { recipes }] = await Promise.all([get('/api/v1/slots'),
                get('/api/v1/recipes')]);
        } catch (e) {
            const tr = el('tr');
            const td = el('td', 'form-error', problemText(e));
            td.colSpan = 4;
            tr.append(td);
            this.tbody.replaceChildren(tr);
            return;
        }
        const rows = slots.map((s) => {
            const tr = el('tr');
            tr.dataset.slot = s.name;
            const sel = el('select');
            sel.setAttribute('aria-label', `Recipe for slot ${s.name}`);
            const def = el('option', null, 'Station default');
            def.value = '';
            sel.append(def);
            for (const r of recipes) {
                const o = el('option', null, recipeLabel(r));
                o.value = r.hash;
                if (s.recipe && s.recipe.hash === r.hash) o.selected = true;
                sel.append(o);
            }
            const btn = el('button', 'btn btn-small', 'Apply');
            btn.type = 'button';
            btn.setAttribute('aria-label', `Apply the recipe to slot ${s.name}`);
            btn.addEventListener('click', () => this.apply(s.name, sel.value || null, btn));
            const now = el('td', null, recipeLabel(s.recipe));
            if (s.recipe_error) now.append(el('div', 'form-error', s.recipe_error));
            const tdSel = el('td');
            tdSel.append(sel);
            const tdBtn = el('td');
            tdBtn.append(btn);
            tr.append(el('th', null, s.name), now, tdSel, tdBtn);
            tr.firstChild.scope = 'row';
            return tr;
        });
        this.tbody.replaceChildren(...rows);
    }

    async apply(slot, hash, btn) {
        btn.disabled = true;
        try {
            await request('PUT', `/api/v1/slots/${encodeURIComponent(slot)}/recipe`,
                { body: { hash } });
            this.toast(`Slot ${slot}: recipe changed`);
            await this.loadSlots();
            this.refresh();
        } catch (e) {
            this.toast(`Slot ${slot}: ${problemText(e)}`, true);
        } finally {
            btn.disabled = false;
        }
    }

    say(text, cls) {
        const li = el('li', cls || '', text);
        this.log.append(li);
        li.scrollIntoView({ block: 'nearest' });
    }

    async upload() {
        this.log.replaceChildren();
        const rf = this.recipeInput.files[0];
        if (!rf) {
            this.say('Choose the recipe file first.', 'err');
            return;
        }
        const text = await rf.text();
        let recipe;
        try {
            recipe = JSON.parse(text);
        } catch (e) {
            this.say(`${rf.name} is not valid JSON: ${e.message}`, 'err');
            return;
        }
        const images = Array.isArray(recipe.images) ? recipe.images : [];
        const files = new Map(Array.from(this.imagesInput.files, (f) => [f.name, f]));
        // check everything before sending anything
        const plan = [];
        for (const [i, im] of images.entries()) {
            const name = typeof im.file === 'string' ? im.file : '';
            if (!IMAGE_NAME.test(name)) {
                this.say(`$.images[${i}].file "${name}": the station stores uploaded images by ` +
                    'plain file name; change the recipe to name the file without folders.', 'err');
                return;
            }
            const f = files.get(name);
            if (!f) {
                this.say(`$.images[${i}]: choose the image file "${name}" too.`, 'err');
                return;
            }
            this.say(`Checking ${name} (${f.size} bytes)…`);
            const sha = await sha256Blob(f);
            if (typeof im.sha256 !== 'string' || sha !== im.sha256.toLowerCase()) {
                this.say(`${name}: its SHA-256 is ${sha}, the recipe says ${im.sha256}. ` +
                    'Choose the right file or update the recipe.', 'err');
                return;
            }
            plan.push({ name, f, sha });
        }
        try {
            for (const p of plan) {
                this.say(`Uploading ${p.name}…`);
                await request('PUT', `/api/v1/images/${encodeURIComponent(p.name)}` +
                    `?sha256=${p.sha}`, { body: p.f, contentType: 'application/octet-stream' });
                this.say(`${p.name} stored.`, 'ok');
            }
            this.say('Storing the recipe…');
            const r = await request('POST', '/api/v1/recipes',
                { body: text, contentType: 'application/json' });
            this.say(`Recipe ${r.name} ${r.version} stored (${shortHash(r.hash)}). ` +
                'Choose it for a slot above.', 'ok');
            await this.loadSlots();
        } catch (e) {
            this.say(problemText(e), 'err');
        }
    }
}
