/**
 * Dropping a partition's copy (a superseded copy after a rebalance): every index entry of the
 * partition, records and tombstones, is forgotten; the space they took on the device is freed
 * by defragmentation like any overwritten record. Kept apart from record-store.ts, whose
 * `drop` of one digest it uses.
 *
 * A cold restart may find the dropped records again on blocks not yet defragmented; the
 * partition is then a SUBSET copy again and is dropped again once its holders are FULL (see
 * cluster/partition-versions.ts).
 */
import type { PartitionId } from '../types.js';
import type { RecordStore } from './record-store.js';

/** Drops every entry of partition pid; returns how many. */
export function dropPartition(store: RecordStore, pid: PartitionId): number {
  if (store.partitionSize(pid) === 0) return 0;
  const digests: Buffer[] = [];
  store.forEach(pid, (d) => digests.push(Buffer.from(d)));
  let n = 0;
  for (const d of digests) if (store.drop(d)) n++;
  return n;
}
