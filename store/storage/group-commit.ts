/**
 * Group commit: writes what the write buffer holds to the device and makes it durable with one
 * datasync shared by every commit() that arrived before the flush started.
 *
 * It also writes free markers: a defragmented block is marked free on the device (its first
 * record's magic zeroed) only in a flush after the one that made its moved records durable, and
 * goes back to the free list only once that marker is durable.
 *
 * A failed device write (disk full, I/O error) rejects the waiting commits, keeps the segments
 * for the next attempt, and retries after a pause that doubles up to FLUSH_RETRY_MS_MAX; while
 * the failure lasts, commit() fails at once. Only one flush runs at a time (`#flushing`).
 */
import assert from 'node:assert/strict';
import { sleep, type TimerHandle, type Timers } from '../runtime/index.js';
import type { BlockDevice } from './devices.js';
import { StorageError } from './errors.js';
import { BlockState, type BlockTable } from './block-table.js';
import { RECORD_ALIGN_BYTES, checkRecordRun } from './record-format.js';
import type { WriteBuffer } from './write-buffer.js';

/**
 * After a failed device write the flush is retried after this pause, doubling up to the maximum:
 * a full disk costs a write attempt every few seconds, not a busy loop, and writes resume by
 * themselves within FLUSH_RETRY_MS_MAX of space coming back.
 */
const FLUSH_RETRY_MS_MIN = 100;
const FLUSH_RETRY_MS_MAX = 2000;
/** Rounds flushAll() runs at most: pending free markers need one round each after their moves. */
const FLUSH_ALL_ROUNDS_MAX = 4;

export class GroupCommit {
  #waiters: Array<{ resolve: () => void; reject: (e: Error) => void }> = [];
  #flushing = false;
  #scheduled = false;
  #started = 0;
  #done = 0;
  readonly #pendingFree: Array<{ block: number; after: number }> = [];
  #lastError: StorageError | undefined;
  #retryMs = FLUSH_RETRY_MS_MIN;
  #retry: TimerHandle | undefined;
  #closed = false;
  /** Set by end(): no commit can succeed any more. */
  #ended = false;
  /** Completed flushes (statistics). */
  flushes = 0;

  constructor(
    private readonly name: string,
    private readonly device: BlockDevice,
    private readonly table: BlockTable,
    private readonly buffer: WriteBuffer,
    private readonly timers: Timers,
  ) {}

  /** The last device write failure, while it lasts. */
  get failure(): StorageError | undefined {
    return this.#lastError;
  }

  get flushing(): boolean {
    return this.#flushing;
  }

  /** Resolves when everything written so far is durable. */
  commit(): Promise<void> {
    if (!this.device.persistent) return Promise.resolve();
    if (this.#ended) return Promise.reject(this.#closedError());
    // While the device refuses writes, a commit fails at once (the retry timer keeps trying).
    if (this.#lastError) return Promise.reject(this.#lastError);
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.schedule();
    });
  }

  /** Frees a defragmented block once the flush after the next one has made its marker durable. */
  freeAfterNextFlush(block: number): void {
    assert(this.table.state(block) === BlockState.PENDING_FREE, `namespace ${this.name}: block ${block} queued for freeing is not pending free`);
    this.#pendingFree.push({ block, after: this.#started + 1 });
    this.schedule();
  }

  schedule(): void {
    if (this.#scheduled || this.#closed || !this.device.persistent || this.#retry !== undefined) return;
    this.#scheduled = true;
    this.timers.setImmediate(() => {
      this.#scheduled = false;
      void this.loop();
    });
  }

  /** Stops scheduling flushes (close and abandon); flushAll() still works. */
  stop(): void {
    this.#closed = true;
    this.timers.clearTimeout(this.#retry);
  }

  /**
   * The store is closed or abandoned: every commit still waiting fails with CLOSED (it was not
   * made durable), and so does every later one, instead of waiting forever.
   */
  end(): void {
    this.stop();
    this.#ended = true;
    const err = this.#closedError();
    for (const w of this.#waiters.splice(0)) w.reject(err);
  }

  #closedError(): StorageError {
    return new StorageError('CLOSED', `namespace ${this.name}: storage is closed`);
  }

  /** Waits for a running flush to end. */
  async idle(): Promise<void> {
    while (this.#flushing) await sleep(this.timers, 1);
  }

  /** Flushes everything now; throws the device error when a write fails. */
  async flushAll(): Promise<void> {
    if (!this.device.persistent) return;
    await this.idle();
    for (let i = 0; i < FLUSH_ALL_ROUNDS_MAX && (this.pending() || this.#waiters.length > 0); i++) {
      await this.once();
      if (this.#lastError) throw this.#lastError;
    }
  }

  private pending(): boolean {
    return this.buffer.hasUnwritten() || this.#pendingFree.length > 0;
  }

  private async loop(): Promise<void> {
    if (this.#flushing) return;
    this.#flushing = true;
    try {
      while (this.#waiters.length > 0 || this.pending()) {
        const before = this.#pendingFree.length;
        await this.once();
        if (this.#lastError) {
          this.retryLater();
          break;
        }
        // Pending frees need one more round each; stop when nothing else moved.
        if (this.#waiters.length === 0 && !this.buffer.hasUnwritten() && before === this.#pendingFree.length) break;
      }
    } finally {
      this.#flushing = false;
    }
  }

  /** Blocks whose moved records became durable in an earlier flush: their markers go now. */
  private takeMarkers(): number[] {
    const markers: number[] = [];
    for (let i = this.#pendingFree.length - 1; i >= 0; i--) {
      const p = this.#pendingFree[i]!;
      if (p.after <= this.#done) {
        markers.push(p.block);
        this.#pendingFree.splice(i, 1);
      }
    }
    return markers;
  }

  private async once(): Promise<void> {
    const waiters = this.#waiters;
    this.#waiters = [];
    const segs = this.buffer.take();
    this.#started++;
    const markers = this.takeMarkers();
    // Check before write (as every read checks after): a damaged write buffer is a bug, and
    // writing it would turn it into lost data; stop the process instead.
    for (const s of segs) {
      const bad = checkRecordRun(s.buf, s.from, s.to);
      assert(bad === undefined, `namespace ${this.name}: block ${s.block} about to be written is damaged: ${bad}`);
    }
    const zero = Buffer.alloc(RECORD_ALIGN_BYTES);
    try {
      await Promise.all([
        ...segs.map((s) => this.device.write(s.block, s.from, s.buf.subarray(s.from, s.to))),
        ...markers.map((b) => this.device.write(b, 0, zero)),
      ]);
      await this.device.sync();
      this.#lastError = undefined;
      this.#retryMs = FLUSH_RETRY_MS_MIN;
    } catch (err) {
      const e = deviceWriteError(this.name, err);
      this.#lastError = e;
      this.buffer.giveBack(segs);
      for (const b of markers) this.#pendingFree.push({ block: b, after: this.#done });
      for (const w of waiters) w.reject(e);
      return;
    }
    this.#done++;
    this.flushes++;
    this.buffer.written(segs);
    for (const b of markers) this.table.release(b);
    for (const w of waiters) w.resolve();
  }

  /** Arms the one retry of a failed flush, backing off while the device keeps failing. */
  private retryLater(): void {
    if (this.#closed || this.#retry !== undefined) return;
    const ms = this.#retryMs;
    this.#retryMs = Math.min(ms * 2, FLUSH_RETRY_MS_MAX);
    this.#retry = this.timers.setTimeout(() => {
      this.#retry = undefined;
      this.schedule();
    }, ms);
    this.#retry.unref();
  }
}

/** A failed device write as a typed error: DEVICE_FULL for no space or quota, IO otherwise. */
function deviceWriteError(namespace: string, err: unknown): StorageError {
  const code = (err as NodeJS.ErrnoException).code;
  const full = code === 'ENOSPC' || code === 'EDQUOT';
  const what = full ? 'no space left for the device' : 'device write failed';
  return new StorageError(full ? 'DEVICE_FULL' : 'IO', `namespace ${namespace}: ${what}: ${(err as Error).message}`, { cause: err, retriable: true });
}
