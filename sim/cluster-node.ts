/**
 * One simulated cluster node: the real node assembly (RunningNode.start: store, heartbeat,
 * Cluster, ReplicaWrites, proxy, Migrations) on the simulator's seams: its SimDevice, the
 * scheduler's clock with the timers of its incarnation (owner `n2#3`), a seeded PRNG, the
 * simulated network as its fabric, an in-memory write log and a socketless service (sim/wire.ts).
 *
 * A crash kills the incarnation's owner (its timers and pending events never run again), cuts
 * its host off the network, releases its data-directory lock (the OS would) and keeps only what
 * the device synced, plus a random fate for each unsynced write. The next start is a new
 * incarnation over that device.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { RunningNode } from '../store/assembly/running-node.js';
import type { NodeExtension } from '../store/api.js';
import type { PartitionTable } from '../store/cluster/partition-table.js';
import type { NamespaceConfig, NodeConfig } from '../store/config.js';
import type { Namespace } from '../store/namespace/namespace.js';
import { seededRandom } from '../store/runtime/index.js';
import type { SimDevice } from './device.js';
import type { SimNetwork } from './network.js';
import type { Scheduler } from './scheduler.js';
import { SIM_BLOCK_BYTES, SIM_BLOCK_COUNT, SIM_WRITE_LOG_ENTRIES } from './site.js';
import { simWire, type SimService } from './wire.js';
import { SIM_NAMESPACE } from './workload.js';

export const SIM_SERVICE_PORT = 3000;
export const SIM_HEARTBEAT_PORT = 3002;
/** The simulated cluster's replication factor. */
export const SIM_REPLICATION_FACTOR = 2;
export const SIM_HEARTBEAT_INTERVAL_MS = 150;
export const SIM_HEARTBEAT_TIMEOUT_COUNT = 10;

function namespaceConfig(dir: string): NamespaceConfig {
  return {
    name: SIM_NAMESPACE,
    storageEngine: 'device',
    files: [],
    filesize: SIM_BLOCK_BYTES * SIM_BLOCK_COUNT,
    memorySize: 0,
    writeBlockSize: SIM_BLOCK_BYTES,
    flushMaxMs: 20,
    commitToDevice: true,
    defragLwmPct: 50,
    defragSleepMs: 20,
    readCacheBlocks: 4,
    defaultTtlS: 0,
    nsupPeriodS: 1,
    highWaterDiskPct: 0,
    highWaterMemoryPct: 0,
    indexMemorySize: 64 * 1024 * 1024,
    stopWritesPct: 90,
    memoryBudget: 0,
    transactionPendingLimit: 20,
    maxRecordSize: 32 * 1024,
    // Tombstones stay for the whole run: the checkers compare them.
    tombRaiderEligibleAgeS: 0,
    tombRaiderPeriodS: 0,
    conflictPolicy: 'generation',
    writeLogEntries: SIM_WRITE_LOG_ENTRIES,
    replicationFactor: SIM_REPLICATION_FACTOR,
    fenced: false,
    dir,
  };
}

export function simNodeConfig(nodeId: string, host: string, seeds: string[], dataDir: string, clusterName = 'sim'): NodeConfig {
  return {
    nodeId,
    rackId: undefined,
    heartbeat: {
      enabled: true,
      seeds: seeds.map((h) => ({ host: h, port: SIM_HEARTBEAT_PORT })),
      host,
      advertiseHost: host,
      port: SIM_HEARTBEAT_PORT,
      intervalMs: SIM_HEARTBEAT_INTERVAL_MS,
      timeoutCount: SIM_HEARTBEAT_TIMEOUT_COUNT,
      // The simulated nodes' seeds are fixed (every node is seeded); nothing to remember on disk.
      rememberPeers: false,
    },
    data: dataDir,
    clusterName,
    shutdownTimeoutS: 10,
    host,
    advertiseHost: host,
    port: SIM_SERVICE_PORT,
    maxConnections: 1000,
    metricsPort: 0,
    namespaces: [namespaceConfig(join(dataDir, SIM_NAMESPACE))],
    xdr: {},
  };
}

export class SimClusterNode {
  incarnation = 0;
  running: RunningNode | undefined;
  service: SimService | undefined;
  /** Between a crash (or the start of a clean stop) and the end of the next start. */
  up = false;
  /** Told every partition table this node uses from the end of each start on (the no-balloon checker). */
  onTable: ((table: PartitionTable) => void) | undefined;
  /** Extensions of each incarnation (the shipper), made with that incarnation's owner. */
  extensions: ((owner: string) => NodeExtension[]) | undefined;
  readonly #config: NodeConfig;

  constructor(
    readonly sched: Scheduler,
    readonly net: SimNetwork,
    readonly nodeId: string,
    readonly host: string,
    seeds: string[],
    dataDir: string,
    public device: SimDevice,
    private readonly seed: number,
    clusterName = 'sim',
  ) {
    mkdirSync(dataDir, { recursive: true });
    this.#config = simNodeConfig(nodeId, host, seeds, dataDir, clusterName);
  }

  get owner(): string {
    return `${this.host}#${this.incarnation}`;
  }

  get ns(): Namespace | undefined {
    return this.running?.node.namespace(SIM_NAMESPACE);
  }

  /** Starts a new incarnation over the current device; resolves once it joined (or gave up). */
  async start(): Promise<void> {
    this.incarnation++;
    const owner = this.owner;
    this.sched.note(`start ${owner}`);
    const device = this.device;
    this.running = await RunningNode.start({
      config: this.#config,
      clock: this.sched.clock,
      timers: this.sched.timersFor(owner),
      random: seededRandom(this.seed * 1000 + this.incarnation),
      fabric: this.net.transportFor(this.host, owner),
      openDevice: () => device,
      writeLogInMemory: true,
      startWire: simWire((s) => (this.service = s)),
      extensions: this.extensions?.(owner) ?? [],
      log: (level, msg) => this.sched.note(`${owner} ${level} ${msg}`),
    });
    this.up = true;
    const cluster = this.running.cluster;
    if (cluster && this.onTable) {
      this.onTable(cluster.table(SIM_NAMESPACE));
      // Synchronous listener: no event of its own, so the trace is unchanged.
      cluster.onTableChange(() => {
        if (this.running?.cluster === cluster) this.onTable?.(cluster.table(SIM_NAMESPACE));
      });
    }
  }

  /** Power loss: nothing of this incarnation runs again; the device keeps what was synced. */
  crash(): void {
    this.up = false;
    this.sched.kill(this.owner);
    this.net.crashHost(this.host);
    this.running?.node.releaseLock();
    this.running = undefined;
    this.service = undefined;
    this.device = this.device.crash(`${this.host}#${this.incarnation + 1}`);
  }

  /** A clean stop (heartbeats stop, the store flushes and writes its warm-restart snapshot). */
  async stop(): Promise<void> {
    this.up = false;
    const r = this.running;
    this.service = undefined;
    await r?.stop();
    this.sched.kill(this.owner);
    this.net.crashHost(this.host);
    this.running = undefined;
    this.device = this.device.crash(`${this.host}#${this.incarnation + 1}`);
  }
}
