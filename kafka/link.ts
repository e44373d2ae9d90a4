/**
 * The Kafka seam: the small producer/consumer surface the shipper and the receiver use, so the
 * simulator can put an in-memory partitioned log (sim/kafka-log.ts) where Kafka is. The real
 * implementation is kafkajs (kafkajs.ts), the one place a kafkajs client is constructed.
 *
 * Semantics the shipper and receiver rely on, kept by both implementations:
 * - `send` resolves only once every message is in the log (acks = all); a rejected send may
 *   still have appended some or all messages (at-least-once: the shipper re-sends).
 * - Messages of one partition keep their order; offsets are decimal strings.
 * - A consumer delivers batches per partition from the group's committed offset; `commit` stores
 *   the next offset to read. A consumer that fails a batch sees it again.
 */
import type { KafkaSecurity } from './security.js';

/**
 * The destination refused a produce request because a record batch is larger than it accepts
 * (Kafka's MESSAGE_TOO_LARGE, its `message.max.bytes`): retrying the same request fails forever.
 */
export class MessageTooLargeError extends Error {
  readonly code = 'MESSAGE_TOO_LARGE';
  constructor(message: string) {
    super(message);
    this.name = 'MessageTooLargeError';
  }
}

/** A message to produce. `partition` is explicit (store partition mod N). */
export interface OutgoingMessage {
  key: Buffer | null;
  value: Buffer | null;
  headers: Record<string, Buffer | string>;
  partition: number;
}

/** A consumed message, as kafkajs presents it. */
export interface IncomingMessage {
  key: Buffer | null;
  value: Buffer | null;
  headers?: Record<string, Buffer | string | (Buffer | string)[] | undefined>;
  offset: string;
}

export type Compression = 'none' | 'gzip';

export interface KafkaProducer {
  send(topic: string, messages: OutgoingMessage[] | Array<Omit<OutgoingMessage, 'partition'>>, compression: Compression): Promise<void>;
  disconnect(): Promise<void>;
}

export interface ConsumedBatch {
  topic: string;
  partition: number;
  messages: IncomingMessage[];
}

export interface BatchControl {
  isRunning(): boolean;
  isStale(): boolean;
  resolveOffset(offset: string): void;
  heartbeat(): Promise<void>;
}

export interface KafkaConsumer {
  /** Starts delivering; resolves once running. `onCrash(err, willRestart)` reports consumer failures. */
  run(o: { eachBatch: (batch: ConsumedBatch, ctl: BatchControl) => Promise<void>; onCrash: (err: Error, willRestart: boolean) => void }): Promise<void>;
  /**
   * The topic partitions the group currently gives this consumer; undefined until it has joined
   * (a member of a group with more members than partitions may rightly have none).
   */
  assigned(): TopicPartition[] | undefined;
  /** Commits `offset` (the next offset to read) for the group. */
  commit(topic: string, partition: number, offset: string): Promise<void>;
  disconnect(): Promise<void>;
}

export interface TopicPartition {
  topic: string;
  partition: number;
}

export interface PartitionLag extends TopicPartition {
  lag: number;
}

/** One client of one Kafka cluster (kafkajs: one `Kafka` instance). */
export interface KafkaLink {
  /** Creates the topic with `partitions` when missing (an existing topic keeps its count); returns its partition count. */
  ensureTopic(topic: string, partitions: number): Promise<number>;
  /** Idempotent producer for the shipper (one in flight). */
  idempotentProducer(): Promise<KafkaProducer>;
  /** Plain producer that may create topics (the receiver's dead-letter producer). */
  producer(): Promise<KafkaProducer>;
  /** A group consumer, connected and subscribed. */
  consumer(o: { groupId: string; topics: string[]; fromBeginning: boolean }): Promise<KafkaConsumer>;
  /** Messages not yet committed by the group (end offset - committed, or - low when none), over all partitions. */
  groupLag(groupId: string, topics: string[]): Promise<number>;
  /** The same per topic partition. */
  partitionLags(groupId: string, topics: string[]): Promise<PartitionLag[]>;
  /** Releases admin connections. */
  close(): Promise<void>;
}

/** Who is connecting (retry and timeout profiles differ). */
export type KafkaRole = 'shipper' | 'receiver';

/** Builds a link to a Kafka cluster (`security`: TLS/SASL, kafkajs only; none by default). */
export type KafkaLinkFactory = (o: { role: KafkaRole; clientId: string; brokers: string[]; security?: KafkaSecurity }) => KafkaLink;
