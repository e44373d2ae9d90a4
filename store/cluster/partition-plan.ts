/**
 * The rebalance plan of one partition, a pure function of the partition table and the partition
 * versions every member announced in the exchange for the current cluster key. Every member
 * computes it from the same inputs, so all agree without further messages.
 *
 * - holders: the table's first rf nodes (position 0 is the final master).
 * - acting: the working master while the final master is not yet full: the first node in
 *   succession order holding a FULL copy; if no member has a full copy but some hold subsets
 *   (the whole cluster restarted, or the full copies left), the first subset holder ("merge").
 * - sources(h): who must send to holder h before h's copy is full: nobody if h is full or the
 *   partition is fresh (no member has any copy); the acting master normally; in a merge, every
 *   other subset holder (each may have records the others lack).
 *
 * At run time (see balance.ts) the working master is the final master once its copy is FULL,
 * else `acting`. Copies that are neither holders nor the acting master stop receiving writes:
 * a FULL one is demoted to SUBSET at plan time, and every such copy is dropped once all
 * holders are FULL.
 */
import { PartitionState } from './partition-versions.js';
import type { PartitionTable } from './partition-table.js';

export interface PartitionPlan {
  holders: string[];
  acting: string;
  fresh: boolean;
  merge: boolean;
  /** Members with a SUBSET copy, in succession order. */
  subsets: string[];
}

/** versionOf(nodeId): the state that member announced for this partition. */
export function planPartition(table: PartitionTable, pid: number, versionOf: (nodeId: string) => number): PartitionPlan {
  const n = table.members.length;
  const order: string[] = [];
  for (let p = 0; p < n; p++) order.push(table.nodeAt(pid, p));
  const holders = order.slice(0, table.replicationFactor);
  const full = order.find((id) => versionOf(id) === PartitionState.FULL);
  const subsets = order.filter((id) => versionOf(id) === PartitionState.SUBSET);
  if (full !== undefined) return { holders, acting: full, fresh: false, merge: false, subsets };
  if (subsets.length > 0) return { holders, acting: subsets[0]!, fresh: false, merge: true, subsets };
  return { holders, acting: holders[0]!, fresh: true, merge: false, subsets };
}

/** Who must send to holder h (see the module note). */
export function sourcesOf(plan: PartitionPlan, h: string, versionOf: (nodeId: string) => number): string[] {
  if (plan.fresh || versionOf(h) === PartitionState.FULL) return [];
  if (plan.merge) return plan.subsets.filter((id) => id !== h);
  return [plan.acting];
}
