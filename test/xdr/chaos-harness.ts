/**
 * XDR chaos run, as real processes: the embedded broker, node A (commit-to-device, shipping
 * namespace `test` to B), node B (fenced, commit-to-device), one receiver. The official `aerospike` client writes a
 * mixed workload to A (every bin type, increments, deletes, 3 s TTL puts) while a seeded schedule
 * kills (SIGKILL) and restarts the receiver, the broker, node A and node B. Then the faults stop and the
 * run waits, bounded, until the sites are equal.
 *
 * The ledger of acknowledged writes lives here, outside the system: each key is touched by one
 * command at a time, and every acknowledged command fixes the key's full expected state (puts
 * replace the record, increments read their result back, deletes leave nothing). A command that
 * failed leaves its key unknown until the next acknowledged one.
 *
 * Used by test/xdr/chaos.test.ts (short) and `npm run chaos -- --seconds N` (scripts/chaos.ts).
 */
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { FerryClient } from '../../store/client/client.js';
import { verifySites, type VerifyReport } from '../../ops/verify.js';
import { seededRandom } from '../../store/runtime/index.js';
import { FerryProcess, ROOT, freePort, getJson, waitFor } from '../helpers/procs.js';
import type { ReceiverStats } from '../../receiver/receiver.js';

/* The official client is CommonJS with loose typings; it is driven through `any` on purpose. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const Aerospike: Any = createRequire(import.meta.url)('aerospike');

export interface ChaosOptions {
  seed: number;
  /** Seconds of workload with faults. */
  seconds: number;
  /** Regular keys (puts, increments, deletes) and TTL keys (3 s TTL puts, deletes). */
  keys: number;
  ttlKeys: number;
  /** Commands in flight. */
  concurrency: number;
  /** Pause between faults, ms: uniform in [min, max]. */
  faultGapMs: [number, number];
  /** How long a killed process stays down, ms: uniform in [min, max]. */
  downMs: [number, number];
  convergeTimeoutMs: number;
  log: (line: string) => void;
}

export interface ChaosReport {
  seed: number;
  seconds: number;
  writesAcknowledged: number;
  commandsFailed: number;
  faults: { receiver: number; broker: number; source: number; destination: number };
  faultsInjected: number;
  /** From the end of the last fault (process back up) to the first equal verify; null = never. */
  secondsToConverge: number | null;
  /** From the end of the load (which may outlast the last fault) to the first equal verify. */
  secondsAfterLoad: number | null;
  /** Keys `ferry verify` still reported different at the end. */
  differencesLeft: number;
  /** Acknowledged writes A does not hold (key: expected vs found). */
  lostAtSource: string[];
  /** Keys whose bins or void time differ between A and B (verify compares generation, LUT, tombstone). */
  binDifferences: string[];
  /** `ferry verify` as typed: exit status and output. */
  verifyExit: number | null;
  verifyOutput: string;
}

const TTL_S = 3;
const OP_TIMEOUT_MS = 3000;

type Expected = { kind: 'absent' } | { kind: 'bins'; bins: Record<string, unknown>; ttl: boolean } | { kind: 'unknown' };

/** Ledger value of one bin, normalised the way the client reads it back. */
function norm(bins: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(bins)) {
    if (v instanceof Aerospike.GeoJSON) out[k] = JSON.parse((v as Any).str);
    else if (v instanceof Aerospike.Double) out[k] = (v as Any).value();
    else if (k === 'g' && typeof v === 'string') out[k] = JSON.parse(v);
    else out[k] = v;
  }
  return out;
}

class Workload {
  readonly expected = new Map<string, Expected>();
  private readonly busy = new Set<string>();
  acknowledged = 0;
  failed = 0;
  private stopped = false;
  private i = 0;

  constructor(
    private readonly client: Any,
    private readonly rnd: () => number,
    private readonly o: ChaosOptions,
  ) {}

  stop(): void {
    this.stopped = true;
  }

  async run(): Promise<void> {
    await Promise.all(Array.from({ length: this.o.concurrency }, () => this.worker()));
  }

  private pickKey(): string {
    for (;;) {
      const ttl = this.rnd() < 0.3;
      const k = ttl ? `t${Math.floor(this.rnd() * this.o.ttlKeys)}` : `k${Math.floor(this.rnd() * this.o.keys)}`;
      if (!this.busy.has(k)) return k;
    }
  }

  private async worker(): Promise<void> {
    while (!this.stopped) {
      const k = this.pickKey();
      this.busy.add(k);
      try {
        await this.one(k);
      } finally {
        this.busy.delete(k);
      }
    }
  }

  private async one(k: string): Promise<void> {
    const key = new Aerospike.Key('test', 'demo', k);
    const n = this.i++;
    const r = this.rnd();
    const policy = { totalTimeout: OP_TIMEOUT_MS, maxRetries: 0 };
    const replace = { ...policy, exists: Aerospike.policy.exists.CREATE_OR_REPLACE };
    try {
      if (r < 0.15) {
        try {
          await this.client.remove(key, policy);
        } catch (err) {
          if ((err as { code: number }).code !== Aerospike.status.ERR_RECORD_NOT_FOUND) throw err;
        }
        this.expected.set(k, { kind: 'absent' });
      } else if (k.startsWith('t')) {
        const bins = { s: `ttl-${n}`, i: n };
        await this.client.put(key, bins, { ttl: TTL_S }, replace);
        this.expected.set(k, { kind: 'bins', bins: norm(bins), ttl: true });
      } else if (r < 0.45) {
        const res = await this.client.operate(key, [Aerospike.operations.incr('c', 1), Aerospike.operations.read('c')], {}, policy);
        const prev = this.expected.get(k);
        const c = res.bins.c as number;
        if (prev?.kind === 'bins') this.expected.set(k, { kind: 'bins', bins: { ...prev.bins, c }, ttl: false });
        else if (prev?.kind === 'absent' && c === 1) this.expected.set(k, { kind: 'bins', bins: { c }, ttl: false });
        else this.expected.set(k, { kind: 'unknown' });
      } else {
        const bins: Record<string, unknown> = {
          s: `v-${n}-${'x'.repeat(n % 50)}`,
          i: n,
          f: n + 0.25,
          d: new Aerospike.Double(n + 1),
          b: Buffer.from([n & 255, (n >> 8) & 255, 7]),
          l: [n, 'a', 2.5, [true, null]],
          m: { a: n, b: 'y', c: [1, 2] },
          g: new Aerospike.GeoJSON({ type: 'Point', coordinates: [(n % 180) + 0.5, 1.25] }),
          c: n % 1000,
        };
        await this.client.put(key, bins, { ttl: -1 }, replace);
        this.expected.set(k, { kind: 'bins', bins: norm(bins), ttl: false });
      }
      this.acknowledged++;
    } catch {
      this.failed++;
      this.expected.set(k, { kind: 'unknown' });
      // The node may be down: do not spin.
      await new Promise((res) => setTimeout(res, 50));
    }
  }
}

interface Procs {
  dir: string;
  broker: FerryProcess;
  a: FerryProcess;
  b: FerryProcess;
  receiver: FerryProcess;
  ports: { broker: number; a: number; b: number; receiver: number };
}

async function startProcs(): Promise<Procs> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-chaos-'));
  const ports = { broker: await freePort(), a: await freePort(), b: await freePort(), receiver: await freePort() };
  const brokerAddr = `127.0.0.1:${ports.broker}`;
  writeFileSync(join(dir, 'a.json'), JSON.stringify({
    namespaces: [{ name: 'test', filesize: 128 * 1024 * 1024, 'write-block-size': 262144, 'write-log-entries': 65536, 'nsup-period': 1, 'commit-to-device': true }],
    xdr: { site: 'A', destinations: [{ name: 'B', brokers: [brokerAddr], namespaces: ['test'], 'kafka-partitions': 4, 'checkpoint-interval-ms': 200 }] },
  }));
  // B on a device with commit-to-device: a replicated write is acknowledged (and the receiver
  // commits its offset) only once it is durable, so B too can be killed.
  writeFileSync(join(dir, 'b.json'), JSON.stringify({ namespaces: [{ name: 'test', filesize: 128 * 1024 * 1024, 'write-block-size': 262144, fenced: true, 'nsup-period': 1, 'commit-to-device': true }] }));
  writeFileSync(join(dir, 'r.json'), JSON.stringify({ brokers: [brokerAddr], topics: ['ferry.A.test'], destination: [`127.0.0.1:${ports.b}`], 'metrics-port': ports.receiver, 'group-id': 'ferry-receiver-B' }));
  const broker = new FerryProcess('broker', ['broker', '--data', join(dir, 'broker'), '--port', String(ports.broker)], /listening/);
  const a = new FerryProcess('node A', ['node', '--config', join(dir, 'a.json'), '--data', join(dir, 'a'), '--port', String(ports.a)], /ferry node listening/);
  const b = new FerryProcess('node B', ['node', '--config', join(dir, 'b.json'), '--data', join(dir, 'b'), '--port', String(ports.b)], /ferry node listening/);
  const receiver = new FerryProcess('receiver', ['receiver', '--config', join(dir, 'r.json')], /ferry receiver ready/);
  await broker.start();
  await Promise.all([a.start(), b.start()]);
  await receiver.start();
  return { dir, broker, a, b, receiver, ports };
}

async function stopProcs(p: Procs): Promise<void> {
  await Promise.all([p.receiver.stop('SIGKILL'), p.a.stop('SIGKILL'), p.b.stop('SIGKILL'), p.broker.stop('SIGKILL')]);
  rmSync(p.dir, { recursive: true, force: true });
}

/** Runs `ferry verify` as a user types it; resolves with its exit status and output. */
export function ferryVerifyCli(a: number, b: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['bin/ferry.mjs', 'verify', '--a', `127.0.0.1:${a}`, '--b', `127.0.0.1:${b}`, '--namespace', 'test'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr.on('data', (c: Buffer) => (output += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

async function connectOfficial(port: number): Promise<Any> {
  // The C client warns on stderr each time it re-tends a node that is down (expected here).
  Aerospike.setDefaultLogging({ level: Aerospike.log.OFF });
  return Aerospike.connect({
    hosts: [{ addr: '127.0.0.1', port }],
    log: { level: Aerospike.log.OFF },
    policies: { write: { totalTimeout: OP_TIMEOUT_MS }, operate: { totalTimeout: OP_TIMEOUT_MS }, remove: { totalTimeout: OP_TIMEOUT_MS }, read: { totalTimeout: OP_TIMEOUT_MS } },
  });
}

/** The seeded fault schedule: kill -9 one process, keep it down a while, restart it. */
async function injectFaults(p: Procs, rnd: () => number, o: ChaosOptions, until: number, report: ChaosReport): Promise<number> {
  let lastFaultEnd = Date.now();
  const between = (r: [number, number]) => r[0] + rnd() * (r[1] - r[0]);
  const procs = { receiver: p.receiver, broker: p.broker, source: p.a, destination: p.b } as const;
  type Victim = keyof typeof procs;
  // Each kind once first (a seeded order), then seeded picks.
  const first: Victim[] = ['receiver', 'broker', 'source', 'destination'];
  for (let i = first.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [first[i], first[j]] = [first[j]!, first[i]!];
  }
  for (let n = 0; ; n++) {
    await new Promise((res) => setTimeout(res, between(o.faultGapMs)));
    // The first round (one fault of each kind) always completes; the load runs until it has.
    if (Date.now() >= until && n >= first.length) return lastFaultEnd;
    const pick = rnd();
    const name: Victim = first[n] ?? (pick < 0.3 ? 'receiver' : pick < 0.55 ? 'broker' : pick < 0.8 ? 'source' : 'destination');
    const proc = procs[name];
    const down = between(o.downMs);
    o.log(`chaos: kill -9 ${name}, down ${Math.round(down)} ms`);
    await proc.stop('SIGKILL');
    await new Promise((res) => setTimeout(res, down));
    await proc.start();
    report.faults[name]++;
    report.faultsInjected++;
    lastFaultEnd = Date.now();
  }
}

/** What is still in flight: A's unshipped records and the receiver's consumer lag. */
async function progressLine(p: Procs): Promise<string> {
  const parts: string[] = [];
  try {
    const c = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: p.ports.a }], tendIntervalMs: 0 });
    try {
      const x = JSON.parse(await c.infoValue('xdr-stats')) as { streams: Array<{ recordsBehind: number; recoveringPartitions: number; lastError: string }> };
      for (const s of x.streams) parts.push(`A behind ${s.recordsBehind}, recovering ${s.recoveringPartitions}`);
    } finally {
      c.close();
    }
  } catch (err) {
    parts.push(`A: ${(err as Error).message}`);
  }
  try {
    const r = await getJson<ReceiverStats>(`http://127.0.0.1:${p.ports.receiver}/stats`);
    parts.push(`receiver lag ${r.consumerLag}, applied ${r.applied}, retries ${r.retries}${r.lastError ? `, last error: ${r.lastError.slice(0, 120)}` : ''}`);
  } catch (err) {
    parts.push(`receiver: ${(err as Error).message}`);
  }
  return parts.join('; ');
}

/** Keys whose bins or void time differ between A and B, read with ferry's client. */
async function compareBins(ca: FerryClient, cb: FerryClient, keys: string[]): Promise<string[]> {
  const out: string[] = [];
  for (const k of keys) {
    const key = { namespace: 'test', set: 'demo', key: k };
    const [a, b] = await Promise.all([ca.get(key), cb.get(key)]);
    const same = (a === null && b === null) || (a !== null && b !== null && a.generation === b.generation && a.voidTimeS === b.voidTimeS && isDeepStrictEqual(a.bins, b.bins));
    if (!same) out.push(`${k}: A=${a ? `gen ${a.generation} void ${a.voidTimeS}` : 'none'} B=${b ? `gen ${b.generation} void ${b.voidTimeS}` : 'none'}`);
  }
  return out;
}

/** Acknowledged writes A must hold, read with the official client. */
async function checkLedger(client: Any, w: Workload): Promise<string[]> {
  const lost: string[] = [];
  for (const [k, exp] of w.expected) {
    if (exp.kind === 'unknown') continue;
    let got: Record<string, unknown> | null = null;
    try {
      got = norm((await client.get(new Aerospike.Key('test', 'demo', k))).bins as Record<string, unknown>);
    } catch (err) {
      if ((err as { code: number }).code !== Aerospike.status.ERR_RECORD_NOT_FOUND) throw err;
    }
    if (exp.kind === 'absent' && got === null) continue;
    if (exp.kind === 'bins' && got !== null && isDeepStrictEqual(got, exp.bins)) continue;
    if (exp.kind === 'bins' && exp.ttl && got === null) continue; // expired
    lost.push(`${k}: expected ${exp.kind === 'bins' ? JSON.stringify(exp.bins) : 'absent'}, A has ${got === null ? 'nothing' : JSON.stringify(got)}`);
  }
  return lost;
}

export async function runChaos(o: ChaosOptions): Promise<ChaosReport> {
  // Two streams: the fault schedule replays from the seed whatever the workload's timing.
  const faultRandom = seededRandom(o.seed);
  const workRandom = seededRandom(o.seed ^ 0x5eed);
  const rnd = () => faultRandom.float();
  const report: ChaosReport = {
    seed: o.seed, seconds: o.seconds, writesAcknowledged: 0, commandsFailed: 0, faults: { receiver: 0, broker: 0, source: 0, destination: 0 }, faultsInjected: 0,
    secondsToConverge: null, secondsAfterLoad: null, differencesLeft: -1, lostAtSource: [], binDifferences: [], verifyExit: null, verifyOutput: '',
  };
  const p = await startProcs();
  let client: Any;
  const ferryClients: FerryClient[] = [];
  try {
    client = await connectOfficial(p.ports.a);
    const w = new Workload(client, () => workRandom.float(), o);
    const until = Date.now() + o.seconds * 1000;
    const running = w.run();
    const lastFaultEnd = await injectFaults(p, rnd, o, until, report);
    const rest = until - Date.now();
    if (rest > 0) await new Promise((res) => setTimeout(res, rest));
    w.stop();
    await running;
    const loadEnd = Date.now();
    report.writesAcknowledged = w.acknowledged;
    report.commandsFailed = w.failed;
    o.log(`chaos: ${w.acknowledged} writes acknowledged, ${w.failed} failed, ${report.faultsInjected} faults; waiting for convergence`);

    // Liveness: poll verify (no re-check) until equal, bounded.
    let last: VerifyReport | undefined;
    const a = { host: '127.0.0.1', port: p.ports.a };
    const b = { host: '127.0.0.1', port: p.ports.b };
    let lastProgressLog = 0;
    await waitFor(async () => {
      last = await verifySites({ a, b, namespace: 'test', recheckMs: 0, maxList: 5 });
      if (!last.equal && Date.now() - lastProgressLog > 2000) {
        lastProgressLog = Date.now();
        o.log(`chaos: ${last.differingKeys} keys differ ${((Date.now() - loadEnd) / 1000).toFixed(1)} s after the load; ${await progressLine(p)}`);
      }
      return last.equal;
    }, o.convergeTimeoutMs, 'the sites to be equal').catch(() => undefined);
    if (last?.equal) {
      report.secondsToConverge = Math.round((Date.now() - lastFaultEnd) / 100) / 10;
      report.secondsAfterLoad = Math.round((Date.now() - loadEnd) / 100) / 10;
    }
    const cli = await ferryVerifyCli(p.ports.a, p.ports.b);
    report.verifyExit = cli.code;
    report.verifyOutput = cli.output;
    const m = /DIFFERENT \((\d+) key/.exec(cli.output);
    report.differencesLeft = cli.code === 0 ? 0 : m ? Number(m[1]) : -1;

    report.lostAtSource = await checkLedger(client, w);
    const ca = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: p.ports.a }], tendIntervalMs: 0 });
    ferryClients.push(ca);
    const cb = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port: p.ports.b }], tendIntervalMs: 0 });
    ferryClients.push(cb);
    const keys = [...Array.from({ length: o.keys }, (_, i) => `k${i}`), ...Array.from({ length: o.ttlKeys }, (_, i) => `t${i}`)];
    report.binDifferences = await compareBins(ca, cb, keys);
    return report;
  } finally {
    for (const c of ferryClients) c.close();
    await client?.close();
    await stopProcs(p);
  }
}

export function formatChaos(r: ChaosReport): string {
  return [
    `chaos seed ${r.seed}, ${r.seconds} s of load with faults`,
    `writes acknowledged:        ${r.writesAcknowledged} (${r.commandsFailed} commands failed during faults)`,
    `faults injected:            ${r.faultsInjected} (receiver ${r.faults.receiver}, broker ${r.faults.broker}, source node ${r.faults.source}, destination node ${r.faults.destination}; kill -9 + restart)`,
    `seconds to converge:        ${r.secondsToConverge === null ? 'did not converge' : `${r.secondsToConverge} after the last fault (goal <= 10), ${r.secondsAfterLoad} after the load stopped`}`,
    `differences left:           ${r.differencesLeft} (ferry verify exit ${r.verifyExit}; goal 0)`,
    `acknowledged writes lost:   ${r.lostAtSource.length}`,
    `bin/void-time differences:  ${r.binDifferences.length}`,
  ].join('\n');
}
