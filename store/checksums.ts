/**
 * Partition checksums and digest listings of a namespace's primary index, for `ferry verify`.
 *
 * A partition's checksum covers every index entry — tombstones and expired-but-not-yet-removed
 * records included, exactly as the index holds them — as the tuple (digest, generation,
 * last-update time, tombstone). It is order independent: the sum mod 2^64 of a 64-bit hash of
 * each tuple, beside the entry count. Records of the system set `ferry-xdr` (shipper
 * checkpoints) are excluded: they legitimately differ between sites.
 *
 * An entry whose void time has passed (`nowVoidS`, the site's current time in Aerospike-epoch
 * seconds) is hashed as the tombstone expiry will turn it into: same generation and LUT,
 * tombstone set (the expiry rule, docs/xdr.md). So a site whose expiry pass has not reached a
 * record yet compares equal to one where it has.
 *
 * Pure over the index (no I/O). The text codecs of the info answers live here too so the node
 * and the CLI share one definition:
 * - checksums: `<pid>:<count>:<tombstones>:<hash hex 16>` joined by ';' (empty partitions left
 *   out; count includes the tombstones)
 * - listing:   `<digest hex 40>:<generation>:<lut ms>:<0|1>` joined by ';', sorted by digest
 */
import type { IndexEntry } from './storage/primary-index.js';
import { PARTITION_COUNT, type PartitionId } from './types.js';

/** The system set of the shipper's checkpoints; never compared. */
export const XDR_SYSTEM_SET = 'ferry-xdr';

/** The part of a namespace's record store checksums read. */
export interface IndexSource {
  forEach(pid: PartitionId, visit: (digest: Buffer, e: IndexEntry) => void): void;
  /** Set names by id - 1 (id 0 = no set); never creates a set. */
  allSetNames(): string[];
}

export interface PartitionChecksum {
  pid: number;
  /** Index entries, tombstones included. */
  count: number;
  tombstones: number;
  /** 16 lowercase hex digits: sum mod 2^64 of the entries' hashes. */
  hash: string;
}

export interface DigestEntry {
  /** 40 lowercase hex digits. */
  digest: string;
  generation: number;
  lutMs: number;
  tombstone: boolean;
}

export class ChecksumFormatError extends Error {
  readonly code = 'CHECKSUM_FORMAT';
  constructor(message: string) {
    super(message);
    this.name = 'ChecksumFormatError';
  }
}

const TWO_32 = 0x1_0000_0000;
const SEED_LO = 0x9747b28c;
const SEED_HI = 0x1b873593;

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

function mixWord(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

const words = new Uint32Array(9);

/** 64-bit hash of one tuple as [high 32 bits, low 32 bits] (two independent murmur3 lanes). */
export function entryHash(digest: Buffer, generation: number, lutMs: number, tombstone: boolean): [number, number] {
  for (let i = 0; i < 5; i++) words[i] = digest.readUInt32LE(i * 4);
  words[5] = generation >>> 0;
  words[6] = lutMs % TWO_32;
  words[7] = Math.floor(lutMs / TWO_32);
  words[8] = tombstone ? 1 : 0;
  let lo = SEED_LO;
  let hi = SEED_HI;
  for (let i = 0; i < 9; i++) {
    lo = mixWord(lo, words[i]!);
    hi = mixWord(hi, words[(i + 4) % 9]! ^ 0x5bd1e995);
  }
  return [fmix32(hi ^ 36), fmix32(lo ^ 36)];
}

/** Set ids never compared (the XDR system set, when the namespace has it). */
export function excludedSetIds(src: Pick<IndexSource, 'allSetNames'>): Set<number> {
  const out = new Set<number>();
  const names = src.allSetNames();
  for (let i = 0; i < names.length; i++) if (names[i] === XDR_SYSTEM_SET) out.add(i + 1);
  return out;
}

function hex32(n: number): string {
  return n.toString(16).padStart(8, '0');
}

/** Whether an entry counts as a tombstone: it is one, or its void time has passed. */
function asTombstone(e: IndexEntry, nowVoidS: number): boolean {
  return e.tombstone || (e.voidTimeS !== 0 && e.voidTimeS <= nowVoidS);
}

/** Checksum of one partition. `excluded` defaults to excludedSetIds(src); 0 = nothing is expired. */
export function partitionChecksum(src: IndexSource, pid: number, excluded = excludedSetIds(src), nowVoidS = 0): PartitionChecksum {
  let count = 0;
  let tombstones = 0;
  let lo = 0;
  let hi = 0;
  src.forEach(pid as PartitionId, (digest, e) => {
    if (excluded.has(e.setId)) return;
    const tomb = asTombstone(e, nowVoidS);
    const [h, l] = entryHash(digest, e.generation, e.lutMs, tomb);
    count++;
    if (tomb) tombstones++;
    lo += l;
    let carry = 0;
    if (lo >= TWO_32) {
      lo -= TWO_32;
      carry = 1;
    }
    hi = (hi + h + carry) % TWO_32;
  });
  return { pid, count, tombstones, hash: hex32(hi) + hex32(lo) };
}

/** Checksums of partitions from..to (inclusive), empty ones included. */
export function checksums(src: IndexSource, from = 0, to = PARTITION_COUNT - 1, nowVoidS = 0): PartitionChecksum[] {
  checkRange(from, to);
  const excluded = excludedSetIds(src);
  const out: PartitionChecksum[] = [];
  for (let p = from; p <= to; p++) out.push(partitionChecksum(src, p, excluded, nowVoidS));
  return out;
}

/** Every compared index entry of one partition, sorted by digest. */
export function partitionListing(src: IndexSource, pid: number, nowVoidS = 0): DigestEntry[] {
  checkRange(pid, pid);
  const excluded = excludedSetIds(src);
  const out: DigestEntry[] = [];
  src.forEach(pid as PartitionId, (digest, e) => {
    if (excluded.has(e.setId)) return;
    out.push({ digest: digest.toString('hex'), generation: e.generation, lutMs: e.lutMs, tombstone: asTombstone(e, nowVoidS) });
  });
  out.sort((x, y) => (x.digest < y.digest ? -1 : x.digest > y.digest ? 1 : 0));
  return out;
}

function checkRange(from: number, to: number): void {
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 0 || to >= PARTITION_COUNT || from > to) {
    throw new RangeError(`partition range ${from}..${to} outside 0..${PARTITION_COUNT - 1}`);
  }
}

// ---- text codecs of the info answers ----

export function formatChecksums(list: readonly PartitionChecksum[]): string {
  return list
    .filter((c) => c.count > 0)
    .map((c) => `${c.pid}:${c.count}:${c.tombstones}:${c.hash}`)
    .join(';');
}

/** Parses formatChecksums output into pid -> checksum (partitions absent = empty). */
export function parseChecksums(value: string): Map<number, PartitionChecksum> {
  const out = new Map<number, PartitionChecksum>();
  if (value === '') return out;
  for (const item of value.split(';')) {
    const m = /^(\d+):(\d+):(\d+):([0-9a-f]{16})$/.exec(item);
    if (!m) throw new ChecksumFormatError(`bad checksum item "${item.slice(0, 80)}"`);
    const pid = Number(m[1]);
    if (pid >= PARTITION_COUNT) throw new ChecksumFormatError(`partition ${pid} out of range`);
    const count = Number(m[2]);
    const tombstones = Number(m[3]);
    if (tombstones > count) throw new ChecksumFormatError(`partition ${pid}: ${tombstones} tombstones of ${count} entries`);
    out.set(pid, { pid, count, tombstones, hash: m[4]! });
  }
  return out;
}

export function formatListing(list: readonly DigestEntry[]): string {
  return list.map((e) => `${e.digest}:${e.generation}:${e.lutMs}:${e.tombstone ? 1 : 0}`).join(';');
}

export function parseListing(value: string): DigestEntry[] {
  if (value === '') return [];
  return value.split(';').map((item) => {
    const m = /^([0-9a-f]{40}):(\d+):(\d+):([01])$/.exec(item);
    if (!m) throw new ChecksumFormatError(`bad listing item "${item.slice(0, 80)}"`);
    return { digest: m[1]!, generation: Number(m[2]), lutMs: Number(m[3]), tombstone: m[4] === '1' };
  });
}
