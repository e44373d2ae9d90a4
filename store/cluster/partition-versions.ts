/**
 * Partition versions of one namespace on this node: per partition, whether this node's copy is
 * FULL (it has every acknowledged write), a SUBSET (it may miss some: it was away, it is being
 * filled, or it stopped receiving writes) or ABSENT (no copy).
 *
 * Kept in a small file next to the namespace's data (device namespaces; memory namespaces lose
 * their data on restart, so their versions start ABSENT): magic, 4096 state bytes, CRC-32,
 * written whole to a temporary file, fsynced and renamed on every flush. Callers change states
 * in memory and flush in batches (the balance tick): a flush costs a few milliseconds of blocked
 * event loop, too much per partition.
 *
 * On load every copy that is not ABSENT becomes a SUBSET (Aerospike "isolates" versions the same
 * way): while this node was down the others went on writing, so its data never outranks a copy
 * that stayed in the cluster; it is reconciled by a (delta) migration. A partition with records
 * is at least a SUBSET whatever the file says (the file may be older than the records, and
 * records are never thrown away on load); a copy dropped just before a crash whose records a
 * cold scan brought back is therefore a SUBSET again, dropped again once its holders are FULL.
 */
import assert from 'node:assert/strict';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { crc32 } from 'node:zlib';
import { PARTITION_COUNT } from '../types.js';

export const PartitionState = { ABSENT: 0, SUBSET: 1, FULL: 2 } as const;
export type PartitionStateId = (typeof PartitionState)[keyof typeof PartitionState];

const FILE_NAME = 'partition-versions';
const MAGIC = Buffer.from('FPV1');
const FILE_BYTES = MAGIC.length + PARTITION_COUNT + 4;

export class PartitionVersionsError extends Error {
  readonly code = 'PARTITION_VERSIONS';
  readonly retriable = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PartitionVersionsError';
  }
}

export function stateName(s: number): string {
  return s === PartitionState.FULL ? 'full' : s === PartitionState.SUBSET ? 'subset' : 'absent';
}

export class PartitionVersions {
  readonly states = new Uint8Array(PARTITION_COUNT);
  #dirty = false;
  readonly counters = { version_flushes: 0 };

  /** `dir` undefined: not persisted (memory namespace). */
  constructor(readonly dir: string | undefined) {}

  /**
   * Loads the saved versions, isolated (FULL becomes SUBSET); `hasRecords(pid)` tells which
   * partitions have index entries (those are SUBSETs at least).
   */
  load(hasRecords: (pid: number) => boolean): void {
    const saved = this.#read();
    for (let pid = 0; pid < PARTITION_COUNT; pid++) {
      const s = saved ? saved[pid]! : PartitionState.ABSENT;
      this.states[pid] = s !== PartitionState.ABSENT || hasRecords(pid) ? PartitionState.SUBSET : PartitionState.ABSENT;
    }
    this.#dirty = true;
    this.flush();
  }

  get(pid: number): PartitionStateId {
    return this.states[pid]! as PartitionStateId;
  }

  /** Changes one partition's state; true if it changed. Call flush() after a batch. */
  set(pid: number, s: PartitionStateId): boolean {
    assert.ok(Number.isInteger(pid) && pid >= 0 && pid < PARTITION_COUNT, `partition id ${pid}`);
    if (this.states[pid] === s) return false;
    this.states[pid] = s;
    this.#dirty = true;
    return true;
  }

  /** Writes the file if anything changed (temporary file, fsync, rename, fsync of the folder). */
  flush(): void {
    if (!this.#dirty) return;
    this.#dirty = false;
    if (this.dir === undefined) return;
    const path = join(this.dir, FILE_NAME);
    const tmp = `${path}.tmp`;
    const body = Buffer.alloc(FILE_BYTES);
    MAGIC.copy(body, 0);
    body.set(this.states, MAGIC.length);
    body.writeUInt32BE(crc32(body.subarray(0, FILE_BYTES - 4)), FILE_BYTES - 4);
    try {
      const fd = openSync(tmp, 'w');
      try {
        writeSync(fd, body);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(tmp, path);
      const d = openSync(dirname(path), 'r');
      try {
        fsyncSync(d);
      } finally {
        closeSync(d);
      }
      this.counters.version_flushes++;
    } catch (err) {
      this.#dirty = true;
      throw new PartitionVersionsError(`cannot save partition versions to ${path}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Partitions per state: [absent, subset, full]. */
  counts(): [number, number, number] {
    const out: [number, number, number] = [0, 0, 0];
    for (const s of this.states) out[s]!++;
    return out;
  }

  #read(): Uint8Array | undefined {
    if (this.dir === undefined) return undefined;
    const path = join(this.dir, FILE_NAME);
    if (!existsSync(path)) return undefined;
    const b = readFileSync(path);
    if (b.length !== FILE_BYTES || !b.subarray(0, MAGIC.length).equals(MAGIC)) throw new PartitionVersionsError(`${path} is not a partition versions file`);
    if (b.readUInt32BE(FILE_BYTES - 4) !== crc32(b.subarray(0, FILE_BYTES - 4))) throw new PartitionVersionsError(`${path}: checksum mismatch`);
    const s = b.subarray(MAGIC.length, MAGIC.length + PARTITION_COUNT);
    for (const x of s) if (x > PartitionState.FULL) throw new PartitionVersionsError(`${path}: state ${x} out of range`);
    return new Uint8Array(s);
  }
}
