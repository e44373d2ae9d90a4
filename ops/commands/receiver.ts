/**
 * `ferry receiver --config FILE`: consumes a source site's topics and applies them to the local
 * site. Exposes GET /metrics and /stats, and POST /stop (failover: stop applying) on
 * `metrics-port`. Prints `ferry receiver ready` once consuming.
 */
import convict from 'convict';
import type { Command } from 'commander';
import { createServer } from 'node:http';
import { prometheusEndpoint } from '../prometheus.js';
import pino from 'pino';
import { Receiver } from '../../receiver/receiver.js';
import { describeKafkaError, isKafkaAuthFailure, kafkaSecuritySchema, readKafkaSecurity, type KafkaSecurity } from '../../kafka/security.js';
import { SHUTDOWN_TIMEOUT_S_DEFAULT, parseShutdownTimeoutS, shutdownOnSignal } from '../shutdown.js';

const schema = {
  brokers: { doc: 'Kafka bootstrap brokers host:port', format: Array, default: ['127.0.0.1:9092'], env: 'FERRY_RECEIVER_BROKERS' },
  topics: { doc: 'Topics to consume (ferry.<site>.<namespace>)', format: Array, default: [] as string[], env: 'FERRY_RECEIVER_TOPICS' },
  'group-id': { doc: 'Kafka consumer group', format: String, default: 'ferry-receiver', env: 'FERRY_RECEIVER_GROUP' },
  destination: { doc: 'Local site nodes host:port', format: Array, default: ['127.0.0.1:3000'], env: 'FERRY_RECEIVER_DESTINATION' },
  policy: { doc: 'Conflict policy', format: ['generation', 'last-update-time'], default: 'generation', env: 'FERRY_RECEIVER_POLICY' },
  'dead-letter-topic': { doc: "Dead-letter topic ('' = <topic>.dlq)", format: String, default: '', env: 'FERRY_RECEIVER_DLQ' },
  'apply-concurrency': { doc: 'Replicated writes in flight, all partitions together (and connections per destination node)', format: 'nat', default: 256, env: 'FERRY_RECEIVER_APPLY_CONCURRENCY' },
  'from-beginning': { doc: 'A new group starts at the beginning of the topic', format: Boolean, default: true, env: 'FERRY_RECEIVER_FROM_BEGINNING' },
  'metrics-host': { doc: 'Address of the metrics/admin endpoint', format: String, default: '127.0.0.1', env: 'FERRY_RECEIVER_METRICS_HOST' },
  'shutdown-timeout-s': { doc: 'Longest a SIGTERM shutdown may take before exiting anyway', format: 'int', default: SHUTDOWN_TIMEOUT_S_DEFAULT, env: 'FERRY_SHUTDOWN_TIMEOUT_S' },
  'metrics-port': { doc: 'Port of the metrics/admin endpoint (0 = any free port)', format: 'port', default: 9464, env: 'FERRY_RECEIVER_METRICS_PORT' },
  ...kafkaSecuritySchema,
  'sasl-password': { ...kafkaSecuritySchema['sasl-password'], env: 'FERRY_RECEIVER_SASL_PASSWORD' },
};

export function register(program: Command): void {
  program
    .command('receiver')
    .description('consume a source site from Kafka and apply it here with conflict resolution')
    .option('-c, --config <file>', 'configuration file (JSON)')
    .option('--metrics-port <port>', 'metrics and admin HTTP port')
    .action(async (o: { config?: string; metricsPort?: string }) => {
      process.exitCode = await runReceiver(o);
    });
}

function hostPort(s: string): { host: string; port: number } {
  const m = /^([^:]+):(\d+)$/.exec(s);
  if (!m) throw new Error(`destination: must be host:port: value was "${s}"`);
  return { host: m[1]!, port: Number(m[2]) };
}

/** A receiver's configuration file, validated (convict, strict): what `ferry receiver` runs with. */
export interface ReceiverConfig {
  options: ConstructorParameters<typeof Receiver>[0];
  security: KafkaSecurity;
  metricsHost: string;
  metricsPort: number;
  shutdownTimeoutS: number;
}

/** Loads and validates a receiver configuration; throws naming the key. */
export function loadReceiverConfig(file: string | undefined, metricsPort?: string): ReceiverConfig {
  const c = convict(schema);
  if (file) c.loadFile(file);
  if (metricsPort !== undefined) c.set('metrics-port', Number(metricsPort));
  c.validate({ allowed: 'strict' });
  const shutdownTimeoutS = parseShutdownTimeoutS(String(c.get('shutdown-timeout-s')), 'shutdown-timeout-s') ?? SHUTDOWN_TIMEOUT_S_DEFAULT;
  const topics = c.get('topics') as string[];
  if (topics.length === 0) throw new Error('topics: name at least one topic');
  const security = readKafkaSecurity((k) => c.get(k), '');
  return {
    options: {
      brokers: c.get('brokers') as string[],
      topics,
      groupId: c.get('group-id'),
      destination: (c.get('destination') as string[]).map(hostPort),
      policy: c.get('policy') as 'generation' | 'last-update-time',
      deadLetterTopic: c.get('dead-letter-topic'),
      applyConcurrency: Math.max(1, c.get('apply-concurrency')),
      fromBeginning: c.get('from-beginning'),
      security,
    },
    security,
    metricsHost: c.get('metrics-host'),
    metricsPort: c.get('metrics-port'),
    shutdownTimeoutS,
  };
}

export async function runReceiver(o: { config?: string; metricsPort?: string }): Promise<number> {
  const log = pino({ name: 'ferry-receiver' }, pino.destination(2));
  let receiver: Receiver;
  let config: ReceiverConfig;
  try {
    config = loadReceiverConfig(o.config, o.metricsPort);
    receiver = new Receiver({ ...config.options, log: (msg, err) => log.warn({ err }, msg) });
  } catch (err) {
    console.error(`ferry receiver: invalid configuration: ${(err as Error).message}`);
    return 2;
  }
  const { security } = config;
  const brokers = config.options.brokers;
  const group = config.options.groupId;
  let stopped = false;
  const prometheus = prometheusEndpoint(() => receiver.metrics());
  const http = createServer((req, res) => {
    if (req.url === '/metrics') {
      void prometheus.render().then(
        (text) => res.writeHead(200, { 'content-type': prometheus.contentType }).end(text),
        (err: unknown) => res.writeHead(500).end(`${(err as Error).message}\n`),
      );
    }
    else if (req.url === '/stats') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(receiver.stats()));
    else if (req.url === '/stop' && req.method === 'POST') {
      void receiver.stop().then(() => {
        stopped = true;
        res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(receiver.stats()));
      });
    } else res.writeHead(404).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(config.metricsPort, config.metricsHost, () => resolve());
  });
  const addr = http.address();
  const metricsPort = typeof addr === 'object' && addr ? addr.port : 0;
  for (;;) {
    try {
      await receiver.start();
      break;
    } catch (err) {
      if (isKafkaAuthFailure(err)) {
        // Bad credentials or certificates do not fix themselves: say so and stop.
        console.error(`ferry receiver: ${describeKafkaError(err, `group ${group}`, brokers, security)}`);
        await receiver.stop();
        http.close();
        return 2;
      }
      log.warn({ err }, `cannot start consuming yet; retrying in 1 s: ${describeKafkaError(err, `group ${group}`, brokers, security)}`);
      await receiver.stop();
      await new Promise((r) => setTimeout(r, 1000));
    }
  }
  console.log(`ferry receiver ready (metrics on ${config.metricsHost}:${metricsPort})`);
  return shutdownOnSignal({
    timeoutMs: config.shutdownTimeoutS * 1000,
    log,
    steps: [
      { name: 'stop consuming (commit applied offsets)', run: async () => void (stopped ? undefined : await receiver.stop()) },
      { name: 'close the metrics endpoint', run: () => new Promise<void>((resolve) => http.close(() => resolve()).closeAllConnections()) },
    ],
  });
}
