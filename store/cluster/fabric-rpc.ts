/**
 * Request/response over the fabric (the heartbeat connections) for the rebalance messages:
 * exchange, version announcements, migration start, metadata and done. A request that gets no
 * response within its timeout (peer gone, connection dropped) resolves undefined; callers retry
 * or give up when the cluster key changes.
 *
 * Fabric messages:
 *   MIGRATE_REQUEST  u32 id, u8 op, body
 *   MIGRATE_RESPONSE u32 id, body
 */
import { systemTimers, type TimerHandle, type Timers } from '../runtime/index.js';
import { frame, type Heartbeat } from './heartbeat.js';

/** Fabric kinds of the rebalance messages (heartbeat.ts owns 1..6; these stay clear of them). */
export const RebalanceFabricKind = { MIGRATE_REQUEST: 16, MIGRATE_RESPONSE: 17 } as const;

export const RebalanceOp = { EXCHANGE: 1, VERSIONS: 2, START: 3, META: 4, DONE: 5, PULL: 6, DUP: 7 } as const;
export type RebalanceOpId = (typeof RebalanceOp)[keyof typeof RebalanceOp];

/** Requests this node may have outstanding before new ones fail at once. */
export const RPC_PENDING_MAX = 10_000;

export class FabricRpc {
  readonly #pending = new Map<number, { resolve: (b: Buffer | undefined) => void; timer: TimerHandle }>();
  readonly #handlers = new Map<number, (from: Buffer) => Promise<Buffer> | Buffer>();
  #nextId = 1;

  constructor(
    private readonly heartbeat: Heartbeat,
    private readonly timers: Timers = systemTimers,
    private readonly log: (msg: string, err?: unknown) => void = () => {},
  ) {
    heartbeat.handle(RebalanceFabricKind.MIGRATE_RESPONSE, (payload) => this.#onResponse(payload));
    heartbeat.handle(RebalanceFabricKind.MIGRATE_REQUEST, (payload, reply) => {
      if (payload.length < 5) return;
      const h = this.#handlers.get(payload[4]!);
      if (!h) return;
      const head = Buffer.from(payload.subarray(0, 4));
      Promise.resolve()
        .then(() => h(payload.subarray(5)))
        .then(
          (body) => reply(RebalanceFabricKind.MIGRATE_RESPONSE, Buffer.concat([head, body])),
          (err: unknown) => this.log('rebalance request failed', err),
        );
    });
  }

  serve(op: RebalanceOpId, h: (body: Buffer) => Promise<Buffer> | Buffer): void {
    this.#handlers.set(op, h);
  }

  request(nodeId: string, op: RebalanceOpId, body: Buffer, timeoutMs: number): Promise<Buffer | undefined> {
    const conn = this.heartbeat.connectionTo(nodeId);
    if (!conn || this.#pending.size >= RPC_PENDING_MAX) return Promise.resolve(undefined);
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    return new Promise((resolve) => {
      const timer = this.timers.setTimeout(() => {
        this.#pending.delete(id);
        resolve(undefined);
      }, timeoutMs);
      this.#pending.set(id, { resolve, timer });
      const head = Buffer.allocUnsafe(5);
      head.writeUInt32BE(id, 0);
      head[4] = op;
      conn.send(frame(RebalanceFabricKind.MIGRATE_REQUEST, Buffer.concat([head, body])));
    });
  }

  /** JSON request and response; undefined on timeout or an undecodable answer. */
  async requestJson<T>(nodeId: string, op: RebalanceOpId, body: unknown, timeoutMs: number): Promise<T | undefined> {
    const r = await this.request(nodeId, op, Buffer.from(JSON.stringify(body)), timeoutMs);
    if (!r) return undefined;
    try {
      return JSON.parse(r.toString()) as T;
    } catch {
      return undefined;
    }
  }

  serveJson(op: RebalanceOpId, h: (body: unknown) => unknown): void {
    this.serve(op, async (b) => {
      let m: unknown;
      try {
        m = JSON.parse(b.toString());
      } catch {
        return Buffer.from('{"status":"bad"}');
      }
      return Buffer.from(JSON.stringify(await h(m)));
    });
  }

  #onResponse(payload: Buffer): void {
    if (payload.length < 4) return;
    const id = payload.readUInt32BE(0);
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    this.timers.clearTimeout(p.timer);
    p.resolve(Buffer.from(payload.subarray(4)));
  }
}
