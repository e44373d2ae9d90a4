/**
 * The primary index: digest -> record metadata, in typed arrays, one table per partition.
 *
 * Design. Each partition owns one open-addressing table of 40-byte slots (10 u32 words) kept in
 * a single Uint32Array, so there is no JS object per record. A slot's home position is a
 * monotonic function of the digest (digest word 1 scaled to the table size), and every run of
 * occupied slots is kept sorted by that key ("ordered linear probing", equivalent to Robin Hood
 * hashing with its variance): a lookup stops as soon as it passes the key, an insert shifts the
 * rest of its run one slot right, a delete shifts the displaced tail left. That keeps probes
 * short at the high load factors the 48-byte budget needs (tables grow at LOAD_MAX and are
 * rebuilt at LOAD_AFTER_GROW). Partition tables are small (10 M records / 4096 ~ 2.4 k), so a
 * rebuild never stalls the node for long, and per-partition iteration is a walk of one array.
 *
 * Slot layout (u32 words):
 *   0..4  digest bytes 0..19 (little-endian words)
 *   5     LUT low 32 bits      (LUT = ms since the Aerospike epoch, 40 bits: good until 2044)
 *   6     LUT high 8 bits << 24 | generation low 24 bits
 *   7     void time (s since the Aerospike epoch; 0 = never)
 *   8     storage address low 32 bits (16-byte units; 40 bits = 16 TiB per namespace)
 *   9     address high 8 bits << 24 | set id (12 bits) << 12 | flags (4 bits) << 8 | generation high 8 bits
 *
 * Slots are positions, not handles: a mutation of a partition may move its slots.
 */
import { CITRUSLEAF_EPOCH_S, DIGEST_BYTES, PARTITION_COUNT, type PartitionId } from '../types.js';

export const SLOT_WORDS = 10;
export const SLOT_BYTES = SLOT_WORDS * 4;
/** Grow a partition table when its load passes this. */
const LOAD_MAX = 0.93;
/** Load right after a rebuild: the table grows by LOAD_MAX / LOAD_AFTER_GROW (~9 %). */
const LOAD_AFTER_GROW = 0.85;
/**
 * Bulk loading (cold restart): tables run sparse so inserts rarely shift or rebuild, and are
 * compacted to LOAD_AFTER_GROW once the load is done (costs ~2x index memory while it runs).
 */
const BULK_LOAD_MAX = 0.5;
const BULK_LOAD_AFTER_GROW = 0.25;
/** Smallest table: keeps empty namespaces cheap (4096 * 8 slots * 40 B = 1.3 MB). */
const SLOTS_MIN = 8;
/** Largest set id the 12-bit field holds. */
export const SET_ID_MAX = 4095;
/** Largest address in 16-byte units (40 bits). */
export const ADDRESS_MAX = 2 ** 40 - 1;
const LUT_EPOCH_MS = CITRUSLEAF_EPOCH_S * 1000;
const LUT_REL_MAX = 2 ** 40 - 1;

/** Index flags (4 bits). */
export const IndexFlag = {
  USED: 1,
  TOMBSTONE: 2,
  HAS_KEY: 4,
} as const;

/** A record's metadata as the index holds it. */
export interface IndexEntry {
  generation: number;
  lutMs: number;
  voidTimeS: number;
  /** Storage address in 16-byte units. */
  address: number;
  setId: number;
  tombstone: boolean;
  hasKey: boolean;
}

export function emptyEntry(): IndexEntry {
  return { generation: 0, lutMs: 0, voidTimeS: 0, address: 0, setId: 0, tombstone: false, hasKey: false };
}

/**
 * Slots past the last home position, so runs near the end of a table need not wrap (wrapping
 * would break the ordering). A run that still reaches the physical end makes the table grow.
 */
function spillSlots(homeSlots: number): number {
  return 4 + Math.ceil(homeSlots / 64);
}

class PartitionTable {
  /** Home positions (0..homeSlots-1). */
  homeSlots: number;
  /** Physical slots: homeSlots plus the spill area. */
  slots: number;
  count = 0;
  words: Uint32Array;
  constructor(homeSlots: number, words?: Uint32Array) {
    this.homeSlots = homeSlots;
    this.slots = homeSlots + spillSlots(homeSlots);
    this.words = words ?? new Uint32Array(this.slots * SLOT_WORDS);
  }
}

export class PrimaryIndex {
  private readonly tables: PartitionTable[] = [];
  private total = 0;
  /** Tables grown or resized so far, and memoryBytes as of `bytesAtResizes` of them (it walks every table). */
  private resizes = 0;
  private bytesAtResizes = -1;
  private bytes = 0;
  private loadMax = LOAD_MAX;
  private loadAfterGrow = LOAD_AFTER_GROW;

  /** Enters or leaves bulk-load mode; leaving compacts every table to the normal load. */
  setBulkLoad(on: boolean): void {
    this.loadMax = on ? BULK_LOAD_MAX : LOAD_MAX;
    this.loadAfterGrow = on ? BULK_LOAD_AFTER_GROW : LOAD_AFTER_GROW;
    if (!on) {
      this.resizes++;
      for (const t of this.tables) {
        const target = Math.max(SLOTS_MIN, Math.ceil(t.count / LOAD_AFTER_GROW));
        if (target < t.homeSlots) resize(t, target);
      }
    }
  }

  constructor() {
    for (let p = 0; p < PARTITION_COUNT; p++) this.tables.push(new PartitionTable(SLOTS_MIN));
  }

  /** Records (tombstones included) in the whole index. */
  get size(): number {
    return this.total;
  }

  partitionSize(pid: PartitionId): number {
    return this.tables[pid]!.count;
  }

  /** Bytes held by the tables' typed arrays (what the 48-byte budget measures). */
  memoryBytes(): number {
    if (this.bytesAtResizes !== this.resizes) {
      let bytes = 0;
      for (const t of this.tables) bytes += t.words.byteLength;
      this.bytes = bytes;
      this.bytesAtResizes = this.resizes;
    }
    return this.bytes;
  }

  /** Reads an entry into `out`; false when absent. */
  get(digest: Buffer, out: IndexEntry): boolean {
    const t = this.tables[pidOf(digest)]!;
    loadKey(digest);
    const slot = find(t);
    if (slot < 0) return false;
    readSlot(t.words, slot * SLOT_WORDS, out);
    return true;
  }

  has(digest: Buffer): boolean {
    const t = this.tables[pidOf(digest)]!;
    loadKey(digest);
    return find(t) >= 0;
  }

  /**
   * Inserts or replaces the entry for `digest`. When it existed and `prev` is given, `prev`
   * receives the replaced entry. Returns whether it existed.
   */
  put(digest: Buffer, e: IndexEntry, prev?: IndexEntry): boolean {
    const t = this.tables[pidOf(digest)]!;
    loadKey(digest);
    let slot = find(t);
    const existed = slot >= 0;
    if (existed) {
      if (prev) readSlot(t.words, slot * SLOT_WORDS, prev);
    } else {
      if ((t.count + 1) / t.homeSlots > this.loadMax) {
        this.resizes++;
        grow(t, t.count + 1, this.loadAfterGrow);
      }
      slot = insertPosition(t);
      while (slot < 0) {
        this.resizes++;
        grow(t, t.count + 1, this.loadAfterGrow);
        slot = insertPosition(t);
      }
      t.count++;
      this.total++;
      const w = t.words;
      const o = slot * SLOT_WORDS;
      w[o] = K[0]!;
      w[o + 1] = K[1]!;
      w[o + 2] = K[2]!;
      w[o + 3] = K[3]!;
      w[o + 4] = K[4]!;
    }
    writeSlot(t.words, slot * SLOT_WORDS, e);
    return existed;
  }

  /** Removes the entry; false when it was absent. */
  delete(digest: Buffer): boolean {
    const t = this.tables[pidOf(digest)]!;
    loadKey(digest);
    const slot = find(t);
    if (slot < 0) return false;
    removeAt(t, slot);
    t.count--;
    this.total--;
    return true;
  }

  /**
   * Visits every entry of a partition in slot order. The callback must not mutate this
   * partition (collect, then mutate).
   */
  forEach(pid: PartitionId, visit: (digest: Buffer, e: IndexEntry) => void): void {
    const t = this.tables[pid]!;
    const w = t.words;
    const e = emptyEntry();
    for (let s = 0; s < t.slots; s++) {
      const o = s * SLOT_WORDS;
      if (((w[o + 9]! >>> 8) & 0xf & IndexFlag.USED) === 0) continue;
      readSlot(w, o, e);
      visit(digestAt(w, o), e);
    }
  }

  /** Serializes the tables for a warm restart: per partition (slots u32, count u32, words). */
  *snapshotChunks(): Generator<Buffer> {
    const head = Buffer.alloc(8);
    for (const t of this.tables) {
      head.writeUInt32LE(t.homeSlots, 0);
      head.writeUInt32LE(t.count, 4);
      yield Buffer.from(head);
      yield Buffer.from(t.words.buffer, t.words.byteOffset, t.words.byteLength);
    }
  }

  /**
   * Rebuilds an index from snapshotChunks() output held in one buffer. The tables are views on
   * `buf` (no copy); a table that grows later moves to its own array.
   */
  static fromSnapshot(buf: Buffer): PrimaryIndex {
    const ix = new PrimaryIndex();
    let off = 0;
    const need = (n: number) => {
      if (off + n > buf.length) throw new RangeError(`index snapshot truncated at byte ${off}`);
    };
    for (let p = 0; p < PARTITION_COUNT; p++) {
      need(8);
      const homeSlots = buf.readUInt32LE(off);
      const count = buf.readUInt32LE(off + 4);
      off += 8;
      const slots = homeSlots + spillSlots(homeSlots);
      const bytes = slots * SLOT_BYTES;
      need(bytes);
      if (homeSlots < 1 || count > slots || (buf.byteOffset + off) % 4 !== 0) {
        throw new RangeError(`index snapshot partition ${p} is malformed (slots ${slots}, count ${count})`);
      }
      const words = new Uint32Array(buf.buffer, buf.byteOffset + off, slots * SLOT_WORDS);
      off += bytes;
      const t = new PartitionTable(homeSlots, words);
      t.count = count;
      ix.tables[p] = t;
      ix.resizes++;
      ix.total += count;
    }
    if (off !== buf.length) throw new RangeError(`index snapshot has ${buf.length - off} trailing bytes`);
    return ix;
  }
}

/** The digest being looked up, as five u32 words (filled by loadKey; single-threaded). */
const K = new Uint32Array(5);

function loadKey(d: Buffer): void {
  K[0] = d.readUInt32LE(0);
  K[1] = d.readUInt32LE(4);
  K[2] = d.readUInt32LE(8);
  K[3] = d.readUInt32LE(12);
  K[4] = d.readUInt32LE(16);
}

function pidOf(d: Buffer): number {
  if (d.length !== DIGEST_BYTES) throw new RangeError(`digest must be ${DIGEST_BYTES} bytes, got ${d.length}`);
  return (d[0]! | (d[1]! << 8)) & 0xfff;
}

/** The ordering key: digest bytes 4..7 as a u32. */
function homeOf(key: number, slots: number): number {
  return Math.floor(key * slots * 2.3283064365386963e-10); // key / 2^32 * slots
}

function slotUsed(w: Uint32Array, o: number): boolean {
  return (w[o + 9]! & 0x100) !== 0;
}

function sameKey(w: Uint32Array, o: number): boolean {
  return w[o + 1] === K[1] && w[o] === K[0] && w[o + 2] === K[2] && w[o + 3] === K[3] && w[o + 4] === K[4];
}

/** Compares the digest in slot `o` with K in index order: (word1, word0, word2, word3, word4). */
function compareKey(w: Uint32Array, o: number): number {
  let a = w[o + 1]!;
  let b = K[1]!;
  if (a !== b) return a < b ? -1 : 1;
  a = w[o]!;
  b = K[0]!;
  if (a !== b) return a < b ? -1 : 1;
  for (let i = 2; i < 5; i++) {
    a = w[o + i]!;
    b = K[i]!;
    if (a !== b) return a < b ? -1 : 1;
  }
  return 0;
}

/** Slot of K in `t`, or -1. */
function find(t: PartitionTable): number {
  const w = t.words;
  const key = K[1]!;
  const slots = t.slots;
  for (let s = homeOf(key, t.homeSlots); s < slots; s++) {
    const o = s * SLOT_WORDS;
    if ((w[o + 9]! & 0x100) === 0) return -1;
    const k = w[o + 1]!;
    if (k > key) return -1;
    if (k === key && sameKey(w, o)) return s;
  }
  return -1;
}

/** Opens a slot where K belongs (shifting its run right); -1 when the run hits the table end. */
function insertPosition(t: PartitionTable): number {
  const w = t.words;
  let s = homeOf(K[1]!, t.homeSlots);
  while (s < t.slots && (w[s * SLOT_WORDS + 9]! & 0x100) !== 0 && compareKey(w, s * SLOT_WORDS) < 0) s++;
  let empty = s;
  while (empty < t.slots && (w[empty * SLOT_WORDS + 9]! & 0x100) !== 0) empty++;
  if (empty >= t.slots) return -1;
  if (empty > s) w.copyWithin((s + 1) * SLOT_WORDS, s * SLOT_WORDS, empty * SLOT_WORDS);
  return s;
}

/** Removes slot `s`, shifting left every following slot of the run that sits past its home. */
function removeAt(t: PartitionTable, s: number): void {
  const w = t.words;
  let end = s + 1;
  while (end < t.slots) {
    const o = end * SLOT_WORDS;
    if (!slotUsed(w, o) || homeOf(w[o + 1]!, t.homeSlots) >= end) break;
    end++;
  }
  // Slots s+1..end-1 are displaced past their homes; moving each one left keeps it at or after home.
  if (end > s + 1) w.copyWithin(s * SLOT_WORDS, (s + 1) * SLOT_WORDS, end * SLOT_WORDS);
  w.fill(0, (end - 1) * SLOT_WORDS, end * SLOT_WORDS);
}

function grow(t: PartitionTable, needed: number, loadAfterGrow: number): void {
  resize(t, Math.max(SLOTS_MIN, Math.ceil(needed / loadAfterGrow), t.homeSlots + Math.ceil(t.homeSlots / 32)));
}

/** Rebuilds a table with `homeSlots` home positions (bigger or smaller), keeping index order. */
function resize(t: PartitionTable, homeSlots: number): void {
  const old = t.words;
  const oldSlots = t.slots;
  const oldHomeSlots = t.homeSlots;
  t.homeSlots = homeSlots;
  t.slots = homeSlots + spillSlots(homeSlots);
  const slots = t.slots;
  t.words = new Uint32Array(slots * SLOT_WORDS);
  // Old slots are already in index order, so appending each at max(home, next free) keeps order.
  let next = 0;
  for (let s = 0; s < oldSlots; s++) {
    const o = s * SLOT_WORDS;
    if ((old[o + 9]! & 0x100) === 0) continue;
    const pos = Math.max(next, homeOf(old[o + 1]!, homeSlots));
    if (pos >= slots) {
      // The spill area overflowed (a freak cluster): retry with a bigger table.
      restore(t, old, oldSlots, oldHomeSlots);
      return resize(t, Math.ceil(homeSlots * 1.1) + 1);
    }
    const w = t.words;
    const d = pos * SLOT_WORDS;
    for (let i = 0; i < SLOT_WORDS; i++) w[d + i] = old[o + i]!;
    next = pos + 1;
  }
}

function restore(t: PartitionTable, old: Uint32Array, oldSlots: number, oldHomeSlots: number): PartitionTable {
  t.words = old;
  t.slots = oldSlots;
  t.homeSlots = oldHomeSlots;
  return t;
}

function digestAt(w: Uint32Array, o: number): Buffer {
  const d = Buffer.allocUnsafe(DIGEST_BYTES);
  for (let i = 0; i < 5; i++) d.writeUInt32LE(w[o + i]!, i * 4);
  return d;
}

function readSlot(w: Uint32Array, o: number, e: IndexEntry): void {
  const w6 = w[o + 6]!;
  const w9 = w[o + 9]!;
  e.lutMs = LUT_EPOCH_MS + (w6 >>> 24) * 4294967296 + w[o + 5]!;
  e.generation = ((w9 & 0xff) * 16777216 + (w6 & 0xffffff)) >>> 0;
  e.voidTimeS = w[o + 7]!;
  e.address = (w9 >>> 24) * 4294967296 + w[o + 8]!;
  e.setId = (w9 >>> 12) & 0xfff;
  const flags = (w9 >>> 8) & 0xf;
  e.tombstone = (flags & IndexFlag.TOMBSTONE) !== 0;
  e.hasKey = (flags & IndexFlag.HAS_KEY) !== 0;
}

function writeSlot(w: Uint32Array, o: number, e: IndexEntry): void {
  const lut = e.lutMs - LUT_EPOCH_MS;
  if (!(lut >= 0 && lut <= LUT_REL_MAX)) throw new RangeError(`LUT ${e.lutMs} ms is outside the index's 40-bit range`);
  if (!(e.address >= 0 && e.address <= ADDRESS_MAX)) throw new RangeError(`storage address ${e.address} exceeds 40 bits`);
  if (e.setId < 0 || e.setId > SET_ID_MAX) throw new RangeError(`set id ${e.setId} exceeds ${SET_ID_MAX}`);
  const lutHi = Math.floor(lut / 4294967296);
  const gen = e.generation >>> 0;
  w[o + 5] = lut >>> 0;
  w[o + 6] = ((lutHi << 24) | (gen & 0xffffff)) >>> 0;
  w[o + 7] = e.voidTimeS >>> 0;
  w[o + 8] = e.address >>> 0;
  const flags = IndexFlag.USED | (e.tombstone ? IndexFlag.TOMBSTONE : 0) | (e.hasKey ? IndexFlag.HAS_KEY : 0);
  w[o + 9] = ((Math.floor(e.address / 4294967296) << 24) | (e.setId << 12) | (flags << 8) | (gen >>> 24)) >>> 0;
}
