/**
 * Fill migrations (a first, simple form). After every table change, each partition whose
 * holders (master and replicas) gained nodes that did not hold it before is pushed to them,
 * record by record (tombstones included, so a delete cannot be undone by a stale copy), through
 * the replica-write path: the receiver applies in version order, so a record it already has, or
 * has newer, is left alone and pushing twice is harmless.
 *
 * Who sends: every previous holder of the partition (in this node's own previous table) that
 * is still a member; if none survived, every member that has records of it. Nodes may have
 * seen different intermediate tables (there is no agreement round), so choosing one sender
 * could leave a partition with none; several senders cost traffic, never correctness.
 *
 * Not here yet (see docs/cluster.md): an acting master (until a new master is filled, reads of
 * not-yet-moved records there answer NOT_FOUND), dropping superseded copies, delta migration,
 * fill delay, throttling by bytes. Pushes run one partition at a time with a bounded window.
 */
import { systemTimers, yieldToLoop, type Timers } from '../runtime/index.js';
import { PARTITION_COUNT, WriteKind, type PartitionId } from '../types.js';
import type { Namespace } from '../namespace/namespace.js';
import type { Cluster } from './cluster.js';
import type { PartitionTable } from './partition-table.js';
import type { ReplicaWrites } from './replica-write.js';

/** Records of one partition pushed concurrently. */
export const MIGRATE_WINDOW_RECORDS = 32;

interface Task {
  namespace: string;
  pid: number;
  targets: string[];
}

export class Migrations {
  /** The table each namespace had before the latest change. */
  #previous = new Map<string, PartitionTable>();
  #queue: Task[] = [];
  #running = false;
  #current: Task | undefined;
  readonly counters = { migrate_partitions_sent: 0, migrate_records_sent: 0, migrate_records_failed: 0 };

  constructor(
    private readonly cluster: Cluster,
    private readonly replicas: ReplicaWrites,
    private readonly namespaces: ReadonlyMap<string, Namespace>,
    private readonly timers: Timers = systemTimers,
    private readonly log: (msg: string) => void = () => {},
  ) {
    for (const name of namespaces.keys()) this.#previous.set(name, cluster.table(name));
    cluster.onTableChange(() => this.#onChange());
  }

  /** Partitions this node still has to send (statistics migrate_partitions_remaining). */
  remaining(): number {
    return this.#queue.length + (this.#current ? 1 : 0);
  }

  #onChange(): void {
    const self = this.cluster.nodeId;
    const next: Task[] = [];
    for (const [name, ns] of this.namespaces) {
      const before = this.#previous.get(name)!;
      const after = this.cluster.table(name);
      this.#previous.set(name, after);
      const alive = new Set(after.members.map((m) => m.nodeId));
      for (let pid = 0; pid < PARTITION_COUNT; pid++) {
        if (ns.store.partitionSize(pid as PartitionId) === 0) continue;
        const was = holders(before, pid);
        const now = holders(after, pid);
        const targets = now.filter((id) => id !== self && !was.includes(id));
        if (targets.length === 0) continue;
        if (!was.includes(self) && was.some((id) => alive.has(id))) continue;
        next.push({ namespace: name, pid, targets });
      }
    }
    // Earlier work still owed to nodes that are still holders stays queued.
    const kept = this.#queue
      .map((t) => ({ ...t, targets: t.targets.filter((id) => holders(this.cluster.table(t.namespace), t.pid).includes(id)) }))
      .filter((t) => t.targets.length > 0 && !next.some((n) => n.namespace === t.namespace && n.pid === t.pid));
    this.#queue = [...kept, ...next];
    if (this.#queue.length > 0) this.log(`migrations: ${this.#queue.length} partition(s) to send`);
    if (!this.#running) void this.#run();
  }

  async #run(): Promise<void> {
    this.#running = true;
    try {
      for (let task = this.#queue.shift(); task; task = this.#queue.shift()) {
        this.#current = task;
        await this.#send(task);
        this.counters.migrate_partitions_sent++;
        await yieldToLoop(this.timers);
      }
    } finally {
      this.#current = undefined;
      this.#running = false;
    }
  }

  async #send(task: Task): Promise<void> {
    const ns = this.namespaces.get(task.namespace)!;
    const digests: Buffer[] = [];
    ns.store.forEach(task.pid as PartitionId, (d) => digests.push(Buffer.from(d)));
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < digests.length) {
        const record = ns.store.read(digests[next++]!);
        if (!record) continue; // gone since the listing
        const kind = record.tombstone ? WriteKind.DELETE : WriteKind.WRITE;
        for (const target of task.targets) {
          if (await this.replicas.push(task.namespace, record, kind, target)) this.counters.migrate_records_sent++;
          else this.counters.migrate_records_failed++;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(MIGRATE_WINDOW_RECORDS, digests.length) }, worker));
  }
}

function holders(t: PartitionTable, pid: number): string[] {
  const out: string[] = [];
  for (let p = 0; p < t.replicationFactor; p++) out.push(t.nodeAt(pid, p));
  return out;
}
