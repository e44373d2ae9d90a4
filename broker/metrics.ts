/**
 * Metrics of every broker running in this process: per-partition log start and end offsets and
 * bytes, per-group committed-offset lag, and process-wide counters.
 */
import type { BrokerState } from './state.js';

export const brokerCounters = {
  recordsIn: 0,
  bytesIn: 0,
  bytesOut: 0,
  corruptBatches: 0,
  connectionsRefused: 0,
  requests: 0,
  connectionsClosedOnError: 0,
  /** Produce requests whose group-commit fsync failed (acks=-1 ones answered KAFKA_STORAGE_ERROR). */
  flushFailures: 0,
};

const running = new Map<BrokerState, string>();

export function registerBroker(state: BrokerState, label: string): void {
  running.set(state, label);
}
export function unregisterBroker(state: BrokerState): void {
  running.delete(state);
}

/** One value of a metric family; the same shape as store's MetricSample (the broker imports nothing of store). */
export interface BrokerMetricSample {
  name: string;
  help: string;
  type: 'gauge' | 'counter';
  value: number;
  labels?: Record<string, string>;
}

/** Samples for the broker's /metrics (ops renders them with prom-client). */
export function brokerMetrics(): BrokerMetricSample[] {
  const out: BrokerMetricSample[] = [];
  const gauge = (name: string, help: string, value: number, labels: Record<string, string>): void => void out.push({ name, help, type: 'gauge', value, labels });
  for (const [state, broker] of running) {
    for (const t of state.topics.topics.values()) {
      t.partitions.forEach((p, i) => {
        const l = { broker, topic: t.name, partition: String(i) };
        gauge('ferry_broker_log_end_offset', 'Next offset to be written, per partition.', p.logEndOffset, l);
        gauge('ferry_broker_high_watermark', 'End of what consumers can read (fsynced end under the fsync policy), per partition.', p.highWatermark, l);
        gauge('ferry_broker_log_start_offset', 'First offset still stored, per partition.', p.logStartOffset, l);
        gauge('ferry_broker_log_size_bytes', 'Bytes of segment files, per partition.', p.sizeBytes, l);
      });
    }
    for (const [group, topics] of state.offsets.groups) {
      for (const [topic, parts] of topics) {
        for (const [partition, c] of parts) {
          const p = state.topics.partition(topic, partition);
          if (!p) continue;
          gauge('ferry_broker_group_lag', 'High watermark minus committed offset, per group and partition.', Math.max(0, p.highWatermark - c.offset), { broker, group, topic, partition: String(partition) });
        }
      }
    }
  }
  const counter = (name: string, help: string, value: number): void => void out.push({ name, help, type: 'counter', value });
  counter('ferry_broker_records_in_total', 'Records appended.', brokerCounters.recordsIn);
  counter('ferry_broker_bytes_in_total', 'Record batch bytes appended.', brokerCounters.bytesIn);
  counter('ferry_broker_bytes_out_total', 'Record batch bytes served to fetches.', brokerCounters.bytesOut);
  counter('ferry_broker_corrupt_batches_total', 'Produced batches refused with CORRUPT_MESSAGE.', brokerCounters.corruptBatches);
  counter('ferry_broker_connections_refused_total', 'Connections closed at once: max-connections reached.', brokerCounters.connectionsRefused);
  counter('ferry_broker_requests_total', 'Requests handled.', brokerCounters.requests);
  counter('ferry_broker_connections_closed_on_error_total', 'Connections closed for bad input.', brokerCounters.connectionsClosedOnError);
  counter('ferry_broker_flush_failures_total', 'Produce requests whose fsync failed (acks=-1: answered KAFKA_STORAGE_ERROR, not acknowledged).', brokerCounters.flushFailures);
  return out;
}
