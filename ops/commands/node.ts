/**
 * `ferry node`: runs a store node — its namespaces and the Aerospike service port.
 * Prints `ferry node listening on <host>:<port>` on stdout once it serves; logs go to stderr.
 */
import type { Command } from 'commander';
import pino from 'pino';
import { ConfigError, loadNodeConfig } from '../../store/config.js';
import { openStoreNode } from '../../store/node.js';
import { nodeInfoCommands } from '../../store/node-info.js';
import { startWireServer } from '../../store/wire/server.js';
import { onShutdownSignal } from '../signals.js';
import { startMetricsServer, type MetricsServer } from '../metrics-server.js';
import { parseXdrConfig } from '../../shipper/config.js';
import { Cluster, singleNodeDescription } from '../../store/cluster/cluster.js';
import { ClusterProxy } from '../../store/cluster/proxy.js';
import { ReplicaWrites } from '../../store/cluster/replica-write.js';
import { Migrations } from '../../store/cluster/migrate.js';
import { systemClock, systemTimers } from '../../store/runtime/index.js';
import { Heartbeat } from '../../store/cluster/heartbeat.js';
import { tcpTransport, type Endpoint } from '../../store/transport/index.js';
import type { NodeConfig } from '../../store/config.js';
import type { FerryNode } from '../../store/node.js';
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
      },
    };
    if (o.config) lo.file = o.config;
    config = loadNodeConfig(lo);
    xdr = parseXdrConfig(config.xdr);
  } catch (err) {
    console.error(`ferry node: ${(err as Error).message}`);
    return 2;
  }
  let node;
  try {
    node = await openStoreNode(config);
  } catch (err) {
    console.error(`ferry node: cannot open the store: ${(err as Error).message}`);
    return 1;
  }
  for (const [ns, r] of Object.entries(node.openReports())) {
    log.info({ namespace: ns, ...r }, `namespace ${ns} opened (${r.mode}, ${r.records} records, ${r.durationMs.toFixed(0)} ms)`);
  }
  const shipper = xdr.destinations.length > 0 ? new Shipper(xdr, (msg, err) => log.warn({ err }, msg)) : undefined;
  const clustered = config.heartbeat.enabled ? createCluster(config, node, () => ({ host: config.host, port: server?.port ?? config.port }), log) : undefined;
  const cluster = clustered?.cluster;
  let server: Awaited<ReturnType<typeof startWireServer>> | undefined;
  try {
    server = await startWireServer(node, {
      ...(clustered ? { view: clustered.cluster, proxy: clustered.proxy } : {}),
      host: config.host,
      port: config.port,
      maxConnections: config.maxConnections,
      clusterName: config.clusterName,
      extraInfo: {
        ...nodeInfoCommands(node),
        ...(shipper ? shipper.infoCommands() : {}),
        'ferry-cluster': () =>
          JSON.stringify(cluster ? cluster.describe() : singleNodeDescription(node.nodeId, config.clusterName, String(node.stats()['cluster_key']), { host: config.host, port: server?.port ?? config.port }, node.namespaceNames())),
      },
      log: (msg, err) => log.warn({ err }, msg),
    });
  } catch (err) {
    console.error(`ferry node: cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`);
    await node.close();
    return 1;
  }
  if (clustered && cluster) {
    const wire = server;
    clustered.proxy.serve((frame) => wire.handleProxied(frame), (msg, err) => log.warn({ err }, msg));
    try {
      await cluster.heartbeat.start();
    } catch (err) {
      console.error(`ferry node: cannot listen for heartbeats on ${config.heartbeat.host}:${config.heartbeat.port}: ${(err as Error).message}`);
      await server.close();
      await node.close();
      return 1;
    }
    console.log(`ferry node heartbeat on ${config.heartbeat.host}:${cluster.heartbeat.heartbeatPort}`);
  }
  if (shipper) {
    try {
      await shipper.start(node);
      log.info({ site: xdr.site, destinations: xdr.destinations.map((d) => d.name) }, 'xdr shipping started');
    } catch (err) {
      console.error(`ferry node: xdr: ${(err as Error).message}`);
      await server.close();
      await node.close();
      return 2;
    }
  }
  let metrics: MetricsServer | undefined;
  if (config.metricsPort > 0) {
    metrics = await startMetricsServer(config.host, config.metricsPort, () => nodeMetrics(node, () => server!.stats()) + (shipper?.metrics() ?? ''), () => ({
      node: node.stats(),
      xdr: shipper?.stats(false) ?? [],
    }));
  }
  console.log(`ferry node listening on ${server.host}:${server.port}`);
  log.info({ nodeId: node.nodeId, host: server.host, port: server.port, data: config.data }, 'node ready');

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) {
        log.warn(`second ${signal}: exiting without a clean shutdown (next start will cold-scan)`);
        process.exit(1);
      }
      stopping = true;
      log.info(`${signal}: shutting down`);
      try {
        await shipper?.stop();
        await metrics?.close();
        await cluster?.heartbeat.stop();
        await server!.close();
        await node.close();
        log.info('clean shutdown complete');
        resolve(0);
      } catch (err) {
        log.error({ err }, 'shutdown failed');
        resolve(1);
      }
    };
    onShutdownSignal((signal) => void stop(signal));
  });
}

/** Prometheus text for the node's namespaces (numeric statistics only). */
function nodeMetrics(node: import('../../store/node.js').FerryNode, wire: () => Record<string, number>): string {
  const lines: string[] = [];
  // Cluster: size, key generation, heartbeats, replica writes (count, latency), migrations.
  for (const [k, v] of Object.entries(node.clusterStats?.() ?? { cluster_size: 1 })) {
    const n = typeof v === 'boolean' ? Number(v) : typeof v === 'number' ? v : undefined;
    if (n !== undefined) lines.push(`ferry_cluster_${k.replace(/^cluster_/, '').replace(/[^a-zA-Z0-9_]/g, '_')} ${n}`);
  }
  const w = wire();
  for (const k of ['proxied', 'from_proxy', 'proxy_errors', 'not_owner']) lines.push(`ferry_wire_${k} ${w[k] ?? 0}`);
  for (const name of node.namespaceNames()) {
    const stats = node.namespace(name)!.stats();
    for (const [k, v] of Object.entries(stats)) {
      const n = typeof v === 'boolean' ? Number(v) : typeof v === 'number' ? v : undefined;
      if (n === undefined) continue;
      lines.push(`ferry_ns_${k.replace(/[^a-zA-Z0-9_]/g, '_')}{namespace="${name}"} ${n}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

/** The heartbeat and partition table of a node started with seeds or a heartbeat port. */
function createCluster(config: NodeConfig, node: FerryNode, service: () => Endpoint, log: pino.Logger): { cluster: Cluster; proxy: ClusterProxy } {
  const hb = new Heartbeat({
    nodeId: node.nodeId,
    clusterName: config.clusterName,
    ...(config.rackId !== undefined ? { rackId: config.rackId } : {}),
    listen: { host: config.heartbeat.host, port: config.heartbeat.port },
    service,
    seeds: config.heartbeat.seeds,
    intervalMs: config.heartbeat.intervalMs,
    timeoutCount: config.heartbeat.timeoutCount,
    transport: tcpTransport,
    clock: systemClock,
    timers: systemTimers,
    log: (level, msg, extra) => log[level](extra ?? {}, msg),
  });
  const cluster = new Cluster(hb, node.nodeId, config.clusterName, Object.fromEntries(config.namespaces.map((n) => [n.name, n.replicationFactor])));
  const proxy = new ClusterProxy(cluster, hb, systemTimers);
  const namespaces = new Map(node.namespaceNames().map((n) => [n, node.namespace(n)!]));
  const replicas = new ReplicaWrites(cluster, hb, namespaces, systemClock, systemTimers, (msg, err) => log.warn({ err }, msg));
  replicas.attach();
  const migrations = new Migrations(cluster, replicas, namespaces, systemTimers, (msg) => log.info(msg));
  cluster.migrationCounter = () => migrations.remaining();
  node.clusterStats = () => ({
    cluster_size: cluster.clusterSize(),
    cluster_key: cluster.clusterKey(),
    cluster_integrity: cluster.isStable(),
    cluster_generation: cluster.partitionGeneration(),
    heartbeat_pulses_sent: hb.counters.pulses_sent,
    heartbeat_pulses_received: hb.counters.pulses_received,
    heartbeat_refused_cluster_name: hb.counters.refused_cluster_name,
    ...replicas.stats(),
    migrate_partitions_remaining: migrations.remaining(),
    ...migrations.counters,
  });
  return { cluster, proxy };
}
