/**
 * `ferry node`: runs a store node — its namespaces and the Aerospike service port.
 * Prints `ferry node listening on <host>:<port>` on stdout once it serves; logs go to stderr.
 */
import type { Command } from 'commander';
import pino from 'pino';
import { ConfigError, loadNodeConfig, FerryNode, NodeStartError, NodeStartStep, type RunningNode } from '../../store/index.js';
import { shutdownOnSignal } from '../shutdown.js';
import { watchStopWrites } from '../stop-writes-log.js';
import { startMetricsServer, type MetricsServer } from '../metrics-server.js';
import { prometheusEndpoint } from '../prometheus.js';
import { parseXdrConfig } from '../../shipper/config.js';
import { Shipper } from '../../shipper/shipper.js';

export interface NodeCliOptions {
  port?: string;
  data?: string;
  config?: string;
  host?: string;
  metricsPort?: string;
  storage?: string;
  commitToDevice?: boolean;
  seed?: string[];
  heartbeatPort?: string;
  rackId?: string;
  shutdownTimeoutS?: string;
}

export function register(program: Command): void {
  program
    .command('node')
    .description('run a store node (Aerospike protocol on --port, default 3000; namespace "test"; data under ./data)')
    .option('-p, --port <port>', 'service port (env FERRY_PORT; 0 = any free port)')
    .option('-d, --data <dir>', 'data directory (env FERRY_DATA)')
    .option('-c, --config <file>', 'configuration file (JSON)')
    .option('--host <address>', 'listen address (env FERRY_HOST)')
    .option('--metrics-port <port>', 'Prometheus /metrics port (env FERRY_METRICS_PORT)')
    .option('--storage <engine>', 'storage engine for every namespace: memory or device (env FERRY_NS_STORAGE_ENGINE)')
    .option('--commit-to-device', 'acknowledge writes only once durable (env FERRY_NS_COMMIT_TO_DEVICE)')
    .option('--seed <host:port>', 'heartbeat address of a node to join (repeatable; config heartbeat.seeds)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--heartbeat-port <port>', 'heartbeat/fabric port (0 = any free; env FERRY_HEARTBEAT_PORT)')
    .option('--rack-id <id>', 'rack id for replica placement (env FERRY_RACK_ID)')
    .option('--shutdown-timeout-s <s>', 'longest a SIGTERM shutdown may take before exiting anyway (env FERRY_SHUTDOWN_TIMEOUT_S; default 10)')
    .action(async (o: NodeCliOptions) => {
      process.exitCode = await runNode(o);
    });
}

function intArg(name: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n)) throw new ConfigError(`invalid option --${name}: must be an integer: value was "${v}"`);
  return n;
}

export async function runNode(o: NodeCliOptions): Promise<number> {
  const log = pino({ name: 'ferry-node' }, pino.destination(2));
  let config;
  let xdr;
  try {
    const env = { ...process.env };
    if (o.storage !== undefined) env.FERRY_NS_STORAGE_ENGINE = o.storage;
    if (o.commitToDevice) env.FERRY_NS_COMMIT_TO_DEVICE = 'true';
    const lo: Parameters<typeof loadNodeConfig>[0] = {
      env,
      overrides: {
        'service.port': intArg('port', o.port),
        data: o.data,
        'service.address': o.host,
        'metrics.port': intArg('metrics-port', o.metricsPort),
        'heartbeat.seeds': o.seed,
        'heartbeat.port': intArg('heartbeat-port', o.heartbeatPort),
        'rack-id': intArg('rack-id', o.rackId),
        'shutdown-timeout-s': intArg('shutdown-timeout-s', o.shutdownTimeoutS),
      },
    };
    if (o.config) lo.file = o.config;
    config = loadNodeConfig(lo);
    xdr = parseXdrConfig(config.xdr);
  } catch (err) {
    console.error(`ferry node: ${(err as Error).message}`);
    return 2;
  }
  const shipper = xdr.destinations.length > 0 ? new Shipper(xdr, (msg, err) => log.warn({ err }, msg)) : undefined;
  let running: RunningNode;
  try {
    running = await FerryNode.start({ config, extensions: shipper ? [shipper] : [], log: (level, msg, extra) => log[level](extra ?? {}, msg) });
  } catch (err) {
    if (!(err instanceof NodeStartError)) throw err;
    console.error(`ferry node: ${err.message}`);
    return err.step === NodeStartStep.EXTENSION ? 2 : 1;
  }
  for (const [ns, r] of Object.entries(running.openReports())) {
    log.info({ namespace: ns, ...r }, `namespace ${ns} opened (${r.mode}, ${r.records} records, ${r.durationMs.toFixed(0)} ms)`);
  }
  if (running.cluster) console.log(`ferry node heartbeat on ${config.heartbeat.host}:${running.cluster.heartbeat.heartbeatPort}`);
  if (shipper) log.info({ site: xdr.site, destinations: xdr.destinations.map((d) => d.name) }, 'xdr shipping started');
  let metrics: MetricsServer | undefined;
  if (config.metricsPort > 0) {
    const prometheus = prometheusEndpoint(() => running.metricSamples());
    metrics = await startMetricsServer(config.host, config.metricsPort, () => prometheus.render(), () => running.stats());
  }
  const { node, wire: server } = running;
  console.log(`ferry node listening on ${server.host}:${server.port}`);
  log.info({ nodeId: node.nodeId, host: server.host, port: server.port, data: config.data }, 'node ready');

  const stopWatch = watchStopWrites(node, { warn: (m) => log.warn(m), info: (m) => log.info(m) });
  return shutdownOnSignal({
    timeoutMs: config.shutdownTimeoutS * 1000,
    log,
    steps: [
      { name: 'close the metrics endpoint', run: async () => void (await metrics?.close()) },
      // Shipper (bounded), heartbeats, service port, then the store (a full disk skips its snapshot).
      { name: 'stop the node', run: () => (stopWatch(), running.stop()) },
    ],
    release: () => node.releaseLock(),
  });
}
