// SPDX-License-Identifier: MIT
// api.js — the dashboard's HTTP client: JSON requests to /api/v1 with the bearer token (kept in
// sessionStorage for this browser tab only), RFC 9457 problem responses turned into errors
// with the daemon's own words, and the probe that finds the token's role.
// Must not: touch the DOM; store the token anywhere but sessionStorage.

const TOKEN_KEY = 'espstation.token';
const ROLE_KEY = 'espstation.role';

export class ApiError extends Error {
    constructor(status, problem, fallback) {
        const p = problem || {};
        super(p.detail || p.title || fallback || `HTTP ${status}`);
        this.status = status;
        this.code = p.code || null;
        this.title = p.title || null;
        this.errors = Array.isArray(p.errors) ? p.errors : [];
    }
}

export function getToken() {
    try {
        return sessionStorage.getItem(TOKEN_KEY) || '';
    } catch {
        return '';
    }
}

export function getRole() {
    try {
        return sessionStorage.getItem(ROLE_KEY) || '';
    } catch {
        return '';
    }
}

export function setAuth(token, role) {
    try {
        if (token) {
            sessionStorage.setItem(TOKEN_KEY, token);
            sessionStorage.setItem(ROLE_KEY, role || '');
        } else {
            sessionStorage.removeItem(TOKEN_KEY);
            sessionStorage.removeItem(ROLE_KEY);
        }
    } catch {
        // storage disabled: the token lives only as long as the page
    }
}

async function problemOf(res) {
    const type = res.headers.get('content-type') || '';
    if (type.includes('json')) {
        try {
            return await res.json();
        } catch {
            return null;
        }
    }
    try {
        const text = (await res.text()).trim();
        return text ? { detail: text.slice(0, 300) } : null;
    } catch {
        return null;
    }
}

/**
 * One request. `body` is JSON-encoded unless it is a Blob/ArrayBuffer/string (sent as is with
 * `contentType`). Resolves to the parsed JSON (or null for an empty body); rejects with
 * ApiError (HTTP errors) or TypeError (network down).
 */
export async function request(method, path, { body, contentType, token, signal } = {}) {
    const headers = { Accept: 'application/json' };
    const tok = token === undefined ? getToken() : token;
    if (tok) headers.Authorization = `Bearer ${tok}`;
    let payload;
    if (body !== undefined) {
        if (typeof body === 'string' || body instanceof Blob || body instanceof ArrayBuffer ||
            ArrayBuffer.isView(body)) {
            payload = body;
            headers['Content-Type'] = contentType || 'application/octet-stream';
        } else {
            payload = JSON.stringify(body);
            headers['Content-Type'] = 'application/json';
        }
    }
    const res = await fetch(path, { method, headers, body: payload, signal, cache: 'no-store' });
    if (!res.ok) {
        throw new ApiError(res.status, await problemOf(res), res.statusText);
    }
    const type = res.headers.get('content-type') || '';
    if (res.status === 204 || !type.includes('json')) return null;
    return res.json();
}

export const get = (path, opts) => request('GET', path, opts);

export function q(params) {
    const u = new URLSearchParams();
    for (const [k, v] of Object.entries(params)) {
        if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
    }
    const s = u.toString();
    return s ? `?${s}` : '';
}

// A name that can never be a slot (slot names are letters, digits, '-', '_', '.'), used to ask
// the daemon whether a token may do something without doing it: the role check comes before
// the slot lookup, so an allowed token gets 404 and a too-low one 403 (docs/API.md roles).
const PROBE_SLOT = encodeURIComponent('~role-probe~');

async function allowed(method, path, token, body) {
    try {
        await request(method, path, { token, body });
        return true;
    } catch (e) {
        if (!(e instanceof ApiError)) throw e;
        if (e.status === 401) throw e;
        if (e.status === 403) return false;
        return true; // 404 / 400 / 409 / 422: past the role check
    }
}

/**
 * The role of a token: 'engineer', 'operator', 'mes' or 'viewer'. Throws ApiError 401 for an
 * unknown token, TypeError when the station cannot be reached.
 */
export async function probeRole(token) {
    if (await allowed('PUT', `/api/v1/slots/${PROBE_SLOT}/recipe`, token, { hash: null })) {
        return 'engineer';
    }
    if (await allowed('POST', `/api/v1/slots/${PROBE_SLOT}/start`, token)) return 'operator';
    if (await allowed('GET', '/api/v1/jobs.csv?limit=1', token)) return 'mes';
    return 'viewer';
}
