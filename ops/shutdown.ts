/**
 * Bounded shutdown for the long-running commands (node, broker, receiver).
 *
 * The first SIGTERM/SIGINT runs the command's steps in order (stop taking work, stop the
 * shipper, close the listeners, close the store). Each step gets what is left of one overall
 * deadline (`shutdown-timeout-s`, default 10 s); a step that fails is logged and the next one
 * still runs, so a broker that is gone or a disk that is full never keeps the store from
 * closing. When the deadline passes, what was not finished is logged and the process exits
 * anyway. A second signal exits at once. Whatever the path, `release` (synchronous: the
 * data-directory lock) runs before the process exits, and the process always exits explicitly:
 * a socket or timer a library left behind cannot keep it alive.
 */
import { onShutdownSignal, type ShutdownSignal } from './signals.js';

/** Default for `shutdown-timeout-s`: long enough to flush a write block and write a snapshot. */
export const SHUTDOWN_TIMEOUT_S_DEFAULT = 10;
/** Bounds of `shutdown-timeout-s`. */
export const SHUTDOWN_TIMEOUT_S_MIN = 1;
export const SHUTDOWN_TIMEOUT_S_MAX = 3600;
/** Past the deadline, the process is ended this much later even if the shutdown code itself fails. */
const BACKSTOP_MS = 2000;

export interface ShutdownStep {
  /** What the step does, for the log ("stop the shipper"). */
  name: string;
  run(): Promise<void>;
}

export interface ShutdownLog {
  info(msg: string): void;
  warn(msg: string): void;
  error(obj: { err: unknown }, msg: string): void;
}

export interface ShutdownPlan {
  timeoutMs: number;
  steps: ShutdownStep[];
  /** Runs last, synchronously, however the process ends (releases the data-directory lock). */
  release?: () => void;
  log: ShutdownLog;
  /** Ends the process (default process.exit). */
  exit?: (code: number) => never | void;
}

/** Parses a shutdown timeout in seconds (CLI or environment); throws naming the option. */
export function parseShutdownTimeoutS(raw: string | undefined, what: string): number | undefined {
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < SHUTDOWN_TIMEOUT_S_MIN || n > SHUTDOWN_TIMEOUT_S_MAX) {
    throw new RangeError(`invalid ${what}: must be a number of seconds from ${SHUTDOWN_TIMEOUT_S_MIN} to ${SHUTDOWN_TIMEOUT_S_MAX}: value was "${raw}"`);
  }
  return n;
}

/**
 * Waits for the first shutdown signal, then runs the plan. Never resolves: the process exits
 * with 0 when every step finished, 1 otherwise.
 */
export function shutdownOnSignal(plan: ShutdownPlan): Promise<never> {
  const safe = safeLog(plan.log);
  const guarded: ShutdownPlan = { ...plan, log: safe };
  return new Promise<never>(() => {
    let started = false;
    onShutdownSignal((signal) => {
      if (started) {
        safe.warn(`second ${signal}: exiting at once`);
        finish(guarded, 1);
        return;
      }
      started = true;
      // Backstop: whatever happens below (a step that throws synchronously, a log that cannot be
      // written), the process is gone shortly after the deadline.
      setTimeout(() => finish(guarded, 1), plan.timeoutMs + BACKSTOP_MS);
      void runShutdown(guarded, signal).then(
        (code) => finish(guarded, code),
        () => finish(guarded, 1),
      );
    });
  });
}

/**
 * A log whose failures are swallowed: a logger writing to a pipe whose reader is gone (EPIPE,
 * the terminal or the demo that started the process has exited) must not stop a shutdown.
 */
function safeLog(log: ShutdownLog): ShutdownLog {
  const guard = (fn: () => void): void => {
    try {
      fn();
    } catch {
      // nowhere to say it
    }
  };
  return {
    info: (msg) => guard(() => log.info(msg)),
    warn: (msg) => guard(() => log.warn(msg)),
    error: (obj, msg) => guard(() => log.error(obj, msg)),
  };
}

/** Runs the steps within the deadline; resolves with the exit code (it never rejects). */
export async function runShutdown(plan: ShutdownPlan, signal: ShutdownSignal | 'request'): Promise<number> {
  const startedAt = Date.now();
  plan.log.info(`${signal}: shutting down (at most ${Math.round(plan.timeoutMs / 1000)} s)`);
  const failed: string[] = [];
  for (let i = 0; i < plan.steps.length; i++) {
    const step = plan.steps[i]!;
    const leftMs = plan.timeoutMs - (Date.now() - startedAt);
    const outcome = leftMs > 0 ? await withDeadline(step.run(), leftMs) : 'timeout';
    if (outcome === 'timeout') {
      const unfinished = plan.steps.slice(i).map((s) => s.name);
      plan.log.warn(`shutdown deadline (${plan.timeoutMs} ms) passed; not finished: ${unfinished.join(', ')}; exiting anyway`);
      return 1;
    }
    if (outcome !== 'ok') {
      failed.push(step.name);
      plan.log.error({ err: outcome.err }, `shutdown: could not ${step.name}: ${errorText(outcome.err)}`);
    }
  }
  if (failed.length > 0) {
    plan.log.warn(`shutdown finished in ${Date.now() - startedAt} ms; could not: ${failed.join(', ')}`);
    return 1;
  }
  plan.log.info(`clean shutdown complete (${Date.now() - startedAt} ms)`);
  return 0;
}

function finish(plan: ShutdownPlan, code: number): void {
  try {
    plan.release?.();
  } catch (err) {
    plan.log.error({ err }, `shutdown: could not release: ${errorText(err)}`);
  }
  (plan.exit ?? process.exit)(code);
}

async function withDeadline(p: Promise<void>, ms: number): Promise<'ok' | 'timeout' | { err: unknown }> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    return await Promise.race([p.then(() => 'ok' as const, (err: unknown) => ({ err })), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
