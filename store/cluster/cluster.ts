/**
 * The cluster as the rest of the node sees it: the current member list (from the heartbeat),
 * the partition tables computed from it (one per replication factor in use), and the answers
 * the info protocol needs (a ClusterView).
 *
 * Each namespace's effective replication factor is min(configured, cluster size). Without
 * partition roles (a bare cluster, tests) a node advertises column i of `replicas` for the
 * partitions where it is at position i. With roles (balance.ts, set by the node assembly) column
 * 0 is the working master (the final master once its copy is full, else the acting master) and
 * the other columns the holders whose copies are full; commands are routed the same way.
 */
import type { ClusterView, NamespaceOwnership, Peer } from '../wire/info.js';
import { PARTITION_COUNT } from '../types.js';
import type { Heartbeat, MembershipSnapshot } from './heartbeat.js';
import { computePartitionTable, type PartitionTable } from './partition-table.js';

/** Replication factor of a namespace the cluster was not told about. */
const REPLICATION_FACTOR_UNKNOWN_NS = 1;
/** positions[pid] when this node is not among a partition's first rf nodes. */
const NO_ROLE = 255;

export interface ClusterDescription {
  nodeId: string;
  clusterName: string;
  clusterKey: string;
  clusterSize: number;
  /** Membership changes seen by this node's process. */
  generation: number;
  stable: boolean;
  /** Partitions this node still has to send. */
  migrationsRemaining: number;
  /** This node announces itself quiesced (absent from older nodes). */
  quiesced?: boolean;
  /** Per namespace: partitions still to send (tx) and to receive (rx) on this node, stored bytes (absent from older nodes). */
  migrations?: Record<string, { tx: number; rx: number; storedBytes: number }>;
  /** Effective replication factor per namespace. */
  replicationFactors: Record<string, number>;
  /** Counts for the largest replication factor in use. */
  replicationFactor: number;
  members: Array<{ nodeId: string; rackId?: number; quiesced?: true; service?: { host: string; port: number }; master: number; replica: number }>;
}

/** The description of a node that runs without heartbeats: a one-node cluster. */
export function singleNodeDescription(nodeId: string, clusterName: string, clusterKey: string, service: { host: string; port: number }, namespaces: readonly string[] = []): ClusterDescription {
  return {
    nodeId,
    clusterName,
    clusterKey,
    clusterSize: 1,
    generation: 1,
    stable: true,
    migrationsRemaining: 0,
    replicationFactors: Object.fromEntries(namespaces.map((n) => [n, 1])),
    replicationFactor: 1,
    members: [{ nodeId, service, master: PARTITION_COUNT, replica: 0 }],
  };
}

interface Layout {
  table: PartitionTable;
  /** positions[pid]: this node's position in pid's succession if < rf, else NO_ROLE. */
  positions: Uint8Array;
  ownership: NamespaceOwnership;
}

/** Run-time partition roles (balance.ts). */
export interface PartitionRoles {
  workingMaster(namespace: string, pid: number): string;
  /** `replicas` columns of pid; '' where no node serves that column. */
  columns(namespace: string, pid: number): string[];
  replicationTargets(namespace: string, pid: number): string[];
  generation(): number;
  /** Work left on this node besides outgoing migrations. */
  remaining(): number;
  /** The lineage of this node's copies ('' = none yet; see balance.ts). */
  lineage?(): string;
  namespaceStats?(namespace: string): Record<string, number>;
  /** Per namespace: partitions to send, to receive, and stored bytes on this node. */
  migrationsByNamespace?(): Record<string, { tx: number; rx: number; storedBytes: number }>;
}

export class Cluster implements ClusterView {
  #snapshot: MembershipSnapshot;
  /** By configured replication factor. */
  #layouts = new Map<number, Layout>();
  readonly #changeListeners: Array<() => void> = [];
  readonly #owned = new Map<string, { generation: number; ownership: NamespaceOwnership }>();
  readonly #targets = new Map<string, { generation: number; byPid: Array<string[] | undefined> }>();
  /** Set by the node assembly once migrations exist. */
  migrationCounter: (() => number) | undefined;
  /** Set by the node assembly once partition versions and the exchange exist. */
  roles: PartitionRoles | undefined;
  /** Set by the node assembly: index entries (records and tombstones) of one partition. */
  partitionEntries: ((namespace: string, pid: number) => number) | undefined;

  constructor(
    readonly heartbeat: Heartbeat,
    readonly nodeId: string,
    private readonly name: string,
    private readonly replicationFactors: Readonly<Record<string, number>> = {},
  ) {
    this.#snapshot = heartbeat.snapshot();
    this.#rebuild();
    heartbeat.onChange((s) => {
      this.#snapshot = s;
      this.#rebuild();
      for (const cb of this.#changeListeners) cb();
    });
  }

  onTableChange(cb: () => void): void {
    this.#changeListeners.push(cb);
  }

  /** The table of a namespace (of its replication factor). */
  table(namespace?: string): PartitionTable {
    return this.#layout(namespace).table;
  }

  /** Masters do not depend on the replication factor (replicas are chosen after the master). */
  isMaster(pid: number): boolean {
    return this.#layout(undefined).positions[pid] === 0;
  }

  masterOf(pid: number, namespace?: string): string {
    if (this.roles && namespace !== undefined) return this.roles.workingMaster(namespace, pid);
    return this.#layout(undefined).table.nodeAt(pid, 0);
  }

  /**
   * True when this node executes writes of pid in namespace now. With roles: column 0 of the
   * ownership computed once per partition generation (the roles' working master), so a write
   * does not evaluate the roles again.
   */
  isWorkingMaster(namespace: string, pid: number): boolean {
    if (this.roles) return this.ownership(namespace).replicas[0]!(pid);
    return this.isMaster(pid);
  }

  /**
   * Where the working master sends each write of pid: every other holder, filling ones too.
   * Computed once per partition and partition generation; the array is shared (frozen): callers
   * must not change it.
   */
  replicationTargets(namespace: string, pid: number): string[] {
    const generation = this.partitionGeneration();
    let cached = this.#targets.get(namespace);
    if (!cached || cached.generation !== generation) {
      cached = { generation, byPid: new Array<string[] | undefined>(PARTITION_COUNT) };
      this.#targets.set(namespace, cached);
    }
    let t = cached.byPid[pid];
    if (!t) {
      t = Object.freeze(this.roles ? this.roles.replicationTargets(namespace, pid) : this.replicasOf(namespace, pid).filter((id) => id !== this.nodeId)) as string[];
      cached.byPid[pid] = t;
    }
    return t;
  }

  /** Node ids holding replica copies (positions 1..rf-1) of pid in namespace. */
  replicasOf(namespace: string, pid: number): string[] {
    const t = this.#layout(namespace).table;
    const out: string[] = [];
    for (let p = 1; p < t.replicationFactor; p++) out.push(t.nodeAt(pid, p));
    return out;
  }

  /** True when this node is master or replica of pid in namespace. */
  holds(namespace: string, pid: number): boolean {
    return this.#layout(namespace).positions[pid] !== NO_ROLE;
  }

  partitionGeneration(): number {
    return this.#snapshot.generation + (this.roles?.generation() ?? 0);
  }

  peersGeneration(): number {
    return this.#snapshot.generation;
  }

  peers(): Peer[] {
    return this.heartbeat.peers().map((p) => ({ nodeId: p.nodeId, addresses: [{ host: p.service.host, port: p.service.port }] }));
  }

  ownership(namespace: string): NamespaceOwnership {
    const roles = this.roles;
    if (!roles) return this.#layout(namespace).ownership;
    // Roles change with every version announcement; the columns of all partitions are computed
    // once per partition generation (every command and every `replicas` answer reads them).
    const generation = this.partitionGeneration();
    const cached = this.#owned.get(namespace);
    if (cached && cached.generation === generation) return cached.ownership;
    const rf = this.#layout(namespace).table.replicationFactor;
    const bits = Array.from({ length: rf }, () => new Uint8Array(PARTITION_COUNT));
    for (let pid = 0; pid < PARTITION_COUNT; pid++) {
      const cols = roles.columns(namespace, pid);
      for (let i = 0; i < rf; i++) if (cols[i] === this.nodeId) bits[i]![pid] = 1;
    }
    const ownership = { regime: 0, replicas: bits.map((b) => (pid: number) => b[pid] === 1) };
    this.#owned.set(namespace, { generation, ownership });
    return ownership;
  }

  clusterName(): string {
    return this.name;
  }

  clusterSize(): number {
    return this.#snapshot.members.length;
  }

  clusterKey(): string {
    return this.#snapshot.clusterKey;
  }

  isStable(): boolean {
    return this.heartbeat.integrity();
  }

  /** `namespace/<ns>` additions: configured and effective replication factor, entries by role. */
  namespaceStats(namespace: string): Record<string, number> {
    const l = this.#layout(namespace);
    let master = 0;
    let replica = 0;
    const size = this.partitionEntries;
    if (size) {
      for (let pid = 0; pid < PARTITION_COUNT; pid++) {
        const p = l.positions[pid]!;
        if (p === NO_ROLE) continue;
        const n = size(namespace, pid);
        if (p === 0) master += n;
        else replica += n;
      }
    }
    return {
      'replication-factor': this.replicationFactors[namespace] ?? REPLICATION_FACTOR_UNKNOWN_NS,
      effective_replication_factor: l.table.replicationFactor,
      master_objects: master,
      prole_objects: replica,
      ...(this.roles?.namespaceStats?.(namespace) ?? {}),
    };
  }

  migrationsRemaining(): number {
    return (this.migrationCounter?.() ?? 0) + (this.roles?.remaining() ?? 0);
  }

  /** This node's view of the cluster (the `ferry-cluster` info command, `ferry cluster`). */
  describe(): ClusterDescription {
    const peers = new Map(this.heartbeat.peers().map((p) => [p.nodeId, p]));
    const self = this.heartbeat.selfService();
    const rfMax = Math.max(REPLICATION_FACTOR_UNKNOWN_NS, ...Object.values(this.replicationFactors));
    const table = this.#layoutFor(rfMax).table;
    return {
      nodeId: this.nodeId,
      clusterName: this.name,
      clusterKey: this.clusterKey(),
      clusterSize: this.clusterSize(),
      generation: this.#snapshot.generation,
      stable: this.isStable(),
      migrationsRemaining: this.migrationsRemaining(),
      quiesced: this.heartbeat.quiesced,
      ...(this.roles?.migrationsByNamespace ? { migrations: this.roles.migrationsByNamespace() } : {}),
      replicationFactors: Object.fromEntries(Object.keys(this.replicationFactors).map((ns) => [ns, this.table(ns).replicationFactor])),
      replicationFactor: table.replicationFactor,
      members: table.counts().map((c) => {
        const m = table.members.find((x) => x.nodeId === c.nodeId);
        const service = c.nodeId === this.nodeId ? self : peers.get(c.nodeId)?.service;
        return { ...c, ...(m?.rackId !== undefined ? { rackId: m.rackId } : {}), ...(m?.quiesced ? { quiesced: true as const } : {}), ...(service ? { service } : {}) };
      }),
    };
  }

  #layout(namespace: string | undefined): Layout {
    const rf = namespace === undefined ? REPLICATION_FACTOR_UNKNOWN_NS : (this.replicationFactors[namespace] ?? REPLICATION_FACTOR_UNKNOWN_NS);
    return this.#layoutFor(rf);
  }

  #layoutFor(rf: number): Layout {
    let l = this.#layouts.get(rf);
    if (!l) {
      l = this.#build(rf);
      this.#layouts.set(rf, l);
    }
    return l;
  }

  #rebuild(): void {
    const rfs = new Set([REPLICATION_FACTOR_UNKNOWN_NS, ...Object.values(this.replicationFactors)]);
    this.#layouts = new Map([...rfs].map((rf) => [rf, this.#build(rf)]));
  }

  #build(rf: number): Layout {
    const table = computePartitionTable(this.#snapshot.members, rf);
    const positions = new Uint8Array(PARTITION_COUNT).fill(NO_ROLE);
    for (let pid = 0; pid < PARTITION_COUNT; pid++) {
      const p = table.positionOf(this.nodeId, pid);
      if (p < table.replicationFactor) positions[pid] = p;
    }
    const replicas = Array.from({ length: table.replicationFactor }, (_, i) => (pid: number) => positions[pid] === i);
    return { table, positions, ownership: { regime: 0, replicas } };
  }
}
