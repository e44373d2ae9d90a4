/**
 * RecordStore: the primary index plus log-structured record storage for one namespace. This
 * class assembles the parts, each in a module of its own:
 * - block-table.ts: per block its state, write sequence and live bytes; the free list;
 * - write-buffer.ts: the open write block, sealed blocks not yet written, the read cache;
 * - group-commit.ts: flushes and the one datasync every waiting commit() shares; free markers;
 * - record-reader.ts: reading a record back, checked before it is returned;
 * - defrag.ts: emptying blocks under `defragLwmPct` in slices between foreground work;
 * - cold-scan.ts and snapshot.ts: the two ways open() rebuilds its state;
 * - tombstone-reclaim.ts: which tombstones may leave the index;
 * - set-table.ts: set names and per-set record and tombstone counts.
 *
 * Writes append encoded records to the open write block; the block is written to the device
 * when it fills, every `flushMaxMs`, or when a caller asks for `commit()` (group commit). Blocks
 * under the low-water mark are defragmented; a block is freed only after the new copies of its
 * records are durable, and marked free on the device before reuse.
 *
 * Restart: a clean close persists the index, block table and set names (warm restart loads them
 * instead of scanning). Otherwise open() scans every block in write-sequence order and the later
 * copy of a digest wins. Deletes are tombstones, reclaimed only when no older copy of their
 * record remains on any block (reclaimTombstones).
 *
 * Everything but flushing, opening and closing is synchronous: the node is one event loop, so a
 * namespace holding a record lock sees a consistent index.
 */
import { DIGEST_BYTES, PARTITION_COUNT, type PartitionId } from '../types.js';
import { systemClock, systemTimers, type Clock, type TimerHandle, type Timers } from '../runtime/index.js';
import { FileDevice, MemoryDevice, type BlockDevice } from './devices.js';
import { StorageError } from './errors.js';
import { BlockTable } from './block-table.js';
import { coldScan } from './cold-scan.js';
import { Defragmenter } from './defrag.js';
import { GroupCommit } from './group-commit.js';
import { PrimaryIndex, emptyEntry, type IndexEntry } from './primary-index.js';
import { RECORD_ALIGN_BYTES, RECORD_DIGEST_OFFSET, alignUp, decodeRecord, encodedLength, type RecordHeader, type StoredRecord } from './record-format.js';
import { RecordReader } from './record-reader.js';
import { SetTable } from './set-table.js';
import { consumeSnapshot, readSnapshot, removeSnapshot, writeSnapshot } from './snapshot.js';
import { newStoreCounters, type StoreCounters } from './store-counters.js';
import { reclaimableTombstones } from './tombstone-reclaim.js';
import { DEFRAG_RESERVE_BLOCKS, WriteBuffer } from './write-buffer.js';

export { SETS_MAX } from './set-table.js';

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

export interface StoreStats extends StoreCounters {
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

export class RecordStore {
  readonly index = new PrimaryIndex();
  private ix: PrimaryIndex = this.index;
  private readonly device: BlockDevice;
  private readonly blockBytes: number;
  private readonly table: BlockTable;
  private readonly sets: SetTable;
  private readonly buffer: WriteBuffer;
  private readonly group: GroupCommit;
  private readonly reader: RecordReader;
  private readonly defrag: Defragmenter;
  private ticks: TimerHandle[] = [];
  private readonly clock: Clock;
  private readonly timers: Timers;
  private closed = false;
  /** Set by the namespace while its filesystem is out of space (defrag would allocate more). */
  defragPaused = false;
  private readonly counters = newStoreCounters();
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
    const n = this.device.blockCount;
    if (n < DEFRAG_RESERVE_BLOCKS + 2) {
      throw new StorageError('CONFIG', `namespace ${opts.name}: storage holds ${n} write blocks; at least ${DEFRAG_RESERVE_BLOCKS + 2} are needed`);
    }
    this.table = new BlockTable(this.blockBytes, n, opts.name);
    this.sets = new SetTable(opts.name);
    this.buffer = new WriteBuffer(opts.name, this.device, this.table, opts.readCacheBlocks, () => this.group.schedule());
    this.group = new GroupCommit(opts.name, this.device, this.table, this.buffer, this.timers);
    this.reader = new RecordReader(opts.name, this.device, this.table, this.buffer, this.counters);
    this.defrag = new Defragmenter(this.device, this.table, this.buffer, this.group, () => this.ix, this.counters, opts.defragLwmPct);
  }

  /** Write blocks opened so far: the namespace re-checks free space each time one is. */
  get blocksOpened(): number {
    return this.buffer.blocksOpened;
  }

  // ---------------------------------------------------------------- open / close

  async open(): Promise<OpenReport> {
    const t0 = this.clock.nowMs();
    const report = this.device.persistent ? this.openDevice() : this.openMemory();
    report.durationMs = this.clock.nowMs() - t0;
    this.ticks.push(this.timers.setInterval(() => this.group.schedule(), Math.max(1, this.opts.flushMaxMs)));
    this.ticks.push(this.timers.setInterval(() => this.defragTick(), Math.max(1, this.opts.defragSleepMs)));
    for (const t of this.ticks) t.unref();
    return report;
  }

  private openMemory(): OpenReport {
    this.table.rebuildFreeList();
    this.buffer.openNew();
    return { mode: 'memory', records: 0, tombstones: 0, durationMs: 0, bytesRead: 0, corrupt: 0 };
  }

  private openDevice(): OpenReport {
    const warm = this.tryWarm();
    // A snapshot serves one start: its space is given back now (a full disk needs it later).
    if (this.opts.stateDir) removeSnapshot(this.opts.stateDir);
    if (warm === true) {
      return { mode: 'warm', records: this.ix.size, tombstones: this.sets.tombstones, durationMs: 0, bytesRead: 0, corrupt: 0 };
    }
    const cold = coldScan({ device: this.device, table: this.table, index: this.ix, sets: this.sets, counters: this.counters });
    this.buffer.nextSeq = cold.maxSeq + 1;
    this.table.rebuildFreeList();
    this.buffer.openNew();
    const report: OpenReport = { mode: cold.mode, records: this.ix.size, tombstones: this.sets.tombstones, bytesRead: cold.bytesRead, corrupt: cold.corrupt, durationMs: 0 };
    if (typeof warm === 'string') report.warmRefused = warm;
    return report;
  }

  /**
   * Flushes what is buffered, writes the warm-restart snapshot and closes the device. On a full
   * (or failing) disk it skips what it cannot write, closes the device anyway, and then throws
   * CLOSE_INCOMPLETE saying what was skipped: without a snapshot the next start is a cold scan.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.stopTicks();
    this.group.stop();
    const skipped: string[] = [];
    try {
      await this.group.flushAll();
    } catch (err) {
      skipped.push(`buffered writes not written (${this.buffer.unwrittenBytes()} bytes): ${(err as Error).message}`);
    }
    this.group.end();
    this.closed = true;
    const dir = this.opts.stateDir;
    if (skipped.length === 0 && this.device.persistent && dir) {
      try {
        writeSnapshot(dir, this.snapshotContent(), this.clock.nowMs());
      } catch (err) {
        removeSnapshot(dir);
        skipped.push(`warm-restart snapshot not written (the next start is a cold scan): ${(err as Error).message}`);
      }
    }
    await this.device.close();
    if (skipped.length > 0) throw new StorageError('CLOSE_INCOMPLETE', `namespace ${this.opts.name}: ${skipped.join('; ')}`);
  }

  /** Abandons the store without flushing or snapshotting (tests simulate a crash with it). */
  async abandon(): Promise<void> {
    this.stopTicks();
    this.closed = true;
    this.group.stop();
    await this.group.idle();
    this.group.end();
    await this.device.close();
  }

  private stopTicks(): void {
    for (const t of this.ticks) this.timers.clearInterval(t);
    this.ticks = [];
  }

  // ---------------------------------------------------------------- records

  /** Reads index metadata; false when absent. */
  lookup(digest: Buffer, out: IndexEntry): boolean {
    return this.ix.get(digest, out);
  }

  /** The stored record (tombstones included), or undefined when the digest is not indexed. */
  read(digest: Buffer): StoredRecord | undefined {
    if (!this.ix.get(digest, this.scratch)) return undefined;
    const { buf, off } = this.reader.bytes(this.scratch.address);
    return decodeRecord(buf, off);
  }

  /**
   * Writes a record version (or a tombstone when `r.tombstone`). Returns its bytes as stored
   * (device format, sealed with its CRC, padded): a view of the write block, to be read before
   * the next write (the master sends them to its replicas as they are, not encoded again).
   */
  write(r: StoredRecord): Buffer {
    this.assertOpen();
    const setId = this.sets.id(r.setName);
    const length = encodedLength(r);
    const size = alignUp(length);
    if (size > this.blockBytes) {
      throw new StorageError('RECORD_TOO_BIG', `record of ${size} bytes exceeds the write block (${this.blockBytes} bytes)`);
    }
    this.indexVersion(r.digest, this.buffer.appendRecord(r, length), setId, r, r.key !== undefined);
    return this.buffer.lastAppended(size);
  }

  /**
   * Writes a record that is already encoded (a replica write as its master sent it): the bytes
   * at `src[off..]`, whose header is `h`, are copied into the write block and resealed, not
   * decoded and encoded again. The caller checked them (checkRecord and recordLayoutOk).
   */
  writeEncoded(src: Buffer, off: number, h: RecordHeader): void {
    this.assertOpen();
    const setId = this.sets.id(h.setName);
    if (h.paddedLength > this.blockBytes) {
      throw new StorageError('RECORD_TOO_BIG', `record of ${h.paddedLength} bytes exceeds the write block (${this.blockBytes} bytes)`);
    }
    const address = this.buffer.appendEncoded(src, off, h.length);
    this.indexVersion(src.subarray(off + RECORD_DIGEST_OFFSET, off + RECORD_DIGEST_OFFSET + DIGEST_BYTES), address, setId, h, h.hasKey);
  }

  /** Points the index at a version just appended, and moves the set and block counts from the one it replaces. */
  private indexVersion(digest: Buffer, address: number, setId: number, v: { generation: number; lutMs: number; voidTimeS: number; tombstone: boolean }, hasKey: boolean): void {
    const e = this.entry;
    e.generation = v.generation;
    e.lutMs = v.lutMs;
    e.voidTimeS = v.voidTimeS;
    e.address = address;
    e.setId = setId;
    e.tombstone = v.tombstone;
    e.hasKey = hasKey;
    const prev = this.scratch;
    if (this.ix.put(digest, e, prev)) this.uncount(prev);
    this.sets.count(setId, v.tombstone, 1);
  }

  /** Forgets a record entirely (memory namespaces expire this way; devices reclaim tombstones). */
  drop(digest: Buffer): boolean {
    if (!this.ix.get(digest, this.scratch)) return false;
    this.uncount(this.scratch);
    this.ix.delete(digest);
    return true;
  }

  /** Takes a superseded or dropped index entry out of the block and set counts. */
  private uncount(e: IndexEntry): void {
    this.table.subLive(this.table.blockOf(e.address).block, this.reader.length(e.address));
    this.sets.count(e.setId, e.tombstone, -1);
  }

  forEach(pid: PartitionId, visit: (digest: Buffer, e: IndexEntry) => void): void {
    this.ix.forEach(pid, visit);
  }

  /** Index entries of a set: live records (expired ones until removed) and tombstones. */
  setCounts(setId: number): { objects: number; tombstones: number } {
    return this.sets.counts(setId);
  }

  partitionSize(pid: PartitionId): number {
    return this.ix.partitionSize(pid);
  }

  setId(name: string): number {
    return this.sets.id(name);
  }

  setName(id: number): string {
    return this.sets.name(id);
  }

  allSetNames(): string[] {
    return this.sets.names();
  }

  /** True when writers should wait for a flush before going on (too many unwritten blocks). */
  backlogged(): boolean {
    return this.buffer.backlogged();
  }

  /** Resolves when everything written so far is durable. */
  commit(): Promise<void> {
    return this.group.commit();
  }

  stats(): StoreStats {
    const free = this.table.freeCount();
    const blocks = this.device.blockCount;
    return {
      records: this.ix.size,
      tombstones: this.sets.tombstones,
      usedBytes: this.table.usedBytes(),
      totalBytes: blocks * this.blockBytes,
      freeBlocks: free,
      totalBlocks: blocks,
      availablePct: Math.floor((free * 100) / blocks),
      indexBytes: this.ix.memoryBytes(),
      memoryBytes: this.ix.memoryBytes() + this.buffer.bufferBytes(),
      ...this.counters,
      flushes: this.group.flushes,
    };
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

  /** Why the device refuses writes now ('' when it does not): its last write failed. */
  writeFailure(): string {
    return this.group.failure?.message ?? '';
  }

  private assertOpen(): void {
    if (this.closed) throw new StorageError('CLOSED', `namespace ${this.opts.name}: storage is closed`);
    const failure = this.group.failure;
    if (failure) throw failure;
  }

  // ---------------------------------------------------------------- defrag

  private defragTick(): void {
    // Defrag writes too: not while the device fails or the filesystem is out of space.
    if (this.closed || this.group.failure || this.defragPaused) return;
    this.defrag.tick();
  }

  /** Moves up to one slice of live records out of the block being defragmented. */
  defragSlice(): void {
    this.defrag.slice();
  }

  /** Runs defrag until no block is under the low-water mark (tests and benchmarks). */
  async defragNow(): Promise<void> {
    await this.defrag.runToEnd(this.timers);
  }

  // ---------------------------------------------------------------- tombstones

  /**
   * Reclaims tombstones last updated before `olderThanLutMs` when no older copy of their record
   * remains on any block (a cold restart could otherwise bring it back). Returns how many.
   */
  async reclaimTombstones(olderThanLutMs: number): Promise<number> {
    const hexes = await reclaimableTombstones(
      {
        device: this.device,
        table: this.table,
        index: this.ix,
        memoryBlock: (b) => this.buffer.memoryBlock(b),
        timers: this.timers,
        flushAll: () => this.group.flushAll(),
      },
      olderThanLutMs,
    );
    let n = 0;
    for (const hex of hexes) {
      const d = Buffer.from(hex, 'hex');
      // Re-checked: a write may have replaced the tombstone while the blocks were scanned.
      if (this.ix.get(d, this.scratch) && this.scratch.tombstone && this.scratch.lutMs < olderThanLutMs) {
        this.drop(d);
        n++;
      }
    }
    this.counters.tombstonesReclaimed += n;
    return n;
  }

  // ---------------------------------------------------------------- warm restart snapshot

  private snapshotContent(): Parameters<typeof writeSnapshot>[1] {
    return {
      blockBytes: this.blockBytes,
      blockCount: this.device.blockCount,
      nextSeq: this.buffer.nextSeq,
      openBlock: this.buffer.openBlock,
      pos: this.buffer.pos,
      ...this.sets.toSnapshot(),
      records: this.ix.size,
      index: Buffer.concat([...this.ix.snapshotChunks()]),
      blocks: this.table.toBytes(),
    };
  }

  /** true when loaded; a string saying why not when a snapshot existed; false when none. */
  private tryWarm(): boolean | string {
    const dir = this.opts.stateDir;
    if (!dir || !consumeSnapshot(dir)) return false;
    try {
      const snap = readSnapshot(dir, { blockBytes: this.blockBytes, blockCount: this.device.blockCount });
      if (typeof snap === 'string') return snap;
      this.table.load(snap.blocks);
      this.setIndex(PrimaryIndex.fromSnapshot(snap.index));
      this.sets.load(snap);
      this.buffer.nextSeq = snap.nextSeq;
      if (snap.openBlock >= 0) this.buffer.reopen(snap.openBlock, snap.pos);
      else this.buffer.openNew();
      return true;
    } catch (err) {
      // Start over from a clean slate and scan.
      this.setIndex(new PrimaryIndex());
      this.table.reset();
      this.sets.reset();
      return `snapshot unreadable: ${(err as Error).message}`;
    }
  }

  private setIndex(ix: PrimaryIndex): void {
    this.ix = ix;
    (this as { index: PrimaryIndex }).index = ix;
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
