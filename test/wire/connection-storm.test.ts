/**
 * Connection limits under a storm, as real processes: 10,000 connection attempts against a node
 * whose max-connections are all held, half of them vanishing mid-request. The limit holds (every
 * attempt is closed unanswered, counted and logged), the node keeps serving once connections
 * free up, and no file descriptor leaks. The broker's listener has a limit too.
 */
import test from 'ava';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import { FerryClient } from '../../store/client/client.js';
import { encodeInfoRequestFrame } from '../../store/wire/info-codec.js';
import { FerryProcess, freePort, waitFor } from '../helpers/procs.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LIMIT = 50;
const ATTEMPTS = 10_000;
/** Attempts in flight at once (the test's own fds). */
const STORM_CONCURRENCY = 400;
const ATTEMPT_TIMEOUT_MS = 5000;

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function open(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** One attempt: connect, send a request (or half of one, then vanish); 'answered' or 'closed'. */
function attempt(port: number, vanish: boolean): Promise<'answered' | 'closed'> {
  return new Promise((resolve) => {
    const s = net.connect({ host: '127.0.0.1', port });
    const timer = setTimeout(() => finish('closed'), ATTEMPT_TIMEOUT_MS);
    let done = false;
    function finish(r: 'answered' | 'closed'): void {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    }
    s.on('error', () => finish('closed'));
    s.on('close', () => finish('closed'));
    s.on('data', () => finish('answered'));
    s.on('connect', () => {
      const frame = encodeInfoRequestFrame(['build']);
      if (vanish) {
        s.write(frame.subarray(0, 5));
        finish('closed');
      } else s.write(frame);
    });
  });
}

async function storm(port: number, n: number): Promise<{ answered: number; closed: number }> {
  const out = { answered: 0, closed: 0 };
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      out[await attempt(port, i % 2 === 1)]++;
    }
  };
  await Promise.all(Array.from({ length: STORM_CONCURRENCY }, worker));
  return out;
}

test.serial('node: 10,000 connection attempts past max-connections are refused, the node keeps serving, no fd leaks', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-storm-'));
  const port = await freePort();
  const node = new FerryProcess('node', ['node', '--storage', 'memory', '--data', dir, '--port', String(port)], /ferry node listening/, { FERRY_MAX_CONNECTIONS: String(LIMIT) });
  const held: net.Socket[] = [];
  t.teardown(async () => {
    for (const s of held) s.destroy();
    await node.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await node.start();
  const pid = node.pid!;
  const baseline = fdCount(pid);
  for (let i = 0; i < LIMIT; i++) held.push(await open(port));
  // Every slot taken (the node sees the connections asynchronously): one more is refused.
  await waitFor(async () => (await attempt(port, false)) === 'closed', 10_000, 'the limit to be reached');

  const r = await storm(port, ATTEMPTS);
  t.log(`storm: ${r.answered} answered, ${r.closed} closed`);
  t.is(r.answered, 0, 'the limit held: no attempt beyond it was served');
  t.regex(node.output, /connection refused: \d+ open, at max-connections 50/);
  // Refusals are logged at most once per interval, not once per attempt.
  t.true((node.output.match(/connection refused/g) ?? []).length < 10);

  for (const s of held) s.destroy();
  held.length = 0;
  // With room again: served connections, half of whose clients vanish mid-request.
  const r2 = await storm(port, 2000);
  t.log(`after: ${r2.answered} answered, ${r2.closed} closed`);
  t.true(r2.answered > 0);
  await waitFor(() => fdCount(pid) <= baseline + 2, 20_000, `the node's fds to return to ${baseline}`);
  // The bound is on being served at all while the greedy client is paused, not on latency: on a
  // machine loaded 17x (CI once ran at load 35 on 2 cores) the default 5 s was not enough.
  const c = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port }], tendIntervalMs: 0, timeoutMs: SERVED_TIMEOUT_MS });
  t.teardown(() => c.close());
  await c.put({ namespace: 'test', set: 's', key: 'after-storm' }, { v: 1 });
  t.is((await c.get({ namespace: 'test', set: 's', key: 'after-storm' }))?.bins.v, 1);
  const refused = Number(/connections_refused=(\d+)/.exec(await c.infoValue('ferry-wire'))?.[1] ?? 'NaN');
  t.true(refused >= ATTEMPTS, `connections_refused=${refused}`);
});

test.serial('broker: connections past --max-connections are closed at once; the broker keeps serving', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-storm-broker-'));
  const port = await freePort();
  const broker = new FerryProcess('broker', ['broker', '--data', dir, '--port', String(port), '--max-connections', String(LIMIT)], /listening/);
  const held: net.Socket[] = [];
  t.teardown(async () => {
    for (const s of held) s.destroy();
    await broker.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await broker.start();
  const pid = broker.pid!;
  const baseline = fdCount(pid);
  for (let i = 0; i < LIMIT; i++) held.push(await open(port));
  const r = await storm(port, 1000);
  t.is(r.answered, 0);
  for (const s of held) s.destroy();
  held.length = 0;
  await waitFor(() => fdCount(pid) <= baseline + 2, 20_000, `the broker's fds to return to ${baseline}`);
  const { Kafka, logLevel } = await import('kafkajs');
  const admin = new Kafka({ brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  t.true(Array.isArray(await admin.listTopics()));
  await admin.disconnect();
});

/** Longest the well-behaved client waits for each answer. */
const SERVED_TIMEOUT_MS = 20_000;

test.serial('node: a client that sends requests but never reads answers is paused (bounded), others keep being served', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-noread-'));
  const port = await freePort();
  const node = new FerryProcess('node', ['node', '--storage', 'memory', '--data', dir, '--port', String(port)], /ferry node listening/);
  const greedy = new net.Socket();
  t.teardown(async () => {
    greedy.destroy();
    await node.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });
  await node.start();
  await new Promise<void>((resolve, reject) => {
    greedy.once('error', reject);
    greedy.connect({ host: '127.0.0.1', port }, () => resolve());
  });
  greedy.pause(); // never reads
  // Big answers ('statistics' is a few KiB each): the node must stop reading this socket.
  const frame = encodeInfoRequestFrame(['statistics', 'namespace/test', 'build']);
  let sent = 0;
  const blocked = await new Promise<boolean>((resolve) => {
    const pump = (): void => {
      while (sent < 1_000_000) {
        sent++;
        if (!greedy.write(frame)) {
          // Our side's buffer is full: the node stopped taking requests, or it is slow; give it time.
          const timer = setTimeout(() => resolve(true), 3000);
          greedy.once('drain', () => {
            clearTimeout(timer);
            pump();
          });
          return;
        }
      }
      resolve(false);
    };
    pump();
  });
  t.true(blocked, `the node kept reading after ${sent} unanswered requests`);
  t.log(`the node stopped reading after ${sent} requests`);
  // The bound is on being served at all while the greedy client is paused, not on latency: on a
  // machine loaded 17x (CI once ran at load 35 on 2 cores) the default 5 s was not enough.
  const c = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port }], tendIntervalMs: 0, timeoutMs: SERVED_TIMEOUT_MS });
  t.teardown(() => c.close());
  await c.put({ namespace: 'test', set: 's', key: 'other' }, { v: 2 });
  t.is((await c.get({ namespace: 'test', set: 's', key: 'other' }))?.bins.v, 2);
});
