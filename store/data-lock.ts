/**
 * The data-directory lock of a node: one process per directory.
 *
 * The lock is a symbolic link whose target is the owner's identity, `<pid>:<start>` (start =
 * the process start time from /proc, where there is one). Creating a symlink is atomic (it fails
 * when the name exists) and, with a target this short, needs no data block on ext4, xfs or tmpfs:
 * a node can still take its lock, and so start and serve reads, on a full filesystem.
 *
 * A lock whose owner is gone (kill -9, power loss) is stale and taken over: the pid is not
 * running, or it is running but started at another time (the pid was reused, as happens when a
 * container restarts and the node is pid 1 again). A lock file from older versions (a regular
 * file holding the pid) is read the same way.
 */
import { lstatSync, readFileSync, readlinkSync, symlinkSync, unlinkSync } from 'node:fs';
import { StorageError } from './storage/errors.js';

/** Attempts to take a lock before giving up (a stale lock is removed between attempts). */
const LOCK_ATTEMPTS_MAX = 3;

interface Owner {
  pid: number;
  /** Process start time in clock ticks since boot; undefined where /proc is missing. */
  start: number | undefined;
}

/** Takes the lock at `path`; throws StorageError CONFIG naming the owner when it is held. */
export function takeDataLock(path: string): void {
  const me = `${process.pid}:${startTimeOf(process.pid) ?? ''}`;
  for (let attempt = 0; attempt < LOCK_ATTEMPTS_MAX; attempt++) {
    try {
      symlinkSync(me, path);
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        throw new StorageError('CONFIG', `cannot take the data directory lock ${path}: ${(err as Error).message}`, { cause: err });
      }
    }
    const owner = readOwner(path);
    if (owner && isRunning(owner)) {
      throw new StorageError('CONFIG', `data directory is in use by process ${owner.pid} (${path})`);
    }
    try {
      unlinkSync(path); // stale: its owner is gone
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
  throw new StorageError('CONFIG', `cannot take the data directory lock ${path}: another process keeps taking it`);
}

/** Removes the lock if this process holds it (synchronous: safe on every exit path). */
export function releaseDataLock(path: string): void {
  const owner = readOwner(path);
  if (!owner || owner.pid !== process.pid) return;
  try {
    unlinkSync(path);
  } catch {
    // already gone
  }
}

/** The owner written in the lock, or undefined when it is missing or unreadable (stale). */
function readOwner(path: string): Owner | undefined {
  let text: string;
  try {
    text = lstatSync(path).isSymbolicLink() ? readlinkSync(path) : readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^\s*(\d+)(?::(\d*))?\s*$/.exec(text);
  if (!m) return undefined;
  const pid = Number(m[1]);
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  return { pid, start: m[2] ? Number(m[2]) : undefined };
}

function isRunning(owner: Owner): boolean {
  if (owner.pid === process.pid) return false; // an earlier life of this pid (container restart)
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (owner.start === undefined) return true;
  const start = startTimeOf(owner.pid);
  return start === undefined || start === owner.start;
}

/** Start time of a process (field 22 of /proc/<pid>/stat), or undefined without /proc. */
function startTimeOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may hold spaces: count after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const start = Number(fields[19]);
    return Number.isSafeInteger(start) ? start : undefined;
  } catch {
    return undefined;
  }
}
