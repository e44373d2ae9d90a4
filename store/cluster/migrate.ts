/**
 * Migrations: moving partition copies to the holders that lack them, as the rebalance plan
 * (balance.ts) says. A task is (round key, namespace, partition, target, delta?).
 *
 * Sender, per task: START (the target admits at most `migrate-max-num-incoming` partitions at
 * once, node-wide, else EAGAIN and the task waits a second); for a delta (the target holds a
 * subset) the target's (digest, generation, LUT, tombstone) metadata is streamed in digest order
 * (META, batches of META_BATCH_ENTRIES) and merged with this node's sorted digests, and only
 * records whose version wins are shipped; a fill ships every record. Records and tombstones go
 * through the replica-write path (applied in version order: repeats and races with client
 * writes are harmless), at most MIGRATE_WINDOW_RECORDS in flight, paced by the records/s and
 * bytes/s caps. Then DONE; the target's copy becomes FULL when every source said DONE. Any
 * failure retries the task after MIGRATE_RETRY_MS while the round lasts; a new round drops
 * every task of the old one. `migrate-threads` tasks run at once (0 pauses sending).
 *
 * Fill delay (fill-delay.ts): while a member that left is expected back, a receiver answers a
 * START of a fill with `delayed` and the ms left; the sender tries again then, and the receiver
 * does not pull delayed fills.
 *
 * Receiver: START admits, META answers from a sorted list of the partition's metadata built at
 * the first META of the session, DONE ends the session. Sessions die with the round or after
 * MIGRATE_SESSION_IDLE_MS without a message.
 *
 * Pull: the plan makes sources push, but a receiver does not rely on it. Every PULL_EVERY_MS it
 * asks each source it still waits for (PULL: the partitions, per namespace), and a source queues
 * what is not queued yet. Rounds of one key can differ between nodes when membership flaps (a
 * node that left the key and came back re-plans, the others do not); whatever the senders
 * planned, what a receiver waits for gets sent.
 */
import { systemTimers, yieldToLoop, type Timers } from '../runtime/index.js';
import { WriteKind, type PartitionId } from '../types.js';
import type { Namespace } from '../namespace/namespace.js';
import type { IndexEntry } from '../storage/primary-index.js';
import { encodedLength } from '../storage/record-format.js';
import type { MigrationTask, PartitionBalance } from './balance.js';
import { RebalanceOp, type FabricRpc } from './fabric-rpc.js';
import { FillDelay } from './fill-delay.js';
import { RateLimit } from './rate-limit.js';
import type { ReplicaWrites } from './replica-write.js';

/** Records of one partition pushed concurrently. */
export const MIGRATE_WINDOW_RECORDS = 32;
/** Metadata entries per META answer (each 33 bytes: a frame of about 130 KiB). */
export const META_BATCH_ENTRIES = 4000;
const META_ENTRY_BYTES = 20 + 4 + 8 + 1;
/** Partitions one DONE may cover (sources with no record of them: nothing to ship). */
export const DONE_BATCH_PARTITIONS = 4096;
/** Pause before a task that failed is tried again. */
export const MIGRATE_RETRY_MS = 1000;
/** Pause before a task the target refused for now (EAGAIN: over its incoming limit) is tried again. */
export const MIGRATE_EAGAIN_MS = 100;
/** Bounds of the pause before a START the target delayed (migrate-fill-delay) is tried again. */
const MIGRATE_DELAYED_RETRY_MS_MIN = 100;
const MIGRATE_DELAYED_RETRY_MS_MAX = 60_000;
/** A control request (START, META, DONE) not answered in this long counts as failed. */
const MIGRATE_REQUEST_TIMEOUT_MS = 5000;
/** A receiver asks the sources it still waits for this often. */
export const PULL_EVERY_MS = 2000;
/** An incoming session with no message for this long is forgotten (its sender died). */
const MIGRATE_SESSION_IDLE_MS = 60_000;

/**
 * Partitions sent at once (Aerospike's default is 1 thread; ours are concurrent emigrations on
 * one event loop, each mostly waiting on round trips, so a few overlap the waits).
 */
export const MIGRATE_THREADS_DEFAULT = 4;
export const MIGRATE_THREADS_MAX = 100;
/** Partitions received at once, node-wide: room for several senders' default threads. */
export const MIGRATE_MAX_NUM_INCOMING_DEFAULT = 16;
export const MIGRATE_MAX_NUM_INCOMING_MAX = 256;

interface Session {
  key: string;
  lastMs: number;
  meta?: Buffer[];
}

interface NsCounters {
  migrate_tx_partitions_done: number;
  migrate_records_shipped: number;
  migrate_records_skipped: number;
  migrate_rx_records: number;
}

export class Migrations {
  #queue: MigrationTask[] = [];
  #active = new Set<MigrationTask>();
  #waiting = new Set<MigrationTask>();
  /** Partitions with no record here, in a batched DONE (they do not take a migrate thread). */
  readonly #signalling = new Set<MigrationTask>();
  readonly #sessions = new Map<string, Session>();
  readonly limit: RateLimit;
  readonly fillDelay = new FillDelay();
  threads = MIGRATE_THREADS_DEFAULT;
  maxNumIncoming = MIGRATE_MAX_NUM_INCOMING_DEFAULT;
  readonly counters = {
    migrate_partitions_sent: 0,
    migrate_records_sent: 0,
    migrate_records_skipped: 0,
    migrate_records_failed: 0,
    migrate_records_received: 0,
    migrate_start_eagain: 0,
    migrate_retries: 0,
    migrate_pulls: 0,
    migrate_fill_delayed: 0,
  };
  readonly #perNs = new Map<string, NsCounters>();
  /** `${namespace}/${pid}/${target}` of every task queued, waiting or running. */
  readonly #pendingKeys = new Set<string>();

  constructor(
    private readonly balance: PartitionBalance,
    private readonly rpc: FabricRpc,
    private readonly replicas: ReplicaWrites,
    private readonly namespaces: ReadonlyMap<string, Namespace>,
    private readonly clock: { nowMs(): number },
    private readonly timers: Timers = systemTimers,
    private readonly log: (msg: string) => void = () => {},
  ) {
    this.limit = new RateLimit(clock, timers);
    for (const name of namespaces.keys()) this.#perNs.set(name, { migrate_tx_partitions_done: 0, migrate_records_shipped: 0, migrate_records_skipped: 0, migrate_rx_records: 0 });
    balance.onPlan((tasks) => this.#onPlan(tasks));
    rpc.serveJson(RebalanceOp.START, (m) => this.#onStart(m as ControlMessage));
    rpc.serveJson(RebalanceOp.DONE, (m) => this.#onDone(m as ControlMessage));
    rpc.serve(RebalanceOp.META, (b) => this.#onMeta(b));
    rpc.serveJson(RebalanceOp.PULL, (m) => this.#onPull(m as ControlMessage & { pids?: unknown }));
    timers.setInterval(() => this.#pull(), PULL_EVERY_MS).unref();
    replicas.onMigrationRecord = (namespace) => {
      this.counters.migrate_records_received++;
      const c = this.#perNs.get(namespace);
      if (c) c.migrate_rx_records++;
    };
  }

  /** Tasks this node still has to send (queued, waiting to retry, running). */
  remaining(namespace?: string): number {
    const all = [...this.#queue, ...this.#waiting, ...this.#active, ...this.#signalling];
    return namespace === undefined ? all.length : all.filter((t) => t.namespace === namespace).length;
  }

  /** Incoming partitions being received now. */
  incomingActive(): number {
    this.#reap();
    return this.#sessions.size;
  }

  nsCounters(namespace: string): NsCounters | undefined {
    return this.#perNs.get(namespace);
  }

  /** Call after `threads` changed. */
  pump(): void {
    while (this.#active.size < this.threads && this.#queue.length > 0) {
      const task = this.#queue.shift()!;
      if (task.key !== this.balance.key) {
        this.#pendingKeys.delete(taskKey(task));
        continue;
      }
      this.#active.add(task);
      void this.#run(task).finally(() => {
        this.#active.delete(task);
        if (!this.#waiting.has(task)) this.#pendingKeys.delete(taskKey(task));
        this.pump();
      });
    }
  }

  #onPlan(tasks: MigrationTask[]): void {
    this.#waiting.clear();
    this.#signalling.clear();
    this.#pendingKeys.clear();
    this.#queue = [];
    if (tasks.length > 0) this.log(`migrations: ${tasks.length} partition(s) to send`);
    this.#enqueue(tasks);
  }

  /** Queues tasks not queued yet; a source with no record of a partition answers at once (batched). */
  #enqueue(tasks: readonly MigrationTask[]): void {
    const fresh = tasks.filter((t) => {
      const k = taskKey(t);
      if (this.#pendingKeys.has(k)) return false;
      this.#pendingKeys.add(k);
      return true;
    });
    for (const [k, s] of this.#sessions) if (s.key !== this.balance.key) this.#sessions.delete(k);
    // Partitions this node has no record of need no START and no records: one DONE per
    // target and namespace covers them all (a write arriving meanwhile is replicated to the
    // target anyway, as to every holder).
    const empty = new Map<string, MigrationTask[]>();
    this.#queue.push(
      ...fresh.filter((t) => {
      if (this.namespaces.get(t.namespace)!.store.partitionSize(t.pid as PartitionId) > 0) return true;
      const k = `${t.target}/${t.namespace}`;
      const group = empty.get(k);
      if (group) group.push(t);
      else empty.set(k, [t]);
      return false;
      }),
    );
    for (const group of empty.values()) {
      for (let i = 0; i < group.length; i += DONE_BATCH_PARTITIONS) void this.#doneEmpty(group.slice(i, i + DONE_BATCH_PARTITIONS));
    }
    this.pump();
  }

  async #doneEmpty(tasks: MigrationTask[]): Promise<void> {
    const first = tasks[0]!;
    for (const t of tasks) this.#signalling.add(t);
    try {
      const ready = tasks.filter((t) => this.balance.beforeDone(t.key, t.namespace, t.pid, t.target));
      if (ready.length === 0) return;
      const msg = { key: first.key, from: this.balance.nodeId, ns: first.namespace, pid: first.pid, pids: ready.map((t) => t.pid) };
      const done = await this.rpc.requestJson<{ status: string }>(first.target, RebalanceOp.DONE, msg, MIGRATE_REQUEST_TIMEOUT_MS);
      if (first.key !== this.balance.key || done?.status === 'stale') return;
      if (done?.status !== 'ok') {
        for (const t of ready) this.#retryLater(t, done?.status === 'eagain' ? MIGRATE_EAGAIN_MS : MIGRATE_RETRY_MS);
        return;
      }
      this.counters.migrate_partitions_sent += ready.length;
      this.#perNs.get(first.namespace)!.migrate_tx_partitions_done += ready.length;
    } finally {
      for (const t of tasks) {
        this.#signalling.delete(t);
        if (!this.#waiting.has(t)) this.#pendingKeys.delete(taskKey(t));
      }
    }
  }

  #retryLater(task: MigrationTask, delayMs = MIGRATE_RETRY_MS): void {
    if (delayMs === MIGRATE_RETRY_MS) this.counters.migrate_retries++;
    this.#waiting.add(task);
    this.timers.setTimeout(() => {
      if (!this.#waiting.delete(task)) return;
      if (task.key !== this.balance.key) {
        this.#pendingKeys.delete(taskKey(task));
        return;
      }
      this.#queue.push(task);
      this.pump();
    }, delayMs);
  }

  async #run(task: MigrationTask): Promise<void> {
    const control = { key: task.key, from: this.balance.nodeId, ns: task.namespace, pid: task.pid };
    const start = await this.rpc.requestJson<{ status: string }>(task.target, RebalanceOp.START, control, MIGRATE_REQUEST_TIMEOUT_MS);
    if (task.key !== this.balance.key || start?.status === 'stale') return;
    if (start?.status === 'eagain') {
      this.counters.migrate_start_eagain++;
      return this.#retryLater(task, MIGRATE_EAGAIN_MS);
    }
    if (start?.status === 'delayed') {
      const ms = Number((start as { retryMs?: unknown }).retryMs);
      return this.#retryLater(task, Number.isFinite(ms) ? Math.min(MIGRATE_DELAYED_RETRY_MS_MAX, Math.max(MIGRATE_DELAYED_RETRY_MS_MIN, ms)) : MIGRATE_RETRY_MS);
    }
    if (start?.status !== 'ok') return this.#retryLater(task);
    const ok = await this.#ship(task);
    if (task.key !== this.balance.key) return;
    if (!ok) return this.#retryLater(task);
    if (!this.balance.beforeDone(task.key, task.namespace, task.pid, task.target)) return;
    for (;;) {
      const done = await this.rpc.requestJson<{ status: string }>(task.target, RebalanceOp.DONE, control, MIGRATE_REQUEST_TIMEOUT_MS);
      if (task.key !== this.balance.key || done?.status === 'stale') return;
      if (done?.status === 'ok') break;
      await yieldToLoop(this.timers);
      await new Promise<void>((r) => void this.timers.setTimeout(r, MIGRATE_RETRY_MS));
    }
    this.counters.migrate_partitions_sent++;
    this.#perNs.get(task.namespace)!.migrate_tx_partitions_done++;
  }

  /** Ships the records the target lacks (all for a fill); false if any push failed. */
  async #ship(task: MigrationTask): Promise<boolean> {
    const ns = this.namespaces.get(task.namespace)!;
    const c = this.#perNs.get(task.namespace)!;
    const own: Array<{ d: Buffer; gen: number; lut: number; tomb: boolean }> = [];
    ns.store.forEach(task.pid as PartitionId, (d, e: IndexEntry) => own.push({ d: Buffer.from(d), gen: e.generation, lut: e.lutMs, tomb: e.tombstone }));
    own.sort((a, b) => Buffer.compare(a.d, b.d));
    const ship: Buffer[] = [];
    if (!task.delta) for (const o of own) ship.push(o.d);
    else {
      const theirs = new MetaCursor(this.rpc, task, this.balance.nodeId);
      for (const o of own) {
        const t = await theirs.seek(o.d);
        if (t === 'failed') return false;
        const wins = !t || o.gen > t.gen || (o.gen === t.gen && (o.lut > t.lut || (o.lut === t.lut && o.tomb && !t.tomb)));
        if (wins) ship.push(o.d);
        else {
          this.counters.migrate_records_skipped++;
          c.migrate_records_skipped++;
        }
      }
    }
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (next < ship.length && !failed && task.key === this.balance.key) {
        const record = ns.store.read(ship[next++]!);
        if (!record) continue; // gone since the listing
        await this.limit.take(encodedLength(record));
        const kind = record.tombstone ? WriteKind.DELETE : WriteKind.WRITE;
        if (await this.replicas.push(task.namespace, record, kind, task.target)) {
          this.counters.migrate_records_sent++;
          c.migrate_records_shipped++;
        } else {
          this.counters.migrate_records_failed++;
          failed = true;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(MIGRATE_WINDOW_RECORDS, ship.length) }, worker));
    return !failed && task.key === this.balance.key;
  }

  // ------------------------------------------------------------------ pull

  /** Asks every source this node still waits for to send (again) what it owes. */
  #pull(): void {
    if (!this.balance.ready) return;
    const key = this.balance.key;
    let replanned = false;
    const delayed = this.fillDelay.remainingMs(this.clock.nowMs()) > 0;
    for (const [source, byNs] of this.balance.owed()) {
      for (const [ns, all] of byNs) {
        const pids = delayed ? all.filter((pid) => !this.balance.isFillTarget(ns, pid)) : all;
        for (let i = 0; i < pids.length; i += DONE_BATCH_PARTITIONS) {
          const msg = { key, from: this.balance.nodeId, ns, pid: pids[i]!, pids: pids.slice(i, i + DONE_BATCH_PARTITIONS) };
          void this.rpc.requestJson<{ status: string; refused?: number }>(source, RebalanceOp.PULL, msg, MIGRATE_REQUEST_TIMEOUT_MS).then((r) => {
            if (!r?.refused || replanned || key !== this.balance.key) return;
            replanned = true;
            this.log(`migrations: ${source} is not the source of ${r.refused} partition(s) this node planned to receive from it: planning again`);
            this.balance.replan();
          });
        }
      }
    }
  }

  #onPull(m: ControlMessage & { pids?: unknown }): unknown {
    if (!validControl(m) || !this.namespaces.has(m.ns)) return { status: 'bad' };
    if (m.key !== this.balance.key) return { status: 'stale' };
    if (!this.balance.ready) return { status: 'eagain' };
    if (!Array.isArray(m.pids) || m.pids.length > DONE_BATCH_PARTITIONS || !m.pids.every((p) => Number.isInteger(p) && p >= 0 && p < 4096)) return { status: 'bad' };
    this.counters.migrate_pulls++;
    // Only what this node's own plan makes it send: a receiver that planned from other
    // snapshots must not be told it has everything by a node without a full copy.
    const pids = m.pids as number[];
    const mine = pids.filter((pid) => this.balance.isSourceFor(m.ns, pid, m.from));
    // The target's copy may be anything: a delta costs one metadata answer when it has nothing.
    this.#enqueue(mine.map((pid) => ({ key: m.key, namespace: m.ns, pid, target: m.from, delta: true })));
    this.pump();
    return mine.length === pids.length ? { status: 'ok' } : { status: 'ok', refused: pids.length - mine.length };
  }

  // ------------------------------------------------------------------ receiver

  #sessionKey(m: ControlMessage): string {
    return `${m.ns}/${m.pid}/${m.from}`;
  }

  #onStart(m: ControlMessage): unknown {
    if (!validControl(m) || !this.namespaces.has(m.ns)) return { status: 'bad' };
    if (m.key !== this.balance.key) return { status: 'stale' };
    if (!this.balance.ready) return { status: 'eagain' };
    this.#reap();
    const k = this.#sessionKey(m);
    if (!this.#sessions.has(k) && this.#sessions.size >= this.maxNumIncoming) return { status: 'eagain' };
    const delayMs = this.fillDelay.remainingMs(this.clock.nowMs());
    if (delayMs > 0 && this.balance.isFillTarget(m.ns, m.pid)) {
      this.counters.migrate_fill_delayed++;
      return { status: 'delayed', retryMs: delayMs };
    }
    this.#sessions.set(k, { key: m.key, lastMs: this.clock.nowMs() });
    this.balance.markIncoming(m.ns, m.pid);
    return { status: 'ok' };
  }

  #onDone(m: ControlMessage & { pids?: unknown }): unknown {
    if (!validControl(m)) return { status: 'bad' };
    this.#sessions.delete(this.#sessionKey(m));
    if (m.pids === undefined) return { status: this.balance.sourceDone(m.key, m.ns, [m.pid], m.from) };
    if (!Array.isArray(m.pids) || m.pids.length > DONE_BATCH_PARTITIONS || !m.pids.every((p) => Number.isInteger(p) && p >= 0 && p < 4096)) return { status: 'bad' };
    return { status: this.balance.sourceDone(m.key, m.ns, m.pids as number[], m.from) };
  }

  /** META request: JSON control + offset; answer: u8 status (0 ok, 1 stale), u8 more, u32 count, entries. */
  #onMeta(b: Buffer): Buffer {
    let m: ControlMessage & { offset: number };
    try {
      m = JSON.parse(b.toString()) as typeof m;
    } catch {
      return Buffer.of(1, 0, 0, 0, 0, 0);
    }
    if (!validControl(m) || m.key !== this.balance.key || !Number.isInteger(m.offset) || m.offset < 0) return Buffer.of(1, 0, 0, 0, 0, 0);
    const ns = this.namespaces.get(m.ns);
    const s = this.#sessions.get(this.#sessionKey(m));
    if (!ns || !s) return Buffer.of(1, 0, 0, 0, 0, 0);
    s.lastMs = this.clock.nowMs();
    if (!s.meta) {
      const entries: Buffer[] = [];
      ns.store.forEach(m.pid as PartitionId, (d, e) => {
        const x = Buffer.alloc(META_ENTRY_BYTES);
        d.copy(x, 0, 0, 20);
        x.writeUInt32BE(e.generation >>> 0, 20);
        x.writeDoubleBE(e.lutMs, 24);
        x[32] = e.tombstone ? 1 : 0;
        entries.push(x);
      });
      entries.sort((a, b) => Buffer.compare(a.subarray(0, 20), b.subarray(0, 20)));
      s.meta = entries;
    }
    const slice = s.meta.slice(m.offset, m.offset + META_BATCH_ENTRIES);
    const head = Buffer.alloc(6);
    head[1] = m.offset + slice.length < s.meta.length ? 1 : 0;
    head.writeUInt32BE(slice.length, 2);
    return Buffer.concat([head, ...slice]);
  }

  #reap(): void {
    const now = this.clock.nowMs();
    for (const [k, s] of this.#sessions) if (s.key !== this.balance.key || now - s.lastMs > MIGRATE_SESSION_IDLE_MS) this.#sessions.delete(k);
  }
}

const taskKey = (t: MigrationTask): string => `${t.namespace}/${t.pid}/${t.target}`;

interface ControlMessage {
  key: string;
  from: string;
  ns: string;
  pid: number;
}

function validControl(m: ControlMessage): boolean {
  return typeof m?.key === 'string' && typeof m.from === 'string' && typeof m.ns === 'string' && Number.isInteger(m.pid) && m.pid >= 0 && m.pid < 4096;
}

/** Walks the target's metadata of one partition in digest order, fetching batches on demand. */
class MetaCursor {
  #batch: Buffer = Buffer.alloc(0);
  #pos = 0;
  #offset = 0;
  #more = true;

  constructor(
    private readonly rpc: FabricRpc,
    private readonly task: MigrationTask,
    private readonly from: string,
  ) {}

  /** The target's entry for digest d (undefined if it has none), or 'failed'. Calls come in digest order. */
  async seek(d: Buffer): Promise<{ gen: number; lut: number; tomb: boolean } | undefined | 'failed'> {
    for (;;) {
      while (this.#pos < this.#batch.length) {
        const c = Buffer.compare(this.#batch.subarray(this.#pos, this.#pos + 20), d);
        if (c > 0) return undefined;
        const at = this.#pos;
        this.#pos += META_ENTRY_BYTES;
        if (c === 0) return { gen: this.#batch.readUInt32BE(at + 20), lut: this.#batch.readDoubleBE(at + 24), tomb: this.#batch[at + 32] === 1 };
      }
      if (!this.#more) return undefined;
      const t = this.task;
      const body = { key: t.key, from: this.from, ns: t.namespace, pid: t.pid, offset: this.#offset };
      const r = await this.rpc.request(t.target, RebalanceOp.META, Buffer.from(JSON.stringify(body)), MIGRATE_REQUEST_TIMEOUT_MS);
      if (!r || r.length < 6 || r[0] !== 0) return 'failed';
      const count = r.readUInt32BE(2);
      if (r.length !== 6 + count * META_ENTRY_BYTES) return 'failed';
      this.#more = r[1] === 1;
      this.#batch = r.subarray(6);
      this.#pos = 0;
      this.#offset += count;
    }
  }
}
