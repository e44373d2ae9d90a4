/**
 * Disk full, as a user meets it: a commit-to-device node on a small filesystem the test mounts
 * (tmpfs, 16 MiB, far smaller than the 64 MiB device file), filled by the official client with
 * 1 KiB records. Writes stop before the disk is full (reason in `statistics` and the log); a
 * shutdown on a completely full disk exits promptly and releases the lock; a start on it serves
 * every acknowledged record; writes resume by themselves once space returns; a clean shutdown
 * afterwards restarts warm. Needs root (mount); without it the test is skipped, saying so.
 */
import test from 'ava';
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, rmSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryProcess, freePort, waitFor } from '../helpers/procs.js';
import { tryMountTmpfs } from '../helpers/tmpfs.js';

/* The official client is CommonJS with loose typings; it is driven through `any` on purpose. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const Aerospike: Any = createRequire(import.meta.url)('aerospike');

const FS_BYTES = 16 * 1024 * 1024;
/** Taken by "another program" before the fill, freed when space returns. */
const OTHER_BYTES = 4 * 1024 * 1024;
const VALUE = 'x'.repeat(1024);
/** Puts in flight while filling. */
const FILL_CONCURRENCY = 16;
/** OUT_OF_SPACE answers seen before the fill stops. */
const REFUSALS_TO_STOP = 64;

function tryMount(dir: string): boolean {
  return tryMountTmpfs(dir, FS_BYTES);
}

const probe = mkdtempSync(join(tmpdir(), 'ferry-mount-probe-'));
const canMount = tryMount(probe);
if (canMount) execFileSync('umount', [probe]);
rmSync(probe, { recursive: true, force: true });
if (!canMount) console.log('disk-full test skipped: cannot mount a tmpfs here (needs root)');
const maybe = canMount ? test.serial : test.skip;

async function connect(port: number): Promise<Any> {
  return Aerospike.connect({
    hosts: [{ addr: '127.0.0.1', port }],
    log: { level: Aerospike.log.OFF },
    policies: { read: { totalTimeout: 15000 }, write: { totalTimeout: 15000 }, batch: { totalTimeout: 30000 }, info: { timeout: 10000 } },
  });
}

async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (err) {
    return (err as { code: number }).code;
  }
}

/** Fills with 1 KiB records from `from` until the node keeps refusing; returns the acknowledged keys. */
async function fill(client: Any, from: number): Promise<number[]> {
  const acked: number[] = [];
  const others: number[] = [];
  let refused = 0;
  let next = from;
  const worker = async (): Promise<void> => {
    while (refused < REFUSALS_TO_STOP && others.length === 0) {
      const k = next++;
      const code = await codeOf(client.put(new Aerospike.Key('test', 'fill', k), { v: VALUE, k }));
      if (code === 0) acked.push(k);
      else if (code === 8) refused++;
      // A timeout on a loaded machine: unknown outcome, not acknowledged; anything else is wrong.
      else if (code !== Aerospike.status.ERR_TIMEOUT) others.push(code);
    }
  };
  await Promise.all(Array.from({ length: FILL_CONCURRENCY }, worker));
  if (others.length > 0) throw new Error(`writes answered ${others.join(', ')} (only OK or OUT_OF_SPACE expected)`);
  return acked;
}

/** Keys whose record does not read back with its own value. */
async function unreadable(client: Any, keys: number[]): Promise<number[]> {
  const bad: number[] = [];
  for (let i = 0; i < keys.length; i += 500) {
    const batch = keys.slice(i, i + 500);
    const rs = await client.batchRead(batch.map((k) => ({ key: new Aerospike.Key('test', 'fill', k), readAllBins: true })));
    rs.forEach((r: Any, j: number) => {
      if (r.status !== 0 || r.record?.bins?.k !== batch[j] || r.record?.bins?.v !== VALUE) bad.push(batch[j]!);
    });
  }
  return bad;
}

async function nsStats(client: Any): Promise<Record<string, string>> {
  const raw = String(await client.infoAny('namespace/test'));
  const body = raw.slice(raw.indexOf('\t') + 1).trim();
  return Object.fromEntries(body.split(';').map((kv) => kv.split('=') as [string, string]));
}

/** Writes zeros until the filesystem refuses: it is then 100% full. */
function fillFilesystem(path: string): void {
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, chunk);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  // Whatever partial pages remain: fill them byte-wise.
  const small = openSync(`${path}.tail`, 'w');
  try {
    for (;;) writeSync(small, Buffer.alloc(512));
  } catch {
    // full
  } finally {
    closeSync(small);
  }
}

maybe('disk full: writes stop with a reason, shutdown exits, a full disk still starts and serves reads, writes resume by themselves, nothing acknowledged is lost', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'ferry-diskfull-'));
  const mnt = join(root, 'mnt');
  mkdirSync(mnt);
  t.true(tryMount(mnt), 'tmpfs mounted');
  const procs: FerryProcess[] = [];
  const clients: Any[] = [];
  t.teardown(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    for (const c of clients) {
      try {
        c.close();
      } catch {
        // closed already
      }
    }
    try {
      execFileSync('umount', [mnt]);
    } catch {
      // not mounted
    }
    rmSync(root, { recursive: true, force: true });
  });
  const port = await freePort();
  const cfg = join(root, 'node.json');
  writeFileSync(cfg, JSON.stringify({
    namespaces: [{ name: 'test', 'commit-to-device': true, filesize: 64 * 1024 * 1024, 'write-block-size': 131072, 'write-log-entries': 16384 }],
  }));
  const data = join(mnt, 'data');
  const lock = join(data, 'node.lock');
  const node = new FerryProcess('node', ['node', '--config', cfg, '--data', data, '--port', String(port)], /ferry node listening/);
  procs.push(node);
  const session = async (): Promise<Any> => {
    await node.start();
    const c = await connect(port);
    clients.push(c);
    return c;
  };

  // Another program's file shares the filesystem (deleting it later is how space returns).
  const other = join(mnt, 'other');
  writeFileSync(other, Buffer.alloc(OTHER_BYTES));

  // 1. Fill: writes are refused before the disk is full, with the reason in statistics and the log.
  let client = await session();
  const acked = await fill(client, 0);
  t.log(`${acked.length} records acknowledged before stop-writes`);
  t.true(acked.length > 1000);
  const st = await nsStats(client);
  t.is(st.stop_writes, 'true');
  t.is(st.stop_writes_reason, 'filesystem-full');
  await waitFor(() => /namespace test: writes refused \(filesystem-full\)/.test(node.output), 10_000, 'the log to say why writes stop');

  // 2. Someone else takes the last byte; SIGTERM still ends the node, skipping the snapshot.
  const filler = join(mnt, 'filler');
  fillFilesystem(filler);
  client.close();
  node.signal('SIGTERM');
  await node.exited();
  t.deepEqual(node.exit, { code: 1, signal: null }, 'exited by itself, reporting what it skipped');
  t.regex(node.output, /warm-restart snapshot not written/);
  t.false(existsSync(lock), 'lock released');

  // 3. A start on the full disk succeeds (cold) and serves every acknowledged record.
  client = await session();
  await waitFor(() => /namespace test opened \(cold/.test(node.output), 10_000, 'the cold start to be logged');
  t.deepEqual(await unreadable(client, acked), []);
  t.is(await codeOf(client.put(new Aerospike.Key('test', 'fill', 'while-full'), { v: 1 })), 8);
  t.not((await nsStats(client)).stop_writes_reason, '');

  // 4. Space returns: writes resume without a restart.
  for (const f of [other, filler, `${filler}.tail`]) unlinkSync(f);
  await waitFor(async () => (await codeOf(client.put(new Aerospike.Key('test', 'fill', 'resumed'), { v: 1 }))) === 0, 20_000, 'writes to resume');
  await waitFor(() => /namespace test: writes accepted again/.test(node.output), 10_000, 'the log to say writes are accepted again');
  const more: number[] = [];
  for (let k = 1_000_000; k < 1_000_100; k++) {
    t.is(await codeOf(client.put(new Aerospike.Key('test', 'fill', k), { v: VALUE, k })), 0);
    more.push(k);
  }

  // 5. A clean shutdown now writes its snapshot: the next start is warm and holds everything.
  client.close();
  node.signal('SIGTERM');
  await node.exited();
  t.deepEqual(node.exit, { code: 0, signal: null });
  client = await session();
  await waitFor(() => /namespace test opened \(warm/.test(node.output), 10_000, 'the warm start to be logged');
  t.deepEqual(await unreadable(client, [...acked, ...more]), []);
});

maybe('broker disk full: produce is refused as a retriable storage error while fetches go on over an intact log; produce resumes when space returns; SIGTERM exits and a start on a full disk keeps every acknowledged message', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'ferry-brokerfull-'));
  const mnt = join(root, 'mnt');
  mkdirSync(mnt);
  t.true(tryMount(mnt), 'tmpfs mounted');
  // "Another program" holds some space, given back later.
  writeFileSync(join(mnt, 'other'), Buffer.alloc(OTHER_BYTES));
  const port = await freePort();
  const broker = new FerryProcess('broker', ['broker', '--data', join(mnt, 'broker'), '--port', String(port)], /listening/);
  const { Kafka, logLevel } = await import('kafkajs');
  const kafka = new Kafka({ brokers: [`127.0.0.1:${port}`], logLevel: logLevel.NOTHING, retry: { retries: 1, initialRetryTime: 50 } });
  const producer = kafka.producer();
  t.teardown(async () => {
    await producer.disconnect().catch(() => undefined);
    await broker.stop('SIGKILL');
    try {
      execFileSync('umount', [mnt]);
    } catch {
      // not mounted
    }
    rmSync(root, { recursive: true, force: true });
  });
  await broker.start();
  const setup = kafka.admin();
  await setup.connect();
  await setup.createTopics({ topics: [{ topic: 't', numPartitions: 1 }] });
  await setup.disconnect();
  await producer.connect();
  const acked: string[] = [];
  let sent = 0;
  const value = Buffer.alloc(16 * 1024, 1);
  /** One batch of 8 keyed messages; true when acknowledged. */
  const send = async (): Promise<boolean> => {
    const keys = Array.from({ length: 8 }, () => String(sent++));
    try {
      await producer.send({ topic: 't', acks: -1, messages: keys.map((key) => ({ key, value })) });
      acked.push(...keys);
      return true;
    } catch (err) {
      t.regex(String((err as Error).message), /disk error|storage|retries/i);
      return false;
    }
  };
  let refused = 0;
  while (refused < 3) if (!(await send())) refused++;
  t.true(acked.length > 0 && broker.running, `${acked.length} messages acknowledged, broker still up`);

  // Full disk: a fetch from the beginning returns every acknowledged message, in order, CRCs checked.
  const fetched = await kcatConsume(`127.0.0.1:${port}`, 't');
  t.deepEqual(fetched, acked.map((k, i) => `${i} ${k}`), 'the log holds exactly what was acknowledged');

  // Space returns: produce resumes without a restart.
  unlinkSync(join(mnt, 'other'));
  await waitFor(() => send(), 15_000, 'produce to resume once space returned');
  t.true(broker.running);

  fillFilesystem(join(mnt, 'filler'));
  await producer.disconnect();
  broker.signal('SIGTERM');
  await broker.exited();
  t.deepEqual(broker.exit, { code: 0, signal: null });
  await broker.start();
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets('t');
  await admin.disconnect();
  t.is(offsets.reduce((n, o) => n + Number(o.high), 0), acked.length);
  t.deepEqual(await kcatConsume(`127.0.0.1:${port}`, 't'), acked.map((k, i) => `${i} ${k}`), 'after a restart on a full disk too');
});

/** Every message of partition 0 of `topic` as "offset key", read by kcat without a consumer group. */
function kcatConsume(broker: string, topic: string): Promise<string[]> {
  return new Promise((resolve, reject) => {
    execFile('kcat', ['-C', '-b', broker, '-t', topic, '-p', '0', '-o', 'beginning', '-e', '-q', '-X', 'check.crcs=true', '-f', '%o %k\\n'], { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`kcat: ${err.message}: ${stderr}`));
      else resolve(stdout.split('\n').filter((l) => l !== ''));
    });
  });
}
