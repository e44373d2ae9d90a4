/**
 * Replica writes. On the master, step 4 of every transaction that stored a version (the
 * namespace's Replicator) sends that version to each replica of its partition over the fabric
 * and resolves once every replica acknowledged it, the record lock still held, so the client's
 * answer means every copy has it (durably, with commit-to-device: a replica acknowledges after
 * its own commit step). On a replica, the version is applied in version order (generation, then
 * LUT): a late or duplicated message never regresses a record, so resending one is harmless.
 *
 * Retransmission: for a replica write not acknowledged by every replica, every
 * REPLICA_RETRANSMIT_MS_MIN at first, then at doubling intervals up to REPLICA_RETRANSMIT_MS_MAX,
 * the replicas still missing are sent it again, with the same id and version, on their current
 * connection: at once if the one it went out on closed or was replaced (the frame may be lost),
 * else only REPLICA_RESEND_SAME_CONNECTION_MS after the last send (a live TCP connection loses
 * nothing: the replica is slow, and a flood of repeats would slow it more). A replica that answers a retriable refusal
 * (KEY_BUSY, DEVICE_OVERLOAD, SERVER_ERROR) is retried the same way; only a refusal no retry can
 * change (PARAMETER, NAMESPACE_NOT_FOUND: a configuration mismatch) gives up on that replica.
 *
 * A replica that has not acknowledged within REPLICA_WRITE_TIMEOUT_MS fails the client's write
 * with TIMEOUT (the master already applied it: in doubt, as with any timeout) and releases the
 * record lock, but the write is not forgotten: it stays pending, "behind", and is retransmitted
 * until every replica acknowledged it or left the table (a table change stops waiting for a node
 * that is no longer a replica of that partition: migrations refill whoever replaces it). So once
 * the network heals, no replica stays behind its master, with no membership change needed. A
 * later write of the same record supersedes a behind one (its version wins on the replica anyway),
 * so behind writes are at most one per record; all pending writes together are bounded by
 * REPLICA_WRITES_PENDING_MAX (beyond it new writes are refused with DEVICE_OVERLOAD).
 *
 * Fabric messages (on the heartbeat connections):
 *   REPLICA_WRITE u32 id, u8 write kind, u8 namespace length, namespace, u8 sender length,
 *                 sender node id, record (device format, CRC)
 *   REPLICA_ACK   u8 sender length, sender node id, then (u32 id, u8 result code) for each
 *                 write acknowledged (at least one, at most ACKS_PER_FRAME_MAX)
 * A replica acknowledges on its own connection to the sender when it has one (the frames it
 * sends that node in the same turn, its replica writes among them, then leave in one write and
 * are read in one read there), else on the connection the write came in on. The acknowledgements
 * due on one connection are gathered until the current callback's microtasks run (the replica
 * writes of one fabric read are applied in that one callback) and leave as one REPLICA_ACK.
 * (Fabric protocol version 3; version 2 sent one REPLICA_ACK per write.)
 * The record in a REPLICA_WRITE is checked on arrival (CRC and layout), judged by its header and
 * copied into the replica's write block as it came (resealed there): a replica never decodes a
 * record to store it.
 */
import { partitionOf } from '../digest.js';
import { systemTimers, type TimerHandle, type Timers } from '../runtime/index.js';
import assert from 'node:assert/strict';
import { RECORD_DIGEST_OFFSET, alignUp, checkRecord, encodeRecordInto, encodedLength, readHeader, recordLayoutOk, sealRecord, type StoredRecord } from '../storage/record-format.js';
import { DIGEST_BYTES, ResultCode, type ResultCodeId, type WriteKindId } from '../types.js';
import { ReplicationFailed, type EncodedVersion, type Replicator, type WrittenVersion } from '../transaction/index.js';
import type { ApplyResult } from '../api.js';
import type { Namespace } from '../namespace/namespace.js';
import type { Cluster } from './cluster.js';
import { FabricKind, type Heartbeat } from './heartbeat.js';
import type { FabricConnection } from './transport.js';

/** Longest a master waits for replicas before the client's write fails with TIMEOUT. */
export const REPLICA_WRITE_TIMEOUT_MS = 1000;
/**
 * First retransmission of an unacknowledged replica write: well above a healthy round trip
 * (a few ms) so a loaded replica is not sent everything twice, and well below the client
 * timeout so one lost message still lets the client's write succeed.
 */
export const REPLICA_RETRANSMIT_MS_MIN = 250;
/** A replica write is sent again on the same open connection only this long after the last send. */
export const REPLICA_RESEND_SAME_CONNECTION_MS = 1000;
/** Retransmission checks double their interval up to this (a replica cut off is not flooded). */
export const REPLICA_RETRANSMIT_MS_MAX = 2000;
/** Set in the write-kind byte of a REPLICA_WRITE that a migration sent (counted apart). */
const MIGRATION_FLAG = 0x80;
/** Replica writes in flight (behind ones included) on one master before new ones are refused (DEVICE_OVERLOAD). */
export const REPLICA_WRITES_PENDING_MAX = 20_000;

/** Acknowledgements one REPLICA_ACK carries at most (more due at once go in several frames). */
export const ACKS_PER_FRAME_MAX = 4096;

/** Refusals a retransmission cannot change: the replica is given up (and the client told). */
const PERMANENT_REFUSALS: ReadonlySet<number> = new Set<number>([ResultCode.PARAMETER, ResultCode.NAMESPACE_NOT_FOUND]);

/** A migration push to one node: not retransmitted nor retargeted (the migration retries). */
interface PendingPush {
  migration: true;
  resolve: (ok: boolean) => void;
  timer: TimerHandle;
}

/** A client write's version on its way to the replicas. */
interface PendingWrite {
  migration: false;
  namespace: string;
  pid: number;
  /** namespace + digest, set once the write is behind (a later write of the record then supersedes it). */
  record: string | undefined;
  startedMs: number;
  frame: Buffer;
  waiting: Set<string>;
  /** The client's answer, until it is given (then the write is behind while nodes still wait). */
  answer: { resolve: () => void; reject: (err: Error) => void } | undefined;
  /**
   * One timer per write, for whichever comes first of its next retransmission and (while the
   * client waits) its deadline. Times are ms after the first send, counted in timer delays.
   */
  timer: TimerHandle | undefined;
  /** When the timer last fired (0: not yet). */
  wokeAtMs: number;
  retransmitAtMs: number;
  retransmitMs: number;
  /** Per replica, the connection it was last sent on and when. */
  sent: Map<string, { conn: FabricConnection; atMs: number }>;
}

type Pending = PendingPush | PendingWrite;
type Reply = (kind: number, payload: Buffer) => void;
/** Acknowledgements due on one connection (this node's own to the sender, or the one a write came in on). */
interface AckBatch {
  conn: FabricConnection | undefined;
  reply: Reply;
  /** id, result code pairs. */
  acks: number[];
}

export class ReplicaWrites {
  readonly #pending = new Map<number, Pending>();
  /** record (namespace + digest) -> id of its write behind, if any (at most one per record). */
  readonly #behind = new Map<string, number>();
  /** This node's id as REPLICA_ACK carries it. */
  readonly #nodeIdBytes: Buffer;
  /** Acknowledgements not sent yet, by the connection (or reply) they go on. */
  readonly #acksDue = new Map<FabricConnection | Reply, AckBatch>();
  #acksFlushQueued = false;
  #nextId = 1;
  readonly counters = {
    replica_writes_sent: 0,
    replica_writes_received: 0,
    replica_writes_applied: 0,
    replica_write_timeouts: 0,
    replica_writes_retransmitted: 0,
    replica_writes_superseded: 0,
    replica_writes_refused: 0,
    /** Client writes run after this node stopped being the working master (sent to it and the holders). */
    replica_writes_late: 0,
  };
  /** Before a received record is applied (the partition's version becomes at least SUBSET). */
  beforeApply: ((namespace: string, pid: number) => void) | undefined;
  /** A record a migration sent was applied here. */
  onMigrationRecord: ((namespace: string) => void) | undefined;
  /** Latency of acknowledged replica writes, ms: sum and count (mean) and max since start. */
  readonly latency = { sumMs: 0, count: 0, maxMs: 0 };

  constructor(
    private readonly cluster: Cluster,
    private readonly heartbeat: Heartbeat,
    private readonly namespaces: ReadonlyMap<string, Namespace>,
    private readonly clock: { nowMs(): number },
    private readonly timers: Timers = systemTimers,
    private readonly log: (msg: string, err?: unknown) => void = () => {},
  ) {
    this.#nodeIdBytes = Buffer.from(cluster.nodeId);
    heartbeat.handle(FabricKind.REPLICA_WRITE, (payload, reply) => this.#onWrite(payload, reply));
    heartbeat.handle(FabricKind.REPLICA_ACK, (payload) => this.#onAck(payload));
    cluster.onTableChange(() => this.#retarget());
  }

  /** Installs the Replicator on every namespace. */
  attach(): void {
    for (const [name, ns] of this.namespaces) ns.replicator = this.replicatorFor(name);
  }

  replicatorFor(namespace: string): Replicator {
    return { replicate: (w) => this.#replicate(namespace, w) };
  }

  #takeId(): number {
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    return id;
  }

  #replicate(namespace: string, w: WrittenVersion): Promise<void> {
    const pid = partitionOf(w.record.digest);
    // This node now has a copy of pid (a node that served while cut off has data no one else has).
    this.beforeApply?.(namespace, pid);
    // Replica applies never come here (they replicate nothing). A client write normally runs on
    // the working master; one that waited on its record lock while this node stopped being the
    // working master (a hand-off, a table change) is stored here already, and goes to the working
    // master and every holder like a replica write (version order decides there), so the write
    // acknowledged is never left on this node alone.
    const targets = this.cluster.isWorkingMaster(namespace, pid) ? this.cluster.replicationTargets(namespace, pid) : this.#lateTargets(namespace, pid);
    if (targets.length === 0) return Promise.resolve();
    if (this.#behind.size > 0) this.#supersede(recordKey(namespace, w.record.digest));
    if (this.#pending.size >= REPLICA_WRITES_PENDING_MAX) return Promise.reject(new ReplicationFailed(ResultCode.DEVICE_OVERLOAD, 'too many replica writes in flight'));
    const id = this.#takeId();
    const p: PendingWrite = {
      migration: false,
      namespace,
      pid,
      record: undefined,
      startedMs: this.clock.nowMs(),
      frame: encodeWriteFrame(id, namespace, this.#nodeIdBytes, w),
      waiting: new Set(targets),
      answer: undefined,
      timer: undefined,
      wokeAtMs: 0,
      retransmitAtMs: REPLICA_RETRANSMIT_MS_MIN,
      retransmitMs: REPLICA_RETRANSMIT_MS_MIN,
      sent: new Map(),
    };
    const answered = new Promise<void>((resolve, reject) => {
      p.answer = { resolve, reject };
    });
    this.#pending.set(id, p);
    this.#sendTo(p, targets);
    this.#arm(id, p);
    return answered;
  }

  /** The client has its answer but some replica still misses the version: a later write of the record supersedes it. */
  #nowBehind(id: number, p: PendingWrite): void {
    p.answer = undefined;
    p.record = recordKey(p.namespace, frameDigest(p.frame));
    this.#behind.set(p.record, id);
  }

  /** For a write this node ran after it stopped being pid's working master: that master and every holder but this node. */
  #lateTargets(namespace: string, pid: number): string[] {
    this.counters.replica_writes_late++;
    const out = new Set(this.cluster.replicationTargets(namespace, pid));
    out.add(this.cluster.masterOf(pid, namespace));
    out.delete(this.cluster.nodeId);
    out.delete('');
    return [...out];
  }

  /** A behind write of the record is dropped: the new write carries a version that wins over it. */
  #supersede(record: string): void {
    const id = this.#behind.get(record);
    if (id === undefined) return;
    const old = this.#pending.get(id);
    // Still owed to a client: its record lock is held, so no new write of the record can be here.
    if (!old || old.migration || old.answer) return;
    this.counters.replica_writes_superseded++;
    this.#finish(id, old);
  }

  #sendTo(p: PendingWrite, nodes: Iterable<string>, resend = false): void {
    const now = this.clock.nowMs();
    for (const t of nodes) {
      const conn = this.heartbeat.connectionTo(t);
      if (!conn) continue; // gone: a table change releases it, or the next retransmission finds it back
      const last = p.sent.get(t);
      // On the connection it went out on, still open, it is most likely just slow (TCP does not
      // lose a frame on a live connection): sent again only after a while, not to pile more on a
      // busy replica.
      if (resend && last && last.conn === conn && !conn.closed && now - last.atMs < REPLICA_RESEND_SAME_CONNECTION_MS) continue;
      conn.send(p.frame);
      p.sent.set(t, { conn, atMs: now });
      this.counters.replica_writes_sent++;
      if (resend) this.counters.replica_writes_retransmitted++;
    }
  }

  #arm(id: number, p: PendingWrite): void {
    const dueMs = p.answer ? Math.min(p.retransmitAtMs, REPLICA_WRITE_TIMEOUT_MS) : p.retransmitAtMs;
    p.timer = this.timers.setTimeout(() => this.#wake(id, p, dueMs), dueMs - p.wokeAtMs);
    // A stopped process is not kept alive by writes behind (a client's write keeps it until its deadline).
    if (!p.answer) p.timer.unref();
  }

  #wake(id: number, p: PendingWrite, atMs: number): void {
    p.timer = undefined;
    p.wokeAtMs = atMs;
    if (this.#pending.get(id) !== p) return;
    if (atMs >= REPLICA_WRITE_TIMEOUT_MS) this.#deadline(id, p);
    if (atMs >= p.retransmitAtMs) {
      if (this.heartbeat.stopped) return this.#finish(id, p, new ReplicationFailed(ResultCode.TIMEOUT, 'node stopped'));
      this.#sendTo(p, p.waiting, true);
      p.retransmitMs = Math.min(p.retransmitMs * 2, REPLICA_RETRANSMIT_MS_MAX);
      p.retransmitAtMs += p.retransmitMs;
    }
    this.#arm(id, p);
  }

  /** The client is answered TIMEOUT; the write stays pending (behind) and keeps being retransmitted. */
  #deadline(id: number, p: PendingWrite): void {
    const answer = p.answer;
    if (!answer) return;
    this.#nowBehind(id, p);
    this.counters.replica_write_timeouts++;
    answer.reject(new ReplicationFailed(ResultCode.TIMEOUT, `replica(s) ${[...p.waiting].join(',')} did not acknowledge in ${REPLICA_WRITE_TIMEOUT_MS} ms`));
  }

  /**
   * Sends one stored record to one node (a migration); resolves true once it acknowledged,
   * false if it did not answer in time, is not connected, or refused it.
   */
  push(namespace: string, record: StoredRecord, kind: WriteKindId, target: string): Promise<boolean> {
    const conn = this.heartbeat.connectionTo(target);
    if (!conn) return Promise.resolve(false);
    const id = this.#takeId();
    return new Promise<boolean>((resolve) => {
      const timer = this.timers.setTimeout(() => {
        this.#pending.delete(id);
        resolve(false);
      }, REPLICA_WRITE_TIMEOUT_MS);
      this.#pending.set(id, { migration: true, resolve, timer });
      conn.send(encodeWriteFrame(id, namespace, this.#nodeIdBytes, { record, kind }, MIGRATION_FLAG));
    });
  }

  #onAck(payload: Buffer): void {
    const acks = decodeAcks(payload);
    if (!acks) return;
    const from = acks.sender;
    for (let at = acks.at; at < payload.length; at += ACK_ENTRY_BYTES) this.#onAckOf(payload.readUInt32BE(at), payload[at + 4]! as ResultCodeId, from);
  }

  #onAckOf(id: number, code: ResultCodeId, from: string): void {
    const p = this.#pending.get(id);
    if (!p) return;
    if (p.migration) {
      this.#pending.delete(id);
      this.timers.clearTimeout(p.timer);
      p.resolve(code === ResultCode.OK);
      return;
    }
    if (!p.waiting.has(from)) return; // a repeat's answer
    if (code !== ResultCode.OK) return this.#refused(id, p, from, code);
    p.waiting.delete(from);
    if (p.waiting.size === 0) this.#finish(id, p);
  }

  /** A retriable refusal waits for the next retransmission; a permanent one gives that replica up. */
  #refused(id: number, p: PendingWrite, from: string, code: ResultCodeId): void {
    this.counters.replica_writes_refused++;
    if (!PERMANENT_REFUSALS.has(code)) return;
    this.log(`replica ${from} refused a replica write of ${p.namespace} partition ${p.pid} (result ${code}): not retried`);
    p.waiting.delete(from);
    const err = new ReplicationFailed(ResultCode.SERVER_ERROR, `replica ${from} answered ${code}`);
    if (p.waiting.size === 0) return this.#finish(id, p, err);
    const answer = p.answer;
    if (!answer) return;
    this.#nowBehind(id, p);
    answer.reject(err);
  }

  #finish(id: number, p: PendingWrite, err?: Error): void {
    this.#pending.delete(id);
    if (p.record !== undefined && this.#behind.get(p.record) === id) this.#behind.delete(p.record);
    this.timers.clearTimeout(p.timer);
    const answer = p.answer;
    p.answer = undefined;
    if (!answer) return;
    if (err) return answer.reject(err);
    const ms = this.clock.nowMs() - p.startedMs;
    this.latency.sumMs += ms;
    this.latency.count++;
    if (ms > this.latency.maxMs) this.latency.maxMs = ms;
    answer.resolve();
  }

  /** After a table change: stop waiting for nodes that are no longer replicas of the partition. */
  #retarget(): void {
    for (const [id, p] of this.#pending) {
      if (p.migration) continue;
      const now = new Set(this.cluster.replicationTargets(p.namespace, p.pid));
      for (const n of p.waiting) if (!now.has(n)) p.waiting.delete(n);
      if (p.waiting.size === 0) this.#finish(id, p);
    }
  }

  #onWrite(payload: Buffer, reply: Reply): void {
    this.counters.replica_writes_received++;
    const m = decodeWrite(payload);
    if (!m) return this.#ack(reply, '', payload.length >= 4 ? payload.readUInt32BE(0) : 0, ResultCode.PARAMETER);
    const ns = this.namespaces.get(m.namespace);
    if (!ns) return this.#ack(reply, m.sender, m.id, ResultCode.NAMESPACE_NOT_FOUND);
    try {
      this.beforeApply?.(m.namespace, partitionOf(m.version.digest));
    } catch (err) {
      this.log('cannot record the partition version before a replica write', err);
      return this.#ack(reply, m.sender, m.id, ResultCode.SERVER_ERROR);
    }
    let r: ApplyResult | Promise<ApplyResult>;
    try {
      r = ns.applyReplica(m.version, m.kind);
    } catch (err) {
      return this.#applyFailed(reply, m.sender, m.id, err);
    }
    if (!(r instanceof Promise)) return this.#applied(reply, m, r);
    r.then(
      (done) => this.#applied(reply, m, done),
      (err: unknown) => this.#applyFailed(reply, m.sender, m.id, err),
    );
  }

  #applied(reply: Reply, m: { sender: string; id: number; namespace: string; migration: boolean }, r: ApplyResult): void {
    if (m.migration) this.onMigrationRecord?.(m.namespace);
    if (r.applied) this.counters.replica_writes_applied++;
    this.#ack(reply, m.sender, m.id, r.resultCode);
  }

  #applyFailed(reply: Reply, sender: string, id: number, err: unknown): void {
    this.log('replica write failed', err);
    this.#ack(reply, sender, id, ResultCode.SERVER_ERROR);
  }

  /**
   * Acknowledges on this node's own connection to `sender` if it has one, else with `reply`:
   * queued, and sent with the others due on that connection once the current callback's
   * microtasks run.
   */
  #ack(reply: Reply, sender: string, id: number, code: number): void {
    const conn = sender === '' ? undefined : this.heartbeat.connectionTo(sender);
    const to = conn ?? reply;
    let b = this.#acksDue.get(to);
    if (!b) {
      b = { conn, reply, acks: [] };
      this.#acksDue.set(to, b);
    }
    b.acks.push(id, code);
    if (b.acks.length >= 2 * ACKS_PER_FRAME_MAX) this.#sendAcks(b);
    if (!this.#acksFlushQueued) {
      this.#acksFlushQueued = true;
      queueMicrotask(() => this.#flushAcks());
    }
  }

  #flushAcks(): void {
    this.#acksFlushQueued = false;
    for (const b of this.#acksDue.values()) if (b.acks.length > 0) this.#sendAcks(b);
    this.#acksDue.clear();
  }

  #sendAcks(b: AckBatch): void {
    const f = encodeAcks(this.#nodeIdBytes, b.acks);
    b.acks = [];
    if (b.conn) b.conn.send(f);
    else b.reply(FabricKind.REPLICA_ACK, f.subarray(1));
  }

  /** Client writes already answered whose version some replica has not acknowledged yet. */
  behind(): number {
    let n = 0;
    for (const p of this.#pending.values()) if (!p.migration && !p.answer) n++;
    return n;
  }

  stats(): Record<string, number> {
    return {
      ...this.counters,
      replica_write_latency_mean_ms: this.latency.count > 0 ? Math.round((this.latency.sumMs / this.latency.count) * 100) / 100 : 0,
      replica_write_latency_max_ms: this.latency.maxMs,
      replica_writes_pending: this.#pending.size,
      replica_writes_behind: this.behind(),
    };
  }
}

function recordKey(namespace: string, digest: Buffer): string {
  return `${namespace}/${digest.toString('hex')}`;
}

/** REPLICA_WRITE payload bytes before the namespace: u32 id, u8 write kind, u8 namespace length. */
const WRITE_HEAD_BYTES = 6;
/** Longest namespace name and sender node id a REPLICA_WRITE carries (u8 lengths). */
const NAME_BYTES_MAX = 0xff;
/** One acknowledgement in a REPLICA_ACK: u32 id, u8 result code. */
const ACK_ENTRY_BYTES = 5;

/** A REPLICA_ACK frame (fabric kind byte first) from `sender` for `acks` (id, result code pairs). */
export function encodeAcks(sender: Buffer, acks: readonly number[]): Buffer {
  const n = acks.length / 2;
  assert(sender.length <= NAME_BYTES_MAX && n >= 1 && n <= ACKS_PER_FRAME_MAX && Number.isInteger(n), 'a REPLICA_ACK carries its sender and 1..ACKS_PER_FRAME_MAX acknowledgements');
  const head = 2 + sender.length;
  const f = Buffer.allocUnsafe(head + n * ACK_ENTRY_BYTES);
  f[0] = FabricKind.REPLICA_ACK;
  f[1] = sender.length;
  sender.copy(f, 2);
  for (let i = 0, at = head; i < acks.length; i += 2, at += ACK_ENTRY_BYTES) {
    f.writeUInt32BE(acks[i]!, at);
    f[at + 4] = acks[i + 1]!;
  }
  return f;
}

/** A REPLICA_ACK payload: its sender and where its acknowledgements start; undefined when malformed. */
export function decodeAcks(payload: Buffer): { sender: string; at: number } | undefined {
  if (payload.length < 1) return undefined;
  const at = 1 + payload[0]!;
  const n = (payload.length - at) / ACK_ENTRY_BYTES;
  if (!Number.isInteger(n) || n < 1 || n > ACKS_PER_FRAME_MAX) return undefined;
  return { sender: payload.toString('utf8', 1, at), at };
}

/**
 * The whole REPLICA_WRITE frame (fabric kind byte first) in one buffer, the record in device
 * format with its CRC (the replica reseals it with its own block sequence): the bytes the store
 * just wrote, copied as they are, when the version carries them (a client write); else encoded
 * straight into the frame (block sequence 0).
 */
export function encodeWriteFrame(id: number, namespace: string, sender: Buffer, w: WrittenVersion, flags = 0): Buffer {
  const nsLen = Buffer.byteLength(namespace);
  assert(nsLen <= NAME_BYTES_MAX && sender.length <= NAME_BYTES_MAX, 'namespace and sender fit their u8 lengths');
  const stored = w.encoded;
  const length = stored ? stored.length : encodedLength(w.record);
  const senderAt = 1 + WRITE_HEAD_BYTES + nsLen;
  const at = senderAt + 1 + sender.length;
  const buf = Buffer.allocUnsafe(at + alignUp(length));
  buf[0] = FabricKind.REPLICA_WRITE;
  buf.writeUInt32BE(id, 1);
  buf[5] = w.kind | flags;
  buf[6] = nsLen;
  buf.write(namespace, 1 + WRITE_HEAD_BYTES, 'utf8');
  buf[senderAt] = sender.length;
  sender.copy(buf, senderAt + 1);
  if (stored) {
    // The store's view must still hold this version (it is read in the turn it was written).
    assert(stored.length === alignUp(stored.readUInt32LE(4)) && w.record.digest.equals(stored.subarray(RECORD_DIGEST_OFFSET, RECORD_DIGEST_OFFSET + DIGEST_BYTES)), 'the stored bytes of a replica write are its record');
    stored.copy(buf, at);
  } else {
    encodeRecordInto(w.record, buf, at, length);
    sealRecord(buf, 0, at);
  }
  return buf;
}

/** The digest of the record in a REPLICA_WRITE frame (as encodeWriteFrame built it). */
function frameDigest(frame: Buffer): Buffer {
  const senderAt = 1 + WRITE_HEAD_BYTES + frame[6]!;
  const at = senderAt + 1 + frame[senderAt]! + RECORD_DIGEST_OFFSET;
  return frame.subarray(at, at + DIGEST_BYTES);
}

/** A REPLICA_WRITE payload, judged: undefined when it is malformed or its record is damaged. */
export function decodeWrite(payload: Buffer): { id: number; namespace: string; sender: string; kind: WriteKindId; migration: boolean; version: EncodedVersion } | undefined {
  if (payload.length < WRITE_HEAD_BYTES) return undefined;
  const senderAt = WRITE_HEAD_BYTES + payload[5]!;
  if (payload.length < senderAt + 1) return undefined;
  const at = senderAt + 1 + payload[senderAt]!;
  if (payload.length < at) return undefined;
  // The record carries its CRC: checked before it is applied, with its layout, since it is
  // stored as it came (and checked again by the store on read).
  if (checkRecord(payload, at) !== 'ok' || !recordLayoutOk(payload, at)) return undefined;
  const flags = payload[4]!;
  return {
    id: payload.readUInt32BE(0),
    namespace: payload.toString('utf8', WRITE_HEAD_BYTES, senderAt),
    sender: payload.toString('utf8', senderAt + 1, at),
    kind: (flags & ~MIGRATION_FLAG) as WriteKindId,
    migration: (flags & MIGRATION_FLAG) !== 0,
    version: { bytes: payload, off: at, header: readHeader(payload, at), digest: payload.subarray(at + RECORD_DIGEST_OFFSET, at + RECORD_DIGEST_OFFSET + DIGEST_BYTES) },
  };
}
