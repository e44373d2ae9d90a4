/**
 * RecordStore: the primary index plus log-structured record storage for one namespace.
 *
 * Writes append encoded records to the open write block (a buffer); the block is written to the
 * device when it fills, every `flushMaxMs`, or when a caller asks for `commit()` (group commit:
 * every write appended before a flush starts shares its one datasync). Each block tracks its
 * live bytes; blocks under `defragLwmPct` are defragmented in small slices between foreground
 * work: live records are re-appended, and the block is freed only after their new copies are
 * durable, then marked free on the device (its first record's magic zeroed) before reuse.
 *
 * Restart: a clean close persists the index, block table and set names (warm restart loads them
 * instead of scanning). Otherwise open() scans every block in write-sequence order and the later
 * copy of a digest wins; a record carries its block's write sequence, so the scan never mistakes
 * a stale record left in a reused block for a current one. Deletes are tombstones; a tombstone
 * is reclaimed only when no older copy of its record remains on any block (reclaimTombstones).
 *
 * Everything but flushing, opening and closing is synchronous: the node is one event loop, so a
 * namespace holding a record lock sees a consistent index.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, renameSync, unlinkSync, writeFileSync, openSync, fsyncSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { LRUCache } from 'lru-cache';
import { PARTITION_COUNT, type PartitionId } from '../types.js';
import { systemClock, systemTimers, sleep, yieldToLoop, type Clock, type TimerHandle, type Timers } from '../runtime/index.js';
import { FileDevice, MemoryDevice, type BlockDevice } from './devices.js';
import { StorageError } from './errors.js';
import { PrimaryIndex, emptyEntry, SET_ID_MAX, type IndexEntry } from './primary-index.js';
import {
  RECORD_ALIGN_BYTES,
  RECORD_HEADER_BYTES,
  RECORD_MAGIC,
  alignUp,
  checkRecord,
  checkRecordRun,
  decodeRecord,
  digestAt,
  encodeRecord,
  readHeader,
  sealRecord,
  type StoredRecord,
} from './record-format.js';

const BlockState = { FREE: 0, OPEN: 1, USED: 2, DEFRAG: 3, PENDING_FREE: 4 } as const;

/** Blocks only defrag may take, so defrag can always make progress on a nearly full device. */
const DEFRAG_RESERVE_BLOCKS = 2;
/** Records a defrag slice moves before yielding to foreground work. */
const DEFRAG_SLICE_RECORDS = 500;
/** First read of a record on a device: most records fit; larger ones take a second read. */
const READ_PROBE_BYTES = 4096;
/**
 * Sealed blocks not yet written to the device, held in memory until their write completes.
 * Past this many, writers wait for a flush (backpressure instead of unbounded memory).
 */
const UNFLUSHED_BLOCKS_MAX = 32;
/** Sets a namespace may hold (Aerospike's limit). */
export const SETS_MAX = 1023;
const SNAPSHOT_FORMAT = 1;
/**
 * After a failed device write (disk full, I/O error) the flush is retried after this pause,
 * doubling up to the maximum: a full disk costs a write attempt every few seconds, not a busy loop,
 * and writes resume by themselves within FLUSH_RETRY_MS_MAX of space coming back.
 */
const FLUSH_RETRY_MS_MIN = 100;
const FLUSH_RETRY_MS_MAX = 2000;

export interface RecordStoreOptions {
  /** Namespace name, for messages. */
  name: string;
  device: BlockDevice;
  /** Directory for warm-restart snapshots (device namespaces). */
  stateDir?: string;
  flushMaxMs: number;
  /** Buffered writes are flushed at least this often; commits flush at once. */
  defragLwmPct: number;
  /** Pause between defrag slices. */
  defragSleepMs: number;
  /** Sealed blocks kept in memory for reads (post-write cache). */
  readCacheBlocks: number;
  /** Time source and timers (default: the real ones; the simulator passes virtual ones). */
  clock?: Clock;
  timers?: Timers;
}

export interface StoreStats {
  records: number;
  tombstones: number;
  usedBytes: number;
  totalBytes: number;
  freeBlocks: number;
  totalBlocks: number;
  availablePct: number;
  indexBytes: number;
  /** Index plus block buffers held in memory (read cache, blocks not yet written, open block). */
  memoryBytes: number;
  checksumErrors: number;
  defragBlocks: number;
  defragRecords: number;
  cacheHits: number;
  cacheMisses: number;
  flushes: number;
  tombstonesReclaimed: number;
}

export interface OpenReport {
  mode: 'new' | 'warm' | 'cold' | 'memory';
  records: number;
  tombstones: number;
  durationMs: number;
  bytesRead: number;
  corrupt: number;
  /** Why a warm restart was not possible, when a snapshot existed. */
  warmRefused?: string;
}

interface Segment {
  block: number;
  buf: Buffer;
  from: number;
  to: number;
}

export class RecordStore {
  readonly index = new PrimaryIndex();
  private ix: PrimaryIndex = this.index;
  private readonly device: BlockDevice;
  private readonly blockBytes: number;
  private readonly unitsPerBlock: number;
  private readonly seq: Float64Array;
  private readonly live: Float64Array;
  private readonly state: Uint8Array;
  private readonly freeList: number[] = [];
  private openBlock = -1;
  private openBuf: Buffer = Buffer.alloc(0);
  private pos = 0;
  private flushedPos = 0;
  private nextSeq = 1;
  private segments: Segment[] = [];
  private waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  private flushing = false;
  private flushScheduled = false;
  private flushesStarted = 0;
  private flushesDone = 0;
  private readonly pendingFree: Array<{ block: number; after: number }> = [];
  private readonly markerInFlight: number[] = [];
  private readonly cache: LRUCache<number, Buffer>;
  private readonly unflushed = new Map<number, Buffer>();
  private readonly setIds = new Map<string, number>();
  private readonly setNames: string[] = [''];
  private tombstoneCount = 0;
  /** Live records and tombstones per set id (index entries; expired-but-not-removed count as live). */
  private readonly liveBySet = new Float64Array(SET_ID_MAX + 1);
  private readonly tombBySet = new Float64Array(SET_ID_MAX + 1);
  private defragging = -1;
  private defragOffset = 0;
  private ticks: TimerHandle[] = [];
  private readonly clock: Clock;
  private readonly timers: Timers;
  private closed = false;
  private lastFlushError: StorageError | undefined;
  private flushRetryMs = FLUSH_RETRY_MS_MIN;
  private flushRetry: TimerHandle | undefined;
  /** Write blocks opened so far: the namespace re-checks free space each time one is. */
  blocksOpened = 0;
  /** Set by the namespace while its filesystem is out of space (defrag would allocate more). */
  defragPaused = false;
  private readonly counters = { checksumErrors: 0, defragBlocks: 0, defragRecords: 0, cacheHits: 0, cacheMisses: 0, flushes: 0, tombstonesReclaimed: 0 };
  private readonly scratch = emptyEntry();
  private readonly entry = emptyEntry();

  constructor(private readonly opts: RecordStoreOptions) {
    this.device = opts.device;
    this.clock = opts.clock ?? systemClock;
    this.timers = opts.timers ?? systemTimers;
    this.blockBytes = opts.device.blockBytes;
    if (this.blockBytes % RECORD_ALIGN_BYTES !== 0 || this.blockBytes < 4096) {
      throw new StorageError('CONFIG', `write-block-size ${this.blockBytes} must be a multiple of 16 and at least 4096`);
    }
    this.unitsPerBlock = this.blockBytes / RECORD_ALIGN_BYTES;
    const n = this.device.blockCount;
    if (n < DEFRAG_RESERVE_BLOCKS + 2) {
      throw new StorageError('CONFIG', `namespace ${opts.name}: storage holds ${n} write blocks; at least ${DEFRAG_RESERVE_BLOCKS + 2} are needed`);
    }
    this.seq = new Float64Array(n);
    this.live = new Float64Array(n);
    this.state = new Uint8Array(n);
    this.cache = new LRUCache<number, Buffer>({ max: Math.max(1, opts.readCacheBlocks) });
  }

  // ---------------------------------------------------------------- open / close

  async open(): Promise<OpenReport> {
    const t0 = this.clock.nowMs();
    let report: OpenReport;
    if (!this.device.persistent) {
      this.rebuildFreeList();
      this.openNewBlock(false);
      report = { mode: 'memory', records: 0, tombstones: 0, durationMs: 0, bytesRead: 0, corrupt: 0 };
    } else {
      const warm = this.tryWarm();
      // A snapshot serves one start: its space is given back now (a full disk needs it later).
      if (this.opts.stateDir) this.removeSnapshot();
      if (warm === true) {
        report = { mode: 'warm', records: this.ix.size, tombstones: this.tombstoneCount, durationMs: 0, bytesRead: 0, corrupt: 0 };
      } else {
        const cold = this.coldScan();
        report = { ...cold, durationMs: 0 };
        if (typeof warm === 'string') report.warmRefused = warm;
      }
    }
    report.durationMs = this.clock.nowMs() - t0;
    this.ticks.push(this.timers.setInterval(() => this.scheduleFlush(), Math.max(1, this.opts.flushMaxMs)));
    this.ticks.push(this.timers.setInterval(() => this.defragTick(), Math.max(1, this.opts.defragSleepMs)));
    for (const t of this.ticks) t.unref();
    return report;
  }

  /**
   * Flushes what is buffered, writes the warm-restart snapshot and closes the device. On a full
   * (or failing) disk it skips what it cannot write, closes the device anyway, and then throws
   * CLOSE_INCOMPLETE saying what was skipped: without a snapshot the next start is a cold scan.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    for (const t of this.ticks) this.timers.clearInterval(t);
    this.ticks = [];
    this.timers.clearTimeout(this.flushRetry);
    const skipped: string[] = [];
    try {
      await this.flushAll();
    } catch (err) {
      skipped.push(`buffered writes not written (${this.unflushedBytes()} bytes): ${(err as Error).message}`);
    }
    this.closed = true;
    if (skipped.length === 0 && this.device.persistent && this.opts.stateDir) {
      try {
        this.writeSnapshot();
      } catch (err) {
        this.removeSnapshot();
        skipped.push(`warm-restart snapshot not written (the next start is a cold scan): ${(err as Error).message}`);
      }
    }
    await this.device.close();
    if (skipped.length > 0) throw new StorageError('CLOSE_INCOMPLETE', `namespace ${this.opts.name}: ${skipped.join('; ')}`);
  }

  /** Abandons the store without flushing or snapshotting (tests simulate a crash with it). */
  async abandon(): Promise<void> {
    for (const t of this.ticks) this.timers.clearInterval(t);
    this.closed = true;
    while (this.flushing) await sleep(this.timers, 1);
    await this.device.close();
  }

  // ---------------------------------------------------------------- records

  /** Reads index metadata; false when absent. */
  lookup(digest: Buffer, out: IndexEntry): boolean {
    return this.ix.get(digest, out);
  }

  /** The stored record (tombstones included), or undefined when the digest is not indexed. */
  read(digest: Buffer): StoredRecord | undefined {
    if (!this.ix.get(digest, this.scratch)) return undefined;
    const { buf, off } = this.recordBytes(this.scratch.address);
    return decodeRecord(buf, off);
  }

  /** Writes a record version (or a tombstone when `r.tombstone`). */
  write(r: StoredRecord): void {
    this.assertOpen();
    const setId = this.setId(r.setName);
    const bytes = encodeRecord(r, 0, false); // append() seals it with the block's sequence
    if (bytes.length > this.blockBytes) {
      throw new StorageError('RECORD_TOO_BIG', `record of ${bytes.length} bytes exceeds the write block (${this.blockBytes} bytes)`);
    }
    const address = this.append(bytes, false);
    const e = this.entry;
    e.generation = r.generation;
    e.lutMs = r.lutMs;
    e.voidTimeS = r.voidTimeS;
    e.address = address;
    e.setId = setId;
    e.tombstone = r.tombstone;
    e.hasKey = r.key !== undefined;
    const prev = this.scratch;
    if (this.ix.put(r.digest, e, prev)) {
      this.unaccount(prev.address);
      if (prev.tombstone) this.tombstoneCount--;
      this.countSet(prev.setId, prev.tombstone, -1);
    }
    this.countSet(setId, r.tombstone, 1);
    if (r.tombstone) this.tombstoneCount++;
  }

  /** Forgets a record entirely (memory namespaces expire this way; devices reclaim tombstones). */
  drop(digest: Buffer): boolean {
    if (!this.ix.get(digest, this.scratch)) return false;
    this.unaccount(this.scratch.address);
    if (this.scratch.tombstone) this.tombstoneCount--;
    this.countSet(this.scratch.setId, this.scratch.tombstone, -1);
    this.ix.delete(digest);
    return true;
  }

  forEach(pid: PartitionId, visit: (digest: Buffer, e: IndexEntry) => void): void {
    this.ix.forEach(pid, visit);
  }

  private countSet(setId: number, tombstone: boolean, delta: number): void {
    const arr = tombstone ? this.tombBySet : this.liveBySet;
    arr[setId] = Math.max(0, arr[setId]! + delta);
  }

  /** Index entries of a set: live records (expired ones until removed) and tombstones. */
  setCounts(setId: number): { objects: number; tombstones: number } {
    return { objects: this.liveBySet[setId] ?? 0, tombstones: this.tombBySet[setId] ?? 0 };
  }

  partitionSize(pid: PartitionId): number {
    return this.ix.partitionSize(pid);
  }

  setId(name: string): number {
    if (name === '') return 0;
    let id = this.setIds.get(name);
    if (id === undefined) {
      if (this.setNames.length > Math.min(SETS_MAX, SET_ID_MAX)) {
        throw new StorageError('SET_LIMIT', `namespace ${this.opts.name} already holds ${SETS_MAX} sets`);
      }
      id = this.setNames.length;
      this.setNames.push(name);
      this.setIds.set(name, id);
    }
    return id;
  }

  setName(id: number): string {
    return this.setNames[id] ?? '';
  }

  allSetNames(): string[] {
    return this.setNames.slice(1);
  }

  /** True when writers should wait for a flush before going on (too many unwritten blocks). */
  backlogged(): boolean {
    return this.unflushed.size >= UNFLUSHED_BLOCKS_MAX;
  }

  /** A block's bytes when they are in memory (open, not yet written, or cached). */
  private memoryBlock(b: number): Buffer | undefined {
    if (b === this.openBlock) return this.openBuf;
    return this.unflushed.get(b) ?? this.cache.get(b);
  }

  /** Resolves when everything written so far is durable. */
  commit(): Promise<void> {
    if (!this.device.persistent) return Promise.resolve();
    // While the device refuses writes, a commit fails at once (the retry timer keeps trying).
    if (this.lastFlushError) return Promise.reject(this.lastFlushError);
    return new Promise((resolve, reject) => {
      this.waiters.push({ resolve, reject });
      this.scheduleFlush();
    });
  }

  stats(): StoreStats {
    let used = 0;
    let free = 0;
    for (let b = 0; b < this.live.length; b++) {
      used += this.live[b]!;
      if (this.state[b] === BlockState.FREE) free++;
    }
    const total = this.device.blockCount * this.blockBytes;
    return {
      records: this.ix.size,
      tombstones: this.tombstoneCount,
      usedBytes: used,
      totalBytes: total,
      freeBlocks: free,
      totalBlocks: this.device.blockCount,
      availablePct: Math.floor((free * 100) / this.device.blockCount),
      indexBytes: this.ix.memoryBytes(),
      memoryBytes: this.ix.memoryBytes() + this.bufferBytes(),
      ...this.counters,
    };
  }

  /** Bytes of block buffers held besides the device (memory devices hold their data as blocks). */
  private bufferBytes(): number {
    if (!this.device.persistent) return 0;
    const held = new Set<Buffer>(this.cache.values());
    for (const b of this.unflushed.values()) held.add(b);
    held.add(this.openBuf);
    let n = 0;
    for (const b of held) n += b.length;
    return n;
  }

  /**
   * Free filesystem space a clean close needs: the warm-restart snapshot (index, block table)
   * and two write blocks (the open one and one sealed) landing in a sparse device file.
   */
  shutdownReserveBytes(): number {
    if (!this.device.persistent) return 0;
    const snapshot = this.opts.stateDir ? this.ix.memoryBytes() + PARTITION_COUNT * 8 + this.device.blockCount * 24 + 64 * 1024 : 0;
    return snapshot + 2 * this.blockBytes;
  }

  // ---------------------------------------------------------------- block writing

  private assertOpen(): void {
    if (this.closed) throw new StorageError('CLOSED', `namespace ${this.opts.name}: storage is closed`);
    if (this.lastFlushError) throw this.lastFlushError;
  }

  /** Appends sealed bytes to the open block and returns their address (16-byte units). */
  private append(bytes: Buffer, forDefrag: boolean): number {
    if (this.pos + bytes.length > this.blockBytes) {
      if (this.freeList.length <= (forDefrag ? 0 : DEFRAG_RESERVE_BLOCKS)) {
        throw new StorageError('DEVICE_FULL', `namespace ${this.opts.name}: no free write block`, { retriable: true });
      }
      this.sealOpenBlock();
      this.openNewBlock(forDefrag);
    }
    assert(bytes.length % RECORD_ALIGN_BYTES === 0 && this.pos + bytes.length <= this.blockBytes, 'a record must fit the open block, aligned');
    sealRecord(bytes, this.seq[this.openBlock]!);
    bytes.copy(this.openBuf, this.pos);
    const address = this.openBlock * this.unitsPerBlock + this.pos / RECORD_ALIGN_BYTES;
    this.pos += bytes.length;
    this.live[this.openBlock]! += bytes.length;
    return address;
  }

  private sealOpenBlock(): void {
    const b = this.openBlock;
    if (b < 0) return;
    if (this.device.persistent) {
      if (this.pos > this.flushedPos) {
        this.segments.push({ block: b, buf: this.openBuf, from: this.flushedPos, to: this.pos });
        this.unflushed.set(b, this.openBuf);
      }
      this.cache.set(b, this.openBuf);
      if (this.unflushed.size >= UNFLUSHED_BLOCKS_MAX / 2) this.scheduleFlush();
    }
    this.state[b] = BlockState.USED;
    this.openBlock = -1;
  }

  private openNewBlock(forDefrag: boolean): void {
    const b = this.freeList.pop();
    if (b === undefined || (!forDefrag && this.freeList.length < 0)) {
      throw new StorageError('DEVICE_FULL', `namespace ${this.opts.name}: no free write block`, { retriable: true });
    }
    this.openBlock = b;
    this.blocksOpened++;
    this.state[b] = BlockState.OPEN;
    this.seq[b] = this.nextSeq++;
    this.live[b] = 0;
    this.pos = 0;
    this.flushedPos = 0;
    this.cache.delete(b);
    this.openBuf = this.device instanceof MemoryDevice ? this.device.blockBuffer(b) : Buffer.alloc(this.blockBytes);
  }

  private rebuildFreeList(): void {
    this.freeList.length = 0;
    // Pop from the end: hand out low block numbers first.
    for (let b = this.state.length - 1; b >= 0; b--) if (this.state[b] === BlockState.FREE) this.freeList.push(b);
  }

  /** Why the device refuses writes now ('' when it does not): its last write failed. */
  writeFailure(): string {
    return this.lastFlushError?.message ?? '';
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closed || !this.device.persistent || this.flushRetry !== undefined) return;
    this.flushScheduled = true;
    this.timers.setImmediate(() => {
      this.flushScheduled = false;
      void this.flushLoop();
    });
  }

  private hasUnflushed(): boolean {
    return this.segments.length > 0 || this.pos > this.flushedPos || this.pendingFree.length > 0 || this.markerInFlight.length > 0;
  }

  private async flushLoop(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.waiters.length > 0 || this.hasUnflushed()) {
        const before = this.pendingFree.length + this.markerInFlight.length;
        await this.flushOnce();
        if (this.lastFlushError) {
          this.retryFlushLater();
          break;
        }
        // Pending frees need one more round each; stop when nothing else moved.
        if (this.waiters.length === 0 && this.segments.length === 0 && this.pos === this.flushedPos && before === this.pendingFree.length + this.markerInFlight.length) break;
      }
    } finally {
      this.flushing = false;
    }
  }

  private async flushOnce(): Promise<void> {
    const waiters = this.waiters;
    this.waiters = [];
    const segs = this.segments;
    this.segments = [];
    if (this.openBlock >= 0 && this.pos > this.flushedPos) {
      segs.push({ block: this.openBlock, buf: this.openBuf, from: this.flushedPos, to: this.pos });
      this.flushedPos = this.pos;
    }
    this.flushesStarted++;
    // Blocks whose moved records became durable in an earlier flush get their free marker now.
    const markers: number[] = [];
    for (let i = this.pendingFree.length - 1; i >= 0; i--) {
      const p = this.pendingFree[i]!;
      if (p.after <= this.flushesDone) {
        markers.push(p.block);
        this.pendingFree.splice(i, 1);
      }
    }
    const zero = Buffer.alloc(RECORD_ALIGN_BYTES);
    // Check before write (as every read checks after): a damaged write buffer is a bug, and
    // writing it would turn it into lost data; stop the process instead.
    for (const s of segs) {
      const bad = checkRecordRun(s.buf, s.from, s.to);
      assert(bad === undefined, `namespace ${this.opts.name}: block ${s.block} about to be written is damaged: ${bad}`);
    }
    try {
      await Promise.all([
        ...segs.map((s) => this.device.write(s.block, s.from, s.buf.subarray(s.from, s.to))),
        ...markers.map((b) => this.device.write(b, 0, zero)),
      ]);
      await this.device.sync();
      this.lastFlushError = undefined;
      this.flushRetryMs = FLUSH_RETRY_MS_MIN;
    } catch (err) {
      const e = deviceWriteError(this.opts.name, err);
      this.lastFlushError = e;
      this.segments.unshift(...segs);
      for (const b of markers) this.pendingFree.push({ block: b, after: this.flushesDone });
      for (const w of waiters) w.reject(e);
      return;
    }
    this.flushesDone++;
    this.counters.flushes++;
    for (const seg of segs) if (seg.block !== this.openBlock && this.unflushed.get(seg.block) === seg.buf) this.unflushed.delete(seg.block);
    for (const b of markers) {
      this.state[b] = BlockState.FREE;
      this.freeList.unshift(b);
    }
    for (const w of waiters) w.resolve();
  }

  /** Arms the one retry of a failed flush, backing off while the device keeps failing. */
  private retryFlushLater(): void {
    if (this.closed || this.flushRetry !== undefined) return;
    const ms = this.flushRetryMs;
    this.flushRetryMs = Math.min(ms * 2, FLUSH_RETRY_MS_MAX);
    this.flushRetry = this.timers.setTimeout(() => {
      this.flushRetry = undefined;
      this.scheduleFlush();
    }, ms);
    this.flushRetry.unref();
  }

  private unflushedBytes(): number {
    let n = this.pos - this.flushedPos;
    for (const s of this.segments) n += s.to - s.from;
    return n;
  }

  private async flushAll(): Promise<void> {
    if (!this.device.persistent) return;
    while (this.flushing) await sleep(this.timers, 1);
    for (let i = 0; i < 4 && (this.hasUnflushed() || this.waiters.length > 0); i++) {
      await this.flushOnce();
      if (this.lastFlushError) throw this.lastFlushError;
    }
  }

  // ---------------------------------------------------------------- reading

  private blockOf(address: number): { block: number; off: number } {
    const block = Math.floor(address / this.unitsPerBlock);
    return { block, off: (address - block * this.unitsPerBlock) * RECORD_ALIGN_BYTES };
  }

  /** The buffer holding the record at `address` and its offset, checksum verified. */
  private recordBytes(address: number): { buf: Buffer; off: number } {
    const { block, off } = this.blockOf(address);
    let buf: Buffer | undefined;
    let at = off;
    buf = this.memoryBlock(block);
    if (buf && block !== this.openBlock) this.counters.cacheHits++;
    if (!buf) {
      this.counters.cacheMisses++;
      const probe = Math.min(READ_PROBE_BYTES, this.blockBytes - off);
      buf = this.device.read(block, off, probe);
      at = 0;
      const length = buf.readUInt32LE(4);
      if (length > probe && off + length <= this.blockBytes) {
        buf = this.device.read(block, off, alignUp(length));
      }
    }
    const check = checkRecord(buf, at);
    if (check !== 'ok') {
      this.counters.checksumErrors++;
      throw new StorageError('CHECKSUM', `namespace ${this.opts.name}: record at block ${block} offset ${off} failed its check (${check})`);
    }
    return { buf, off: at };
  }

  /** Subtracts a superseded record's bytes from its block's live count. */
  private unaccount(address: number): void {
    const { block, off } = this.blockOf(address);
    // Only the length is needed (no checksum pass): the copy is dead either way.
    const mem = this.memoryBlock(block);
    const head = mem ? mem.subarray(off, off + 8) : this.device.read(block, off, 8);
    let length = RECORD_HEADER_BYTES;
    if (head.length === 8 && head.readUInt32LE(0) === RECORD_MAGIC) {
      const n = head.readUInt32LE(4);
      if (n >= RECORD_HEADER_BYTES && off + n <= this.blockBytes) length = alignUp(n);
    }
    this.live[block] = Math.max(0, this.live[block]! - length);
  }

  // ---------------------------------------------------------------- defrag

  private defragTick(): void {
    // Defrag writes too: not while the device fails or the filesystem is out of space.
    if (this.closed || this.lastFlushError || this.defragPaused) return;
    if (this.defragging < 0) {
      const b = this.pickDefragBlock();
      if (b < 0) return;
      this.defragging = b;
      this.defragOffset = 0;
      this.state[b] = BlockState.DEFRAG;
    }
    this.defragSlice();
  }

  private pickDefragBlock(): number {
    const lwm = (this.blockBytes * this.opts.defragLwmPct) / 100;
    let best = -1;
    for (let b = 0; b < this.state.length; b++) {
      if (this.state[b] !== BlockState.USED || this.live[b]! >= lwm) continue;
      if (best < 0 || this.live[b]! < this.live[best]!) best = b;
    }
    return best;
  }

  /** Moves up to DEFRAG_SLICE_RECORDS live records out of the block being defragmented. */
  defragSlice(): void {
    const b = this.defragging;
    if (b < 0) return;
    const buf = this.memoryBlock(b) ?? this.device.read(b, 0, this.blockBytes);
    const seq = this.seq[b]!;
    let moved = 0;
    let off = this.defragOffset;
    while (moved < DEFRAG_SLICE_RECORDS) {
      const check = checkRecord(buf, off);
      if (check === 'no-record' || check === 'bad-length') break;
      const h = readHeader(buf, off);
      if (h.blockSeq !== seq) break;
      if (check === 'ok') {
        const address = b * this.unitsPerBlock + off / RECORD_ALIGN_BYTES;
        const digest = digestAt(buf, off);
        if (this.ix.get(digest, this.scratch) && this.scratch.address === address) {
          const copy = Buffer.from(buf.subarray(off, off + h.paddedLength));
          try {
            this.scratch.address = this.append(copy, true);
          } catch (err) {
            this.state[b] = BlockState.USED;
            this.defragging = -1;
            return;
          }
          this.ix.put(digest, this.scratch);
          this.live[b] = Math.max(0, this.live[b]! - h.paddedLength);
          this.counters.defragRecords++;
          moved++;
        }
      } else {
        this.counters.checksumErrors++;
      }
      off += h.paddedLength;
      if (off >= this.blockBytes) break;
    }
    this.defragOffset = off;
    if (moved >= DEFRAG_SLICE_RECORDS) return;
    this.counters.defragBlocks++;
    this.defragging = -1;
    this.cache.delete(b);
    this.live[b] = 0;
    if (this.device.persistent) {
      this.state[b] = BlockState.PENDING_FREE;
      this.pendingFree.push({ block: b, after: this.flushesStarted + 1 });
      this.scheduleFlush();
    } else {
      this.device.release(b);
      this.state[b] = BlockState.FREE;
      this.freeList.unshift(b);
    }
  }

  /** Runs defrag until no block is under the low-water mark (tests and benchmarks). */
  async defragNow(): Promise<void> {
    for (;;) {
      if (this.defragging < 0) {
        const b = this.pickDefragBlock();
        if (b < 0) break;
        this.defragging = b;
        this.defragOffset = 0;
        this.state[b] = BlockState.DEFRAG;
      }
      this.defragSlice();
      await yieldToLoop(this.timers);
    }
    await this.flushAll();
  }

  // ---------------------------------------------------------------- tombstones

  /**
   * Reclaims tombstones last updated before `olderThanLutMs` when no older copy of their record
   * remains on any block (a cold restart could otherwise bring it back). Returns how many.
   */
  async reclaimTombstones(olderThanLutMs: number): Promise<number> {
    const candidates = new Map<string, number>(); // digest hex -> tombstone block seq
    for (let p = 0; p < PARTITION_COUNT; p++) {
      this.ix.forEach(p as PartitionId, (d, e) => {
        if (e.tombstone && e.lutMs < olderThanLutMs) candidates.set(d.toString('hex'), this.seq[this.blockOf(e.address).block]!);
      });
    }
    if (candidates.size === 0) return 0;
    if (this.device.persistent) {
      await this.flushAll();
      for (let b = 0; b < this.state.length; b++) {
        const st = this.state[b];
        if (st === BlockState.FREE || st === BlockState.PENDING_FREE) continue;
        const buf = this.memoryBlock(b) ?? this.device.read(b, 0, this.blockBytes);
        const seq = this.seq[b]!;
        for (let off = 0; off < this.blockBytes; ) {
          const check = checkRecord(buf, off);
          if (check === 'no-record' || check === 'bad-length') break;
          const h = readHeader(buf, off);
          if (h.blockSeq !== seq) break;
          if (check === 'ok' && !h.tombstone) {
            const hex = digestAt(buf, off).toString('hex');
            const tseq = candidates.get(hex);
            if (tseq !== undefined && seq <= tseq) candidates.delete(hex);
          }
          off += h.paddedLength;
        }
        if (b % 64 === 0) await yieldToLoop(this.timers);
      }
    }
    let n = 0;
    for (const hex of candidates.keys()) {
      const d = Buffer.from(hex, 'hex');
      if (this.ix.get(d, this.scratch) && this.scratch.tombstone && this.scratch.lutMs < olderThanLutMs) {
        this.drop(d);
        n++;
      }
    }
    this.counters.tombstonesReclaimed += n;
    return n;
  }

  // ---------------------------------------------------------------- cold scan

  private coldScan(): Omit<OpenReport, 'durationMs'> {
    const n = this.device.blockCount;
    const order: Array<{ b: number; seq: number }> = [];
    let bytesRead = 0;
    for (let b = 0; b < n; b++) {
      const h = this.device.read(b, 0, RECORD_HEADER_BYTES);
      bytesRead += RECORD_HEADER_BYTES;
      if (checkRecord(h, 0) === 'no-record') continue;
      order.push({ b, seq: h.readDoubleLE(16) });
    }
    order.sort((x, y) => x.seq - y.seq);
    // Per block, the offsets and sizes of records seen, to un-count superseded copies.
    const offsets = new Map<number, { offs: number[]; sizes: number[] }>();
    const sizeAt = (address: number): number => {
      const { block, off } = this.blockOf(address);
      const rec = offsets.get(block);
      if (!rec) return 0;
      let lo = 0;
      let hi = rec.offs.length - 1;
      while (lo <= hi) {
        const mid = (lo + hi) >> 1;
        const v = rec.offs[mid]!;
        if (v === off) return rec.sizes[mid]!;
        if (v < off) lo = mid + 1;
        else hi = mid - 1;
      }
      return 0;
    };
    let corrupt = 0;
    let maxSeq = 0;
    this.ix.setBulkLoad(true);
    const e = emptyEntry();
    const prev = emptyEntry();
    let lastSetBytes: Buffer | undefined;
    let lastSetId = 0;
    for (const { b, seq } of order) {
      const buf = this.device.read(b, 0, this.blockBytes);
      bytesRead += this.blockBytes;
      const seen = { offs: [] as number[], sizes: [] as number[] };
      offsets.set(b, seen);
      this.seq[b] = seq;
      this.state[b] = BlockState.USED;
      maxSeq = Math.max(maxSeq, seq);
      let off = 0;
      while (off < this.blockBytes) {
        const check = checkRecord(buf, off);
        if (check === 'no-record' || check === 'bad-length') break;
        if (buf.readDoubleLE(off + 16) !== seq) break;
        const paddedLength = alignUp(buf.readUInt32LE(off + 4));
        if (check !== 'ok') {
          corrupt++;
          this.counters.checksumErrors++;
          off += paddedLength;
          continue;
        }
        const digest = buf.subarray(off + 40, off + 60);
        const setLen = buf[off + 13]!;
        let setId = 0;
        if (setLen > 0) {
          const nameBytes = buf.subarray(off + RECORD_HEADER_BYTES, off + RECORD_HEADER_BYTES + setLen);
          if (lastSetBytes === undefined || !nameBytes.equals(lastSetBytes)) {
            try {
              lastSetId = this.setId(nameBytes.toString('utf8'));
              lastSetBytes = Buffer.from(nameBytes);
            } catch {
              corrupt++;
              lastSetId = 0;
              lastSetBytes = undefined;
            }
          }
          setId = lastSetId;
        }
        const flags = buf[off + 12]!;
        const tombstone = (flags & 1) !== 0;
        e.generation = buf.readUInt32LE(off + 24);
        e.voidTimeS = buf.readUInt32LE(off + 28);
        e.lutMs = buf.readDoubleLE(off + 32);
        e.address = b * this.unitsPerBlock + off / RECORD_ALIGN_BYTES;
        e.setId = setId;
        e.tombstone = tombstone;
        e.hasKey = (flags & 2) !== 0;
        if (this.ix.put(digest, e, prev)) {
          const old = this.blockOf(prev.address).block;
          this.live[old] = Math.max(0, this.live[old]! - sizeAt(prev.address));
          if (prev.tombstone) this.tombstoneCount--;
          this.countSet(prev.setId, prev.tombstone, -1);
        }
        if (tombstone) this.tombstoneCount++;
        this.countSet(setId, tombstone, 1);
        seen.offs.push(off);
        seen.sizes.push(paddedLength);
        this.live[b]! += paddedLength;
        off += paddedLength;
      }
    }
    this.ix.setBulkLoad(false);
    this.nextSeq = maxSeq + 1;
    this.rebuildFreeList();
    this.openNewBlock(true);
    return {
      mode: order.length === 0 ? 'new' : 'cold',
      records: this.ix.size,
      tombstones: this.tombstoneCount,
      bytesRead,
      corrupt,
    };
  }

  // ---------------------------------------------------------------- warm restart snapshot

  private snapshotPaths(): { index: string; state: string; clean: string } {
    const dir = this.opts.stateDir!;
    return { index: join(dir, 'index.snap'), state: join(dir, 'state.json'), clean: join(dir, 'clean') };
  }

  private writeSnapshot(): void {
    const dir = this.opts.stateDir!;
    mkdirSync(dir, { recursive: true });
    const p = this.snapshotPaths();
    const chunks = [...this.ix.snapshotChunks()];
    const indexBuf = Buffer.concat(chunks);
    writeDurable(p.index, indexBuf);
    const blocks = Buffer.concat([
      Buffer.from(this.seq.buffer, this.seq.byteOffset, this.seq.byteLength),
      Buffer.from(this.live.buffer, this.live.byteOffset, this.live.byteLength),
      Buffer.from(this.state.buffer, this.state.byteOffset, this.state.byteLength),
    ]);
    const state = {
      format: SNAPSHOT_FORMAT,
      blockBytes: this.blockBytes,
      blockCount: this.device.blockCount,
      nextSeq: this.nextSeq,
      openBlock: this.openBlock,
      pos: this.pos,
      sets: this.setNames.slice(1),
      tombstones: this.tombstoneCount,
      liveBySet: Array.from(this.liveBySet.subarray(0, this.setNames.length)),
      tombBySet: Array.from(this.tombBySet.subarray(0, this.setNames.length)),
      records: this.ix.size,
      indexCrc: crc32(indexBuf),
      indexBytes: indexBuf.length,
      blocks: blocks.toString('base64'),
    };
    writeDurable(p.state, Buffer.from(JSON.stringify(state)));
    writeDurable(p.clean, Buffer.from(`${this.clock.nowMs()}\n`));
  }

  /** Deletes the snapshot files and their temporaries (after a failed write, or once consumed). */
  private removeSnapshot(): void {
    const p = this.snapshotPaths();
    for (const f of [p.clean, p.index, p.state]) {
      for (const path of [f, `${f}.tmp`]) {
        try {
          unlinkSync(path);
        } catch {
          // absent
        }
      }
    }
  }

  /** true when loaded; a string saying why not when a snapshot existed; false when none. */
  private tryWarm(): boolean | string {
    if (!this.opts.stateDir) return false;
    const p = this.snapshotPaths();
    if (!existsSync(p.clean)) return false;
    // Whatever happens next, the snapshot is consumed: a crash from here on must cold-scan.
    unlinkSync(p.clean);
    fsyncDir(this.opts.stateDir);
    try {
      const state = JSON.parse(readFileSync(p.state, 'utf8')) as {
        format: number; blockBytes: number; blockCount: number; nextSeq: number; openBlock: number; pos: number;
        sets: string[]; tombstones: number; indexCrc: number; indexBytes: number; blocks: string;
        liveBySet?: number[]; tombBySet?: number[];
      };
      if (!state.liveBySet || !state.tombBySet) return 'snapshot has no set counts';
      if (state.format !== SNAPSHOT_FORMAT) return `snapshot format ${state.format} is not ${SNAPSHOT_FORMAT}`;
      if (state.blockBytes !== this.blockBytes || state.blockCount !== this.device.blockCount) {
        return 'device geometry changed since the snapshot';
      }
      const indexBuf = readFileSync(p.index);
      if (indexBuf.length !== state.indexBytes || crc32(indexBuf) !== state.indexCrc) return 'index snapshot checksum mismatch';
      const blocks = Buffer.from(state.blocks, 'base64');
      const n = this.device.blockCount;
      if (blocks.length !== n * 17) return 'block table size mismatch';
      const aligned = Buffer.alloc(blocks.length);
      blocks.copy(aligned);
      this.seq.set(new Float64Array(aligned.buffer, aligned.byteOffset, n));
      this.live.set(new Float64Array(aligned.buffer, aligned.byteOffset + n * 8, n));
      this.state.set(new Uint8Array(aligned.buffer, aligned.byteOffset + n * 16, n));
      this.ix = PrimaryIndex.fromSnapshot(indexBuf);
      (this as { index: PrimaryIndex }).index = this.ix;
      for (const name of state.sets) this.setId(name);
      this.liveBySet.set(state.liveBySet);
      this.tombBySet.set(state.tombBySet);
      this.tombstoneCount = state.tombstones;
      this.nextSeq = state.nextSeq;
      for (let b = 0; b < n; b++) {
        const st = this.state[b];
        if (st === BlockState.DEFRAG) this.state[b] = BlockState.USED;
        if (st === BlockState.PENDING_FREE) this.state[b] = BlockState.FREE;
      }
      this.rebuildFreeList();
      if (state.openBlock >= 0) {
        this.openBlock = state.openBlock;
        this.state[this.openBlock] = BlockState.OPEN;
        this.openBuf = Buffer.alloc(this.blockBytes);
        this.device.read(this.openBlock, 0, state.pos).copy(this.openBuf);
        this.pos = state.pos;
        this.flushedPos = state.pos;
      } else {
        this.openNewBlock(true);
      }
      return true;
    } catch (err) {
      // Start over from a clean slate and scan.
      this.ix = new PrimaryIndex();
      (this as { index: PrimaryIndex }).index = this.ix;
      this.seq.fill(0);
      this.live.fill(0);
      this.state.fill(0);
      this.setIds.clear();
      this.setNames.length = 1;
      this.tombstoneCount = 0;
      this.liveBySet.fill(0);
      this.tombBySet.fill(0);
      return `snapshot unreadable: ${(err as Error).message}`;
    }
  }
}

/** A failed device write as a typed error: DEVICE_FULL for no space or quota, IO otherwise. */
function deviceWriteError(namespace: string, err: unknown): StorageError {
  const code = (err as NodeJS.ErrnoException).code;
  const full = code === 'ENOSPC' || code === 'EDQUOT';
  const what = full ? 'no space left for the device' : 'device write failed';
  return new StorageError(full ? 'DEVICE_FULL' : 'IO', `namespace ${namespace}: ${what}: ${(err as Error).message}`, { cause: err, retriable: true });
}

function writeDurable(path: string, data: Buffer): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, data);
  const fd = openSync(tmp, 'r');
  fsyncSync(fd);
  closeSync(fd);
  renameSync(tmp, path);
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    fsyncSync(fd);
    closeSync(fd);
  } catch {
    // Some filesystems refuse directory fsync; the unlink is still ordered before new writes.
  }
}

/** Opens a RecordStore on files under `dir` (or in memory when `files` is empty). */
export async function openRecordStore(o: {
  name: string;
  files: string[];
  fileBytes: number;
  memoryBytes: number;
  blockBytes: number;
  stateDir?: string;
  flushMaxMs: number;
  defragLwmPct: number;
  defragSleepMs: number;
  readCacheBlocks: number;
  /** A device to use instead of opening `files` (the simulator passes a simulated one). */
  device?: BlockDevice;
  clock?: Clock;
  timers?: Timers;
}): Promise<{ store: RecordStore; report: OpenReport }> {
  const device: BlockDevice =
    o.device ??
    (o.files.length > 0
      ? await FileDevice.open(o.files, o.fileBytes, o.blockBytes)
      : new MemoryDevice(o.blockBytes, Math.floor(o.memoryBytes / o.blockBytes)));
  const opts: RecordStoreOptions = {
    name: o.name,
    device,
    flushMaxMs: o.flushMaxMs,
    defragLwmPct: o.defragLwmPct,
    defragSleepMs: o.defragSleepMs,
    readCacheBlocks: o.readCacheBlocks,
  };
  if (o.stateDir) opts.stateDir = o.stateDir;
  if (o.clock) opts.clock = o.clock;
  if (o.timers) opts.timers = o.timers;
  const store = new RecordStore(opts);
  const report = await store.open();
  return { store, report };
}
