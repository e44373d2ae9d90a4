/**
 * What the two simulations (run.ts: one node per site with XDR; cluster-run.ts: a cluster) share:
 * the result, the timing both use, the seeded start, the fault loop, the driver that runs the
 * phases on virtual time, the receiver to site B and the result. Structure only: each run keeps
 * its own order of draws from the seed, so a seed replays as it did.
 */
import { Receiver, type Destination } from '../receiver/receiver.js';
import { seededRandom, type Random } from '../store/runtime/index.js';
import type { ConflictPolicyId } from '../store/types.js';
import type { SimKafkaLog } from './kafka-log.js';
import { Scheduler } from './scheduler.js';

export interface SimResult {
  seed: number;
  ok: boolean;
  failures: string[];
  traceHash: string;
  summary: Record<string, number | string>;
}

/** Commands in flight at most (the hot key sees several at once). */
export const OPS_IN_FLIGHT_MAX = 8;
/** A client gives up on a command after this long (its node may have crashed; in doubt: it may have been applied). */
export const CLIENT_TIMEOUT_MS = 3000;
/** Longest fault window (slow log, lost acks, redelivery, B unreachable, a partition, loss), ms. */
export const FAULT_WINDOW_MS_MAX = 4000;
/** Virtual time the system gets to converge once faults stop. */
export const SETTLE_MS_MAX = 60_000;
/** The receiver's apply to B gives up after this long (and retries the batch). */
export const APPLY_TIMEOUT_MS = 1000;

/** A run's scheduler and its first draws from the seed: the workload's and the faults' PRNGs. */
export function startRun(o: { seed: number; log?: (line: string) => void }): { sched: Scheduler; root: Random; rWork: Random; rFaults: Random } {
  const sched = new Scheduler();
  if (o.log) sched.onNote = o.log;
  const root = seededRandom(o.seed);
  const rWork = seededRandom(root.u32());
  const rFaults = seededRandom(root.u32());
  return { sched, root, rWork, rFaults };
}

/** Mean virtual gap between faults, ms. */
export const FAULT_GAP_MS_MAX = 1500;

/** Injects faults one at a time, a random gap apart, until `stop`. */
export async function runFaults(sched: Scheduler, r: Random, stop: () => boolean, inject: () => Promise<void>): Promise<void> {
  while (!stop()) {
    await sched.sleep('faults', 100 + r.int(FAULT_GAP_MS_MAX));
    if (!stop()) await inject();
  }
}

export const errorText = (err: unknown): string => (err as Error).stack ?? String(err);

/** Where the driver got to: `phase` as the driver sets it, `done` once it returned or threw. */
export interface DriverState {
  phase: string;
  done: boolean;
}

/**
 * Runs `main` (the phases) on the scheduler until it returns or no events are left (a deadlock,
 * pushed to `failures`); unhandled rejections and a throw of the driver go to `errors`.
 */
export async function runDriver(sched: Scheduler, errors: string[], failures: string[], main: (state: DriverState) => Promise<void>): Promise<DriverState> {
  const onUnhandled = (err: unknown): void => void errors.push(`unhandled rejection: ${errorText(err)}`);
  process.on('unhandledRejection', onUnhandled);
  const state: DriverState = { phase: 'start', done: false };
  const started = main(state).then(
    () => void (state.done = true),
    (err: unknown) => {
      errors.push(`driver threw in phase ${state.phase}: ${errorText(err)}`);
      state.done = true;
    },
  );
  try {
    await sched.runUntil(Number.MAX_SAFE_INTEGER, () => state.done);
    if (!state.done) failures.push(`the run stopped in phase ${state.phase}: no events left (deadlock)`);
    else await started;
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  return state;
}

/** The topic site A's shippers produce to and the receiver reads. */
export const TOPIC = 'ferry.A.sim';

/** The receiver from the simulated Kafka log to site B, on its owner's timers. */
export function simReceiver(sched: Scheduler, log: SimKafkaLog, owner: string, randomSeed: number, policy: ConflictPolicyId, destination: () => Destination): Receiver {
  const rt = { clock: sched.clock, timers: sched.timersFor(owner), random: seededRandom(randomSeed) };
  return new Receiver({
    brokers: ['sim:9092'], topics: [TOPIC], groupId: 'ferry-B', destination: [], policy, deadLetterTopic: '',
    applyConcurrency: 4, fromBeginning: true, runtime: rt, kafka: log.linkFor(owner), connectDestination: () => Promise.resolve(destination()),
    log: (msg, err) => sched.note(`R ${msg} ${(err as Error | undefined)?.message ?? ''}`),
  });
}

export function simResult(seed: number, sched: Scheduler, failures: string[], summary: Record<string, number | string>): SimResult {
  return { seed, ok: failures.length === 0, failures, traceHash: sched.traceHash, summary };
}
