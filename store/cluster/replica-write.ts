/**
 * Replica writes. On the master, step 4 of every transaction that stored a version (the
 * namespace's Replicator) sends that version to each replica of its partition over the fabric
 * and resolves once every replica acknowledged it, the record lock still held, so the client's
 * answer means every copy has it (durably, with commit-to-device: a replica acknowledges after
 * its own commit step). On a replica, the version is applied in version order (generation, then
 * LUT): a late or duplicated message never regresses a record.
 *
 * A replica that does not answer within REPLICA_WRITE_TIMEOUT_MS fails the write with TIMEOUT
 * (the master already applied it: in doubt, as with any timeout). When the table changes, a
 * write still waiting on a node that is no longer a replica of that partition stops waiting
 * for it (it has left; the new replica would be filled by migrations, which do not exist yet).
 *
 * Fabric messages (on the heartbeat connections):
 *   REPLICA_WRITE u32 id, u8 write kind, u8 namespace length, namespace, record (device format, CRC)
 *   REPLICA_ACK   u32 id, u8 result code
 */
import { partitionOf } from '../digest.js';
import { systemTimers, type TimerHandle, type Timers } from '../runtime/index.js';
import { checkRecord, decodeRecord, encodeRecord, type StoredRecord } from '../storage/record-format.js';
import { ResultCode, type WriteKindId } from '../types.js';
import { ReplicationFailed, type Replicator, type WrittenVersion } from '../transaction/index.js';
import type { Namespace } from '../namespace/namespace.js';
import type { Cluster } from './cluster.js';
import { FabricKind, frame, type Heartbeat } from './heartbeat.js';

/** Longest a master waits for replicas before the write fails with TIMEOUT. */
export const REPLICA_WRITE_TIMEOUT_MS = 1000;
/** Set in the write-kind byte of a REPLICA_WRITE that a migration sent (counted apart). */
const MIGRATION_FLAG = 0x80;
/** Replica writes in flight on one master before new ones are refused (DEVICE_OVERLOAD). */
export const REPLICA_WRITES_PENDING_MAX = 20_000;

interface Pending {
  /** A migration push to one node: not retargeted on table changes (the timeout bounds it). */
  migration: boolean;
  namespace: string;
  pid: number;
  waiting: Set<string>;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: TimerHandle;
}

export class ReplicaWrites {
  readonly #pending = new Map<number, Pending>();
  #nextId = 1;
  readonly counters = { replica_writes_sent: 0, replica_writes_received: 0, replica_writes_applied: 0, replica_write_timeouts: 0 };
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

  #replicate(namespace: string, w: WrittenVersion): Promise<void> {
    const pid = partitionOf(w.record.digest);
    // This node now has a copy of pid (a node that served while cut off has data no one else has).
    this.beforeApply?.(namespace, pid);
    // Only the master replicates: a replica applying, or a non-master (never sent client writes;
    // they are proxied) stores locally only.
    if (!this.cluster.isWorkingMaster(namespace, pid)) return Promise.resolve();
    const targets = this.cluster.replicationTargets(namespace, pid);
    if (targets.length === 0) return Promise.resolve();
    if (this.#pending.size >= REPLICA_WRITES_PENDING_MAX) return Promise.reject(new ReplicationFailed(ResultCode.DEVICE_OVERLOAD, 'too many replica writes in flight'));
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    const body = encodeMessage(id, namespace, w);
    const startedMs = this.clock.nowMs();
    return new Promise<void>((resolve, reject) => {
      const timer = this.timers.setTimeout(() => {
        const waiting = [...(this.#pending.get(id)?.waiting ?? targets)];
        this.#pending.delete(id);
        this.counters.replica_write_timeouts++;
        reject(new ReplicationFailed(ResultCode.TIMEOUT, `replica(s) ${waiting.join(',')} did not acknowledge in ${REPLICA_WRITE_TIMEOUT_MS} ms`));
      }, REPLICA_WRITE_TIMEOUT_MS);
      const done = (): void => {
        const ms = this.clock.nowMs() - startedMs;
        this.latency.sumMs += ms;
        this.latency.count++;
        if (ms > this.latency.maxMs) this.latency.maxMs = ms;
        resolve();
      };
      this.#pending.set(id, { migration: false, namespace, pid, waiting: new Set(targets), resolve: done, reject, timer });
      for (const t of targets) {
        const conn = this.heartbeat.connectionTo(t);
        if (!conn) continue; // gone: the table change that follows releases it, or the timeout
        conn.send(frame(FabricKind.REPLICA_WRITE, body));
        this.counters.replica_writes_sent++;
      }
    });
  }

  /**
   * Sends one stored record to one node (a migration); resolves true once it acknowledged,
   * false if it did not answer in time, is not connected, or refused it.
   */
  push(namespace: string, record: StoredRecord, kind: WriteKindId, target: string): Promise<boolean> {
    const conn = this.heartbeat.connectionTo(target);
    if (!conn) return Promise.resolve(false);
    const id = this.#nextId;
    this.#nextId = this.#nextId >= 0xffffffff ? 1 : this.#nextId + 1;
    return new Promise<boolean>((resolve) => {
      const timer = this.timers.setTimeout(() => {
        this.#pending.delete(id);
        resolve(false);
      }, REPLICA_WRITE_TIMEOUT_MS);
      this.#pending.set(id, {
        migration: true,
        namespace,
        pid: partitionOf(record.digest),
        waiting: new Set([target]),
        resolve: () => resolve(true),
        reject: () => resolve(false),
        timer,
      });
      conn.send(frame(FabricKind.REPLICA_WRITE, encodeMessage(id, namespace, { record, kind }, MIGRATION_FLAG)));
    });
  }

  #onAck(payload: Buffer): void {
    if (payload.length < 5) return;
    const id = payload.readUInt32BE(0);
    const code = payload[4]!;
    const p = this.#pending.get(id);
    if (!p) return;
    const from = payload.subarray(5).toString();
    if (code !== ResultCode.OK) {
      this.log(`replica ${from} refused a replica write (result ${code})`);
      this.#finish(id, p, new ReplicationFailed(ResultCode.SERVER_ERROR, `replica ${from} answered ${code}`));
      return;
    }
    p.waiting.delete(from);
    if (p.waiting.size === 0) this.#finish(id, p);
  }

  #finish(id: number, p: Pending, err?: Error): void {
    this.#pending.delete(id);
    this.timers.clearTimeout(p.timer);
    if (err) p.reject(err);
    else p.resolve();
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

  #onWrite(payload: Buffer, reply: (kind: number, payload: Buffer) => void): void {
    this.counters.replica_writes_received++;
    const ack = (code: number): void => {
      const b = Buffer.alloc(5);
      b.writeUInt32BE(payload.length >= 4 ? payload.readUInt32BE(0) : 0, 0);
      b[4] = code;
      reply(FabricKind.REPLICA_ACK, Buffer.concat([b, Buffer.from(this.cluster.nodeId)]));
    };
    const m = decodeMessage(payload);
    if (!m) return ack(ResultCode.PARAMETER);
    const ns = this.namespaces.get(m.namespace);
    if (!ns) return ack(ResultCode.NAMESPACE_NOT_FOUND);
    try {
      this.beforeApply?.(m.namespace, partitionOf(m.record.digest));
    } catch (err) {
      this.log('cannot record the partition version before a replica write', err);
      return ack(ResultCode.SERVER_ERROR);
    }
    ns.applyReplica(m.record, m.kind).then(
      (r) => {
        if (m.migration) this.onMigrationRecord?.(m.namespace);
        if (r.applied) this.counters.replica_writes_applied++;
        ack(r.resultCode);
      },
      (err: unknown) => {
        this.log('replica write failed', err);
        ack(ResultCode.SERVER_ERROR);
      },
    );
  }

  stats(): Record<string, number> {
    return {
      ...this.counters,
      replica_write_latency_mean_ms: this.latency.count > 0 ? Math.round((this.latency.sumMs / this.latency.count) * 100) / 100 : 0,
      replica_write_latency_max_ms: this.latency.maxMs,
      replica_writes_pending: this.#pending.size,
    };
  }
}

function encodeMessage(id: number, namespace: string, w: WrittenVersion, flags = 0): Buffer {
  const ns = Buffer.from(namespace);
  const head = Buffer.alloc(6);
  head.writeUInt32BE(id, 0);
  head[4] = w.kind | flags;
  head[5] = ns.length;
  return Buffer.concat([head, ns, encodeRecord(w.record, 0)]);
}

function decodeMessage(payload: Buffer): { namespace: string; kind: WriteKindId; migration: boolean; record: ReturnType<typeof decodeRecord> } | undefined {
  if (payload.length < 6) return undefined;
  const nsLen = payload[5]!;
  if (payload.length < 6 + nsLen) return undefined;
  const body = payload.subarray(6 + nsLen);
  // The record carries its CRC: checked before it is applied (and again by the store on read).
  if (checkRecord(body, 0) !== 'ok') return undefined;
  return {
    namespace: payload.subarray(6, 6 + nsLen).toString(),
    kind: (payload[4]! & ~MIGRATION_FLAG) as WriteKindId,
    migration: (payload[4]! & MIGRATION_FLAG) !== 0,
    record: decodeRecord(body, 0),
  };
}
