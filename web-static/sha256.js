// SPDX-License-Identifier: MIT
// sha256.js — SHA-256 of a File/Blob as lower-case hex (FIPS 180-4), for checking images against
// a recipe before uploading them. Uses WebCrypto when the page is a secure context (localhost,
// HTTPS); a station reached over plain HTTP on the LAN has no crypto.subtle, hence the fallback.
// Must not: read more than one chunk of a file into memory at a time in the fallback.

const K = new Uint32Array([
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

export class Sha256 {
    constructor() {
        this.h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f,
            0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
        this.w = new Uint32Array(64);
        this.buf = new Uint8Array(64);
        this.fill = 0;
        this.len = 0; // bytes so far (< 2^53)
    }

    block(b, off) {
        const w = this.w;
        for (let i = 0; i < 16; i++) {
            const j = off + 4 * i;
            w[i] = (b[j] << 24) | (b[j + 1] << 16) | (b[j + 2] << 8) | b[j + 3];
        }
        for (let i = 16; i < 64; i++) {
            const a = w[i - 15];
            const c = w[i - 2];
            const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
            const s1 = ((c >>> 17) | (c << 15)) ^ ((c >>> 19) | (c << 13)) ^ (c >>> 10);
            w[i] = (w[i - 16] + s0 + w[i - 7] + s1) | 0;
        }
        const h = this.h;
        let a = h[0]; let bb = h[1]; let c = h[2]; let d = h[3];
        let e = h[4]; let f = h[5]; let g = h[6]; let hh = h[7];
        for (let i = 0; i < 64; i++) {
            const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
            const ch = (e & f) ^ (~e & g);
            const t1 = (hh + S1 + ch + K[i] + w[i]) | 0;
            const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^
                ((a >>> 22) | (a << 10));
            const maj = (a & bb) ^ (a & c) ^ (bb & c);
            const t2 = (S0 + maj) | 0;
            hh = g; g = f; f = e; e = (d + t1) | 0;
            d = c; c = bb; bb = a; a = (t1 + t2) | 0;
        }
        h[0] += a; h[1] += bb; h[2] += c; h[3] += d;
        h[4] += e; h[5] += f; h[6] += g; h[7] += hh;
    }

    update(data) {
        let i = 0;
        this.len += data.length;
        if (this.fill) {
            while (this.fill < 64 && i < data.length) this.buf[this.fill++] = data[i++];
            if (this.fill < 64) return this;
            this.block(this.buf, 0);
            this.fill = 0;
        }
        for (; i + 64 <= data.length; i += 64) this.block(data, i);
        while (i < data.length) this.buf[this.fill++] = data[i++];
        return this;
    }

    hex() {
        const bits = this.len * 8;
        const pad = new Uint8Array(((this.fill < 56 ? 56 : 120) - this.fill) + 8);
        pad[0] = 0x80;
        const n = pad.length;
        const hi = Math.floor(bits / 0x100000000);
        const lo = bits >>> 0;
        pad[n - 8] = hi >>> 24; pad[n - 7] = hi >>> 16; pad[n - 6] = hi >>> 8; pad[n - 5] = hi;
        pad[n - 4] = lo >>> 24; pad[n - 3] = lo >>> 16; pad[n - 2] = lo >>> 8; pad[n - 1] = lo;
        const len = this.len;
        this.update(pad);
        this.len = len;
        return Array.from(this.h, (x) => x.toString(16).padStart(8, '0')).join('');
    }
}

const CHUNK = 4 * 1024 * 1024;

/** Lower-case hex SHA-256 of a Blob (or File). */
export async function sha256Blob(blob) {
    const subtle = globalThis.crypto && globalThis.crypto.subtle;
    if (subtle && globalThis.isSecureContext !== false) {
        const d = await subtle.digest('SHA-256', await blob.arrayBuffer());
        return Array.from(new Uint8Array(d), (x) => x.toString(16).padStart(2, '0')).join('');
    }
    const s = new Sha256();
    for (let off = 0; off < blob.size; off += CHUNK) {
        s.update(new Uint8Array(await blob.slice(off, off + CHUNK).arrayBuffer()));
    }
    return s.hex();
}
