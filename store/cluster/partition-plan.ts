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
 * - duplicates: copies of different lineages (nodes whose last completed rounds differ: the
 *   cluster was split and each side went on writing, or a node alone served writes). The copies
 *   that count are the FULL ones and the SUBSETs of nodes with a lineage (a node restarted has
 *   none until a round completes: its data is older than the cluster's). Then every holder, full
 *   or not, receives from every such copy but its own (deltas: each ships what wins), so all
 *   holders end with the winning version of every record.
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
  duplicates: boolean;
  /** Members whose copies count for duplicates, in succession order (see the module note). */
  copies: string[];
  /** Members with a SUBSET copy, in succession order. */
  subsets: string[];
}

/**
 * versionOf(nodeId): the state that member announced for this partition; lineageOf(nodeId): the
 * member's lineage (FULL copies of equal lineage are identical). One pass over the succession:
 * this runs for every partition of every namespace at every round.
 */
export function planPartition(table: PartitionTable, pid: number, versionOf: (nodeId: string) => number, lineageOf: (nodeId: string) => string = () => ''): PartitionPlan {
  const n = table.members.length;
  const rf = table.replicationFactor;
  const holders: string[] = [];
  const subsets: string[] = [];
  const copies: string[] = [];
  let firstFull: string | undefined;
  let lineage: string | undefined;
  let duplicates = false;
  for (let p = 0; p < n; p++) {
    const id = table.nodeAt(pid, p);
    if (p < rf) holders.push(id);
    const v = versionOf(id);
    if (v === PartitionState.ABSENT) continue;
    if (v === PartitionState.SUBSET) subsets.push(id);
    else firstFull ??= id;
    if (v === PartitionState.FULL || lineageOf(id) !== '') {
      copies.push(id);
      const l = lineageOf(id);
      if (lineage === undefined) lineage = l;
      else if (l !== lineage) duplicates = true;
    }
  }
  const base = { holders, subsets, copies, duplicates };
  if (firstFull !== undefined) return { ...base, acting: firstFull, fresh: false, merge: false };
  if (subsets.length > 0) return { ...base, acting: subsets[0]!, fresh: false, merge: true };
  return { ...base, acting: holders[0]!, fresh: true, merge: false };
}

/** Who must send to holder h (see the module note). */
export function sourcesOf(plan: PartitionPlan, h: string, versionOf: (nodeId: string) => number): string[] {
  if (plan.duplicates) return plan.copies.filter((id) => id !== h);
  if (plan.fresh || versionOf(h) === PartitionState.FULL) return [];
  if (plan.merge) return plan.subsets.filter((id) => id !== h);
  return [plan.acting];
}

/** sourcesOf(plan, h, versionOf).includes(source), without building the list. */
export function isSourceOf(plan: PartitionPlan, h: string, stateOfH: number, source: string): boolean {
  if (h === source) return false;
  if (plan.duplicates) return plan.copies.includes(source);
  if (plan.fresh || stateOfH === PartitionState.FULL) return false;
  if (plan.merge) return plan.subsets.includes(source);
  return plan.acting === source;
}
