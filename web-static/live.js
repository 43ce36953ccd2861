// SPDX-License-Identifier: MIT
// live.js — the connection to /api/v1/events: EventSource (or, when reads need a token, a
// fetch() reader that can send the Authorization header), resume after a drop from the last
// event id, and the connected / disconnected signal that drives the "connection lost" banner.
// Must not: touch the DOM or interpret events beyond parsing their JSON.

const EVENT_TYPES = ['hello', 'slot', 'progress', 'job', 'log', 'reset'];
const RETRY_MIN_MS = 500;
const RETRY_MAX_MS = 5000;

/**
 * new LiveStream({ onEvent(type, data, id), onStatus(connected: boolean) , token() })
 * start() connects; the stream then keeps itself connected until stop().
 */
export class LiveStream {
    constructor({ onEvent, onStatus, token }) {
        this.onEvent = onEvent;
        this.onStatus = onStatus;
        this.token = token || (() => '');
        this.lastId = '';
        this.connected = null;
        this.es = null;
        this.abort = null;
        this.timer = null;
        this.retryMs = RETRY_MIN_MS;
        this.useFetch = false;
        this.stopped = true;
    }

    /** useFetch: read the stream with fetch() so that a token can be sent. */
    start(useFetch = false) {
        this.useFetch = useFetch;
        this.stopped = false;
        this._connect();
    }

    stop() {
        this.stopped = true;
        this._teardown();
        clearTimeout(this.timer);
    }

    /** Reconnect now (e.g. after signing in when reads need a token). */
    restart(useFetch = this.useFetch) {
        this.stop();
        this.start(useFetch);
    }

    _status(up) {
        if (this.connected === up) return;
        this.connected = up;
        this.onStatus(up);
    }

    _teardown() {
        if (this.es) {
            this.es.close();
            this.es = null;
        }
        if (this.abort) {
            this.abort.abort();
            this.abort = null;
        }
    }

    _url() {
        // A new connection resumes from the last event seen: EventSource sends Last-Event-ID by
        // itself only on its own reconnects, so the query form is used for ours (docs/API.md).
        return '/api/v1/events' + (this.lastId ?
            `?last_event_id=${encodeURIComponent(this.lastId)}` : '');
    }

    _dispatch(type, dataText, id) {
        if (id) this.lastId = id;
        let data;
        try {
            data = JSON.parse(dataText);
        } catch {
            return; // not ours to interpret
        }
        if (type === 'hello') {
            this.retryMs = RETRY_MIN_MS;
            this._status(true);
        }
        this.onEvent(type, data, id);
    }

    _lost() {
        this._teardown();
        this._status(false);
        if (this.stopped) return;
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this._connect(), this.retryMs);
        this.retryMs = Math.min(RETRY_MAX_MS, this.retryMs * 2);
    }

    _connect() {
        if (this.stopped) return;
        this._teardown();
        if (this.useFetch) {
            this._connectFetch();
            return;
        }
        const es = new EventSource(this._url());
        this.es = es;
        for (const t of EVENT_TYPES) {
            es.addEventListener(t, (ev) => {
                if (this.es === es) this._dispatch(t, ev.data, ev.lastEventId);
            });
        }
        es.onerror = () => {
            if (this.es !== es) return;
            // EventSource retries by itself while readyState is CONNECTING, but its delay is
            // the server's and it gives up for good on an HTTP error: we own the retry so the
            // page always recovers, and show the banner at once.
            this._lost();
        };
    }

    async _connectFetch() {
        const ctl = new AbortController();
        this.abort = ctl;
        const headers = { Accept: 'text/event-stream' };
        const tok = this.token();
        if (tok) headers.Authorization = `Bearer ${tok}`;
        if (this.lastId) headers['Last-Event-ID'] = this.lastId;
        try {
            const res = await fetch('/api/v1/events', { headers, signal: ctl.signal,
                cache: 'no-store' });
            if (!res.ok || !res.body) throw new Error(`HTTP ${res.status}`);
            const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
            let buf = '';
            let type = '';
            let data = [];
            let id = '';
            for (;;) {
                const { value, done } = await reader.read();
                if (done) break;
                buf += value;
                let nl;
                while ((nl = buf.search(/\r\n|\r|\n/)) >= 0) {
                    const line = buf.slice(0, nl);
                    buf = buf.slice(nl + (buf.startsWith('\r\n', nl) ? 2 : 1));
                    if (line === '') {
                        if (data.length) this._dispatch(type || 'message', data.join('\n'), id);
                        type = '';
                        data = [];
                        continue;
                    }
                    if (line.startsWith(':')) continue;
                    const c = line.indexOf(':');
                    const field = c < 0 ? line : line.slice(0, c);
                    let val = c < 0 ? '' : line.slice(c + 1);
                    if (val.startsWith(' ')) val = val.slice(1);
                    if (field === 'event') type = val;
                    else if (field === 'data') data.push(val);
                    else if (field === 'id') id = val;
                }
            }
        } catch {
            // fall through: aborted by us, or the connection dropped
        }
        if (this.abort === ctl) this._lost();
    }
}
