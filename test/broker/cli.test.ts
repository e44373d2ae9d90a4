import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { brokerOptions } from '../../ops/commands/broker.js';
import { kafka, tempDir, waitFor } from './helpers.js';

const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const startTimeoutMs = 30_000;

interface Running {
  child: ChildProcess;
  host: string;
  port: number;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

async function spawnBroker(t: import('ava').ExecutionContext, args: string[], env: Record<string, string> = {}): Promise<Running> {
  const child = spawn(process.execPath, ['bin/ferry.mjs', 'broker', ...args], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const listening = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`broker did not start in ${startTimeoutMs} ms; stderr: ${err}`)), startTimeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ferry broker listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    });
    void exited.then(({ code }) => {
      clearTimeout(timer);
      reject(new Error(`broker exited with ${code} before listening; stderr: ${err}`));
    });
  });
  const i = listening.lastIndexOf(':');
  return { child, host: listening.slice(0, i), port: Number(listening.slice(i + 1)), exited };
}

test('ferry broker as a child process: SIGTERM exits cleanly, kill -9 loses no acks=-1 acknowledged message', async (t) => {
  const data = tempDir(t);
  // Run 1 (options from the environment): produce, then SIGTERM.
  const one = await spawnBroker(t, [], { FERRY_BROKER_DATA: data, FERRY_BROKER_PORT: '0', FERRY_BROKER_PARTITIONS: '2' });
  const k1 = kafka(one, 'cli-1');
  const p1 = k1.producer();
  await p1.connect();
  const acked = new Set<string>();
  const values = Array.from({ length: 50 }, (_, i) => `first-${i}`);
  await p1.send({ topic: 'durable', acks: -1, messages: values.map((value) => ({ value })) });
  values.forEach((v) => acked.add(v));
  await p1.disconnect();
  one.child.kill('SIGTERM');
  t.deepEqual(await one.exited, { code: 0, signal: null });

  // Run 2 (flags): keep producing with acks=-1 and kill -9 while requests are in flight.
  const two = await spawnBroker(t, ['--data', data, '--port', '0']);
  const k2 = kafka(two, 'cli-2', 0);
  const p2 = k2.producer({ retry: { retries: 0 } });
  await p2.connect();
  let n = 0;
  let stop = false;
  const loop = (async () => {
    while (!stop) {
      const batch = Array.from({ length: 20 }, () => `second-${n++}`);
      try {
        await p2.send({ topic: 'durable', acks: -1, messages: batch.map((value) => ({ value })) });
        batch.forEach((v) => acked.add(v));
      } catch {
        return;
      }
    }
  })();
  await waitFor(() => acked.size >= 50 + 400, 20_000, 'acknowledged produces before the kill');
  two.child.kill('SIGKILL');
  t.is((await two.exited).signal, 'SIGKILL');
  stop = true;
  await loop;
  await p2.disconnect().catch(() => undefined);

  // Run 3: every acknowledged message is there, and the topic kept its 2 partitions.
  const three = await spawnBroker(t, ['--data', data, '--port', '0']);
  const k3 = kafka(three, 'cli-3');
  const admin = k3.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets('durable');
  t.is(offsets.length, 2);
  const consumer = k3.consumer({ groupId: 'check', maxWaitTimeInMs: 100 });
  await consumer.connect();
  await consumer.subscribe({ topic: 'durable', fromBeginning: true });
  const seen = new Set<string>();
  const total = offsets.reduce((s, o) => s + Number(o.high), 0);
  let count = 0;
  await consumer.run({
    eachMessage: async ({ message }) => {
      seen.add(message.value!.toString());
      count++;
    },
  });
  await waitFor(() => count >= total, 20_000, `all ${total} stored messages`);
  const missing = [...acked].filter((v) => !seen.has(v));
  t.deepEqual(missing, []);
  t.true(total >= acked.size);
  await consumer.disconnect();
  await admin.disconnect();
  three.child.kill('SIGINT');
  t.is((await three.exited).code, 0);
});

test('broker CLI options: flags over environment, bad values refused', (t) => {
  const o = brokerOptions({ port: '1234' }, { FERRY_BROKER_PORT: '9', FERRY_BROKER_ADVERTISED_HOST: 'example.test', FERRY_BROKER_FLUSH_POLICY: 'os' });
  t.is(o.port, 1234);
  t.is(o.advertisedHost, 'example.test');
  t.is(o.flushPolicy, 'os');
  t.is(o.dataDir, './data/broker');
  t.is(brokerOptions({}, {}).port, 9092);
  t.throws(() => brokerOptions({ flushPolicy: 'sometimes' }, {}), { message: /flush-policy/ });
  t.throws(() => brokerOptions({ partitions: '0' }, {}), { message: /partitions/ });
  t.throws(() => brokerOptions({ port: 'x' }, {}), { message: /port/ });
});
