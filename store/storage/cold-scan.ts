/**
 * Cold scan: rebuilds the index, block table and set counts from the device alone. Blocks are
 * read in write-sequence order so the later copy of a digest wins; a record carries its block's
 * sequence, so a stale record left in a reused block ends the block's scan instead of counting.
 * Records that fail their check are counted as corrupt and skipped, never indexed.
 */
import type { BlockDevice } from './devices.js';
import { BlockState, type BlockTable } from './block-table.js';
import { emptyEntry, type PrimaryIndex } from './primary-index.js';
import { RECORD_HEADER_BYTES, alignUp, checkRecord } from './record-format.js';
import type { SetTable } from './set-table.js';
import type { StoreCounters } from './store-counters.js';

export interface ColdScanResult {
  /** 'new' when the device held no record block. */
  mode: 'new' | 'cold';
  bytesRead: number;
  corrupt: number;
  /** The highest block write sequence seen (0 when none). */
  maxSeq: number;
}

export interface ColdScanTarget {
  device: BlockDevice;
  table: BlockTable;
  index: PrimaryIndex;
  sets: SetTable;
  counters: StoreCounters;
}

/** Record blocks in write-sequence order, from each block's first header. */
function blocksInOrder(device: BlockDevice): { order: Array<{ b: number; seq: number }>; bytesRead: number } {
  const order: Array<{ b: number; seq: number }> = [];
  for (let b = 0; b < device.blockCount; b++) {
    const h = device.read(b, 0, RECORD_HEADER_BYTES);
    if (checkRecord(h, 0) === 'no-record') continue;
    order.push({ b, seq: h.readDoubleLE(16) });
  }
  order.sort((x, y) => x.seq - y.seq);
  return { order, bytesRead: device.blockCount * RECORD_HEADER_BYTES };
}

/** Per block, the offsets and padded sizes of the records counted, to un-count superseded copies. */
class SeenRecords {
  readonly #byBlock = new Map<number, { offs: number[]; sizes: number[] }>();

  add(block: number, off: number, size: number): void {
    let rec = this.#byBlock.get(block);
    if (!rec) {
      rec = { offs: [], sizes: [] };
      this.#byBlock.set(block, rec);
    }
    rec.offs.push(off);
    rec.sizes.push(size);
  }

  /** The size counted for the record at (block, off); offsets within a block are ascending. */
  sizeAt(block: number, off: number): number {
    const rec = this.#byBlock.get(block);
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
  }
}

export function coldScan(t: ColdScanTarget): ColdScanResult {
  const { order, bytesRead: headerBytes } = blocksInOrder(t.device);
  const seen = new SeenRecords();
  const scan = new BlockScanner(t, seen);
  let bytesRead = headerBytes;
  let maxSeq = 0;
  t.index.setBulkLoad(true);
  for (const { b, seq } of order) {
    const buf = t.device.read(b, 0, t.table.blockBytes);
    bytesRead += t.table.blockBytes;
    t.table.seq[b] = seq;
    t.table.setState(b, BlockState.USED);
    maxSeq = Math.max(maxSeq, seq);
    scan.block(b, seq, buf);
  }
  t.index.setBulkLoad(false);
  return { mode: order.length === 0 ? 'new' : 'cold', bytesRead, corrupt: scan.corrupt, maxSeq };
}

/** Indexes the records of one block after another. */
class BlockScanner {
  corrupt = 0;
  readonly #e = emptyEntry();
  readonly #prev = emptyEntry();
  #lastSetBytes: Buffer | undefined;
  #lastSetId = 0;

  constructor(
    private readonly t: ColdScanTarget,
    private readonly seen: SeenRecords,
  ) {}

  block(b: number, seq: number, buf: Buffer): void {
    const blockBytes = this.t.table.blockBytes;
    let off = 0;
    while (off < blockBytes) {
      const check = checkRecord(buf, off);
      if (check === 'no-record' || check === 'bad-length') break;
      if (buf.readDoubleLE(off + 16) !== seq) break;
      const paddedLength = alignUp(buf.readUInt32LE(off + 4));
      if (check === 'ok') this.record(b, off, paddedLength, buf);
      else {
        this.corrupt++;
        this.t.counters.checksumErrors++;
      }
      off += paddedLength;
    }
  }

  /** The set id of the record at `off`, caching the last name seen (runs of one set are common). */
  private setIdAt(buf: Buffer, off: number): number {
    const setLen = buf[off + 13]!;
    if (setLen === 0) return 0;
    const nameBytes = buf.subarray(off + RECORD_HEADER_BYTES, off + RECORD_HEADER_BYTES + setLen);
    if (this.#lastSetBytes === undefined || !nameBytes.equals(this.#lastSetBytes)) {
      try {
        this.#lastSetId = this.t.sets.id(nameBytes.toString('utf8'));
        this.#lastSetBytes = Buffer.from(nameBytes);
      } catch {
        this.corrupt++;
        this.#lastSetId = 0;
        this.#lastSetBytes = undefined;
      }
    }
    return this.#lastSetId;
  }

  private record(b: number, off: number, paddedLength: number, buf: Buffer): void {
    const { table, index, sets } = this.t;
    const digest = buf.subarray(off + 40, off + 60);
    const setId = this.setIdAt(buf, off);
    const flags = buf[off + 12]!;
    const tombstone = (flags & 1) !== 0;
    const e = this.#e;
    e.generation = buf.readUInt32LE(off + 24);
    e.voidTimeS = buf.readUInt32LE(off + 28);
    e.lutMs = buf.readDoubleLE(off + 32);
    e.address = table.address(b, off);
    e.setId = setId;
    e.tombstone = tombstone;
    e.hasKey = (flags & 2) !== 0;
    const prev = this.#prev;
    if (index.put(digest, e, prev)) {
      const old = table.blockOf(prev.address);
      table.subLive(old.block, this.seen.sizeAt(old.block, old.off));
      sets.count(prev.setId, prev.tombstone, -1);
    }
    sets.count(setId, tombstone, 1);
    this.seen.add(b, off, paddedLength);
    table.addLive(b, paddedLength);
  }
}
