/**
 * A simulated Kafka: an in-memory partitioned log with consumer-group offsets, reached through
 * the same KafkaLink seam as kafkajs. Every request takes a random virtual round trip on the
 * caller's timers (so a crashed caller's requests never complete), and the log can be:
 * - down (crash + restart of the brokers): requests fail after a timeout; data and committed
 *   offsets survive, as with acks=all on a replicated cluster;
 * - slow: every request takes `slowMs` more;
 * - lossy on acks: a produce is appended but the caller sees an error (it re-sends: duplicates);
 * - redelivering: a consumer is occasionally moved back a few messages.
 * One consumer per group at a time (the simulator runs one receiver).
 */
import type { Random } from '../store/runtime/index.js';
import type { ConsumedBatch, IncomingMessage, KafkaConsumer, KafkaLink, KafkaLinkFactory, KafkaProducer, PartitionLag } from '../kafka/index.js';
import type { Scheduler } from './scheduler.js';

/** Messages one batch delivers at most. */
const BATCH_MESSAGES_MAX = 64;
/** Idle fetch wait (kafkajs maxWaitTimeInMs). */
const FETCH_WAIT_MS = 100;
/** Pause after a failed fetch or batch before the consumer tries again. */
const CONSUMER_RETRY_MS = 300;
/** How long a request to a down log hangs before failing. */
const DOWN_TIMEOUT_MS = 1000;

export class SimKafkaError extends Error {
  readonly retriable = true;
  constructor(
    readonly code: 'UNAVAILABLE' | 'ACK_LOST' | 'UNKNOWN_TOPIC',
    message: string,
  ) {
    super(message);
    this.name = 'SimKafkaError';
  }
}

export interface SimKafkaFaults {
  /** Largest one-way request delay, ms. */
  delayMsMax: number;
  /** Chance a produce is appended but answered with an error. */
  ackLostPct: number;
  /** Chance, after a delivered batch, that the consumer is moved back a few messages. */
  redeliverPct: number;
}

interface Stored {
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | string>;
}

export class SimKafkaLog {
  readonly #topics = new Map<string, Stored[][]>();
  readonly #committed = new Map<string, number>();
  down = false;
  slowMs = 0;
  faults: SimKafkaFaults = { delayMsMax: 5, ackLostPct: 0, redeliverPct: 0 };
  readonly stats = { produced: 0, ackLost: 0, delivered: 0, redelivered: 0, refused: 0 };

  constructor(
    private readonly sched: Scheduler,
    private readonly random: Random,
  ) {}

  /** Every message of a topic partition (checkers read the log directly). */
  messages(topic: string, partition: number): readonly Stored[] {
    return this.#topics.get(topic)?.[partition] ?? [];
  }

  /** A link factory whose requests run on `owner`'s timers. */
  linkFor(owner: string): KafkaLinkFactory {
    return () => this.#link(owner);
  }

  /** One request: a round trip on the caller's timers; fails while the log is down. */
  async #request<T>(owner: string, fn: () => T): Promise<T> {
    await this.sched.sleep(owner, this.slowMs + this.random.int(this.faults.delayMsMax + 1));
    if (this.down) {
      this.stats.refused++;
      await this.sched.sleep(owner, DOWN_TIMEOUT_MS);
      throw new SimKafkaError('UNAVAILABLE', 'simulated Kafka is unavailable');
    }
    const out = fn();
    await this.sched.sleep(owner, this.random.int(this.faults.delayMsMax + 1));
    return out;
  }

  #partitions(topic: string): Stored[][] {
    const t = this.#topics.get(topic);
    if (!t) throw new SimKafkaError('UNKNOWN_TOPIC', `topic ${topic} does not exist`);
    return t;
  }

  #producer(owner: string): KafkaProducer {
    return {
      send: (topic, messages) =>
        this.#request(owner, () => {
          const parts = this.#topics.get(topic) ?? this.#create(topic, 1);
          for (const m of messages) {
            const p = 'partition' in m ? m.partition : 0;
            const part = parts[p];
            if (!part) throw new SimKafkaError('UNKNOWN_TOPIC', `topic ${topic} has no partition ${p}`);
            part.push({ key: m.key, value: m.value, headers: { ...m.headers } });
            this.sched.note(`produce ${topic}/${p}@${part.length - 1} ${m.key?.toString('hex') ?? ''}`);
            this.stats.produced++;
          }
          if (this.random.int(100) < this.faults.ackLostPct) {
            this.stats.ackLost++;
            throw new SimKafkaError('ACK_LOST', 'simulated lost produce acknowledgement');
          }
        }),
      disconnect: () => Promise.resolve(),
    };
  }

  #create(topic: string, partitions: number): Stored[][] {
    const t = Array.from({ length: partitions }, () => [] as Stored[]);
    this.#topics.set(topic, t);
    return t;
  }

  #link(owner: string): KafkaLink {
    return {
      ensureTopic: (topic, partitions) => this.#request(owner, () => (this.#topics.get(topic) ?? this.#create(topic, partitions)).length),
      idempotentProducer: () => this.#request(owner, () => this.#producer(owner)),
      producer: () => this.#request(owner, () => this.#producer(owner)),
      consumer: (o) => this.#request(owner, () => this.#consumer(owner, o.groupId, o.topics)),
      groupLag: (groupId, topics) => this.#request(owner, () => this.#lags(groupId, topics).reduce((sum, p) => sum + p.lag, 0)),
      partitionLags: (groupId, topics) => this.#request(owner, () => this.#lags(groupId, topics)),
      close: () => Promise.resolve(),
    };
  }

  #lags(groupId: string, topics: string[]): PartitionLag[] {
    return topics.flatMap((topic) => (this.#topics.get(topic) ?? []).map((part, partition) => ({ topic, partition, lag: part.length - (this.#committed.get(`${groupId}/${topic}/${partition}`) ?? 0) })));
  }

  #consumer(owner: string, groupId: string, topics: string[]): KafkaConsumer {
    let running = true;
    const position = new Map<string, number>();
    const committedOf = (topic: string, p: number): number => this.#committed.get(`${groupId}/${topic}/${p}`) ?? 0;
    const fetch = (topic: string, p: number): ConsumedBatch | undefined => {
      const part = this.#partitions(topic)[p]!;
      const key = `${topic}/${p}`;
      const from = position.get(key) ?? committedOf(topic, p);
      if (from >= part.length) return undefined;
      const messages: IncomingMessage[] = part.slice(from, from + BATCH_MESSAGES_MAX).map((m, i) => ({ ...m, offset: String(from + i) }));
      return { topic, partition: p, messages };
    };
    const loop = async (topic: string, p: number, eachBatch: Parameters<KafkaConsumer['run']>[0]['eachBatch'], onCrash: (err: Error, willRestart: boolean) => void): Promise<void> => {
      const key = `${topic}/${p}`;
      while (running) {
        let batch: ConsumedBatch | undefined;
        try {
          batch = await this.#request(owner, () => fetch(topic, p));
        } catch (err) {
          onCrash(err as Error, true);
          await this.sched.sleep(owner, CONSUMER_RETRY_MS);
          continue;
        }
        if (!batch) {
          await this.sched.sleep(owner, FETCH_WAIT_MS);
          continue;
        }
        this.stats.delivered += batch.messages.length;
        const next = Number(batch.messages[batch.messages.length - 1]!.offset) + 1;
        try {
          await eachBatch(batch, { isRunning: () => running, isStale: () => false, resolveOffset: () => undefined, heartbeat: () => Promise.resolve() });
          position.set(key, next);
          if (this.random.int(100) < this.faults.redeliverPct) {
            position.set(key, Math.max(0, next - 1 - this.random.int(BATCH_MESSAGES_MAX)));
            this.stats.redelivered++;
          }
        } catch (err) {
          // kafkajs: a failed batch is fetched again from the last committed offset.
          position.delete(key);
          onCrash(err as Error, true);
          await this.sched.sleep(owner, CONSUMER_RETRY_MS);
        }
      }
    };
    const started = new Set<string>();
    return {
      run: async ({ eachBatch, onCrash }) => {
        // Partitions are discovered as topics appear (the shipper creates them).
        const discover = (): void => {
          if (!running) return;
          for (const topic of topics) {
            (this.#topics.get(topic) ?? []).forEach((_, p) => {
              const key = `${topic}/${p}`;
              if (started.has(key)) return;
              started.add(key);
              void loop(topic, p, eachBatch, onCrash);
            });
          }
          this.sched.at(owner, FETCH_WAIT_MS * 10, discover);
        };
        discover();
        return Promise.resolve();
      },
      // One consumer per group: it has every partition that has been discovered.
      assigned: () => [...started].map((k) => ({ topic: k.slice(0, k.lastIndexOf('/')), partition: Number(k.slice(k.lastIndexOf('/') + 1)) })),
      commit: (topic, partition, offset) =>
        this.#request(owner, () => {
          if (!running) return;
          this.#committed.set(`${groupId}/${topic}/${partition}`, Number(offset));
          this.sched.note(`commit ${groupId} ${topic}/${partition} ${offset}`);
        }),
      disconnect: () => {
        running = false;
        return Promise.resolve();
      },
    };
  }
}
