/**
 * The block table: per write block its state, write sequence and live bytes, plus the free list.
 *
 * Invariants (asserted, on in production): a block's live bytes never go below zero nor above
 * the block size (a count that would means an accounting bug elsewhere, which a clamp would
 * hide until defrag freed a block still holding live records); a block on the free list is FREE.
 * Addresses are in 16-byte units: block * unitsPerBlock + offset / 16.
 */
import assert from 'node:assert/strict';
import { RECORD_ALIGN_BYTES } from './record-format.js';

export const BlockState = { FREE: 0, OPEN: 1, USED: 2, DEFRAG: 3, PENDING_FREE: 4 } as const;
export type BlockStateId = (typeof BlockState)[keyof typeof BlockState];

/** Bytes per block in the serialized table: sequence (f64), live bytes (f64), state (u8). */
export const BLOCK_TABLE_BYTES_PER_BLOCK = 17;

export class BlockTable {
  readonly unitsPerBlock: number;
  readonly seq: Float64Array;
  readonly #live: Float64Array;
  readonly #state: Uint8Array;
  readonly #free: number[] = [];
  /**
   * The low-water mark of the last pickDefragBlock() that found no block, while nothing that
   * could make a block a candidate (live bytes going down, a state change, a load) happened
   * since; -1 otherwise. Lets the defrag timer (every defrag-sleep-ms on every namespace) skip
   * its scan of every block when nothing changed: on a 16 GiB device that is 16 384 blocks,
   * 200 times a second.
   */
  #noCandidateUnder = -1;

  constructor(
    readonly blockBytes: number,
    readonly count: number,
    private readonly name: string,
  ) {
    assert(blockBytes % RECORD_ALIGN_BYTES === 0 && count > 0, 'block geometry must be aligned and non-empty');
    this.unitsPerBlock = blockBytes / RECORD_ALIGN_BYTES;
    this.seq = new Float64Array(count);
    this.#live = new Float64Array(count);
    this.#state = new Uint8Array(count);
  }

  // ---------------------------------------------------------------- addresses

  address(block: number, off: number): number {
    return block * this.unitsPerBlock + off / RECORD_ALIGN_BYTES;
  }

  blockOf(address: number): { block: number; off: number } {
    const block = Math.floor(address / this.unitsPerBlock);
    return { block, off: (address - block * this.unitsPerBlock) * RECORD_ALIGN_BYTES };
  }

  // ---------------------------------------------------------------- live bytes

  live(b: number): number {
    return this.#live[b]!;
  }

  addLive(b: number, bytes: number): void {
    const n = this.#live[b]! + bytes;
    assert(n <= this.blockBytes, `namespace ${this.name}: block ${b} would hold ${n} live bytes, more than its ${this.blockBytes}`);
    this.#live[b] = n;
  }

  subLive(b: number, bytes: number): void {
    const n = this.#live[b]! - bytes;
    assert(n >= 0, `namespace ${this.name}: block ${b} live bytes would drift below zero (${this.#live[b]} - ${bytes}): a record was un-counted twice`);
    this.#live[b] = n;
    this.#noCandidateUnder = -1;
  }

  clearLive(b: number): void {
    this.#live[b] = 0;
    this.#noCandidateUnder = -1;
  }

  usedBytes(): number {
    let used = 0;
    for (let b = 0; b < this.count; b++) used += this.#live[b]!;
    return used;
  }

  // ---------------------------------------------------------------- states and the free list

  state(b: number): BlockStateId {
    return this.#state[b] as BlockStateId;
  }

  setState(b: number, s: BlockStateId): void {
    this.#state[b] = s;
    this.#noCandidateUnder = -1;
  }

  freeCount(): number {
    let free = 0;
    for (let b = 0; b < this.count; b++) if (this.#state[b] === BlockState.FREE) free++;
    return free;
  }

  /** Free blocks ready to hand out (the list, not a scan). */
  freeListLength(): number {
    return this.#free.length;
  }

  /** Takes the next free block (low block numbers first), or undefined when none is left. */
  takeFree(): number | undefined {
    const b = this.#free.pop();
    if (b !== undefined) assert(this.#state[b] === BlockState.FREE, `namespace ${this.name}: block ${b} on the free list is not free`);
    return b;
  }

  /** Marks a block free and puts it at the back of the queue (reused last). */
  release(b: number): void {
    assert(this.#state[b] !== BlockState.FREE, `namespace ${this.name}: block ${b} freed twice`);
    this.#state[b] = BlockState.FREE;
    this.#free.unshift(b);
  }

  rebuildFreeList(): void {
    this.#free.length = 0;
    // Pop from the end: hand out low block numbers first.
    for (let b = this.count - 1; b >= 0; b--) if (this.#state[b] === BlockState.FREE) this.#free.push(b);
  }

  /** The USED block with the fewest live bytes under `lwmBytes`, or -1. */
  pickDefragBlock(lwmBytes: number): number {
    if (this.#noCandidateUnder === lwmBytes) return -1;
    let best = -1;
    for (let b = 0; b < this.count; b++) {
      if (this.#state[b] !== BlockState.USED || this.#live[b]! >= lwmBytes) continue;
      if (best < 0 || this.#live[b]! < this.#live[best]!) best = b;
    }
    if (best < 0) this.#noCandidateUnder = lwmBytes;
    return best;
  }

  // ---------------------------------------------------------------- snapshot form

  toBytes(): Buffer {
    return Buffer.concat([
      Buffer.from(this.seq.buffer, this.seq.byteOffset, this.seq.byteLength),
      Buffer.from(this.#live.buffer, this.#live.byteOffset, this.#live.byteLength),
      Buffer.from(this.#state.buffer, this.#state.byteOffset, this.#state.byteLength),
    ]);
  }

  /** Loads toBytes() output; a warm start turns DEFRAG blocks back to USED and PENDING_FREE to FREE. */
  load(blocks: Buffer): void {
    const n = this.count;
    assert(blocks.length === n * BLOCK_TABLE_BYTES_PER_BLOCK, 'block table size must match the device');
    const aligned = Buffer.alloc(blocks.length);
    blocks.copy(aligned);
    this.seq.set(new Float64Array(aligned.buffer, aligned.byteOffset, n));
    this.#live.set(new Float64Array(aligned.buffer, aligned.byteOffset + n * 8, n));
    this.#state.set(new Uint8Array(aligned.buffer, aligned.byteOffset + n * 16, n));
    this.#noCandidateUnder = -1;
    for (let b = 0; b < n; b++) {
      const st = this.#state[b];
      if (st === BlockState.DEFRAG) this.#state[b] = BlockState.USED;
      if (st === BlockState.PENDING_FREE) this.#state[b] = BlockState.FREE;
    }
    this.rebuildFreeList();
  }

  reset(): void {
    this.seq.fill(0);
    this.#live.fill(0);
    this.#state.fill(0);
    this.#free.length = 0;
  }
}
