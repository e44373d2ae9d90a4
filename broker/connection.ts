/**
 * One client connection: splits the byte stream into frames, handles requests one after another
 * (Produce may overlap with the next request), and writes responses strictly in request order.
 * Bad frames close the connection; nothing a client sends can throw out of here.
 */
import type { Socket } from 'node:net';
import { Reader } from './protocol/codec.js';
import { DecodeError } from './protocol/errors.js';
import { frameResponse, parseRequestHeader, type RequestHeader } from './protocol/header.js';
import { encodeApiVersionsUnsupported } from './protocol/messages/apiVersions.js';
import { ApiKey, isSupported } from './protocol/versions.js';
import { handlers, pipelinedApis } from './handlers/dispatch.js';
import type { BrokerState } from './state.js';
import { brokerCounters } from './metrics.js';

/** Smallest possible request: api key, version, correlation id, client id length. */
export const requestBytesMin = 10;
/** Requests queued or in flight before the connection stops reading. */
export const inflightRequestsMax = 256;

export interface ConnectionOptions {
  requestBytesMax: number;
  onError?: (err: unknown, header: RequestHeader | null) => void;
}

export class Connection {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private readonly frames: Buffer[] = [];
  private pumping = false;
  private inflight = 0;
  private paused = false;
  private writeChain: Promise<void> = Promise.resolve();
  closed = false;

  constructor(private readonly socket: Socket, private readonly state: BrokerState, private readonly opts: ConnectionOptions) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', () => this.close());
    socket.on('close', () => {
      this.closed = true;
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.socket.destroy();
  }

  private fail(): void {
    brokerCounters.connectionsClosedOnError++;
    this.close();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.pending.push(chunk);
    this.pendingBytes += chunk.length;
    while (this.pendingBytes >= 4) {
      const head = this.pending[0]!.length >= 4 ? this.pending[0]! : Buffer.concat(this.pending);
      const size = head.readInt32BE(0);
      if (size < requestBytesMin || size > this.opts.requestBytesMax) return this.fail();
      if (this.pendingBytes < 4 + size) return;
      const all = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending, this.pendingBytes);
      this.frames.push(all.subarray(4, 4 + size));
      const rest = all.subarray(4 + size);
      this.pending = rest.length > 0 ? [rest] : [];
      this.pendingBytes = rest.length;
      this.inflight++;
    }
    if (this.inflight >= inflightRequestsMax && !this.paused) {
      this.paused = true;
      this.socket.pause();
    }
    void this.pump();
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.frames.length > 0 && !this.closed) {
        const frame = this.frames.shift()!;
        const started = this.start(frame);
        if (started === null) return this.fail();
        const { response, pipelined } = started;
        this.writeChain = this.writeChain.then(async () => {
          let chunks: Buffer[] | null;
          try {
            chunks = await response;
          } catch (err) {
            if (!(err instanceof DecodeError)) this.opts.onError?.(err, null);
            return this.fail();
          }
          this.inflight--;
          if (chunks && !this.closed) {
            this.socket.cork();
            for (const c of chunks) this.socket.write(c);
            this.socket.uncork();
          }
          if (this.paused && this.inflight < inflightRequestsMax / 4) {
            this.paused = false;
            this.socket.resume();
          }
        });
        if (!pipelined) await response.catch(() => undefined);
      }
    } catch (err) {
      // Nothing a client sends may take the process down: close this connection only.
      this.opts.onError?.(err, null);
      this.fail();
    } finally {
      this.pumping = false;
    }
  }

  /** Starts handling one frame; null when the frame must close the connection. */
  private start(frame: Buffer): { response: Promise<Buffer[] | null>; pipelined: boolean } | null {
    const r = new Reader(frame);
    let header: RequestHeader;
    try {
      header = parseRequestHeader(r);
    } catch (err) {
      if (err instanceof DecodeError) return null;
      throw err;
    }
    brokerCounters.requests++;
    if (!isSupported(header.apiKey, header.apiVersion)) {
      if (header.apiKey !== ApiKey.ApiVersions) return null;
      return { response: Promise.resolve(frameResponse(header.correlationId, encodeApiVersionsUnsupported().toChunks())), pipelined: false };
    }
    const handler = handlers.get(header.apiKey)!;
    const ctx = { state: this.state, header, clientHost: `/${this.socket.remoteAddress ?? ''}` };
    let response: Promise<Buffer[] | null>;
    try {
      const out = handler(ctx, r);
      response = Promise.resolve(out).then((w) => (w === null ? null : frameResponse(header.correlationId, w.toChunks())));
    } catch (err) {
      if (!(err instanceof DecodeError)) this.opts.onError?.(err, header);
      return null;
    }
    return { response, pipelined: pipelinedApis.has(header.apiKey) };
  }
}
