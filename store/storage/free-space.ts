/**
 * Free space of the filesystems a namespace writes to, read with statfs: the namespace stops
 * writes before a full disk fails a device write (stop-writes.ts). Block devices are left out:
 * their space is allocated already.
 */
import { statSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import type { FreeSpaceProbe } from '../namespace/namespace.js';

/** A probe over the filesystems holding `dir` and the device files: the least free space wins. */
export function filesystemFreeSpace(dir: string, deviceFiles: string[]): FreeSpaceProbe {
  const paths = [dir];
  for (const f of deviceFiles) {
    let blockDevice = false;
    try {
      blockDevice = statSync(f).isBlockDevice();
    } catch {
      // not created yet: a file
    }
    if (!blockDevice) paths.push(dirname(f));
  }
  return {
    freeBytes(): number | undefined {
      let least: number | undefined;
      for (const p of paths) {
        try {
          const s = statfsSync(p);
          const free = s.bavail * s.bsize;
          least = least === undefined ? free : Math.min(least, free);
        } catch {
          // unreadable now (unmounted?): the device writes will tell
        }
      }
      return least;
    },
  };
}
