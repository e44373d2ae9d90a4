/**
 * The write buffer: the open write block records are appended to, the sealed blocks not yet
 * written to the device, and the post-write read cache of sealed blocks.
 *
 * Unwritten bytes are kept as segments (block, buffer, from, to) that the group commit takes,
 * writes and either acknowledges or hands back after a failed write. Invariants (asserted): an
 * appended record is aligned and fits the open block; a taken segment is never empty.
 */
import assert from 'node:assert/strict';
import { LRUCache } from 'lru-cache';
import { MemoryDevice, type BlockDevice } from './devices.js';
import { StorageError } from './errors.js';
import { BlockState, type BlockTable } from './block-table.js';
import { RECORD_ALIGN_BYTES, alignUp, encodeRecordInto, sealRecord, type StoredRecord } from './record-format.js';

/** Blocks only defrag may take, so defrag can always make progress on a nearly full device. */
export const DEFRAG_RESERVE_BLOCKS = 2;
/**
 * Sealed blocks not yet written to the device, held in memory until their write completes.
 * Past this many, writers wait for a flush (backpressure instead of unbounded memory).
 */
export const UNFLUSHED_BLOCKS_MAX = 32;

export interface Segment {
  block: number;
  buf: Buffer;
  from: number;
  to: number;
}

export class WriteBuffer {
  #openBlock = -1;
  #openBuf: Buffer = Buffer.alloc(0);
  #pos = 0;
  #flushedPos = 0;
  /** Write sequence the next opened block gets. */
  nextSeq = 1;
  /** Write blocks opened so far. */
  blocksOpened = 0;
  #segments: Segment[] = [];
  readonly #unflushed = new Map<number, Buffer>();
  readonly #cache: LRUCache<number, Buffer>;

  constructor(
    private readonly name: string,
    private readonly device: BlockDevice,
    private readonly table: BlockTable,
    readCacheBlocks: number,
    /** Called when enough sealed blocks wait that a flush should start now. */
    private readonly wantFlush: () => void,
  ) {
    this.#cache = new LRUCache<number, Buffer>({ max: Math.max(1, readCacheBlocks) });
  }

  get openBlock(): number {
    return this.#openBlock;
  }

  get pos(): number {
    return this.#pos;
  }

  /** Appends an encoded record (sealed here with the block's sequence); returns its address (16-byte units). */
  append(bytes: Buffer, forDefrag: boolean): number {
    this.makeRoom(bytes.length, forDefrag);
    sealRecord(bytes, this.table.seq[this.#openBlock]!);
    bytes.copy(this.#openBuf, this.#pos);
    return this.advance(bytes.length);
  }

  /**
   * Encodes `r` (its encodedLength is `length`) straight into the open block, sealed: no
   * intermediate buffer and no copy. Returns its address (16-byte units).
   */
  appendRecord(r: StoredRecord, length: number): number {
    const size = alignUp(length);
    this.makeRoom(size, false);
    encodeRecordInto(r, this.#openBuf, this.#pos, length);
    sealRecord(this.#openBuf, this.table.seq[this.#openBlock]!, this.#pos);
    return this.advance(size);
  }

  /**
   * The bytes (padded) of the record appended last, `size` bytes long, as a view of the open
   * block: valid until the block is freed and reused, so read it in the same turn (to send it on).
   */
  lastAppended(size: number): Buffer {
    assert(size <= this.#pos, 'the record appended last lies in the open block');
    return this.#openBuf.subarray(this.#pos - size, this.#pos);
  }

  /**
   * Copies the encoded record at `src[off..off + length)` (checked by the caller) into the open
   * block, zero-padded and sealed with the block's sequence: a record that arrives in device
   * format is stored without decoding it. Returns its address (16-byte units).
   */
  appendEncoded(src: Buffer, off: number, length: number): number {
    const size = alignUp(length);
    this.makeRoom(size, false);
    src.copy(this.#openBuf, this.#pos, off, off + length);
    this.#openBuf.fill(0, this.#pos + length, this.#pos + size);
    sealRecord(this.#openBuf, this.table.seq[this.#openBlock]!, this.#pos);
    return this.advance(size);
  }

  /** Seals the open block and opens another when `size` bytes do not fit what is left of it. */
  private makeRoom(size: number, forDefrag: boolean): void {
    const blockBytes = this.table.blockBytes;
    if (this.#pos + size > blockBytes) {
      if (this.table.freeListLength() <= (forDefrag ? 0 : DEFRAG_RESERVE_BLOCKS)) {
        throw new StorageError('DEVICE_FULL', `namespace ${this.name}: no free write block`, { retriable: true });
      }
      this.seal();
      this.openNew();
    }
    assert(size % RECORD_ALIGN_BYTES === 0 && this.#pos + size <= blockBytes, 'a record must fit the open block, aligned');
  }

  private advance(size: number): number {
    const address = this.table.address(this.#openBlock, this.#pos);
    this.#pos += size;
    this.table.addLive(this.#openBlock, size);
    return address;
  }

  private seal(): void {
    const b = this.#openBlock;
    if (b < 0) return;
    if (this.device.persistent) {
      if (this.#pos > this.#flushedPos) {
        this.#segments.push({ block: b, buf: this.#openBuf, from: this.#flushedPos, to: this.#pos });
        this.#unflushed.set(b, this.#openBuf);
      }
      this.#cache.set(b, this.#openBuf);
      if (this.#unflushed.size >= UNFLUSHED_BLOCKS_MAX / 2) this.wantFlush();
    }
    this.table.setState(b, BlockState.USED);
    this.#openBlock = -1;
  }

  /** Opens the next free block for appends. */
  openNew(): void {
    const b = this.table.takeFree();
    if (b === undefined) {
      throw new StorageError('DEVICE_FULL', `namespace ${this.name}: no free write block`, { retriable: true });
    }
    this.#openBlock = b;
    this.blocksOpened++;
    this.table.setState(b, BlockState.OPEN);
    this.table.seq[b] = this.nextSeq++;
    this.table.clearLive(b);
    this.#pos = 0;
    this.#flushedPos = 0;
    this.#cache.delete(b);
    this.#openBuf = this.device instanceof MemoryDevice ? this.device.blockBuffer(b) : Buffer.alloc(this.table.blockBytes);
  }

  /** Reopens a block a warm start left open, with its first `pos` bytes already on the device. */
  reopen(b: number, pos: number): void {
    this.#openBlock = b;
    this.table.setState(b, BlockState.OPEN);
    this.#openBuf = Buffer.alloc(this.table.blockBytes);
    this.device.read(b, 0, pos).copy(this.#openBuf);
    this.#pos = pos;
    this.#flushedPos = pos;
  }

  /** A block's bytes when they are in memory (open, not yet written, or cached). */
  memoryBlock(b: number): Buffer | undefined {
    if (b === this.#openBlock) return this.#openBuf;
    return this.#unflushed.get(b) ?? this.#cache.get(b);
  }

  /** Drops a block from the read cache (it is being freed). */
  forget(b: number): void {
    this.#cache.delete(b);
  }

  backlogged(): boolean {
    return this.#unflushed.size >= UNFLUSHED_BLOCKS_MAX;
  }

  hasUnwritten(): boolean {
    return this.#segments.length > 0 || this.#pos > this.#flushedPos;
  }

  /** Takes every unwritten segment, the open block's tail included, for one device write. */
  take(): Segment[] {
    const segs = this.#segments;
    this.#segments = [];
    if (this.#openBlock >= 0 && this.#pos > this.#flushedPos) {
      segs.push({ block: this.#openBlock, buf: this.#openBuf, from: this.#flushedPos, to: this.#pos });
      this.#flushedPos = this.#pos;
    }
    for (const s of segs) assert(s.to > s.from, `namespace ${this.name}: empty segment of block ${s.block} taken for writing`);
    return segs;
  }

  /** Hands segments back after a failed write: they are written first next time. */
  giveBack(segs: Segment[]): void {
    this.#segments.unshift(...segs);
  }

  /** Segments are durable: sealed blocks no longer need their unwritten copy. */
  written(segs: Segment[]): void {
    for (const seg of segs) if (seg.block !== this.#openBlock && this.#unflushed.get(seg.block) === seg.buf) this.#unflushed.delete(seg.block);
  }

  unwrittenBytes(): number {
    let n = this.#pos - this.#flushedPos;
    for (const s of this.#segments) n += s.to - s.from;
    return n;
  }

  /** Bytes of block buffers held besides the device (memory devices hold their data as blocks). */
  bufferBytes(): number {
    if (!this.device.persistent) return 0;
    const held = new Set<Buffer>(this.#cache.values());
    for (const b of this.#unflushed.values()) held.add(b);
    held.add(this.#openBuf);
    let n = 0;
    for (const b of held) n += b.length;
    return n;
  }
}
