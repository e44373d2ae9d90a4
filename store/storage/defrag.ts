/**
 * Defragmentation: blocks whose live bytes fall under `defragLwmPct` of a block are emptied in
 * slices of DEFRAG_SLICE_RECORDS records between foreground work. A live record (the index still
 * points at this copy) is re-appended to the open block; the emptied block is freed only after
 * the moved copies are durable (group commit writes its free marker a flush later). Memory
 * devices free it at once.
 *
 * Invariant (asserted): only one block is defragmented at a time, and it is in state DEFRAG.
 */
import assert from 'node:assert/strict';
import { yieldToLoop, type Timers } from '../runtime/index.js';
import type { BlockDevice } from './devices.js';
import { BlockState, type BlockTable } from './block-table.js';
import type { GroupCommit } from './group-commit.js';
import { emptyEntry, type PrimaryIndex } from './primary-index.js';
import { checkRecord, digestAt, readHeader } from './record-format.js';
import type { StoreCounters } from './store-counters.js';
import type { WriteBuffer } from './write-buffer.js';

/** Records a defrag slice moves before yielding to foreground work. */
export const DEFRAG_SLICE_RECORDS = 500;

export class Defragmenter {
  #block = -1;
  #offset = 0;
  readonly #scratch = emptyEntry();

  constructor(
    private readonly device: BlockDevice,
    private readonly table: BlockTable,
    private readonly buffer: WriteBuffer,
    private readonly commit: GroupCommit,
    /** The index as it is now (a warm start replaces it). */
    private readonly index: () => PrimaryIndex,
    private readonly counters: StoreCounters,
    private readonly lwmPct: number,
  ) {}

  /** Starts on the emptiest block under the low-water mark when none is in progress; false when none is. */
  private pick(): boolean {
    if (this.#block >= 0) return true;
    const b = this.table.pickDefragBlock((this.table.blockBytes * this.lwmPct) / 100);
    if (b < 0) return false;
    this.#block = b;
    this.#offset = 0;
    this.table.setState(b, BlockState.DEFRAG);
    return true;
  }

  /** One slice of background work (the store's defrag timer). */
  tick(): void {
    if (this.pick()) this.slice();
  }

  /** Runs defrag until no block is under the low-water mark (tests and benchmarks). */
  async runToEnd(timers: Timers): Promise<void> {
    while (this.pick()) {
      this.slice();
      await yieldToLoop(timers);
    }
    await this.commit.flushAll();
  }

  /** Moves up to DEFRAG_SLICE_RECORDS live records out of the block being defragmented. */
  slice(): void {
    const b = this.#block;
    if (b < 0) return;
    assert(this.table.state(b) === BlockState.DEFRAG, `block ${b} under defrag must be in state DEFRAG`);
    const moved = this.moveRecords(b);
    if (moved === undefined) {
      // No space for the copies: leave the block as it is and try again later.
      this.table.setState(b, BlockState.USED);
      this.#block = -1;
      return;
    }
    if (moved >= DEFRAG_SLICE_RECORDS) return;
    this.finish(b);
  }

  /** Moves live records from #offset on; the count moved, or undefined when an append failed. */
  private moveRecords(b: number): number | undefined {
    const blockBytes = this.table.blockBytes;
    const buf = this.buffer.memoryBlock(b) ?? this.device.read(b, 0, blockBytes);
    const seq = this.table.seq[b]!;
    const ix = this.index();
    const e = this.#scratch;
    let moved = 0;
    let off = this.#offset;
    while (moved < DEFRAG_SLICE_RECORDS) {
      const check = checkRecord(buf, off);
      if (check === 'no-record' || check === 'bad-length') break;
      const h = readHeader(buf, off);
      if (h.blockSeq !== seq) break;
      if (check === 'ok') {
        const digest = digestAt(buf, off);
        if (ix.get(digest, e) && e.address === this.table.address(b, off)) {
          const copy = Buffer.from(buf.subarray(off, off + h.paddedLength));
          try {
            e.address = this.buffer.append(copy, true);
          } catch {
            return undefined;
          }
          ix.put(digest, e);
          this.table.subLive(b, h.paddedLength);
          this.counters.defragRecords++;
          moved++;
        }
      } else {
        this.counters.checksumErrors++;
      }
      off += h.paddedLength;
      if (off >= blockBytes) break;
    }
    this.#offset = off;
    return moved;
  }

  /** The block holds no live record any more: free it (after the moves are durable, on a device). */
  private finish(b: number): void {
    this.counters.defragBlocks++;
    this.#block = -1;
    this.buffer.forget(b);
    this.table.clearLive(b);
    if (this.device.persistent) {
      this.table.setState(b, BlockState.PENDING_FREE);
      this.commit.freeAfterNextFlush(b);
    } else {
      this.device.release(b);
      this.table.release(b);
    }
  }
}
