/** CreateTopics, DeleteTopics, DescribeConfigs and InitProducerId handlers. */
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import {
  ConfigResourceType,
  decodeCreateTopics,
  decodeDeleteTopics,
  decodeDescribeConfigs,
  decodeInitProducerId,
  encodeCreateTopics,
  encodeDeleteTopics,
  encodeDescribeConfigs,
  encodeInitProducerId,
  type DescribeConfigsResult,
  type TopicResult,
} from '../protocol/messages/admin.js';
import type { BrokerState } from '../state.js';
import type { Handler } from './context.js';

function asResult(name: string, fn: () => void): TopicResult {
  try {
    fn();
    return { name, errorCode: ErrorCode.NONE, errorMessage: null };
  } catch (err) {
    if (err instanceof KafkaError) return { name, errorCode: err.code, errorMessage: err.message };
    throw err;
  }
}

export const handleCreateTopics: Handler = ({ state, header }, r) => {
  const req = decodeCreateTopics(r, header.apiVersion);
  const results = req.topics.map((t) =>
    asResult(t.name, () => {
      if (t.replicationFactor !== -1 && t.replicationFactor !== 1) {
        throw new KafkaError(ErrorCode.INVALID_REPLICATION_FACTOR, `replication factor ${t.replicationFactor} on a single node`);
      }
      const partitions = t.numPartitions === -1 ? state.config.defaultPartitions : t.numPartitions;
      const configs: Record<string, string> = {};
      for (const c of t.configs) if (c.value !== null) configs[c.name] = c.value;
      validateTopicConfigs(configs);
      state.topics.create(t.name, partitions, configs, req.validateOnly);
    }),
  );
  return encodeCreateTopics(results, header.apiVersion);
};

/** Log compaction is not implemented: refuse it rather than silently deleting by retention. */
function validateTopicConfigs(configs: Record<string, string>): void {
  const policy = configs['cleanup.policy'];
  if (policy !== undefined && policy !== 'delete') {
    throw new KafkaError(ErrorCode.INVALID_CONFIG, `cleanup.policy=${policy} is not supported (only delete)`);
  }
  for (const key of ['retention.ms', 'retention.bytes', 'segment.bytes']) {
    const v = configs[key];
    if (v !== undefined && (!/^-?\d+$/.test(v) || (key === 'segment.bytes' && Number(v) < 1024))) {
      throw new KafkaError(ErrorCode.INVALID_CONFIG, `invalid ${key}=${v}`);
    }
  }
}

export const handleDeleteTopics: Handler = ({ state, header }, r) => {
  const req = decodeDeleteTopics(r);
  const results = req.names.map((name) =>
    asResult(name, () => {
      state.topics.delete(name);
      state.offsets.removeTopic(name);
    }),
  );
  return encodeDeleteTopics(results, header.apiVersion);
};

function topicConfigs(state: BrokerState, name: string): { name: string; value: string; isDefault: boolean }[] {
  const t = state.topics.get(name)!;
  const eff = state.topics.logConfig(t.meta);
  const entries: [string, string][] = [
    ['cleanup.policy', 'delete'],
    ['retention.ms', String(eff.retentionMs)],
    ['retention.bytes', String(eff.retentionBytes)],
    ['segment.bytes', String(eff.segmentBytes)],
    ['max.message.bytes', String(state.config.maxBatchBytes)],
    ['message.timestamp.type', 'CreateTime'],
  ];
  return entries.map(([k, v]) => ({ name: k, value: t.meta.configs[k] ?? v, isDefault: t.meta.configs[k] === undefined }));
}

function brokerConfigs(state: BrokerState): { name: string; value: string; isDefault: boolean }[] {
  const c = state.config;
  return [
    ['num.partitions', String(c.defaultPartitions)],
    ['auto.create.topics.enable', String(c.autoCreateTopics)],
    ['log.retention.ms', String(c.log.retentionMs)],
    ['log.retention.bytes', String(c.log.retentionBytes)],
    ['log.segment.bytes', String(c.log.segmentBytes)],
    ['ferry.flush.policy', c.flushPolicy],
  ].map(([name, value]) => ({ name: name!, value: value!, isDefault: true }));
}

export const handleDescribeConfigs: Handler = ({ state, header }, r) => {
  const req = decodeDescribeConfigs(r, header.apiVersion);
  const results = req.resources.map((res): DescribeConfigsResult => {
    const base = { type: res.type, name: res.name, errorMessage: null };
    let configs: { name: string; value: string; isDefault: boolean }[];
    if (res.type === ConfigResourceType.topic) {
      if (!state.topics.get(res.name)) return { ...base, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, configs: [] };
      configs = topicConfigs(state, res.name);
    } else if (res.type === ConfigResourceType.broker) {
      configs = brokerConfigs(state);
    } else {
      return { ...base, errorCode: ErrorCode.INVALID_REQUEST, configs: [] };
    }
    const keys = res.keys;
    return { ...base, errorCode: ErrorCode.NONE, configs: keys === null || keys.length === 0 ? configs : configs.filter((c) => keys.includes(c.name)) };
  });
  return encodeDescribeConfigs(results, header.apiVersion);
};

export const handleInitProducerId: Handler = ({ state }, r) => {
  const req = decodeInitProducerId(r);
  if (req.transactionalId !== null) {
    // Transactions are out of scope: refuse transactional producers.
    return encodeInitProducerId({ errorCode: ErrorCode.UNSUPPORTED_VERSION, producerId: -1, producerEpoch: -1 });
  }
  return encodeInitProducerId({ errorCode: ErrorCode.NONE, producerId: state.allocateProducerId(), producerEpoch: 0 });
};
