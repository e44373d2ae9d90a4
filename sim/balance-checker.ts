/**
 * The no-balloon checker (DESIGN.md, Migrations): during any rebalance no node stores more than
 * 1.1 x the larger of its share before and its share after. Sampled while the run goes, outside
 * the system under test.
 *
 * Units: records (index entries, tombstones included) rather than bytes: the simulated workload's
 * records are of similar size, and the count is exact on every simulated device.
 *
 * Share of a node under a partition table: the sum, over the partitions it holds in that table
 * (the first rf of the succession), of the partition's size (its largest copy among the nodes
 * up). A rebalance runs from one stable point (every node up agrees on the members and has no
 * migrations left) to the next; faults injected meanwhile (a crash mid-migration, a partition)
 * change the table several times within one rebalance, so "before and after" is every table the
 * node used since the last stable point. Each sample checks, per node up:
 *   stored <= 1.1 x max(share under each of those tables) + SLACK_RECORDS
 * (the slack covers the writes in flight, which reach a copy before the sample sees its master).
 * A quiesced node is exempt: it keeps every copy by design.
 */
import { PARTITION_COUNT, type PartitionId } from '../store/types.js';
import type { PartitionTable } from '../store/cluster/partition-table.js';
import type { SimClusterNode } from './cluster-node.js';
import { SIM_NAMESPACE } from './workload.js';

/** The invariant's factor. */
export const BALLOON_FACTOR_MAX = 1.1;
/** Records a sample may see above the bound: commands in flight (OPS_IN_FLIGHT_MAX) and their replicas. */
export const SLACK_RECORDS = 16;
/** Violations kept (one per node and rebalance is enough to see the pattern). */
const VIOLATIONS_MAX = 10;

export class BalanceChecker {
  /** Per node: the tables it used since the last stable point, by cluster key. */
  readonly #tables = new Map<string, Map<string, PartitionTable>>();
  readonly #reported = new Set<string>();
  readonly violations: string[] = [];
  samples = 0;
  stablePoints = 0;
  /** The largest stored / bound ratio seen (a figure for the summary). */
  worstRatio = 0;

  constructor(
    private readonly nodes: readonly SimClusterNode[],
    /** The invariant's factor (a test lowers it to show the checker finds a node over it). */
    private readonly factor = BALLOON_FACTOR_MAX,
  ) {}

  /**
   * Records a table a node switched to. Samples come only when the driver wakes, so a table used
   * only between two samples (a short split during the faults) would be missed, and with it the
   * share the node held under it: its copies of that time then look like a balloon.
   */
  noteTable(nodeId: string, table: PartitionTable): void {
    let seen = this.#tables.get(nodeId);
    if (!seen) this.#tables.set(nodeId, (seen = new Map()));
    seen.set(table.clusterKey, table);
  }

  sample(nowMs: number): void {
    const up = this.nodes.filter((n) => n.up && n.running?.cluster && n.ns);
    if (up.length === 0) return;
    this.samples++;
    const sizes = new Uint32Array(PARTITION_COUNT);
    const stored = new Map<string, number>();
    for (const n of up) {
      let total = 0;
      const store = n.ns!.store;
      for (let pid = 0; pid < PARTITION_COUNT; pid++) {
        const s = store.partitionSize(pid as PartitionId);
        total += s;
        if (s > sizes[pid]!) sizes[pid] = s;
      }
      stored.set(n.nodeId, total);
    }
    if (this.#stable(up)) {
      this.stablePoints++;
      this.#tables.clear();
    }
    for (const n of up) {
      const table = n.running!.cluster!.table(SIM_NAMESPACE);
      let seen = this.#tables.get(n.nodeId);
      if (!seen) this.#tables.set(n.nodeId, (seen = new Map()));
      seen.set(table.clusterKey, table);
      const share = Math.max(...[...seen.values()].map((t) => shareOf(t, n.nodeId, sizes)));
      // A quiesced node keeps every copy by design (it rejoins with a delta): not a balloon.
      if (table.members.some((m) => m.nodeId === n.nodeId && m.quiesced)) continue;
      const bound = this.factor * share + SLACK_RECORDS;
      const have = stored.get(n.nodeId)!;
      this.worstRatio = Math.max(this.worstRatio, share > 0 ? have / share : 0);
      if (have <= bound) continue;
      const k = `${n.nodeId}/${[...seen.keys()].join(',')}`;
      if (this.#reported.has(k) || this.violations.length >= VIOLATIONS_MAX) continue;
      this.#reported.add(k);
      this.violations.push(`balloon: at ${nowMs} ms node ${n.nodeId} stores ${have} records, over ${this.factor} x its largest share ${share} (+${SLACK_RECORDS}) under the tables of this rebalance (${[...seen.keys()].join(', ')})`);
    }
  }

  /** Every node up on the same members (exactly the nodes up) and key, nothing left to migrate. */
  #stable(up: readonly SimClusterNode[]): boolean {
    const ids = up.map((n) => n.nodeId).sort().join(',');
    const keys = new Set<string>();
    for (const n of up) {
      const c = n.running!.cluster!;
      if (c.table(SIM_NAMESPACE).members.map((m) => m.nodeId).sort().join(',') !== ids) return false;
      if (c.migrationsRemaining() !== 0) return false;
      keys.add(c.clusterKey());
    }
    return keys.size === 1;
  }
}

/** Records node holds as a holder under table t, given each partition's size. */
export function shareOf(t: PartitionTable, nodeId: string, sizes: Uint32Array): number {
  let share = 0;
  for (let pid = 0; pid < PARTITION_COUNT; pid++) if (t.positionOf(nodeId, pid) < t.replicationFactor) share += sizes[pid]!;
  return share;
}
