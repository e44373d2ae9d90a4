/**
 * The embedded broker: `startBroker` opens the data directory (recovering every partition),
 * listens on TCP, and serves the Kafka protocol subset in protocol/versions.ts.
 */
import net from 'node:net';
import os from 'node:os';
import { Connection } from './connection.js';
import { logConfigDefaults, type LogConfig } from './log/partitionLog.js';
import { brokerCounters, brokerMetrics, registerBroker, unregisterBroker, type BrokerMetricSample } from './metrics.js';
import { BrokerState, type FlushPolicy } from './state.js';

export { brokerMetrics };

/** Largest request frame accepted; bigger ones close the connection. */
export const requestBytesMaxDefault = 100 * 1024 * 1024;
export const maxBatchBytesDefault = 16 * 1024 * 1024;
export const retentionCheckIntervalMsDefault = 60_000;
/** Dirty files not flushed by a produce (all of them under `os`) are fsynced this often. */
export const periodicFlushIntervalMs = 1000;
export const fetchWaitMsMaxDefault = 30_000;
/** Client connections served at once; more are closed at once (a storm cannot exhaust fds). */
export const connectionsMaxDefault = 10_000;
/** Smallest consumer session timeout accepted (Kafka's group.min.session.timeout.ms). */
export const sessionTimeoutMsMinDefault = 6000;

export interface BrokerOptions {
  host?: string;
  port?: number;
  dataDir: string;
  advertisedHost?: string;
  defaultPartitions?: number;
  flushPolicy?: FlushPolicy;
  autoCreateTopics?: boolean;
  segmentBytes?: number;
  retentionBytes?: number;
  retentionMs?: number;
  retentionCheckIntervalMs?: number;
  requestBytesMax?: number;
  maxBatchBytes?: number;
  sessionTimeoutMsMin?: number;
  /** Connections served at once (default connectionsMaxDefault). */
  maxConnections?: number;
  nodeId?: number;
  /** Called for unexpected handler failures (the connection is closed). */
  onError?: (err: unknown) => void;
}

export interface BrokerHandle {
  host: string;
  port: number;
  /** Metric samples of this process's brokers. */
  metrics(): BrokerMetricSample[];
  /** Runs the retention sweep now; returns segments deleted. */
  enforceRetention(): number;
  close(): Promise<void>;
  /** Releases the data-directory lock now (synchronous: the last step of every exit path). */
  releaseLock(): void;
}

export async function startBroker(opts: BrokerOptions): Promise<BrokerHandle> {
  const host = opts.host ?? '127.0.0.1';
  const log: LogConfig = {
    ...logConfigDefaults,
    highWatermarkOnFsync: (opts.flushPolicy ?? 'fsync') === 'fsync',
    ...(opts.segmentBytes !== undefined ? { segmentBytes: opts.segmentBytes } : {}),
    ...(opts.retentionBytes !== undefined ? { retentionBytes: opts.retentionBytes } : {}),
    ...(opts.retentionMs !== undefined ? { retentionMs: opts.retentionMs } : {}),
  };
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 9092, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as net.AddressInfo;
  const wildcard = host === '0.0.0.0' || host === '::';
  const advertisedHost = opts.advertisedHost ?? (wildcard ? os.hostname() : host);
  let state: BrokerState;
  try {
    state = new BrokerState(
      {
        dataDir: opts.dataDir,
        nodeId: opts.nodeId ?? 1,
        advertisedHost,
        advertisedPort: address.port,
        defaultPartitions: opts.defaultPartitions ?? 1,
        autoCreateTopics: opts.autoCreateTopics ?? true,
        flushPolicy: opts.flushPolicy ?? 'fsync',
        log,
        maxBatchBytes: opts.maxBatchBytes ?? maxBatchBytesDefault,
        fetchWaitMsMax: fetchWaitMsMaxDefault,
      },
      opts.sessionTimeoutMsMin ?? sessionTimeoutMsMinDefault,
    );
  } catch (err) {
    server.close();
    throw err;
  }
  registerBroker(state, `${advertisedHost}:${address.port}`);
  server.on('error', (err) => opts.onError?.(err));
  const connections = new Set<Connection>();
  const maxConnections = opts.maxConnections ?? connectionsMaxDefault;
  server.on('connection', (socket) => {
    if (connections.size >= maxConnections) {
      brokerCounters.connectionsRefused++;
      socket.destroy();
      return;
    }
    const conn = new Connection(socket, state, {
      requestBytesMax: opts.requestBytesMax ?? requestBytesMaxDefault,
      onError: (err) => opts.onError?.(err),
    });
    connections.add(conn);
    socket.on('close', () => connections.delete(conn));
  });
  const timers = [
    setInterval(() => {
      try {
        state.topics.enforceRetention(Date.now());
      } catch (err) {
        opts.onError?.(err);
      }
    }, opts.retentionCheckIntervalMs ?? retentionCheckIntervalMsDefault),
  ];
  // Everything still dirty (all appends under `os`, offset commits under both) is fsynced this often.
  timers.push(
    setInterval(() => {
      state.flusher.flushAll().catch((err: unknown) => opts.onError?.(err));
    }, periodicFlushIntervalMs),
  );
  for (const t of timers) t.unref();
  let closing: Promise<void> | null = null;
  return {
    host: advertisedHost,
    port: address.port,
    metrics: brokerMetrics,
    enforceRetention: () => state.topics.enforceRetention(Date.now()),
    releaseLock: () => state.releaseLock(),
    close(): Promise<void> {
      closing ??= (async () => {
        for (const t of timers) clearInterval(t);
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const c of connections) c.close();
        await closed;
        // A failed flush is reported; close() then fsyncs what is still dirty synchronously (and throws if that fails too).
        await state.flusher.flushAll().catch((err: unknown) => opts.onError?.(err));
        state.close();
        unregisterBroker(state);
      })();
      return closing;
    },
  };
}
