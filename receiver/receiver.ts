/**
 * The XDR receiver: consumes shipped record versions from Kafka and applies them to the local
 * site with replicated writes (the destination master decides under the record lock whether the
 * incoming version wins, so order and re-delivery never change the outcome).
 *
 * - Offsets are committed only after every message of a batch is applied or dead-lettered.
 * - A message that cannot be decoded (or that the store refuses as malformed) goes to the
 *   dead-letter topic with the reason in a header; the receiver keeps going.
 * - Transient failures (node unreachable, timeouts, KEY_BUSY, out of space) fail the batch;
 *   kafkajs retries it from the last committed offset.
 */
import { kafkajsLink, type BatchControl, type IncomingMessage, type PartitionLag, type KafkaConsumer, type KafkaLink, type KafkaLinkFactory, type KafkaProducer } from '../kafka/index.js';
import {
  FerryClient,
  ResultCode,
  decodeVersion,
  ShipCodecError,
  runtimeOf,
  sleep,
  type ConflictPolicyId,
  type MetricSample,
  type RecordVersion,
  type ResultCodeId,
  type Runtime,
  type TimerHandle,
} from '../store/index.js';
import { NO_KAFKA_SECURITY, type KafkaSecurity } from '../kafka/security.js';
import { InFlightLimit } from './in-flight.js';
import { ReceiverError } from './errors.js';

export interface ReceiverOptions {
  brokers: string[];
  topics: string[];
  groupId: string;
  destination: Array<{ host: string; port: number }>;
  policy: ConflictPolicyId;
  /** Dead-letter topic; '' = `<topic>.dlq`. */
  deadLetterTopic: string;
  /** Replicated writes in flight, all partitions together (also the connections per destination node). */
  applyConcurrency: number;
  fromBeginning: boolean;
  /** TLS and SASL to Kafka (kafka/security.ts); none by default. */
  security?: KafkaSecurity;
  log?: (msg: string, err?: unknown) => void;
  /** Clock, timers, PRNG (default: the real ones). kafkajs keeps real timers. */
  runtime?: Partial<Runtime>;
  /** The Kafka link (default: kafkajs; the simulator passes its in-memory log). */
  kafka?: KafkaLinkFactory;
  /** How replicated writes reach the destination (default: the smart client to `destination`). */
  connectDestination?: () => Promise<Destination>;
}

/** Where the receiver applies versions: the smart client, or (simulator) a namespace in process. */
export interface Destination {
  applyReplicated(v: RecordVersion, policy: ConflictPolicyId): Promise<{ resultCode: ResultCodeId | number }>;
  close(): void;
}

/** Result codes that mean "try again later", not "this message is bad". */
const TRANSIENT: ReadonlySet<number> = new Set([
  ResultCode.TIMEOUT,
  ResultCode.KEY_BUSY,
  ResultCode.OUT_OF_SPACE,
  ResultCode.DEVICE_OVERLOAD,
  ResultCode.UNAVAILABLE,
  ResultCode.SERVER_ERROR,
  ResultCode.CLUSTER_KEY_MISMATCH,
]);
/** How often consumer lag is measured. */
const LAG_POLL_MS = 1000;
/** Retries of a failed batch inside the consumer (about 10 s in all) before kafkajs takes over. */
const APPLY_RETRIES_IN_BATCH = 14;
const APPLY_RETRY_BACKOFF_MIN_MS = 50;
const APPLY_RETRY_BACKOFF_MAX_MS = 1000;
/** A consumer with waiting messages and no progress for this long is replaced. */
const STUCK_MS = 15_000;
/**
 * Messages of one partition applied between two offset commits. kafkajs hands over up to 1 MiB
 * per partition (thousands of messages): committing as the batch goes keeps what a restart or a
 * rebalance repeats small, and makes progress visible in the consumer lag.
 */
const COMMIT_EVERY_MESSAGES = 1000;
/** A destination with writes in flight and no answer for this long is logged (again every period). */
const DESTINATION_QUIET_LOG_MS = 5000;
/** Heartbeat period while a batch is applied (the group's session timeout is 6 s, kafka/kafkajs.ts). */
const HEARTBEAT_MS = 1000;

export interface ReceiverStats {
  groupId: string;
  topics: string[];
  running: boolean;
  applied: number;
  lostConflict: number;
  deadLettered: number;
  retries: number;
  appliedPerS: number;
  /** Kafka messages not yet committed by the group (end offset - committed), all partitions; -1 unknown. */
  consumerLag: number;
  /** Replicated writes sent and not yet answered (at most apply-concurrency). */
  applyInFlight?: number;
  /** The Kafka partitions this receiver applies now, each with its lag (end offset - committed). */
  partitions?: PartitionLag[];
  /** When consumerLag was measured (ms since the epoch); it is refreshed every second. */
  lagMeasuredAtMs: number;
  /** Now minus the source LUT of the last applied version, ms. */
  applyLagMs: number;
  /** Highest source LUT applied so far. */
  maxSourceLutMs: number;
  lastError: string;
}

export class Receiver {
  private kafka: KafkaLink;
  private consumer: KafkaConsumer | undefined;
  private producer: KafkaProducer | undefined;
  private client: Destination | undefined;
  private lagTimer: TimerHandle | undefined;
  private running = false;
  private restarting = false;
  private lastProgressAt: number;
  private readonly counters = { applied: 0, lostConflict: 0, deadLettered: 0, retries: 0 };
  private consumerLag = -1;
  private quietLoggedAt = 0;
  /** Chunks being applied or retried now (the consumer is working; the destination may not be). */
  private chunksApplying = 0;
  private partitionLags: PartitionLag[] = [];
  private lagMeasuredAtMs = 0;
  private lastApplyLagMs = 0;
  private maxSourceLutMs = 0;
  private lastError = '';
  private rate: { at: number; applied: number; perS: number };
  private readonly log: (msg: string, err?: unknown) => void;
  private readonly rt: Runtime;
  private readonly inFlight: InFlightLimit;

  constructor(private readonly opts: ReceiverOptions) {
    this.log = opts.log ?? (() => undefined);
    this.inFlight = new InFlightLimit(opts.applyConcurrency);
    this.rt = runtimeOf(opts.runtime);
    this.lastProgressAt = this.rt.clock.nowMs();
    this.rate = { at: this.rt.clock.nowMs(), applied: 0, perS: 0 };
    this.kafka = (opts.kafka ?? kafkajsLink)({ role: 'receiver', clientId: `ferry-receiver-${opts.groupId}`, brokers: opts.brokers, security: opts.security ?? NO_KAFKA_SECURITY });
  }

  async start(): Promise<void> {
    this.client = await (this.opts.connectDestination ?? (() => FerryClient.connect({ hosts: this.opts.destination, maxConnsPerNode: this.opts.applyConcurrency })))();
    this.producer = await this.kafka.producer();
    this.running = true;
    await this.startConsumer();
    this.lagTimer = this.rt.timers.setInterval(() => void this.measureLag().then(() => this.watchdog()), LAG_POLL_MS);
    this.lagTimer.unref();
  }

  private async startConsumer(): Promise<void> {
    const consumer = await this.kafka.consumer({ groupId: this.opts.groupId, topics: this.opts.topics, fromBeginning: this.opts.fromBeginning });
    this.consumer = consumer;
    this.lastProgressAt = this.rt.clock.nowMs();
    await consumer.run({
      // kafkajs restarts by itself after retriable errors; otherwise start a fresh consumer.
      onCrash: (err, willRestart) => {
        if (!willRestart) void this.restartConsumer(`consumer crashed: ${err.message}`);
      },
      eachBatch: async (batch, { resolveOffset, heartbeat, isRunning, isStale }) => {
        if (!isRunning() || isStale() || batch.messages.length === 0) return;
        // Applying a large batch can outlast the session timeout: keep the membership alive
        // (errors here are seen again by the heartbeat at the next commit, which rejoins).
        const beat = this.rt.timers.setInterval(() => void heartbeat().catch(() => undefined), HEARTBEAT_MS);
        beat.unref();
        try {
          for (let from = 0; from < batch.messages.length; from += COMMIT_EVERY_MESSAGES) {
            if (!isRunning() || isStale()) return;
            const chunk = batch.messages.slice(from, from + COMMIT_EVERY_MESSAGES);
            await this.applyWithRetries(batch.topic, batch.partition, chunk, { isRunning, isStale, heartbeat });
            const last = chunk[chunk.length - 1]!.offset;
            resolveOffset(last);
            await consumer.commit(batch.topic, batch.partition, (BigInt(last) + 1n).toString());
            this.lastProgressAt = this.rt.clock.nowMs();
            await heartbeat();
          }
        } finally {
          this.rt.timers.clearInterval(beat);
        }
      },
    });
  }

  /**
   * Applies `messages` (one partition, in offset order). A destination that is restarting answers
   * again within seconds: the chunk is retried here with a short backoff (re-applying is
   * harmless) before the failure goes to kafkajs, whose own retries back off to seconds and may
   * end in a consumer restart.
   */
  private async applyWithRetries(topic: string, partition: number, messages: IncomingMessage[], ctl: Pick<BatchControl, 'isRunning' | 'isStale' | 'heartbeat'>): Promise<void> {
    const done = new Set<IncomingMessage>();
    this.chunksApplying++;
    try {
      await this.applyChunk(topic, partition, messages, ctl, done);
    } finally {
      this.chunksApplying--;
    }
  }

  /** The retry loop of applyWithRetries; `done` collects what succeeded, so a retry skips it. */
  private async applyChunk(topic: string, partition: number, messages: IncomingMessage[], ctl: Pick<BatchControl, 'isRunning' | 'isStale' | 'heartbeat'>, done: Set<IncomingMessage>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await this.applyBatch(topic, attempt === 0 ? messages : messages.filter((m) => !done.has(m)), done);
        return;
      } catch (err) {
        this.counters.retries++;
        this.lastError = (err as Error).message;
        if (attempt >= APPLY_RETRIES_IN_BATCH || !this.running || !ctl.isRunning() || ctl.isStale()) {
          this.log(`apply failed on ${topic}/${partition}; the batch will be retried`, err);
          throw err;
        }
        await sleep(this.rt.timers, Math.min(APPLY_RETRY_BACKOFF_MAX_MS, APPLY_RETRY_BACKOFF_MIN_MS * 2 ** attempt));
        await ctl.heartbeat().catch(() => undefined);
      }
    }
  }

  /** Replaces the consumer (after a crash it will not recover from, or when stuck). */
  private async restartConsumer(why: string): Promise<void> {
    if (!this.running || this.restarting) return;
    this.restarting = true;
    this.lastError = why;
    this.log(`restarting the consumer: ${why}`);
    try {
      await this.consumer?.disconnect().catch(() => undefined);
      for (let attempt = 0; this.running; attempt++) {
        try {
          await this.startConsumer();
          break;
        } catch (err) {
          this.lastError = (err as Error).message;
          await sleep(this.rt.timers, Math.min(5000, 250 * 2 ** attempt));
        }
      }
    } finally {
      this.restarting = false;
    }
  }

  /**
   * A consumer that has work but made no progress for a while is replaced. Its work is the lag of
   * the partitions the group gave it (another receiver of the group may be the one behind); before
   * it has joined the group, the whole group's lag (a member with no partitions has nothing to wait for).
   */
  private watchdog(): void {
    const quietMs = this.rt.clock.nowMs() - this.lastProgressAt;
    if (this.chunksApplying > 0) {
      // The consumer is fine; the destination is not answering. Say so, and keep waiting (each
      // write times out and the chunk is retried; nothing past what was applied is committed).
      if (quietMs > DESTINATION_QUIET_LOG_MS && this.rt.clock.nowMs() - this.quietLoggedAt > DESTINATION_QUIET_LOG_MS) {
        this.quietLoggedAt = this.rt.clock.nowMs();
        const where = this.opts.destination.map((d) => `${d.host}:${d.port}`).join(',');
        this.log(
          `destination ${where} has answered nothing for ${Math.round(quietMs / 1000)} s with ${this.inFlight.inFlight} replicated writes waiting` +
            `${this.lastError ? ` (last error: ${this.lastError})` : ''}; offsets stay committed at what was applied`,
        );
      }
      return;
    }
    const mine = this.assignedLags();
    const waiting = mine === undefined ? this.consumerLag : mine.reduce((sum, p) => sum + p.lag, 0);
    if (waiting > 0 && quietMs > STUCK_MS) void this.restartConsumer(`no progress for ${STUCK_MS} ms with ${waiting} messages waiting`);
  }

  /** Lags of the partitions this receiver has now (from the last measurement); undefined before it joined the group. */
  private assignedLags(): PartitionLag[] | undefined {
    const mine = this.consumer?.assigned();
    if (mine === undefined) return undefined;
    const assigned = new Set(mine.map((a) => `${a.topic}/${a.partition}`));
    return this.partitionLags.filter((p) => assigned.has(`${p.topic}/${p.partition}`));
  }

  /** Stops consuming (failover: "stop applying"); committed offsets stay. */
  async stop(): Promise<void> {
    this.running = false;
    if (this.lagTimer) this.rt.timers.clearInterval(this.lagTimer);
    // Closing the client first fails the writes in flight at once (a destination that does not
    // answer would hold the consumer's disconnect until they time out); their chunk is not
    // committed and is applied again by the next consumer.
    this.client?.close();
    await this.consumer?.disconnect().catch(() => undefined);
    await this.producer?.disconnect().catch(() => undefined);
    await this.kafka.close();
  }

  /**
   * Applies `messages`; each one applied, beaten at the destination or dead-lettered is added to
   * `done` (a retry skips those). Throws after a transient failure.
   */
  private async applyBatch(topic: string, messages: IncomingMessage[], done: Set<IncomingMessage>): Promise<void> {
    const dead: Array<{ m: IncomingMessage; reason: string }> = [];
    const versions: Array<{ m: IncomingMessage; v: RecordVersion }> = [];
    for (const m of messages) {
      try {
        versions.push({ m, v: decodeVersion(m.key, m.value, headersOf(m)) });
      } catch (err) {
        if (err instanceof ShipCodecError) dead.push({ m, reason: err.message });
        else throw err;
      }
    }
    // Order does not matter (conflict resolution is order-independent): apply in parallel, but
    // the versions of one key one after another, so a hot key never queues more applies at the
    // destination than its transaction-pending-limit (KEY_BUSY would fail the batch every time).
    const byKey = new Map<string, Array<{ m: IncomingMessage; v: RecordVersion }>>();
    for (const x of versions) {
      const hex = x.v.digest.toString('hex');
      const group = byKey.get(hex);
      if (group) group.push(x);
      else byKey.set(hex, [x]);
    }
    const groups = [...byKey.values()];
    let next = 0;
    let failure: Error | undefined;
    const client = this.client!;
    // One key's versions in order; a key whose apply failed stops there (the retry resumes it).
    const applyGroup = async (group: Array<{ m: IncomingMessage; v: RecordVersion }>): Promise<void> => {
      for (const { m, v } of group) {
        if (failure || !this.running) return;
        let r: { resultCode: ResultCodeId | number };
        try {
          r = await this.inFlight.run(() => client.applyReplicated(v, this.opts.policy));
        } catch (err) {
          failure ??= err as Error;
          return;
        }
        this.lastProgressAt = this.rt.clock.nowMs();
        if (r.resultCode === ResultCode.OK) {
          this.counters.applied++;
          this.maxSourceLutMs = Math.max(this.maxSourceLutMs, v.lutMs);
          this.lastApplyLagMs = Math.max(0, this.rt.clock.nowMs() - v.lutMs);
          done.add(m);
        } else if (r.resultCode === ResultCode.LOST_CONFLICT) {
          this.counters.lostConflict++;
          this.maxSourceLutMs = Math.max(this.maxSourceLutMs, v.lutMs);
          done.add(m);
        } else if (TRANSIENT.has(r.resultCode as never)) {
          failure ??= new ReceiverError('DESTINATION_BUSY', `destination answered ${r.resultCode} for ${v.digest.toString('hex')}`);
          return;
        } else {
          dead.push({ m, reason: `destination refused the record: result code ${r.resultCode}` });
        }
      }
    };
    const worker = async () => {
      while (next < groups.length && !failure) await applyGroup(groups[next++]!);
    };
    // Every worker settles before a failure is reported: no apply of this chunk is still running
    // when the retry starts.
    await Promise.all(Array.from({ length: Math.min(this.opts.applyConcurrency, groups.length) }, worker));
    if (!this.running) failure ??= new ReceiverError('STOPPING', `stopping before a batch of ${topic} was applied`);
    if (dead.length > 0) {
      const dlq = this.opts.deadLetterTopic || `${topic}.dlq`;
      await this.producer!.send(
        dlq,
        dead.map(({ m, reason }) => ({
          key: m.key,
          value: m.value,
          headers: { ...rawHeaders(m), 'ferry-dlq-reason': reason, 'ferry-dlq-source': `${topic}@${m.offset}` },
        })),
        'none',
      );
      this.counters.deadLettered += dead.length;
      for (const { m } of dead) done.add(m);
      this.log(`${dead.length} message(s) dead-lettered to ${dlq}: ${dead[0]!.reason}`);
    }
    if (failure) throw failure;
  }

  private async measureLag(): Promise<void> {
    if (!this.running) return;
    const started = this.rt.clock.nowMs();
    try {
      const lags = await this.kafka.partitionLags(this.opts.groupId, this.opts.topics);
      this.partitionLags = lags;
      this.consumerLag = lags.reduce((sum, p) => sum + p.lag, 0);
      this.lagMeasuredAtMs = started;
    } catch (err) {
      // Unknown while the broker cannot be asked: never report a stale 0.
      this.consumerLag = -1;
      this.partitionLags = [];
      this.lastError = (err as Error).message;
    }
  }

  stats(): ReceiverStats {
    const now = this.rt.clock.nowMs();
    if (now - this.rate.at >= 1000) {
      this.rate.perS = ((this.counters.applied - this.rate.applied) * 1000) / (now - this.rate.at);
      this.rate = { at: now, applied: this.counters.applied, perS: this.rate.perS };
    }
    return {
      groupId: this.opts.groupId,
      topics: this.opts.topics,
      running: this.running,
      ...this.counters,
      appliedPerS: Math.round(this.rate.perS),
      consumerLag: this.consumerLag,
      applyInFlight: this.inFlight.inFlight,
      partitions: this.assignedLags() ?? [],
      lagMeasuredAtMs: this.lagMeasuredAtMs,
      applyLagMs: this.consumerLag === 0 ? 0 : this.lastApplyLagMs,
      maxSourceLutMs: this.maxSourceLutMs,
      lastError: this.lastError,
    };
  }

  /** Samples for the receiver's /metrics. */
  metrics(): MetricSample[] {
    const s = this.stats();
    const labels = { group: s.groupId };
    const m = (name: string, help: string, type: MetricSample['type'], value: number): MetricSample => ({ name, help, type, value, labels });
    return [
      m('ferry_receiver_applied_total', 'Shipped versions applied (they won at the destination)', 'counter', s.applied),
      m('ferry_receiver_lost_conflict_total', 'Shipped versions the destination already had or beat', 'counter', s.lostConflict),
      m('ferry_receiver_dead_lettered_total', 'Messages sent to the dead-letter topic', 'counter', s.deadLettered),
      m('ferry_receiver_retries_total', 'Batches retried after a transient failure', 'counter', s.retries),
      m('ferry_receiver_consumer_lag', 'Kafka messages not yet committed by the group, all partitions (-1 unknown)', 'gauge', s.consumerLag),
      m('ferry_receiver_apply_in_flight', 'Replicated writes sent to the destination and not yet answered', 'gauge', s.applyInFlight ?? 0),
      m('ferry_receiver_apply_lag_ms', 'Now minus the source LUT of the last applied version, ms', 'gauge', s.applyLagMs),
      // One series per Kafka partition this receiver has (bounded by the topic's partition count).
      ...(s.partitions ?? []).map((p) => ({
        name: 'ferry_receiver_partition_consumer_lag',
        help: 'Kafka messages not yet committed, per topic partition this receiver applies',
        type: 'gauge' as const,
        value: p.lag,
        labels: { group: s.groupId, topic: p.topic, partition: String(p.partition) },
      })),
    ];
  }
}

function headersOf(m: IncomingMessage): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    const first = Array.isArray(v) ? v[0] : v;
    out[k] = first === undefined ? undefined : Buffer.isBuffer(first) ? first.toString('utf8') : String(first);
  }
  return out;
}

function rawHeaders(m: IncomingMessage): Record<string, Buffer | string> {
  const out: Record<string, Buffer | string> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined) out[k] = first;
  }
  return out;
}
