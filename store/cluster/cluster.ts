/**
 * The cluster as the rest of the node sees it: the current member list (from the heartbeat),
 * the partition table computed from it, and the answers the info protocol needs (a ClusterView).
 *
 * Replication is not built yet, so the effective replication factor is 1: each partition has
 * exactly one copy, on its master, and `replicas` advertises only the master column. The table
 * itself is computed with the configured factor so that succession lists are already right.
 */
import type { ClusterView, NamespaceOwnership, Peer } from '../wire/info.js';
import { PARTITION_COUNT } from '../types.js';
import type { Heartbeat, MembershipSnapshot } from './heartbeat.js';
import { computePartitionTable, type PartitionTable } from './partition-table.js';

/** Copies per partition actually kept until replica writes exist. */
export const EFFECTIVE_REPLICATION_FACTOR = 1;

export interface ClusterDescription {
  nodeId: string;
  clusterName: string;
  clusterKey: string;
  clusterSize: number;
  /** Membership changes seen by this node's process. */
  generation: number;
  stable: boolean;
  replicationFactor: number;
  members: Array<{ nodeId: string; rackId?: number; service?: { host: string; port: number }; master: number; replica: number }>;
}

/** The description of a node that runs without heartbeats: a one-node cluster. */
export function singleNodeDescription(nodeId: string, clusterName: string, clusterKey: string, service: { host: string; port: number }): ClusterDescription {
  return {
    nodeId,
    clusterName,
    clusterKey,
    clusterSize: 1,
    generation: 1,
    stable: true,
    replicationFactor: 1,
    members: [{ nodeId, service, master: PARTITION_COUNT, replica: 0 }],
  };
}

export class Cluster implements ClusterView {
  #table: PartitionTable;
  #snapshot: MembershipSnapshot;
  /** masters[pid] = 1 when this node is the master of pid. */
  #masters = new Uint8Array(PARTITION_COUNT);
  #ownership: NamespaceOwnership;
  readonly #changeListeners: Array<(t: PartitionTable) => void> = [];

  constructor(
    readonly heartbeat: Heartbeat,
    readonly nodeId: string,
    private readonly name: string,
  ) {
    this.#snapshot = heartbeat.snapshot();
    this.#table = this.#build(this.#snapshot);
    this.#ownership = this.#makeOwnership();
    heartbeat.onChange((s) => {
      this.#snapshot = s;
      this.#table = this.#build(s);
      this.#ownership = this.#makeOwnership();
      for (const cb of this.#changeListeners) cb(this.#table);
    });
  }

  get table(): PartitionTable {
    return this.#table;
  }

  onTableChange(cb: (t: PartitionTable) => void): void {
    this.#changeListeners.push(cb);
  }

  isMaster(pid: number): boolean {
    return this.#masters[pid] === 1;
  }

  /** Node id of pid's master. */
  masterOf(pid: number): string {
    return this.#table.nodeAt(pid, 0);
  }

  partitionGeneration(): number {
    return this.#snapshot.generation;
  }

  peersGeneration(): number {
    return this.#snapshot.generation;
  }

  peers(): Peer[] {
    return this.heartbeat.peers().map((p) => ({ nodeId: p.nodeId, addresses: [{ host: p.service.host, port: p.service.port }] }));
  }

  ownership(): NamespaceOwnership {
    return this.#ownership;
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

  /** Per member: master and replica partition counts (replica counts are 0 while RF is 1). */
  counts(): Array<{ nodeId: string; master: number; replica: number }> {
    return this.#table.counts().map((c) => ({ ...c, replica: EFFECTIVE_REPLICATION_FACTOR > 1 ? c.replica : 0 }));
  }

  /** This node's view of the cluster (the `ferry-cluster` info command, `ferry cluster`). */
  describe(): ClusterDescription {
    const peers = new Map(this.heartbeat.peers().map((p) => [p.nodeId, p]));
    const self = this.heartbeat.selfService();
    return {
      nodeId: this.nodeId,
      clusterName: this.name,
      clusterKey: this.clusterKey(),
      clusterSize: this.clusterSize(),
      generation: this.#snapshot.generation,
      stable: this.isStable(),
      replicationFactor: EFFECTIVE_REPLICATION_FACTOR,
      members: this.counts().map((c) => {
        const m = this.#table.members.find((x) => x.nodeId === c.nodeId);
        const service = c.nodeId === this.nodeId ? self : peers.get(c.nodeId)?.service;
        return { ...c, ...(m?.rackId !== undefined ? { rackId: m.rackId } : {}), ...(service ? { service } : {}) };
      }),
    };
  }

  #build(s: MembershipSnapshot): PartitionTable {
    const t = computePartitionTable(s.members, EFFECTIVE_REPLICATION_FACTOR);
    const masters = new Uint8Array(PARTITION_COUNT);
    for (let pid = 0; pid < PARTITION_COUNT; pid++) if (t.nodeAt(pid, 0) === this.nodeId) masters[pid] = 1;
    this.#masters = masters;
    return t;
  }

  #makeOwnership(): NamespaceOwnership {
    const masters = this.#masters;
    return { regime: 0, replicas: [(pid) => masters[pid] === 1] };
  }
}
