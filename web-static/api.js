// SPDX-License-Identifier: MIT
// api.js — the dashboard's HTTP client: JSON requests to /api/v1 with the bearer token (kept in
// sessionStorage for this browser tab only), RFC 9457 problem responses turned into errors
// with the daemon's own words, and the lookup of the token's role (GET /api/v1/auth).
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

/**
 * The role of a token: 'engineer', 'operator', 'mes' or 'viewer', from GET /api/v1/auth (which
 * changes nothing). Throws ApiError 401 for an unknown token, TypeError when the station cannot
 * be reached.
 */
export async function probeRole(token) {
    const me = await request('GET', '/api/v1/auth', { token });
    return me.role || 'viewer';
}
