/** A small filesystem a test mounts to run out of space for real (tmpfs; needs root). */
import { execFileSync } from 'node:child_process';

/**
 * Mounts a tmpfs of `bytes` on `dir` (at most `inodes` files and directories when given, to run
 * out of inodes rather than space); false when this machine does not allow it.
 */
export function tryMountTmpfs(dir: string, bytes: number, inodes?: number): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${bytes}${inodes !== undefined ? `,nr_inodes=${inodes}` : ''}`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Unmounts (lazily: a test that failed may still hold files open); never throws. */
export function unmount(dir: string): void {
  try {
    execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
  } catch {
    // not mounted
  }
}
