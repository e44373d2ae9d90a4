/**
 * The real Kafka link: kafkajs. This is the one place a kafkajs client is constructed (client
 * options such as SASL/TLS belong here), with one retry/timeout profile per role.
 */
import { CompressionTypes, Kafka, logLevel, type Admin, type KafkaConfig, type Producer } from 'kafkajs';
import { NO_KAFKA_SECURITY, kafkaClientSecurity } from './security.js';
import { MessageTooLargeError, type PartitionLag, type TopicPartition, type KafkaConsumer, type KafkaLink, type KafkaLinkFactory, type KafkaProducer, type KafkaRole } from './link.js';

/** The shipper fails fast (its own loop retries with backoff); the receiver rides out outages. */
const PROFILES: Record<KafkaRole, Pick<KafkaConfig, 'retry' | 'connectionTimeout' | 'requestTimeout'>> = {
  shipper: { retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 1000 }, connectionTimeout: 3000, requestTimeout: 10_000 },
  receiver: { retry: { retries: 8, initialRetryTime: 200, maxRetryTime: 5000 } },
};

/**
 * Consumer group settings of the receiver. A receiver killed with -9 holds its partitions until
 * its session times out (kafkajs has no static membership, group.instance.id, to take them back
 * at once), so the session is the shortest Kafka accepts by default (group.min.session.timeout.ms
 * = 6 s, the embedded broker's minimum too); the receiver heartbeats every second even while it
 * applies a long batch (receiver/receiver.ts).
 */
const CONSUMER = { sessionTimeout: 6000, heartbeatInterval: 1000, maxWaitTimeInMs: 100 } as const;
/** Partitions a receiver applies at once. */
const PARTITIONS_CONSUMED_CONCURRENTLY = 4;

function wrapProducer(p: Producer): KafkaProducer {
  return {
    send: async (topic, messages, compression) => {
      try {
        await p.send({ topic, acks: -1, compression: compression === 'gzip' ? CompressionTypes.GZIP : CompressionTypes.None, messages });
      } catch (err) {
        if (isMessageTooLarge(err)) throw new MessageTooLargeError(`${messages.length} message(s) to ${topic}: ${(err as Error).message}`);
        throw err;
      }
    },
    disconnect: () => p.disconnect(),
  };
}

/** kafkajs reports MESSAGE_TOO_LARGE (code 10) as a protocol error, possibly wrapped. */
function isMessageTooLarge(err: unknown): boolean {
  for (let e = err as { type?: unknown; code?: unknown; name?: unknown; cause?: unknown; originalError?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    if (e.type === 'MESSAGE_TOO_LARGE' || (e.name === 'KafkaJSProtocolError' && e.code === 10)) return true;
    e = (e.cause ?? e.originalError) as typeof e;
  }
  return false;
}

/** Group-coordinator answers after which a member rejoins the group (a restarted broker forgot it, a rebalance). */
const REJOIN_ERRORS: ReadonlySet<unknown> = new Set(['UNKNOWN_MEMBER_ID', 'REBALANCE_IN_PROGRESS', 'ILLEGAL_GENERATION', 'NOT_COORDINATOR_FOR_GROUP']);

/**
 * The protocol error inside `err` when it is one of REJOIN_ERRORS. kafkajs rejoins the group when
 * its fetch loop sees such an error, but an offset commit or heartbeat made inside eachBatch
 * wraps it in a KafkaJSNonRetriableError, which crashes the consumer instead (the receiver then
 * replaced the whole consumer). Rethrowing the cause lets kafkajs rejoin.
 */
function groupCoordinatorCause(err: unknown): Error | undefined {
  for (let e = err as { type?: unknown; cause?: unknown } | undefined, depth = 0; e && depth < 5; depth++) {
    if (REJOIN_ERRORS.has(e.type)) return e as unknown as Error;
    e = e.cause as typeof e;
  }
  return undefined;
}

export const kafkajsLink: KafkaLinkFactory = ({ role, clientId, brokers, security }) => {
  const kafka = new Kafka({ clientId, brokers, logLevel: logLevel.NOTHING, ...PROFILES[role], ...kafkaClientSecurity(security ?? NO_KAFKA_SECURITY) });
  let admin: Admin | undefined;
  const link: KafkaLink = {
    async ensureTopic(topic, partitions) {
      const a = kafka.admin();
      await a.connect();
      try {
        await a.createTopics({ topics: [{ topic, numPartitions: partitions }], waitForLeaders: true }).catch(() => false);
        const meta = await a.fetchTopicMetadata({ topics: [topic] });
        return meta.topics[0]?.partitions.length ?? 0;
      } finally {
        await a.disconnect().catch(() => undefined);
      }
    },
    async idempotentProducer() {
      const p = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
      await p.connect();
      return wrapProducer(p);
    },
    async producer() {
      const p = kafka.producer({ allowAutoTopicCreation: true });
      await p.connect();
      return wrapProducer(p);
    },
    async consumer({ groupId, topics, fromBeginning }) {
      const c = kafka.consumer({ groupId, ...CONSUMER });
      let assigned: TopicPartition[] | undefined;
      c.on(c.events.GROUP_JOIN, (e) => {
        assigned = Object.entries(e.payload.memberAssignment).flatMap(([topic, ps]) => ps.map((partition) => ({ topic, partition })));
      });
      const consumer: KafkaConsumer = {
        assigned: () => assigned,
        async run({ eachBatch, onCrash }) {
          c.on(c.events.CRASH, (e) => onCrash(e.payload.error, e.payload.restart));
          await c.run({
            autoCommit: false,
            eachBatchAutoResolve: false,
            partitionsConsumedConcurrently: PARTITIONS_CONSUMED_CONCURRENTLY,
            eachBatch: ({ batch, resolveOffset, heartbeat, isRunning, isStale }) =>
              eachBatch({ topic: batch.topic, partition: batch.partition, messages: batch.messages }, { resolveOffset, heartbeat, isRunning, isStale }).catch((err: unknown) => {
                throw groupCoordinatorCause(err) ?? err;
              }),
          });
        },
        commit: (topic, partition, offset) => c.commitOffsets([{ topic, partition, offset }]),
        disconnect: () => c.disconnect(),
      };
      await c.connect();
      await c.subscribe({ topics, fromBeginning });
      return consumer;
    },
    async groupLag(groupId, topics) {
      return (await link.partitionLags(groupId, topics)).reduce((sum, p) => sum + p.lag, 0);
    },
    async partitionLags(groupId, topics) {
      if (!admin) {
        const a = kafka.admin();
        await a.connect();
        admin = a;
      }
      const out: PartitionLag[] = [];
      for (const topic of topics) {
        const ends = await admin.fetchTopicOffsets(topic);
        const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
        const done = new Map<number, bigint>();
        for (const t of committed) for (const p of t.partitions) done.set(p.partition, BigInt(p.offset));
        for (const e of ends) {
          const c = done.get(e.partition) ?? -1n;
          out.push({ topic, partition: e.partition, lag: Number(BigInt(e.high) - (c < 0n ? BigInt(e.low) : c)) });
        }
      }
      return out;
    },
    async close() {
      await admin?.disconnect().catch(() => undefined);
      admin = undefined;
    },
  };
  return link;
};
