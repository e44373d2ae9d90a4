/**
 * A simulated BlockDevice. It keeps two images: what readers see (every completed write) and what
 * is durable (writes covered by a completed sync). `crash()` returns the device as it comes back
 * after a power loss: the durable image, plus each unsynced write either kept, lost, or torn (a
 * prefix of it kept, optionally with a flipped bit), chosen by the seeded PRNG. The store's
 * checksums must turn torn and flipped records into "not there", never into wrong data.
 *
 * Writes and syncs complete after a small random virtual delay, so group commit and concurrent
 * flushes interleave differently per seed.
 */
import assert from 'node:assert/strict';
import type { BlockDevice } from '../store/storage/devices.js';
import type { Random } from '../store/runtime/index.js';
import type { Scheduler } from './scheduler.js';

export interface SimDeviceFaults {
  /** Largest virtual delay of one write or sync, ms. */
  ioDelayMsMax: number;
  /** Per unsynced write at a crash: chance it is lost whole, and chance it is torn. */
  lostPct: number;
  tornPct: number;
  /** Chance a torn write also carries one flipped bit. */
  bitFlipPct: number;
}

export const SIM_DEVICE_FAULTS_DEFAULT: SimDeviceFaults = { ioDelayMsMax: 8, lostPct: 30, tornPct: 30, bitFlipPct: 50 };

interface PendingWrite {
  b: number;
  offset: number;
  bytes: Buffer;
}

export class SimDevice implements BlockDevice {
  readonly persistent = true;
  readonly #visible: Array<Buffer | undefined>;
  readonly #durable: Array<Buffer | undefined>;
  /** Completed writes not yet covered by a sync, oldest first. */
  #unsynced: PendingWrite[] = [];
  /** Writes covered by syncs still in flight: not durable until the sync completes. */
  readonly #syncing = new Set<PendingWrite[]>();
  /** Counters a run reports. */
  readonly stats = { writes: 0, syncs: 0, lost: 0, torn: 0, flipped: 0 };

  constructor(
    readonly blockBytes: number,
    readonly blockCount: number,
    private readonly sched: Scheduler,
    private readonly owner: string,
    private readonly random: Random,
    private readonly faults: SimDeviceFaults = SIM_DEVICE_FAULTS_DEFAULT,
    durable?: Array<Buffer | undefined>,
  ) {
    this.#durable = durable ?? new Array<Buffer | undefined>(blockCount);
    this.#visible = this.#durable.map((b) => (b ? Buffer.from(b) : undefined));
    this.#visible.length = blockCount;
  }

  #block(image: Array<Buffer | undefined>, b: number): Buffer {
    assert(Number.isInteger(b) && b >= 0 && b < this.blockCount, `block ${b} outside the device`);
    let buf = image[b];
    if (!buf) {
      buf = Buffer.alloc(this.blockBytes);
      image[b] = buf;
    }
    return buf;
  }

  /** Completed writes a crash now would put at risk (not synced, or their sync still running). */
  get unsyncedWrites(): number {
    let n = this.#unsynced.length;
    for (const c of this.#syncing) n += c.length;
    return n;
  }

  read(b: number, offset: number, length: number): Buffer {
    assert(offset >= 0 && offset + length <= this.blockBytes, `read ${offset}+${length} outside block`);
    return Buffer.from(this.#block(this.#visible, b).subarray(offset, offset + length));
  }

  async write(b: number, offset: number, bytes: Buffer): Promise<void> {
    assert(offset >= 0 && offset + bytes.length <= this.blockBytes, `write ${offset}+${bytes.length} outside block`);
    const copy = Buffer.from(bytes);
    await this.sched.sleep(this.owner, this.random.int(this.faults.ioDelayMsMax + 1));
    copy.copy(this.#block(this.#visible, b), offset);
    this.#unsynced.push({ b, offset, bytes: copy });
    this.stats.writes++;
  }

  async sync(): Promise<void> {
    // Only writes completed before the sync started are covered by it.
    const covered = this.#unsynced;
    this.#unsynced = [];
    this.#syncing.add(covered);
    await this.sched.sleep(this.owner, this.random.int(this.faults.ioDelayMsMax + 1));
    this.#syncing.delete(covered);
    for (const w of covered) w.bytes.copy(this.#block(this.#durable, w.b), w.offset);
    this.stats.syncs++;
  }

  release(): void {}

  close(): Promise<void> {
    return Promise.resolve();
  }

  /** The device after a power loss (its I/O on the restarted incarnation's timers): durable bytes plus a random fate for each unsynced write. */
  crash(newOwner: string): SimDevice {
    const image = this.#durable.map((b) => (b ? Buffer.from(b) : undefined));
    image.length = this.blockCount;
    // A crash during a sync: what it covered is as much at risk as what it did not reach yet.
    const atRisk = [...[...this.#syncing].flat(), ...this.#unsynced];
    for (const w of atRisk) {
      const roll = this.random.int(100);
      if (roll < this.faults.lostPct) {
        this.stats.lost++;
        continue;
      }
      let bytes = w.bytes;
      if (roll < this.faults.lostPct + this.faults.tornPct && bytes.length > 1) {
        bytes = Buffer.from(bytes.subarray(0, 1 + this.random.int(bytes.length - 1)));
        this.stats.torn++;
        if (this.random.int(100) < this.faults.bitFlipPct) {
          const i = this.random.int(bytes.length);
          bytes[i] = bytes[i]! ^ (1 << this.random.int(8));
          this.stats.flipped++;
        }
      }
      bytes.copy(this.#block(image, w.b), w.offset);
    }
    this.#unsynced = [];
    this.#syncing.clear();
    const next = new SimDevice(this.blockBytes, this.blockCount, this.sched, newOwner, this.random, this.faults, image);
    Object.assign(next.stats, this.stats);
    return next;
  }
}
