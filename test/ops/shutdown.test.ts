/**
 * Shutdown always completes, as real processes: a node whose shipper's broker is frozen
 * (accepts, never answers), a receiver whose broker is frozen (its deadline passes, then a second
 * signal), and data-directory locks left by dead or reused pids.
 */
import test from 'ava';
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryClient } from '../../store/client/client.js';
import { FerryProcess, freePort, waitFor } from '../helpers/procs.js';

const RECORDS = 300;

interface Rig {
  dir: string;
  brokerPort: number;
  broker: FerryProcess;
  procs: FerryProcess[];
}

async function rig(t: { teardown(fn: () => Promise<void>): void }): Promise<Rig> {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-shutdown-'));
  const brokerPort = await freePort();
  const broker = new FerryProcess('broker', ['broker', '--data', join(dir, 'broker'), '--port', String(brokerPort)], /listening/);
  const r: Rig = { dir, brokerPort, broker, procs: [broker] };
  t.teardown(async () => {
    broker.signal('SIGCONT');
    await Promise.all(r.procs.map((p) => p.stop('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  });
  await broker.start();
  return r;
}

async function put(c: FerryClient, from: number, n: number): Promise<void> {
  for (let i = from; i < from + n; i++) {
    await c.put({ namespace: 'test', set: 's', key: i }, { v: i });
  }
}

test.serial('a node whose shipper\'s broker is frozen exits on SIGTERM within its deadline, releases its lock, and ships everything after a restart', async (t) => {
  const r = await rig(t);
  const port = await freePort();
  writeFileSync(join(r.dir, 'a.json'), JSON.stringify({
    namespaces: [{ name: 'test', filesize: 16 * 1024 * 1024, 'write-block-size': 131072, 'write-log-entries': 16384 }],
    xdr: { site: 'A', destinations: [{ name: 'B', brokers: [`127.0.0.1:${r.brokerPort}`], namespaces: ['test'], 'kafka-partitions': 2 }] },
  }));
  const args = ['node', '--config', join(r.dir, 'a.json'), '--data', join(r.dir, 'a'), '--port', String(port)];
  const node = new FerryProcess('node A', args, /ferry node listening/);
  r.procs.push(node);
  await node.start();
  let c = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port }], tendIntervalMs: 0 });
  await put(c, 0, RECORDS);
  // The broker stops answering (SIGSTOP: connections stay open, nothing comes back).
  r.broker.signal('SIGSTOP');
  await put(c, RECORDS, RECORDS);
  c.close();
  node.signal('SIGTERM');
  await node.exited();
  t.log(node.output.split('\n').filter((l) => /shut|not finished|acknowledged/.test(l)).join('\n'));
  t.deepEqual(node.exit, { code: 0, signal: null }, 'exited by itself, cleanly');
  t.regex(node.output, /clean shutdown complete/);
  t.false(existsSync(join(r.dir, 'a', 'node.lock')), 'lock released');

  // Nothing was lost: with the broker back, the restarted node ships every record.
  r.broker.signal('SIGCONT');
  await node.start();
  c = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port }], tendIntervalMs: 0 });
  t.teardown(() => c.close());
  await waitFor(async () => {
    const x = JSON.parse(await c.infoValue('xdr-stats')) as { streams: Array<{ recordsBehind: number; recoveringPartitions: number; connected: boolean }> };
    const s = x.streams[0]!;
    return s.connected && s.recordsBehind === 0 && s.recoveringPartitions === 0;
  }, 60_000, 'the restarted node to ship everything');
  const { Kafka, logLevel } = await import('kafkajs');
  const kafka = new Kafka({ brokers: [`127.0.0.1:${r.brokerPort}`], logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await admin.fetchTopicOffsets('ferry.A.test');
  await admin.disconnect();
  const inTopic = offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
  t.true(inTopic >= 2 * RECORDS, `${inTopic} messages in the topic for ${2 * RECORDS} records`);
});

test.serial('a receiver whose broker is frozen exits when its shutdown deadline passes; a second SIGTERM exits at once', async (t) => {
  const r = await rig(t);
  const bPort = await freePort();
  writeFileSync(join(r.dir, 'b.json'), JSON.stringify({ namespaces: [{ name: 'test', 'storage-engine': 'memory', fenced: true }] }));
  const b = new FerryProcess('node B', ['node', '--config', join(r.dir, 'b.json'), '--data', join(r.dir, 'b'), '--port', String(bPort)], /ferry node listening/);
  r.procs.push(b);
  await b.start();
  const receiverWith = async (name: string, timeoutS: number): Promise<FerryProcess> => {
    const cfg = join(r.dir, `${name}.json`);
    writeFileSync(cfg, JSON.stringify({
      brokers: [`127.0.0.1:${r.brokerPort}`], topics: ['ferry.A.test'], destination: [`127.0.0.1:${bPort}`],
      'metrics-port': 0, 'group-id': 'g', 'shutdown-timeout-s': timeoutS,
    }));
    const p = new FerryProcess(name, ['receiver', '--config', cfg], /ferry receiver ready/);
    r.procs.push(p);
    await p.start();
    return p;
  };

  // Deadline: stopping the consumer needs the broker, which never answers.
  const first = await receiverWith('receiver-1', 2);
  r.broker.signal('SIGSTOP');
  first.signal('SIGTERM');
  await first.exited();
  t.deepEqual(first.exit, { code: 1, signal: null }, 'exited by itself, reporting an unfinished shutdown');
  t.regex(first.output, /shutdown deadline \(2000 ms\) passed; not finished: stop consuming/);
  r.broker.signal('SIGCONT');

  // Second signal: a long deadline, the broker frozen again, and the operator insists.
  const second = await receiverWith('receiver-2', 600);
  r.broker.signal('SIGSTOP');
  second.signal('SIGTERM');
  await waitFor(() => /shutting down/.test(second.output), 10_000, 'the receiver to start shutting down');
  second.signal('SIGTERM');
  await second.exited();
  t.deepEqual(second.exit, { code: 1, signal: null });
  t.regex(second.output, /second SIGTERM: exiting at once/);
});

test.serial('a data-directory lock left by a dead process, or by a reused pid, never blocks a start; a live owner does', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-lock-'));
  const procs: FerryProcess[] = [];
  t.teardown(async () => {
    await Promise.all(procs.map((p) => p.stop('SIGKILL')));
    rmSync(dir, { recursive: true, force: true });
  });
  const port = await freePort();
  const node = (): FerryProcess => {
    const p = new FerryProcess('node', ['node', '--storage', 'memory', '--data', dir, '--port', String(port)], /ferry node listening/);
    procs.push(p);
    return p;
  };
  // An old-style lock file of a pid that is not running (kill -9 long ago).
  writeFileSync(join(dir, 'node.lock'), '999999999\n');
  const a = await node().start();
  await a.stop();
  t.false(existsSync(join(dir, 'node.lock')));
  // pid 1 is always running, but it started at another time than the owner recorded: reused pid.
  symlinkSync('1:1', join(dir, 'node.lock'));
  const b = await node().start();
  // While b runs, another node on the directory is refused, naming b's pid.
  const c = node();
  const err = await t.throwsAsync(c.start());
  t.regex(err?.message ?? '', /data directory is in use by process \d+/);
  await b.stop();
  t.deepEqual(b.exit, { code: 0, signal: null });
  t.false(existsSync(join(dir, 'node.lock')));
});
