/**
 * Proxy: a node that receives a single-record command for a partition it does not master
 * forwards the AS_MSG frame over the fabric to the master and relays the master's response, so
 * a client holding a stale partition map (nodes joined or left since it last tended) gets an
 * ordinary answer, only one hop slower. One hop only: the receiving node runs a proxied command
 * itself or answers UNAVAILABLE, it never forwards again (the client then retries with a fresh
 * map), so two nodes with different tables cannot bounce a command between them.
 *
 * Retransmission and repeats: a forwarded command not answered is sent again, to the same node
 * and with the same id, when the connection it went out on closed or was replaced (checked after
 * PROXY_RETRANSMIT_MS_MIN, then at doubling intervals), or on the same open connection once
 * PROXY_RESEND_SAME_CONNECTION_MS passed without an answer, until the command's deadline; then
 * the proxyer answers TIMEOUT (the master may or may not have applied it, as with any timeout).
 * Never to another node, nor to the same node once it restarted (a new incarnation): only the
 * process that got the first copy can recognise a repeat; the proxyer answers TIMEOUT at once. The
 * master runs each proxied write once per (origin, id): the origin is the proxyer's node id and
 * process incarnation (ids restart with the process), a repeat of a write still running waits
 * for its answer and a repeat of a finished one gets the kept answer (a bounded LRU, by count and
 * bytes), so a retransmitted increment is never applied twice. Reads are idempotent: a repeat
 * is simply served again.
 *
 * Fabric messages (on the heartbeat connections):
 *   PROXY_REQUEST  u32 id, u8 flags (1: a resend), u8 origin length, origin, u8 length,
 *                  incarnation of the master it is meant for, AS_MSG frame (a resent write
 *                  reaching a later process of that master is dropped; a first copy always runs:
 *                  no earlier process can have seen it)
 *   PROXY_RESPONSE u32 id, response frame
 */
import { LRUCache } from 'lru-cache';
import { systemClock, systemTimers, type Clock, type TimerHandle, type Timers } from '../runtime/index.js';
import { ResultCode, type ResultCodeId } from '../types.js';
import type { CommandProxy } from '../wire/handler.js';
import { Info2 } from '../wire/message.js';
import { PROTO_HEADER_BYTES } from '../wire/proto.js';
import type { Cluster } from './cluster.js';
import { FabricKind, frame, type Heartbeat } from './heartbeat.js';
import type { FabricConnection } from './transport.js';

/** Commands this node may have forwarded and not yet had answered. */
export const PROXY_PENDING_MAX = 10_000;
/** First resend of an unanswered forwarded command (a healthy answer takes a few ms). */
export const PROXY_RETRANSMIT_MS_MIN = 250;
/** A forwarded command is sent again on the same open connection only this long after the last send. */
export const PROXY_RESEND_SAME_CONNECTION_MS = 1000;
/** Resend checks double their interval up to this. */
export const PROXY_RETRANSMIT_MS_MAX = 2000;
/**
 * Answers of proxied writes kept for repeats: a repeat comes within a command's deadline (a few
 * seconds), while at most PROXY_PENDING_MAX commands per proxyer are in flight.
 */
export const PROXY_ANSWERS_MAX = 4 * PROXY_PENDING_MAX;
/** The kept answers' bytes at most (a write's answer is usually a header; operate may return bins). */
export const PROXY_ANSWERS_BYTES_MAX = 32 * 1024 * 1024;
/** PROXY_REQUEST flags: the request is a resend (a retransmission). */
const REQUEST_FLAG_RESEND = 0x01;
/** Longest origin (node id / incarnation) a request may carry. */
const ORIGIN_BYTES_MAX = 255;

interface Forwarded {
  resolve: (r: Buffer | ResultCodeId) => void;
  timer: TimerHandle;
  retransmit: TimerHandle | undefined;
  retransmitMs: number;
  node: string;
  /** The connection it was last sent on, and when. */
  conn: FabricConnection;
  sentAtMs: number;
  /** The node's incarnation when the command was first sent. */
  incarnation: string | undefined;
  frame: Buffer;
}

export class ClusterProxy implements CommandProxy {
  readonly #pending = new Map<number, Forwarded>();
  #nextId = 1;
  readonly #origin: Buffer;
  /** Proxied writes running here, by origin#id: a repeat waits for the same answer. */
  readonly #running = new Map<string, Promise<Buffer>>();
  /** Answers of proxied writes that ran here, by origin#id. */
  readonly #answers = new LRUCache<string, Buffer>({ max: PROXY_ANSWERS_MAX, maxSize: PROXY_ANSWERS_BYTES_MAX, sizeCalculation: (b) => Math.max(1, b.length) });
  readonly counters = { proxy_retransmits: 0, proxy_repeats: 0 };

  constructor(
    private readonly cluster: Cluster,
    private readonly heartbeat: Heartbeat,
    private readonly timers: Timers = systemTimers,
    private readonly clock: Clock = systemClock,
  ) {
    heartbeat.handle(FabricKind.PROXY_RESPONSE, (payload) => this.#onResponse(payload));
    this.#origin = Buffer.from(`${cluster.nodeId}/${heartbeat.incarnation}`);
    if (this.#origin.length > ORIGIN_BYTES_MAX) throw new RangeError(`node id ${cluster.nodeId} is too long for the proxy origin (at most ${ORIGIN_BYTES_MAX - 17} bytes)`);
  }

  /** Serves commands other nodes forward to this one. */
  serve(run: (frame: Buffer) => Promise<Buffer>, log: (msg: string, err?: unknown) => void): void {
    this.heartbeat.handle(FabricKind.PROXY_REQUEST, (payload, reply) => {
      const req = parseRequest(payload);
      // A copy meant for an earlier process of this node (sent before it restarted) is not run:
      // that process may have run it already.
      if (!req || (req.resend && req.to !== this.heartbeat.incarnation && isWrite(req.command))) return;
      const answer = (response: Buffer): void => reply(FabricKind.PROXY_RESPONSE, Buffer.concat([payload.subarray(0, 4), response]));
      const failed = (err: unknown): void => log('proxied command failed', err);
      if (!isWrite(req.command)) return void run(req.command).then(answer, failed);
      const key = `${req.origin}#${req.id}`;
      const kept = this.#answers.get(key);
      if (kept) {
        this.counters.proxy_repeats++;
        return answer(kept);
      }
      const running = this.#running.get(key);
      if (running) {
        this.counters.proxy_repeats++;
        return void running.then(answer, () => undefined);
      }
      const p = run(Buffer.from(req.command)).finally(() => this.#running.delete(key));
      this.#running.set(key, p);
      p.then((response) => {
        this.#answers.set(key, response);
        answer(response);
      }, failed);
    });
  }

  forward(pid: number, request: Buffer, timeoutMs: number, namespace?: string): Promise<Buffer | ResultCodeId> {
    const master = this.cluster.masterOf(pid, namespace);
    if (master === this.cluster.nodeId) return Promise.resolve(ResultCode.UNAVAILABLE);
    const conn = this.heartbeat.connectionTo(master);
    if (!conn || this.#pending.size >= PROXY_PENDING_MAX) return Promise.resolve(ResultCode.UNAVAILABLE);
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    const head = Buffer.allocUnsafe(6);
    head.writeUInt32BE(id, 0);
    head[4] = 0;
    head[5] = this.#origin.length;
    const incarnation = this.heartbeat.incarnationOf(master);
    const to = Buffer.from(incarnation ?? '');
    const f = frame(FabricKind.PROXY_REQUEST, Buffer.concat([head, this.#origin, Buffer.of(to.length), to, request]));
    const resend = Buffer.from(f);
    // The frame's first byte is the kind; the flags follow the u32 id.
    resend[1 + 4] = REQUEST_FLAG_RESEND;
    return new Promise((resolve) => {
      const timer = this.timers.setTimeout(() => {
        const p = this.#pending.get(id);
        this.#pending.delete(id);
        this.timers.clearTimeout(p?.retransmit);
        resolve(ResultCode.TIMEOUT);
      }, timeoutMs);
      const p: Forwarded = { resolve, timer, retransmit: undefined, retransmitMs: PROXY_RETRANSMIT_MS_MIN, node: master, conn, sentAtMs: this.clock.nowMs(), incarnation, frame: resend };
      this.#pending.set(id, p);
      conn.send(f);
      this.#scheduleRetransmit(id, p);
    });
  }

  #scheduleRetransmit(id: number, p: Forwarded): void {
    p.retransmit = this.timers.setTimeout(() => {
      p.retransmit = undefined;
      if (this.#pending.get(id) !== p) return;
      // The same process only: another one would run the command a second time.
      if (this.heartbeat.incarnationOf(p.node) !== p.incarnation) return this.#giveUp(id, p);
      const conn = this.heartbeat.connectionTo(p.node);
      const now = this.clock.nowMs();
      // On the same open connection the master is most likely just slow: resent only after a while.
      const sameLive = conn === p.conn && !conn.closed;
      if (conn && (!sameLive || now - p.sentAtMs >= PROXY_RESEND_SAME_CONNECTION_MS)) {
        conn.send(p.frame);
        p.conn = conn;
        p.sentAtMs = now;
        this.counters.proxy_retransmits++;
      }
      p.retransmitMs = Math.min(p.retransmitMs * 2, PROXY_RETRANSMIT_MS_MAX);
      this.#scheduleRetransmit(id, p);
    }, p.retransmitMs);
    p.retransmit.unref();
  }

  /** In doubt (the first process may have run it): TIMEOUT, as at the deadline. */
  #giveUp(id: number, p: Forwarded): void {
    this.#pending.delete(id);
    this.timers.clearTimeout(p.timer);
    p.resolve(ResultCode.TIMEOUT);
  }

  #onResponse(payload: Buffer): void {
    if (payload.length < 4) return;
    const id = payload.readUInt32BE(0);
    const p = this.#pending.get(id);
    if (!p) return; // timed out already, or a repeat's answer
    this.#pending.delete(id);
    this.timers.clearTimeout(p.timer);
    this.timers.clearTimeout(p.retransmit);
    p.resolve(Buffer.from(payload.subarray(4)));
  }
}

function parseRequest(payload: Buffer): { id: number; resend: boolean; origin: string; to: string; command: Buffer } | undefined {
  if (payload.length < 7) return undefined;
  const originEnd = 6 + payload[5]!;
  if (payload.length < originEnd + 1) return undefined;
  const toEnd = originEnd + 1 + payload[originEnd]!;
  if (payload.length < toEnd + PROTO_HEADER_BYTES) return undefined;
  return {
    id: payload.readUInt32BE(0),
    resend: (payload[4]! & REQUEST_FLAG_RESEND) !== 0,
    origin: payload.subarray(6, originEnd).toString(),
    to: payload.subarray(originEnd + 1, toEnd).toString(),
    command: payload.subarray(toEnd),
  };
}

/** The AS_MSG's info2 carries WRITE for every command that changes the record (deletes, touches, operate with writes). */
function isWrite(command: Buffer): boolean {
  const info2 = command[PROTO_HEADER_BYTES + 2];
  return info2 !== undefined && (info2 & Info2.WRITE) !== 0;
}
