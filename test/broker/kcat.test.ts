import { spawn, spawnSync } from 'node:child_process';
import test from 'ava';
import { broker, kafka } from './helpers.js';

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
