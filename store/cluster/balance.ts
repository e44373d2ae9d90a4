/**
 * Partition balance: the exchange of partition versions after every membership change, the
 * rebalance plan computed from it, and the roles every partition has at run time (working
 * master, replication targets, what `replicas` advertises), in the spirit of Aerospike's
 * exchange.c and partition_balance.c.
 *
 * Rounds. A round starts when the cluster key changes (or a member restarted with the same key).
 * The node aborts the previous round's migrations, takes a snapshot of its versions and sends it
 * (EXCHANGE, tagged with the key) to every member; the answer carries the member's snapshot when
 * it is in the same round. Requests are repeated every tick to the members whose snapshot for
 * the key is missing, so a lost message or a member that switched later is caught up. Snapshots
 * of a key are discarded when the node leaves that key (a later round with the same key needs
 * fresh ones). Once every member's snapshot for the current key is here, the plan of every
 * partition is computed (partition-plan.ts): the same on every member, from the same snapshots.
 *
 * Until then (a few milliseconds, or until heartbeats agree) roles are provisional: the working
 * master is the first node in the new succession known to hold a FULL copy. Version changes are
 * announced (VERSIONS, key-tagged; stale keys ignored) and patch a live view of each member,
 * which decides the run-time roles: the final master becomes working master once its copy is
 * FULL; until then the plan's acting master serves, and replicates every write to all holders,
 * the filling ones included, so no acknowledged write is missing from a copy that becomes FULL.
 *
 * Hand-off: the acting master stops serving a partition just before it tells the final master
 * that it has everything (DONE); a command reaching either node in the instant between gets
 * UNAVAILABLE and the client retries. A copy that stops receiving writes (not a holder, not
 * serving) is no longer FULL, and is dropped once every holder's copy is FULL.
 *
 * Quiesce: a quiesced member is at the end of every succession (partition-table.ts), so the
 * plan makes its FULL replicas the working masters at once (no data moves for mastership) and
 * fills the nodes that take its holder places. A quiesced node never drops a copy (it is to be
 * restarted and rejoin with a delta); its copies that receive no writes turn SUBSET as usual.
 *
 * Concurrency: single event loop; every state change happens in a message, timer or migration
 * callback, and old-round callbacks check the key first.
 */
import { createHash } from 'node:crypto';
import { systemTimers, type TimerHandle, type Timers } from '../runtime/index.js';
import { PARTITION_COUNT, type PartitionId } from '../types.js';
import type { Namespace } from '../namespace/namespace.js';
import { dropPartition } from '../storage/drop-partition.js';
import type { Cluster } from './cluster.js';
import { RebalanceOp, type FabricRpc } from './fabric-rpc.js';
import { isSourceOf, planPartition, sourcesOf, type PartitionPlan } from './partition-plan.js';
import { PartitionState, type PartitionStateId, type PartitionVersions } from './partition-versions.js';

/** Period of exchange retries and the drop sweep. */
export const BALANCE_TICK_MS = 200;
/** An exchange request not answered in this long is repeated at the next tick. */
const EXCHANGE_TIMEOUT_MS = 1000;
/** Version announcements are fire-and-forget with this timeout (the periodic full state repairs a loss). */
const ANNOUNCE_TIMEOUT_MS = 2000;
/** Every this many ticks each node sends all its versions to every member (repairs lost announcements). */
const FULL_STATE_EVERY_TICKS = 5;

/** A migration this node has to send in the current round. */
export interface MigrationTask {
  key: string;
  namespace: string;
  pid: number;
  target: string;
  /** The target holds a subset: ship only what wins over its metadata. */
  delta: boolean;
}

interface Snapshot {
  key: string;
  /** Versions at the start of the sender's round, per namespace. */
  states: Map<string, Uint8Array>;
  /** Versions now (patched by announcements), per namespace. */
  live: Map<string, Uint8Array>;
  /** The sender's change sequence `live` reflects (older announcements are ignored). */
  seq: number;
  /** The sender's lineage at the start of its round, and now (see PartitionBalance.lineage). */
  lineage: string;
  liveLineage: string;
}

interface ExchangeMessage {
  key: string;
  from: string;
  states: Record<string, string>;
  now: Record<string, string>;
  seq: number;
  lineage: string;
  liveLineage: string;
}

/** An announcement: some changes, or (`full`) every version of every namespace. */
interface VersionsMessage {
  key: string;
  from: string;
  seq: number;
  lineage: string;
  ns?: string;
  changes?: Array<[number, number]>;
  full?: Record<string, string>;
}

export interface BalancedNamespace {
  ns: Namespace;
  versions: PartitionVersions;
}

const keyOf = (ns: string, pid: number): string => `${ns}/${pid}`;
const ALL_PIDS: readonly number[] = Array.from({ length: PARTITION_COUNT }, (_, i) => i);

export class PartitionBalance {
  #key = '';
  #ready = false;
  readonly #snaps = new Map<string, Snapshot>();
  /**
   * The members' snapshots of the previous round, kept while this round's exchange is not
   * complete: provisional roles consult them for members not heard from yet (see workingMaster).
   */
  #previous = new Map<string, Snapshot>();
  /** Per namespace and partition, the working master of the last round that was ready (provisional roles prefer it). */
  #previousWorking = new Map<string, string[]>();
  #mine: Snapshot | undefined;
  #plans = new Map<string, PartitionPlan[]>();
  /** Namespaces whose current plans have a partition with duplicates (duplicatesOf's fast path). */
  #withDuplicates = new Set<string>();
  readonly #handedOff = new Set<string>();
  /** As a holder still filling: the sources that have not said DONE yet. */
  readonly #expect = new Map<string, Set<string>>();
  #inFlight = new Set<string>();
  #generation = 0;
  /** Sequence of this node's version changes (announcements carry it). */
  #seq = 0;
  /**
   * The key of the last round whose migrations into this node all finished: every FULL copy
   * here is the same lineage as the other FULL copies of nodes with the same lineage. FULL copies
   * of different lineages (the cluster was split and both sides wrote) are duplicates the plan
   * merges (partition-plan.ts).
   */
  #lineage = '';
  /** The members of the previous round (a member missing from the next one forks the lineage). */
  #roundMembers: ReadonlySet<string> | undefined;
  #ticks = 0;
  readonly #unannounced = new Map<string, Array<[number, number]>>();
  #timer: TimerHandle | undefined;
  #planListener: (tasks: MigrationTask[]) => void = () => {};
  readonly counters = { rebalance_rounds: 0, rebalance_plans: 0, rebalance_replans: 0, partitions_dropped: 0, records_dropped: 0, migrate_rx_partitions_done: 0, lineage_forks: 0 };

  constructor(
    private readonly cluster: Cluster,
    private readonly rpc: FabricRpc,
    readonly namespaces: ReadonlyMap<string, BalancedNamespace>,
    private readonly timers: Timers = systemTimers,
    private readonly log: (msg: string) => void = () => {},
    /**
     * Whether a node alone may call its copies FULL. A node started with seeds and alone is
     * cut off from its cluster (or waiting to join it): its copies stay SUBSETs (it still
     * serves them), so they never outrank the copies of the cluster it rejoins.
     */
    private readonly promoteAlone = true,
  ) {
    rpc.serveJson(RebalanceOp.EXCHANGE, (m) => this.#onExchange(m as ExchangeMessage));
    rpc.serveJson(RebalanceOp.VERSIONS, (m) => this.#onVersions(m as VersionsMessage));
    cluster.onTableChange(() => this.#newRound());
  }

  /** Starts the first round and the tick. */
  start(): void {
    this.#newRound();
    this.#timer = this.timers.setInterval(() => this.#tick(), BALANCE_TICK_MS);
    this.#timer.unref();
  }

  stop(): void {
    this.timers.clearInterval(this.#timer);
  }

  /** Called with this node's migrations whenever a round's plan is ready. */
  onPlan(cb: (tasks: MigrationTask[]) => void): void {
    this.#planListener = cb;
  }

  get nodeId(): string {
    return this.cluster.nodeId;
  }

  get key(): string {
    return this.#key;
  }

  /** This node's lineage now (see #lineage; '' = none yet). */
  get lineage(): string {
    return this.#lineage;
  }

  get ready(): boolean {
    return this.#ready;
  }

  /** Goes up whenever roles may have changed (part of partition-generation). */
  generation(): number {
    return this.#generation;
  }

  // ------------------------------------------------------------------ roles

  /**
   * The node serving pid now; '' = none. A node started with seeds that is alone (joining, or
   * cut off from its cluster) serves only the copies it holds FULL: after a restart every copy
   * is a SUBSET, and clients that still know its address must not read old or missing records
   * there. (Give a node no seeds to run it alone.)
   */
  workingMaster(namespace: string, pid: number): string {
    const t = this.cluster.table(namespace);
    const master = t.nodeAt(pid, 0);
    if (!this.promoteAlone && t.members.length === 1) return this.#stateOf(namespace, master, pid) === PartitionState.FULL ? master : '';
    if (this.#ready) {
      const plan = this.#plans.get(namespace)?.[pid];
      if (!plan) return master;
      if (this.#handedOff.has(keyOf(namespace, pid)) || this.#stateOf(namespace, master, pid) === PartitionState.FULL) return master;
      return plan.acting;
    }
    // Provisional (the exchange is not complete): a member not heard from in this round counts
    // with its state of the previous round. Without that a FULL copy whose holder comes later in
    // the new succession than another FULL copy would serve too (it only knows its own state), and
    // both would take writes the other lacks: reads at one miss writes acknowledged by the other
    // (NOT_FOUND while partitions move) until the plan names one acting master.
    // The last ready round's working master goes on serving while its copy is FULL and it is a
    // member: nodes that switch keys at different moments then still agree on who serves.
    const previous = this.#previousWorking.get(namespace)?.[pid];
    if (previous !== undefined && t.positionOf(previous, pid) >= 0 && this.#provisionalStateOf(namespace, previous, pid) === PartitionState.FULL) return previous;
    const n = t.members.length;
    for (let p = 0; p < n; p++) {
      const id = t.nodeAt(pid, p);
      if (this.#provisionalStateOf(namespace, id, pid) === PartitionState.FULL) return id;
    }
    for (let p = 0; p < n; p++) {
      const id = t.nodeAt(pid, p);
      if (id !== this.cluster.nodeId && this.#provisionalStateOf(namespace, id, pid) === undefined) return id;
    }
    return master;
  }

  /** What `replicas` advertises: column 0 the working master, then the other FULL holders; '' = none. */
  columns(namespace: string, pid: number): string[] {
    const t = this.cluster.table(namespace);
    const w = this.workingMaster(namespace, pid);
    const out = [w];
    for (let p = 0; p < t.replicationFactor && out.length < t.replicationFactor; p++) {
      const id = t.nodeAt(pid, p);
      if (id !== w && this.#stateOf(namespace, id, pid) === PartitionState.FULL) out.push(id);
    }
    while (out.length < t.replicationFactor) out.push('');
    return out;
  }

  /** Nodes a working master sends each write to: every holder but itself, filling ones too. */
  replicationTargets(namespace: string, pid: number): string[] {
    const t = this.cluster.table(namespace);
    const out: string[] = [];
    for (let p = 0; p < t.replicationFactor; p++) {
      const id = t.nodeAt(pid, p);
      if (id !== this.cluster.nodeId) out.push(id);
    }
    return out;
  }

  /** Whether this node is quiesced in the current table (it keeps every copy it has). */
  isQuiesced(namespace?: string): boolean {
    return this.cluster.table(namespace).members.find((m) => m.nodeId === this.cluster.nodeId)?.quiesced === true;
  }

  /**
   * Duplicate resolution at transaction time: the members whose copies of pid may hold versions
   * this node's copy lacks while this node serves pid as working master: the sources it still
   * waits for in this round (a merge, copies of another lineage), or, when it serves as acting
   * master without being a holder (it receives from nobody), every other copy that counts as a
   * duplicate. [] when there is nothing to ask (the usual case: no rebalance of pid under way).
   */
  duplicatesOf(namespace: string, pid: number): string[] {
    // Every client write asks: outside rebalances this answers without computing roles.
    if (!this.#ready || (this.#expect.size === 0 && !this.#withDuplicates.has(namespace))) return [];
    const self = this.cluster.nodeId;
    // The partition's own conditions first: the working master (the costly part) is asked only
    // for a partition that has copies to ask.
    const waiting = this.#expect.size > 0 ? this.#expect.get(keyOf(namespace, pid)) : undefined;
    if (waiting && waiting.size > 0) return this.workingMaster(namespace, pid) === self ? [...waiting] : [];
    const plan = this.#plans.get(namespace)?.[pid];
    if (!plan?.duplicates || plan.holders.includes(self)) return [];
    return this.workingMaster(namespace, pid) === self ? plan.copies.filter((id) => id !== self) : [];
  }

  /** Per namespace: partitions still to receive, copies still to drop (migrate_rx / signals). */
  pending(namespace: string): { rx: number; drops: number } {
    const b = this.namespaces.get(namespace);
    if (!b) return { rx: 0, drops: 0 };
    const t = this.cluster.table(namespace);
    const keeps = this.isQuiesced(namespace);
    let rx = 0;
    let drops = 0;
    for (let pid = 0; pid < PARTITION_COUNT; pid++) {
      const s = b.versions.get(pid);
      const p = t.positionOf(this.cluster.nodeId, pid);
      if (p < t.replicationFactor) {
        if (s !== PartitionState.FULL || this.#expect.has(keyOf(namespace, pid))) rx++;
      } else if (s !== PartitionState.ABSENT && !keeps) drops++;
    }
    return { rx, drops };
  }

  /** Work left on this node apart from outgoing migrations (1 while the exchange is incomplete). */
  remaining(): number {
    let n = this.#ready ? 0 : 1;
    for (const name of this.namespaces.keys()) {
      const p = this.pending(name);
      n += p.rx + p.drops;
    }
    return n;
  }

  // ------------------------------------------------------------------ migration hooks

  /** Whether this node's plan makes it a source of `target` for pid (a pull asks it to send). */
  isSourceFor(namespace: string, pid: number, target: string): boolean {
    const plan = this.#ready ? this.#plans.get(namespace)?.[pid] : undefined;
    if (!plan) return false;
    const state = this.#snaps.get(target)?.states.get(namespace)?.[pid] ?? PartitionState.ABSENT;
    return isSourceOf(plan, target, state, this.cluster.nodeId);
  }

  /**
   * A source says its plan does not make it our source: the snapshots this node planned with
   * differ from the ones the source used (a member re-entered the round). Plan again from fresh
   * snapshots (the members answer with the ones they planned with).
   */
  replan(): void {
    if (!this.#ready) return;
    this.counters.rebalance_replans++;
    this.#newRound();
  }

  /** What this node still waits for in the current round: per source and namespace, the partitions. */
  owed(): Map<string, Map<string, number[]>> {
    const out = new Map<string, Map<string, number[]>>();
    if (!this.#ready) return out;
    for (const [k, waiting] of this.#expect) {
      const slash = k.lastIndexOf('/');
      const ns = k.slice(0, slash);
      const pid = Number(k.slice(slash + 1));
      for (const src of waiting) {
        let byNs = out.get(src);
        if (!byNs) out.set(src, (byNs = new Map()));
        const list = byNs.get(ns);
        if (list) list.push(pid);
        else byNs.set(ns, [pid]);
      }
    }
    return out;
  }

  /** Whether migrating pid to this node in this round is a fill: it held no copy when the round started. */
  isFillTarget(namespace: string, pid: number): boolean {
    return (this.#mine?.states.get(namespace)?.[pid] ?? PartitionState.ABSENT) === PartitionState.ABSENT;
  }

  /** Before the first record of a partition arrives: an ABSENT copy becomes a SUBSET. */
  markIncoming(namespace: string, pid: number): void {
    const b = this.namespaces.get(namespace);
    if (!b || b.versions.get(pid) !== PartitionState.ABSENT) return;
    this.#setOwn(namespace, [[pid, PartitionState.SUBSET]]);
  }

  /** A source finished sending these partitions to this node; 'stale' if another round, 'eagain' before the plan. */
  sourceDone(key: string, namespace: string, pids: readonly number[], from: string): 'ok' | 'stale' | 'eagain' {
    if (key !== this.#key) return 'stale';
    if (!this.#ready) return 'eagain';
    const full: Array<[number, PartitionStateId]> = [];
    for (const pid of pids) {
      const k = keyOf(namespace, pid);
      const waiting = this.#expect.get(k);
      if (!waiting) continue;
      waiting.delete(from);
      if (waiting.size > 0) continue;
      this.#expect.delete(k);
      this.counters.migrate_rx_partitions_done++;
      full.push([pid, PartitionState.FULL]);
    }
    if (full.length > 0) this.#setOwn(namespace, full);
    this.#advanceLineage();
    return 'ok';
  }

  /** Once nothing more is owed to this node in the round, its FULL copies are of the round's lineage. */
  #advanceLineage(): void {
    if (this.#expect.size > 0 || this.#lineage === this.#key) return;
    this.#lineage = this.#key;
    this.#seq++;
    this.#send({ key: this.#key, from: this.cluster.nodeId, seq: this.#seq, lineage: this.#lineage });
  }

  /**
   * Just before this node tells `target` it has sent everything: the acting master hands the
   * partition to the final master (and a copy that will receive no more writes is a SUBSET).
   */
  beforeDone(key: string, namespace: string, pid: number, target: string): boolean {
    if (key !== this.#key || !this.#ready) return false;
    const plan = this.#plans.get(namespace)?.[pid];
    if (!plan || plan.merge || plan.duplicates || plan.acting !== this.cluster.nodeId || target !== plan.holders[0]) return true;
    this.#handedOff.add(keyOf(namespace, pid));
    this.#generation++;
    if (!plan.holders.includes(this.cluster.nodeId)) this.#setOwn(namespace, [[pid, PartitionState.SUBSET]]);
    return true;
  }

  // ------------------------------------------------------------------ rounds

  #newRound(): void {
    const key = this.cluster.clusterKey();
    if (this.#ready) this.#previousWorking = this.#workingMasters();
    const previous = new Map<string, Snapshot>();
    for (const [id, s] of this.#snaps) {
      if (s.key !== this.#key && s.key !== key) continue;
      if (s.key === this.#key) previous.set(id, s);
      this.#snaps.delete(id);
    }
    this.#previous = previous;
    if (key !== this.#key) this.counters.rebalance_rounds++;
    this.#key = key;
    this.#ready = false;
    this.#plans = new Map();
    this.#withDuplicates = new Set();
    this.#handedOff.clear();
    this.#expect.clear();
    this.#inFlight = new Set();
    this.#generation++;
    this.#forkIfSplit(key);
    this.#planListener([]);
    const states = new Map<string, Uint8Array>();
    for (const [name, b] of this.namespaces) states.set(name, new Uint8Array(b.versions.states));
    this.#mine = { key, states, live: new Map(), seq: this.#seq, lineage: this.#lineage, liveLineage: this.#lineage };
    this.#exchangeWithMissing();
    this.#checkReady();
  }

  /**
   * A round whose members lack one of the previous round's: the cluster split, or a node left.
   * From now on this node's copies take writes the missing node's copies do not get, so they are
   * no longer the lineage they were: fork it. Every node of this side forks alike (the new value
   * depends on the old lineage and the new key only), so their copies stay one lineage; the other
   * side forks to another value, and when the sides re-form the plan sees duplicates and merges
   * both sides' writes (partition-plan.ts). Without the fork, a split healed before its round's
   * migrations finished left both sides' FULL copies one lineage, and a write acknowledged on one
   * side stayed on that side's copy only. (A node that left for good or crashed comes back with no
   * lineage, so survivors forking costs no merge then.) A node with no lineage yet keeps none.
   */
  #forkIfSplit(key: string): void {
    const members = this.#members();
    const previous = this.#roundMembers;
    this.#roundMembers = new Set(members);
    if (previous === undefined || this.#lineage === '') return;
    const now = this.#roundMembers;
    if ([...previous].every((id) => now.has(id))) return;
    this.#lineage = forkedLineage(this.#lineage, key);
    this.counters.lineage_forks++;
  }

  #members(): string[] {
    return this.cluster.table().members.map((m) => m.nodeId);
  }

  #exchangeWithMissing(): void {
    if (this.#ready || !this.#mine) return;
    const mine = this.#mine;
    const msg: ExchangeMessage = { key: mine.key, from: this.cluster.nodeId, states: encodeStates(mine.states), now: encodeStates(this.#ownNow()), seq: this.#seq, lineage: mine.lineage, liveLineage: this.#lineage };
    for (const id of this.#members()) {
      if (id === this.cluster.nodeId || this.#snaps.get(id)?.key === mine.key || this.#inFlight.has(id)) continue;
      this.#inFlight.add(id);
      const inFlight = this.#inFlight;
      void this.rpc.requestJson<ExchangeMessage | { key: string; from: string; wait: true }>(id, RebalanceOp.EXCHANGE, msg, EXCHANGE_TIMEOUT_MS).then((r) => {
        inFlight.delete(id);
        if (r && 'states' in r) this.#store(r);
      });
    }
  }

  #onExchange(m: ExchangeMessage): unknown {
    if (typeof m?.key !== 'string' || typeof m.from !== 'string' || typeof m.states !== 'object' || typeof m.now !== 'object' || !Number.isInteger(m.seq) || typeof m.lineage !== 'string' || typeof m.liveLineage !== 'string') return { status: 'bad' };
    this.#store(m);
    const mine = this.#mine;
    if (!mine || mine.key !== m.key) return { key: this.#key, from: this.cluster.nodeId, wait: true };
    return { key: mine.key, from: this.cluster.nodeId, states: encodeStates(mine.states), now: encodeStates(this.#ownNow()), seq: this.#seq, lineage: mine.lineage, liveLineage: this.#lineage };
  }

  #store(m: ExchangeMessage): void {
    const states = decodeStates(m.states);
    const live = decodeStates(m.now);
    if (!states || !live || !Number.isInteger(m.seq) || typeof m.lineage !== 'string' || typeof m.liveLineage !== 'string') return;
    // Answers and announcements travel on different connections: never trade a newer live view
    // for an older one.
    const prev = this.#snaps.get(m.from);
    if (prev && prev.key === m.key && prev.seq >= m.seq) return;
    this.#snaps.set(m.from, { key: m.key, states, live, seq: m.seq, lineage: m.lineage, liveLineage: m.liveLineage });
    // A member's live view replaced: roles may change (the cluster caches them per generation).
    this.#generation++;
    this.#checkReady();
  }

  #ownNow(): Map<string, Uint8Array> {
    return new Map([...this.namespaces].map(([name, b]) => [name, b.versions.states]));
  }

  #checkReady(): void {
    if (this.#ready || !this.#mine) return;
    const members = this.#members();
    if (!members.every((id) => id === this.cluster.nodeId || this.#snaps.get(id)?.key === this.#key)) return;
    this.#ready = true;
    this.#previous = new Map();
    this.#generation++;
    this.counters.rebalance_plans++;
    const tasks: MigrationTask[] = [];
    for (const name of this.namespaces.keys()) tasks.push(...this.#planNamespace(name));
    this.#advanceLineage();
    const count = tasks.length;
    this.log(`rebalance ${this.#key}: ${members.length} node(s), ${count} partition migration(s) to send`);
    this.#sweepDrops();
    this.#planListener(tasks);
  }

  #planNamespace(name: string): MigrationTask[] {
    const t = this.cluster.table(name);
    const self = this.cluster.nodeId;
    const none = new Uint8Array(PARTITION_COUNT);
    const statesOf = new Map<string, Uint8Array>();
    const lineages = new Map<string, string>();
    for (const m of t.members) {
      const snap = m.nodeId === self ? this.#mine! : this.#snaps.get(m.nodeId);
      statesOf.set(m.nodeId, snap?.states.get(name) ?? none);
      lineages.set(m.nodeId, snap?.lineage ?? '');
    }
    // One closure for all partitions (`at` moves): closures made per partition cost more than the plan.
    let at = 0;
    const v = (id: string): number => statesOf.get(id)![at]!;
    const lineageOf = (id: string): string => lineages.get(id)!;
    const plans: PartitionPlan[] = new Array<PartitionPlan>(PARTITION_COUNT);
    const cutOff = t.members.length === 1 && !this.promoteAlone;
    const changes: Array<[number, PartitionStateId]> = [];
    const tasks: MigrationTask[] = [];
    for (let pid = 0; pid < PARTITION_COUNT; pid++) {
      at = pid;
      const plan = planPartition(t, pid, v, lineageOf);
      plans[pid] = plan;
      const own = v(self);
      const holder = plan.holders.includes(self);
      if (holder) {
        const sources = sourcesOf(plan, self, v);
        if (own !== PartitionState.FULL && sources.length === 0) {
          if (!cutOff) changes.push([pid, PartitionState.FULL]);
        } else if (sources.length > 0) {
          if (own === PartitionState.ABSENT) changes.push([pid, PartitionState.SUBSET]);
          this.#expect.set(keyOf(name, pid), new Set(sources));
        }
      } else if (plan.acting !== self && own === PartitionState.FULL) changes.push([pid, PartitionState.SUBSET]);
      if (plan.acting !== self && !plan.copies.includes(self) && !plan.subsets.includes(self)) continue;
      for (const h of plan.holders) {
        if (!isSourceOf(plan, h, v(h), self)) continue;
        tasks.push({ key: this.#key, namespace: name, pid, target: h, delta: v(h) !== PartitionState.ABSENT });
      }
    }
    this.#plans.set(name, plans);
    if (plans.some((p) => p.duplicates)) this.#withDuplicates.add(name);
    this.#setOwn(name, changes);
    return tasks;
  }

  // ------------------------------------------------------------------ versions

  /** The state of a member's copy as this node knows it; undefined = unknown. */
  #stateOf(namespace: string, id: string, pid: number): number | undefined {
    if (id === this.cluster.nodeId) return this.namespaces.get(namespace)?.versions.get(pid);
    return this.#snaps.get(id)?.live.get(namespace)?.[pid];
  }

  /** The working master of every partition by the current (ready) round's plans, before the table's successor replaces them. */
  #workingMasters(): Map<string, string[]> {
    const out = new Map<string, string[]>();
    for (const [name, plans] of this.#plans) {
      out.set(
        name,
        plans.map((plan, pid) => (this.#handedOff.has(keyOf(name, pid)) || this.#stateOf(name, plan.holders[0]!, pid) === PartitionState.FULL ? plan.holders[0]! : plan.acting)),
      );
    }
    return out;
  }

  /** #stateOf, else the member's state in the previous round (provisional roles only). */
  #provisionalStateOf(namespace: string, id: string, pid: number): number | undefined {
    return this.#stateOf(namespace, id, pid) ?? this.#previous.get(id)?.live.get(namespace)?.[pid];
  }

  /**
   * Changes this node's versions and announces the change; the file is written at the next
   * tick. Nothing depends on it being written sooner: a FULL loads as SUBSET anyway, a copy with
   * records loads as SUBSET whatever the file says, and a drop not yet saved is done again.
   */
  #liveLineageOf(id: string): string | undefined {
    if (id === this.cluster.nodeId) return this.#lineage;
    const snap = this.#snaps.get(id);
    return snap?.key === this.#key ? snap.liveLineage : undefined;
  }

  #setOwn(namespace: string, changes: Array<[number, PartitionStateId]>): void {
    const b = this.namespaces.get(namespace)!;
    const changed = changes.filter(([pid, s]) => b.versions.set(pid, s));
    if (changed.length === 0) return;
    this.#generation++;
    this.#announce(namespace, changed);
  }

  /** Announces changes at the next turn of the event loop, together with any made meanwhile. */
  #announce(namespace: string, changes: Array<[number, number]>): void {
    const pending = this.#unannounced.get(namespace);
    if (pending) pending.push(...changes);
    else this.#unannounced.set(namespace, [...changes]);
    if (this.#unannounced.size > 1 || pending) return;
    this.timers.setImmediate(() => {
      const all = [...this.#unannounced];
      this.#unannounced.clear();
      for (const [ns, c] of all) {
        this.#seq++;
        this.#send({ key: this.#key, from: this.cluster.nodeId, seq: this.#seq, lineage: this.#lineage, ns, changes: c });
      }
    });
  }

  #send(msg: VersionsMessage): void {
    for (const id of this.#members()) if (id !== this.cluster.nodeId) void this.rpc.requestJson(id, RebalanceOp.VERSIONS, msg, ANNOUNCE_TIMEOUT_MS);
  }

  #onVersions(m: VersionsMessage): unknown {
    if (typeof m?.key !== 'string' || typeof m.from !== 'string' || !Number.isInteger(m.seq) || typeof m.lineage !== 'string') return { status: 'bad' };
    const snap = this.#snaps.get(m.from);
    if (snap?.key !== m.key || m.seq < snap.seq || (m.seq === snap.seq && m.full === undefined)) return { status: 'stale' };
    if (m.full !== undefined) {
      const live = typeof m.full === 'object' ? decodeStates(m.full) : undefined;
      if (!live) return { status: 'bad' };
      // The periodic full state mostly repeats what the announcements said: roles (and so
      // partition-generation, which makes every client fetch the map again) change only if a
      // version differs.
      if (!sameStates(snap.live, live)) this.#generation++;
      snap.live = live;
      snap.seq = m.seq;
      snap.liveLineage = m.lineage;
      return { status: 'ok' };
    }
    const live = typeof m.ns === 'string' ? snap.live.get(m.ns) : undefined;
    snap.liveLineage = m.lineage;
    if (m.ns === undefined) {
      snap.seq = m.seq;
      if (this.#ready && m.key === this.#key) this.#sweepDrops();
      return { status: 'ok' };
    }
    if (!live || !Array.isArray(m.changes)) return { status: 'bad' };
    snap.seq = m.seq;
    const pids: number[] = [];
    let changed = false;
    for (const c of m.changes) {
      if (!Array.isArray(c) || !Number.isInteger(c[0]) || c[0]! < 0 || c[0]! >= PARTITION_COUNT || !(c[1]! >= 0 && c[1]! <= PartitionState.FULL)) continue;
      if (live[c[0]!] !== c[1]!) changed = true;
      live[c[0]!] = c[1]!;
      pids.push(c[0]!);
    }
    if (changed) this.#generation++;
    if (this.#ready && m.key === this.#key) this.#sweepDrops(m.ns, pids);
    return { status: 'ok' };
  }

  // ------------------------------------------------------------------ drops

  #tick(): void {
    const fullStateTick = ++this.#ticks % FULL_STATE_EVERY_TICKS === 0;
    if (!this.#ready) this.#exchangeWithMissing();
    else if (fullStateTick) this.#sweepDrops(); // announcements sweep what they change at once
    if (fullStateTick) this.#send({ key: this.#key, from: this.cluster.nodeId, seq: this.#seq, lineage: this.#lineage, full: encodeStates(this.#ownNow()) });
    for (const [name, b] of this.namespaces) {
      try {
        b.versions.flush();
      } catch (err) {
        this.log(`namespace ${name}: ${(err as Error).message} (retried at the next tick)`);
      }
    }
  }

  /** Drops the copies this node holds that no holder needs any more (all holders FULL). */
  #sweepDrops(only?: string, pids?: readonly number[]): void {
    if (!this.#ready) return;
    const self = this.cluster.nodeId;
    for (const [name, b] of this.namespaces) {
      if (only !== undefined && name !== only) continue;
      if (this.isQuiesced(name)) continue;
      const t = this.cluster.table(name);
      const drops: Array<[number, PartitionStateId]> = [];
      for (const pid of pids ?? ALL_PIDS) {
        if (b.versions.get(pid) === PartitionState.ABSENT) continue;
        if (t.positionOf(self, pid) < t.replicationFactor || this.workingMaster(name, pid) === self) continue;
        let allFull = true;
        for (let p = 0; p < t.replicationFactor && allFull; p++) {
          const h = t.nodeAt(pid, p);
          allFull = this.#stateOf(name, h, pid) === PartitionState.FULL && this.#liveLineageOf(h) === this.#key;
        }
        if (!allFull) continue;
        this.counters.records_dropped += dropPartition(b.ns.store, pid as PartitionId);
        this.counters.partitions_dropped++;
        drops.push([pid, PartitionState.ABSENT]);
      }
      this.#setOwn(name, drops);
    }
  }
}

/** The lineage a split side forks to from `lineage` in the round of `key` (see #forkIfSplit); never equal to a key. */
export function forkedLineage(lineage: string, key: string): string {
  return `fork-${createHash('sha256').update(lineage).update('>').update(key).digest('hex').slice(0, 16)}`;
}

/** Same namespaces with the same versions. */
function sameStates(a: ReadonlyMap<string, Uint8Array>, b: ReadonlyMap<string, Uint8Array>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || Buffer.compare(v, w) !== 0) return false;
  }
  return true;
}

function encodeStates(m: Map<string, Uint8Array>): Record<string, string> {
  return Object.fromEntries([...m].map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
}

function decodeStates(r: Record<string, string>): Map<string, Uint8Array> | undefined {
  const out = new Map<string, Uint8Array>();
  for (const [k, v] of Object.entries(r)) {
    if (typeof v !== 'string') return undefined;
    const b = Buffer.from(v, 'base64');
    if (b.length !== PARTITION_COUNT || b.some((x) => x > PartitionState.FULL)) return undefined;
    out.set(k, new Uint8Array(b));
  }
  return out;
}
