/**
 * Pieces the benchmarks share: waiting for a child's ready line, stopping it (bounded), CPU
 * seconds from /proc, percentiles and a closed-loop driver with latency figures.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';

export const START_TIMEOUT_MS = 60_000;
export const STOP_TIMEOUT_MS = 15_000;
const CLOCK_TICKS_PER_S = 100;

/** Resolves when `re` matches the child's stdout; rejects if it exits first or after START_TIMEOUT_MS. */
export function waitForLine(child: ChildProcess, re: RegExp, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${START_TIMEOUT_MS} ms:\n${out}`)), START_TIMEOUT_MS);
    const onData = (c: Buffer): void => {
      out += c.toString();
      if (re.test(out)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}):\n${out}`));
    });
  });
}

/** SIGTERM (or `signal`), SIGKILL after STOP_TIMEOUT_MS; resolves once the child is gone. */
export function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill(signal);
  });
}

/** Spawns a program with piped output (kept for error messages by waitForLine). */
export function spawnPiped(cmd: string, args: string[], cwd?: string): ChildProcess {
  return spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** CPU seconds (user + system) a process has used, from /proc; undefined where /proc is absent. */
export function cpuSeconds(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return undefined;
  }
}

export function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

export interface Phase {
  ops: number;
  seconds: number;
  opsPerS: number;
  p50Ms: number;
  p99Ms: number;
  p999Ms: number;
  errors: number;
}

/** Figures of one phase from its per-command latencies. */
export function summarise(latencies: number[], elapsedS: number, errors: number): Phase {
  const sorted = Float64Array.from(latencies).sort();
  return {
    ops: latencies.length,
    seconds: elapsedS,
    opsPerS: latencies.length / elapsedS,
    p50Ms: percentile(sorted, 0.5),
    p99Ms: percentile(sorted, 0.99),
    p999Ms: percentile(sorted, 0.999),
    errors,
  };
}

/** Closed loop: `inFlight` workers, each starting its next command when its last one finished. */
export async function closedLoop(seconds: number, inFlight: number, op: () => Promise<unknown>): Promise<Phase> {
  const latencies: number[] = [];
  let errors = 0;
  const start = performance.now();
  const end = start + seconds * 1000;
  const worker = async (): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        await op();
      } catch {
        errors++;
      }
      latencies.push(performance.now() - t0);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return summarise(latencies, (performance.now() - start) / 1000, errors);
}

/** Runs `op` until it succeeds, at most `attempts` times (for idempotent commands that may time out on a loaded machine); throws the last error. */
export async function withAttempts<T>(attempts: number, op: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await op();
    } catch (err) {
      if (attempt >= attempts) throw err;
    }
  }
}

export const r2 = (n: number): number => Math.round(n * 100) / 100;
export const r3 = (n: number): number => Math.round(n * 1000) / 1000;
