// SPDX-License-Identifier: MIT
// TcpSerialPort: the slice of the Web Serial `SerialPort` interface that esptool-js's Transport
// (lib/webserial.js) uses, carried over a raw TCP socket to a loopback simulator (espsim --tcp).
// It owns one node `net` socket and the web streams over it. It must not interpret the bytes
// (SLIP and the loader protocol stay esptool-js's job) and it refuses non-loopback hosts.

import net from "node:net";

// What Transport touches (read from esptool-js 0.7.0 lib/webserial.js, not guessed):
//   open({baudRate, dataBits, stopBits, bufferSize, parity, flowControl}), close(),
//   readable (getReader/read/releaseLock/cancel, `.locked`), writable (getWriter/write/close,
//   `.locked`), setSignals({dataTerminalReady, requestToSend, break}), getInfo(), and
//   setBaudRate(baud) when present (changeBaudrate() then skips its close/reopen dance).
// Like Web Serial, `readable`/`writable` are null while closed and are re-created on access
// after a cancel/close, because Transport.readLoop() re-reads `device.readable` in a loop.

const LOOPBACK = /^(127\.\d{1,3}\.\d{1,3}\.\d{1,3}|::1|localhost)$/;
// Upper bound for bytes received while nobody holds a readable stream (Web Serial would leave
// them in the OS buffer); a simulator that floods us is a bug worth failing loudly on.
const MAX_PENDING_BYTES = 16 * 1024 * 1024;
const READ_HIGH_WATER = 64 * 1024;
const CLOSE_TIMEOUT_MS = 2000;

function networkError(message) {
    return new DOMException(message, "NetworkError");
}

export class TcpSerialPort {
    /**
     * @param {{host?: string, port: number, usbVendorId?: number, usbProductId?: number,
     *          connectTimeoutMs?: number}} opts
     * getInfo() reports a CP2102 by default so esptool-js picks its UART reset path, not the
     * USB-Serial/JTAG one (which it selects by VID 0x303a / PID 0x1001).
     */
    constructor(opts) {
        const host = opts.host ?? "127.0.0.1";
        if (!LOOPBACK.test(host)) {
            throw new Error(`TcpSerialPort: refusing non-loopback host ${host}`);
        }
        if (!Number.isInteger(opts.port) || opts.port <= 0 || opts.port > 65535) {
            throw new Error(`TcpSerialPort: bad port ${opts.port}`);
        }
        this.host = host;
        this.port = opts.port;
        this.info = {
            usbVendorId: opts.usbVendorId ?? 0x10c4,
            usbProductId: opts.usbProductId ?? 0xea60,
        };
        this.connectTimeoutMs = opts.connectTimeoutMs ?? 5000;
        this.baudRate = 0;
        // Last modem-line state asked for; raw TCP has no lines, tests may inspect this.
        this.signals = { dataTerminalReady: false, requestToSend: false, break: false };
        this.signalLog = [];
        this._sock = null;
        this._open = false;
        this._eof = false;
        this._fatal = null;
        this._rs = null;
        this._rc = null;
        this._ws = null;
        this._pending = [];
        this._pendingBytes = 0;
        this.bytesIn = 0;
        this.bytesOut = 0;
    }

    getInfo() {
        return { ...this.info };
    }

    /** True between a successful open() and close() (not part of Web Serial). */
    get opened() {
        return this._open;
    }

    async open(options = {}) {
        if (this._open || this._sock) {
            throw new DOMException("The port is already open.", "InvalidStateError");
        }
        if (!options.baudRate || options.baudRate <= 0) {
            throw new TypeError("open(): baudRate is required");
        }
        this.baudRate = options.baudRate;
        this._eof = false;
        this._fatal = null;
        this._pending = [];
        this._pendingBytes = 0;
        const sock = net.createConnection({ host: this.host, port: this.port });
        this._sock = sock;
        await new Promise((resolve, reject) => {
            const timer = setTimeout(() => {
                sock.destroy();
                reject(networkError(`connect to ${this.host}:${this.port} timed out`));
            }, this.connectTimeoutMs);
            sock.once("connect", () => {
                clearTimeout(timer);
                resolve();
            });
            sock.once("error", (err) => {
                clearTimeout(timer);
                reject(networkError(`connect to ${this.host}:${this.port}: ${err.message}`));
            });
        }).catch((err) => {
            this._sock = null;
            throw err;
        });
        // The loader protocol is strictly request/response with small frames: Nagle would add
        // a delayed-ACK round trip to most commands.
        sock.setNoDelay(true);
        sock.on("data", (chunk) => this._onData(chunk));
        sock.on("end", () => this._onEnd());
        sock.on("error", (err) => this._onFatal(networkError(err.message)));
        sock.on("close", () => this._onEnd());
        this._open = true;
    }

    get readable() {
        if (!this._open) {
            return null;
        }
        if (!this._rs) {
            this._rs = this._makeReadable();
        }
        return this._rs;
    }

    get writable() {
        if (!this._open) {
            return null;
        }
        if (!this._ws) {
            this._ws = this._makeWritable();
        }
        return this._ws;
    }

    async setSignals(signals = {}) {
        if (!this._open) {
            throw new DOMException("The port is closed.", "InvalidStateError");
        }
        for (const key of ["dataTerminalReady", "requestToSend", "break"]) {
            if (typeof signals[key] === "boolean") {
                this.signals[key] = signals[key];
            }
        }
        this.signalLog.push({ ...this.signals });
        // Raw TCP carries no modem lines: nothing to send. (RFC 2217 would.)
    }

    async getSignals() {
        return { dataCarrierDetect: false, clearToSend: false, ringIndicator: false,
            dataSetReady: false };
    }

    async setBaudRate(baud) {
        // Bytes over TCP have no bit rate; remember the value so a test can see it was asked.
        this.baudRate = baud;
    }

    async close() {
        if (!this._open) {
            return;
        }
        if ((this._rs && this._rs.locked) || (this._ws && this._ws.locked)) {
            // Web Serial refuses too; Transport.disconnect() waits for the locks first.
            throw new DOMException("Streams are locked.", "InvalidStateError");
        }
        this._open = false;
        if (this._rs) {
            await this._rs.cancel().catch(() => {});
        }
        if (this._ws) {
            await this._ws.abort().catch(() => {});
        }
        this._rs = null;
        this._rc = null;
        this._ws = null;
        const sock = this._sock;
        this._sock = null;
        if (sock && !sock.destroyed) {
            await new Promise((resolve) => {
                const timer = setTimeout(resolve, CLOSE_TIMEOUT_MS);
                sock.once("close", () => {
                    clearTimeout(timer);
                    resolve();
                });
                sock.destroy();
            });
        }
    }

    _makeReadable() {
        return new ReadableStream(
            {
                start: (controller) => {
                    this._rc = controller;
                    for (const chunk of this._pending) {
                        controller.enqueue(chunk);
                    }
                    this._pending = [];
                    this._pendingBytes = 0;
                    if (this._fatal) {
                        controller.error(this._fatal);
                    } else if (this._eof) {
                        controller.close();
                    }
                },
                pull: () => {
                    if (this._sock && this._sock.isPaused()) {
                        this._sock.resume();
                    }
                },
                cancel: () => {
                    // Web Serial: a cancelled readable is dropped; the next access makes a new one.
                    this._rs = null;
                    this._rc = null;
                },
            },
            { highWaterMark: READ_HIGH_WATER, size: (chunk) => chunk.byteLength },
        );
    }

    _makeWritable() {
        return new WritableStream({
            write: (chunk) => {
                const sock = this._sock;
                if (!sock || sock.destroyed || !this._open) {
                    return Promise.reject(networkError("write on a closed port"));
                }
                let bytes;
                if (chunk instanceof ArrayBuffer) {
                    bytes = new Uint8Array(chunk);
                } else if (ArrayBuffer.isView(chunk)) {
                    bytes = new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
                } else {
                    return Promise.reject(new TypeError("write(): expected a BufferSource"));
                }
                // Copy: the caller may reuse its buffer once the promise resolves.
                const buf = Buffer.from(bytes);
                this.bytesOut += buf.length;
                return new Promise((resolve, reject) => {
                    sock.write(buf, (err) => (err ? reject(networkError(err.message)) : resolve()));
                });
            },
            close: () => {
                this._ws = null;
            },
            abort: () => {
                this._ws = null;
            },
        });
    }

    _onData(chunk) {
        this.bytesIn += chunk.length;
        const copy = new Uint8Array(chunk); // detach from node's pooled Buffer memory
        if (this._rc) {
            this._rc.enqueue(copy);
            if (this._rc.desiredSize !== null && this._rc.desiredSize <= 0) {
                this._sock?.pause();
            }
            return;
        }
        this._pending.push(copy);
        this._pendingBytes += copy.length;
        if (this._pendingBytes > MAX_PENDING_BYTES) {
            this._onFatal(networkError("more than 16 MiB received with no reader"));
            this._sock?.destroy();
        }
    }

    _onEnd() {
        if (this._eof) {
            return;
        }
        this._eof = true;
        if (this._rc && !this._fatal) {
            try {
                this._rc.close();
            } catch {
                // already closed or errored
            }
        }
    }

    _onFatal(err) {
        if (this._fatal) {
            return;
        }
        this._fatal = err;
        if (this._rc) {
            try {
                this._rc.error(err);
            } catch {
                // already closed
            }
        }
    }
}
