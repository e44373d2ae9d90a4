/**
 * The real Transport: TCP, each frame a u32 BE body length then the body. A frame larger than
 * FABRIC_FRAME_BYTES_MAX closes the connection (a peer that sends one is broken or hostile).
 * Kept thin on purpose: the simulator (sim/network.ts) replaces it whole, so real socket
 * timeouts live here and nowhere else.
 */
import net from 'node:net';
import { FABRIC_FRAME_BYTES_MAX, type FabricConnection, type Transport } from './transport.js';

/** Bytes queued on a connection that is still connecting before sends are dropped. */
const PENDING_BYTES_MAX = 16 * 1024 * 1024;
/** Frames of one turn up to this many bytes in all are copied into one buffer before the write. */
const COALESCE_BYTES_MAX = 256 * 1024;
/** Connect attempts give up after this long (heartbeats retry on the next pulse). */
export const CONNECT_TIMEOUT_MS = 500;
/** Length prefix of every frame. */
const FRAME_HEAD_BYTES = 4;
const EMPTY = Buffer.alloc(0);

class TcpConnection implements FabricConnection {
  #frameCbs: Array<(f: Buffer) => void> = [];
  #closeCbs: Array<() => void> = [];
  #buf: Buffer = EMPTY;
  #closed = false;
  /**
   * Frames sent during one turn of the event loop leave in one write of one buffer: they are
   * gathered in `#out` and written by setImmediate, after the loop's I/O callbacks ran, length
   * prefixes and bodies copied into one buffer. Replica writes of commands that arrived together, and their
   * acknowledgements, then cost one syscall and one stream write, not two per frame (the stream
   * layer's per-chunk work and the syscall are the largest costs of a small frame).
   */
  #out: Buffer[] = [];
  #outBytes = 0;
  #flushScheduled = false;
  #refused = false;
  constructor(
    private readonly socket: net.Socket,
    readonly remote: string,
  ) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.#onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') this.#refused = true;
    });
    socket.on('close', () => this.#end());
  }

  get closed(): boolean {
    return this.#closed;
  }

  get refused(): boolean {
    return this.#refused;
  }

  send(frame: Buffer): void {
    if (this.#closed) return;
    if (this.socket.connecting && this.socket.writableLength + this.#outBytes > PENDING_BYTES_MAX) return;
    this.#out.push(frame);
    this.#outBytes += FRAME_HEAD_BYTES + frame.length;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(() => this.#flush());
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    const parts = this.#out;
    const bytes = this.#outBytes;
    this.#out = [];
    this.#outBytes = 0;
    if (this.#closed || parts.length === 0) return;
    if (bytes <= COALESCE_BYTES_MAX) {
      const out = Buffer.allocUnsafe(bytes);
      let at = 0;
      for (const f of parts) {
        out.writeUInt32BE(f.length, at);
        f.copy(out, at + FRAME_HEAD_BYTES);
        at += FRAME_HEAD_BYTES + f.length;
      }
      this.socket.write(out);
      return;
    }
    // Large frames (migrations, proxied batches) are not copied: one corked writev.
    this.socket.cork();
    for (const f of parts) {
      const head = Buffer.allocUnsafe(FRAME_HEAD_BYTES);
      head.writeUInt32BE(f.length, 0);
      this.socket.write(head);
      this.socket.write(f);
    }
    this.socket.uncork();
  }

  onFrame(cb: (f: Buffer) => void): void {
    this.#frameCbs.push(cb);
  }

  onClose(cb: () => void): void {
    if (this.#closed) cb();
    else this.#closeCbs.push(cb);
  }

  close(): void {
    this.socket.destroy();
    this.#end();
  }

  #onData(chunk: Buffer): void {
    const buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
    // Frames are views of `buf`, walked by offset (no view of the rest per frame).
    let at = 0;
    while (buf.length - at >= FRAME_HEAD_BYTES) {
      const len = buf.readUInt32BE(at);
      if (len > FABRIC_FRAME_BYTES_MAX) {
        this.close();
        return;
      }
      if (buf.length - at < FRAME_HEAD_BYTES + len) break;
      const frame = buf.subarray(at + FRAME_HEAD_BYTES, at + FRAME_HEAD_BYTES + len);
      at += FRAME_HEAD_BYTES + len;
      for (const cb of this.#frameCbs) cb(frame);
      if (this.#closed) return;
    }
    this.#buf = at === buf.length ? EMPTY : buf.subarray(at);
  }

  #end(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const cb of this.#closeCbs.splice(0)) cb();
  }
}

/** The real transport: TCP on the given host and port. */
export const tcpTransport: Transport = {
  listen(endpoint, onConnection) {
    const sockets = new Set<net.Socket>();
    const server = net.createServer((socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
      onConnection(new TcpConnection(socket, `${socket.remoteAddress}:${socket.remotePort}`));
    });
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(endpoint.port, endpoint.host, () => {
        server.off('error', reject);
        const addr = server.address() as net.AddressInfo;
        resolve({
          port: addr.port,
          close: () =>
            new Promise<void>((r) => {
              server.close(() => r());
              for (const s of sockets) s.destroy();
            }),
        });
      });
    });
  },
  connect(endpoint) {
    const socket = net.connect({ host: endpoint.host, port: endpoint.port });
    const timer = setTimeout(() => socket.destroy(), CONNECT_TIMEOUT_MS);
    socket.once('connect', () => clearTimeout(timer));
    socket.once('close', () => clearTimeout(timer));
    return new TcpConnection(socket, `${endpoint.host}:${endpoint.port}`);
  },
};
