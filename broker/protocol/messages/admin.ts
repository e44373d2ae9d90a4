/**
 * Admin APIs: CreateTopics (19) v0–v3, DeleteTopics (20) v0–v1, InitProducerId (22) v0–v1,
 * DescribeConfigs (32) v0–v1.
 */
import { Reader, Writer } from '../codec.js';

export interface CreateTopicSpec {
  name: string;
  numPartitions: number;
  replicationFactor: number;
  configs: { name: string; value: string | null }[];
}
export function decodeCreateTopics(r: Reader, version: number): { topics: CreateTopicSpec[]; timeoutMs: number; validateOnly: boolean } {
  const topics = r.array((r) => {
    const name = r.string();
    const numPartitions = r.int32();
    const replicationFactor = r.int16();
    r.array((r) => ({ index: r.int32(), brokers: r.array((r) => r.int32()) }));
    const configs = r.array((r) => ({ name: r.string(), value: r.nullableString() }));
    return { name, numPartitions, replicationFactor, configs };
  });
  const timeoutMs = r.int32();
  const validateOnly = version >= 1 ? r.bool() : false;
  return { topics, timeoutMs, validateOnly };
}
export interface TopicResult {
  name: string;
  errorCode: number;
  errorMessage: string | null;
}
export function encodeCreateTopics(results: TopicResult[], version: number): Writer {
  const w = new Writer();
  if (version >= 2) w.int32(0);
  return w.array(results, (w, t) => {
    w.string(t.name).int16(t.errorCode);
    if (version >= 1) w.nullableString(t.errorMessage);
  });
}

export function decodeDeleteTopics(r: Reader): { names: string[]; timeoutMs: number } {
  return { names: r.array((r) => r.string()), timeoutMs: r.int32() };
}
export function encodeDeleteTopics(results: TopicResult[], version: number): Writer {
  const w = new Writer();
  if (version >= 1) w.int32(0);
  return w.array(results, (w, t) => w.string(t.name).int16(t.errorCode));
}

export function decodeInitProducerId(r: Reader): { transactionalId: string | null; transactionTimeoutMs: number } {
  return { transactionalId: r.nullableString(), transactionTimeoutMs: r.int32() };
}
export function encodeInitProducerId(res: { errorCode: number; producerId: number; producerEpoch: number }): Writer {
  return new Writer().int32(0).int16(res.errorCode).int64(res.producerId).int16(res.producerEpoch);
}

export const ConfigResourceType = { topic: 2, broker: 4 } as const;
export interface DescribeConfigsResource {
  type: number;
  name: string;
  keys: string[] | null;
}
export function decodeDescribeConfigs(r: Reader, version: number): { resources: DescribeConfigsResource[] } {
  const resources = r.array((r) => ({ type: r.int8(), name: r.string(), keys: r.nullableArray((r) => r.string()) }));
  if (version >= 1) r.bool(); // include_synonyms
  return { resources };
}
export interface DescribeConfigsResult {
  errorCode: number;
  errorMessage: string | null;
  type: number;
  name: string;
  configs: { name: string; value: string | null; isDefault: boolean }[];
}
/** config_source values (v1+): 5 = DEFAULT_CONFIG, 1 = DYNAMIC_TOPIC_CONFIG. */
export function encodeDescribeConfigs(results: DescribeConfigsResult[], version: number): Writer {
  const w = new Writer();
  w.int32(0);
  return w.array(results, (w, res) => {
    w.int16(res.errorCode).nullableString(res.errorMessage).int8(res.type).string(res.name);
    w.array(res.configs, (w, c) => {
      w.string(c.name).nullableString(c.value).bool(false);
      if (version >= 1) w.int8(c.isDefault ? 5 : 1);
      else w.bool(c.isDefault);
      w.bool(false);
      if (version >= 1) w.int32(0);
    });
  });
}
