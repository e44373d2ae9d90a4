/**
 * When a namespace refuses writes, and why: a pure function of the namespace's space facts.
 *
 * Reasons, most pressing first (the first that holds is reported):
 * - device-write-failed: the last flush to the device failed (disk full, I/O error); the store
 *   retries it with backoff and writes resume when a retry succeeds.
 * - filesystem-full: the filesystem holding the device files, write log or snapshot has less free
 *   space than the namespace must keep to shut down cleanly (a warm-restart snapshot, the write
 *   log state, two write blocks). Checked before a write lands, so a full disk does not first
 *   fail a device write.
 * - device-full: no free write block left (defrag keeps its own reserve).
 * - sys-memory-pct: the host (or the container's memory cgroup) has used `stop-writes-sys-memory-pct`
 *   of its memory or more; writes resume once use falls under it.
 * - memory-budget: index and caches use more than `memory-budget` bytes.
 * - stop-writes-pct: the device is fuller than `stop-writes-pct`.
 *
 * The first three are hard: nothing may be written. The last three are soft: the shipper's
 * checkpoints (a few small system records) still go through, so shipping state is kept.
 */

export const StopWritesReason = {
  NONE: '',
  DEVICE_WRITE_FAILED: 'device-write-failed',
  FILESYSTEM_FULL: 'filesystem-full',
  DEVICE_FULL: 'device-full',
  SYS_MEMORY_PCT: 'sys-memory-pct',
  MEMORY_BUDGET: 'memory-budget',
  STOP_WRITES_PCT: 'stop-writes-pct',
} as const;
export type StopWritesReasonId = (typeof StopWritesReason)[keyof typeof StopWritesReason];

export interface SpaceFacts {
  /** Message of the last failed device write, '' when the device writes fine. */
  writeFailure: string;
  /** Free bytes on the fullest filesystem the namespace writes to; undefined = not on files. */
  filesystemFreeBytes: number | undefined;
  /** Bytes the namespace keeps free on that filesystem for its clean shutdown. */
  filesystemReserveBytes: number;
  deviceUsedPct: number;
  deviceAvailPct: number;
  stopWritesPct: number;
  /** Index and cache bytes in memory. */
  memoryUsedBytes: number;
  /** Configured budget, 0 = none. */
  memoryBudgetBytes: number;
  /** The host's memory use, undefined when unknown (no probe, unreadable). */
  sysMemory: { usedBytes: number; totalBytes: number } | undefined;
  /** stop-writes-sys-memory-pct, 0 = off. */
  sysMemoryStopPct: number;
}

export interface StopWritesState {
  reason: StopWritesReasonId;
  /** A sentence for the log and `statistics` ('' when writes are accepted). */
  detail: string;
  /** Hard: even system records (shipper checkpoints) are refused. */
  hard: boolean;
}

export function stopWritesState(f: SpaceFacts): StopWritesState {
  if (f.writeFailure !== '') {
    return { reason: StopWritesReason.DEVICE_WRITE_FAILED, detail: `${f.writeFailure}; retrying, writes resume once it succeeds`, hard: true };
  }
  if (f.filesystemFreeBytes !== undefined && f.filesystemFreeBytes < f.filesystemReserveBytes) {
    return {
      reason: StopWritesReason.FILESYSTEM_FULL,
      detail: `filesystem has ${mib(f.filesystemFreeBytes)} free, under the ${mib(f.filesystemReserveBytes)} kept for a clean shutdown; writes resume once space is freed`,
      hard: true,
    };
  }
  if (f.deviceAvailPct <= 1) {
    return { reason: StopWritesReason.DEVICE_FULL, detail: `device has no free write block (${f.deviceAvailPct}% available)`, hard: true };
  }
  const sysPct = f.sysMemory && f.sysMemory.totalBytes > 0 ? (f.sysMemory.usedBytes * 100) / f.sysMemory.totalBytes : 0;
  if (f.sysMemory && f.sysMemoryStopPct > 0 && sysPct >= f.sysMemoryStopPct) {
    return {
      reason: StopWritesReason.SYS_MEMORY_PCT,
      detail: `system memory ${Math.floor(sysPct)}% used (${mib(f.sysMemory.usedBytes)} of ${mib(f.sysMemory.totalBytes)}), at stop-writes-sys-memory-pct ${f.sysMemoryStopPct}; writes resume below it`,
      hard: false,
    };
  }
  if (f.memoryBudgetBytes > 0 && f.memoryUsedBytes >= f.memoryBudgetBytes) {
    return {
      reason: StopWritesReason.MEMORY_BUDGET,
      detail: `index and caches use ${mib(f.memoryUsedBytes)}, at the memory-budget of ${mib(f.memoryBudgetBytes)}`,
      hard: false,
    };
  }
  if (f.deviceUsedPct >= f.stopWritesPct) {
    return { reason: StopWritesReason.STOP_WRITES_PCT, detail: `device ${Math.floor(f.deviceUsedPct)}% used, at stop-writes-pct ${f.stopWritesPct}`, hard: false };
  }
  return { reason: StopWritesReason.NONE, detail: '', hard: false };
}

function mib(bytes: number): string {
  return `${(bytes / (1024 * 1024)).toFixed(1)} MiB`;
}
