/**
 * A namespace: record semantics on top of a RecordStore.
 *
 * - Commands on one digest run one at a time (the record lock, store/transaction/): while a
 *   write waits for its group commit, later commands on the same key queue behind it; more than
 *   `transactionPendingLimit` queued answer KEY_BUSY, client commands and replicated applies alike.
 * - Generation increments on every write and keeps increasing across a delete (a tombstone
 *   carries it), LUT is max(now, previous + 1), void time follows Aerospike's TTL encodings.
 * - Deletes, expirations and evictions write durable tombstones; tombstones are reclaimed later
 *   when nothing on the device could bring the record back.
 * - Every applied change appends to the partition's write log for the shipper.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { partitionOf } from '../digest.js';
import type { AckGate, ApplyResult, ScanOptions, StoreNamespace } from '../api.js';
import {
  DIGEST_BYTES,
  PARTITION_COUNT,
  RecordOrigin,
  ResultCode,
  SYSTEM_SET_NAME,
  TTL_S_MAX,
  WriteKind,
  type Bin,
  type Clock,
  type ConflictPolicyId,
  type PartitionId,
  type RecordCommand,
  type RecordOriginId,
  type RecordResult,
  type RecordVersion,
  type UserKey,
  type WriteKindId,
} from '../types.js';
import { StorageError } from '../storage/errors.js';
import { isWriteOp } from './bin-ops.js';
import { emptyEntry, type IndexEntry } from '../storage/primary-index.js';
import type { StoredRecord } from '../storage/record-format.js';
import type { OpenReport, RecordStore } from '../storage/record-store.js';
import type { WriteLog } from '../writelog.js';
import { StopWritesReason, stopWritesState, type StopWritesState } from './stop-writes.js';
import type { SystemMemoryProbe, SystemMemoryUsage } from './system-memory.js';

/** Free bytes of the fullest filesystem a namespace writes to (statfs; injected for simulation). */
export interface FreeSpaceProbe {
  freeBytes(): number | undefined;
}
import { systemTimers, yieldToLoop, type TimerHandle, type Timers } from '../runtime/index.js';
import {
  KEY_BUSY,
  KeyLocks,
  ReplicationFailed,
  commitStored,
  complete,
  computeCommand,
  computeReplica,
  computeReplicaEncoded,
  computeReplicated,
  fail,
  isExpired,
  nextMeta,
  nowVoidS,
  type Computed,
  type Durability,
  type EncodedVersion,
  type Replicator,
  type TransactionContext,
  type WrittenVersion,
} from '../transaction/index.js';

/** Moved to the transaction layer; re-exported for existing importers. */
export { compareVersions } from '../transaction/index.js';

/** Dynamic and static settings of a namespace (names as in the config file, camelCased). */
export interface NamespaceSettings {
  defaultTtlS: number;
  nsupPeriodS: number;
  highWaterDiskPct: number;
  highWaterMemoryPct: number;
  stopWritesPct: number;
  transactionPendingLimit: number;
  maxRecordBytes: number;
  commitToDevice: boolean;
  tombRaiderEligibleAgeS: number;
  tombRaiderPeriodS: number;
  conflictPolicy: ConflictPolicyId;
  /** Bytes of index memory the high-water-memory-pct refers to. */
  indexMemoryBytes: number;
  /** Index plus caches may use this many bytes; past it writes stop (0 = no budget). */
  memoryBudgetBytes: number;
  /** Writes stop while the host uses this share of its memory or more (0 or absent = off). */
  sysMemoryStopPct?: number;
  /** Configured copies of each record (the cluster uses min(this, cluster size)); absent = 1. */
  replicationFactor?: number;
}

/** Keys `set-config` may change at run time, with their validators. */
const DYNAMIC: Record<string, { key: keyof NamespaceSettings; min: number; max: number }> = {
  'default-ttl': { key: 'defaultTtlS', min: 0, max: TTL_S_MAX },
  'nsup-period': { key: 'nsupPeriodS', min: 0, max: 86_400 },
  'high-water-disk-pct': { key: 'highWaterDiskPct', min: 0, max: 100 },
  'high-water-memory-pct': { key: 'highWaterMemoryPct', min: 0, max: 100 },
  'stop-writes-pct': { key: 'stopWritesPct', min: 0, max: 100 },
  'memory-budget': { key: 'memoryBudgetBytes', min: 0, max: 2 ** 46 },
  'stop-writes-sys-memory-pct': { key: 'sysMemoryStopPct', min: 0, max: 100 },
  'transaction-pending-limit': { key: 'transactionPendingLimit', min: 0, max: 1_000_000 },
  'tomb-raider-eligible-age': { key: 'tombRaiderEligibleAgeS', min: 0, max: 315_360_000 },
};

/** A write whose duplicate resolution did not complete fails with TIMEOUT (nothing applied). */
function unresolvedTimeout(): never {
  throw new ReplicationFailed(ResultCode.TIMEOUT, 'duplicate resolution: a copy of the record did not answer');
}

/** Records deleted per expiration slice before yielding. */
const NSUP_SLICE_PARTITIONS = 64;
/** Distinct bin names remembered for info `bins`. */
const BIN_NAMES_MAX = 65_535;

export class Namespace implements StoreNamespace {
  private readonly locks: KeyLocks;
  /** Step 4 of every write (the cluster sets it); none on a single node. */
  replicator: Replicator | undefined;
  /**
   * Duplicate resolution at transaction time (the cluster sets it): before a client write runs
   * on the working master, the versions of the key held by copies not merged into this one yet
   * (store/cluster/dup-res.ts). undefined = nothing to ask; a rejected promise = a copy did not
   * answer (the write fails with TIMEOUT, nothing applied).
   */
  duplicateResolver: ((digest: Buffer) => Promise<StoredRecord[]> | undefined) | undefined;
  /** Client writes wait for these after step 4 (the shipper's RPO-0 mode: acknowledged once in Kafka). */
  private readonly ackGates: AckGate[] = [];
  private readonly durability: Durability;
  /** What the transaction steps see of this namespace. */
  private readonly tx: TransactionContext;
  private fencedFlag = false;
  private readonly bins = new Set<string>();
  private readonly e = emptyEntry();
  private ticks: TimerHandle[] = [];
  private nsupCursor = 0;
  private nsupRunning = false;
  private closed = false;
  readonly counters = {
    client_read_success: 0,
    client_read_not_found: 0,
    client_read_error: 0,
    client_write_success: 0,
    client_write_error: 0,
    client_delete_success: 0,
    client_delete_not_found: 0,
    client_lang_error: 0,
    fail_generation: 0,
    fail_key_busy: 0,
    /** Versions taken from a copy not merged yet before a write, because they were newer (duplicate resolution). */
    dup_res_applied: 0,
    /** Writes failed with TIMEOUT because a copy not merged yet did not answer. */
    dup_res_failed: 0,
    fail_record_too_big: 0,
    fail_out_of_space: 0,
    fail_forbidden: 0,
    expired_objects: 0,
    evicted_objects: 0,
    xdr_write_success: 0,
    xdr_lost_conflict: 0,
    storage_checksum_errors: 0,
    truncated_objects: 0,
  };
  private stopWrites = false;
  private stopState: StopWritesState = { reason: StopWritesReason.NONE, detail: '', hard: false };
  private hwmBreached = false;
  private freeSpace: FreeSpaceProbe | undefined;
  private systemMemory: SystemMemoryProbe | undefined;
  /** store.blocksOpened at the last space check: a new write block re-checks the filesystem. */
  private spaceCheckedAtBlock = -1;

  constructor(
    readonly name: string,
    readonly store: RecordStore,
    readonly writeLog: WriteLog,
    readonly settings: NamespaceSettings,
    readonly openReport: OpenReport,
    private readonly clock: Clock,
    /** Where a fence change is persisted (so a restart keeps the site's role). */
    private readonly fencePath?: string,
    private readonly timers: Timers = systemTimers,
  ) {
    this.locks = new KeyLocks(() => this.settings.transactionPendingLimit, clock);
    this.durability = {
      get commitToDevice() {
        return settings.commitToDevice;
      },
      commitStore: () => store.commit(),
      commitWriteLog: () => writeLog.commit(),
      backlogged: () => store.backlogged(),
    };
    const ns = this;
    this.tx = {
      store,
      counters: this.counters,
      entry: this.e,
      get maxRecordBytes() {
        return settings.maxRecordBytes;
      },
      get defaultTtlS() {
        return settings.defaultTtlS;
      },
      get fenced() {
        return ns.fencedFlag;
      },
      refusesWrite: (set) => ns.refusesWrite(set),
      nowMs: () => clock.nowMs(),
      noteBins: (bins) => {
        if (this.bins.size < BIN_NAMES_MAX) for (const b of bins) this.bins.add(b.name);
      },
      storeVersion: (v) => this.writeVersion(v.digest, v.set, v.generation, v.lutMs, v.voidTimeS, v.tombstone, v.key, v.bins, v.kind, v.origin),
      storeEncoded: (v, kind) => {
        store.writeEncoded(v.bytes, v.off, v.header);
        writeLog.append(partitionOf(v.digest), v.digest, v.header.generation, v.header.lutMs, kind);
      },
    };
    this.updateSpaceFlags();
  }

  /** Starts background expiration/eviction and tombstone reclamation. */
  start(): void {
    const tick = this.timers.setInterval(() => void this.nsupTick(), 1000);
    tick.unref();
    this.ticks.push(tick);
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.ticks) this.timers.clearInterval(t);
    // Let queued commands finish.
    await this.locks.drain();
    // Each part closes as far as it can (a full disk skips what it cannot write); then the
    // namespace says what was skipped.
    const skipped: string[] = [];
    for (const part of [this.writeLog, this.store]) {
      try {
        await part.close();
      } catch (err) {
        skipped.push((err as Error).message);
      }
    }
    if (skipped.length > 0) throw new StorageError('CLOSE_INCOMPLETE', skipped.join('; '));
  }

  get fenced(): boolean {
    return this.fencedFlag;
  }

  /** Fences (passive) or unfences (active) the namespace; persisted unless `persist` is false. */
  setFenced(fenced: boolean, persist = true): void {
    this.fencedFlag = fenced;
    if (persist && this.fencePath) {
      const tmp = `${this.fencePath}.tmp`;
      writeFileSync(tmp, `${fenced}\n`);
      renameSync(tmp, this.fencePath);
    }
  }

  // ------------------------------------------------------------------ commands

  execute(cmd: RecordCommand): Promise<RecordResult> {
    if (cmd.digest.length !== DIGEST_BYTES) return Promise.resolve(fail(ResultCode.PARAMETER));
    const r = this.locks.run(cmd.digest, (waitedMs) => {
      if (cmd.timeoutMs && waitedMs > cmd.timeoutMs) return fail(ResultCode.TIMEOUT);
      return this.runLocked(cmd);
    });
    if (r === KEY_BUSY) {
      this.counters.fail_key_busy++;
      return Promise.resolve(fail(ResultCode.KEY_BUSY));
    }
    if (r instanceof Promise) return r.catch((err: unknown) => this.errorResult(err));
    return Promise.resolve(r);
  }

  /** Runs a command under its key lock; returns a promise only when it must wait (steps 4-5). */
  private runLocked(cmd: RecordCommand): RecordResult | Promise<RecordResult> {
    if (!cmd.ops.some((o) => isWriteOp(o.op))) return this.runResolved(cmd);
    return this.resolvingDuplicates(cmd.digest, () => this.runResolved(cmd), () => fail(ResultCode.TIMEOUT));
  }

  /**
   * Runs a write (key lock held) after duplicate resolution, when the cluster has copies of the
   * key to ask: a better version found is stored and replicated first (version order). A copy
   * that did not answer: `unresolved()`.
   */
  private resolvingDuplicates<R>(digest: Buffer, run: () => R | Promise<R>, unresolved: () => R = unresolvedTimeout): R | Promise<R> {
    const dup = this.duplicateResolver?.(digest);
    if (!dup) return run();
    return dup.then(
      async (found) => {
        for (const r of found) {
          // Replicated like any write: the command below may store nothing (a failed condition,
          // a losing XDR version), and the replicas must not stay behind the version kept here.
          const stored = await complete(computeReplica(this.tx, r, r.tombstone ? WriteKind.DELETE : WriteKind.WRITE), this.durability, this.replicator);
          if (stored.applied) this.counters.dup_res_applied++;
        }
        return run();
      },
      () => {
        this.counters.dup_res_failed++;
        return unresolved();
      },
    );
  }

  private runResolved(cmd: RecordCommand): RecordResult | Promise<RecordResult> {
    let out: Computed<RecordResult>;
    try {
      out = computeCommand(this.tx, cmd);
    } catch (err) {
      return this.errorResult(err);
    }
    return complete(out, this.durability, this.ackGates.length > 0 ? this.gatedReplicator() : this.replicator);
  }

  addAckGate(gate: AckGate): () => void {
    this.ackGates.push(gate);
    return () => {
      const i = this.ackGates.indexOf(gate);
      if (i >= 0) this.ackGates.splice(i, 1);
    };
  }

  /**
   * Step 4 and every gate that wants the version, side by side: the write is acknowledged once
   * the replicas and every gate hold it, so waiting for them one after the other only added the
   * replication round trip to an RPO-0 write (the version is in the write log already, so the
   * shipper may read it before the replicas answer; it could before too). A gate that fails fails
   * the write with TIMEOUT (in doubt: stored), as a replica that fails does.
   */
  private gatedReplicator(): Replicator {
    const base = this.replicator;
    const gates = this.ackGates;
    return {
      async replicate(w) {
        const r = w.record;
        const waits: Promise<void>[] = [];
        for (const gate of gates) {
          const p = gate({ digest: r.digest, set: r.setName, generation: r.generation, lutMs: r.lutMs, tombstone: r.tombstone });
          if (p) waits.push(p.catch((err: unknown) => {
            throw new ReplicationFailed(ResultCode.TIMEOUT, (err as Error).message);
          }));
        }
        if (base) waits.push(base.replicate(w));
        // Promise.all takes every rejection: a gate still waiting after a replica failed is handled.
        await Promise.all(waits);
      },
    };
  }

  private errorResult(err: unknown): RecordResult {
    if (err instanceof StorageError) {
      if (err.code === 'CHECKSUM') {
        this.counters.storage_checksum_errors++;
        return fail(ResultCode.SERVER_ERROR);
      }
      if (err.code === 'DEVICE_FULL') {
        this.counters.fail_out_of_space++;
        return fail(ResultCode.OUT_OF_SPACE);
      }
      if (err.code === 'RECORD_TOO_BIG') {
        this.counters.fail_record_too_big++;
        return fail(ResultCode.RECORD_TOO_BIG);
      }
      if (err.code === 'SET_LIMIT') return fail(ResultCode.FORBIDDEN);
    }
    if (err instanceof ReplicationFailed) {
      this.counters.client_write_error++;
      return fail(err.resultCode);
    }
    this.counters.client_write_error++;
    return fail(ResultCode.SERVER_ERROR);
  }

  /** The site's current time as a void time (s since the Aerospike epoch): entries at or before it are expired. */
  currentVoidS(): number {
    return this.nowVoidS(this.clock.nowMs());
  }

  private nowVoidS(now: number): number {
    return nowVoidS(now);
  }

  private isExpired(e: IndexEntry, now: number): boolean {
    return isExpired(e, now);
  }

  /** Stores a version (or tombstone), updates set counts, and logs it. */
  private writeVersion(
    digest: Buffer,
    set: string,
    generation: number,
    lutMs: number,
    voidTimeS: number,
    tombstone: boolean,
    key: UserKey | undefined,
    bins: Bin[],
    kind: WriteKindId,
    origin: RecordOriginId = RecordOrigin.LOCAL,
  ): WrittenVersion {
    const rec: StoredRecord = { digest, setName: set, generation, lutMs, voidTimeS, tombstone, bins };
    if (key) rec.key = key;
    if (origin !== RecordOrigin.LOCAL) rec.origin = origin;
    const encoded = this.store.write(rec);
    this.writeLog.append(partitionOf(digest), digest, generation, lutMs, kind);
    return { record: rec, kind, encoded };
  }


  // ------------------------------------------------------------------ replication

  /**
   * A replica write from this partition's master: stored under the key lock if newer than the
   * local copy (see transaction/replica.ts), committed like any write (durable before the
   * answer under commit-to-device), never replicated further. The answer is a promise only when
   * the apply had to wait (a queued key, a commit), so the usual replica write acknowledges in
   * the same turn.
   */
  applyReplica(v: EncodedVersion, kind: WriteKindId): ApplyResult | Promise<ApplyResult> {
    let r: ApplyResult | Promise<ApplyResult> | typeof KEY_BUSY;
    try {
      r = this.locks.run(v.digest, () => {
        const c = computeReplicaEncoded(this.tx, v, kind);
        return c.stored ? commitStored(c.result, this.durability) : c.result;
      });
    } catch (err) {
      return this.notApplied(err);
    }
    if (r === KEY_BUSY) return { resultCode: ResultCode.KEY_BUSY, applied: false };
    if (r instanceof Promise) return r.catch((err: unknown) => this.notApplied(err));
    return r;
  }

  private notApplied(err: unknown): ApplyResult {
    return { resultCode: this.errorResult(err).resultCode, applied: false };
  }

  applyReplicated(v: RecordVersion, policy: ConflictPolicyId): Promise<ApplyResult> {
    const failed = (err: unknown): ApplyResult => ({ resultCode: this.errorResult(err).resultCode, applied: false });
    let r: ApplyResult | Promise<ApplyResult> | typeof KEY_BUSY;
    try {
      r = this.locks.run(v.digest, () => this.resolvingDuplicates(v.digest, () => complete(computeReplicated(this.tx, v, policy), this.durability, this.replicator)));
    } catch (err) {
      return Promise.resolve(failed(err));
    }
    if (r === KEY_BUSY) {
      this.counters.fail_key_busy++;
      return Promise.resolve({ resultCode: ResultCode.KEY_BUSY, applied: false });
    }
    if (r instanceof Promise) return r.catch(failed);
    return Promise.resolve(r);
  }

  async durable(): Promise<void> {
    if (!this.settings.commitToDevice) return;
    await Promise.all([this.store.commit(), this.writeLog.commit()]);
  }

  readVersion(digest: Buffer): RecordVersion | undefined {
    const rec = this.store.read(digest);
    if (!rec) return undefined;
    return toVersion(this.name, rec);
  }

  *scanPartition(pid: PartitionId, opts: ScanOptions): Iterable<RecordVersion> {
    const digests: Buffer[] = [];
    const wantSet = opts.set ? this.store.setId(opts.set) : -1;
    const now = this.clock.nowMs();
    this.store.forEach(pid, (d, e) => {
      if (e.tombstone && !opts.includeTombstones) return;
      if (!e.tombstone && !opts.includeExpired && this.isExpired(e, now)) return;
      if (wantSet >= 0 && e.setId !== wantSet) return;
      if (opts.lutAfterMs !== undefined && e.lutMs <= opts.lutAfterMs) return;
      digests.push(d);
    });
    for (const d of digests) {
      if (opts.headerOnly) {
        if (!this.store.lookup(d, this.e)) continue;
        const e = this.e;
        yield {
          namespace: this.name,
          set: this.store.setName(e.setId),
          digest: d,
          generation: e.generation,
          lutMs: e.lutMs,
          voidTimeS: e.voidTimeS,
          tombstone: e.tombstone,
          bins: [],
        };
        continue;
      }
      let rec: StoredRecord | undefined;
      try {
        rec = this.store.read(d);
      } catch (err) {
        if (err instanceof StorageError && err.code === 'CHECKSUM') {
          this.counters.storage_checksum_errors++;
          continue;
        }
        throw err;
      }
      if (!rec) continue;
      const v = toVersion(this.name, rec);
      if (opts.bins) {
        const want = new Set(opts.bins);
        v.bins = v.bins.filter((b) => want.has(b.name));
      }
      yield v;
    }
  }

  async truncate(set: string | undefined, beforeLutMs?: number): Promise<number> {
    const before = beforeLutMs ?? this.clock.nowMs();
    const setId = set ? this.store.setId(set) : -1;
    let n = 0;
    for (let p = 0; p < PARTITION_COUNT; p++) {
      const victims: Array<{ d: Buffer; e: IndexEntry }> = [];
      this.store.forEach(p as PartitionId, (d, e) => {
        if (!e.tombstone && e.lutMs <= before && (setId < 0 || e.setId === setId)) victims.push({ d, e: { ...e } });
      });
      for (const { d } of victims) {
        if (this.locks.isLocked(d)) continue;
        if (!this.store.lookup(d, this.e) || this.e.tombstone) continue;
        const e = this.e;
        const meta = nextMeta(e, this.clock.nowMs());
        this.writeVersion(d, this.store.setName(e.setId), meta.generation, meta.lutMs, 0, true, undefined, [], WriteKind.DELETE);
        n++;
      }
      if (p % 256 === 255) await yieldToLoop(this.timers);
    }
    this.counters.truncated_objects += n;
    await Promise.all([this.store.commit(), this.writeLog.commit()]);
    return n;
  }

  // ------------------------------------------------------------------ expiration, eviction

  /**
   * Watches the free space of the filesystems under the namespace: writes stop while less than
   * what a clean shutdown needs is left (see stop-writes.ts).
   */
  attachFreeSpace(probe: FreeSpaceProbe): void {
    this.freeSpace = probe;
    this.updateSpaceFlags();
  }

  /** Watches the host's memory: writes stop at stop-writes-sys-memory-pct (see stop-writes.ts). */
  attachSystemMemory(probe: SystemMemoryProbe): void {
    this.systemMemory = probe;
    this.updateSpaceFlags();
  }

  /** Why writes are refused now ('' = they are not), with a sentence for the log. */
  stopWritesState(): StopWritesState {
    return this.stopState;
  }

  /** Stop-writes check of one write; the shipper's system records pass soft limits. */
  private refusesWrite(set: string): boolean {
    if (this.store.blocksOpened !== this.spaceCheckedAtBlock) this.updateSpaceFlags();
    if (!this.stopWrites) return false;
    return this.stopState.hard || set !== SYSTEM_SET_NAME;
  }

  private updateSpaceFlags(): void {
    const s = this.store.stats();
    const diskPct = s.totalBytes > 0 ? (s.usedBytes * 100) / s.totalBytes : 0;
    const memPct = this.settings.indexMemoryBytes > 0 ? (s.indexBytes * 100) / this.settings.indexMemoryBytes : 0;
    this.spaceCheckedAtBlock = this.store.blocksOpened;
    this.stopState = stopWritesState({
      writeFailure: this.store.writeFailure(),
      filesystemFreeBytes: this.freeSpace?.freeBytes(),
      filesystemReserveBytes: this.store.shutdownReserveBytes() + this.writeLog.shutdownReserveBytes(),
      deviceUsedPct: diskPct,
      deviceAvailPct: s.availablePct,
      stopWritesPct: this.settings.stopWritesPct,
      memoryUsedBytes: s.memoryBytes,
      memoryBudgetBytes: this.settings.memoryBudgetBytes,
      sysMemory: this.sysMemoryUsage(),
      sysMemoryStopPct: this.settings.sysMemoryStopPct ?? 0,
    });
    this.stopWrites = this.stopState.reason !== StopWritesReason.NONE;
    this.store.defragPaused = this.stopState.reason === StopWritesReason.FILESYSTEM_FULL;
    this.hwmBreached =
      (this.settings.highWaterDiskPct > 0 && diskPct >= this.settings.highWaterDiskPct) ||
      (this.settings.highWaterMemoryPct > 0 && memPct >= this.settings.highWaterMemoryPct);
  }

  /** The host's memory use, read only when a limit is set (the probe reads /proc each time). */
  private sysMemoryUsage(): SystemMemoryUsage | undefined {
    return (this.settings.sysMemoryStopPct ?? 0) > 0 ? this.systemMemory?.usage() : undefined;
  }

  /** One second of background work: refresh space flags, expire a slice, evict if needed. */
  private async nsupTick(): Promise<void> {
    if (this.closed || this.nsupRunning) return;
    this.nsupRunning = true;
    try {
      this.updateSpaceFlags();
      // A slice a second, sized so a full pass takes about nsup-period (at least 64 partitions).
      if (this.settings.nsupPeriodS > 0) this.expireSlice(Math.max(NSUP_SLICE_PARTITIONS, Math.ceil(PARTITION_COUNT / this.settings.nsupPeriodS)));
      if (this.hwmBreached) this.evict();
      const age = this.settings.tombRaiderEligibleAgeS;
      if (this.settings.tombRaiderPeriodS > 0 && this.tombRaidAt <= this.clock.nowMs()) {
        this.tombRaidAt = this.clock.nowMs() + this.settings.tombRaiderPeriodS * 1000;
        await this.store.reclaimTombstones(this.clock.nowMs() - age * 1000);
      }
    } catch {
      // Background work retries on the next tick; errors are counted by the store.
    } finally {
      this.nsupRunning = false;
    }
  }
  private tombRaidAt = 0;

  /** Expires due records in the next slice of partitions (all partitions every ~nsup-period). */
  expireSlice(partitions = NSUP_SLICE_PARTITIONS): number {
    const now = this.clock.nowMs();
    const nowVoid = this.nowVoidS(now);
    let n = 0;
    for (let i = 0; i < partitions; i++) {
      const p = this.nsupCursor as PartitionId;
      this.nsupCursor = (this.nsupCursor + 1) % PARTITION_COUNT;
      const due: Buffer[] = [];
      this.store.forEach(p, (d, e) => {
        if (!e.tombstone && e.voidTimeS !== 0 && e.voidTimeS <= nowVoid) due.push(d);
      });
      for (const d of due) if (this.removeQuietly(d, WriteKind.EXPIRE)) n++;
    }
    this.counters.expired_objects += n;
    return n;
  }

  /** Expires every due record now (tests, and the `expire` info command). */
  expireAll(): number {
    return this.expireSlice(PARTITION_COUNT);
  }

  /** Evicts soonest-expiring records until under the high-water marks (records without TTL are never evicted). */
  evict(): number {
    const voids: number[] = [];
    for (let p = 0; p < PARTITION_COUNT; p++) {
      this.store.forEach(p as PartitionId, (_d, e) => {
        if (!e.tombstone && e.voidTimeS !== 0) voids.push(e.voidTimeS);
      });
    }
    if (voids.length === 0) return 0;
    voids.sort((a, b) => a - b);
    // Evict the soonest-expiring tenth (at least one), then re-check on the next tick.
    const threshold = voids[Math.max(0, Math.ceil(voids.length / 10) - 1)]!;
    let n = 0;
    for (let p = 0; p < PARTITION_COUNT; p++) {
      const due: Buffer[] = [];
      this.store.forEach(p as PartitionId, (d, e) => {
        if (!e.tombstone && e.voidTimeS !== 0 && e.voidTimeS <= threshold) due.push(d);
      });
      for (const d of due) if (this.removeQuietly(d, WriteKind.EVICT)) n++;
    }
    this.counters.evicted_objects += n;
    this.updateSpaceFlags();
    return n;
  }

  /** Deletes a record for expiry/eviction with a tombstone, unless a command holds its lock. */
  private removeQuietly(d: Buffer, kind: WriteKindId): boolean {
    if (this.locks.isLocked(d)) return false;
    const e = this.e;
    if (!this.store.lookup(d, e) || e.tombstone) return false;
    // The expiry rule (docs/xdr.md): the tombstone keeps the record's generation and LUT, so
    // every site that expires this version writes the same tombstone whatever its clock, and
    // any later version of the record (generation + 1, later LUT) still beats it.
    try {
      this.writeVersion(d, this.store.setName(e.setId), e.generation, e.lutMs, 0, true, undefined, [], kind, RecordOrigin.EXPIRED);
    } catch {
      return false;
    }
    return true;
  }

  // ------------------------------------------------------------------ info

  stats(): Record<string, string | number | boolean> {
    this.updateSpaceFlags();
    const s = this.store.stats();
    return {
      objects: s.records - s.tombstones,
      tombstones: s.tombstones,
      master_objects: s.records - s.tombstones,
      master_tombstones: s.tombstones,
      prole_objects: 0,
      non_replica_objects: 0,
      index_used_bytes: s.indexBytes,
      data_used_bytes: s.usedBytes,
      data_total_bytes: s.totalBytes,
      data_avail_pct: s.availablePct,
      data_used_pct: s.totalBytes > 0 ? Math.round((s.usedBytes * 100) / s.totalBytes) : 0,
      stop_writes: this.stopWrites,
      stop_writes_reason: this.stopState.reason,
      stop_writes_detail: this.stopState.detail,
      memory_used_bytes: s.memoryBytes,
      hwm_breached: this.hwmBreached,
      fenced: this.fencedFlag,
      current_time: this.nowVoidS(this.clock.nowMs()),
      defrag_blocks: s.defragBlocks,
      defrag_records: s.defragRecords,
      cache_read_pct: s.cacheHits + s.cacheMisses > 0 ? Math.round((s.cacheHits * 100) / (s.cacheHits + s.cacheMisses)) : 0,
      device_flushes: s.flushes,
      tombstones_reclaimed: s.tombstonesReclaimed,
      ...this.counters,
      storage_checksum_errors: this.counters.storage_checksum_errors + s.checksumErrors,
      ...this.getConfig(),
    };
  }

  sets(): Array<{ name: string; objects: number; tombstones: number }> {
    return this.store.allSetNames().map((name) => {
      const id = this.store.setId(name);
      return { name, ...this.store.setCounts(id) };
    });
  }

  binNames(): string[] {
    return [...this.bins];
  }

  setConfig(key: string, value: string): boolean {
    if (key === 'fenced') {
      if (value !== 'true' && value !== 'false') return false;
      this.setFenced(value === 'true');
      return true;
    }
    const spec = DYNAMIC[key];
    if (!spec) return false;
    const n = Number(value);
    if (!Number.isInteger(n) || n < spec.min || n > spec.max) return false;
    (this.settings as unknown as Record<string, number>)[spec.key] = n;
    this.updateSpaceFlags();
    return true;
  }

  getConfig(): Record<string, string | number | boolean> {
    const s = this.settings;
    return {
      'replication-factor': s.replicationFactor ?? 1,
      'default-ttl': s.defaultTtlS,
      'nsup-period': s.nsupPeriodS,
      'high-water-disk-pct': s.highWaterDiskPct,
      'high-water-memory-pct': s.highWaterMemoryPct,
      'stop-writes-pct': s.stopWritesPct,
      'memory-budget': s.memoryBudgetBytes,
      'stop-writes-sys-memory-pct': s.sysMemoryStopPct ?? 0,
      'transaction-pending-limit': s.transactionPendingLimit,
      'max-record-size': s.maxRecordBytes,
      'commit-to-device': s.commitToDevice,
      'tomb-raider-eligible-age': s.tombRaiderEligibleAgeS,
      'tomb-raider-period': s.tombRaiderPeriodS,
      'conflict-resolution-policy': s.conflictPolicy,
      fenced: this.fencedFlag,
    };
  }
}

function toVersion(namespace: string, rec: StoredRecord): RecordVersion {
  const v: RecordVersion = {
    namespace,
    set: rec.setName,
    digest: rec.digest,
    generation: rec.generation,
    lutMs: rec.lutMs,
    voidTimeS: rec.voidTimeS,
    tombstone: rec.tombstone,
    bins: rec.bins,
  };
  if (rec.key) v.key = rec.key;
  if (rec.origin) v.origin = rec.origin;
  return v;
}
