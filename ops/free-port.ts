/**
 * Free listening ports for tests, benchmarks and the demo, chosen below the kernel's ephemeral
 * range. A port the kernel hands out for `listen(0)` comes from the same range as the source
 * ports of outgoing connections, so between "pick a port" and "the process binds it" (and across
 * a kill -9 and restart on the same port) any client socket on the machine may take it:
 * EADDRINUSE at random. Ports below the ephemeral range are never given to outgoing sockets.
 *
 * Ports are also reserved machine-wide while the process that took them lives (a file per port in
 * RESERVATIONS_DIR holding its pid): two test workers never pick the same port, even one whose
 * owner is between a kill -9 and a restart of the process listening on it (it is free then).
 */
import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Lowest port handed out (above the well-known and registered low ports most services use). */
export const FREE_PORT_MIN = 20_000;
/** Tries before giving up (each try is a bind check of a random port). */
const FREE_PORT_TRIES = 200;

export class FreePortError extends Error {
  readonly code = 'FREE_PORT';
  constructor(message: string) {
    super(message);
    this.name = 'FreePortError';
  }
}

/** The first port of the kernel's ephemeral range (Linux), or 32768 when it cannot be read. */
function ephemeralStart(): number {
  try {
    const [lo] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo !== undefined && Number.isInteger(lo) && lo > FREE_PORT_MIN + 1000) return lo;
  } catch {
    // not Linux: fall through
  }
  return 32_768;
}

/** True when `port` can be bound on `host` right now. */
export function portFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** Ports this process already handed out: never given twice. */
const given = new Set<number>();

/** One file per reserved port, holding the pid of the process that reserved it. */
export const RESERVATIONS_DIR = join(tmpdir(), 'ferry-ports');

function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

let releaseOnExit = false;

/**
 * Reserves `port` for this process unless a live process holds it; a dead owner's reservation is
 * taken over. Where reservations cannot be written at all, the bind check alone decides.
 */
export function reservePort(port: number): boolean {
  const file = join(RESERVATIONS_DIR, String(port));
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      mkdirSync(RESERVATIONS_DIR, { recursive: true });
      writeFileSync(file, String(process.pid), { flag: 'wx' });
      given.add(port);
      if (!releaseOnExit) {
        releaseOnExit = true;
        process.once('exit', () => {
          for (const p of given) {
            try {
              if (Number(readFileSync(join(RESERVATIONS_DIR, String(p)), 'utf8')) === process.pid) unlinkSync(join(RESERVATIONS_DIR, String(p)));
            } catch {
              // gone already
            }
          }
        });
      }
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') return true;
      let owner = 0;
      try {
        owner = Number(readFileSync(file, 'utf8'));
      } catch {
        continue; // released meanwhile: try again
      }
      if (owner === process.pid || processAlive(owner)) return false;
      try {
        unlinkSync(file);
      } catch {
        // another process took it over first; the next write decides
      }
    }
  }
  return false;
}

/**
 * A port that is free now, outside the ephemeral range, and not handed out before by this process.
 * `span` > 1 asks for that many consecutive free ports and returns the first.
 */
export async function freePort(host = '127.0.0.1', span = 1): Promise<number> {
  const hi = ephemeralStart() - span;
  for (let i = 0; i < FREE_PORT_TRIES; i++) {
    const base = FREE_PORT_MIN + Math.floor(Math.random() * (hi - FREE_PORT_MIN));
    let ok = true;
    for (let p = base; p < base + span && ok; p++) ok = !given.has(p) && (await portFree(p, host));
    if (!ok) continue;
    for (let p = base; p < base + span && ok; p++) ok = reservePort(p);
    if (!ok) continue;
    for (let p = base; p < base + span; p++) given.add(p);
    return base;
  }
  throw new FreePortError(`no free port range of ${span} found on ${host} in ${FREE_PORT_TRIES} tries`);
}
