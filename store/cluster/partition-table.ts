/**
 * The partition table: for every partition, the ordered succession of member nodes. Position 0
 * is the master, positions 1..rf-1 the replicas, the rest are non-replicas in preference order
 * (the nodes that would take over, in that order, if the ones before them left).
 *
 * Pure and deterministic: every node computes the same table from the same member list, so no
 * node ever has to send the table to another. The order is rendezvous hashing: each (node id,
 * partition id) pair gets a 32-bit score and nodes are sorted by descending score (ties, which
 * need equal scores, by node id). A node leaving therefore changes nothing for partitions where
 * it was not among the first rf; a node joining moves only the partitions it scores highest on.
 *
 * Racks: when any member has a rack id, replicas are chosen in score order but skipping nodes on
 * a rack that already holds a copy, as long as an unused rack is left; with fewer racks than rf
 * the remaining copies fall back to score order. Masters stay where the hash puts them.
 *
 * Quiesce: a member announced as quiesced (about to be restarted) goes to the end of every
 * succession, after all the others in their usual order, so it masters nothing and (when the
 * cluster has more than rf active members) holds nothing; the other members keep exactly the
 * order they would have without it, so its departure later moves nothing. When every member is
 * quiesced the flag is ignored (someone has to hold the data).
 *
 * The cluster key is derived from the member list (ids and racks), so it changes with every
 * membership change and is the same on every node that sees the same members.
 */
import assert from 'node:assert/strict';
import { PARTITION_COUNT } from '../types.js';

/** Largest cluster (and so the largest replication factor) the table supports. */
export const CLUSTER_SIZE_MAX = 64;
/** Largest replication factor a namespace may ask for. */
export const REPLICATION_FACTOR_MAX = 8;

export interface Member {
  /** Node id: 1 to 16 hex digits, unique in the cluster. */
  nodeId: string;
  /** Rack id (0..1_000_000); absent = no rack. */
  rackId?: number;
  /** Announced as quiesced: moved to the end of every succession (present only when true). */
  quiesced?: true;
}

export class PartitionTableError extends Error {
  readonly code = 'PARTITION_TABLE';
  constructor(message: string) {
    super(message);
    this.name = 'PartitionTableError';
  }
}

export interface PartitionTable {
  /** Members sorted by node id; `succession` holds indexes into this list. */
  readonly members: readonly Member[];
  /** Effective replication factor: min(requested, cluster size). */
  readonly replicationFactor: number;
  /** The cluster key (hex, 12 digits), derived from the member list. */
  readonly clusterKey: string;
  /** The succession of partition pid as indexes into `members`. */
  succession(pid: number): readonly number[];
  /** Node id at position `position` (0 = master) of partition pid's succession. */
  nodeAt(pid: number, position: number): string;
  /** Position of nodeId in pid's succession, or -1 if it is not a member. */
  positionOf(nodeId: string, pid: number): number;
  /** Per member (same order as `members`): partitions held as master and as replica. */
  counts(): Array<{ nodeId: string; master: number; replica: number }>;
}

const FNV32_OFFSET = 0x811c9dc5;
const FNV32_PRIME = 0x01000193;

function fnv1a32(s: string): number {
  let h = FNV32_OFFSET;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), FNV32_PRIME);
  return h >>> 0;
}

/** murmur3's 32-bit finaliser: every input bit affects every output bit. */
function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Rendezvous score of (node, partition). */
export function score(nodeHash: number, pid: number): number {
  return mix32(nodeHash ^ mix32(Math.imul(pid + 1, 0x9e3779b1)));
}

export function validateMembers(members: readonly Member[]): Member[] {
  if (members.length === 0) throw new PartitionTableError('a cluster has at least one member');
  if (members.length > CLUSTER_SIZE_MAX) throw new PartitionTableError(`at most ${CLUSTER_SIZE_MAX} members, got ${members.length}`);
  const seen = new Set<string>();
  const out = members.map((m) => {
    if (!/^[0-9A-F]{1,16}$/.test(m.nodeId)) throw new PartitionTableError(`node id must be 1 to 16 upper-case hex digits: "${m.nodeId}"`);
    if (seen.has(m.nodeId)) throw new PartitionTableError(`duplicate node id ${m.nodeId}`);
    seen.add(m.nodeId);
    if (m.rackId !== undefined && (!Number.isInteger(m.rackId) || m.rackId < 0 || m.rackId > 1_000_000)) {
      throw new PartitionTableError(`rack id of ${m.nodeId} must be an integer 0..1000000: ${m.rackId}`);
    }
    return { nodeId: m.nodeId, ...(m.rackId !== undefined ? { rackId: m.rackId } : {}), ...(m.quiesced === true ? { quiesced: true as const } : {}) };
  });
  return out.sort((a, b) => compareIds(a.nodeId, b.nodeId));
}

/** Node ids compare as unsigned numbers (hex digits without leading zeros compare by length). */
export function compareIds(a: string, b: string): number {
  const x = a.replace(/^0+(?=.)/, '');
  const y = b.replace(/^0+(?=.)/, '');
  return x.length !== y.length ? x.length - y.length : x < y ? -1 : x > y ? 1 : 0;
}

/** Cluster key of a member list: 48 bits of FNV-1a 64 over the sorted ids and racks, non-zero. */
export function clusterKeyOf(members: readonly Member[]): string {
  const sorted = validateMembers(members);
  // A quiesced member changes the key (a new round moves it to the end); keys of clusters
  // without one are what they always were.
  const text = sorted.map((m) => `${m.nodeId}/${m.rackId ?? ''}${m.quiesced ? '/q' : ''}`).join(',');
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(text)) h = BigInt.asUintN(64, (h ^ BigInt(b)) * 0x100000001b3n);
  const key = h >> 16n || 1n;
  return key.toString(16).toUpperCase().padStart(12, '0');
}

export function computePartitionTable(input: readonly Member[], replicationFactor: number): PartitionTable {
  if (!Number.isInteger(replicationFactor) || replicationFactor < 1 || replicationFactor > REPLICATION_FACTOR_MAX) {
    throw new PartitionTableError(`replication factor must be an integer 1..${REPLICATION_FACTOR_MAX}: ${replicationFactor}`);
  }
  const members = validateMembers(input);
  const n = members.length;
  const rf = Math.min(replicationFactor, n);
  const hashes = members.map((m) => fnv1a32(m.nodeId));
  const racked = members.some((m) => m.rackId !== undefined);
  const quiesced = members.filter((m) => m.quiesced).length;
  const shiftQuiesced = quiesced > 0 && quiesced < n;
  // succession of pid p is rows[p * n .. p * n + n).
  const rows = new Uint8Array(PARTITION_COUNT * n);
  const scores = new Float64Array(n);
  const order: number[] = Array.from({ length: n }, (_, i) => i);
  for (let pid = 0; pid < PARTITION_COUNT; pid++) {
    for (let i = 0; i < n; i++) scores[i] = score(hashes[i]!, pid);
    order.sort((a, b) => scores[b]! - scores[a]! || a - b);
    const active = shiftQuiesced ? order.filter((i) => !members[i]!.quiesced) : order;
    const placed = racked ? rackAdjust(active, members, Math.min(rf, active.length)) : active;
    const row = shiftQuiesced ? [...placed, ...order.filter((i) => members[i]!.quiesced)] : placed;
    for (let i = 0; i < n; i++) rows[pid * n + i] = row[i]!;
  }
  const index = new Map(members.map((m, i) => [m.nodeId, i]));
  const clusterKey = clusterKeyOf(members);
  const table: PartitionTable = {
    members,
    replicationFactor: rf,
    clusterKey,
    succession: (pid) => {
      assertPid(pid);
      return Array.from(rows.subarray(pid * n, pid * n + n));
    },
    nodeAt: (pid, position) => {
      assertPid(pid);
      assert.ok(position >= 0 && position < n, `position ${position} outside 0..${n - 1}`);
      return members[rows[pid * n + position]!]!.nodeId;
    },
    positionOf: (nodeId, pid) => {
      assertPid(pid);
      const i = index.get(nodeId);
      if (i === undefined) return -1;
      for (let p = 0; p < n; p++) if (rows[pid * n + p] === i) return p;
      assert.fail('a member is in every succession');
    },
    counts: () => {
      const out = members.map((m) => ({ nodeId: m.nodeId, master: 0, replica: 0 }));
      for (let pid = 0; pid < PARTITION_COUNT; pid++) {
        out[rows[pid * n]!]!.master++;
        for (let p = 1; p < rf; p++) out[rows[pid * n + p]!]!.replica++;
      }
      return out;
    },
  };
  return table;
}

/** Moves nodes so that positions 0..rf-1 use distinct racks while unused racks remain. */
function rackAdjust(order: readonly number[], members: readonly Member[], rf: number): number[] {
  const rest = [...order];
  const chosen = [rest.shift()!];
  const racks = new Set([members[chosen[0]!]!.rackId]);
  while (chosen.length < rf) {
    let k = rest.findIndex((i) => !racks.has(members[i]!.rackId));
    if (k < 0) k = 0; // every rack holds a copy already: plain score order
    const [pick] = rest.splice(k, 1);
    chosen.push(pick!);
    racks.add(members[pick!]!.rackId);
  }
  return [...chosen, ...rest];
}

function assertPid(pid: number): void {
  assert.ok(Number.isInteger(pid) && pid >= 0 && pid < PARTITION_COUNT, `partition id ${pid} outside 0..${PARTITION_COUNT - 1}`);
}
