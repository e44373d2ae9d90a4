/**
 * A store node: its namespaces, opened from a NodeConfig. One node per data directory (a lock
 * file refuses a second process). The wire server and extensions (the shipper) attach to it.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { PartitionOwnership, StoreNode } from './api.js';
import type { NamespaceConfig, NodeConfig } from './config.js';
import { Namespace } from './namespace/namespace.js';
import { openRecordStore, type OpenReport } from './storage/record-store.js';
import { StorageError } from './storage/errors.js';
import { releaseDataLock, takeDataLock } from './data-lock.js';
import { filesystemFreeSpace } from './storage/free-space.js';
import { hostMemoryProbe, usedPct, type SystemMemoryProbe } from './namespace/system-memory.js';
import { runtimeOf, systemTimers, type Clock, type Random, type Runtime, type Timers } from './runtime/index.js';
import type { BlockDevice } from './storage/devices.js';
import { WriteLog, type WriteLogOptions } from './writelog.js';
import { RunningNode, type NodeStartOptions } from './assembly/running-node.js';

export class FerryNode implements StoreNode {
  /** Opens the store and starts everything a node runs (store/assembly/running-node.ts). */
  static start(o: NodeStartOptions): Promise<RunningNode> {
    return RunningNode.start(o);
  }


  private closed = false;
  readonly startedAtMs: number;
  /** Cluster facts for stats() once the node is part of a cluster (default: a one-node cluster). */
  clusterStats: (() => Record<string, string | number | boolean>) | undefined;
  /** Set by the node assembly when the node is part of a cluster (the shipper reads it). */
  ownership: PartitionOwnership | undefined;
  /** The host's memory use (system_free_mem_pct); set by openStoreNode. */
  systemMemory: SystemMemoryProbe | undefined;
  constructor(
    readonly nodeId: string,
    readonly config: NodeConfig,
    private readonly namespaces: Map<string, Namespace>,
    private readonly lockPath: string,
    readonly clock: Clock,
    readonly timers: Timers = systemTimers,
  ) {
    this.startedAtMs = clock.nowMs();
  }

  namespace(name: string): Namespace | undefined {
    return this.namespaces.get(name);
  }

  namespaceNames(): string[] {
    return [...this.namespaces.keys()];
  }

  stats(): Record<string, string | number | boolean> {
    let objects = 0;
    let tombstones = 0;
    for (const ns of this.namespaces.values()) {
      const s = ns.stats();
      objects += Number(s.objects);
      tombstones += Number(s.tombstones);
    }
    const mem = process.memoryUsage();
    return {
      cluster_size: 1,
      cluster_key: '1F3A5C7E9B',
      cluster_integrity: true,
      cluster_is_member: true,
      uptime: Math.floor((this.clock.nowMs() - this.startedAtMs) / 1000),
      objects,
      tombstones,
      heap_allocated_kbytes: Math.round(mem.heapUsed / 1024),
      process_rss_kbytes: Math.round(mem.rss / 1024),
      system_free_mem_pct: this.freeMemPct(),
      ...(this.clusterStats?.() ?? {}),
    };
  }

  private freeMemPct(): number {
    const u = this.systemMemory?.usage();
    return u ? Math.floor(100 - usedPct(u)) : 0;
  }

  /** How each namespace opened (warm/cold, durations): logged at start. */
  openReports(): Record<string, OpenReport> {
    const out: Record<string, OpenReport> = {};
    for (const [name, ns] of this.namespaces) out[name] = ns.openReport;
    return out;
  }

  /**
   * Closes every namespace (each as far as it can: one on a full disk skips its snapshot), then
   * releases the data-directory lock. Throws, after all of it, what could not be finished.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    const failures: string[] = [];
    for (const ns of this.namespaces.values()) {
      try {
        await ns.close();
      } catch (err) {
        failures.push(`namespace ${ns.name}: ${(err as Error).message}`);
      }
    }
    this.releaseLock();
    if (failures.length > 0) throw new StorageError('CLOSE_INCOMPLETE', failures.join('; '));
  }

  /** Releases the data-directory lock now (synchronous: the last step of every exit path). */
  releaseLock(): void {
    releaseDataLock(this.lockPath);
  }
}

/**
 * What a node runs on: clock, timers, PRNG (default: the real ones) and, optionally, how a
 * namespace's device is opened (the simulator passes simulated devices; default: files/memory).
 */
export interface StoreRuntime extends Partial<Runtime> {
  openDevice?: (nc: NamespaceConfig) => BlockDevice | Promise<BlockDevice>;
  /** Write logs in memory only, even for device namespaces (the simulator: file I/O is real I/O). */
  writeLogInMemory?: boolean;
  /** The host's memory use for stop-writes-sys-memory-pct (default: /proc; none under a simulated device). */
  systemMemory?: SystemMemoryProbe;
}

/** Accepts a bare Clock (older callers) or a StoreRuntime. */
function storeRuntimeOf(rt: Clock | StoreRuntime | undefined): Runtime & StoreRuntime {
  const o: StoreRuntime = rt === undefined ? {} : 'nowMs' in rt ? { clock: rt } : rt;
  return { ...o, ...runtimeOf(o) };
}

/** Opens a node: takes the data-directory lock, then opens every namespace (warm or cold). */
export async function openStoreNode(config: NodeConfig, runtime?: Clock | StoreRuntime): Promise<FerryNode> {
  const rt = storeRuntimeOf(runtime);
  mkdirSync(config.data, { recursive: true });
  const lockPath = join(config.data, 'node.lock');
  takeDataLock(lockPath);
  try {
    const nodeId = config.nodeId || persistentNodeId(config.data, rt.random);
    const namespaces = new Map<string, Namespace>();
    // One probe for the node: its namespaces' stop-writes-sys-memory-pct and system_free_mem_pct.
    const systemMemory = rt.systemMemory ?? (rt.openDevice ? undefined : hostMemoryProbe());
    const nsRt: StoreRuntime = systemMemory ? { ...rt, systemMemory } : rt;
    for (const nc of config.namespaces) namespaces.set(nc.name, await openNamespace(nc, nsRt));
    for (const ns of namespaces.values()) ns.start();
    const node = new FerryNode(nodeId, config, namespaces, lockPath, rt.clock, rt.timers);
    node.systemMemory = systemMemory;
    return node;
  } catch (err) {
    releaseDataLock(lockPath);
    throw err;
  }
}

export async function openNamespace(nc: NamespaceConfig, runtime?: Clock | StoreRuntime): Promise<Namespace> {
  const rt = storeRuntimeOf(runtime);
  mkdirSync(nc.dir, { recursive: true });
  const device = nc.storageEngine === 'device';
  const o: Parameters<typeof openRecordStore>[0] = {
    name: nc.name,
    files: nc.files,
    fileBytes: nc.filesize,
    memoryBytes: nc.memorySize,
    blockBytes: nc.writeBlockSize,
    flushMaxMs: nc.flushMaxMs,
    defragLwmPct: nc.defragLwmPct,
    defragSleepMs: nc.defragSleepMs,
    readCacheBlocks: nc.readCacheBlocks,
    clock: rt.clock,
    timers: rt.timers,
  };
  if (rt.openDevice) o.device = await rt.openDevice(nc);
  if (device) o.stateDir = nc.dir;
  const { store, report } = await openRecordStore(o);
  const wlOpts: WriteLogOptions = { capacityEntries: nc.writeLogEntries, timers: rt.timers };
  if (device && !rt.writeLogInMemory) wlOpts.path = join(nc.dir, 'writelog.dat');
  const writeLog = await WriteLog.open(wlOpts);
  const ns = new Namespace(
    nc.name,
    store,
    writeLog,
    {
      defaultTtlS: nc.defaultTtlS,
      nsupPeriodS: nc.nsupPeriodS,
      highWaterDiskPct: nc.highWaterDiskPct,
      highWaterMemoryPct: nc.highWaterMemoryPct,
      stopWritesPct: nc.stopWritesPct,
      transactionPendingLimit: nc.transactionPendingLimit,
      maxRecordBytes: nc.maxRecordSize,
      commitToDevice: nc.commitToDevice && device,
      tombRaiderEligibleAgeS: nc.tombRaiderEligibleAgeS,
      tombRaiderPeriodS: nc.tombRaiderPeriodS,
      conflictPolicy: nc.conflictPolicy,
      indexMemoryBytes: nc.indexMemorySize,
      memoryBudgetBytes: nc.memoryBudget,
      sysMemoryStopPct: nc.stopWritesSysMemoryPct,
      replicationFactor: nc.replicationFactor,
    },
    report,
    rt.clock,
    join(nc.dir, 'fence'),
    rt.timers,
  );
  // A fence set at run time (failover, set-config) was persisted and wins over the config file.
  const persisted = readFence(join(nc.dir, 'fence'));
  ns.setFenced(persisted ?? nc.fenced, false);
  if (device && !rt.openDevice) ns.attachFreeSpace(filesystemFreeSpace(nc.dir, nc.files));
  const systemMemory = rt.systemMemory ?? (rt.openDevice ? undefined : hostMemoryProbe());
  if (systemMemory) ns.attachSystemMemory(systemMemory);
  return ns;
}

function readFence(path: string): boolean | undefined {
  if (!existsSync(path)) return undefined;
  const v = readFileSync(path, 'utf8').trim();
  return v === 'true' ? true : v === 'false' ? false : undefined;
}

function persistentNodeId(data: string, random: Random): string {
  const path = join(data, 'node-id');
  if (existsSync(path)) {
    const id = readFileSync(path, 'utf8').trim();
    if (/^[0-9A-F]{1,16}$/.test(id)) return id;
  }
  const id = (random.u32().toString(16).padStart(8, '0') + random.int(0x10000).toString(16).padStart(4, '0')).toUpperCase();
  writeFileSync(path, `${id}\n`);
  return id;
}
