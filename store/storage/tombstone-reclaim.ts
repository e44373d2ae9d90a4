/**
 * Tombstone reclamation: a tombstone may leave the index only when no older copy of its record
 * remains on any block, or a cold restart would bring the record back. This module finds, among
 * old tombstones, those whose record has no such copy; the store drops them.
 */
import { yieldToLoop, type Timers } from '../runtime/index.js';
import { PARTITION_COUNT, type PartitionId } from '../types.js';
import type { BlockDevice } from './devices.js';
import { BlockState, type BlockTable } from './block-table.js';
import type { PrimaryIndex } from './primary-index.js';
import { checkRecord, digestAt, readHeader } from './record-format.js';

/** Blocks scanned between yields to foreground work. */
const RECLAIM_BLOCKS_PER_YIELD = 64;

export interface ReclaimSource {
  device: BlockDevice;
  table: BlockTable;
  index: PrimaryIndex;
  /** A block's bytes when held in memory (open, unwritten or cached). */
  memoryBlock(b: number): Buffer | undefined;
  timers: Timers;
  /** Makes every buffered write durable (before the device is read). */
  flushAll(): Promise<void>;
}

/** Tombstones last updated before `olderThanLutMs`: digest hex -> the tombstone's block sequence. */
function oldTombstones(s: ReclaimSource, olderThanLutMs: number): Map<string, number> {
  const candidates = new Map<string, number>();
  for (let p = 0; p < PARTITION_COUNT; p++) {
    s.index.forEach(p as PartitionId, (d, e) => {
      if (e.tombstone && e.lutMs < olderThanLutMs) candidates.set(d.toString('hex'), s.table.seq[s.table.blockOf(e.address).block]!);
    });
  }
  return candidates;
}

/** Removes from `candidates` every digest with a live copy in a block no newer than its tombstone. */
function dropShadowed(s: ReclaimSource, b: number, candidates: Map<string, number>): void {
  const buf = s.memoryBlock(b) ?? s.device.read(b, 0, s.table.blockBytes);
  const seq = s.table.seq[b]!;
  for (let off = 0; off < s.table.blockBytes; ) {
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
}

/**
 * The digests (hex) of old tombstones that no older copy shadows. On a persistent device the
 * buffered writes are flushed first, so every block is read as it is on the device.
 */
export async function reclaimableTombstones(s: ReclaimSource, olderThanLutMs: number): Promise<string[]> {
  const candidates = oldTombstones(s, olderThanLutMs);
  if (candidates.size === 0 || !s.device.persistent) return [...candidates.keys()];
  await s.flushAll();
  for (let b = 0; b < s.table.count; b++) {
    const st = s.table.state(b);
    if (st === BlockState.FREE || st === BlockState.PENDING_FREE) continue;
    dropShadowed(s, b, candidates);
    if (b % RECLAIM_BLOCKS_PER_YIELD === 0) await yieldToLoop(s.timers);
  }
  return [...candidates.keys()];
}
