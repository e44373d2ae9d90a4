/**
 * Per-partition write logs of one namespace: every applied write, delete and expiry appends
 * {sequence, digest, generation, LUT, kind} to the log of its partition. The shipper tails them.
 *
 * All partitions share one bounded ring of fixed 64-byte entries (`capacityEntries`), kept in
 * memory and mirrored slot-for-slot into a file of the same size, so the log is durable, bounded,
 * and needs no compaction: the oldest entries are overwritten. Each partition keeps a deque of
 * its ring slots, so reading partition p from sequence s is an array index.
 *
 * Entry (64 bytes): u32 CRC-32 of bytes 4..64 | u16 partition | u8 kind | u8 0 |
 *   f64 global sequence | f64 partition sequence | f64 LUT ms | u32 generation | 20 digest | 8 zero
 * An entry is valid when its CRC matches and its global sequence maps to its slot; on start the
 * longest run of consecutive global sequences ending at the newest valid entry is kept.
 */
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readSync, writeFileSync, writeSync, renameSync, fsyncSync, unlinkSync } from 'node:fs';
import { open as openAsync, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { crc32 } from 'node:zlib';
import type { WriteLogReader } from './api.js';
import { StorageError } from './storage/errors.js';
import { systemTimers, type TimerHandle, type Timers } from './runtime/index.js';
import { DIGEST_BYTES, PARTITION_COUNT, type PartitionId, type WriteKindId, type WriteLogEntry } from './types.js';

export const WRITE_LOG_ENTRY_BYTES = 64;

/** A growable ring of u32 (a partition's slots, oldest first). */
class SlotDeque {
  private buf = new Uint32Array(4);
  private head = 0;
  length = 0;
  push(v: number): void {
    if (this.length === this.buf.length) {
      const next = new Uint32Array(this.buf.length * 2);
      for (let i = 0; i < this.length; i++) next[i] = this.buf[(this.head + i) % this.buf.length]!;
      this.buf = next;
      this.head = 0;
    }
    this.buf[(this.head + this.length) % this.buf.length] = v;
    this.length++;
  }
  shift(): number {
    const v = this.buf[this.head]!;
    this.head = (this.head + 1) % this.buf.length;
    this.length--;
    return v;
  }
  at(i: number): number {
    return this.buf[(this.head + i) % this.buf.length]!;
  }
  first(): number | undefined {
    return this.length > 0 ? this.buf[this.head] : undefined;
  }
}

export interface WriteLogOptions {
  /** Ring size in entries (each 64 bytes). */
  capacityEntries: number;
  /** Backing file; undefined = memory only (memory namespaces). */
  path?: string;
  /** Timers for waiter timeouts and notification (default: the real ones). */
  timers?: Timers;
}

export class WriteLog implements WriteLogReader {
  private readonly capacity: number;
  private readonly ring: Buffer;
  private readonly slotPid: Uint16Array;
  private readonly slotUsed: Uint8Array;
  private readonly deques: SlotDeque[] = [];
  /** Next partition sequence per partition. */
  private readonly nextP = new Float64Array(PARTITION_COUNT).fill(1);
  private nextG = 1;
  /** Global sequence of the first entry not yet written to the file. */
  private flushedG = 1;
  private handle: FileHandle | undefined;
  private flushing: Promise<void> | undefined;
  private waiters: Array<{ check: () => boolean; resolve: () => void; timer: TimerHandle }> = [];
  private notifyScheduled = false;
  private readonly appendListeners: Array<(pid: PartitionId) => void> = [];
  private readonly timers: Timers;

  private constructor(private readonly opts: WriteLogOptions) {
    if (!Number.isInteger(opts.capacityEntries) || opts.capacityEntries < 16) {
      throw new RangeError(`write log capacity ${opts.capacityEntries} entries; at least 16`);
    }
    this.capacity = opts.capacityEntries;
    this.timers = opts.timers ?? systemTimers;
    this.ring = Buffer.alloc(this.capacity * WRITE_LOG_ENTRY_BYTES);
    this.slotPid = new Uint16Array(this.capacity);
    this.slotUsed = new Uint8Array(this.capacity);
    for (let p = 0; p < PARTITION_COUNT; p++) this.deques.push(new SlotDeque());
  }

  static async open(opts: WriteLogOptions): Promise<WriteLog> {
    const log = new WriteLog(opts);
    if (opts.path) {
      mkdirSync(dirname(opts.path), { recursive: true });
      const cleanNextG = log.loadState();
      if (existsSync(opts.path)) {
        if (cleanNextG === undefined || !log.loadClean(opts.path, cleanNextG)) log.reset().load(readFileSync(opts.path));
      }
      // From here a crash must re-check entries: the clean flag is consumed.
      log.consumeCleanFlag();
      const h = await openAsync(opts.path, existsSync(opts.path) ? 'r+' : 'w+');
      await h.truncate(log.ring.length);
      log.handle = h;
    }
    return log;
  }

  /** Appends an entry and returns its partition sequence. */
  append(pid: PartitionId, digest: Buffer, generation: number, lutMs: number, kind: WriteKindId): number {
    const g = this.nextG++;
    const slot = (g - 1) % this.capacity;
    if (this.slotUsed[slot]) {
      const old = this.slotPid[slot]!;
      this.deques[old]!.shift();
    }
    const pseq = this.nextP[pid]!;
    this.nextP[pid] = pseq + 1;
    const o = slot * WRITE_LOG_ENTRY_BYTES;
    const r = this.ring;
    r.writeUInt16LE(pid, o + 4);
    r[o + 6] = kind;
    r[o + 7] = 0;
    r.writeDoubleLE(g, o + 8);
    r.writeDoubleLE(pseq, o + 16);
    r.writeDoubleLE(lutMs, o + 24);
    r.writeUInt32LE(generation >>> 0, o + 32);
    digest.copy(r, o + 36, 0, DIGEST_BYTES);
    r.fill(0, o + 56, o + 64);
    r.writeUInt32LE(crc32(r.subarray(o + 4, o + WRITE_LOG_ENTRY_BYTES)), o);
    this.slotPid[slot] = pid;
    this.slotUsed[slot] = 1;
    this.deques[pid]!.push(slot);
    if (this.waiters.length > 0 && !this.notifyScheduled) {
      this.notifyScheduled = true;
      this.timers.setImmediate(() => this.notify());
    }
    for (const cb of this.appendListeners) cb(pid);
    return pseq;
  }

  onAppend(cb: (pid: PartitionId) => void): () => void {
    this.appendListeners.push(cb);
    return () => {
      const i = this.appendListeners.indexOf(cb);
      if (i >= 0) this.appendListeners.splice(i, 1);
    };
  }

  firstSequence(pid: PartitionId): bigint {
    return BigInt(this.firstSequenceNumber(pid));
  }

  nextSequence(pid: PartitionId): bigint {
    return BigInt(this.nextP[pid]!);
  }

  firstSequenceNumber(pid: PartitionId): number {
    const s = this.deques[pid]!.first();
    if (s === undefined) return this.nextP[pid]!;
    return this.ring.readDoubleLE(s * WRITE_LOG_ENTRY_BYTES + 16);
  }

  nextSequenceNumber(pid: PartitionId): number {
    return this.nextP[pid]!;
  }

  read(pid: PartitionId, from: bigint, max: number): WriteLogEntry[] {
    const d = this.deques[pid]!;
    const first = Number(this.firstSequence(pid));
    const start = Math.max(0, Number(from) - first);
    const out: WriteLogEntry[] = [];
    for (let i = start; i < d.length && out.length < max; i++) {
      const o = d.at(i) * WRITE_LOG_ENTRY_BYTES;
      const r = this.ring;
      out.push({
        sequence: BigInt(r.readDoubleLE(o + 16)),
        digest: Buffer.from(r.subarray(o + 36, o + 56)),
        generation: r.readUInt32LE(o + 32),
        lutMs: r.readDoubleLE(o + 24),
        kind: r[o + 6]! as WriteKindId,
      });
    }
    return out;
  }

  waitForEntries(pids: PartitionId[] | 'all', fromByPid: (pid: PartitionId) => bigint, timeoutMs: number): Promise<void> {
    const list = pids === 'all' ? Array.from({ length: PARTITION_COUNT }, (_, i) => i as PartitionId) : pids;
    return this.waitUntil(() => list.some((p) => BigInt(this.nextP[p]!) > fromByPid(p)), timeoutMs);
  }

  waitForEntriesFrom(mask: ArrayLike<number>, from: ArrayLike<number>, timeoutMs: number): Promise<void> {
    const next = this.nextP;
    return this.waitUntil(() => {
      for (let p = 0; p < PARTITION_COUNT; p++) if (mask[p] && next[p]! > from[p]!) return true;
      return false;
    }, timeoutMs);
  }

  /** Resolves once `check` holds (checked now and after appends), or after `timeoutMs`. */
  private waitUntil(check: () => boolean, timeoutMs: number): Promise<void> {
    if (check()) return Promise.resolve();
    return new Promise((resolve) => {
      const w = {
        check,
        resolve,
        timer: this.timers.setTimeout(() => {
          this.waiters = this.waiters.filter((x) => x !== w);
          resolve();
        }, timeoutMs),
      };
      this.waiters.push(w);
    });
  }

  private notify(): void {
    this.notifyScheduled = false;
    const keep: typeof this.waiters = [];
    for (const w of this.waiters) {
      if (w.check()) {
        this.timers.clearTimeout(w.timer);
        w.resolve();
      } else keep.push(w);
    }
    this.waiters = keep;
  }

  /** Writes every entry appended so far to the file and syncs it (group commit: calls share one). */
  async commit(): Promise<void> {
    if (!this.handle) return;
    while (this.flushing) await this.flushing;
    if (this.flushedG >= this.nextG) return;
    this.flushing = this.flushOnce();
    try {
      await this.flushing;
    } finally {
      this.flushing = undefined;
    }
  }

  private async flushOnce(): Promise<void> {
    const h = this.handle!;
    const from = this.flushedG;
    const to = this.nextG;
    // Entries older than a full ring were overwritten in memory already: write only the last lap.
    const start = Math.max(from, to - this.capacity);
    const writes: Promise<unknown>[] = [];
    let g = start;
    while (g < to) {
      const slot = (g - 1) % this.capacity;
      const n = Math.min(to - g, this.capacity - slot);
      const off = slot * WRITE_LOG_ENTRY_BYTES;
      writes.push(h.write(Buffer.from(this.ring.subarray(off, off + n * WRITE_LOG_ENTRY_BYTES)), 0, n * WRITE_LOG_ENTRY_BYTES, off));
      g += n;
    }
    try {
      await Promise.all(writes);
      await h.datasync();
    } catch (err) {
      // Nothing is marked written: the next commit writes the same entries again.
      const code = (err as NodeJS.ErrnoException).code;
      const full = code === 'ENOSPC' || code === 'EDQUOT';
      throw new StorageError(full ? 'DEVICE_FULL' : 'IO', `write log ${this.opts.path!}: ${full ? 'no space left' : 'write failed'}: ${(err as Error).message}`, {
        cause: err,
        retriable: true,
      });
    }
    this.flushedG = to;
  }

  async close(): Promise<void> {
    for (const w of this.waiters) {
      this.timers.clearTimeout(w.timer);
      w.resolve();
    }
    this.waiters = [];
    if (!this.handle) return;
    let failure: Error | undefined;
    try {
      await this.commit();
    } catch (err) {
      failure = err as Error;
    }
    await this.handle.close();
    this.handle = undefined;
    if (!failure) {
      try {
        this.saveState(true);
      } catch (err) {
        failure = err as Error;
      }
    }
    // The state on disk still says "not clean" (open consumed the flag): the next open checks
    // every entry, which is right for a log whose last entries may be missing.
    if (failure) throw new StorageError('CLOSE_INCOMPLETE', `write log ${this.opts.path!}: not closed cleanly: ${failure.message}`, { cause: failure });
  }

  /** Free filesystem space a clean close needs: the state file, written beside the old one. */
  shutdownReserveBytes(): number {
    return this.opts.path ? 2 * (PARTITION_COUNT + 2) * 8 : 0;
  }

  /** Abandons without flushing (crash simulation in tests). */
  async abandon(): Promise<void> {
    await this.handle?.close();
    this.handle = undefined;
  }

  private statePath(): string {
    return `${this.opts.path!}.state`;
  }

  /**
   * Per-partition next sequences (so sequences never go backwards after a restart) and, after a
   * clean close, the global sequence the file ends at: the next open then trusts the file
   * without checking every entry. Layout: 4096 f64 next sequences, f64 clean flag, f64 nextG.
   */
  private saveState(clean: boolean): void {
    const tmp = `${this.statePath()}.tmp`;
    const state = new Float64Array(PARTITION_COUNT + 2);
    state.set(this.nextP);
    state[PARTITION_COUNT] = clean ? 1 : 0;
    state[PARTITION_COUNT + 1] = this.nextG;
    try {
      writeFileSync(tmp, Buffer.from(state.buffer));
      const fd = openSync(tmp, 'r');
      fsyncSync(fd);
      closeSync(fd);
      renameSync(tmp, this.statePath());
    } catch (err) {
      try {
        unlinkSync(tmp); // a partial temporary only takes space
      } catch {
        // absent
      }
      throw err;
    }
  }

  /**
   * Marks the state not clean (a crash from now on must re-check entries). Rewrites the whole
   * state when it can; on a full disk it overwrites the flag in place, which needs no new space,
   * so a node can start and serve reads on a full filesystem.
   */
  private consumeCleanFlag(): void {
    try {
      this.saveState(false);
      return;
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOSPC' && code !== 'EDQUOT') throw err;
    }
    if (!existsSync(this.statePath())) return; // nothing claims a clean close
    const fd = openSync(this.statePath(), 'r+');
    try {
      const zero = Buffer.alloc(8);
      writeSync(fd, zero, 0, 8, PARTITION_COUNT * 8);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  }

  /** Reads the state file; returns nextG when it records a clean close. */
  private loadState(): number | undefined {
    if (!existsSync(this.statePath())) return undefined;
    const b = readFileSync(this.statePath());
    if (b.length !== (PARTITION_COUNT + 2) * 8) return undefined;
    const saved = new Float64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.length));
    for (let p = 0; p < PARTITION_COUNT; p++) this.nextP[p] = Math.max(this.nextP[p]!, saved[p]!);
    return saved[PARTITION_COUNT] === 1 ? saved[PARTITION_COUNT + 1] : undefined;
  }

  /** After a clean close: every entry of the last lap is valid; rebuild the deques only. */
  private loadClean(path: string, nextG: number): boolean {
    const fd = openSync(path, 'r');
    let n = 0;
    try {
      while (n < this.ring.length) {
        const got = readSync(fd, this.ring, n, this.ring.length - n, n);
        if (got <= 0) break;
        n += got;
      }
    } finally {
      closeSync(fd);
    }
    if (n !== this.ring.length || nextG < 1 || this.ring.byteOffset % 8 !== 0) return false;
    // Typed views: entry e has its partition at u16 index e*32+2, sequences at f64 e*8+1 and e*8+2.
    const u16 = new Uint16Array(this.ring.buffer, this.ring.byteOffset, this.ring.length / 2);
    const f64 = new Float64Array(this.ring.buffer, this.ring.byteOffset, this.ring.length / 8);
    const firstG = Math.max(1, nextG - this.capacity);
    for (let g = firstG; g < nextG; g++) {
      const slot = (g - 1) % this.capacity;
      const pid = u16[slot * 32 + 2]!;
      if (pid >= PARTITION_COUNT || f64[slot * 8 + 1] !== g) return false;
      this.slotPid[slot] = pid;
      this.slotUsed[slot] = 1;
      this.deques[pid]!.push(slot);
      const next = f64[slot * 8 + 2]! + 1;
      if (next > this.nextP[pid]!) this.nextP[pid] = next;
    }
    this.nextG = nextG;
    this.flushedG = nextG;
    return true;
  }

  /** Forgets anything a failed clean load put in memory (sequences stay). */
  private reset(): this {
    this.ring.fill(0);
    this.slotUsed.fill(0);
    for (let p = 0; p < PARTITION_COUNT; p++) this.deques[p] = new SlotDeque();
    this.nextG = 1;
    this.flushedG = 1;
    return this;
  }

  private load(file: Buffer): void {
    const n = Math.min(this.capacity, Math.floor(file.length / WRITE_LOG_ENTRY_BYTES));
    const valid = (slot: number): number => {
      const o = slot * WRITE_LOG_ENTRY_BYTES;
      if (file.readUInt32LE(o) === 0 && file.readDoubleLE(o + 8) === 0) return 0; // never written
      if (crc32(file.subarray(o + 4, o + WRITE_LOG_ENTRY_BYTES)) !== file.readUInt32LE(o)) return 0;
      const g = file.readDoubleLE(o + 8);
      return Number.isInteger(g) && g >= 1 && (g - 1) % this.capacity === slot ? g : 0;
    };
    let maxG = 0;
    for (let s = 0; s < n; s++) maxG = Math.max(maxG, valid(s));
    if (maxG === 0) return;
    let firstG = maxG;
    while (firstG > 1 && maxG - firstG + 1 < this.capacity) {
      const s = (firstG - 2) % this.capacity;
      if (s >= n || valid(s) !== firstG - 1) break;
      firstG--;
    }
    for (let g = firstG; g <= maxG; g++) {
      const slot = (g - 1) % this.capacity;
      const o = slot * WRITE_LOG_ENTRY_BYTES;
      file.copy(this.ring, o, o, o + WRITE_LOG_ENTRY_BYTES);
      const pid = file.readUInt16LE(o + 4);
      if (pid >= PARTITION_COUNT) continue;
      this.slotPid[slot] = pid;
      this.slotUsed[slot] = 1;
      this.deques[pid]!.push(slot);
      this.nextP[pid] = Math.max(this.nextP[pid]!, file.readDoubleLE(o + 16) + 1);
    }
    this.nextG = maxG + 1;
    this.flushedG = this.nextG;
  }
}
