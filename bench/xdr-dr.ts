/**
 * The disaster-recovery figures of `npm run bench -- xdr` (issue 12), on sites started by
 * bench/xdr-sites.ts with `shipBack` (B ships to A, a receiver applies B's topic to A):
 * - load: `records` small records written to A (set `fb`) and shipped to B;
 * - failover_rto_s: with A shipping under steady writes, every node of A (and A's receiver of
 *   B's topic, which runs at site A) is killed -9; `ferry failover` runs as a user types it
 *   (node bin/ferry.mjs ...); the figure is from the kill until the first client write B
 *   acknowledges (a writer tries B every RTO_TRY_MS from the kill on). The RPO and RTO the
 *   command prints are reported beside it;
 * - outage: 1% of the loaded records changed on B;
 * - failback_s: A restarted, its receiver of B's topic started again, then `ferry failback`
 *   timed from its start until it exits, with what it reports (verify EQUAL, keys copied to A,
 *   unshipped writes listed) and how many records the receiver applied to A meanwhile.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { FerryClient, type KeySpec } from '../store/index.js';
import type { FailoverReport } from '../ops/failover.js';
import type { FailbackReport } from '../ops/failback.js';
import type { ReceiverStats } from '../receiver/receiver.js';
import { FERRY_ROOT } from '../ops/ferry-process.js';
import { SitesError, sleep, type BenchSites } from './xdr-sites.js';
import { withAttempts } from './harness.js';

/** Bytes of the bin of each loaded record (small, so 1 M records fit the memory namespace of B). */
export const LOAD_RECORD_BYTES = 100;
/** Writes in flight while loading and changing records. */
const LOAD_IN_FLIGHT = 64;
/** Tries per load write before it counts as failed. */
const LOAD_ATTEMPTS = 5;
/** The RTO writer tries B this often, each try bounded by RTO_TRY_TIMEOUT_MS. */
const RTO_TRY_MS = 20;
const RTO_TRY_TIMEOUT_MS = 1000;
/** Bounds on the CLI commands and on waiting for the first write on B. */
const FAILOVER_CMD_TIMEOUT_MS = 180_000;
const FAILBACK_CMD_TIMEOUT_MS = 1_800_000;
const DRAIN_TIMEOUT_MS = 600_000;
const LOAD_SET = 'fb';

const now = (): number => performance.now();

export class DrBenchError extends Error {
  readonly code = 'BENCH_XDR_DR';
  constructor(message: string) {
    super(message);
    this.name = 'DrBenchError';
  }
}

export interface CliRun {
  argv: string[];
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

/** `node bin/ferry.mjs <args>` as a user types it; never rejects (the exit code is returned). */
export function ferryCli(args: string[], timeoutMs: number): Promise<CliRun> {
  const t0 = now();
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/ferry.mjs', ...args], { cwd: FERRY_ROOT, timeout: timeoutMs, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ argv: ['ferry', ...args], code, stdout, stderr, ms: now() - t0 });
    });
  });
}

const cliText = (r: CliRun): string => `\`${r.argv.join(' ')}\` exited ${r.code}:\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`;

/** Writes `count` keys `<prefix><i>` (i = start + k * step) with at most LOAD_IN_FLIGHT in flight. */
async function writeKeys(client: FerryClient, o: { count: number; start?: number; step?: number; prefix: string; tag: string }): Promise<{ ms: number; errors: number; firstError: string }> {
  const pool = randomBytes(64 * 1024 + LOAD_RECORD_BYTES);
  let next = 0;
  let errors = 0;
  let firstError = '';
  const t0 = now();
  const worker = async (): Promise<void> => {
    for (;;) {
      const k = next++;
      if (k >= o.count) return;
      const i = (o.start ?? 0) + k * (o.step ?? 1);
      const off = (i * 4099) % (64 * 1024);
      // A put is idempotent: one that timed out on a loaded machine is tried again.
      try {
        await withAttempts(LOAD_ATTEMPTS, () => client.put({ namespace: 'test', set: LOAD_SET, key: `${o.prefix}${i}` }, { v: pool.subarray(off, off + LOAD_RECORD_BYTES), tag: o.tag }));
      } catch (err) {
        errors++;
        if (!firstError) firstError = (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: LOAD_IN_FLIGHT }, worker));
  return { ms: now() - t0, errors, firstError };
}

async function bounded(cond: () => Promise<boolean>, timeoutMs: number, what: string): Promise<number> {
  const t0 = now();
  for (;;) {
    if (await cond().catch(() => false)) return now() - t0;
    if (now() - t0 > timeoutMs) throw new DrBenchError(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(100);
  }
}

export interface LoadResult {
  records: number;
  loadMs: number;
  recordsPerS: number;
  shippedMs: number;
  errors: number;
}

/** Loads the failback data set into A and waits until B has all of it. */
export async function loadPhase(sites: BenchSites, records: number): Promise<LoadResult> {
  const w = await writeKeys(sites.clientA, { count: records, prefix: 'f', tag: 'A' });
  if (w.errors > 0) throw new DrBenchError(`${w.errors} of ${records} load writes on A failed (first: ${w.firstError})`);
  const shippedMs = await bounded(() => sites.drained(), DRAIN_TIMEOUT_MS, 'B to receive the loaded records');
  return { records, loadMs: Math.round(w.ms), recordsPerS: Math.round(records / (w.ms / 1000)), shippedMs: Math.round(shippedMs), errors: w.errors };
}

export interface FailoverResult {
  /** From kill -9 of A to the first client write B acknowledged. */
  rtoS: number;
  /** From kill -9 of A to the failover command's exit. */
  commandDoneS: number;
  /** The command's own process (start to exit, CLI start-up included). */
  commandMs: number;
  /** From the kill until every process of A had exited (the command starts after). */
  killMs: number;
  /** What the command spent draining the receiver (its report). */
  drainWaitedMs: number;
  reportedRpoMs: number | null;
  reportedRtoMs: number;
  drainCompleted: boolean;
  promoted: number;
  rtoTries: number;
  argv: string[];
}

/**
 * Site A lost under steady writes: `steady.stop()` is called once A is dead (its writes fail from
 * the kill on). Returns once B took a write and the command exited 0; throws with the command's
 * output otherwise.
 */
export async function failoverPhase(sites: BenchSites, steady: { stop(): Promise<void> }, steadyS: number): Promise<FailoverResult> {
  if (!sites.receiverBA) throw new SitesError('the failover phase needs sites started with shipBack');
  // Connected before the kill with the client's default timeouts (each try below has its own bound).
  const rtoClient = await FerryClient.connect({ hosts: sites.bPorts.map((port) => ({ host: '127.0.0.1', port })), tendIntervalMs: 200 });
  try {
    await sleep(steadyS * 1000);
    const killedAtWall = Date.now();
    const killedAt = now();
    await Promise.all([...sites.aNodes, sites.receiverBA].map((p) => p.stop('SIGKILL')));
    const killMs = Math.round(now() - killedAt);
    // From the kill on, a client tries B until one write is acknowledged.
    let firstWriteAt: number | undefined;
    let tries = 0;
    let giveUp = false;
    const trying = (async () => {
      while (firstWriteAt === undefined && !giveUp) {
        const key: KeySpec = { namespace: 'test', set: 'rto', key: `t${tries++}` };
        try {
          await rtoClient.put(key, { at: Date.now() }, { timeoutMs: RTO_TRY_TIMEOUT_MS });
          firstWriteAt = now();
        } catch {
          await sleep(RTO_TRY_MS);
        }
      }
    })();
    const stopping = steady.stop();
    const run = await ferryCli([
      'failover', '--passive', sites.bPorts.map((p) => `127.0.0.1:${p}`).join(','), '--namespace', 'test',
      '--receiver', sites.receiverUrl, '--old-active', `127.0.0.1:${sites.aPorts[0]}`, '--outage-start', String(killedAtWall), '--json',
    ], FAILOVER_CMD_TIMEOUT_MS);
    const commandDoneAt = now();
    if (run.code !== 0) {
      giveUp = true;
      await trying;
      throw new DrBenchError(`failover failed: ${cliText(run)}`);
    }
    let report: FailoverReport;
    try {
      report = JSON.parse(run.stdout) as FailoverReport;
    } catch {
      giveUp = true;
      await trying;
      throw new DrBenchError(`failover printed no JSON report: ${cliText(run)}`);
    }
    await bounded(async () => firstWriteAt !== undefined, FAILOVER_CMD_TIMEOUT_MS, 'the first write on B after the failover').finally(() => {
      giveUp = true;
    });
    await trying;
    await stopping;
    return {
      rtoS: Math.round((firstWriteAt! - killedAt) / 100) / 10,
      commandDoneS: Math.round((commandDoneAt - killedAt) / 100) / 10,
      commandMs: Math.round(run.ms),
      killMs,
      drainWaitedMs: Math.round(report.drain.waitedMs),
      reportedRpoMs: report.rpoMs,
      reportedRtoMs: report.rtoMs,
      drainCompleted: report.drain.completed,
      promoted: report.promoted.length,
      rtoTries: tries,
      argv: run.argv,
    };
  } finally {
    rtoClient.close();
  }
}

export interface FailbackResult {
  changedOnB: number;
  changeMs: number;
  restartMs: number;
  failbackS: number;
  equal: boolean;
  copiedToA: number;
  /** Of copiedToA: writes B's clients made that the B->A stream had not delivered. */
  copiedBWrites: number;
  unshipped: number;
  truncated: boolean;
  /** Records the receiver of B's topic applied to A from its restart until failback ended. */
  receiverAppliedToA: number;
  switchoverWriteOutageMs: number | null;
  argv: string[];
  stepsText: string;
}

/** 1% of the loaded records changed on B (now active), A brought back, `ferry failback` timed. */
export async function failbackPhase(sites: BenchSites, records: number, changeShare: number): Promise<FailbackResult> {
  if (!sites.receiverBA || !sites.receiverBAUrl) throw new SitesError('the failback phase needs sites started with shipBack');
  const step = Math.max(1, Math.round(1 / changeShare));
  const changed = Math.floor(records / step);
  const w = await writeKeys(sites.clientB, { count: changed, step, prefix: 'f', tag: 'B' });
  if (w.errors > 0) throw new DrBenchError(`${w.errors} of ${changed} writes on B failed after the failover (first: ${w.firstError})`);
  const r0 = now();
  await Promise.all(sites.aNodes.map((n) => n.start()));
  await bounded(async () => {
    for (const port of sites.aPorts) {
      const c = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port }], tendIntervalMs: 0 });
      try {
        const s = new Map((await c.infoValue('statistics')).split(';').map((kv) => kv.split('=') as [string, string]));
        if (Number(s.get('cluster_size') ?? 1) !== sites.aPorts.length || s.get('migrate_partitions_remaining') !== '0') return false;
      } finally {
        c.close();
      }
    }
    return true;
  }, DRAIN_TIMEOUT_MS, 'site A to come back as one cluster');
  await sites.receiverBA.start();
  const restartMs = Math.round(now() - r0);
  const t0 = now();
  const run = await ferryCli([
    'failback', '--a', `127.0.0.1:${sites.aPorts[0]}`, '--b', `127.0.0.1:${sites.bPorts[0]}`, '--namespace', 'test', '--receiver-ba', sites.receiverBAUrl, '--json',
  ], FAILBACK_CMD_TIMEOUT_MS);
  const failbackMs = now() - t0;
  if (run.code !== 0) throw new DrBenchError(`failback failed: ${cliText(run)}`);
  let report: FailbackReport;
  try {
    report = JSON.parse(run.stdout) as FailbackReport;
  } catch {
    throw new DrBenchError(`failback printed no JSON report: ${cliText(run)}`);
  }
  const rs = (await (await fetch(`${sites.receiverBAUrl}/stats`, { signal: AbortSignal.timeout(5000) })).json()) as ReceiverStats;
  return {
    changedOnB: changed,
    changeMs: Math.round(w.ms),
    restartMs,
    failbackS: Math.round(failbackMs / 100) / 10,
    equal: report.equal,
    copiedToA: report.copiedToA,
    copiedBWrites: report.copiedBWrites,
    unshipped: report.unshipped.length,
    truncated: report.truncated,
    receiverAppliedToA: rs.applied,
    switchoverWriteOutageMs: report.switchoverWriteOutageMs,
    argv: run.argv,
    stepsText: run.stderr.trim(),
  };
}
