/**
 * One client socket to a node: sends a request frame and collects its response frames. Requests
 * on a connection are strictly one at a time. Every wait is bounded by a timeout; a timed-out or
 * broken connection is destroyed (the caller's pool drops it).
 */
import net from 'node:net';
import { AerospikeError, WireError } from '../wire/errors.js';
import { FrameParser, ProtoType, decompressBody, type Frame } from '../wire/proto.js';

/** C client codes for client-side failures. */
export const ClientError = {
  CONNECTION: -10,
  TIMEOUT: 9,
  CLIENT: -1,
} as const;

export class Connection {
  private parser = new FrameParser();
  private pending:
    | { onFrame: (f: Frame) => boolean; resolve: () => void; reject: (e: Error) => void; timer: NodeJS.Timeout }
    | undefined;
  private dead: Error | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err) => this.fail(new AerospikeError(ClientError.CONNECTION, `connection error: ${err.message}`)));
    socket.on('close', () => this.fail(new AerospikeError(ClientError.CONNECTION, 'connection closed')));
  }

  static open(host: string, port: number, timeoutMs: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new AerospikeError(ClientError.TIMEOUT, `connect to ${host}:${port} timed out`));
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new Connection(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(new AerospikeError(ClientError.CONNECTION, `connect to ${host}:${port}: ${err.message}`));
      });
    });
  }

  get alive(): boolean {
    return !this.dead;
  }

  /**
   * Sends `request`; calls `onFrame` for each response frame (type 4 already inflated to type 3)
   * until it returns true. Fails when no frame arrives for `timeoutMs` (each frame restarts it).
   */
  exchange(request: Buffer, onFrame: (f: Frame) => boolean, timeoutMs: number): Promise<void> {
    if (this.dead) return Promise.reject(this.dead);
    if (this.pending) return Promise.reject(new AerospikeError(ClientError.CLIENT, 'connection busy'));
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.fail(new AerospikeError(ClientError.TIMEOUT, `no response within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending = { onFrame, resolve, reject, timer };
      this.socket.write(request);
    });
  }

  private restartTimer(): void {
    this.pending?.timer.refresh();
  }

  /** Stops reading (backpressure while a consumer catches up); the server then blocks on us. */
  pauseReading(): void {
    this.socket.pause();
  }

  resumeReading(): void {
    this.restartTimer();
    this.socket.resume();
  }

  close(): void {
    this.fail(new AerospikeError(ClientError.CONNECTION, 'connection closed by client'));
  }

  private onData(chunk: Buffer): void {
    let frames: Frame[];
    try {
      frames = this.parser.push(chunk);
    } catch (err) {
      this.fail(new AerospikeError(ClientError.CLIENT, `bad response: ${(err as Error).message}`));
      return;
    }
    for (let f of frames) {
      const p = this.pending;
      if (!p) {
        this.fail(new AerospikeError(ClientError.CLIENT, 'unsolicited data from server'));
        return;
      }
      this.restartTimer();
      try {
        if (f.type === ProtoType.AS_MSG_COMPRESSED) f = { type: ProtoType.AS_MSG, body: decompressBody(f.body) };
        if (p.onFrame(f)) {
          clearTimeout(p.timer);
          this.pending = undefined;
          p.resolve();
        }
      } catch (err) {
        const e = err instanceof WireError ? new AerospikeError(ClientError.CLIENT, `bad response: ${err.message}`) : (err as Error);
        this.fail(e);
        return;
      }
    }
  }

  private fail(err: Error): void {
    if (!this.dead) this.dead = err;
    const p = this.pending;
    this.pending = undefined;
    if (p) {
      clearTimeout(p.timer);
      p.reject(err);
    }
    this.socket.destroy();
  }
}

/** A bounded pool of connections to one node. */
export class ConnectionPool {
  private idle: Connection[] = [];
  /** Every open connection, idle or in use: close() fails the requests in flight too. */
  private readonly opened = new Set<Connection>();
  private open = 0;
  private waiters: Array<(c: Connection | undefined) => void> = [];
  private closed = false;

  constructor(
    readonly host: string,
    readonly port: number,
    private readonly maxConnections: number,
    private readonly connectTimeoutMs: number,
  ) {}

  async use<T>(fn: (c: Connection) => Promise<T>): Promise<T> {
    const c = await this.acquire();
    try {
      return await fn(c);
    } finally {
      this.release(c);
    }
  }

  private async acquire(): Promise<Connection> {
    if (this.closed) throw new AerospikeError(ClientError.CONNECTION, 'client closed');
    while (this.idle.length > 0) {
      const c = this.idle.pop()!;
      if (c.alive) return c;
      this.open--;
      this.opened.delete(c);
    }
    if (this.open < this.maxConnections) {
      this.open++;
      try {
        const c = await Connection.open(this.host, this.port, this.connectTimeoutMs);
        if (this.closed) {
          c.close();
          throw new AerospikeError(ClientError.CONNECTION, 'client closed');
        }
        this.opened.add(c);
        return c;
      } catch (err) {
        this.open--;
        throw err;
      }
    }
    const c = await new Promise<Connection | undefined>((resolve) => this.waiters.push(resolve));
    if (!c) return this.acquire();
    return c;
  }

  private release(c: Connection): void {
    if (!c.alive || this.closed) {
      this.open--;
      this.opened.delete(c);
      c.close();
      const w = this.waiters.shift();
      if (w) w(undefined);
      return;
    }
    const w = this.waiters.shift();
    if (w) w(c);
    else this.idle.push(c);
  }

  close(): void {
    this.closed = true;
    for (const c of this.opened) c.close();
    this.opened.clear();
    this.idle = [];
    for (const w of this.waiters.splice(0)) w(undefined);
  }
}
