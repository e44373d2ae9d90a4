/**
 * `ferry demo`: two sites replicating through Kafka on one machine, under a steady workload,
 * with a live view of lag and throughput, and a final `ferry verify`.
 *
 * 1. Starts the embedded broker, site A (device storage, shipping to B), site B (device storage,
 *    fenced: passive) and a receiver applying A's topic to B, each node as its own `ferry`
 *    process on ports counted up from the base port (a taken port is replaced by a free one).
 *    Each site is a cluster of `nodes` nodes (3 by default, joined by heartbeats, replication
 *    factor 2; each A node ships the partitions it masters); with 1 node, a lone node each. Children run
 *    in their own process group, so a terminal's Ctrl-C reaches only the demo, which then stops
 *    them in order; their output goes to <data>/logs/<name>.log.
 * 2. Drives writes, updates, deletes, TTL writes and a hot counter on A at a steady rate.
 * 3. Samples A's `xdr-stats` and the receiver's /stats every second: a terminal view (redrawn in
 *    place on a TTY, one line per second otherwise) and the dashboard's time series.
 * 4. On Ctrl-C or after the duration: stops the workload, waits (bounded) until every A node has
 *    shipped everything and the receiver applied it, compares the whole sites A and B
 *    (ops/verify.ts: every partition from its master), stops the
 *    children with SIGTERM. Exit status: 0 the sites are equal, 1 they differ (or were not
 *    compared), 2 the demo could not start.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, fstatSync, mkdirSync, openSync, readFileSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ReceiverStats } from '../receiver/receiver.js';
import { FerryClient, ops, type KeySpec } from '../store/index.js';
import { startDashboard, type Dashboard, type DashboardState } from './dashboard.js';
import { parseXdrStats } from './lag.js';
import { EXIT_ERROR, NodeConn, errorText, formatDurationMs, getJson, parseKv, sleep } from './util.js';
import { formatReport, verifySites, type VerifyReport } from './verify.js';
import { freePort } from './free-port.js';

export const DEMO_RATE_PER_S_DEFAULT = 500;
export const DEMO_BASE_PORT_DEFAULT = 3000;
export const DEMO_DASHBOARD_PORT_DEFAULT = 8080;
export const DEMO_DATA_DEFAULT = './data/demo';
/** Nodes per site. */
export const DEMO_NODES_DEFAULT = 3;
export const DEMO_NODES_MAX = 5;
/** Longest wait for each site's nodes to agree on one cluster after they started. */
export const CLUSTER_FORM_TIMEOUT_MS = 30_000;
export const DEMO_NAMESPACE = 'test';
export const DEMO_SET = 'demo';
/** Distinct keys the workload touches (plus the hot key). */
export const DEMO_KEYS = 10_000;
/** Workload operations in flight at once; above it the rate is not reached (and not caught up). */
export const WORKLOAD_IN_FLIGHT_MAX = 512;
/** Connections of the workload client to site A (one command in flight on each). */
export const WORKLOAD_CONNECTIONS_MAX = 128;
/** Increments of the hot key in flight at once: below the store's per-key queue limit (KEY_BUSY). */
export const HOT_KEY_IN_FLIGHT_MAX = 8;
/** Workload scheduling tick. */
export const WORKLOAD_TICK_MS = 20;
/** Operations owed from late ticks are issued up to this much time's worth. */
export const WORKLOAD_BURST_MS = 250;
/** TTL writes live this long (s), drawn uniformly. */
export const WORKLOAD_TTL_S_MIN = 30;
export const WORKLOAD_TTL_S_MAX = 300;
/** Sampling and terminal refresh interval. */
export const SAMPLE_INTERVAL_MS = 1000;
/** Samples kept for the dashboard (10 minutes). */
export const SAMPLES_MAX = 600;
/** A child gets this long to print its ready line. */
export const CHILD_START_TIMEOUT_MS = 60_000;
/** After SIGTERM, this long before SIGKILL. */
export const CHILD_STOP_TIMEOUT_MS = 15_000;
/** Longest wait for a previous demo's leftover processes to be gone after SIGKILL. */
export const LEFTOVER_EXIT_TIMEOUT_MS = 5000;
/** How often a starting child's log is read for its ready line. */
export const CHILD_READY_POLL_MS = 50;
/** Bytes of a starting child's output searched for its ready line. */
export const CHILD_READY_SCAN_BYTES = 1024 * 1024;
/** Bytes of a child's output shown in error messages. */
export const CHILD_OUTPUT_TAIL_BYTES = 4096;
/** Longest wait for shipping and applying to catch up after the workload stops. */
export const CATCHUP_TIMEOUT_MS = 60_000;
/** Verify re-checks differences after this wait (writes in flight, expirations). */
export const VERIFY_RECHECK_MS = 2000;
/** Per-request timeout of the stats requests. */
export const STATS_TIMEOUT_MS = 2000;
/** Bytes per device file of each site. */
export const SITE_FILE_BYTES = 256 * 1024 * 1024;
/** Longest the process lingers after the demo finished (handles not released). */
export const EXIT_GRACE_MS = 5000;

export const EXIT_EQUAL = 0;
export const EXIT_DIFFERENT = 1;

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const FERRY_BIN = join(ROOT, 'bin', 'ferry.mjs');
const HOST = '127.0.0.1';
const TOPIC = `ferry.A.${DEMO_NAMESPACE}`;
const GROUP_ID = 'ferry-demo-B';
/** Terminal: cursor home, clear to the end of the screen. */
const REDRAW = '\x1b[H\x1b[J';

export type DemoErrorCode = 'USAGE' | 'START' | 'INTERRUPTED';

export class DemoError extends Error {
  constructor(
    readonly code: DemoErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'DemoError';
  }
}

export interface DemoOptions {
  data: string;
  ratePerS: number;
  /** Stop by itself after this long; undefined = until Ctrl-C. */
  durationS?: number;
  basePort: number;
  dashboardPort: number;
  /** Delete the data directory first. */
  fresh: boolean;
  /** Nodes per site (default DEMO_NODES_DEFAULT). */
  nodes?: number;
}

export interface DemoIo {
  out: (s: string) => void;
  err: (s: string) => void;
  /** Redraw the view in place (a terminal). */
  tty: boolean;
  /** Subscribes to Ctrl-C / SIGTERM; returns the unsubscribe. */
  onSignal: (handler: () => void) => () => void;
}

// ---------------------------------------------------------------- ports

/** True when `port` can be listened on at 127.0.0.1 right now. */
async function portFree(port: number): Promise<boolean> {
  return new Promise((resolvePort) => {
    const s = net.createServer();
    s.once('error', () => resolvePort(false));
    s.listen(port, HOST, () => s.close(() => resolvePort(true)));
  });
}

const anyFreePort = (): Promise<number> => freePort(HOST);

/** `preferred` when free (and not already given out), else any free port. */
export async function pickPort(preferred: number, taken: Set<number>): Promise<number> {
  let port = preferred > 0 && preferred <= 65535 && !taken.has(preferred) && (await portFree(preferred)) ? preferred : 0;
  while (port === 0 || taken.has(port)) port = await anyFreePort();
  taken.add(port);
  return port;
}

export interface DemoPorts {
  /** The first node of each site. */
  a: number;
  b: number;
  broker: number;
  receiver: number;
  dashboard: number;
  /** Every node's service port (the first is a / b) and heartbeat port, per site (clusters only). */
  aNodes?: number[];
  bNodes?: number[];
  aHeartbeat?: number[];
  bHeartbeat?: number[];
}

/**
 * A = base, B = base+1, broker = base+2, receiver admin = base+3; with clusters, the other A
 * nodes, then the other B nodes, then every node's heartbeat port follow; the dashboard its own.
 */
export async function pickPorts(basePort: number, dashboardPort: number, nodes = 1): Promise<DemoPorts> {
  const taken = new Set<number>();
  const p: DemoPorts = {
    a: await pickPort(basePort, taken),
    b: await pickPort(basePort + 1, taken),
    broker: await pickPort(basePort + 2, taken),
    receiver: await pickPort(basePort + 3, taken),
    dashboard: await pickPort(dashboardPort, taken),
  };
  if (nodes > 1) {
    let next = basePort + 4;
    const more = async (n: number): Promise<number[]> => {
      const out: number[] = [];
      for (let i = 0; i < n; i++) out.push(await pickPort(next++, taken));
      return out;
    };
    p.aNodes = [p.a, ...(await more(nodes - 1))];
    p.bNodes = [p.b, ...(await more(nodes - 1))];
    p.aHeartbeat = await more(nodes);
    p.bHeartbeat = await more(nodes);
  }
  return p;
}

/** Service ports of a site's nodes. */
function sitePorts(ports: DemoPorts, site: 'a' | 'b'): number[] {
  return (site === 'a' ? ports.aNodes : ports.bNodes) ?? [ports[site]];
}

// ---------------------------------------------------------------- child processes

/**
 * A `ferry <command>` child in its own process group. Its stdout and stderr go straight to a log
 * file (not through the demo: a child outlives a demo that was killed without dying of a broken
 * pipe, and the next demo stops it cleanly); the ready line is looked for in that file.
 */
class DemoChild {
  private proc: ChildProcess | undefined;
  /** Where this start's output begins in the log file. */
  private logStart = 0;

  constructor(
    readonly name: string,
    private readonly args: string[],
    private readonly ready: RegExp,
    readonly logFile: string,
  ) {}

  get pid(): number | undefined {
    return this.proc?.pid;
  }

  get running(): boolean {
    return this.proc !== undefined && this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** What it printed since it was started: the first `maxBytes` (ready line) or the last (errors). */
  output(part: 'head' | 'tail' = 'tail', maxBytes = CHILD_OUTPUT_TAIL_BYTES): string {
    let fd: number | undefined;
    try {
      fd = openSync(this.logFile, 'r');
      const size = fstatSync(fd).size;
      const from = part === 'head' ? this.logStart : Math.max(this.logStart, size - maxBytes);
      const buf = Buffer.alloc(Math.max(0, Math.min(maxBytes, size - from)));
      const n = readSync(fd, buf, 0, buf.length, from);
      return buf.subarray(0, n).toString().trim();
    } catch {
      return '';
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
  }

  async start(): Promise<void> {
    appendFileSync(this.logFile, `\n--- ${new Date().toISOString()} ferry ${this.args.join(' ')}\n`);
    this.logStart = statSync(this.logFile).size;
    const fd = openSync(this.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, [FERRY_BIN, ...this.args], {
        cwd: ROOT,
        // The IPC channel is only a lifeline: a child whose demo is gone (even killed with -9) stops itself.
        stdio: ['ignore', fd, fd, 'ipc'],
        env: { ...process.env, FORCE_COLOR: '0' },
        // Own process group: Ctrl-C in the terminal reaches the demo only; it stops the children in order.
        detached: true,
      });
    } finally {
      closeSync(fd);
    }
    // The parent's end of the lifeline never keeps the demo alive.
    child.channel?.unref();
    this.proc = child;
    let exited: string | undefined;
    let spawnError: Error | undefined;
    child.once('exit', (code, signal) => (exited = String(code ?? signal)));
    child.once('error', (err) => (spawnError = err));
    const end = Date.now() + CHILD_START_TIMEOUT_MS;
    for (;;) {
      if (this.ready.test(this.output('head', CHILD_READY_SCAN_BYTES))) return;
      if (spawnError) throw new DemoError('START', `${this.name}: ${spawnError.message}`);
      if (exited !== undefined) throw new DemoError('START', `${this.name} exited (${exited}) before it was ready (log ${this.logFile}):\n${this.output()}`);
      if (Date.now() > end) {
        child.kill('SIGKILL');
        throw new DemoError('START', `${this.name} did not get ready within ${CHILD_START_TIMEOUT_MS} ms (log ${this.logFile}):\n${this.output()}`);
      }
      await sleep(CHILD_READY_POLL_MS);
    }
  }

  /** SIGTERM, then SIGKILL after CHILD_STOP_TIMEOUT_MS; resolves with how it ended. */
  async stop(): Promise<string> {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return p ? `already exited (${p.exitCode ?? p.signalCode})` : 'not started';
    const exited = new Promise<string>((resolveExit) => p.once('exit', (code, signal) => resolveExit(code !== null ? `exit ${code}` : `signal ${signal}`)));
    p.kill('SIGTERM');
    let killed = false;
    const timer = setTimeout(() => {
      killed = true;
      p.kill('SIGKILL');
    }, CHILD_STOP_TIMEOUT_MS);
    const how = await exited;
    clearTimeout(timer);
    return killed ? `${how} (killed after ${CHILD_STOP_TIMEOUT_MS} ms)` : how;
  }

  /** Last resort when the demo itself exits without stopping it: asks it to shut down cleanly. */
  stopNow(): void {
    if (this.running) this.proc!.kill('SIGTERM');
  }
}

/**
 * Children stop in these groups, one group after the other: the receiver writes to B and reads
 * the broker. A name is in a group when it starts with one of the group's prefixes (site A1...).
 */
const STOP_ORDER: readonly string[][] = [['receiver'], ['site A', 'site B'], ['broker']];
const inGroup = (group: readonly string[], name: string): boolean => group.some((g) => name === g || name.startsWith(g));
const inAnyGroup = (name: string): boolean => STOP_ORDER.some((g) => inGroup(g, name));

interface PidEntry {
  name: string;
  pid: number;
}

/**
 * Stops the children a previous demo on this data directory left running (that demo was killed
 * itself), in STOP_ORDER: SIGTERM, so they shut down cleanly, SIGKILL after CHILD_STOP_TIMEOUT_MS.
 */
async function stopLeftovers(pidFile: string): Promise<{ stopped: number; killed: number }> {
  const result = { stopped: 0, killed: 0 };
  if (!existsSync(pidFile) || !existsSync('/proc')) return result;
  let entries: PidEntry[] = [];
  try {
    entries = (JSON.parse(readFileSync(pidFile, 'utf8')) as { children?: PidEntry[] }).children ?? [];
  } catch {
    return result;
  }
  const alive = (pid: number): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  const signal = (pid: number, sig: NodeJS.Signals): void => {
    try {
      process.kill(pid, sig);
    } catch {
      // already gone
    }
  };
  // Only a ferry process started for this data directory: the pid may have been reused.
  const ours = entries.filter((e) => {
    try {
      const cmd = readFileSync(`/proc/${e.pid}/cmdline`, 'utf8');
      return cmd.includes('ferry.mjs') && cmd.includes(resolve(pidFile, '..'));
    } catch {
      return false;
    }
  });
  result.stopped = ours.length;
  const groups = [...STOP_ORDER.map((g) => ours.filter((e) => inGroup(g, e.name))), ours.filter((e) => !inAnyGroup(e.name))];
  for (const group of groups) {
    const pids = group.map((e) => e.pid);
    for (const pid of pids) signal(pid, 'SIGTERM');
    const termEnd = Date.now() + CHILD_STOP_TIMEOUT_MS;
    while (pids.some(alive) && Date.now() < termEnd) await sleep(50);
    for (const pid of pids.filter(alive)) {
      signal(pid, 'SIGKILL');
      result.killed++;
    }
    const killEnd = Date.now() + LEFTOVER_EXIT_TIMEOUT_MS;
    while (pids.some(alive) && Date.now() < killEnd) await sleep(50);
  }
  return result;
}

// ---------------------------------------------------------------- workload

export interface WorkloadCounts {
  ops: number;
  puts: number;
  updates: number;
  deletes: number;
  ttlPuts: number;
  hot: number;
  errors: number;
  lastError: string;
}

/** A seeded generator (LCG), so a run's key sequence is reproducible. */
function random(seed: number): () => number {
  let x = seed >>> 0;
  return () => {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    return x / 4294967296;
  };
}

/** Steady operations on site A: writes, updates, deletes, TTL writes and a hot counter. */
export class Workload {
  readonly counts: WorkloadCounts = { ops: 0, puts: 0, updates: 0, deletes: 0, ttlPuts: 0, hot: 0, errors: 0, lastError: '' };
  private inFlight = 0;
  private allowance = 0;
  private timer: NodeJS.Timeout | undefined;
  private last = 0;
  private seq = 0;
  private readonly rnd = random(Date.now());
  private idle: Array<() => void> = [];
  private hotInFlight = 0;

  constructor(
    private readonly client: FerryClient,
    private readonly ratePerS: number,
  ) {}

  start(): void {
    this.last = Date.now();
    this.timer = setInterval(() => this.tick(), WORKLOAD_TICK_MS);
  }

  /** Stops issuing operations; resolves once those in flight finished. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.inFlight === 0) return;
    await new Promise<void>((r) => this.idle.push(r));
  }

  private tick(): void {
    const now = Date.now();
    // Late ticks are made up for, but at most WORKLOAD_BURST_MS worth: a site that was slow is not hit with a burst afterwards.
    this.allowance = Math.min(this.allowance + ((now - this.last) * this.ratePerS) / 1000, Math.max(1, (this.ratePerS * WORKLOAD_BURST_MS) / 1000));
    this.last = now;
    while (this.allowance >= 1 && this.inFlight < WORKLOAD_IN_FLIGHT_MAX) {
      this.allowance -= 1;
      this.issue();
    }
  }

  private issue(): void {
    const n = ++this.seq;
    const r = this.rnd();
    const key: KeySpec = { namespace: DEMO_NAMESPACE, set: DEMO_SET, key: `k${Math.floor(this.rnd() * DEMO_KEYS)}` };
    let p: Promise<unknown>;
    const c = this.counts;
    if (r < 0.45) {
      c.puts++;
      p = this.client.put(key, { v: `v-${n}`, n, at: Date.now() }, { sendKey: true });
    } else if (r < 0.65) {
      c.updates++;
      p = this.client.operate(key, [ops.incr('n', 1), ops.write('at', Date.now())]);
    } else if (r < 0.75) {
      c.deletes++;
      p = this.client.remove(key);
    } else if (r < 0.9) {
      c.ttlPuts++;
      const ttl = WORKLOAD_TTL_S_MIN + Math.floor(this.rnd() * (WORKLOAD_TTL_S_MAX - WORKLOAD_TTL_S_MIN));
      p = this.client.put(key, { v: `ttl-${n}`, n, at: Date.now() }, { ttl, sendKey: true });
    } else if (this.hotInFlight < HOT_KEY_IN_FLIGHT_MAX) {
      c.hot++;
      this.hotInFlight++;
      p = this.client.operate({ namespace: DEMO_NAMESPACE, set: DEMO_SET, key: 'hot' }, [ops.incr('hits', 1)]).finally(() => this.hotInFlight--);
    } else {
      c.updates++;
      p = this.client.operate(key, [ops.incr('n', 1), ops.write('at', Date.now())]);
    }
    this.inFlight++;
    p.then(
      () => {
        c.ops++;
      },
      (err: unknown) => {
        c.errors++;
        c.lastError = errorText(err);
      },
    ).finally(() => {
      this.inFlight--;
      if (this.inFlight === 0 && !this.timer) for (const r of this.idle.splice(0)) r();
    });
  }
}

// ---------------------------------------------------------------- samples

export interface DemoSample {
  /** ms since the epoch. */
  at: number;
  writesPerS: number;
  writeErrors: number;
  shippedPerS: number;
  shipped: number;
  recordsBehind: number;
  msBehind: number;
  retries: number;
  appliedPerS: number;
  applied: number;
  lostConflict: number;
  deadLettered: number;
  /** -1 before the receiver measured it. */
  consumerLag: number;
  /** A stats source that did not answer this time. */
  error: string;
}

/** Reads every A node's shipper and the receiver's stats; keeps the connections to A. */
class StatsSource {
  private readonly conns = new Map<number, NodeConn>();
  private prevOps = { at: 0, ops: 0 };

  constructor(
    private readonly a: Array<{ host: string; port: number }>,
    private readonly receiverUrl: string,
    private readonly workload: () => WorkloadCounts,
  ) {}

  async sample(): Promise<DemoSample> {
    const at = Date.now();
    const w = this.workload();
    const writesPerS = this.prevOps.at > 0 && at > this.prevOps.at ? Math.round(((w.ops - this.prevOps.ops) * 1000) / (at - this.prevOps.at)) : 0;
    this.prevOps = { at, ops: w.ops };
    const s: DemoSample = {
      at, writesPerS, writeErrors: w.errors, shippedPerS: 0, shipped: 0, recordsBehind: 0, msBehind: 0, retries: 0,
      appliedPerS: 0, applied: 0, lostConflict: 0, deadLettered: 0, consumerLag: -1, error: '',
    };
    const errors: string[] = [];
    // Settled into a value at once: a rejection that waited for the A nodes below without a
    // handler was an unhandled rejection, and it ended the demo (a slow receiver under load).
    const receiverP: Promise<ReceiverStats | { failed: unknown }> = getJson<ReceiverStats>(`${this.receiverUrl}/stats`, STATS_TIMEOUT_MS).catch((err: unknown) => ({ failed: err }));
    // Each A node ships the partitions it masters: the site's figures are the sums.
    await Promise.all(
      this.a.map(async (ep) => {
        try {
          let conn = this.conns.get(ep.port);
          if (!conn) this.conns.set(ep.port, (conn = await NodeConn.open(ep, STATS_TIMEOUT_MS)));
          const x = parseXdrStats(await conn.info('xdr-stats'), `${ep.host}:${ep.port}`);
          for (const st of x.streams) {
            s.shippedPerS += st.shippedPerS;
            s.shipped += st.shipped;
            s.recordsBehind += st.recordsBehind + st.recoveringPartitions;
            s.msBehind = Math.max(s.msBehind, st.msBehind);
            s.retries += st.retries;
            if (st.lastError) errors.push(`shipper ${ep.port}: ${st.lastError}`);
          }
        } catch (err) {
          this.conns.get(ep.port)?.close();
          this.conns.delete(ep.port);
          errors.push(`site A ${ep.host}:${ep.port}: ${errorText(err)}`);
        }
      }),
    );
    try {
      const got = await receiverP;
      if ('failed' in got) throw got.failed;
      const r = got;
      s.appliedPerS = r.appliedPerS;
      s.applied = r.applied;
      s.lostConflict = r.lostConflict;
      s.deadLettered = r.deadLettered;
      s.consumerLag = r.consumerLag;
      if (r.lastError) errors.push(`receiver: ${r.lastError}`);
    } catch (err) {
      errors.push(`receiver: ${errorText(err)}`);
    }
    s.error = errors.join('; ');
    return s;
  }

  close(): void {
    for (const c of this.conns.values()) c.close();
    this.conns.clear();
  }
}

/** Shipping and applying are done: nothing behind, nothing unconsumed. */
export function caughtUp(s: DemoSample): boolean {
  return s.error === '' && s.recordsBehind === 0 && s.msBehind === 0 && s.consumerLag === 0;
}

// ---------------------------------------------------------------- view

export type DemoPhase = 'starting' | 'running' | 'catching up' | 'verifying' | 'stopping' | 'done';

export interface ViewContext {
  ports: DemoPorts;
  data: string;
  dashboardUrl: string;
  startedAt: number;
  phase: DemoPhase;
  ratePerS: number;
}

function n(v: number): string {
  return v < 0 ? '?' : Math.round(v).toLocaleString('en-US');
}

/** The terminal view (pure). */
export function formatView(ctx: ViewContext, s: DemoSample | undefined): string {
  const up = formatDurationMs(Date.now() - ctx.startedAt);
  const siteText = (site: 'a' | 'b'): string => sitePorts(ctx.ports, site).map((p) => `${HOST}:${p}`).join(',');
  const lines = [
    `ferry demo: site A ${siteText('a')} -> Kafka ${HOST}:${ctx.ports.broker} -> receiver -> site B ${siteText('b')} (passive)`,
    `dashboard ${ctx.dashboardUrl}   data ${ctx.data}   up ${up}   ${ctx.phase}${ctx.phase === 'running' ? ' (Ctrl-C: stop, catch up, verify)' : ''}`,
    '',
  ];
  if (!s) return [...lines, 'waiting for the first sample...'].join('\n');
  const rows: Array<[string, string, string]> = [
    ['A writes/s', n(s.writesPerS), `target ${n(ctx.ratePerS)}, errors ${n(s.writeErrors)}`],
    ['shipped/s', n(s.shippedPerS), `total ${n(s.shipped)}, retries ${n(s.retries)}`],
    ['records behind', n(s.recordsBehind), ''],
    ['ms behind', n(s.msBehind), ''],
    ['B applied/s', n(s.appliedPerS), `total ${n(s.applied)}`],
    ['conflicts lost', n(s.lostConflict), ''],
    ['dead-lettered', n(s.deadLettered), ''],
    ['consumer lag', n(s.consumerLag), 'messages not yet applied at B'],
  ];
  for (const [label, value, note] of rows) lines.push(`  ${label.padEnd(16)}${value.padStart(10)}   ${note}`.trimEnd());
  if (s.error) lines.push('', `  ! ${s.error}`);
  return lines.join('\n');
}

/** One line per sample when the output is not a terminal (pure). */
export function formatLine(ctx: ViewContext, s: DemoSample): string {
  const t = ((s.at - ctx.startedAt) / 1000).toFixed(0);
  return (
    `demo t=${t}s phase=${ctx.phase.replace(' ', '-')} writes/s=${s.writesPerS} shipped/s=${s.shippedPerS} behind=${s.recordsBehind} ms-behind=${s.msBehind} ` +
    `applied/s=${s.appliedPerS} conflicts-lost=${s.lostConflict} dead-lettered=${s.deadLettered} consumer-lag=${s.consumerLag}` +
    (s.error ? ` error="${s.error}"` : '')
  );
}

// ---------------------------------------------------------------- the demo

/**
 * Both sites keep their data on device files and acknowledge a write only once it is durable
 * (commit-to-device): a demo whose processes were killed comes back with nothing acknowledged
 * lost on A that B already holds, and the next run still verifies equal.
 */
function siteConfigs(ports: DemoPorts): { a: unknown; b: unknown; receiver: unknown } {
  const bNodes = sitePorts(ports, 'b');
  const broker = `${HOST}:${ports.broker}`;
  const ns = { name: DEMO_NAMESPACE, 'storage-engine': 'device', 'commit-to-device': true, filesize: SITE_FILE_BYTES, 'write-block-size': 262144, 'nsup-period': 1 };
  return {
    a: {
      namespaces: [{ ...ns, 'write-log-entries': 1 << 18 }],
      xdr: { site: 'A', destinations: [{ name: 'B', brokers: [broker], namespaces: [DEMO_NAMESPACE], 'kafka-partitions': 4, 'checkpoint-interval-ms': 200 }] },
    },
    b: { namespaces: [{ ...ns, fenced: true }] },
    receiver: { brokers: [broker], topics: [TOPIC], destination: bNodes.map((p) => `${HOST}:${p}`), 'metrics-host': HOST, 'metrics-port': ports.receiver, 'group-id': GROUP_ID },
  };
}

/** Waits until every node of a site reports the whole site as its cluster. */
async function waitForCluster(ports: number[], signal: AbortSignal): Promise<void> {
  const end = Date.now() + CLUSTER_FORM_TIMEOUT_MS;
  let last = '';
  for (;;) {
    try {
      const sizes = await Promise.all(ports.map(async (port) => {
        const conn = await NodeConn.open({ host: HOST, port }, STATS_TIMEOUT_MS);
        try {
          return Number(parseKv(await conn.info('statistics')).get('cluster_size'));
        } finally {
          conn.close();
        }
      }));
      last = sizes.join(',');
      if (sizes.every((n) => n === ports.length)) return;
    } catch (err) {
      last = errorText(err);
    }
    if (signal.aborted) throw new DemoError('INTERRUPTED', 'interrupted while starting: nothing to verify');
    if (Date.now() > end) throw new DemoError('START', `the nodes on ports ${ports.join(',')} did not form one cluster within ${CLUSTER_FORM_TIMEOUT_MS} ms (cluster sizes: ${last})`);
    await sleep(200);
  }
}

export async function runDemo(o: DemoOptions, io: DemoIo): Promise<number> {
  const data = resolve(o.data);
  const children: DemoChild[] = [];
  /** The children's pids, for a later demo should this one be killed. */
  const pidFile = join(data, 'demo-pids.json');
  let dashboard: Dashboard | undefined;
  let client: FerryClient | undefined;
  let stats: StatsSource | undefined;
  let workload: Workload | undefined;
  const stopAllNow = (): void => {
    for (const c of children) c.stopNow();
  };
  process.on('exit', stopAllNow);

  // Ctrl-C: the first ends the workload (catch up and verify follow), a second skips the waiting.
  const stopRequested = new AbortController();
  const hurry = new AbortController();
  const offSignal = io.onSignal(() => {
    if (!stopRequested.signal.aborted) {
      stopRequested.abort();
      if (!io.tty) io.out('demo: stopping: workload ends, then catch up and verify (Ctrl-C again to skip)\n');
    } else if (!hurry.signal.aborted) {
      hurry.abort();
      io.out('demo: second Ctrl-C: not waiting any longer, stopping the processes\n');
    }
  });

  const samples: DemoSample[] = [];
  let verify: VerifyReport | undefined;
  let verifyText = '';
  const ctx: ViewContext = { ports: { a: 0, b: 0, broker: 0, receiver: 0, dashboard: 0 }, data, dashboardUrl: '', startedAt: Date.now(), phase: 'starting', ratePerS: o.ratePerS };
  const state = (): DashboardState => ({
    phase: ctx.phase,
    startedAt: ctx.startedAt,
    ratePerS: o.ratePerS,
    sites: { a: sitePorts(ctx.ports, 'a').map((p) => `${HOST}:${p}`).join(','), b: sitePorts(ctx.ports, 'b').map((p) => `${HOST}:${p}`).join(','), broker: `${HOST}:${ctx.ports.broker}` },
    samples,
    verify: verify ? { equal: verify.equal, differingKeys: verify.differingKeys, recordsA: verify.recordsA, recordsB: verify.recordsB, text: verifyText } : null,
  });

  try {
    if (o.fresh) rmSync(data, { recursive: true, force: true });
    mkdirSync(join(data, 'logs'), { recursive: true });
    const leftovers = await stopLeftovers(pidFile);
    if (leftovers.stopped > 0) {
      io.out(`demo: stopped ${leftovers.stopped} process(es) a previous demo on ${data} left running${leftovers.killed > 0 ? ` (${leftovers.killed} killed: they did not stop in time; if the sites differ, start over with --fresh)` : ''}\n`);
    }
    const nodes = o.nodes ?? DEMO_NODES_DEFAULT;
    const ports = await pickPorts(o.basePort, o.dashboardPort, nodes);
    ctx.ports = ports;
    const cfg = siteConfigs(ports);
    writeFileSync(join(data, 'a.json'), `${JSON.stringify(cfg.a, null, 2)}\n`);
    writeFileSync(join(data, 'b.json'), `${JSON.stringify(cfg.b, null, 2)}\n`);
    writeFileSync(join(data, 'receiver.json'), `${JSON.stringify(cfg.receiver, null, 2)}\n`);

    dashboard = await startDashboard({ host: HOST, port: ports.dashboard, state });
    ctx.dashboardUrl = dashboard.url;
    io.out(`demo: dashboard ${dashboard.url}\n`);
    io.out(`demo: data ${data} (logs in ${join(data, 'logs')}); ports A ${sitePorts(ports, 'a').join(',')}, B ${sitePorts(ports, 'b').join(',')}, broker ${ports.broker}, receiver ${ports.receiver}${nodes > 1 ? ` (two ${nodes}-node clusters)` : ''}\n`);

    const log = (name: string) => join(data, 'logs', `${name}.log`);
    const broker = new DemoChild('broker', ['broker', '--data', join(data, 'broker'), '--port', String(ports.broker), '--host', HOST], /listening/, log('broker'));
    /** A site's nodes: with clusters, `site A1`.. on data a1.. (heartbeats, all seeded from the first). */
    const siteNodes = (site: 'a' | 'b'): DemoChild[] => {
      const upper = site.toUpperCase();
      const service = sitePorts(ports, site);
      const hb = site === 'a' ? ports.aHeartbeat : ports.bHeartbeat;
      return service.map((port, i) => {
        const id = hb ? `${site}${i + 1}` : site;
        const args = ['node', '--config', join(data, `${site}.json`), '--data', join(data, id), '--port', String(port), '--host', HOST];
        if (hb) args.push('--heartbeat-port', String(hb[i]), ...(i > 0 ? ['--seed', `${HOST}:${hb[0]}`] : []));
        return new DemoChild(hb ? `site ${upper}${i + 1}` : `site ${upper}`, args, /ferry node listening/, log(id));
      });
    };
    const aNodes = siteNodes('a');
    const bNodes = siteNodes('b');
    const receiver = new DemoChild('receiver', ['receiver', '--config', join(data, 'receiver.json')], /ferry receiver ready/, log('receiver'));
    const savePids = () => writeFileSync(pidFile, JSON.stringify({ children: children.flatMap((c): PidEntry[] => (c.pid !== undefined ? [{ name: c.name, pid: c.pid }] : [])) }));
    const startChild = async (c: DemoChild): Promise<void> => {
      if (stopRequested.signal.aborted) throw new DemoError('INTERRUPTED', 'interrupted while starting: nothing to verify');
      children.push(c);
      const started = c.start();
      savePids();
      await started;
      io.out(`demo: ${c.name} ready\n`);
    };
    await startChild(broker);
    // The first node of each site, then the others (they join it).
    await Promise.all([startChild(aNodes[0]!), startChild(bNodes[0]!)]);
    await Promise.all([...aNodes.slice(1), ...bNodes.slice(1)].map(startChild));
    if (nodes > 1) {
      await Promise.all([waitForCluster(sitePorts(ports, 'a'), stopRequested.signal), waitForCluster(sitePorts(ports, 'b'), stopRequested.signal)]);
      io.out(`demo: sites A and B are ${nodes}-node clusters\n`);
    }
    await startChild(receiver);

    const aHosts = sitePorts(ports, 'a').map((port) => ({ host: HOST, port }));
    client = await FerryClient.connect({ hosts: aHosts, tendIntervalMs: 0, maxConnsPerNode: WORKLOAD_CONNECTIONS_MAX });
    const load = new Workload(client, o.ratePerS);
    workload = load;
    stats = new StatsSource(aHosts, `http://${HOST}:${ports.receiver}`, () => load.counts);
    if (stopRequested.signal.aborted) throw new DemoError('INTERRUPTED', 'interrupted while starting: nothing to verify');
    load.start();
    ctx.phase = 'running';
    ctx.startedAt = Date.now();
    io.out(`demo: workload on site A at ${o.ratePerS} ops/s${o.durationS !== undefined ? ` for ${o.durationS} s` : ''}; Ctrl-C stops it, waits for B to catch up and verifies\n`);
    const durationTimer = o.durationS !== undefined ? setTimeout(() => stopRequested.abort(), o.durationS * 1000) : undefined;

    // Sampling loop: one sample a second while running and while catching up.
    const show = (s: DemoSample): void => {
      samples.push(s);
      if (samples.length > SAMPLES_MAX) samples.shift();
      io.out(io.tty ? `${REDRAW}${formatView(ctx, s)}\n` : `${formatLine(ctx, s)}\n`);
    };
    const tick = async (signal: AbortSignal): Promise<DemoSample> => {
      const started = Date.now();
      const s = await stats!.sample();
      show(s);
      await sleep(Math.max(0, SAMPLE_INTERVAL_MS - (Date.now() - started)), signal);
      return s;
    };
    while (!stopRequested.signal.aborted) await tick(stopRequested.signal);
    clearTimeout(durationTimer);

    ctx.phase = 'catching up';
    await load.stop();
    // Caught up: nothing behind in two samples in a row with nothing shipped in between (the
    // receiver re-measures its consumer lag once a second).
    const catchupEnd = Date.now() + CATCHUP_TIMEOUT_MS;
    let prev: DemoSample | undefined;
    let caught = false;
    while (!hurry.signal.aborted && Date.now() < catchupEnd) {
      const s = await tick(hurry.signal);
      if (prev && caughtUp(prev) && caughtUp(s) && s.shipped === prev.shipped && s.applied === prev.applied) {
        caught = true;
        break;
      }
      prev = s;
    }
    const w = load.counts;
    io.out(
      `${io.tty ? '\n' : ''}demo: workload stopped: ${w.ops} operations (${w.puts} writes, ${w.updates} updates, ${w.deletes} deletes, ${w.ttlPuts} TTL writes, ${w.hot} hot-key increments), ${w.errors} errors${w.lastError ? ` (last: ${w.lastError})` : ''}\n`,
    );
    io.out(
      caught
        ? `demo: caught up: A shipped everything, B applied everything (${formatDurationMs(Date.now() - (catchupEnd - CATCHUP_TIMEOUT_MS))})\n`
        : `demo: not caught up ${hurry.signal.aborted ? '(interrupted)' : `within ${CATCHUP_TIMEOUT_MS / 1000} s`}; verifying anyway\n`,
    );

    if (!hurry.signal.aborted) {
      ctx.phase = 'verifying';
      io.out(`demo: ferry verify --a ${HOST}:${ports.a} --b ${HOST}:${ports.b} --namespace ${DEMO_NAMESPACE}${nodes > 1 ? ` (the whole sites: each partition from its master)` : ''}\n`);
      try {
        verify = await verifySites({
          a: { host: HOST, port: ports.a },
          b: { host: HOST, port: ports.b },
          namespace: DEMO_NAMESPACE,
          recheckMs: VERIFY_RECHECK_MS,
          signal: hurry.signal,
        });
        verifyText = formatReport(verify);
        io.out(`${verifyText}\n`);
      } catch (err) {
        io.err(`demo: verify failed: ${errorText(err)}\n`);
      }
    }
    ctx.phase = 'stopping';
  } catch (err) {
    io.err(`demo: ${errorText(err)}\n`);
    ctx.phase = 'stopping';
    // Interrupted before the workload ran: nothing compared (1); could not start (2).
    return await finish(err instanceof DemoError && err.code === 'INTERRUPTED' ? EXIT_DIFFERENT : EXIT_ERROR);
  }
  return await finish(verify?.equal ? EXIT_EQUAL : EXIT_DIFFERENT);

  async function finish(code: number): Promise<number> {
    await workload?.stop();
    stats?.close();
    client?.close();
    for (const group of [...STOP_ORDER, children.map((c) => c.name).filter((name) => !inAnyGroup(name))]) {
      await Promise.all(
        children
          .filter((c) => inGroup(group, c.name))
          .map(async (c) => {
            const how = await c.stop();
            io.out(`demo: ${c.name} stopped (${how})\n`);
          }),
      );
    }
    ctx.phase = 'done';
    if (children.every((c) => !c.running)) rmSync(pidFile, { force: true });
    await dashboard?.close();
    offSignal();
    process.off('exit', stopAllNow);
    if (code === EXIT_EQUAL) io.out('demo: result: the sites are EQUAL; exit 0\n');
    else if (code === EXIT_DIFFERENT) io.out(`demo: result: ${verify ? 'the sites are DIFFERENT' : 'the sites were not compared'}; exit 1\n`);
    else io.out(`demo: could not run; exit ${code}\n`);
    return code;
  }
}
