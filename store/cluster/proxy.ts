/**
 * Proxy: a node that receives a single-record command for a partition it does not master
 * forwards the AS_MSG frame over the fabric to the master and relays the master's response, so
 * a client holding a stale partition map (nodes joined or left since it last tended) gets an
 * ordinary answer, only one hop slower. One hop only: the receiving node runs a proxied command
 * itself or answers UNAVAILABLE, it never forwards again (the client then retries with a fresh
 * map), so two nodes with different tables cannot bounce a command between them.
 *
 * Fabric messages (on the heartbeat connections):
 *   PROXY_REQUEST  u32 id, AS_MSG frame
 *   PROXY_RESPONSE u32 id, response frame
 * A request gets no response if the connection drops; the proxyer then answers TIMEOUT when the
 * command's deadline passes (the master may or may not have applied it, as with any timeout).
 */
import assert from 'node:assert/strict';
import { systemTimers, type TimerHandle, type Timers } from '../runtime/index.js';
import { ResultCode, type ResultCodeId } from '../types.js';
import type { CommandProxy } from '../wire/handler.js';
import type { Cluster } from './cluster.js';
import { FabricKind, frame, type Heartbeat } from './heartbeat.js';

/** Commands this node may have forwarded and not yet had answered. */
export const PROXY_PENDING_MAX = 10_000;

export class ClusterProxy implements CommandProxy {
  readonly #pending = new Map<number, { resolve: (r: Buffer | ResultCodeId) => void; timer: TimerHandle }>();
  #nextId = 1;

  constructor(
    private readonly cluster: Cluster,
    private readonly heartbeat: Heartbeat,
    private readonly timers: Timers = systemTimers,
  ) {
    heartbeat.handle(FabricKind.PROXY_RESPONSE, (payload) => this.#onResponse(payload));
  }

  /** Serves commands other nodes forward to this one. */
  serve(run: (frame: Buffer) => Promise<Buffer>, log: (msg: string, err?: unknown) => void): void {
    this.heartbeat.handle(FabricKind.PROXY_REQUEST, (payload, reply) => {
      if (payload.length < 4) return;
      const id = payload.readUInt32BE(0);
      run(payload.subarray(4)).then(
        (response) => reply(FabricKind.PROXY_RESPONSE, Buffer.concat([payload.subarray(0, 4), response])),
        (err: unknown) => log('proxied command failed', err),
      );
      assert.ok(id > 0);
    });
  }

  forward(pid: number, request: Buffer, timeoutMs: number, namespace?: string): Promise<Buffer | ResultCodeId> {
    const master = this.cluster.masterOf(pid, namespace);
    if (master === this.cluster.nodeId) return Promise.resolve(ResultCode.UNAVAILABLE);
    const conn = this.heartbeat.connectionTo(master);
    if (!conn || this.#pending.size >= PROXY_PENDING_MAX) return Promise.resolve(ResultCode.UNAVAILABLE);
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    return new Promise((resolve) => {
      const timer = this.timers.setTimeout(() => {
        this.#pending.delete(id);
        resolve(ResultCode.TIMEOUT);
      }, timeoutMs);
      this.#pending.set(id, { resolve, timer });
      const head = Buffer.allocUnsafe(4);
      head.writeUInt32BE(id, 0);
      conn.send(frame(FabricKind.PROXY_REQUEST, Buffer.concat([head, request])));
    });
  }

  #onResponse(payload: Buffer): void {
    if (payload.length < 4) return;
    const id = payload.readUInt32BE(0);
    const p = this.#pending.get(id);
    if (!p) return; // timed out already
    this.#pending.delete(id);
    this.timers.clearTimeout(p.timer);
    p.resolve(Buffer.from(payload.subarray(4)));
  }
}
