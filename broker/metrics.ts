/**
 * Prometheus text exposition of every broker running in this process: per-partition log start
 * and end offsets and bytes, per-group committed-offset lag, and process-wide counters.
 */
import type { BrokerState } from './state.js';

export const brokerCounters = {
  recordsIn: 0,
  bytesIn: 0,
  bytesOut: 0,
  corruptBatches: 0,
  requests: 0,
  connectionsClosedOnError: 0,
};

const running = new Map<BrokerState, string>();

export function registerBroker(state: BrokerState, label: string): void {
  running.set(state, label);
}
export function unregisterBroker(state: BrokerState): void {
  running.delete(state);
}

function esc(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

export function brokerMetrics(): string {
  const out: string[] = [];
  const gauge = (name: string, help: string, rows: string[]): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`, ...rows);
  };
  const leo: string[] = [];
  const start: string[] = [];
  const hw: string[] = [];
  const bytes: string[] = [];
  const lag: string[] = [];
  for (const [state, label] of running) {
    const b = `broker="${esc(label)}"`;
    for (const t of state.topics.topics.values()) {
      t.partitions.forEach((p, i) => {
        const l = `{${b},topic="${esc(t.name)}",partition="${i}"}`;
        leo.push(`ferry_broker_log_end_offset${l} ${p.logEndOffset}`);
        start.push(`ferry_broker_log_start_offset${l} ${p.logStartOffset}`);
        hw.push(`ferry_broker_high_watermark${l} ${p.highWatermark}`);
        bytes.push(`ferry_broker_log_size_bytes${l} ${p.sizeBytes}`);
      });
    }
    for (const [group, topics] of state.offsets.groups) {
      for (const [topic, parts] of topics) {
        for (const [partition, c] of parts) {
          const p = state.topics.partition(topic, partition);
          if (!p) continue;
          lag.push(`ferry_broker_group_lag{${b},group="${esc(group)}",topic="${esc(topic)}",partition="${partition}"} ${Math.max(0, p.highWatermark - c.offset)}`);
        }
      }
    }
  }
  gauge('ferry_broker_log_end_offset', 'Next offset to be written, per partition.', leo);
  gauge('ferry_broker_high_watermark', 'End of what consumers can read (fsynced end under the fsync policy), per partition.', hw);
  gauge('ferry_broker_log_start_offset', 'First offset still stored, per partition.', start);
  gauge('ferry_broker_log_size_bytes', 'Bytes of segment files, per partition.', bytes);
  gauge('ferry_broker_group_lag', 'High watermark minus committed offset, per group and partition.', lag);
  const counter = (name: string, help: string, v: number): void => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`, `${name} ${v}`);
  };
  counter('ferry_broker_records_in_total', 'Records appended.', brokerCounters.recordsIn);
  counter('ferry_broker_bytes_in_total', 'Record batch bytes appended.', brokerCounters.bytesIn);
  counter('ferry_broker_bytes_out_total', 'Record batch bytes served to fetches.', brokerCounters.bytesOut);
  counter('ferry_broker_corrupt_batches_total', 'Produced batches refused with CORRUPT_MESSAGE.', brokerCounters.corruptBatches);
  counter('ferry_broker_requests_total', 'Requests handled.', brokerCounters.requests);
  counter('ferry_broker_connections_closed_on_error_total', 'Connections closed for bad input.', brokerCounters.connectionsClosedOnError);
  return `${out.join('\n')}\n`;
}
