/**
 * Node assembly: one running ferry node, put together from its config and its runtime.
 *
 * Start order: open the store (data-directory lock, every namespace warm or cold), then the
 * cluster (heartbeat, partition table, proxy) when heartbeats are configured, then the Aerospike
 * service port, then the heartbeat listener, then the extensions (the XDR shipper). Stop runs the
 * other way round: extensions first (the shipper writes its checkpoints into the store), then
 * heartbeats, the service port, and last the store (flush and warm-restart snapshot).
 *
 * A step that fails undoes the steps before it and throws a NodeStartError saying which step;
 * the CLI maps the step to its exit code. Clock, timers, PRNG, devices and the fabric transport
 * come from the caller (real ones by default), so the simulator can run whole nodes.
 */
import type { InfoHandler, MetricSample, NodeExtension } from '../api.js';
import type { NodeConfig } from '../config.js';
import { Cluster, singleNodeDescription } from '../cluster/cluster.js';
import { Heartbeat } from '../cluster/heartbeat.js';
import { KnownPeers, mergeSeeds } from '../cluster/known-peers.js';
import { DuplicateResolution } from '../cluster/dup-res.js';
import { ClusterProxy } from '../cluster/proxy.js';
import { PartitionBalance, type BalancedNamespace } from '../cluster/balance.js';
import { FabricRpc } from '../cluster/fabric-rpc.js';
import { Migrations, MIGRATE_MAX_NUM_INCOMING_MAX, MIGRATE_THREADS_MAX } from '../cluster/migrate.js';
import { MIGRATE_FILL_DELAY_S_MAX } from '../cluster/fill-delay.js';
import { PartitionVersions } from '../cluster/partition-versions.js';
import { ReplicaWrites } from '../cluster/replica-write.js';
import { tcpTransport, type Endpoint, type Transport as FabricTransport } from '../transport/index.js';
import { openStoreNode, type FerryNode, type StoreRuntime } from '../node.js';
import { nodeInfoCommands } from '../node-info.js';
import type { OpenReport } from '../storage/record-store.js';
import { runtimeOf, type Runtime } from '../runtime/index.js';
import { startWireServer, type WireServer } from '../wire/server.js';
import { infoError } from '../wire/info-codec.js';
import type { PartitionId } from '../types.js';

export type NodeLogLevel = 'info' | 'warn' | 'error';
export type NodeLog = (level: NodeLogLevel, msg: string, extra?: Record<string, unknown>) => void;

export interface NodeStartOptions extends Partial<Runtime> {
  config: NodeConfig;
  /** Started after the service port, stopped before it (the shipper is one). */
  extensions?: NodeExtension[];
  /** How namespaces open their devices (default: files or memory from the config). */
  openDevice?: StoreRuntime['openDevice'];
  /** Keep write logs in memory only (the simulator: their file I/O would be real). */
  writeLogInMemory?: boolean;
  /** The host's memory use, for stop-writes-sys-memory-pct (default: read from /proc). */
  systemMemory?: StoreRuntime['systemMemory'];
  /** Node-to-node messages (heartbeat, proxy); default TCP. */
  fabric?: FabricTransport;
  /** Starts the client-facing service (default: the TCP wire server; the simulator's has no socket). */
  startWire?: typeof startWireServer;
  log?: NodeLog;
}

/** Which start step failed (the CLI exits 1 for the first three, 2 for an extension). */
export const NodeStartStep = { STORE: 'STORE', LISTEN: 'LISTEN', HEARTBEAT: 'HEARTBEAT', EXTENSION: 'EXTENSION' } as const;
export type NodeStartStepId = (typeof NodeStartStep)[keyof typeof NodeStartStep];

export class NodeStartError extends Error {
  readonly code = 'NODE_START';
  constructor(
    readonly step: NodeStartStepId,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'NodeStartError';
  }
}

interface Clustered {
  cluster: Cluster;
  proxy: ClusterProxy;
  balance: PartitionBalance;
  migrations: Migrations;
}

export class RunningNode {
  #stopping: Promise<void> | undefined;

  private constructor(
    readonly node: FerryNode,
    readonly wire: WireServer,
    readonly cluster: Cluster | undefined,
    readonly extensions: readonly NodeExtension[],
    private readonly log: NodeLog,
    private readonly balance?: PartitionBalance,
  ) {}

  static async start(o: NodeStartOptions): Promise<RunningNode> {
    const rt = runtimeOf(o);
    const log: NodeLog = o.log ?? (() => undefined);
    const config = o.config;
    const extensions = o.extensions ?? [];
    let node: FerryNode;
    try {
      node = await openStoreNode(config, { ...rt, ...(o.openDevice ? { openDevice: o.openDevice } : {}), ...(o.writeLogInMemory ? { writeLogInMemory: true } : {}), ...(o.systemMemory ? { systemMemory: o.systemMemory } : {}) });
    } catch (err) {
      throw new NodeStartError(NodeStartStep.STORE, `cannot open the store: ${(err as Error).message}`, { cause: err });
    }
    let wire: WireServer | undefined;
    const service = (): Endpoint => ({ host: config.advertiseHost, port: wire?.port ?? config.port });
    let clustered: Clustered | undefined;
    try {
      clustered = config.heartbeat.enabled ? createCluster(config, node, service, rt, o.fabric ?? tcpTransport, log, o.openDevice !== undefined) : undefined;
    } catch (err) {
      await node.close();
      throw new NodeStartError(NodeStartStep.STORE, `cannot load partition versions: ${(err as Error).message}`, { cause: err });
    }
    try {
      wire = await (o.startWire ?? startWireServer)(node, {
        ...(clustered ? { view: clustered.cluster, proxy: clustered.proxy } : {}),
        host: config.host,
        advertiseHost: config.advertiseHost,
        port: config.port,
        maxConnections: config.maxConnections,
        clusterName: config.clusterName,
        extraInfo: infoCommands(node, config, extensions, clustered?.cluster, service),
        ...(clustered ? { setServiceConfig: migrationSettings(clustered.migrations), serviceConfig: () => ({ 'cluster-name': config.clusterName, 'node-id': node.nodeId, ...migrationConfig(clustered!.migrations) }) } : {}),
        log: (msg, err) => log('warn', msg, { err }),
        clock: rt.clock,
        timers: rt.timers,
      });
    } catch (err) {
      await node.close();
      throw new NodeStartError(NodeStartStep.LISTEN, `cannot listen on ${config.host}:${config.port}: ${(err as Error).message}`, { cause: err });
    }
    const running = new RunningNode(node, wire, clustered?.cluster, extensions, log, clustered?.balance);
    if (clustered) {
      const w = wire;
      clustered.proxy.serve((frame) => w.handleProxied(frame), (msg, err) => log('warn', msg, { err }));
      clustered.balance.start();
      try {
        await clustered.cluster.heartbeat.start();
      } catch (err) {
        await wire.close();
        await node.close();
        throw new NodeStartError(NodeStartStep.HEARTBEAT, `cannot listen for heartbeats on ${config.heartbeat.host}:${config.heartbeat.port}: ${(err as Error).message}`, { cause: err });
      }
      // With seeds, join before the node is reported started, so it does not present itself as
      // a one-node cluster owning every partition when its cluster is one heartbeat away.
      const hb = clustered.cluster.heartbeat;
      if (!(await hb.joined(hb.nodeTimeoutMs))) log('warn', `no seed answered within ${hb.nodeTimeoutMs} ms: running alone until one does`, { seeds: hb.seeds.map((e) => `${e.host}:${e.port}`) });
    }
    for (const [i, ext] of extensions.entries()) {
      try {
        await ext.start(node);
      } catch (err) {
        for (const started of extensions.slice(0, i).reverse()) await started.stop().catch(() => undefined);
        await clustered?.cluster.heartbeat.stop();
        await wire.close();
        await node.close();
        throw new NodeStartError(NodeStartStep.EXTENSION, `${ext.name}: ${(err as Error).message}`, { cause: err });
      }
    }
    return running;
  }

  /** How each namespace opened (warm/cold, durations). */
  openReports(): Record<string, OpenReport> {
    return this.node.openReports();
  }

  /** Metric samples: cluster, proxy and namespace statistics, then each extension's. */
  metricSamples(): MetricSample[] {
    const out = nodeMetrics(this.node, () => this.wire.stats());
    if (this.cluster) out.push(...namespaceMigrationMetrics(this.node.namespaceNames(), this.cluster));
    for (const ext of this.extensions) if (ext.metrics) out.push(...ext.metrics());
    return out;
  }

  /** JSON for /stats: node statistics and each extension's own. */
  stats(): Record<string, unknown> {
    const out: Record<string, unknown> = { node: this.node.stats() };
    for (const ext of this.extensions) if (ext.stats) out[ext.name] = ext.stats();
    return out;
  }

  /** Stops everything in reverse start order; a second call waits for the first. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    for (const ext of [...this.extensions].reverse()) {
      try {
        await ext.stop();
      } catch (err) {
        this.log('warn', `${ext.name}: stop failed`, { err });
      }
    }
    this.balance?.stop();
    await this.cluster?.heartbeat.stop();
    await this.wire.close();
    await this.node.close();
  }
}

/** set-config:context=service for the migration throttles; false = not one of them or invalid. */
function migrationSettings(m: Migrations): (key: string, value: string) => boolean {
  return (key, value) => {
    if (!/^\d+$/.test(value)) return false;
    const n = Number(value);
    switch (key) {
      case 'migrate-threads':
        if (n > MIGRATE_THREADS_MAX) return false;
        m.threads = n;
        m.pump();
        return true;
      case 'migrate-max-num-incoming':
        if (n > MIGRATE_MAX_NUM_INCOMING_MAX) return false;
        m.maxNumIncoming = n;
        return true;
      case 'migrate-max-records-per-sec':
        m.limit.recordsPerSecMax = n;
        return true;
      case 'migrate-max-bytes-per-sec':
        m.limit.bytesPerSecMax = n;
        return true;
      case 'migrate-fill-delay':
        if (n > MIGRATE_FILL_DELAY_S_MAX) return false;
        m.fillDelay.delayS = n;
        return true;
      default:
        return false;
    }
  };
}

function migrationConfig(m: Migrations): Record<string, number> {
  return {
    'migrate-threads': m.threads,
    'migrate-max-num-incoming': m.maxNumIncoming,
    'migrate-max-records-per-sec': m.limit.recordsPerSecMax,
    'migrate-max-bytes-per-sec': m.limit.bytesPerSecMax,
    'migrate-fill-delay': m.fillDelay.delayS,
  };
}

function infoCommands(node: FerryNode, config: NodeConfig, extensions: readonly NodeExtension[], cluster: Cluster | undefined, service: () => Endpoint): Record<string, InfoHandler> {
  const table: Record<string, InfoHandler> = { ...nodeInfoCommands(node) };
  for (const ext of extensions) Object.assign(table, ext.infoCommands?.() ?? {});
  Object.assign(table, quiesceCommands(cluster));
  table['ferry-cluster'] = () =>
    JSON.stringify(cluster ? cluster.describe() : singleNodeDescription(node.nodeId, config.clusterName, String(node.stats()['cluster_key']), service(), node.namespaceNames()));
  return table;
}

/**
 * `quiesce` / `quiesce-undo` (Aerospike's, without the separate `recluster`: the flag rides on
 * the heartbeat and the member change starts the rebalance round at once, on every node alike).
 */
function quiesceCommands(cluster: Cluster | undefined): Record<string, InfoHandler> {
  const set = (on: boolean): string => {
    if (!cluster) return infoError(4, 'quiesce needs a cluster (this node runs without heartbeats)');
    cluster.heartbeat.setQuiesced(on);
    return 'ok';
  };
  return { quiesce: () => set(true), 'quiesce-undo': () => set(false) };
}

/** Samples for the node: cluster, proxy counters, namespaces (numeric statistics only). */
function nodeMetrics(node: FerryNode, wire: () => Record<string, number>): MetricSample[] {
  const out: MetricSample[] = [];
  const numeric = (v: unknown): number | undefined => (typeof v === 'boolean' ? Number(v) : typeof v === 'number' ? v : undefined);
  // Cluster: size, key generation, heartbeats, replica writes (count, latency), migrations.
  for (const [k, v] of Object.entries(node.clusterStats?.() ?? { cluster_size: 1 })) {
    const value = numeric(v);
    if (value !== undefined) out.push({ name: `ferry_cluster_${k.replace(/^cluster_/, '').replace(/[^a-zA-Z0-9_]/g, '_')}`, help: `cluster statistic ${k}`, type: 'gauge', value });
  }
  const w = wire();
  for (const k of ['proxied', 'from_proxy', 'proxy_errors', 'not_owner', 'replica_reads', 'read_not_found_master', 'read_not_found_replica']) out.push({ name: `ferry_wire_${k}`, help: `wire statistic ${k}`, type: 'gauge', value: w[k] ?? 0 });
  for (const name of node.namespaceNames()) {
    for (const [k, v] of Object.entries(node.namespace(name)!.stats())) {
      const value = numeric(v);
      if (value !== undefined) out.push({ name: `ferry_ns_${k.replace(/[^a-zA-Z0-9_]/g, '_')}`, help: `namespace statistic ${k}`, type: 'gauge', value, labels: { namespace: name } });
    }
  }
  return out;
}

/**
 * Per namespace: `ferry_namespace_migrate_*{namespace=...}` from the cluster's `namespace/<ns>`
 * migration figures (partitions to send and receive, copies to drop, records shipped, skipped,
 * received) and the quiesce state.
 */
function namespaceMigrationMetrics(names: readonly string[], cluster: Cluster): MetricSample[] {
  const out: MetricSample[] = [];
  for (const name of names) {
    for (const [k, v] of Object.entries(cluster.namespaceStats(name))) {
      if (!k.startsWith('migrate_') && !/quiesce/.test(k)) continue;
      out.push({ name: `ferry_namespace_${k.replace(/[^a-zA-Z0-9_]/g, '_')}`, help: `namespace migration statistic ${k}`, type: 'gauge', value: v, labels: { namespace: name } });
    }
  }
  return out;
}

/** The heartbeat, partition table and proxy of a node started with seeds or a heartbeat port. */
function createCluster(config: NodeConfig, node: FerryNode, service: () => Endpoint, rt: Runtime, fabric: FabricTransport, log: NodeLog, simulatedDevices: boolean): Clustered {
  const known = config.heartbeat.rememberPeers && !simulatedDevices ? new KnownPeers(config.data, config.clusterName) : undefined;
  let remembered: Endpoint[] = [];
  try {
    remembered = known?.load() ?? [];
  } catch (err) {
    log('warn', `ignoring the remembered peers: ${(err as Error).message}`);
  }
  const self = [
    { host: config.heartbeat.advertiseHost, port: config.heartbeat.port },
    { host: config.heartbeat.host, port: config.heartbeat.port },
  ];
  const seeds = mergeSeeds(config.heartbeat.seeds, remembered, self);
  if (seeds.length > config.heartbeat.seeds.length) {
    log('info', `seeds from the last membership (${known!.path}): ${seeds.slice(config.heartbeat.seeds.length).map((e) => `${e.host}:${e.port}`).join(', ')}`);
  }
  const hb = new Heartbeat({
    nodeId: node.nodeId,
    clusterName: config.clusterName,
    ...(config.rackId !== undefined ? { rackId: config.rackId } : {}),
    listen: { host: config.heartbeat.host, port: config.heartbeat.port },
    advertiseHost: config.heartbeat.advertiseHost,
    service,
    seeds,
    intervalMs: config.heartbeat.intervalMs,
    timeoutCount: config.heartbeat.timeoutCount,
    transport: fabric,
    clock: rt.clock,
    timers: rt.timers,
    random: rt.random,
    log: (level, msg, extra) => log(level, msg, extra),
  });
  const cluster = new Cluster(hb, node.nodeId, config.clusterName, Object.fromEntries(config.namespaces.map((n) => [n.name, n.replicationFactor])));
  const proxy = new ClusterProxy(cluster, hb, rt.timers, rt.clock);
  const namespaces = new Map(node.namespaceNames().map((n) => [n, node.namespace(n)!]));
  const replicas = new ReplicaWrites(cluster, hb, namespaces, rt.clock, rt.timers, (msg, err) => log('warn', msg, { err }));
  replicas.attach();
  const balanced = new Map<string, BalancedNamespace>();
  for (const nc of config.namespaces) {
    const ns = namespaces.get(nc.name)!;
    const versions = new PartitionVersions(nc.storageEngine === 'device' && !simulatedDevices ? nc.dir : undefined);
    versions.load((pid) => ns.store.partitionSize(pid as PartitionId) > 0);
    balanced.set(nc.name, { ns, versions });
  }
  const rpc = new FabricRpc(hb, rt.timers, (msg, err) => log('warn', msg, { err }));
  const balance = new PartitionBalance(cluster, rpc, balanced, rt.timers, (msg) => log('info', msg), seeds.length === 0);
  if (known) {
    const remember = (): void => {
      const members = new Set(hb.snapshot().members.map((m) => m.nodeId));
      if (members.size < 2) return;
      const peers = hb.peers().filter((p) => members.has(p.nodeId));
      try {
        known.save(peers.map((p) => ({ nodeId: p.nodeId, heartbeat: p.heartbeat })));
      } catch (err) {
        log('warn', `cannot remember the cluster's peers in ${known.path}: ${(err as Error).message}`);
      }
    };
    hb.onChange(remember);
  }
  const migrations = new Migrations(balance, rpc, replicas, namespaces, rt.clock, rt.timers, (msg) => log('info', msg));
  replicas.beforeApply = (ns, pid) => balance.markIncoming(ns, pid);
  const dupRes = new DuplicateResolution(rpc, balance, namespaces);
  dupRes.attach();
  const observeMembers = (): void => migrations.fillDelay.observe(cluster.table().members.map((m) => m.nodeId), rt.clock.nowMs());
  observeMembers();
  cluster.onTableChange(observeMembers);
  cluster.roles = {
    workingMaster: (ns, pid) => balance.workingMaster(ns, pid),
    columns: (ns, pid) => balance.columns(ns, pid),
    replicationTargets: (ns, pid) => balance.replicationTargets(ns, pid),
    generation: () => balance.generation(),
    remaining: () => balance.remaining(),
    lineage: () => balance.lineage,
    migrationsByNamespace: () =>
      Object.fromEntries([...namespaces].map(([name, n]) => [name, { tx: migrations.remaining(name), rx: balance.pending(name).rx, storedBytes: n.store.stats().usedBytes }])),
    namespaceStats: (ns) => {
      const p = balance.pending(ns);
      const c = migrations.nsCounters(ns);
      const [absent, subset, full] = balanced.get(ns)?.versions.counts() ?? [0, 0, 0];
      return {
        migrate_tx_partitions_remaining: migrations.remaining(ns),
        migrate_rx_partitions_remaining: p.rx,
        migrate_signals_remaining: p.drops,
        pending_quiesce: hb.quiesced ? 1 : 0,
        effective_is_quiesced: balance.isQuiesced(ns) ? 1 : 0,
        nodes_quiesced: cluster.table(ns).members.filter((m) => m.quiesced).length,
        migrate_tx_partitions_done: c?.migrate_tx_partitions_done ?? 0,
        migrate_records_shipped: c?.migrate_records_shipped ?? 0,
        migrate_records_skipped: c?.migrate_records_skipped ?? 0,
        migrate_rx_records: c?.migrate_rx_records ?? 0,
        partitions_full: full,
        partitions_subset: subset,
        partitions_absent: absent,
      };
    },
  };
  cluster.migrationCounter = () => migrations.remaining();
  node.ownership = {
    isMaster: (pid) => cluster.isMaster(pid),
    isWorkingMaster: (ns, pid) => cluster.isWorkingMaster(ns, pid),
    rolesGeneration: () => cluster.partitionGeneration(),
    onChange: (cb) => cluster.onTableChange(cb),
  };
  cluster.partitionEntries = (ns, pid) => namespaces.get(ns)?.store.partitionSize(pid as PartitionId) ?? 0;
  node.clusterStats = () => ({
    cluster_size: cluster.clusterSize(),
    cluster_key: cluster.clusterKey(),
    cluster_integrity: cluster.isStable(),
    cluster_generation: cluster.partitionGeneration(),
    heartbeat_pulses_sent: hb.counters.pulses_sent,
    heartbeat_pulses_received: hb.counters.pulses_received,
    heartbeat_refused_cluster_name: hb.counters.refused_cluster_name,
    heartbeat_refused_fabric_version: hb.counters.refused_fabric_version,
    ...replicas.stats(),
    ...proxy.counters,
    migrate_partitions_remaining: cluster.migrationsRemaining(),
    migrate_tx_partitions_remaining: migrations.remaining(),
    migrate_rx_partitions_active: migrations.incomingActive(),
    migrate_exchange_ready: balance.ready,
    pending_quiesce: hb.quiesced,
    effective_is_quiesced: balance.isQuiesced(),
    nodes_quiesced: cluster.table().members.filter((m) => m.quiesced).length,
    ...migrations.counters,
    ...migrations.limit.counters,
    ...balance.counters,
    ...dupRes.counters,
  });
  return { cluster, proxy, balance, migrations };
}
