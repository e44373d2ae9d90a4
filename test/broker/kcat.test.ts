import { spawn, spawnSync } from 'node:child_process';
import test from 'ava';
import { broker, kafka, waitFor } from './helpers.js';

const kcatTimeoutMs = 20_000;
const kcatPresent = spawnSync('kcat', ['-V'], { encoding: 'utf8' }).status === 0;

/** Runs kcat with optional stdin; resolves stdout, rejects on a non-zero exit or a timeout. */
function kcat(args: string[], input?: string): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('kcat', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`kcat ${args.join(' ')} timed out; stderr: ${stderr}`));
    }, kcatTimeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve({ stdout, stderr });
      else reject(new Error(`kcat ${args.join(' ')} exited ${code}; stderr: ${stderr}`));
    });
    child.stdin.end(input ?? '');
  });
}

const lines = (s: string): string[] => s.split('\n').filter((l) => l.length > 0);

test('kcat (librdkafka): -L, -P, -C from the beginning and from a timestamp, -G group mode resumes from commits', async (t) => {
  if (!kcatPresent) {
    t.fail('kcat is not on PATH: run `bash scripts/setup-test-deps.sh` (installs Debian kcat) and re-run');
    return;
  }
  const b = await broker(t, { defaultPartitions: 2 });
  const bs = `${b.host}:${b.port}`;

  await kcat(['-b', bs, '-P', '-t', 'kt', '-p', '0', '-z', 'gzip'], 'one\ntwo\nthree\n');
  await kcat(['-b', bs, '-P', '-t', 'kt', '-p', '1', '-X', 'enable.idempotence=true'], 'four\nfive\n');

  const meta = await kcat(['-b', bs, '-L']);
  t.regex(meta.stdout, new RegExp(`broker 1 at ${b.host}:${b.port} \\(controller\\)`));
  t.regex(meta.stdout, /topic "kt" with 2 partitions/);

  const all = await kcat(['-b', bs, '-C', '-t', 'kt', '-o', 'beginning', '-e', '-q', '-f', '%p:%o:%s\n']);
  t.deepEqual(lines(all.stdout).sort(), ['0:0:one', '0:1:two', '0:2:three', '1:0:four', '1:1:five']);

  // Timestamps: kafkajs writes records with known timestamps; kcat seeks with s@<ms>.
  const producer = kafka(b).producer();
  await producer.connect();
  t.teardown(() => producer.disconnect());
  const base = Date.now() - 10_000;
  await producer.send({
    topic: 'kts',
    messages: [0, 1, 2, 3].map((i) => ({ value: `t${i}`, partition: 0, timestamp: String(base + i * 1000) })),
  });
  const fromTs = await kcat(['-b', bs, '-C', '-t', 'kts', '-p', '0', '-o', `s@${base + 1500}`, '-e', '-q']);
  t.deepEqual(lines(fromTs.stdout), ['t2', 't3']);
  const q = await kcat(['-b', bs, '-Q', '-t', `kts:0:${base + 1000}`]);
  t.regex(q.stdout, /offset 1\b/);

  const group = ['-b', bs, '-G', 'kgroup', '-X', 'auto.offset.reset=earliest', '-e', '-q', '-f', '%s\n', 'kt'];
  const firstRun = await kcat(group);
  t.deepEqual(lines(firstRun.stdout).sort(), ['five', 'four', 'one', 'three', 'two']);
  await kcat(['-b', bs, '-P', '-t', 'kt', '-p', '0'], 'six\n');
  const secondRun = await kcat(group);
  t.deepEqual(lines(secondRun.stdout), ['six']);
});

test('kcat -G: two members rebalance while producing; together they see every message', async (t) => {
  if (!kcatPresent) {
    t.fail('kcat is not on PATH: run `bash scripts/setup-test-deps.sh` (installs Debian kcat) and re-run');
    return;
  }
  const b = await broker(t, { defaultPartitions: 2 });
  const bs = `${b.host}:${b.port}`;
  const seen = new Map<string, Set<string>>();
  const member = (name: string) => {
    const child = spawn('kcat', ['-b', bs, '-G', 'pair', '-X', 'auto.offset.reset=earliest', '-X', 'heartbeat.interval.ms=300', '-u', '-q', '-f', '%s\n', 'kg'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const mine = new Set<string>();
    seen.set(name, mine);
    let buf = '';
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString();
      const parts = buf.split('\n');
      buf = parts.pop()!;
      for (const p of parts) if (p) mine.add(p);
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    t.teardown(() => {
      if (child.exitCode === null) child.kill('SIGKILL');
    });
    return { child, exited };
  };
  const produce = (from: number, n: number) =>
    kcat(['-b', bs, '-P', '-t', 'kg', '-K', ':'], Array.from({ length: n }, (_, i) => `k${from + i}:m${from + i}\n`).join(''));
  const all = () => new Set([...seen.values()].flatMap((s) => [...s]));

  await produce(0, 20);
  const a = member('a');
  await waitFor(() => all().size >= 20, 15_000, 'first member to read the first 20');
  const c = member('b');
  const admin = kafka(b).admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  const groupIs = async (members: number) => {
    const g = (await admin.describeGroups(['pair'])).groups[0]!;
    return g.state === 'Stable' && g.members.length === members;
  };
  await waitFor(() => groupIs(2), 20_000, 'a stable two-member group');
  await produce(20, 20);
  await waitFor(() => all().size >= 40 && (seen.get('b')?.size ?? 0) > 0, 20_000, 'both members reading after the rebalance');
  c.child.kill('SIGTERM');
  await c.exited;
  await waitFor(() => groupIs(1), 20_000, 'a stable one-member group after the leave');
  await produce(40, 20);
  await waitFor(() => all().size >= 60, 20_000, 'the remaining member to take over every partition');
  a.child.kill('SIGTERM');
  await a.exited;
  t.is(all().size, 60);
  t.true((seen.get('a')?.size ?? 0) > 0);
});
