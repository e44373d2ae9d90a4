/**
 * One broker per data directory: `<data>/broker.lock` names its owner. The lock is a symbolic
 * link whose target is `<pid>:<start>` (start = process start time from /proc): creating it is
 * atomic and needs no data block, so a broker can start on a full disk. A lock whose owner is no
 * longer running (kill -9, crash), or whose pid now belongs to another process (pid reuse after a
 * container restart), is taken over; a live one refuses the start. A regular lock file holding a
 * pid (older versions) is read the same way.
 */
import fs from 'node:fs';
import path from 'node:path';

const heldInProcess = new Set<string>();

export class DataDirLockedError extends Error {
  readonly code = 'DATA_DIR_LOCKED';
}

function startTime(pid: number): number | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const start = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    return Number.isSafeInteger(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

function ownerOf(file: string): { pid: number; start: number | undefined } | undefined {
  try {
    const text = fs.lstatSync(file).isSymbolicLink() ? fs.readlinkSync(file) : fs.readFileSync(file, 'utf8');
    const m = /^\s*(\d+)(?::(\d*))?\s*$/.exec(text);
    if (!m || Number(m[1]) <= 0) return undefined;
    return { pid: Number(m[1]), start: m[2] ? Number(m[2]) : undefined };
  } catch {
    return undefined;
  }
}

function alive(owner: { pid: number; start: number | undefined }): boolean {
  if (owner.pid === process.pid) return false;
  try {
    process.kill(owner.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const start = owner.start === undefined ? undefined : startTime(owner.pid);
  return owner.start === undefined || start === undefined || start === owner.start;
}

export function lockDataDir(dataDir: string): () => void {
  const dir = path.resolve(dataDir);
  if (heldInProcess.has(dir)) throw new DataDirLockedError(`data directory ${dir} is already open in this process`);
  const file = path.join(dir, 'broker.lock');
  const me = `${process.pid}:${startTime(process.pid) ?? ''}`;
  for (let attempt = 0; ; attempt++) {
    try {
      fs.symlinkSync(me, file);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 1) throw err;
      const owner = ownerOf(file);
      if (owner && alive(owner)) throw new DataDirLockedError(`data directory ${dir} is in use by process ${owner.pid}`);
      fs.rmSync(file, { force: true });
    }
  }
  heldInProcess.add(dir);
  let held = true;
  return () => {
    if (!held) return;
    held = false;
    heldInProcess.delete(dir);
    if (ownerOf(file)?.pid === process.pid) fs.rmSync(file, { force: true });
  };
}
