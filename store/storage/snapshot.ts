/**
 * The warm-restart snapshot: on a clean close the index, block table and set counts are written
 * to `stateDir` (index.snap, state.json, then the `clean` marker, each written to a temporary,
 * fsynced and renamed). A start that finds the marker removes it first, so a crash from then on
 * cold-scans; a snapshot serves one start only.
 *
 * This module reads and writes the files and checks them (format, geometry, checksum); the
 * store decides what to load.
 */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { BLOCK_TABLE_BYTES_PER_BLOCK } from './block-table.js';

const SNAPSHOT_FORMAT = 1;

/** What a snapshot holds besides the bytes the files are checked with. */
export interface SnapshotContent {
  blockBytes: number;
  blockCount: number;
  nextSeq: number;
  openBlock: number;
  pos: number;
  sets: string[];
  tombstones: number;
  liveBySet: number[];
  tombBySet: number[];
  records: number;
  /** The serialized index (PrimaryIndex.snapshotChunks, concatenated). */
  index: Buffer;
  /** The serialized block table (BlockTable.toBytes). */
  blocks: Buffer;
}

/** The state.json form: the content but the index, with the checks of the index file. */
export type SnapshotState = Omit<SnapshotContent, 'index' | 'blocks'> & {
  format: number;
  indexCrc: number;
  indexBytes: number;
  /** The block table, base64. */
  blocks: string;
};

function paths(dir: string): { index: string; state: string; clean: string } {
  return { index: join(dir, 'index.snap'), state: join(dir, 'state.json'), clean: join(dir, 'clean') };
}

export function writeSnapshot(dir: string, c: SnapshotContent, nowMs: number): void {
  mkdirSync(dir, { recursive: true });
  const p = paths(dir);
  writeDurable(p.index, c.index);
  const { index: _index, blocks: _blocks, ...rest } = c;
  const state: SnapshotState = {
    format: SNAPSHOT_FORMAT,
    ...rest,
    indexCrc: crc32(c.index),
    indexBytes: c.index.length,
    blocks: c.blocks.toString('base64'),
  };
  writeDurable(p.state, Buffer.from(JSON.stringify(state)));
  writeDurable(p.clean, Buffer.from(`${nowMs}\n`));
}

/** Deletes the snapshot files and their temporaries (after a failed write, or once consumed). */
export function removeSnapshot(dir: string): void {
  const p = paths(dir);
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

/**
 * Consumes the clean marker: false when there is none (no snapshot to load). Whatever happens
 * next, the snapshot is consumed: a crash from here on must cold-scan.
 */
export function consumeSnapshot(dir: string): boolean {
  const p = paths(dir);
  if (!existsSync(p.clean)) return false;
  unlinkSync(p.clean);
  fsyncDir(dir);
  return true;
}

/**
 * Reads a consumed snapshot: a string saying why it cannot be used, or its checked content.
 * Throws when the files cannot be read or parsed at all.
 */
export function readSnapshot(dir: string, geometry: { blockBytes: number; blockCount: number }): SnapshotContent | string {
  const p = paths(dir);
  const state = JSON.parse(readFileSync(p.state, 'utf8')) as Partial<SnapshotState>;
  if (!state.liveBySet || !state.tombBySet) return 'snapshot has no set counts';
  if (state.format !== SNAPSHOT_FORMAT) return `snapshot format ${state.format} is not ${SNAPSHOT_FORMAT}`;
  if (state.blockBytes !== geometry.blockBytes || state.blockCount !== geometry.blockCount) {
    return 'device geometry changed since the snapshot';
  }
  const index = readFileSync(p.index);
  if (index.length !== state.indexBytes || crc32(index) !== state.indexCrc) return 'index snapshot checksum mismatch';
  const blocks = Buffer.from(state.blocks ?? '', 'base64');
  if (blocks.length !== geometry.blockCount * BLOCK_TABLE_BYTES_PER_BLOCK) return 'block table size mismatch';
  const { format: _format, indexCrc: _crc, indexBytes: _bytes, blocks: _b64, ...rest } = state as SnapshotState;
  return { ...rest, index, blocks };
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
