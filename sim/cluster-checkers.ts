/**
 * End-of-run checkers of the simulated cluster, kept outside the system under test:
 * - membership: every node up, on the same member list (all nodes) and cluster key;
 * - replicas: per partition, every replica holds exactly its master's records (digest,
 *   generation, LUT, void time, tombstone, set, bins), once migrations are done;
 * - the ledger of client commands against the masters, per key. Generations go up by one with
 *   every applied write or delete of a key, and replicas and migrations apply in version order,
 *   so: the master's generation is at least every acknowledged one (no acknowledged write lost);
 *   at most the number of commands that may have applied (no phantom writes); where it equals an
 *   acknowledged command's, it holds what that command wrote (a delete: a tombstone, so no
 *   resurrection); and two acknowledged commands never got the same generation (one of them
 *   would have been lost). While the cluster may have been split (a partition or heavy loss,
 *   until it re-formed) both sides accept writes (AP, as Aerospike without strong consistency)
 *   and one side's versions lose to the other's: the last two checks skip commands of those
 *   windows, the first two hold always.
 */
import type { Bin } from '../store/types.js';
import { PARTITION_COUNT, SYSTEM_SET_NAME, type PartitionId } from '../store/types.js';
import { partitionOf } from '../store/digest.js';
import { canonical } from './checkers.js';
import type { SimClusterNode } from './cluster-node.js';
import { SIM_NAMESPACE } from './workload.js';

export interface KeyOp {
  id: number;
  kind: string;
  key: string;
  digest: Buffer;
  issuedMs: number;
  /** When the answer came; Infinity when none came (it may still apply later). */
  doneMs: number;
  /** ok: acknowledged; no: did not write (refused, NOT_FOUND, KEY_BUSY, UNAVAILABLE); maybe: in doubt. */
  outcome: 'ok' | 'no' | 'maybe';
  generation: number;
  bins?: Bin[];
  /** A read's result code (reads are kept apart from the writes). */
  code?: number;
}

function binsText(bins: readonly Bin[]): string {
  return [...bins]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((b) => `${b.name}:${b.type}:${b.bytes.toString('hex')}`)
    .join(',');
}

export function checkMembership(nodes: readonly SimClusterNode[]): string[] {
  const out: string[] = [];
  const all = nodes.map((n) => n.nodeId).sort().join(',');
  const keys = new Set<string>();
  for (const n of nodes) {
    const hb = n.running?.cluster?.heartbeat;
    if (!n.up || !hb) {
      out.push(`${n.nodeId} is not running`);
      continue;
    }
    const s = hb.snapshot();
    const ids = s.members.map((m) => m.nodeId).sort().join(',');
    if (ids !== all) out.push(`${n.nodeId} sees members [${ids}], not [${all}]`);
    keys.add(s.clusterKey);
  }
  if (keys.size > 1) out.push(`nodes disagree on the cluster key: ${[...keys].join(' ')}`);
  return out;
}

/** One partition of one node as the checkers compare it (tombstones included). */
export function partitionImage(n: SimClusterNode, pid: number): Map<string, string> {
  const out = new Map<string, string>();
  const ns = n.ns;
  if (!ns) return out;
  const now = n.sched.nowMs;
  for (const v of ns.scanPartition(pid as PartitionId, { includeTombstones: true, includeExpired: true })) {
    if (v.set === SYSTEM_SET_NAME) continue;
    out.set(v.digest.toString('hex'), canonical(v, now));
  }
  return out;
}

/** Replicas that differ from their master, per the first running node's table. */
export function checkReplicas(nodes: readonly SimClusterNode[], limit = 10): string[] {
  const out: string[] = [];
  const cluster = nodes.find((n) => n.running?.cluster)?.running?.cluster;
  if (!cluster) return ['no node is running'];
  const table = cluster.table(SIM_NAMESPACE);
  const byId = new Map(nodes.map((n) => [n.nodeId, n]));
  for (let pid = 0; pid < PARTITION_COUNT && out.length < limit; pid++) {
    const master = byId.get(table.nodeAt(pid, 0))!;
    const want = partitionImage(master, pid);
    for (let pos = 1; pos < table.replicationFactor; pos++) {
      const replica = byId.get(table.nodeAt(pid, pos))!;
      const got = partitionImage(replica, pid);
      for (const [d, v] of want) {
        if (got.get(d) !== v && out.length < limit) out.push(`partition ${pid} record ${d}: master ${master.nodeId} ${v} | replica ${replica.nodeId} ${got.get(d) ?? 'missing'}`);
      }
      for (const [d, v] of got) if (!want.has(d) && out.length < limit) out.push(`partition ${pid} record ${d}: master ${master.nodeId} missing | replica ${replica.nodeId} ${v}`);
    }
  }
  return out;
}

const inSplit = (op: KeyOp, splits: ReadonlyArray<readonly [number, number]>): boolean => splits.some(([a, b]) => op.issuedMs <= b && op.doneMs >= a);

export function checkClusterLedger(nodes: readonly SimClusterNode[], ledger: ReadonlyMap<string, KeyOp[]>, splits: ReadonlyArray<readonly [number, number]>): string[] {
  const out: string[] = [];
  const cluster = nodes.find((n) => n.running?.cluster)?.running?.cluster;
  if (!cluster) return ['no node is running'];
  const table = cluster.table(SIM_NAMESPACE);
  const byId = new Map(nodes.map((n) => [n.nodeId, n]));
  for (const [key, ops] of ledger) {
    const digest = ops[0]!.digest;
    const master = byId.get(table.nodeAt(partitionOf(digest), 0))!;
    const v = master.ns?.readVersion(digest);
    const gen = v?.generation ?? 0;
    const acked = ops.filter((o) => o.outcome === 'ok');
    const maybe = ops.filter((o) => o.outcome === 'maybe').length;
    const held = v ? `gen=${gen} ${v.tombstone ? 'tombstone' : 'live'}` : 'nothing';
    const maxAcked = acked.reduce((m, o) => Math.max(m, o.generation), 0);
    if (gen < maxAcked) {
      const lost = acked.filter((o) => o.generation > gen).map((o) => `${o.kind}#${o.id} gen=${o.generation}`);
      out.push(`${key}: acknowledged ${lost.join(', ')} lost: master ${master.nodeId} holds ${held}`);
      continue;
    }
    if (gen > acked.length + maybe) out.push(`${key}: master ${master.nodeId} holds ${held}, more writes than the ${acked.length} acknowledged and ${maybe} in doubt`);
    const whole = acked.filter((o) => !inSplit(o, splits));
    const byGen = new Map<number, KeyOp>();
    for (const o of whole) {
      const other = byGen.get(o.generation);
      if (other) out.push(`${key}: ${other.kind}#${other.id} and ${o.kind}#${o.id} were both acknowledged with gen=${o.generation} (one of them was lost)`);
      byGen.set(o.generation, o);
    }
    const same = byGen.get(gen);
    if (!same || !v) continue;
    // A version written in a split at the same generation may have won by LUT (AP: the other side's write is lost).
    if (ops.some((o) => o.outcome !== 'no' && inSplit(o, splits) && (o.outcome === 'maybe' || o.generation === gen))) continue;
    if (same.kind === 'delete' && !v.tombstone) out.push(`${key}: delete#${same.id} acknowledged at gen=${gen}, but the master holds a live record at that generation (resurrected)`);
    if (same.kind !== 'delete' && v.tombstone) out.push(`${key}: ${same.kind}#${same.id} acknowledged at gen=${gen}, but the master holds a tombstone at that generation`);
    if (same.kind === 'put' && same.bins && !v.tombstone && binsText(v.bins) !== binsText(same.bins)) out.push(`${key}: put#${same.id} acknowledged at gen=${gen} with other bins than the master holds`);
  }
  return out;
}

/**
 * Reads while partitions move: a read that answered NOT_FOUND although a write that creates the
 * record (put, increment, touch) was acknowledged before the read was sent, and no delete that
 * could have come after it was in flight or in doubt before the read's answer. Reads in a
 * possible split are not judged (AP: the side a read reaches may not have the write).
 */
export function checkReads(ledger: ReadonlyMap<string, KeyOp[]>, reads: ReadonlyMap<string, KeyOp[]>, splits: ReadonlyArray<readonly [number, number]>, notFound: number): string[] {
  const out: string[] = [];
  for (const [key, rs] of reads) {
    const ops = ledger.get(key) ?? [];
    for (const r of rs) {
      if (r.code !== notFound || inSplit(r, splits)) continue;
      const created = ops.filter((o) => o.kind !== 'delete' && o.outcome === 'ok' && o.doneMs < r.issuedMs);
      const explained = (a: KeyOp): boolean => ops.some((d) => d.kind === 'delete' && d.outcome !== 'no' && d.issuedMs < r.doneMs && d.doneMs > a.issuedMs);
      const unexplained = created.filter((a) => !explained(a));
      if (unexplained.length > 0) {
        const a = unexplained.at(-1)!;
        out.push(`${key}: read#${r.id} at ${r.issuedMs} answered NOT_FOUND after ${a.kind}#${a.id} (gen=${a.generation}) was acknowledged at ${a.doneMs}`);
      }
    }
  }
  return out;
}
