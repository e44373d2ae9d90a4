/**
 * The XDR shipper: runs inside a store node (a NodeExtension) and ships every change of the
 * configured namespaces to each destination's Kafka topic.
 *
 * One stream per (destination, namespace). A stream tails the per-partition write logs; for each
 * entry it reads the record's current version (so a key updated many times between passes ships
 * once; an LRU of shipped versions drops repeats) and produces it with an idempotent kafkajs
 * producer, key = digest, Kafka partition = store partition mod N. Cursors advance only after
 * Kafka acknowledged the batch; a failed batch is retried with backoff and nothing newer is read
 * meanwhile, so memory stays bounded by one batch.
 *
 * Checkpoints: per partition, T such that every change with LUT <= T is in Kafka. A partition's
 * T becomes (time it was last seen fully drained) - 1: writes append to the log in the same
 * event-loop turn that assigns their LUT (>= now), so nothing older can appear later. They are
 * stored in the namespace itself (set `ferry-xdr`, one record per partition whose digest is
 * chosen to fall in that partition), so a checkpoint lives, replicates and migrates with its
 * partition like data: a restart, a new master or a write log that wrapped while Kafka was down
 * resumes by scanning the partition for LUT > T, then tailing the log again.
 *
 * In a cluster each node ships only the partitions it serves as working master
 * (StoreNode.ownership): the node that takes the client writes. While a new final master is
 * being filled that is the acting master (the old one, holding a full copy); the final master
 * takes over at the hand-off, once its copy is full. On a role change, a partition this node
 * gained is rescanned from its (replicated) checkpoint, then tailed; one it lost is no longer
 * read, and its checkpoint is no longer written (a write on a non-master would stay local and
 * outrank the master's copy by generation), once the entries it logged before the hand-off are
 * shipped (drainTo: the RPO-0 writes it executed wait for its own stream). The filling copy ships nothing: what migrates into
 * it was shipped by the acting master or is still unshipped there, and then has LUT > the
 * checkpoint it inherits. The handover ships some changes twice (the old master's last
 * checkpoint lags its shipping), never none.
 *
 * RPO 0 (`rpo0-namespaces`, `rpo0-sets`): the stream installs an acknowledgement gate on its
 * namespace; a client write it would ship waits (record lock held) until a batch holding that
 * version, or a newer one of the key, is acknowledged by Kafka, or fails with TIMEOUT after
 * `rpo0-timeout-ms`. The loop is woken for it. A write that arrives while a batch is in flight
 * would wait for that batch's round trip and then its own: an express produce on a second
 * producer ships the waiting keys (not in the batch in flight) beside it, so the wait is about one
 * round trip. Per key, Kafka still gets versions in order: the loop produces its next batch only
 * once the express produce is acknowledged, and an express produce skips the keys of the batch in
 * flight. Cursors and checkpoints move only with the loop's batches (what an express produce
 * shipped is in Kafka, so the loop skips or repeats it; either keeps "LUT <= T is in Kafka").
 */
import Bottleneck from 'bottleneck';
import { MessageTooLargeError, kafkajsLink, type KafkaLinkFactory, type KafkaProducer } from '../kafka/index.js';
import { LRUCache } from 'lru-cache';
import {
  computeDigest,
  OpType,
  PARTITION_COUNT,
  ParticleType,
  SYSTEM_SET_NAME,
  WriteKind,
  isReplicatedOrigin,
  partitionOf,
  runtimeOf,
  yieldToLoop,
  encodeVersion,
  type MetricSample,
  type NodeExtension,
  type StoreNamespace,
  type StoreNode,
  type Op,
  type PartitionId,
  type RecordVersion,
  type Runtime,
  type ShipMessage,
} from '../store/index.js';
import { defaultTopic, type DestinationConfig, type XdrConfig } from './config.js';
import type { GatedVersion, PartitionOwnership } from '../store/index.js';
import { ShipperError } from './errors.js';
import { describeKafkaError } from '../kafka/security.js';

/** The set holding shipper checkpoints; never shipped. */
export const SYSTEM_SET = SYSTEM_SET_NAME;
/** Partitions per checkpoint record of the earlier layout (read once when upgrading, never written). */
const LEGACY_CHECKPOINT_GROUP = 64;
/** The bin of a per-partition checkpoint record: T (ms, integer). */
const CHECKPOINT_BIN = 'lut';
/** Checkpoint records written concurrently (each is a replicated write in a cluster). */
const CHECKPOINT_WRITES_IN_FLIGHT = 16;
/**
 * Checkpoint records written per checkpoint interval at most: under a load that touches every
 * partition, writing all of them each interval would cost a replicated write per partition per
 * second. The rest stay dirty for the next intervals (oldest first); a stale checkpoint only
 * makes a new master re-ship a little more.
 */
const CHECKPOINT_WRITES_PER_INTERVAL_MAX = 1024;
/**
 * Checkpoint writes per interval are also held to this share of the records shipped in it (but
 * CHECKPOINT_WRITES_PER_S_MIN are always allowed): a write spread over all partitions otherwise
 * dirtied one checkpoint per client write, and every client write cost a second replicated write.
 */
const CHECKPOINT_WRITES_SHARE_OF_SHIPPED = 0.25;
const CHECKPOINT_WRITES_PER_S_MIN = 32;
/** Checkpoint writes between two yields to the event loop (they may all complete synchronously). */
const CHECKPOINT_WRITES_PER_YIELD = 64;
/** Shipped versions remembered to drop repeats. */
const SHIPPED_CACHE_ENTRIES = 200_000;
/**
 * A full pass over every owned partition at least this often, even when only some changed
 * (idle partitions' checkpoints advance; a belt to the pending list's braces).
 */
const FULL_PASS_EVERY_MS = 1000;
/** Idle wait for new write-log entries. */
const TAIL_WAIT_MS = 50;
/** Shortest retry pause. */
const RETRY_BACKOFF_MIN_MS = 50;
/**
 * At stop, how long the loop may take to finish the batch in flight before the producer is
 * disconnected under it (a Kafka that is gone or never answers must not hold the node's
 * shutdown); the batch is simply shipped again after the restart.
 */
const STOP_LOOP_WAIT_MS = 2000;
/** Bytes a record adds to a produce request beyond its key, value and headers (Kafka record framing, generous). */
const RECORD_OVERHEAD_BYTES = 40;
/**
 * Role changes (hand-overs between acting and final masters) are taken at most this often; a
 * partition handed over waits at most this long to be shipped by its new master (it rescans from
 * the checkpoint, so nothing is skipped meanwhile).
 */
const ROLES_CHECK_INTERVAL_MS = 50;
/** Hand-overs (not membership changes) are logged at most this often, summed. */
const HANDOVER_LOG_INTERVAL_MS = 1000;
/** At stop, how long the producer's disconnect may take. */
const STOP_DISCONNECT_WAIT_MS = 1000;
/**
 * Records an express produce (see Stream.express) carries at most: it is for the RPO-0 writes
 * waiting now (a few per produce round trip at the rates RPO 0 is for), never a backlog.
 */
const EXPRESS_RECORDS_MAX = 256;

interface Pending {
  msg: ShipMessage & { partition: number };
  pid: number;
  version: string;
  hex: string;
}

export interface StreamStats {
  destination: string;
  namespace: string;
  topic: string;
  connected: boolean;
  recordsBehind: number;
  msBehind: number;
  oldestUnshippedLutMs: number;
  shipped: number;
  shippedPerS: number;
  skipped: number;
  retries: number;
  errors: number;
  /** Records the destination refused as too large even alone: skipped, see Stream.send. */
  tooLarge: number;
  /** RPO-0 writes failed with TIMEOUT because their version was not in Kafka within rpo0-timeout-ms. */
  rpo0Timeouts?: number;
  /** Records shipped by express produces (RPO-0 writes that came in while a batch was in flight). */
  rpo0Express?: number;
  /** Batches collected, and how many of them passed over every owned partition (the others read only partitions whose log grew). */
  passes?: number;
  fullPasses?: number;
  /** Checkpoint records written (each a replicated write in a cluster). */
  checkpointWrites?: number;
  lastError: string;
  recoveringPartitions: number;
  /** Partitions this node masters, so ships (all 4096 on a node without a cluster). */
  masterPartitions: number;
  /** The topic's partition count (store partition p goes to Kafka partition p mod this); 0 before the first connect. */
  kafkaPartitions?: number;
  partitions?: Array<{ pid: number; behind: number; checkpointMs: number; recovering: boolean }>;
}

class Stream {
  readonly topic: string;
  private readonly cursor = new Float64Array(PARTITION_COUNT);
  private readonly checkpoint = new Float64Array(PARTITION_COUNT);
  private readonly drainedAt = new Float64Array(PARTITION_COUNT);
  private readonly recovering = new Uint8Array(PARTITION_COUNT);
  /** 1 where this node masters the partition (as of the last table change applied). */
  private readonly owned = new Uint8Array(PARTITION_COUNT);
  /**
   * Where a partition handed over is still shipped up to (write-log sequence, exclusive; 0 =
   * not draining), and the partitions draining: the entries this node logged as master before
   * the hand-off are shipped by it, so the RPO-0 writes it executed are released here (the new
   * master's rescan ships them again).
   */
  private readonly drainTo = new Float64Array(PARTITION_COUNT);
  private draining: number[] = [];
  /**
   * RPO-0 writes (digest hex) this node executed in partitions its stream does not ship: roles
   * can flip between two looks of the loop (a hand-off, the provisional roles of a new round), and
   * the waiting client is released only by this node's stream, so it ships them itself until
   * Kafka acknowledged them (the partition's shipper ships them too: harmless duplicates).
   */
  private readonly strays = new Set<string>();
  /** The ownership epoch in which each partition was last gained. */
  private readonly gainedAt = new Uint32Array(PARTITION_COUNT);
  private ownershipEpoch = 0;
  private tableChanged = false;
  /** The roles generation applied last (-1: none yet). */
  private rolesSeen = -1;
  private rolesAppliedAtMs = 0;
  /** Hand-overs since the last log line about them (role changes come one partition at a time). */
  private readonly handovers = { gained: 0, lost: 0, loggedAtMs: 0 };
  private masterCount = 0;
  /** Partitions whose checkpoint advanced past a shipped change since the last write. */
  private readonly dirty = new Set<number>();
  private readonly shippedCache = new LRUCache<string, string>({ max: SHIPPED_CACHE_ENTRIES });
  /** Versions already in the batch being collected (a key written twice ships once). */
  private readonly inBatch = new Map<string, string>();
  private readonly limiter: Bottleneck | undefined;
  private producer: KafkaProducer | undefined;
  private kafkaPartitions = 0;
  private running = false;
  private loop: Promise<void> | undefined;
  /** Ends the current pause early (set while the loop sleeps). */
  private wake: (() => void) | undefined;
  private nextPid = 0;
  /**
   * Owned partitions whose log grew since they were last read (fed by the write log's onAppend),
   * in arrival order, each once (`pendingMark`). collect() reads only these unless `scanAll` is
   * set: when ownership changed, a rescan was asked for, a batch failed (its partitions were
   * taken off the list), or the last full pass stopped early. So a
   * batch costs the partitions that changed, not a pass over all 4096 (and the idle tail no
   * pass at all).
   */
  private readonly pendingMark = new Uint8Array(PARTITION_COUNT);
  private pendingList: number[] = [];
  private scanAll = true;
  private lastFullPassMs = 0;
  private offAppend: (() => void) | undefined;
  /** Ends the tail wait (set while the loop waits for new log entries). */
  private tailWake: (() => void) | undefined;
  private tailWakeScheduled = false;
  /** Request size the destination was seen to refuse, halved (bytes; batch-max-bytes until then). */
  private fitBytes = Infinity;
  private lastCheckpointWrite = 0;
  /** counters.shipped when checkpoints were last written (the share budget counts from there). */
  private shippedAtCheckpoint = 0;
  private readonly counters = { shipped: 0, skipped: 0, retries: 0, errors: 0, tooLarge: 0, passes: 0, fullPasses: 0, rpo0Timeouts: 0, rpo0Express: 0, checkpointWrites: 0 };
  private lastError = '';
  /** Result code of the last checkpoint write (0 = OK). */
  private checkpointCode = 0;
  private rate: { at: number; shipped: number; perS: number };
  /** RPO-0 writes waiting for Kafka, by digest hex. */
  private readonly syncWaiters = new Map<string, SyncWaiter[]>();
  private removeGate: (() => void) | undefined;
  /** The checkpoint write running beside the loop, if any. */
  private checkpointing: Promise<void> | undefined;
  /** Keys of the batch being produced (`sending`): an express produce leaves them to it. */
  private readonly inFlight = new Set<string>();
  private sending = false;
  /** The express produce running beside the batch in flight, its producer, its dedupe map. */
  private expressing: Promise<void> | undefined;
  private expressScheduled = false;
  /** An express produce failed: none until the loop's next batch is acknowledged (no retry storm while Kafka is away). */
  private expressFailed = false;
  private expressProducer: KafkaProducer | undefined;
  private readonly expressBatch = new Map<string, string>();

  constructor(
    private readonly site: string,
    private readonly dest: DestinationConfig,
    private readonly ns: StoreNamespace,
    private readonly log: (msg: string, err?: unknown) => void,
    private readonly rt: Runtime,
    private readonly kafka: KafkaLinkFactory,
    private readonly ownership: PartitionOwnership | undefined,
  ) {
    this.rate = { at: rt.clock.nowMs(), shipped: 0, perS: 0 };
    this.topic = dest.topic || defaultTopic(site, ns.name);
    if (dest.maxRecordsPerS > 0) {
      this.limiter = new Bottleneck({
        reservoir: dest.maxRecordsPerS,
        reservoirRefreshAmount: dest.maxRecordsPerS,
        reservoirRefreshInterval: 1000,
        // No maxConcurrent: Bottleneck counts it in job weight, so a limit of 1 refused every
        // batch of more than one record. The send loop is sequential anyway.
      });
    }
  }

  async start(): Promise<void> {
    for (let p = 0; p < PARTITION_COUNT; p++) this.cursor[p] = Number(this.ns.writeLog.nextSequence(p as PartitionId));
    this.offAppend = this.ns.writeLog.onAppend((pid) => this.noteAppend(pid));
    this.applyOwnership();
    this.ownership?.onChange(() => {
      this.tableChanged = true;
      this.wake?.();
    });
    this.running = true;
    if (this.dest.rpo0Namespaces.length > 0 || this.dest.rpo0Sets.length > 0) this.removeGate = this.ns.addAckGate?.((v) => this.gate(v));
    this.loop = this.run();
  }

  /** The RPO-0 gate: a promise for a client write this stream ships and must see in Kafka first. */
  private gate(v: GatedVersion): Promise<void> | undefined {
    if (v.set === SYSTEM_SET || !(this.dest.rpo0Namespaces.includes(this.ns.name) || this.dest.rpo0Sets.includes(v.set))) return undefined;
    // What this destination never ships cannot be waited for.
    if (this.dest.shipSets.length > 0 && !this.dest.shipSets.includes(v.set)) return undefined;
    if (this.dest.ignoreSets.includes(v.set) || (v.tombstone && !this.dest.shipDeletes)) return undefined;
    const hex = v.digest.toString('hex');
    if (covers(this.shippedCache.get(hex), v.generation, v.lutMs)) return Promise.resolve();
    if (!this.running) return Promise.reject(new Error(`xdr ${this.dest.name}: the shipper is stopping`));
    if (this.owned[partitionOf(v.digest)] !== 1) {
      this.strays.add(hex);
      this.tailWake?.();
    }
    return new Promise<void>((resolve, reject) => {
      const w: SyncWaiter = { generation: v.generation, lutMs: v.lutMs, resolve, reject, timer: undefined };
      w.timer = this.rt.timers.setTimeout(() => {
        this.dropWaiter(hex, w);
        this.counters.rpo0Timeouts++;
        reject(new Error(`xdr ${this.dest.name}: not in Kafka within ${this.dest.rpo0TimeoutMs} ms (rpo0-timeout-ms): ${this.lastError || 'still queued'}`));
      }, this.dest.rpo0TimeoutMs);
      const list = this.syncWaiters.get(hex);
      if (list) list.push(w);
      else this.syncWaiters.set(hex, [w]);
      this.wake?.();
      this.scheduleExpress();
    });
  }

  /** At the next turn (writes arriving together go together), an express produce if a batch is in flight. */
  private scheduleExpress(): void {
    if (!this.sending || this.expressing || this.expressScheduled || this.expressFailed) return;
    this.expressScheduled = true;
    this.rt.timers.setImmediate(() => {
      this.expressScheduled = false;
      if (!this.sending || this.expressing || !this.running) return;
      this.expressing = this.express()
        .catch((err: unknown) => {
          // The waiting writes are left to the loop's next batch.
          this.expressFailed = true;
          this.log(`xdr ${this.dest.name}/${this.ns.name}: express produce failed: ${describeKafkaError(err, `destination ${this.dest.name}`, this.dest.brokers, this.dest.security)}`, err);
          const p = this.expressProducer;
          this.expressProducer = undefined;
          return p?.disconnect().catch(() => undefined);
        })
        .finally(() => (this.expressing = undefined));
    });
  }

  /**
   * While the loop's batch is in flight: produces the current versions of the keys RPO-0 writes
   * wait for (those not in that batch) on the express producer, and releases the writes covered.
   */
  private async express(): Promise<void> {
    while (this.running && this.sending) {
      const items = this.expressItems();
      if (items.length === 0) return;
      if (!this.expressProducer) {
        const link = this.kafka({ role: 'shipper', clientId: `ferry-shipper-${this.site}-${this.dest.name}-rpo0`, brokers: this.dest.brokers, security: this.dest.security });
        const producer = await link.idempotentProducer();
        if (!this.running) {
          await producer.disconnect().catch(() => undefined);
          return;
        }
        this.expressProducer = producer;
      }
      // As the loop does: never ship a version the source could still lose (commit-to-device).
      // The RPO-0 write's own commit step runs only after its gate, so without this an express
      // produce could put in Kafka a version a crash then takes from the source.
      await this.ns.durable?.();
      if (!this.running) return;
      await this.produce(items, this.expressProducer);
      for (const it of items) {
        this.shippedCache.set(it.hex, it.version);
        this.releaseWaiters(it.hex, it.version);
      }
      this.counters.rpo0Express += items.length;
    }
  }

  private expressItems(): Pending[] {
    const items: Pending[] = [];
    const limit = Math.min(this.dest.batchMaxBytes, this.fitBytes);
    let bytes = 0;
    this.expressBatch.clear();
    for (const hex of this.syncWaiters.keys()) {
      if (items.length >= EXPRESS_RECORDS_MAX || bytes >= limit) break;
      if (this.inFlight.has(hex)) continue;
      const d = Buffer.from(hex, 'hex');
      const v = this.ns.readVersion(d);
      const n = items.length;
      if (v) this.consider(v, partitionOf(d), items, this.expressBatch);
      if (items.length > n) bytes += messageBytes(items[n]!);
    }
    // One request: a record that does not fit with the others waits for the next round or the loop.
    if (items.length > 1 && bytes > limit) items.pop();
    return items;
  }

  private dropWaiter(hex: string, w: SyncWaiter): void {
    const list = this.syncWaiters.get(hex);
    if (!list) return;
    const i = list.indexOf(w);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.syncWaiters.delete(hex);
  }

  /** After Kafka acknowledged `version` of `hex`: the writes it covers are acknowledged to their clients. */
  private releaseWaiters(hex: string, version: string): void {
    const list = this.syncWaiters.get(hex);
    if (!list) return;
    for (const w of [...list]) {
      if (!covers(version, w.generation, w.lutMs)) continue;
      this.rt.timers.clearTimeout(w.timer);
      this.dropWaiter(hex, w);
      w.resolve();
    }
  }

  /**
   * Stops within about STOP_LOOP_WAIT_MS + STOP_DISCONNECT_WAIT_MS whatever Kafka does: wakes
   * the loop from its pause, gives the batch in flight a moment, then disconnects under it.
   * Checkpoints cover acknowledged batches only, so writing them with a batch in flight is safe.
   */
  async stop(): Promise<void> {
    this.running = false;
    this.removeGate?.();
    this.offAppend?.();
    this.wake?.();
    this.tailWake?.();
    const finished = await settlesWithin(this.loop ?? Promise.resolve(), STOP_LOOP_WAIT_MS, this.rt);
    if (!finished) this.log(`xdr ${this.dest.name}/${this.ns.name}: the batch in flight was not acknowledged in ${STOP_LOOP_WAIT_MS} ms; it ships again after the restart`);
    await this.checkpointing;
    await this.writeCheckpoints(true).catch((err: unknown) => this.log('checkpoint write failed at stop', err));
    const producer = this.producer;
    this.producer = undefined;
    if (producer) await settlesWithin(producer.disconnect(), STOP_DISCONNECT_WAIT_MS, this.rt);
    await settlesWithin(this.expressing ?? Promise.resolve(), STOP_LOOP_WAIT_MS, this.rt);
    const express = this.expressProducer;
    this.expressProducer = undefined;
    if (express) await settlesWithin(express.disconnect(), STOP_DISCONNECT_WAIT_MS, this.rt);
  }

  /** A pause the stop can cut short. */
  private pause(ms: number): Promise<void> {
    if (!this.running) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = this.rt.timers.setTimeout(() => {
        this.wake = undefined;
        resolve();
      }, ms);
      this.wake = () => {
        this.rt.timers.clearTimeout(timer);
        this.wake = undefined;
        resolve();
      };
    });
  }

  /** An entry was appended to pid's log: an owned partition goes on the pending list. */
  private noteAppend(pid: number): void {
    if (!this.owned[pid] || this.pendingMark[pid]) return;
    this.pendingMark[pid] = 1;
    this.pendingList.push(pid);
    // Woken at the next turn, as the log's own waiters are: writes that arrived together ship together.
    if (this.tailWake && !this.tailWakeScheduled) {
      this.tailWakeScheduled = true;
      this.rt.timers.setImmediate(() => {
        this.tailWakeScheduled = false;
        this.tailWake?.();
      });
    }
  }

  /** Makes partitions ship again everything with LUT > fromMs (replay from the source). */
  reship(fromMs: number, pids: number[]): void {
    this.scanAll = true;
    for (const p of pids) {
      this.checkpoint[p] = Math.min(this.checkpoint[p]!, fromMs);
      this.recovering[p] = 1;
      this.dirty.add(p);
    }
    this.shippedCache.clear();
  }

  /**
   * Whether this node ships p now: it executes p's client writes (the working master: the acting
   * master while the final master is being filled, then the final master). A node whose
   * ownership cannot say (an older assembly) follows the table's master.
   */
  private isMasterNow(p: number): boolean {
    const o = this.ownership;
    if (!o) return true;
    return o.isWorkingMaster ? o.isWorkingMaster(this.ns.name, p) : o.isMaster(p);
  }

  /**
   * True when working masters may have changed since the last applyOwnership, checked at most
   * every ROLES_CHECK_INTERVAL_MS: during migrations the roles generation moves with every
   * version announcement, and each apply walks all 4096 partitions.
   */
  private rolesChanged(): boolean {
    const g = this.ownership?.rolesGeneration?.();
    if (g === undefined || g === this.rolesSeen) return false;
    return this.rt.clock.nowMs() - this.rolesAppliedAtMs >= ROLES_CHECK_INTERVAL_MS;
  }

  /**
   * Takes the partition table as it is now: a gained partition reloads its checkpoint (the
   * replicated copy the previous master wrote) and is rescanned for LUT > T; a lost one stops.
   * Synchronous, so it runs between two batches as a consistent cut.
   */
  private applyOwnership(): void {
    const membership = this.tableChanged;
    this.tableChanged = false;
    this.rolesSeen = this.ownership?.rolesGeneration?.() ?? -1;
    this.rolesAppliedAtMs = this.rt.clock.nowMs();
    this.scanAll = true;
    this.ownershipEpoch++;
    let gained = 0;
    let lost = 0;
    let count = 0;
    for (let p = 0; p < PARTITION_COUNT; p++) {
      const m = this.isMasterNow(p);
      if (m) count++;
      if (m && !this.owned[p]) {
        this.checkpoint[p] = this.readCheckpoint(p);
        this.recovering[p] = 1;
        this.drainTo[p] = 0;
        this.gainedAt[p] = this.ownershipEpoch;
        gained++;
      } else if (!m && this.owned[p]) {
        // A partition lost while still to be rescanned has no cursor to drain from: its new
        // master's rescan ships it (an RPO-0 write waiting here then times out, in doubt).
        const next = Number(this.ns.writeLog.nextSequence(p as PartitionId));
        if (!this.recovering[p] && this.cursor[p]! < next && this.drainTo[p] === 0) {
          this.drainTo[p] = next;
          this.draining.push(p);
        }
        this.recovering[p] = 0;
        this.dirty.delete(p);
        lost++;
      }
      this.owned[p] = m ? 1 : 0;
    }
    this.masterCount = count;
    this.logHandovers(membership, gained, lost);
  }

  /**
   * One line per membership change; hand-overs between an acting and a final master (one
   * partition at a time as migrations finish) are summed into at most one line per
   * HANDOVER_LOG_INTERVAL_MS.
   */
  private logHandovers(membership: boolean, gained: number, lost: number): void {
    const h = this.handovers;
    h.gained += gained;
    h.lost += lost;
    const now = this.rt.clock.nowMs();
    if (!this.ownership || h.gained + h.lost === 0 || (!membership && now - h.loggedAtMs < HANDOVER_LOG_INTERVAL_MS)) return;
    const why = membership ? 'partition table changed' : 'partitions handed over';
    this.log(`xdr ${this.dest.name}/${this.ns.name}: ${why}: shipping ${this.masterCount} partition(s) this node serves as master (+${h.gained} rescanned from their checkpoints, -${h.lost} handed over)`);
    h.gained = 0;
    h.lost = 0;
    h.loggedAtMs = now;
  }

  stats(withPartitions: boolean): StreamStats {
    const now = this.rt.clock.nowMs();
    let behind = 0;
    let oldest = Infinity;
    let recovering = 0;
    const parts: NonNullable<StreamStats['partitions']> = [];
    for (let p = 0; p < PARTITION_COUNT; p++) {
      if (!this.owned[p]) continue;
      const pid = p as PartitionId;
      const next = Number(this.ns.writeLog.nextSequence(pid));
      const b = Math.max(0, next - this.cursor[p]!);
      behind += b;
      if (this.recovering[p]) {
        recovering++;
        oldest = Math.min(oldest, this.checkpoint[p]! + 1);
      } else if (b > 0) {
        const first = this.ns.writeLog.read(pid, BigInt(this.cursor[p]!), 1)[0];
        if (first) oldest = Math.min(oldest, first.lutMs);
      }
      if (withPartitions && (b > 0 || this.recovering[p])) parts.push({ pid: p, behind: b, checkpointMs: this.checkpoint[p]!, recovering: this.recovering[p] === 1 });
    }
    if (now - this.rate.at >= 1000) {
      this.rate.perS = ((this.counters.shipped - this.rate.shipped) * 1000) / (now - this.rate.at);
      this.rate = { at: now, shipped: this.counters.shipped, perS: this.rate.perS };
    }
    const s: StreamStats = {
      destination: this.dest.name,
      namespace: this.ns.name,
      topic: this.topic,
      connected: this.producer !== undefined,
      recordsBehind: behind,
      msBehind: oldest === Infinity ? 0 : Math.max(0, now - oldest),
      oldestUnshippedLutMs: oldest === Infinity ? 0 : oldest,
      shipped: this.counters.shipped,
      shippedPerS: Math.round(this.rate.perS),
      skipped: this.counters.skipped,
      retries: this.counters.retries,
      errors: this.counters.errors,
      tooLarge: this.counters.tooLarge,
      rpo0Timeouts: this.counters.rpo0Timeouts,
      rpo0Express: this.counters.rpo0Express,
      passes: this.counters.passes,
      fullPasses: this.counters.fullPasses,
      checkpointWrites: this.counters.checkpointWrites,
      lastError: this.lastError,
      recoveringPartitions: recovering,
      masterPartitions: this.masterCount,
      kafkaPartitions: this.kafkaPartitions,
    };
    if (withPartitions) s.partitions = parts;
    return s;
  }

  // ---------------------------------------------------------------- main loop

  private async run(): Promise<void> {
    let backoff = RETRY_BACKOFF_MIN_MS;
    while (this.running) {
      try {
        if (!this.producer) await this.connect();
        if (this.tableChanged || this.rolesChanged()) this.applyOwnership();
        const epoch = this.ownershipEpoch;
        const batch = this.collect();
        // Nothing to send (all skipped or filtered) counts as acknowledged at once.
        // Never ship a version the source could still lose: with commit-to-device, what was
        // read is made durable first (one group commit per batch).
        if (batch.items.length > 0) await this.ns.durable?.();
        const sent = batch.items.length > 0 ? await this.sendInFlight(batch.items) : batch.items;
        // Acknowledged: advance cursors and checkpoints; rescanned partitions are done. A
        // partition gained again while the batch was in flight keeps its new rescan.
        const current = (p: number): boolean => this.owned[p] === 1 && this.gainedAt[p]! <= epoch;
        for (const p of batch.recovered) if (current(p)) this.recovering[p] = 0;
        for (const [p, c] of batch.cursors) {
          if (current(p)) this.cursor[p] = c;
          else if (!this.owned[p] && this.drainTo[p]! > 0) {
            this.cursor[p] = c;
            if (c >= this.drainTo[p]!) this.drainTo[p] = 0;
          }
        }
        if (this.draining.length > 0) this.draining = this.draining.filter((p) => this.drainTo[p]! > 0);
        for (const hex of batch.strays) this.strays.delete(hex);
        for (const [p, at] of batch.drained) {
          if (!current(p)) continue;
          this.drainedAt[p] = at;
          if (!this.recovering[p] && at - 1 > this.checkpoint[p]!) {
            this.checkpoint[p] = at - 1;
            // Only a checkpoint that moved past a shipped change is worth writing: the
            // checkpoint record's own log entry must not keep an idle node writing it.
            if (batch.touched.has(p)) this.dirty.add(p);
          }
        }
        for (const it of sent) {
          this.shippedCache.set(it.hex, it.version);
          if (this.syncWaiters.size > 0) this.releaseWaiters(it.hex, it.version);
        }
        this.counters.shipped += sent.length;
        // In the background: the next batch (and RPO-0 writes waiting for it) does not wait for
        // up to CHECKPOINT_WRITES_PER_INTERVAL_MAX replicated checkpoint writes.
        this.checkpointing ??= this.writeCheckpoints(false)
          .catch((err: unknown) => this.log(`xdr ${this.dest.name}/${this.ns.name}: checkpoint write failed`, err))
          .finally(() => (this.checkpointing = undefined));
        backoff = RETRY_BACKOFF_MIN_MS;
        if (sent.length > 0) this.expressFailed = false;
        // Partitions mastered elsewhere grow here too (replica writes): they must not wake us.
        if (!batch.more) await this.waitForLog();
        else if (batch.items.length === 0) await yieldToLoop(this.rt.timers);
        else if (this.dest.lingerMs > 0 && batch.items.length < this.dest.batchMax) await this.pause(this.dest.lingerMs);
      } catch (err) {
        // The failed batch's partitions left the pending list with their cursors unmoved.
        this.scanAll = true;
        this.counters.retries++;
        this.counters.errors++;
        this.lastError = describeKafkaError(err, `destination ${this.dest.name}`, this.dest.brokers, this.dest.security);
        this.log(`xdr ${this.dest.name}/${this.ns.name}: produce failed, retrying in ${backoff} ms: ${this.lastError}`, err);
        if (this.producer) {
          await this.producer.disconnect().catch(() => undefined);
          this.producer = undefined;
        }
        await this.pause(backoff);
        backoff = Math.min(backoff * 2, this.dest.retryBackoffMaxMs);
      }
    }
  }

  private async connect(): Promise<void> {
    const link = this.kafka({ role: 'shipper', clientId: `ferry-shipper-${this.site}-${this.dest.name}`, brokers: this.dest.brokers, security: this.dest.security });
    this.kafkaPartitions = await link.ensureTopic(this.topic, this.dest.kafkaPartitions);
    if (this.kafkaPartitions < 1) throw new ShipperError('NO_PARTITIONS', `topic ${this.topic} has no partitions`);
    const producer = await link.idempotentProducer();
    if (!this.running) {
      // Stopped while connecting: nothing may stay connected behind the stop.
      await producer.disconnect().catch(() => undefined);
      throw new ShipperError('STOPPED', 'stopped');
    }
    this.producer = producer;
  }

  /** Until an owned partition's log has an entry past its cursor, or TAIL_WAIT_MS. */
  private waitForLog(): Promise<void> {
    const wl = this.ns.writeLog;
    if (this.offAppend && !this.scanAll) {
      if (this.pendingList.length > 0 || this.draining.length > 0 || this.strays.size > 0 || !this.running) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const timer = this.rt.timers.setTimeout(() => {
          this.tailWake = undefined;
          resolve();
        }, TAIL_WAIT_MS);
        this.tailWake = () => {
          this.rt.timers.clearTimeout(timer);
          this.tailWake = undefined;
          resolve();
        };
      });
    }
    return wl.waitForEntriesFrom(this.owned, this.cursor, TAIL_WAIT_MS);
  }

  /** Reads the next batch from recovering partitions and the logs. Synchronous: a consistent cut. */
  private collect(): { items: Pending[]; cursors: Map<number, number>; drained: Map<number, number>; recovered: number[]; touched: Set<number>; more: boolean; strays: string[] } {
    const items: Pending[] = [];
    const touched = new Set<number>();
    const recovered: number[] = [];
    const cursors = new Map<number, number>();
    const drained = new Map<number, number>();
    const max = this.limiter ? Math.min(this.dest.batchMax, this.dest.maxRecordsPerS) : this.dest.batchMax;
    const now = this.rt.clock.nowMs();
    let more = false;
    this.inBatch.clear();
    // First what this node must ship although its stream does not own it (see strays, drainTo).
    const strays = [...this.strays];
    for (const hex of strays) {
      const d = Buffer.from(hex, 'hex');
      const v = this.ns.readVersion(d);
      if (v) this.consider(v, partitionOf(d), items);
    }
    for (const p of this.draining) if (items.length < max && this.collectDrain(p, max, items, cursors)) more = true;
    // A full pass (see pendingList), or only the partitions whose log grew.
    const full = this.scanAll || !this.offAppend || now - this.lastFullPassMs >= FULL_PASS_EVERY_MS;
    const list = this.pendingList;
    const left: number[] = [];
    this.counters.passes++;
    if (full) {
      this.counters.fullPasses++;
      this.lastFullPassMs = now;
      this.scanAll = false;
      this.pendingMark.fill(0);
      this.pendingList = [];
    } else this.pendingList = left;
    const count = full ? PARTITION_COUNT : list.length;
    for (let scanned = 0; scanned < count; scanned++) {
      if (items.length >= max) {
        more = true;
        if (!full) for (let i = scanned; i < count; i++) left.push(list[i]!);
        break;
      }
      let p: number;
      if (full) {
        p = this.nextPid;
        this.nextPid = (this.nextPid + 1) % PARTITION_COUNT;
      } else {
        p = list[scanned]!;
        this.pendingMark[p] = 0;
      }
      if (!this.owned[p]) continue;
      const pid = p as PartitionId;
      const wl = this.ns.writeLog;
      if (!this.recovering[p] && this.cursor[p]! < wl.firstSequenceNumber(pid)) {
        // The log wrapped past our cursor while we could not ship: rescan from the checkpoint.
        this.recovering[p] = 1;
      }
      if (this.recovering[p]) {
        const next = Number(wl.nextSequence(pid));
        for (const v of this.ns.scanPartition(pid, { includeTombstones: true, includeExpired: true, lutAfterMs: this.checkpoint[p]! })) {
          if (v.set !== SYSTEM_SET) touched.add(p);
          this.consider(v, p, items);
        }
        recovered.push(p);
        cursors.set(p, next);
        drained.set(p, now);
        continue;
      }
      const next = wl.nextSequenceNumber(pid);
      let c = this.cursor[p]!;
      if (c >= next) continue;
      const entries = wl.read(pid, BigInt(c), Math.max(1, max - items.length));
      for (const e of entries) {
        c = Number(e.sequence) + 1;
        if (!this.dest.forward && (e.kind === WriteKind.REPLICATED_WRITE || e.kind === WriteKind.REPLICATED_DELETE)) continue;
        if (!this.dest.shipDeletes && e.kind === WriteKind.DELETE) continue;
        if (!this.dest.shipExpirations && (e.kind === WriteKind.EXPIRE || e.kind === WriteKind.EVICT)) continue;
        const v = this.ns.readVersion(e.digest) ?? {
          namespace: this.ns.name, set: '', digest: e.digest, generation: e.generation, lutMs: e.lutMs, voidTimeS: 0, tombstone: true, bins: [],
        };
        if (v.set !== SYSTEM_SET) touched.add(p);
        this.consider(v, p, items);
      }
      cursors.set(p, c);
      if (c >= next) drained.set(p, now);
      else {
        more = true;
        if (!full && !this.pendingMark[p]) left.push(p);
      }
    }
    // A full pass that stopped early (batch full, or a partition not read to its end) passes again.
    if (full && more) this.scanAll = true;
    for (const p of left) this.pendingMark[p] = 1;
    if (!full && left.length > 0) more = true;
    return { items, cursors, drained, recovered, touched, more, strays };
  }

  /**
   * The next entries of a partition handed over, up to drainTo (see there); true while more
   * remain. A log that wrapped past the cursor ends the drain (the new master rescans anyway).
   */
  private collectDrain(p: number, max: number, items: Pending[], cursors: Map<number, number>): boolean {
    const pid = p as PartitionId;
    const wl = this.ns.writeLog;
    const end = this.drainTo[p]!;
    const c0 = this.cursor[p]!;
    const entries = c0 < end && c0 >= Number(wl.firstSequence(pid)) ? wl.read(pid, BigInt(c0), Math.max(1, Math.min(max - items.length, end - c0))) : [];
    if (this.owned[p] || entries.length === 0) {
      this.drainTo[p] = 0;
      return false;
    }
    let c = c0;
    for (const e of entries) {
      if (Number(e.sequence) >= end) break;
      c = Number(e.sequence) + 1;
      if (!this.dest.forward && (e.kind === WriteKind.REPLICATED_WRITE || e.kind === WriteKind.REPLICATED_DELETE)) continue;
      if (!this.dest.shipDeletes && e.kind === WriteKind.DELETE) continue;
      if (!this.dest.shipExpirations && (e.kind === WriteKind.EXPIRE || e.kind === WriteKind.EVICT)) continue;
      const v = this.ns.readVersion(e.digest);
      if (v) this.consider(v, p, items);
    }
    cursors.set(p, c);
    return c < end;
  }

  private consider(v: RecordVersion, p: number, items: Pending[], inBatch: Map<string, string> = this.inBatch): void {
    if (v.set === SYSTEM_SET) return;
    if (this.dest.shipSets.length > 0 && !this.dest.shipSets.includes(v.set)) return;
    if (this.dest.ignoreSets.includes(v.set)) return;
    if (v.tombstone && !this.dest.shipDeletes) return;
    // The origin stored with the record: a rescan (restart, wrapped log) and a log entry whose
    // record has since changed honour `forward` like the log kinds do. An expiry tombstone read
    // here is shipped even without `ship-expirations`: it stands for a version (same generation
    // and LUT) that may never have reached the destination, and when it did, it is an exact tie
    // there. Only EXPIRE/EVICT log entries (whose version was shipped before) are skipped.
    if (!this.dest.forward && isReplicatedOrigin(v.origin)) return;
    const hex = v.digest.toString('hex');
    const version = `${v.generation}:${v.lutMs}:${v.tombstone ? 1 : 0}`;
    if (this.shippedCache.get(hex) === version || inBatch.get(hex) === version) {
      this.counters.skipped++;
      return;
    }
    let ship = v;
    if (this.dest.shipBins.length > 0 && !v.tombstone) ship = { ...v, bins: v.bins.filter((b) => this.dest.shipBins.includes(b.name)) };
    const msg = encodeVersion(ship, this.site, p);
    items.push({ msg: { ...msg, partition: p % this.kafkaPartitions }, pid: p, version, hex });
    inBatch.set(hex, version);
  }

  /**
   * send() with the batch's keys marked in flight (express produces skip them), after the express
   * produce running, if any: per key, versions reach Kafka in order. Versions that express
   * produce shipped meanwhile are left out (they are in Kafka); returns what was sent.
   */
  private async sendInFlight(collected: Pending[]): Promise<Pending[]> {
    let items = collected;
    if (this.expressing) {
      await this.expressing;
      items = collected.filter((it) => this.shippedCache.get(it.hex) !== it.version);
      this.counters.skipped += collected.length - items.length;
      if (items.length === 0) return items;
    }
    this.inFlight.clear();
    for (const it of items) this.inFlight.add(it.hex);
    this.sending = true;
    // Writes that came in since the batch was collected need not wait for its round trip.
    if (this.syncWaiters.size > 0) this.scheduleExpress();
    try {
      await this.send(items);
    } finally {
      this.sending = false;
      this.inFlight.clear();
    }
    return items;
  }

  /**
   * Produces the batch as requests of at most `batch-max-bytes` each (one at a time: the producer
   * keeps one in flight), resolving once all are acknowledged. A request the destination refuses
   * as too large (its message.max.bytes is below batch-max-bytes) is split in halves until it
   * fits. A record too large even alone can never be produced: it is counted (`tooLarge`, metric
   * ferry_xdr_too_large_total), logged with its digest and size, and skipped so the stream goes
   * on; it stays at the source, and `xdr-reship` ships it once the destination accepts it.
   */
  private async send(items: Pending[]): Promise<void> {
    let chunk: Pending[] = [];
    let bytes = 0;
    const limit = Math.min(this.dest.batchMaxBytes, this.fitBytes);
    for (const it of items) {
      const size = messageBytes(it);
      if (chunk.length > 0 && bytes + size > limit) {
        await this.sendFitting(chunk);
        chunk = [];
        bytes = 0;
      }
      chunk.push(it);
      bytes += size;
    }
    if (chunk.length > 0) await this.sendFitting(chunk);
  }

  private async sendFitting(items: Pending[]): Promise<void> {
    try {
      await this.produce(items);
    } catch (err) {
      if (!(err instanceof MessageTooLargeError)) throw err;
      // The idempotent producer counted the refused request's sequence numbers: a new one.
      await this.producer?.disconnect().catch(() => undefined);
      this.producer = undefined;
      await this.connect();
      if (items.length > 1) {
        const refused = items.reduce((n, it) => n + messageBytes(it), 0);
        if (Math.floor(refused / 2) < this.fitBytes) {
          this.fitBytes = Math.max(1024, Math.floor(refused / 2));
          this.log(`xdr ${this.dest.name}/${this.ns.name}: destination refused a ${refused}-byte request as too large; produce requests are now at most ${this.fitBytes} bytes (lower batch-max-bytes to match its message.max.bytes)`);
        }
        const half = Math.ceil(items.length / 2);
        await this.sendFitting(items.slice(0, half));
        await this.sendFitting(items.slice(half));
        return;
      }
      const it = items[0]!;
      this.counters.tooLarge++;
      this.counters.errors++;
      this.lastError = `record ${it.hex} (${messageBytes(it)} bytes) is too large for destination ${this.dest.name}; skipped, it stays at the source (raise the topic's max.message.bytes, then xdr-reship): ${err.message}`;
      this.log(`xdr ${this.dest.name}/${this.ns.name}: ${this.lastError}`);
    }
  }

  private async produce(items: Pending[], producer = this.producer): Promise<void> {
    if (!producer) throw new ShipperError('NOT_CONNECTED', 'not connected');
    const doSend = () =>
      producer.send(
        this.topic,
        items.map((it) => ({ key: it.msg.key, value: it.msg.value, headers: it.msg.headers, partition: it.msg.partition })),
        this.dest.compression === 'gzip' ? 'gzip' : 'none',
      );
    if (this.limiter) await this.limiter.schedule({ weight: items.length }, doSend);
    else await doSend();
  }

  // ---------------------------------------------------------------- checkpoints

  /** T of partition p as stored here (0 when none: ship everything the partition holds). */
  private readCheckpoint(p: number): number {
    const v = this.ns.readVersion(checkpointDigest(this.dest.name, p));
    const bin = v && !v.tombstone ? v.bins.find((b) => b.name === CHECKPOINT_BIN) : undefined;
    if (bin && bin.type === ParticleType.INTEGER) return Number(bin.bytes.readBigInt64BE(0));
    // Written before checkpoints were per partition: one record per 64 partitions.
    const g = Math.floor(p / LEGACY_CHECKPOINT_GROUP);
    const legacy = this.ns.readVersion(computeDigest(SYSTEM_SET, `ckpt:${this.dest.name}:${g}`));
    const lb = legacy && !legacy.tombstone ? legacy.bins.find((b) => b.name === `p${p - g * LEGACY_CHECKPOINT_GROUP}`) : undefined;
    return lb && lb.type === ParticleType.INTEGER ? Number(lb.bytes.readBigInt64BE(0)) : 0;
  }

  private async writeCheckpoints(force: boolean): Promise<void> {
    const now = this.rt.clock.nowMs();
    if (this.dirty.size === 0 || (!force && now - this.lastCheckpointWrite < this.dest.checkpointIntervalMs)) return;
    const elapsedMs = Math.min(now - this.lastCheckpointWrite, this.dest.checkpointIntervalMs * 10);
    this.lastCheckpointWrite = now;
    const shipped = this.counters.shipped - this.shippedAtCheckpoint;
    this.shippedAtCheckpoint = this.counters.shipped;
    const floor = Math.ceil((CHECKPOINT_WRITES_PER_S_MIN * elapsedMs) / 1000);
    const budget = Math.min(CHECKPOINT_WRITES_PER_INTERVAL_MAX, Math.max(floor, Math.ceil(shipped * CHECKPOINT_WRITES_SHARE_OF_SHIPPED)));
    // Only the master writes a partition's checkpoint (it replicates from there).
    const pids: number[] = [];
    for (const p of this.dirty) {
      if (!force && pids.length >= budget) break;
      this.dirty.delete(p);
      if (this.owned[p] === 1 && this.isMasterNow(p)) pids.push(p);
    }
    let next = 0;
    let code = 0;
    const worker = async (): Promise<void> => {
      while (next < pids.length) {
        const p = pids[next++]!;
        if (next % CHECKPOINT_WRITES_PER_YIELD === 0) await yieldToLoop(this.rt.timers);
        const b = Buffer.alloc(8);
        b.writeBigInt64BE(BigInt(Math.floor(this.checkpoint[p]!)));
        const r = await this.ns.execute({
          namespace: this.ns.name,
          set: SYSTEM_SET,
          digest: checkpointDigest(this.dest.name, p),
          ops: [{ op: OpType.WRITE, bin: CHECKPOINT_BIN, value: { type: ParticleType.INTEGER, bytes: b } }],
          ttlS: -1,
        });
        if (r.resultCode !== 0) {
          this.dirty.add(p);
          code = r.resultCode;
        } else this.counters.checkpointWrites++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(CHECKPOINT_WRITES_IN_FLIGHT, pids.length) }, worker));
    // Logged once per change (a full disk refuses every partition every interval).
    if (code !== this.checkpointCode) {
      this.checkpointCode = code;
      if (code !== 0) this.log(`xdr ${this.dest.name}/${this.ns.name}: checkpoint write answered ${code}; retrying every ${this.dest.checkpointIntervalMs} ms`);
      else this.log(`xdr ${this.dest.name}/${this.ns.name}: checkpoint writes succeed again`);
    }
  }
}

/**
 * The digest of partition p's checkpoint record for a destination: a digest of its name with
 * the partition bits set to p, so the record lives in (and moves with) p. Only the server sees
 * it; no client key maps to it.
 */
export function checkpointDigest(destination: string, p: number): Buffer {
  const d = Buffer.from(computeDigest(SYSTEM_SET, `ckpt:${destination}:p${p}`));
  d[0] = p & 0xff;
  d[1] = (d[1]! & 0xf0) | (p >> 8);
  return d;
}

/** The shipper extension of a node: one stream per (destination, namespace). */
export class Shipper implements NodeExtension {
  readonly name = 'xdr-shipper';
  private streams: Stream[] = [];
  private readonly rt: Runtime;
  private readonly kafka: KafkaLinkFactory;

  constructor(
    private readonly config: XdrConfig,
    private readonly log: (msg: string, err?: unknown) => void = () => undefined,
    /**
     * Clock, timers, PRNG (default: the real ones) and the Kafka link (default: kafkajs; the
     * simulator passes its in-memory log). Bottleneck and kafkajs keep real timers.
     */
    runtime: Partial<Runtime> & { kafka?: KafkaLinkFactory } = {},
  ) {
    this.rt = runtimeOf(runtime);
    this.kafka = runtime.kafka ?? kafkajsLink;
  }

  async start(node: StoreNode): Promise<void> {
    for (const dest of this.config.destinations) {
      for (const name of dest.namespaces) {
        const ns = node.namespace(name);
        if (!ns) throw new ShipperError('UNKNOWN_NAMESPACE', `xdr destination ${dest.name}: namespace ${name} does not exist on this node`);
        this.streams.push(new Stream(this.config.site, dest, ns, this.log, this.rt, this.kafka, node.ownership));
      }
    }
    for (const s of this.streams) await s.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.streams.map((s) => s.stop()));
  }

  stats(withPartitions = false): StreamStats[] {
    return this.streams.map((s) => s.stats(withPartitions));
  }

  infoCommands(): Record<string, (req: { params: Record<string, string> }) => string> {
    return {
      'xdr-stats': (req) => JSON.stringify({ site: this.config.site, streams: this.stats(req.params.partitions === 'true') }),
      'xdr-reship': (req) => {
        const from = Number(req.params.from ?? '0');
        const lo = Number(req.params['partition-from'] ?? '0');
        const hi = Number(req.params['partition-to'] ?? String(PARTITION_COUNT - 1));
        if (!Number.isFinite(from) || !(lo >= 0 && hi < PARTITION_COUNT && lo <= hi)) return 'ERROR:4:bad from or partition range';
        const pids = Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);
        let n = 0;
        for (const s of this.streams) {
          const st = s.stats(false);
          if (req.params.dc && st.destination !== req.params.dc) continue;
          if (req.params.namespace && st.namespace !== req.params.namespace) continue;
          s.reship(from, pids);
          n++;
        }
        return n === 0 ? 'ERROR:4:no matching destination/namespace' : `ok;streams=${n};partitions=${pids.length}`;
      },
    };
  }

  metrics(): MetricSample[] {
    const out: MetricSample[] = [];
    const streams = this.stats(false);
    const put = (name: string, help: string, type: MetricSample['type'], get: (s: StreamStats) => number) => {
      for (const s of streams) out.push({ name, help, type, value: get(s), labels: { destination: s.destination, namespace: s.namespace } });
    };
    put('ferry_xdr_records_behind', 'Write-log entries not yet shipped', 'gauge', (s) => s.recordsBehind);
    put('ferry_xdr_ms_behind', 'Now minus the oldest unshipped change, ms', 'gauge', (s) => s.msBehind);
    put('ferry_xdr_shipped_total', 'Records shipped', 'counter', (s) => s.shipped);
    put('ferry_xdr_retries_total', 'Produce retries', 'counter', (s) => s.retries);
    put('ferry_xdr_rpo0_timeouts_total', 'RPO-0 writes failed with TIMEOUT: not in Kafka within rpo0-timeout-ms', 'counter', (s) => s.rpo0Timeouts ?? 0);
    put('ferry_xdr_too_large_total', 'Records the destination refused as too large even alone (skipped; see lastError)', 'counter', (s) => s.tooLarge);
    out.push(...kafkaPartitionLag(this.stats(true)));
    return out;
  }
}

/**
 * Records behind per Kafka partition (store partition p ships to p mod N): one series per Kafka
 * partition of each stream, so the label count is the topic's partition count, not 4096.
 */
function kafkaPartitionLag(streams: StreamStats[]): MetricSample[] {
  const out: MetricSample[] = [];
  for (const s of streams) {
    const n = s.kafkaPartitions ?? 0;
    if (n < 1) continue;
    const behind = new Array<number>(n).fill(0);
    for (const p of s.partitions ?? []) behind[p.pid % n]! += p.behind;
    behind.forEach((value, kp) =>
      out.push({
        name: 'ferry_xdr_partition_records_behind',
        help: 'Write-log entries not yet shipped, per Kafka partition of the topic',
        type: 'gauge',
        value,
        labels: { destination: s.destination, namespace: s.namespace, topic: s.topic, partition: String(kp) },
      }),
    );
  }
  return out;
}

interface SyncWaiter {
  generation: number;
  lutMs: number;
  resolve: () => void;
  reject: (err: Error) => void;
  timer: ReturnType<Runtime['timers']['setTimeout']> | undefined;
}

/** True when a shipped version string (`gen:lut:tombstone`) is this version or a newer one of the key. */
function covers(version: string | undefined, generation: number, lutMs: number): boolean {
  if (!version) return false;
  const [g, l] = version.split(':').map(Number) as [number, number];
  return g > generation || (g === generation && l >= lutMs);
}

/** What a record adds to a produce request, bytes (uncompressed: compression only shrinks it). */
function messageBytes(it: Pending): number {
  let n = it.msg.key.length + it.msg.value.length + RECORD_OVERHEAD_BYTES;
  for (const [k, v] of Object.entries(it.msg.headers)) n += Buffer.byteLength(k) + Buffer.byteLength(v) + 2;
  return n;
}

/** Waits for `p` (its failure counts as settled) at most `ms`; true when it settled in time. */
async function settlesWithin(p: Promise<unknown>, ms: number, rt: Runtime): Promise<boolean> {
  let timer: ReturnType<Runtime['timers']['setTimeout']> | undefined;
  const late = new Promise<false>((resolve) => {
    timer = rt.timers.setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true, () => true), late]);
  } finally {
    rt.timers.clearTimeout(timer);
  }
}
