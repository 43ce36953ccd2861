// SPDX-License-Identifier: MIT
// ctest `esptooljs.adapter` (node:test): checks TcpSerialPort's Web-Serial-like behaviour against
// a loopback echo/scripted server, and that esptool-js's Transport frames SLIP through it.
// Needs no simulator; every server listens on 127.0.0.1:0 and every wait is bounded.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { TcpSerialPort } from "./tcp-serial.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const servers = new Set();

after(async () => {
    for (const s of servers) {
        await new Promise((resolve) => s.close(resolve));
    }
});

// A loopback server; `onConn(sock)` decides what it does. Resolves to its port.
async function serve(onConn) {
    const sockets = new Set();
    const server = net.createServer((sock) => {
        sockets.add(sock);
        sock.on("close", () => sockets.delete(sock));
        sock.on("error", () => {});
        onConn(sock);
    });
    const origClose = server.close.bind(server);
    server.close = (cb) => {
        for (const s of sockets) {
            s.destroy();
        }
        return origClose(cb);
    };
    servers.add(server);
    await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
    return server.address().port;
}

function bounded(promise, ms, what) {
    let timer;
    return Promise.race([
        promise,
        new Promise((_, reject) => {
            timer = setTimeout(() => reject(new Error(`${what} timed out`)), ms);
        }),
    ]).finally(() => clearTimeout(timer));
}

async function readAtLeast(reader, n) {
    const parts = [];
    let have = 0;
    while (have < n) {
        const { value, done } = await bounded(reader.read(), 2000, "read");
        if (done) {
            break;
        }
        parts.push(value);
        have += value.length;
    }
    return Buffer.concat(parts);
}

test("refuses non-loopback hosts and bad ports", () => {
    assert.throws(() => new TcpSerialPort({ host: "192.168.1.10", port: 4000 }), /loopback/);
    assert.throws(() => new TcpSerialPort({ host: "example.com", port: 4000 }), /loopback/);
    assert.throws(() => new TcpSerialPort({ port: 0 }), /bad port/);
});

test("getInfo reports a CP2102 and streams are null while closed", () => {
    const p = new TcpSerialPort({ port: 1 });
    assert.deepEqual(p.getInfo(), { usbVendorId: 0x10c4, usbProductId: 0xea60 });
    assert.equal(p.readable, null);
    assert.equal(p.writable, null);
});

test("echo round trip, setSignals, setBaudRate, close", async () => {
    const port = await serve((sock) => sock.pipe(sock));
    const p = new TcpSerialPort({ port });
    await p.open({ baudRate: 115200 });
    await assert.rejects(p.open({ baudRate: 115200 }), /already open/);
    await p.setSignals({ dataTerminalReady: true, requestToSend: false });
    assert.deepEqual(p.signals, { dataTerminalReady: true, requestToSend: false, break: false });
    await p.setBaudRate(921600);
    assert.equal(p.baudRate, 921600);

    const w = p.writable.getWriter();
    await w.write(new Uint8Array([0xc0, 0x01, 0x02, 0xc0]));
    w.releaseLock();
    const r = p.readable.getReader();
    const got = await readAtLeast(r, 4);
    assert.deepEqual([...got], [0xc0, 0x01, 0x02, 0xc0]);
    r.releaseLock();
    await p.close();
    assert.equal(p.readable, null);
    assert.equal(p.opened, false);
});

test("close refuses while a stream is locked, as Web Serial does", async () => {
    const port = await serve(() => {});
    const p = new TcpSerialPort({ port });
    await p.open({ baudRate: 115200 });
    const r = p.readable.getReader();
    await assert.rejects(p.close(), /locked/);
    const pending = r.read();
    await r.cancel();
    assert.equal((await pending).done, true);
    r.releaseLock();
    await p.close();
});

test("a cancelled readable is replaced and data that arrived meanwhile is kept", async () => {
    let peer;
    let accepted;
    const connected = new Promise((resolve) => {
        accepted = resolve;
    });
    const port = await serve((sock) => {
        peer = sock;
        accepted();
    });
    const p = new TcpSerialPort({ port });
    await p.open({ baudRate: 115200 });
    await bounded(connected, 2000, "accept");
    const first = p.readable;
    const r1 = first.getReader();
    await r1.cancel();
    r1.releaseLock();
    assert.equal(p._rs, null, "cancelled stream dropped");
    peer.write(Buffer.from([1, 2, 3]));
    // Let the bytes arrive while no stream exists.
    await new Promise((resolve) => setTimeout(resolve, 100));
    const second = p.readable;
    assert.notEqual(second, first);
    const r2 = second.getReader();
    assert.deepEqual([...(await readAtLeast(r2, 3))], [1, 2, 3]);
    r2.releaseLock();
    await p.close();
});

test("peer hang-up ends the readable (read() reports done)", async () => {
    const port = await serve((sock) => sock.end(Buffer.from([0x42])));
    const p = new TcpSerialPort({ port });
    await p.open({ baudRate: 115200 });
    const r = p.readable.getReader();
    const a = await bounded(r.read(), 2000, "read data");
    assert.deepEqual([...a.value], [0x42]);
    const b = await bounded(r.read(), 2000, "read eof");
    assert.equal(b.done, true);
    r.releaseLock();
    await p.close();
});

test("connect failure rejects with NetworkError", async () => {
    const port = await serve(() => {});
    const srv = [...servers].at(-1);
    await new Promise((resolve) => srv.close(resolve));
    servers.delete(srv);
    const p = new TcpSerialPort({ port, connectTimeoutMs: 2000 });
    await assert.rejects(p.open({ baudRate: 115200 }), (e) => e.name === "NetworkError");
    assert.equal(p.opened, false);
});

test("esptool-js Transport frames SLIP through the adapter", async (t) => {
    if (!existsSync(path.join(HERE, "node_modules", "esptool-js", "package.json"))) {
        assert.fail("esptool-js is not installed: run deploy/install-deps.sh " +
            "(it runs `npm ci --prefix tests/esptooljs`)");
    }
    const { Transport } = await import("esptool-js");
    const port = await serve((sock) => sock.pipe(sock));
    const p = new TcpSerialPort({ port });
    const tr = new Transport(p, false);
    await tr.connect(115200);
    tr.readLoop();
    // 0xC0 and 0xDB inside the payload must be escaped on the way out and undone on the way in.
    const payload = new Uint8Array([0x01, 0xc0, 0x02, 0xdb, 0x03]);
    await tr.write(payload);
    const back = await bounded(tr.read(2000), 3000, "Transport.read");
    assert.deepEqual([...back], [...payload]);
    assert.ok(p.bytesOut >= payload.length + 4, "escapes and END bytes were sent");
    await bounded(tr.disconnect(), 3000, "Transport.disconnect");
    assert.equal(p.opened, false);
    t.diagnostic(`bytes out ${p.bytesOut}, in ${p.bytesIn}`);
});
