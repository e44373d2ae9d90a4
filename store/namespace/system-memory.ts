/**
 * How much of the host's memory is in use, for stop-writes-sys-memory-pct (as Aerospike's): a
 * namespace refuses writes while the used share is at or past its limit, so the process stops
 * growing before the kernel's OOM killer ends it.
 *
 * The real probe reads /proc/meminfo (used = MemTotal - MemAvailable) and, when the process runs
 * in a memory cgroup (v2 or v1) with a limit smaller than the host (a container), the cgroup's
 * own use against its limit (usage less reclaimable page cache, inactive_file): the limit the
 * OOM killer enforces there. Tests and the simulator pass a probe of their own.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface SystemMemoryUsage {
  usedBytes: number;
  totalBytes: number;
}

/** The host's (or container's) memory use; undefined when it cannot be read. */
export interface SystemMemoryProbe {
  usage(): SystemMemoryUsage | undefined;
}

/** Used share in percent (0..100). */
export function usedPct(u: SystemMemoryUsage): number {
  return u.totalBytes > 0 ? (u.usedBytes * 100) / u.totalBytes : 0;
}

/** MemTotal and MemAvailable of /proc/meminfo text, in bytes; undefined when either is missing. */
export function parseMeminfo(text: string): SystemMemoryUsage | undefined {
  const kib = (key: string): number | undefined => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB$`, 'm').exec(text);
    return m ? Number(m[1]) * 1024 : undefined;
  };
  const total = kib('MemTotal');
  const available = kib('MemAvailable');
  if (total === undefined || available === undefined || total <= 0 || available > total) return undefined;
  return { usedBytes: total - available, totalBytes: total };
}

/**
 * A memory cgroup's use against its limit, from its limit, usage and memory.stat contents (v2:
 * memory.max, memory.current; v1: memory.limit_in_bytes, memory.usage_in_bytes); undefined when
 * there is no limit ('max', or v1's near-2^63 "unlimited") or the files do not parse.
 */
export function parseCgroupMemory(max: string, current: string, stat: string): SystemMemoryUsage | undefined {
  const limit = Number(max.trim());
  const used = Number(current.trim());
  if (!Number.isSafeInteger(limit) || limit <= 0 || !Number.isSafeInteger(used)) return undefined;
  const inactive = /^(?:total_)?inactive_file (\d+)$/m.exec(stat);
  const reclaimable = inactive ? Number(inactive[1]) : 0;
  return { usedBytes: Math.max(0, used - reclaimable), totalBytes: limit };
}

function readOr(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

interface CgroupFiles {
  limit: string;
  usage: string;
  stat: string;
}

/** The memory files of the process's own cgroup (v2 unified, else v1 memory controller), or undefined. */
function ownCgroup(procRoot: string, cgroupRoot: string): CgroupFiles | undefined {
  const lines = (readOr(join(procRoot, 'self', 'cgroup')) ?? '').split('\n');
  const v1 = lines.find((l) => /^\d+:memory:/.test(l));
  if (v1 !== undefined) {
    const dir = join(cgroupRoot, 'memory', v1.slice(v1.indexOf(':memory:') + 8).trim());
    return { limit: join(dir, 'memory.limit_in_bytes'), usage: join(dir, 'memory.usage_in_bytes'), stat: join(dir, 'memory.stat') };
  }
  const v2 = lines.find((l) => l.startsWith('0::'));
  if (v2 === undefined) return undefined;
  const dir = join(cgroupRoot, v2.slice(3).trim());
  return { limit: join(dir, 'memory.max'), usage: join(dir, 'memory.current'), stat: join(dir, 'memory.stat') };
}

/**
 * The real probe. Roots are parameters so a test can point it at files of its own; the
 * cgroup is looked up once, meminfo and the cgroup counters are read on every call.
 */
export function hostMemoryProbe(roots: { proc: string; cgroup: string } = { proc: '/proc', cgroup: '/sys/fs/cgroup' }): SystemMemoryProbe {
  const cgroup = ownCgroup(roots.proc, roots.cgroup);
  return {
    usage(): SystemMemoryUsage | undefined {
      const host = parseMeminfo(readOr(join(roots.proc, 'meminfo')) ?? '');
      if (cgroup === undefined) return host;
      const max = readOr(cgroup.limit);
      const current = readOr(cgroup.usage);
      const limited = max !== undefined && current !== undefined ? parseCgroupMemory(max, current, readOr(cgroup.stat) ?? '') : undefined;
      if (limited === undefined) return host;
      if (host === undefined || limited.totalBytes < host.totalBytes) return limited;
      return host;
    },
  };
}
