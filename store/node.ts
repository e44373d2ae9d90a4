/**
 * A store node: its namespaces, opened from a NodeConfig. One node per data directory (a lock
 * file refuses a second process). The wire server and extensions (the shipper) attach to it.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { StoreNode } from './api.js';
import type { NamespaceConfig, NodeConfig } from './config.js';
import { Namespace } from './namespace/namespace.js';
import { openRecordStore, type OpenReport } from './storage/record-store.js';
import { StorageError } from './storage/errors.js';
import { systemClock, type Clock } from './types.js';
import { WriteLog } from './writelog.js';

export class FerryNode implements StoreNode {
  private closed = false;
  readonly startedAtMs: number;
  constructor(
    readonly nodeId: string,
    readonly config: NodeConfig,
    private readonly namespaces: Map<string, Namespace>,
    private readonly lockPath: string,
    private readonly clock: Clock,
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
      system_free_mem_pct: 0,
    };
  }

  /** How each namespace opened (warm/cold, durations): logged at start. */
  openReports(): Record<string, OpenReport> {
    const out: Record<string, OpenReport> = {};
    for (const [name, ns] of this.namespaces) out[name] = ns.openReport;
    return out;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const ns of this.namespaces.values()) await ns.close();
    try {
      unlinkSync(this.lockPath);
    } catch {
      // already gone
    }
  }
}

/** Opens a node: takes the data-directory lock, then opens every namespace (warm or cold). */
export async function openStoreNode(config: NodeConfig, clock: Clock = systemClock): Promise<FerryNode> {
  mkdirSync(config.data, { recursive: true });
  const lockPath = join(config.data, 'node.lock');
  takeLock(lockPath);
  try {
    const nodeId = config.nodeId || persistentNodeId(config.data);
    const namespaces = new Map<string, Namespace>();
    for (const nc of config.namespaces) namespaces.set(nc.name, await openNamespace(nc, clock));
    for (const ns of namespaces.values()) ns.start();
    return new FerryNode(nodeId, config, namespaces, lockPath, clock);
  } catch (err) {
    try {
      unlinkSync(lockPath);
    } catch {
      // ignore
    }
    throw err;
  }
}

export async function openNamespace(nc: NamespaceConfig, clock: Clock = systemClock): Promise<Namespace> {
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
  };
  if (device) o.stateDir = nc.dir;
  const { store, report } = await openRecordStore(o);
  const wlOpts: { capacityEntries: number; path?: string } = { capacityEntries: nc.writeLogEntries };
  if (device) wlOpts.path = join(nc.dir, 'writelog.dat');
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
    },
    report,
    clock,
    join(nc.dir, 'fence'),
  );
  // A fence set at run time (failover, set-config) was persisted and wins over the config file.
  const persisted = readFence(join(nc.dir, 'fence'));
  ns.setFenced(persisted ?? nc.fenced, false);
  return ns;
}

function readFence(path: string): boolean | undefined {
  if (!existsSync(path)) return undefined;
  const v = readFileSync(path, 'utf8').trim();
  return v === 'true' ? true : v === 'false' ? false : undefined;
}

function persistentNodeId(data: string): string {
  const path = join(data, 'node-id');
  if (existsSync(path)) {
    const id = readFileSync(path, 'utf8').trim();
    if (/^[0-9A-F]{1,16}$/.test(id)) return id;
  }
  const id = randomBytes(6).toString('hex').toUpperCase();
  writeFileSync(path, `${id}\n`);
  return id;
}

function takeLock(path: string): void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx');
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number(readFileSync(path, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new StorageError('CONFIG', `data directory is in use by process ${pid} (${path})`);
      }
      unlinkSync(path); // stale lock from a crashed process
    }
  }
  throw new StorageError('CONFIG', `cannot take the data directory lock ${path}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
