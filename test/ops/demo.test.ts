/**
 * `ferry demo` as a user runs it: the real broker, two sites and a receiver as child processes,
 * a workload, the final verify and the exit status; and its dashboard in headless Chromium.
 */
import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { caughtUp, formatLine, formatView, pickPorts, type DemoSample, type ViewContext } from '../../ops/demo.js';
import { ROOT, freePort, waitFor } from '../helpers/procs.js';

const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** A demo must finish (catch up, verify, stop its children) within this after it was told to stop. */
const DEMO_EXIT_TIMEOUT_MS = 90_000;
/** The demo must print its dashboard URL and start the workload within this. */
const DEMO_START_TIMEOUT_MS = 60_000;
/** The dashboard must show shipping and applying within this. */
const CHART_TIMEOUT_MS = 30_000;

interface Demo {
  proc: ChildProcess;
  output(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startDemo(args: string[]): Demo {
  const proc = spawn(process.execPath, ['bin/ferry.mjs', 'demo', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
  let out = '';
  proc.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  proc.stderr!.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  return { proc, output: () => out, exited };
}

async function exitWithin(d: Demo, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`demo did not exit within ${ms} ms:\n${d.output().slice(-3000)}`)), ms);
  });
  try {
    return await Promise.race([d.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function cleanup(d: Demo, dir: string): () => Promise<void> {
  return async () => {
    if (d.proc.exitCode === null && d.proc.signalCode === null) {
      // SIGKILL of the demo: its exit handler cannot run, so its children (own process group)
      // are killed through the pid file it keeps.
      d.proc.kill('SIGKILL');
      await d.exited;
      killDemoChildren(dir);
    }
    rmSync(dir, { recursive: true, force: true });
  };
}

function killDemoChildren(dir: string): void {
  const file = join(dir, 'demo-pids.json');
  if (!existsSync(file)) return;
  try {
    const { children } = JSON.parse(readFileSync(file, 'utf8')) as { children: Array<{ pid: number }> };
    for (const { pid } of children) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  } catch {
    // no pid file
  }
}

test('ferry demo --duration-s runs two 3-node sites, catches up, verifies the whole sites equal and exits 0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-demo-'));
  const d = startDemo(['--duration-s', '8', '--rate', '200', '--base-port', String(await freePort()), '--dashboard-port', '0', '--data', dir]);
  t.teardown(cleanup(d, dir));
  const { code } = await exitWithin(d, DEMO_START_TIMEOUT_MS + DEMO_EXIT_TIMEOUT_MS);
  const out = d.output();
  t.is(code, 0, out.slice(-3000));
  t.regex(out, /result: EQUAL \(the sites are equal\)/);
  t.regex(out, /demo: result: the sites are EQUAL; exit 0/);
  // The workload ran and B applied it.
  const m = /workload stopped: (\d+) operations/.exec(out);
  t.truthy(m, out.slice(-3000));
  t.true(Number(m![1]) > 0);
  t.regex(out, /applied\/s=[1-9]/);
  t.regex(out, /demo: sites A and B are 3-node clusters/);
  t.regex(out, /--namespace test \(the whole sites: each partition from its master\)/);
  for (const name of ['receiver', 'site A1', 'site A2', 'site A3', 'site B1', 'site B2', 'site B3', 'broker']) t.regex(out, new RegExp(`demo: ${name} stopped \\(exit 0\\)`));
  // Every A node shipped: each masters part of the partitions.
  for (const n of [1, 2, 3]) t.regex(readFileSync(join(dir, 'logs', `a${n}.log`), 'utf8'), /(partition table changed|partitions handed over): shipping [1-9]\d* partition\(s\) this node serves as master/);
});

/** Pids of live processes whose command line mentions `needle` (the demo's children carry its data dir). */
function pidsMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(needle)) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

test('a demo killed with -9 leaves no child running: each stops itself cleanly', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-demo-'));
  const d = startDemo(['--duration-s', '120', '--rate', '100', '--nodes', '1', '--base-port', String(await freePort()), '--dashboard-port', '0', '--data', dir]);
  t.teardown(cleanup(d, dir));
  await waitFor(() => /workload on site A/.test(d.output()) || d.proc.exitCode !== null, DEMO_START_TIMEOUT_MS, 'the demo to start its workload');
  t.is(d.proc.exitCode, null, d.output().slice(-3000));
  const children = pidsMentioning(dir).filter((pid) => pid !== d.proc.pid);
  t.is(children.length, 4, `broker, site A, site B and receiver: ${children.join(' ')}`);
  d.proc.kill('SIGKILL');
  await waitFor(() => pidsMentioning(dir).length === 0, DEMO_EXIT_TIMEOUT_MS, 'the children of a killed demo to exit');
  for (const f of ['a.log', 'b.log', 'broker.log', 'receiver.log']) {
    const log = readFileSync(join(dir, 'logs', f), 'utf8');
    t.regex(log, /the parent process is gone; shutting down/, f);
    t.regex(log, /clean shutdown complete/, f);
  }
});

test('the dashboard charts shipped and applied records live; Ctrl-C (SIGINT) ends the demo with a verify', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.fail(`${CHROMIUM} is missing: run "bash scripts/setup-test-deps.sh" (installs chromium)`);
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'ferry-demo-'));
  // --duration-s only as a safety bound: the test stops the demo with SIGINT.
  const d = startDemo(['--duration-s', '120', '--rate', '200', '--nodes', '1', '--base-port', String(await freePort()), '--dashboard-port', '0', '--data', dir]);
  t.teardown(cleanup(d, dir));
  await waitFor(() => /workload on site A/.test(d.output()) || d.proc.exitCode !== null, DEMO_START_TIMEOUT_MS, 'the demo to start its workload');
  if (d.proc.exitCode !== null) {
    // Say why: the demo's own output and the tail of each child's log.
    const logs = join(dir, 'logs');
    const tails = existsSync(logs) ? readdirSync(logs).map((f) => `--- ${f}\n${readFileSync(join(logs, f), 'utf8').slice(-1500)}`).join('\n') : '';
    t.fail(`the demo exited (${d.proc.exitCode}) before its workload ran:\n${d.output().slice(-3000)}\n${tails}`);
    return;
  }
  const url = /demo: dashboard (http:\/\/\S+)/.exec(d.output())?.[1];
  t.truthy(url, d.output().slice(-3000));

  // playwright gives the browser a new, empty profile directory of its own.
  let browser: Browser | undefined;
  t.teardown(async () => {
    await browser?.close().catch(() => undefined);
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  const page = await browser.newPage();
  // The page loads nothing but itself and /api/stats.
  const requests: string[] = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(url!, { timeout: 10_000 });
  t.is(await page.title(), 'ferry demo: replication lag');

  const maxOf = (key: string) => page.locator(`polyline[data-key="${key}"]`).first().getAttribute('data-max', { timeout: 5000 }).then(Number);
  await waitFor(
    async () => (await maxOf('shippedPerS')) > 0 && (await maxOf('appliedPerS')) > 0 && (await maxOf('writesPerS')) > 0,
    CHART_TIMEOUT_MS,
    'the dashboard to chart non-zero shipped/s and applied/s',
  );
  t.true((await maxOf('shippedPerS')) > 0);
  t.true((await maxOf('appliedPerS')) > 0);
  const points = await page.locator('polyline[data-key="shippedPerS"]').getAttribute('points');
  t.true((points ?? '').trim().split(/\s+/).length >= 2, `shipped/s drawn as a line: "${points}"`);
  const phase = await page.locator('#phase').textContent();
  t.is(phase, 'running');
  t.true(requests.includes(url!) && requests.includes(`${url!}api/stats`), requests.join(' '));
  t.true(requests.every((u) => u.startsWith(url!)), `only the demo's own URLs: ${requests.join(' ')}`);

  // Ctrl-C: the demo stops the workload, catches up, verifies and exits 0.
  d.proc.kill('SIGINT');
  const { code } = await exitWithin(d, DEMO_EXIT_TIMEOUT_MS);
  t.is(code, 0, d.output().slice(-3000));
  t.regex(d.output(), /result: EQUAL \(the sites are equal\)/);
});

test('ports: taken ones are replaced by free ones, all distinct', async (t) => {
  // Hold the base port and the dashboard port.
  const held = await Promise.all(
    [0, 0].map(
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const srv = net.createServer();
          srv.once('error', reject);
          srv.listen(0, '127.0.0.1', () => resolve(srv));
        }),
    ),
  );
  t.teardown(() => held.forEach((srv) => srv.close()));
  const [base, dash] = held.map((srv) => (srv.address() as net.AddressInfo).port) as [number, number];
  const p = await pickPorts(base, dash);
  t.not(p.a, base, 'site A does not get the taken base port');
  t.not(p.dashboard, dash);
  t.is(new Set([p.a, p.b, p.broker, p.receiver, p.dashboard]).size, 5);
  for (const port of [p.a, p.b, p.broker, p.receiver, p.dashboard]) t.true(port > 0 && port < 65536);
});

test('view: the terminal view and the one-line form show every figure; caught up needs nothing behind', (t) => {
  const s: DemoSample = {
    at: 20_000, writesPerS: 498, writeErrors: 0, shippedPerS: 497, shipped: 12_345, recordsBehind: 7, msBehind: 31, retries: 0,
    appliedPerS: 495, applied: 12_300, lostConflict: 2, deadLettered: 1, consumerLag: 4, error: '',
  };
  const ctx: ViewContext = { ports: { a: 3000, b: 3001, broker: 3002, receiver: 3003, dashboard: 8080 }, data: '/d', dashboardUrl: 'http://127.0.0.1:8080/', startedAt: 10_000, phase: 'running', ratePerS: 500 };
  t.is(formatLine(ctx, s), 'demo t=10s phase=running writes/s=498 shipped/s=497 behind=7 ms-behind=31 applied/s=495 conflicts-lost=2 dead-lettered=1 consumer-lag=4');
  const view = formatView(ctx, s);
  for (const re of [/A writes\/s\s+498/, /shipped\/s\s+497\s+total 12,345/, /records behind\s+7/, /ms behind\s+31/, /B applied\/s\s+495/, /conflicts lost\s+2/, /dead-lettered\s+1/, /consumer lag\s+4/, /http:\/\/127\.0\.0\.1:8080\//]) {
    t.regex(view, re);
  }
  t.false(caughtUp(s));
  t.false(caughtUp({ ...s, recordsBehind: 0, msBehind: 0, consumerLag: -1 }), 'an unmeasured consumer lag is not caught up');
  t.false(caughtUp({ ...s, recordsBehind: 0, msBehind: 0, consumerLag: 0, error: 'receiver: down' }));
  t.true(caughtUp({ ...s, recordsBehind: 0, msBehind: 0, consumerLag: 0 }));
});
