/** Metadata, Produce, Fetch and ListOffsets handlers. */
import { ErrorCode, KafkaError } from '../protocol/errors.js';
import { decodeFetch, encodeFetch, type FetchPartitionResult, type FetchRequest, type FetchResponse } from '../protocol/messages/fetch.js';
import { ListOffsetsTimestamp, decodeListOffsets, encodeListOffsets, type ListOffsetsPartitionResult } from '../protocol/messages/listOffsets.js';
import { decodeMetadata, encodeMetadata, type MetadataTopic } from '../protocol/messages/metadata.js';
import { decodeProduce, encodeProduce, type ProducePartitionResult } from '../protocol/messages/produce.js';
import { validateProducedBatch } from '../protocol/recordBatch.js';
import type { Topic } from '../log/topicStore.js';
import type { BrokerState } from '../state.js';
import { brokerCounters } from '../metrics.js';
import type { Handler } from './context.js';

function describeTopic(t: Topic, nodeId: number): MetadataTopic {
  return {
    errorCode: ErrorCode.NONE,
    name: t.name,
    partitions: t.partitions.map((_, index) => ({ errorCode: ErrorCode.NONE, index, leader: nodeId })),
  };
}

export const handleMetadata: Handler = ({ state, header }, r) => {
  const req = decodeMetadata(r, header.apiVersion);
  const { config } = state;
  let topics: MetadataTopic[];
  if (req.topics === null) {
    topics = [...state.topics.topics.values()].map((t) => describeTopic(t, config.nodeId));
  } else {
    topics = req.topics.map((name) => {
      let t = state.topics.get(name);
      if (!t && config.autoCreateTopics && req.allowAutoTopicCreation) {
        try {
          t = state.topics.create(name, config.defaultPartitions) ?? undefined;
        } catch (err) {
          const code = err instanceof KafkaError ? err.code : ErrorCode.UNKNOWN_SERVER_ERROR;
          return { errorCode: code, name, partitions: [] };
        }
      }
      if (!t) return { errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, name, partitions: [] };
      return describeTopic(t, config.nodeId);
    });
  }
  return encodeMetadata(
    {
      brokers: [{ nodeId: config.nodeId, host: config.advertisedHost, port: config.advertisedPort }],
      clusterId: state.clusterId,
      controllerId: config.nodeId,
      topics,
    },
    header.apiVersion,
  );
};

function appendOne(state: BrokerState, topic: string, index: number, records: Buffer | null, version: number): ProducePartitionResult {
  const log = state.topics.partition(topic, index);
  if (!log) return { index, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, baseOffset: -1 };
  if (records === null || records.length === 0) return { index, errorCode: ErrorCode.INVALID_RECORD, baseOffset: -1 };
  if (version < 3) return { index, errorCode: ErrorCode.UNSUPPORTED_FOR_MESSAGE_FORMAT, baseOffset: -1 };
  try {
    const h = validateProducedBatch(records, state.config.maxBatchBytes);
    const res = log.append(records, h);
    if (!res.duplicate) {
      state.flusher.markDirty(log);
      brokerCounters.recordsIn += h.recordCount;
      brokerCounters.bytesIn += records.length;
    }
    return { index, errorCode: ErrorCode.NONE, baseOffset: res.baseOffset };
  } catch (err) {
    if (err instanceof KafkaError) {
      if (err.code === ErrorCode.CORRUPT_MESSAGE) brokerCounters.corruptBatches++;
      return { index, errorCode: err.code, baseOffset: -1 };
    }
    throw err;
  }
}

export const handleProduce: Handler = async ({ state, header }, r) => {
  const req = decodeProduce(r, header.apiVersion);
  const acksValid = req.acks === -1 || req.acks === 0 || req.acks === 1;
  let appended = false;
  const topics = req.topics.map((t) => ({
    name: t.name,
    partitions: t.partitions.map((p) => {
      if (!acksValid) return { index: p.index, errorCode: ErrorCode.INVALID_REQUIRED_ACKS, baseOffset: -1 };
      const res = appendOne(state, t.name, p.index, p.records, header.apiVersion);
      if (res.errorCode === ErrorCode.NONE) appended = true;
      return res;
    }),
  }));
  if (appended) state.notifyData();
  if (appended && state.config.flushPolicy === 'fsync') {
    // Every append is fsynced promptly (it moves the high watermark); only acks=-1 waits for it.
    const durable = state.flusher.whenDurable();
    if (req.acks === -1) {
      try {
        await durable;
      } catch (err) {
        // The fsync failed: nothing appended here may be acknowledged as durable.
        const code = err instanceof KafkaError ? err.code : ErrorCode.KAFKA_STORAGE_ERROR;
        brokerCounters.flushFailures++;
        for (const t of topics) {
          for (const p of t.partitions) if (p.errorCode === ErrorCode.NONE) Object.assign(p, { errorCode: code, baseOffset: -1 });
        }
      }
    } else {
      // acks 0/1 promise no durability; the failed target stays dirty and its high watermark stays put.
      durable.catch(() => {
        brokerCounters.flushFailures++;
      });
    }
  }
  if (req.acks === 0) return null;
  return encodeProduce({ topics }, header.apiVersion);
};

function readFetch(state: BrokerState, req: FetchRequest): { res: FetchResponse; bytes: number; error: boolean } {
  let budget = req.maxBytes;
  let bytes = 0;
  let error = false;
  const topics = req.topics.map((t) => ({
    topic: t.topic,
    partitions: t.partitions.map((p): FetchPartitionResult => {
      const log = state.topics.partition(t.topic, p.partition);
      if (!log) {
        error = true;
        return { partition: p.partition, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, highWatermark: -1, records: [] };
      }
      const hw = log.highWatermark;
      if (p.fetchOffset < log.logStartOffset || p.fetchOffset > log.logEndOffset) {
        error = true;
        return { partition: p.partition, errorCode: ErrorCode.OFFSET_OUT_OF_RANGE, highWatermark: hw, records: [] };
      }
      let records: Buffer[] = [];
      if (p.fetchOffset < hw && (budget > 0 || bytes === 0)) {
        // At least one whole batch for the first partition with data (KIP-74).
        const limit = bytes === 0 ? Math.max(1, Math.min(p.partitionMaxBytes, budget)) : Math.min(p.partitionMaxBytes, budget);
        records = log.read(p.fetchOffset, limit);
        let n = 0;
        for (const b of records) n += b.length;
        if (bytes > 0 && n > limit) records = [];
        else {
          bytes += n;
          budget -= n;
        }
      }
      return { partition: p.partition, errorCode: ErrorCode.NONE, highWatermark: hw, records };
    }),
  }));
  return { res: { topics }, bytes, error };
}

export const handleFetch: Handler = async ({ state, header }, r) => {
  const req = decodeFetch(r, header.apiVersion);
  const deadline = Date.now() + Math.min(Math.max(req.maxWaitMs, 0), state.config.fetchWaitMsMax);
  for (;;) {
    if (state.closed) return null; // shutting down: the connection is going away
    const out = readFetch(state, req);
    const now = Date.now();
    if (out.bytes >= Math.max(req.minBytes, 1) || out.error || now >= deadline || state.closed) {
      brokerCounters.bytesOut += out.bytes;
      return encodeFetch(out.res, header.apiVersion);
    }
    await state.waitForData(deadline - now);
  }
};

export const handleListOffsets: Handler = ({ state, header }, r) => {
  const req = decodeListOffsets(r, header.apiVersion);
  const topics = req.topics.map((t) => ({
    name: t.name,
    partitions: t.partitions.map((p): ListOffsetsPartitionResult => {
      const log = state.topics.partition(t.name, p.index);
      if (!log) return { index: p.index, errorCode: ErrorCode.UNKNOWN_TOPIC_OR_PARTITION, timestamp: -1, offset: -1 };
      if (p.timestamp === ListOffsetsTimestamp.latest) return { index: p.index, errorCode: 0, timestamp: -1, offset: log.highWatermark };
      if (p.timestamp === ListOffsetsTimestamp.earliest) return { index: p.index, errorCode: 0, timestamp: -1, offset: log.logStartOffset };
      if (p.timestamp < 0) return { index: p.index, errorCode: ErrorCode.UNSUPPORTED_VERSION, timestamp: -1, offset: -1 };
      const found = log.offsetForTimestamp(p.timestamp);
      return found === null
        ? { index: p.index, errorCode: 0, timestamp: -1, offset: -1 }
        : { index: p.index, errorCode: 0, timestamp: found.timestamp, offset: found.offset };
    }),
  }));
  return encodeListOffsets({ topics }, header.apiVersion);
};
