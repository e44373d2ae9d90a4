/**
 * One broker per data directory: `<data>/broker.lock` holds the owner's pid. A lock whose pid is
 * no longer running (kill -9, crash) is taken over; a live one refuses the start.
 */
import fs from 'node:fs';
import path from 'node:path';

const heldInProcess = new Set<string>();

export class DataDirLockedError extends Error {
  readonly code = 'DATA_DIR_LOCKED';
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function lockDataDir(dataDir: string): () => void {
  const dir = path.resolve(dataDir);
  if (heldInProcess.has(dir)) throw new DataDirLockedError(`data directory ${dir} is already open in this process`);
  const file = path.join(dir, 'broker.lock');
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = fs.openSync(file, 'wx');
      fs.writeSync(fd, String(process.pid));
      fs.closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw err;
      const pid = Number(fs.readFileSync(file, 'utf8'));
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && alive(pid)) {
        throw new DataDirLockedError(`data directory ${dir} is in use by process ${pid}`);
      }
      fs.rmSync(file, { force: true });
    }
  }
  heldInProcess.add(dir);
  return () => {
    heldInProcess.delete(dir);
    fs.rmSync(file, { force: true });
  };
}
