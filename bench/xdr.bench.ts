/**
 * `npm run bench -- xdr [--kafka embedded|apache] [--nodes 3] [--phases lag,ramp,catchup,rpo0,failover,failback] [--duration-s 20] [--outage-s 60] [--steady-rate 2000] [--rates 1000,5000,20000] [--ramp-step-s 10] [--rpo0-rate 1000] [--failback-records 1000000] [--compression gzip|none] [--verbose] [--quick]`
 * `--kafka apache` runs everything through the embedded broker, then again through a 1-node Apache
 * Kafka (scripts/kafka), and prints the two side by side.
 *
 * XDR figures with both sites and the broker on this machine, as real processes (bench/xdr-sites.ts),
 * next to the goals of issue #5:
 * - lag from source acknowledgement to destination apply at sustained 1k, 5k and 20k records/s of
 *   1 KiB records written to A (lag_p50_ms_<r>k, lag_p99_ms_<r>k). Measured by sampling: about
 *   PROBES_PER_S records per second are probes; once A acknowledges a probe, a poller reads it on B
 *   (header-only batch reads of all outstanding probes every POLL_MS) and the lag is the time the
 *   read that found it returned minus the acknowledgement time (an upper bound; resolution is the
 *   poll period plus one read round trip). Every key is written once, so "found on B" means applied.
 * - max_sustained_records_per_s: a ramp of write rates; a step is kept up with when the writer
 *   reaches 95% of the rate and the end-to-end backlog (acknowledged on A minus applied on B) does
 *   not keep growing over the step's second half.
 * - catch-up: steady writes at steady_records_per_s, the broker stopped for --outage-s while writes
 *   continue, then restarted; catchup_records_per_s = records applied on B per second from the
 *   restart until B caught up (its backlog is back to less than half a second of writes).
 * - rpo0_write_p99_ms: put latency p99 (FerryClient, the project's smart client) of --rpo0-rate writes/s
 *   for --duration-s to set `rpo0` (the destination's rpo0-sets: acknowledged only once in Kafka), next
 *   to the same rate of ordinary writes just before (normal_write_p99_ms).
 * - failover_rto_s, failback_s: bench/xdr-dr.ts (A killed -9 under steady writes, `ferry failover`;
 *   1% of --failback-records changed on B, A back, `ferry failback`).
 * Each site is --nodes nodes (a cluster, replication factor 2, when more than one).
 * Writes are paced by a token schedule (record i is due at i / rate seconds), at most
 * WRITES_IN_FLIGHT_MAX outstanding. Ends with one line of JSON {"bench":"xdr", ...}.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import type { FerryClient, KeySpec } from '../store/index.js';
import { sleep, startBenchSites, type BenchSites } from './xdr-sites.js';
import { BenchArgs } from './args.js';
import { failbackPhase, failoverPhase, loadPhase, LOAD_RECORD_BYTES } from './xdr-dr.js';

const GOALS = { lagP99Ms5k: 100, catchupVsSteady: 5, failoverRtoS: 5, failbackS: 60, rpo0WriteP99Ms: 20 };
/** Phases in the order they run; `--phases` picks some (failback needs failover before it). */
const PHASES = ['lag', 'ramp', 'catchup', 'rpo0', 'failover', 'failback'] as const;
type Phase = (typeof PHASES)[number];
/** Nodes per site (issue 12: 3-node sites, replication factor 2). */
const NODES_DEFAULT = 3;
/** Records of the failback data set (issue 12: 1 M, 1% changed on B during the outage). */
const FAILBACK_RECORDS_DEFAULT = 1_000_000;
const FAILBACK_CHANGED_SHARE = 0.01;
/** RPO-0 comparison: this write rate, normal writes then RPO-0 writes (set RPO0_SET). */
const RPO0_RATE_DEFAULT = 1000;
const RPO0_SET = 'rpo0';
/** Steady writes on A before it is killed in the failover phase, s. */
const FAILOVER_STEADY_S = 5;
const RECORD_BYTES = 1024;
/** Writes outstanding at once (and connections to A). */
const WRITES_IN_FLIGHT_MAX = 128;
/** Probes per second of writing (every Nth record, N = rate / this). */
const PROBES_PER_S = 200;
/** Pause between probe polls on B. */
const POLL_MS = 2;
/** Oldest outstanding probes read per poll. */
const PROBE_BATCH_MAX = 256;
/** A probe not found on B within this long counts as lost (reported, never hidden). */
const PROBE_TIMEOUT_MS = 600_000;
/** Waiting for everything to reach B between phases. */
const DRAIN_TIMEOUT_MS = 300_000;
/** Monitor sampling period (receiver and shipper stats). */
const SAMPLE_MS = 250;
/** A rate counts as reached at this share of the target. */
const REACHED_SHARE = 0.95;
/** Ramp step: the backlog may grow at most this share of the rate per second over the second half. */
const BACKLOG_GROWTH_SHARE = 0.05;
const RAMP_RATES = [500, 1000, 1500, 2000, 2500, 3000, 4000, 5000, 6000, 8000, 10_000, 12_500, 15_000, 20_000, 25_000, 30_000];
/** Warm-up before measuring: the first seconds after start show start-up stalls on A. */
const WARMUP_MS = 10_000;
/** Steady write rate of the catch-up phase when --steady-rate is not given, records/s. */
const STEADY_RATE_DEFAULT = 2000;
/** Catching up may take this long after the broker's restart, or CATCHUP_LIMIT_OUTAGES outages if longer. */
const CATCHUP_LIMIT_MS = 120_000;
const CATCHUP_LIMIT_OUTAGES = 5;
/** Bytes of A's device file and B's memory namespace (the device file is sparse). */
const STORE_BYTES = 16 * 1024 * 1024 * 1024;

class BenchError extends Error {
  readonly code = 'BENCH_XDR';
  constructor(message: string) {
    super(message);
    this.name = 'BenchError';
  }
}

function numArg(args: BenchArgs, name: string, dflt: number): number {
  const v = args.num(name, dflt);
  if (v <= 0) throw new BenchError(`--${name} needs a positive number`);
  return v;
}

const now = (): number => performance.now();
/** --verbose: print a line of shipper and receiver figures every second. */
const VERBOSE = { on: false };

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))]!;
}

const round1 = (x: number): number => Math.round(x * 10) / 10;

// ------------------------------------------------------------------------------------ probes

interface Probe {
  key: KeySpec;
  ackAt: number;
  sink: number[];
}

/** Reads outstanding probe keys on B until each is found; records found-at minus acked-at. */
class Prober {
  private pending: Probe[] = [];
  private running = true;
  private loop: Promise<void>;
  lost = 0;
  polls = 0;
  private pollMsSum = 0;
  constructor(private readonly client: FerryClient) {
    this.loop = this.run();
  }

  add(key: KeySpec, ackAt: number, sink: number[]): void {
    this.pending.push({ key, ackAt, sink });
  }

  get outstanding(): number {
    return this.pending.length;
  }

  /** Mean time between the starts of two polls, ms: the measurement's resolution. */
  get meanPollMs(): number {
    return this.polls > 1 ? this.pollMsSum / (this.polls - 1) : NaN;
  }

  async waitEmpty(timeoutMs: number): Promise<void> {
    const end = now() + timeoutMs;
    while (this.pending.length > 0 && now() < end) await sleep(20);
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  private async run(): Promise<void> {
    let lastStart = NaN;
    while (this.running) {
      if (this.pending.length === 0) {
        await sleep(POLL_MS);
        lastStart = NaN;
        continue;
      }
      const start = now();
      if (!Number.isNaN(lastStart)) {
        this.pollMsSum += start - lastStart;
      }
      lastStart = start;
      this.polls++;
      const batch = this.pending.slice(0, PROBE_BATCH_MAX);
      let results: Array<{ resultCode: number }>;
      try {
        results = await this.client.batch(batch.map((p) => ({ kind: 'read' as const, key: p.key, headerOnly: true })), 5000);
      } catch {
        await sleep(POLL_MS);
        continue;
      }
      const at = now();
      const done = new Set<Probe>();
      batch.forEach((p, i) => {
        if (results[i]?.resultCode === 0) {
          p.sink.push(at - p.ackAt);
          done.add(p);
        } else if (at - p.ackAt > PROBE_TIMEOUT_MS) {
          this.lost++;
          done.add(p);
        }
      });
      if (done.size > 0) this.pending = this.pending.filter((p) => !done.has(p));
      await sleep(POLL_MS);
    }
  }
}

// ------------------------------------------------------------------------------------ writer

/** Paced writer: record i of the current schedule is due at i / rate s. Rate may change. */
class Writer {
  acked = 0;
  errors = 0;
  firstError = '';
  /** Put latencies (ms) of the current run. */
  latencies: number[] = [];
  private issued = 0;
  private inflight = 0;
  private readonly pool = randomBytes(64 * 1024 + RECORD_BYTES);
  constructor(private readonly client: FerryClient, private readonly prober: Prober) {}

  /**
   * Writes at `rate` for `durationMs` (or until `until()` is true, checked every tick) keys
   * `<prefix><i>`; every `probeEvery`th acknowledged record becomes a probe recorded into `sink`.
   * Returns the achieved rate (acknowledged records / elapsed s).
   */
  async run(o: { rate: number; durationMs: number; prefix: string; sink: number[]; until?: () => boolean; set?: string; noProbes?: boolean }): Promise<{ acked: number; achievedPerS: number; elapsedMs: number }> {
    const probeEvery = Math.max(1, Math.round(o.rate / PROBES_PER_S));
    const ackedAtStart = this.acked;
    this.latencies = [];
    let i = 0;
    const t0 = now();
    for (;;) {
      const t = now() - t0;
      if (t >= o.durationMs || o.until?.()) break;
      const due = Math.floor((o.rate * t) / 1000);
      while (i < due && this.inflight < WRITES_IN_FLIGHT_MAX) this.write(`${o.prefix}${i}`, i++ % probeEvery === 0 && !o.noProbes, o.sink, o.set ?? 'bench');
      await sleep(1);
    }
    const elapsedMs = now() - t0;
    const acked = this.acked - ackedAtStart;
    // Let the last writes finish (each is bounded by the client timeout).
    while (this.inflight > 0) await sleep(5);
    return { acked, achievedPerS: acked / (elapsedMs / 1000), elapsedMs };
  }

  private write(userKey: string, probe: boolean, sink: number[], set: string): void {
    const key: KeySpec = { namespace: 'test', set, key: userKey };
    const off = (this.issued++ * 4099) % (64 * 1024);
    this.inflight++;
    const t0 = now();
    this.client.put(key, { v: this.pool.subarray(off, off + RECORD_BYTES) }).then(
      () => {
        const at = now();
        this.inflight--;
        this.acked++;
        this.latencies.push(at - t0);
        if (probe) this.prober.add(key, at, sink);
      },
      (err: unknown) => {
        this.inflight--;
        this.errors++;
        if (!this.firstError) this.firstError = (err as Error).message;
      },
    );
  }
}

// ------------------------------------------------------------------------------------ monitor

interface Sample {
  at: number;
  acked: number;
  applied: number;
  consumerLag: number;
  recordsBehind: number;
  appliedPerS: number;
  shippedPerS: number;
  shipped: number;
}

/** Samples receiver and shipper stats every SAMPLE_MS while running. */
class Monitor {
  samples: Sample[] = [];
  private running = true;
  private loop: Promise<void>;
  constructor(private readonly sites: BenchSites, private readonly writer: Writer, private readonly verbose = VERBOSE.on) {
    this.loop = this.run();
  }

  async stop(): Promise<Sample[]> {
    this.running = false;
    await this.loop;
    return this.samples;
  }

  private async run(): Promise<void> {
    while (this.running) {
      const t = now();
      try {
        const r = await this.sites.receiverStats();
        const x = await this.sites.xdrStats().catch(() => ({ streams: [] }));
        this.samples.push({
          at: t,
          acked: this.writer.acked,
          applied: r.applied,
          consumerLag: r.consumerLag,
          recordsBehind: x.streams.reduce((s, v) => s + v.recordsBehind, 0),
          appliedPerS: r.appliedPerS,
          shippedPerS: x.streams.reduce((s, v) => s + v.shippedPerS, 0),
          shipped: x.streams.reduce((s, v) => s + v.shipped, 0),
        });
        if (this.verbose && this.samples.length % 4 === 0) {
          const v = this.samples[this.samples.length - 1]!;
          const w = this.samples[this.samples.length - 5];
          const per = (f: (s: Sample) => number): number => (w ? Math.round(((f(v) - f(w)) * 1000) / (v.at - w.at)) : 0);
          console.log(
            `          t+${((v.at - this.samples[0]!.at) / 1000).toFixed(0)}s acked/s ${per((s) => s.acked)} shipped/s ${per((s) => s.shipped)} applied/s ${per((s) => s.applied)}` +
              ` | unshipped ${v.recordsBehind} consumer lag ${v.consumerLag} backlog ${v.acked - v.applied - (this.samples[0]!.acked - this.samples[0]!.applied)}`,
          );
        }
      } catch {
        // the receiver's endpoint is busy; try again next tick
      }
      await sleep(Math.max(0, SAMPLE_MS - (now() - t)));
    }
  }
}

// ------------------------------------------------------------------------------------ CPU

interface CpuMark {
  at: number;
  procs: number[];
  self: number;
  /** Machine-wide busy and idle CPU seconds (all cores), from /proc/stat. */
  busy: number;
  idle: number;
}

const CLOCK_TICKS_PER_S = 100;

function machineCpu(): { busy: number; idle: number } {
  try {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = (f[3] ?? 0) + (f[4] ?? 0);
    const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: (total - idle) / CLOCK_TICKS_PER_S, idle: idle / CLOCK_TICKS_PER_S };
  } catch {
    return { busy: NaN, idle: NaN };
  }
}

function cpuMark(sites: BenchSites): CpuMark {
  const u = process.cpuUsage();
  return { at: now(), procs: sites.procs.map((p) => p.cpuSeconds()), self: (u.user + u.system) / 1e6, ...machineCpu() };
}

/**
 * "broker 10%, A 80%, ..., others 90%, idle 5%": CPU in % of one core per process between two
 * marks; "others" is everything on the machine that is not this benchmark, "idle" what was left.
 */
function cpuReport(sites: BenchSites, from: CpuMark, to: CpuMark): string {
  const s = (to.at - from.at) / 1000;
  const pct = (x: number): number => Math.round((x * 100) / s);
  const ours = sites.procs.map((_, i) => to.procs[i]! - from.procs[i]!);
  const parts = sites.procs.map((p, i) => `${p.name.replace('node ', '')} ${pct(ours[i]!)}%`);
  const self = to.self - from.self;
  parts.push(`bench ${pct(self)}%`);
  const others = to.busy - from.busy - self - ours.reduce((a, b) => a + b, 0);
  if (Number.isFinite(others)) parts.push(`others ${Math.max(0, pct(others))}%`, `idle ${pct(to.idle - from.idle)}% (of ${cpus().length * 100}%)`);
  return parts.join(', ');
}

async function waitDrained(sites: BenchSites, prober: Prober, what: string): Promise<number> {
  const t0 = now();
  const end = t0 + DRAIN_TIMEOUT_MS;
  for (;;) {
    const ok = prober.outstanding === 0 && (await sites.drained().catch(() => false));
    if (ok) return now() - t0;
    if (now() > end) throw new BenchError(`timed out after ${DRAIN_TIMEOUT_MS} ms waiting for B to catch up (${what}); ${prober.outstanding} probes outstanding`);
    await sleep(100);
  }
}

/** Backlog (acknowledged on A minus applied on B since the phase began) of a sample. */
const backlogOf = (s: Sample, base: Sample): number => s.acked - base.acked - (s.applied - base.applied);

// ------------------------------------------------------------------------------------ phases

interface LagResult {
  rate: number;
  achievedPerS: number;
  reached: boolean;
  keptUp: boolean;
  p50: number;
  p99: number;
  max: number;
  probes: number;
  backlogEnd: number;
  drainMs: number;
  cpu: string;
  writeP50: number;
  writeP99: number;
}

/** Least-squares slope of the backlog over the second half of the samples, records/s. */
function backlogGrowthPerS(samples: Sample[], base: Sample): number {
  const half = samples.slice(Math.floor(samples.length / 2));
  if (half.length < 3) return 0;
  const xs = half.map((s) => s.at / 1000);
  const ys = half.map((s) => backlogOf(s, base));
  const mx = xs.reduce((a, b) => a + b, 0) / xs.length;
  const my = ys.reduce((a, b) => a + b, 0) / ys.length;
  let num = 0;
  let den = 0;
  xs.forEach((x, i) => {
    num += (x - mx) * (ys[i]! - my);
    den += (x - mx) ** 2;
  });
  return den > 0 ? num / den : 0;
}

/** Kept up: the backlog did not keep growing over the second half, or stayed under one second of writes. */
function keptUpWith(samples: Sample[], base: Sample, rate: number): boolean {
  const last = samples[samples.length - 1];
  if (!last) return true;
  return backlogGrowthPerS(samples, base) <= BACKLOG_GROWTH_SHARE * rate || backlogOf(last, base) <= rate;
}

async function lagPhase(sites: BenchSites, writer: Writer, prober: Prober, rate: number, durationS: number, prefix: string): Promise<LagResult> {
  const sink: number[] = [];
  const monitor = new Monitor(sites, writer);
  await sleep(SAMPLE_MS * 2);
  const c0 = cpuMark(sites);
  const w = await writer.run({ rate, durationMs: durationS * 1000, prefix, sink });
  const c1 = cpuMark(sites);
  const samples = await monitor.stop();
  const base = samples[0]!;
  const during = samples.filter((s) => s.at <= c1.at);
  const drainMs = await waitDrained(sites, prober, `${rate}/s`);
  sink.sort((x, y) => x - y);
  const writes = writer.latencies.sort((x, y) => x - y);
  const last = during[during.length - 1] ?? base;
  return {
    rate,
    achievedPerS: Math.round(w.achievedPerS),
    reached: w.achievedPerS >= REACHED_SHARE * rate,
    keptUp: keptUpWith(during, base, rate),
    p50: round1(percentile(sink, 0.5)),
    p99: round1(percentile(sink, 0.99)),
    max: round1(sink[sink.length - 1] ?? NaN),
    probes: sink.length,
    backlogEnd: backlogOf(last, base),
    drainMs: Math.round(drainMs),
    cpu: cpuReport(sites, c0, c1),
    writeP50: round1(percentile(writes, 0.5)),
    writeP99: round1(percentile(writes, 0.99)),
  };
}

interface CatchupResult {
  steadyPerS: number;
  outageS: number;
  backlogAtRestart: number;
  restartToFirstApplyS: number;
  catchupS: number;
  caughtUp: boolean;
  backlogEnd: number;
  catchupPerS: number;
  drainPerS: number;
  peakAppliedPerS: number;
  cpu: string;
}

async function catchupPhase(sites: BenchSites, writer: Writer, prober: Prober, steady: number, steadyS: number, outageS: number): Promise<CatchupResult> {
  const sink: number[] = [];
  const monitor = new Monitor(sites, writer);
  await sleep(SAMPLE_MS * 2);
  const prefix = 'c-';
  // One schedule for the whole phase, so the steady rate holds across the outage.
  let phase: 'steady' | 'outage' | 'catchup' | 'done' = 'steady';
  let stopWriting = false;
  const writing = writer.run({ rate: steady, durationMs: 3_600_000, prefix, sink, until: () => stopWriting });
  let restartAt = 0;
  let c0: CpuMark | undefined;
  let result: CatchupResult | undefined;
  try {
    await sleep(steadyS * 1000);
    console.log(`  steady ${steady}/s for ${steadyS} s; stopping the broker for ${outageS} s`);
    phase = 'outage';
    await sites.broker.stop('SIGTERM');
    await sleep(outageS * 1000);
    await sites.broker.start();
    restartAt = now();
    c0 = cpuMark(sites);
    phase = 'catchup';
    const base = monitor.samples[0]!;
    const atRestart = [...monitor.samples].reverse().find((s) => s.at <= restartAt) ?? base;
    const backlogAtRestart = backlogOf(atRestart, base);
    console.log(`  broker restarted; backlog ${backlogAtRestart} records`);
    const limitMs = Math.max(CATCHUP_LIMIT_MS, outageS * 1000 * CATCHUP_LIMIT_OUTAGES);
    let caughtAt: Sample | undefined;
    let firstApply: Sample | undefined;
    while (now() - restartAt < limitMs) {
      await sleep(SAMPLE_MS);
      const after = monitor.samples.filter((s) => s.at > restartAt);
      firstApply ??= after.find((s) => s.applied > atRestart.applied);
      caughtAt = after.find((s) => s.applied > atRestart.applied && backlogOf(s, base) <= steady * 0.5);
      if (caughtAt) break;
    }
    const c1 = cpuMark(sites);
    stopWriting = true;
    const end = caughtAt ?? monitor.samples[monitor.samples.length - 1]!;
    const catchupS = (end.at - restartAt) / 1000;
    const drainS = firstApply ? (end.at - firstApply.at) / 1000 : NaN;
    const during = monitor.samples.filter((s) => s.at > restartAt && s.at <= end.at);
    result = {
      steadyPerS: steady,
      outageS,
      backlogAtRestart,
      restartToFirstApplyS: firstApply ? round1((firstApply.at - restartAt) / 1000) : NaN,
      catchupS: round1(catchupS),
      caughtUp: caughtAt !== undefined,
      backlogEnd: backlogOf(end, base),
      catchupPerS: Math.round((end.applied - atRestart.applied) / catchupS),
      drainPerS: firstApply && drainS > 0 ? Math.round((end.applied - firstApply.applied) / drainS) : NaN,
      peakAppliedPerS: Math.max(0, ...during.map((s) => s.appliedPerS)),
      cpu: cpuReport(sites, c0, c1),
    };
  } finally {
    stopWriting = true;
    await writing;
    await monitor.stop();
    if (phase === 'outage' && !sites.broker.running) await sites.broker.start().catch(() => undefined);
  }
  await waitDrained(sites, prober, 'catch-up');
  if (!result) throw new BenchError('catch-up phase ended without a result');
  return result;
}

/** Ordinary writes, then RPO-0 writes (set RPO0_SET), at one rate: put latency p50/p99 of each. */
async function rpo0Phase(sites: BenchSites, writer: Writer, prober: Prober, rate: number, durationS: number, out: Record<string, unknown>): Promise<void> {
  console.log(`\nRPO 0: put latency at ${rate} writes/s for ${durationS} s each (FerryClient to A, ${RECORD_BYTES} B records), ordinary writes then set "${RPO0_SET}" (rpo0-sets: acknowledged once in Kafka)`);
  const measure = async (set: string, prefix: string): Promise<{ p50: number; p99: number; achieved: number; errors: number; cpuMsPerWrite: number; cpu: string }> => {
    const errors0 = writer.errors;
    const from = cpuMark(sites);
    const w = await writer.run({ rate, durationMs: durationS * 1000, prefix, sink: [], set });
    // Diagnostics: CPU of this benchmark's processes (and of the bench itself) while writing; the
    // shipping and applying that trails the writes is left out.
    const to = cpuMark(sites);
    const ours = sites.procs.reduce((a, _, i) => a + to.procs[i]! - from.procs[i]!, 0) + to.self - from.self;
    const lat = writer.latencies.sort((x, y) => x - y);
    await waitDrained(sites, prober, `${set} writes`);
    return {
      p50: round1(percentile(lat, 0.5)), p99: round1(percentile(lat, 0.99)), achieved: Math.round(w.achievedPerS), errors: writer.errors - errors0,
      cpuMsPerWrite: round1((ours * 1000) / Math.max(1, lat.length)), cpu: cpuReport(sites, from, to),
    };
  };
  const normal = await measure('bench', 'n0-');
  const rpo0 = await measure(RPO0_SET, 'z0-');
  out.rpo0_rate = rate;
  out.normal_write_p50_ms = normal.p50;
  out.normal_write_p99_ms = normal.p99;
  out.rpo0_write_p50_ms = rpo0.p50;
  out.rpo0_write_p99_ms = rpo0.p99;
  out.rpo0_write_errors = rpo0.errors;
  out.normal_cpu_ms_per_write = normal.cpuMsPerWrite;
  out.rpo0_cpu_ms_per_write = rpo0.cpuMsPerWrite;
  console.log(`  ordinary: p50 ${normal.p50} ms, p99 ${normal.p99} ms (achieved ${normal.achieved}/s, ${normal.errors} errors)`);
  console.log(`  RPO 0:    p50 ${rpo0.p50} ms, p99 ${rpo0.p99} ms (achieved ${rpo0.achieved}/s, ${rpo0.errors} errors)   (goal p99 <= ${GOALS.rpo0WriteP99Ms} ms: ${rpo0.p99 <= GOALS.rpo0WriteP99Ms ? 'met' : 'MISSED'})`);
  console.log(`  CPU while writing, ordinary: ${normal.cpuMsPerWrite} ms per write (${normal.cpu})`);
  console.log(`  CPU while writing, RPO 0:    ${rpo0.cpuMsPerWrite} ms per write (${rpo0.cpu})`);
}

/** Failover under steady writes, then (records > 0) the failback of a loaded data set with 1% changed on B. */
async function drPhases(sites: BenchSites, writer: Writer, steadyRate: number, records: number, out: Record<string, unknown>): Promise<void> {
  if (records > 0) {
    console.log(`\nloading ${records} records of ${LOAD_RECORD_BYTES} B into A (set "fb") for the failback ...`);
    const l = await loadPhase(sites, records);
    out.failback_records = records;
    console.log(`  loaded in ${(l.loadMs / 1000).toFixed(1)} s (${l.recordsPerS}/s), on B ${(l.shippedMs / 1000).toFixed(1)} s later`);
  }
  console.log(`\nfailover: ${steadyRate} writes/s on A for ${FAILOVER_STEADY_S} s, then kill -9 of every node of A, then ferry failover (the CLI)`);
  let stop = false;
  const errors0 = writer.errors;
  // No probes: writes A acknowledged but never shipped would be polled for on B until the end.
  const writing = writer.run({ rate: steadyRate, durationMs: 3_600_000, prefix: 'fo-', sink: [], until: () => stop, noProbes: true });
  const f = await failoverPhase(sites, { stop: async () => { stop = true; await writing; } }, FAILOVER_STEADY_S).finally(() => {
    stop = true;
  });
  await writing;
  // Writes in flight at the kill fail: expected here, reported apart from the run's write errors.
  out.failover_cut_writes = writer.errors - errors0;
  writer.errors = errors0;
  out.failover_rto_s = f.rtoS;
  out.failover_command_done_s = f.commandDoneS;
  out.failover_reported_rpo_ms = f.reportedRpoMs;
  out.failover_reported_rto_ms = f.reportedRtoMs;
  out.failover_drain_completed = f.drainCompleted;
  console.log(`  ${f.argv.join(' ')}`);
  console.log(`  failover_rto_s ${f.rtoS} s from the kill to the first write B acknowledged (${f.rtoTries} tries)   (goal <= ${GOALS.failoverRtoS} s: ${f.rtoS <= GOALS.failoverRtoS ? 'met' : 'MISSED'})`);
  out.failover_command_ms = f.commandMs;
  out.failover_drain_waited_ms = f.drainWaitedMs;
  console.log(`  the command: exited ${f.commandDoneS} s after the kill (A's processes gone ${(f.killMs / 1000).toFixed(1)} s after it; the command's own run ${(f.commandMs / 1000).toFixed(1)} s,` +
    ` CLI start-up included, ${(f.drainWaitedMs / 1000).toFixed(1)} s of it draining the receiver); ${f.promoted} nodes promoted;` +
    ` reported RPO ${f.reportedRpoMs === null ? 'unknown' : `${f.reportedRpoMs} ms`}, RTO ${f.reportedRtoMs} ms (from --outage-start = the kill), drain ${f.drainCompleted ? 'completed' : 'NOT completed'}`);
  if (records === 0) return;
  console.log(`\nfailback: ${FAILBACK_CHANGED_SHARE * 100}% of the ${records} records changed on B, A restarted, then ferry failback (the CLI)`);
  const b = await failbackPhase(sites, records, FAILBACK_CHANGED_SHARE);
  out.failback_s = b.failbackS;
  out.failback_changed_on_b = b.changedOnB;
  out.failback_copied_to_a = b.copiedToA;
  out.failback_copied_b_writes = b.copiedBWrites;
  out.failback_receiver_applied_to_a = b.receiverAppliedToA;
  out.failback_unshipped_listed = b.unshipped;
  out.failback_equal = b.equal;
  out.failback_switchover_write_outage_ms = b.switchoverWriteOutageMs;
  const reshipped = b.copiedToA + b.receiverAppliedToA;
  out.failback_reshipped_share_pct = round1((reshipped * 100) / records);
  console.log(`  ${b.argv.join(' ')}`);
  console.log(`  ${b.changedOnB} records changed on B in ${(b.changeMs / 1000).toFixed(1)} s; A back as one cluster and its receiver up in ${(b.restartMs / 1000).toFixed(1)} s (not in failback_s)`);
  console.log(`  failback_s ${b.failbackS} s from starting ferry failback until it exited, verify ${b.equal ? 'EQUAL' : 'NOT EQUAL'}   (goal <= ${GOALS.failbackS} s: ${b.failbackS <= GOALS.failbackS && b.equal ? 'met' : 'MISSED'})`);
  console.log(`  re-shipped to A: ${reshipped} records = ${out.failback_reshipped_share_pct}% of ${records} (receiver of B's topic applied ${b.receiverAppliedToA}, levelling by checksums copied ${b.copiedToA}, of them ${b.copiedBWrites} written by B's clients and not delivered by B->A);` +
    ` ${b.unshipped} unshipped writes of A listed${b.truncated ? ' (TRUNCATED)' : ''}; switchover write outage ${b.switchoverWriteOutageMs ?? '?'} ms`);
  if (VERBOSE.on) console.log(b.stepsText.replace(/^/gm, '    '));
}

// ------------------------------------------------------------------------------------ main

export async function main(argv: string[]): Promise<void> {
  const args = new BenchArgs(argv);
  const kafka = args.str('kafka', 'embedded');
  if (kafka !== 'embedded' && kafka !== 'apache') throw new BenchError('--kafka is embedded or apache');
  // `--kafka apache`: the whole run through ferry's broker, then again through Apache Kafka.
  const kinds: Array<'embedded' | 'apache'> = kafka === 'apache' ? ['embedded', 'apache'] : ['embedded'];
  const results: Array<Record<string, unknown>> = [];
  for (const kind of kinds) {
    if (kinds.length > 1) console.log(`\n=== XDR through ${kind === 'apache' ? 'Apache Kafka (1 KRaft node, scripts/kafka)' : 'the embedded broker'} ===`);
    results.push(await runOnce(args, kind));
  }
  if (results.length > 1) {
    const keys = Object.keys(results[0]!).filter((k) => /^(lag_p50|lag_p99|max_sustained_records|catchup_records|catchup_vs|steady_records|others_cpu)/.test(k));
    console.log('\nside by side (same machine, one after the other):');
    console.log(`  ${'figure'.padEnd(32)} ${'embedded'.padStart(10)} ${'apache'.padStart(10)}`);
    for (const k of keys) console.log(`  ${k.padEnd(32)} ${String(results[0]![k]).padStart(10)} ${String(results[1]![k]).padStart(10)}`);
  }
}

async function runOnce(args: BenchArgs, kafka: 'embedded' | 'apache'): Promise<Record<string, unknown>> {
  const quick = args.has('quick');
  VERBOSE.on = args.has('verbose');
  const durationS = numArg(args, 'duration-s', quick ? 6 : 20);
  const outageS = numArg(args, 'outage-s', quick ? 10 : 60);
  const steadyArg = numArg(args, 'steady-rate', STEADY_RATE_DEFAULT);
  const compression = args.value('compression');
  if (compression !== undefined && compression !== 'gzip' && compression !== 'none') throw new BenchError('--compression is gzip or none');
  const rampStepS = numArg(args, 'ramp-step-s', quick ? 5 : 10);
  const rates = args.value('rates')?.split(',').map(Number) ?? [1000, 5000, 20_000];
  const nodes = args.num('nodes', NODES_DEFAULT, 1);
  if (!Number.isInteger(nodes) || nodes > 8) throw new BenchError('--nodes needs a whole number from 1 to 8');
  const failbackRecords = args.num('failback-records', FAILBACK_RECORDS_DEFAULT, 100);
  const rpo0Rate = numArg(args, 'rpo0-rate', RPO0_RATE_DEFAULT);
  const phaseList = args.value('phases')?.split(',') ?? [...PHASES];
  const unknown = phaseList.filter((p) => !(PHASES as readonly string[]).includes(p));
  if (unknown.length > 0) throw new BenchError(`--phases: unknown ${unknown.join(', ')} (known: ${PHASES.join(', ')})`);
  const phases = new Set(phaseList as Phase[]);
  if (phases.has('failback') && !phases.has('failover')) throw new BenchError('--phases: failback needs failover (it brings A back after the failover)');
  const dr = phases.has('failover');
  if (rates.some((r) => !Number.isFinite(r) || r <= 0)) throw new BenchError('--rates needs a comma-separated list of positive numbers');

  let sites: BenchSites | undefined;
  const onSignal = (sig: NodeJS.Signals): void => {
    console.error(`\n${sig}: stopping the sites`);
    sites?.closeNow();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const onExit = (): void => sites?.closeNow();
  process.once('exit', onExit);

  const out: Record<string, unknown> = { bench: 'xdr', date: new Date().toISOString(), duration_s: durationS, record_bytes: RECORD_BYTES };
  let prober: Prober | undefined;
  try {
    const siteText = nodes > 1 ? `site A (${nodes} nodes, shipping to B), site B (${nodes} nodes, fenced)` : 'node A (shipping to B), node B (fenced)';
    console.log(`starting ${kafka === 'apache' ? 'Apache Kafka' : 'the broker'}, ${siteText} and a receiver${dr ? ', B shipping to A and a receiver of that topic into A' : ''} ...`);
    sites = await startBenchSites({
      writeConnections: WRITES_IN_FLIGHT_MAX, storeBytes: STORE_BYTES, kafka, nodes, shipBack: dr, ...(phases.has('rpo0') ? { rpo0Sets: [RPO0_SET] } : {}), ...(compression ? { compression } : {}),
    });
    out.kafka = kafka;
    out.nodes_per_site = nodes;
    out.phases = [...phases].join(',');
    out.load_avg_start = round1(loadavg()[0]!);
    out.compression = compression ?? 'none (default)';
    prober = new Prober(sites.clientB);
    const writer = new Writer(sites.clientA, prober);

    const runStart = cpuMark(sites);
    // Warm-up: producer and consumer connected, topic created, JIT warm.
    await writer.run({ rate: 1000, durationMs: WARMUP_MS, prefix: 'w-', sink: [] });
    await waitDrained(sites, prober, 'warm-up');

    if (phases.has('lag')) console.log(`\nlag from acknowledgement on A to apply on B, ${RECORD_BYTES} B records, ${durationS} s per rate`);
    for (const rate of phases.has('lag') ? rates : []) {
      const r = await lagPhase(sites, writer, prober, rate, durationS, `l${rate}-`);
      const tag = rate % 1000 === 0 ? `${rate / 1000}k` : String(rate);
      out[`lag_p50_ms_${tag}`] = r.p50;
      out[`lag_p99_ms_${tag}`] = r.p99;
      out[`lag_max_ms_${tag}`] = r.max;
      out[`achieved_records_per_s_${tag}`] = r.achievedPerS;
      out[`sustained_${tag}`] = r.reached && r.keptUp;
      const goal = rate === 5000 ? `   (goal p99 <= ${GOALS.lagP99Ms5k} ms: ${r.p99 <= GOALS.lagP99Ms5k ? 'met' : 'MISSED'})` : '';
      const verdict = !r.reached
        ? `  NOT SUSTAINED: the writer reached only ${r.achievedPerS}/s`
        : !r.keptUp
          ? `  NOT SUSTAINED: B fell behind (backlog ${r.backlogEnd} records at the end, drained in ${(r.drainMs / 1000).toFixed(1)} s)`
          : '';
      console.log(`${String(rate).padStart(6)}/s: p50 ${r.p50} ms, p99 ${r.p99} ms, max ${r.max} ms (${r.probes} probes), achieved ${r.achievedPerS}/s${goal}${verdict}`);
      console.log(`        put latency on A p50 ${r.writeP50} ms, p99 ${r.writeP99} ms; cpu: ${r.cpu}`);
    }
    if (phases.has('lag')) {
      out.probe_poll_ms = round1(prober.meanPollMs);
      console.log(`        (probe resolution: one poll every ${out.probe_poll_ms} ms on average, plus a read round trip)`);
    }

    if (phases.has('ramp')) console.log(`\nramp: ${rampStepS} s per step until B falls behind or the writer cannot reach the rate`);
    let best = 0;
    let limit = `kept up with every step up to ${RAMP_RATES[RAMP_RATES.length - 1]}/s`;
    for (const rate of phases.has('ramp') ? RAMP_RATES : []) {
      const r = await lagPhase(sites, writer, prober, rate, rampStepS, `r${rate}-`);
      const ok = r.reached && r.keptUp;
      console.log(`${String(rate).padStart(6)}/s: achieved ${r.achievedPerS}/s, backlog at end ${r.backlogEnd}, p99 ${r.p99} ms -> ${ok ? 'kept up' : r.reached ? 'B FELL BEHIND' : 'WRITER SHORT'}   cpu: ${r.cpu}`);
      if (!ok) {
        limit = r.reached ? `B fell behind at ${rate}/s` : `A's writer reached only ${r.achievedPerS}/s of ${rate}/s`;
        break;
      }
      best = rate;
    }
    if (phases.has('ramp')) {
      out.max_sustained_records_per_s = best;
      out.max_sustained_limit = limit;
      console.log(`max sustained: ${best} records/s (${limit})`);
    }

    const steady = steadyArg;
    if (phases.has('catchup')) {
    console.log(`\ncatch-up after a ${outageS} s broker outage at ${steady} records/s`);
    const c = await catchupPhase(sites, writer, prober, steady, Math.min(10, durationS), outageS);
    out.steady_records_per_s = c.steadyPerS;
    out.outage_s = c.outageS;
    out.catchup_records_per_s = c.catchupPerS;
    out.catchup_vs_steady = round1(c.catchupPerS / c.steadyPerS);
    out.catchup_s = c.catchupS;
    out.caught_up = c.caughtUp;
    if (!c.caughtUp) out.catchup_backlog_end = c.backlogEnd;
    out.backlog_at_restart = c.backlogAtRestart;
    out.restart_to_first_apply_s = c.restartToFirstApplyS;
    out.drain_records_per_s = c.drainPerS;
    out.peak_applied_per_s = c.peakAppliedPerS;
    const ratio = c.catchupPerS / c.steadyPerS;
    console.log(
      `catch-up: ${c.catchupPerS} records/s over ${c.catchupS} s (${c.caughtUp ? 'caught up' : `DID NOT CATCH UP, backlog still ${c.backlogEnd}`}; backlog ${c.backlogAtRestart} at restart,` +
        ` first apply ${c.restartToFirstApplyS} s after restart, ${c.drainPerS}/s from then, peak ${c.peakAppliedPerS}/s)` +
        ` vs steady ${c.steadyPerS}/s = ${round1(ratio)}x   (goal >= ${GOALS.catchupVsSteady}x: ${ratio >= GOALS.catchupVsSteady ? 'met' : 'MISSED'})`,
    );
    console.log(`        cpu during catch-up: ${c.cpu}`);
    }

    if (phases.has('rpo0')) await rpo0Phase(sites, writer, prober, rpo0Rate, durationS, out);
    if (dr) await drPhases(sites, writer, steady, phases.has('failback') ? failbackRecords : 0, out);
    const runEnd = cpuMark(sites);
    const runS = (runEnd.at - runStart.at) / 1000;
    const oursS = runEnd.procs.reduce((a, b, i) => a + b - runStart.procs[i]!, 0) + runEnd.self - runStart.self;
    out.others_cpu_pct = Math.max(0, Math.round(((runEnd.busy - runStart.busy - oursS) * 100) / runS));
    out.idle_cpu_pct = Math.round(((runEnd.idle - runStart.idle) * 100) / runS);
    out.machine_cpu_pct = cpus().length * 100;
    console.log(`\nwhole run: other processes on this machine used ${out.others_cpu_pct}% CPU and ${out.idle_cpu_pct}% stayed idle, of ${out.machine_cpu_pct}%` +
      (Number(out.others_cpu_pct) > 20 ? '  -- the machine was NOT free; figures are lower than on an idle machine' : ''));
    out.load_avg_end = round1(loadavg()[0]!);
    out.probes_lost = prober.lost;
    out.write_errors = writer.errors;
    if (writer.errors > 0) console.log(`write errors on A: ${writer.errors} (first: ${writer.firstError})`);
  } finally {
    await prober?.stop();
    await sites?.close();
    sites = undefined;
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', onExit);
  }
  console.log(JSON.stringify(out));
  return out;
}
