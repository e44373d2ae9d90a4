/**
 * `ferry broker`: runs the embedded single-node Kafka-protocol broker.
 * Prints `ferry broker listening on <host>:<port>` on stdout once it serves; logs go to stderr.
 * Options fall back to FERRY_BROKER_* environment variables, then to defaults.
 */
import type { Command } from 'commander';
import pino from 'pino';
import { brokerMetrics, startBroker, type BrokerOptions } from '../../broker/server.js';
import { startMetricsServer, type MetricsServer } from '../metrics-server.js';
import { prometheusEndpoint } from '../prometheus.js';
import { SHUTDOWN_TIMEOUT_S_DEFAULT, parseShutdownTimeoutS, shutdownOnSignal } from '../shutdown.js';

export interface BrokerCliOptions {
  data?: string;
  port?: string;
  host?: string;
  advertisedHost?: string;
  partitions?: string;
  flushPolicy?: string;
  segmentBytes?: string;
  messageMaxBytes?: string;
  retentionBytes?: string;
  retentionMs?: string;
  metricsPort?: string;
  shutdownTimeoutS?: string;
  maxConnections?: string;
}

export const brokerPortDefault = 9092;
export const brokerDataDefault = './data/broker';
export const brokerHostDefault = '127.0.0.1';

export function register(program: Command): void {
  program
    .command('broker')
    .description('run the embedded Kafka-protocol broker (kafkajs, kcat and other Kafka clients can use it)')
    .option('-d, --data <dir>', `data directory (env FERRY_BROKER_DATA; default ${brokerDataDefault})`)
    .option('-p, --port <port>', `listen port (env FERRY_BROKER_PORT; default ${brokerPortDefault}; 0 = any free port)`)
    .option('--host <address>', `listen address (env FERRY_BROKER_HOST; default ${brokerHostDefault})`)
    .option('--advertised-host <host>', 'host clients are told to connect to (env FERRY_BROKER_ADVERTISED_HOST; default the listen address, or the hostname when listening on 0.0.0.0)')
    .option('--partitions <n>', 'partitions of auto-created topics (env FERRY_BROKER_PARTITIONS; default 1)')
    .option('--flush-policy <policy>', 'fsync: acks=-1 answered after fsync; os: leave flushing to the OS, fsync every second (env FERRY_BROKER_FLUSH_POLICY; default fsync)')
    .option('--segment-bytes <n>', 'segment file size before rolling (env FERRY_BROKER_SEGMENT_BYTES)')
    .option('--message-max-bytes <n>', 'largest record batch a producer may append, bytes, as Kafka\'s message.max.bytes (env FERRY_BROKER_MESSAGE_MAX_BYTES; default 16 MiB)')
    .option('--retention-bytes <n>', 'per-partition size limit, -1 = none (env FERRY_BROKER_RETENTION_BYTES)')
    .option('--metrics-port <port>', 'Prometheus /metrics HTTP port (env FERRY_BROKER_METRICS_PORT; default 0 = off)')
    .option('--max-connections <n>', 'client connections served at once; more are closed at once (env FERRY_BROKER_MAX_CONNECTIONS; default 10000)')
    .option('--shutdown-timeout-s <s>', 'longest a SIGTERM shutdown may take before exiting anyway (env FERRY_SHUTDOWN_TIMEOUT_S; default 10)')
    .option('--retention-ms <n>', 'age limit of records, -1 = none (env FERRY_BROKER_RETENTION_MS; default 7 days)')
    .action(async (o: BrokerCliOptions) => {
      process.exitCode = await runBroker(o, process.env);
    });
}

class UsageError extends Error {
  readonly code = 'USAGE';
}

function intOpt(name: string, v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new UsageError(`invalid --${name}: must be an integer: value was "${v}"`);
  return n;
}

export function brokerOptions(o: BrokerCliOptions, env: NodeJS.ProcessEnv): BrokerOptions {
  const pick = (cli: string | undefined, key: string): string | undefined => cli ?? env[`FERRY_BROKER_${key}`];
  const flush = pick(o.flushPolicy, 'FLUSH_POLICY') ?? 'fsync';
  if (flush !== 'fsync' && flush !== 'os') throw new UsageError(`invalid --flush-policy "${flush}": fsync or os`);
  const partitions = intOpt('partitions', pick(o.partitions, 'PARTITIONS'));
  if (partitions !== undefined && partitions < 1) throw new UsageError('--partitions must be at least 1');
  const port = intOpt('port', pick(o.port, 'PORT')) ?? brokerPortDefault;
  if (port < 0 || port > 65535) throw new UsageError(`invalid --port ${port}`);
  const opts: BrokerOptions = {
    dataDir: pick(o.data, 'DATA') ?? brokerDataDefault,
    port,
    host: pick(o.host, 'HOST') ?? brokerHostDefault,
    flushPolicy: flush,
  };
  const advertised = pick(o.advertisedHost, 'ADVERTISED_HOST');
  if (advertised) opts.advertisedHost = advertised;
  if (partitions !== undefined) opts.defaultPartitions = partitions;
  const segmentBytes = intOpt('segment-bytes', pick(o.segmentBytes, 'SEGMENT_BYTES'));
  if (segmentBytes !== undefined) opts.segmentBytes = segmentBytes;
  const messageMaxBytes = intOpt('message-max-bytes', pick(o.messageMaxBytes, 'MESSAGE_MAX_BYTES'));
  if (messageMaxBytes !== undefined && messageMaxBytes < 1024) throw new UsageError('--message-max-bytes must be at least 1024');
  if (messageMaxBytes !== undefined) opts.maxBatchBytes = messageMaxBytes;
  const retentionBytes = intOpt('retention-bytes', pick(o.retentionBytes, 'RETENTION_BYTES'));
  if (retentionBytes !== undefined) opts.retentionBytes = retentionBytes;
  const retentionMs = intOpt('retention-ms', pick(o.retentionMs, 'RETENTION_MS'));
  if (retentionMs !== undefined) opts.retentionMs = retentionMs;
  const maxConnections = intOpt('max-connections', pick(o.maxConnections, 'MAX_CONNECTIONS'));
  if (maxConnections !== undefined && maxConnections < 1) throw new UsageError('--max-connections must be at least 1');
  if (maxConnections !== undefined) opts.maxConnections = maxConnections;
  return opts;
}

export async function runBroker(o: BrokerCliOptions, env: NodeJS.ProcessEnv): Promise<number> {
  const log = pino({ name: 'ferry-broker' }, pino.destination(2));
  let opts: BrokerOptions;
  let shutdownTimeoutS: number | undefined;
  try {
    opts = brokerOptions(o, env);
    shutdownTimeoutS = parseShutdownTimeoutS(o.shutdownTimeoutS ?? env.FERRY_SHUTDOWN_TIMEOUT_S, '--shutdown-timeout-s');
  } catch (err) {
    console.error(`ferry broker: ${(err as Error).message}`);
    return 2;
  }
  let broker;
  try {
    broker = await startBroker({ ...opts, onError: (err) => log.error({ err }, 'request failed; connection closed') });
  } catch (err) {
    console.error(`ferry broker: cannot start on ${opts.host}:${opts.port} with data ${opts.dataDir}: ${(err as Error).message}`);
    return 1;
  }
  let metrics: MetricsServer | undefined;
  const metricsPort = o.metricsPort ?? env.FERRY_BROKER_METRICS_PORT;
  if (metricsPort !== undefined && metricsPort !== '' && metricsPort !== '0') {
    const port = Number(metricsPort);
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      console.error(`ferry broker: invalid --metrics-port: must be a port number: value was "${metricsPort}"`);
      await broker.close();
      return 2;
    }
    const prometheus = prometheusEndpoint(() => brokerMetrics());
    metrics = await startMetricsServer(opts.host ?? '127.0.0.1', port, () => prometheus.render());
    log.info({ port: metrics.port }, 'metrics on /metrics');
  }
  console.log(`ferry broker listening on ${broker.host}:${broker.port}`);
  log.info({ host: broker.host, port: broker.port, data: opts.dataDir, flushPolicy: opts.flushPolicy }, 'broker ready');
  return shutdownOnSignal({
    timeoutMs: (shutdownTimeoutS ?? SHUTDOWN_TIMEOUT_S_DEFAULT) * 1000,
    log,
    steps: [
      { name: 'close the metrics endpoint', run: async () => void (await metrics?.close()) },
      { name: 'close the broker (flush its segments)', run: () => broker.close() },
    ],
    release: () => broker.releaseLock(),
  });
}
