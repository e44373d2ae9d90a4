/**
 * One simulated site: a single-node namespace over a SimDevice, on the scheduler's clock and the
 * timers of one incarnation (owner). Built from the store's real parts (record store, write log,
 * Namespace), driven through its in-process API. The write log is memory-only here (its file is
 * real async I/O): after a crash the shipper recovers from its checkpoints by rescanning, which
 * is the path a wrapped log takes in production too.
 */
import type { NodeExtension, StoreNode } from '../store/api.js';
import { Namespace, type NamespaceSettings } from '../store/namespace/namespace.js';
import { seededRandom } from '../store/runtime/index.js';
import { openRecordStore } from '../store/storage/record-store.js';
import { WriteLog } from '../store/writelog.js';
import { ConflictPolicy } from '../store/types.js';
import { SimDevice } from './device.js';
import type { Scheduler } from './scheduler.js';
import { SIM_NAMESPACE } from './workload.js';

/** Small blocks and a small ring, so defrag, wraps and rescans happen within a short run. */
export const SIM_BLOCK_BYTES = 64 * 1024;
export const SIM_BLOCK_COUNT = 256;
export const SIM_WRITE_LOG_ENTRIES = 256;

export const SIM_SETTINGS: NamespaceSettings = {
  defaultTtlS: 0,
  nsupPeriodS: 1,
  highWaterDiskPct: 0,
  highWaterMemoryPct: 0,
  stopWritesPct: 90,
  transactionPendingLimit: 20,
  maxRecordBytes: 32 * 1024,
  commitToDevice: true,
  // Tombstones stay for the whole run: the checkers compare them.
  tombRaiderEligibleAgeS: 0,
  tombRaiderPeriodS: 0,
  conflictPolicy: ConflictPolicy.GENERATION,
  indexMemoryBytes: 64 * 1024 * 1024,
  memoryBudgetBytes: 0,
};

export interface SimSite {
  owner: string;
  device: SimDevice;
  ns: Namespace;
  node: StoreNode;
}

/** `clockSkewMs`: this site's clock runs that far ahead of (or behind) virtual time. */
/** `stateDir`: where a clean close writes the warm-restart snapshot (synchronous file I/O only). */
export async function openSite(sched: Scheduler, owner: string, device: SimDevice, clockSkewMs = 0, stateDir?: string, settings: NamespaceSettings = SIM_SETTINGS): Promise<SimSite & { openMode: string }> {
  const timers = sched.timersFor(owner);
  const clock = { nowMs: () => sched.clock.nowMs() + clockSkewMs };
  const { store, report } = await openRecordStore({
    name: SIM_NAMESPACE,
    files: [],
    fileBytes: 0,
    memoryBytes: 0,
    blockBytes: device.blockBytes,
    flushMaxMs: 20,
    defragLwmPct: 50,
    defragSleepMs: 20,
    readCacheBlocks: 4,
    device,
    clock,
    timers,
    ...(stateDir ? { stateDir } : {}),
  });
  const writeLog = await WriteLog.open({ capacityEntries: SIM_WRITE_LOG_ENTRIES, timers });
  const ns = new Namespace(SIM_NAMESPACE, store, writeLog, { ...settings }, report, clock, undefined, timers);
  ns.start();
  const node: StoreNode = {
    nodeId: owner.replace(/[^0-9A-F]/gi, '').toUpperCase() || '1',
    namespace: (name) => (name === SIM_NAMESPACE ? ns : undefined),
    namespaceNames: () => [SIM_NAMESPACE],
    stats: () => ({}),
    close: () => ns.close(),
  };
  return { owner, device, ns, node, openMode: report.mode };
}

export function newDevice(sched: Scheduler, owner: string, seed: number): SimDevice {
  return new SimDevice(SIM_BLOCK_BYTES, SIM_BLOCK_COUNT, sched, owner, seededRandom(seed));
}

export type { NodeExtension };
