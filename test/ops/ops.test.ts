/**
 * ferry lag, replay and failover against real processes: the embedded broker, node A shipping to
 * node B (fenced), and a receiver applying to B. The commands run as a user types them.
 */
import test from 'ava';
import { LagSource, buildLagReport, formatLagReport, parseXdrStats, type LagReport } from '../../ops/lag.js';
import type { FailoverReport } from '../../ops/failover.js';
import { planRewind, type ReshipReport, type RewindReport } from '../../ops/replay.js';
import { OpsError, formatTable, parseBaseUrl, parseHostPort, parseHostPortList, parseTime } from '../../ops/util.js';
import type { FerryClient } from '../../store/client/client.js';
import { ResultCode } from '../../store/types.js';
import { freePort, runCli, runUntilLines, startSites, waitFor, type Sites } from './helpers.js';
import { BROKER_KINDS, kafkaPerFile } from '../helpers/kafka.js';

const kafka = kafkaPerFile(test);

/** Longest wait for replication to settle. */
const CONVERGE_TIMEOUT_MS = 30_000;

async function writeRecords(c: FerryClient, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) await c.put({ namespace: 'test', set: 'ops', key: `${tag}-${i}` }, { i, tag });
}

async function countRecords(c: FerryClient): Promise<number> {
  let n = 0;
  for await (const r of c.scan('test', { set: 'ops', headerOnly: true })) if (r) n++;
  return n;
}

async function lagJson(s: Sites, extra: string[] = []): Promise<LagReport> {
  const r = await runCli(['lag', '--node', s.a, '--receiver', s.receiverUrl, '--json', ...extra]);
  if (r.code !== 0) throw new Error(`ferry lag exited ${r.code}: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  if (lines.length !== 1) throw new Error(`ferry lag --json printed ${lines.length} lines`);
  return JSON.parse(lines[0]!) as LagReport;
}

/** Everything written to A is in B: the shipper has nothing left and the group nothing to consume. */
async function converged(s: Sites, applied: number): Promise<void> {
  // Polled in-process (the code behind `ferry lag`): a CLI start per poll is slow on a busy machine.
  const source = new LagSource(parseHostPort(s.a, 'a'), s.receiverUrl, false, 5000);
  try {
    await waitFor(async () => {
      const r = await source.collect();
    const st = r.streams[0]!;
    const rc = r.receiver!;
      return st.recordsBehind === 0 && st.msBehind === 0 && rc.consumerLag === 0 && rc.applied + rc.lostConflict >= applied;
    }, CONVERGE_TIMEOUT_MS, 'the lag to show nothing behind');
  } finally {
    source.close();
  }
}

async function writeError(c: FerryClient, key: string): Promise<number | undefined> {
  try {
    await c.put({ namespace: 'test', set: 'ops', key }, { v: 1 });
    return undefined;
  } catch (err) {
    return (err as { code?: number }).code;
  }
}

for (const kind of BROKER_KINDS) {
  test.serial(`[${kind}] ferry lag: the stream, the receiver, JSON per refresh, and exit 2 when unreachable`, async (t) => {
    const s = await startSites(t, (dir) => kafka.broker(kind, dir));
    await writeRecords(s.clientA, 200, 'lag');

    const first = await lagJson(s, ['--partitions']);
    t.is(first.site, 'A');
    t.is(first.streams.length, 1);
    const st = first.streams[0]!;
    t.like(st, { destination: 'B', namespace: 'test', topic: s.topic, received: true });
    t.true(Array.isArray(st.partitions));
    t.true(st.partitions!.every((p) => p.behind > 0 || p.recovering), 'only partitions behind are listed');
    t.like(first.receiver, { url: s.receiverUrl, groupId: s.group, running: true });

    await converged(s, 200);
    const done = await lagJson(s, ['--partitions']);
    t.is(done.streams[0]!.recordsBehind, 0);
    t.deepEqual(done.streams[0]!.partitions, []);
    t.true(done.streams[0]!.shipped >= 200);
    t.is(done.receiver!.consumerLag, 0);
    t.is(done.receiver!.deadLettered, 0);

    // The table names the columns and the destination.
    const table = await runCli(['lag', '--node', s.a, '--receiver', s.receiverUrl]);
    t.is(table.code, 0, table.stderr);
    t.regex(table.stdout, /DEST\s+NAMESPACE\s+BEHIND\s+MS BEHIND\s+SHIPPED\/S\s+RETRIES\s+APPLIED\/S\s+LOST CONFLICT\s+DEAD-LETTERED\s+CONSUMER LAG\s+APPLY LAG MS/);
    t.regex(table.stdout, /^B\s+test\s+0\s+0\s/m);

    // --watch --json: one JSON object per line until Ctrl-C, then exit 0.
    const watch = await runUntilLines(['lag', '--node', s.a, '--json', '--watch', '--interval-ms', '200'], 3);
    t.is(watch.code, 0, watch.stderr);
    const lines = watch.stdout.trim().split('\n');
    t.true(lines.length >= 3);
    for (const l of lines) t.is((JSON.parse(l) as LagReport).streams[0]!.destination, 'B');

    // Unreachable processes: exit 2 with a message.
    // A node without a shipper (B) is named as such; a bad option is a usage error.
    const closed = await freePort();
    const [noNode, noReceiver, notShipping, usage] = await Promise.all([
      runCli(['lag', '--node', `127.0.0.1:${closed}`, '--timeout-ms', '2000']),
      runCli(['lag', '--node', s.a, '--receiver', `http://127.0.0.1:${closed}`, '--json']),
      runCli(['lag', '--node', s.b]),
      runCli(['lag', '--node', 'nohostport']),
    ]);
    t.is(noNode.code, 2);
    t.regex(noNode.stderr, /ferry lag: node 127\.0\.0\.1:\d+/);
    t.is(noReceiver.code, 2);
    t.is((JSON.parse(noReceiver.stdout) as { error: { code: string } }).error.code, 'UNREACHABLE');
    t.is(notShipping.code, 2);
    t.regex(notShipping.stderr, /xdr/);
    t.is(usage.code, 2);
    t.regex(usage.stderr, /--node must be host:port/);
  });

  test.serial(`[${kind}] ferry replay: a rewound group and a re-ship leave B unchanged; an active group is refused`, async (t) => {
    const s = await startSites(t, (dir) => kafka.broker(kind, dir));
    const n = 150;
    await writeRecords(s.clientA, n, 'replay');
    await s.clientA.put({ namespace: 'test', set: 'ops', key: 'replay-0' }, { i: 0, tag: 'updated' });
    await converged(s, n + 1);
    const keys = ['replay-0', 'replay-1', 'replay-77', 'replay-149'];
    const snapshot = async () => Promise.all(keys.map((k) => s.clientB.get({ namespace: 'test', set: 'ops', key: k })));
    const before = await snapshot();
    t.deepEqual(before[0]!.bins, { i: 0, tag: 'updated' });
    t.is(before[0]!.generation, 2);
    t.is(await countRecords(s.clientB), n);

    const rewind = ['replay', '--brokers', s.brokers, '--group', s.group, '--topic', s.topic];
    // The receiver is running: refused, and told what to do.
    const active = await runCli([...rewind, '--beginning']);
    t.is(active.code, 2);
    t.regex(active.stderr, /active member/);
    t.regex(active.stderr, /[Ss]top the receivers/);

    await s.receiver.stop();
    const r1 = await runCli([...rewind, '--beginning', '--json']);
    t.is(r1.code, 0, r1.stderr);
    const rep1 = JSON.parse(r1.stdout) as RewindReport;
    t.is(rep1.partitions.length, 4);
    for (const p of rep1.partitions) {
      t.is(p.new, p.low);
      t.is(p.old, p.high, 'everything had been consumed');
    }
    t.is(rep1.replayMessages, rep1.partitions.reduce((sum, p) => sum + p.high - p.low, 0));
    t.true(rep1.replayMessages >= n + 1);
    // Idempotent: the same target again changes nothing.
    const r2 = await runCli([...rewind, '--beginning', '--json']);
    t.is(r2.code, 0, r2.stderr);
    const rep2 = JSON.parse(r2.stdout) as RewindReport;
    t.deepEqual(rep2.partitions.map((p) => [p.old, p.new]), rep1.partitions.map((p) => [p.new, p.new]));
    // The text form shows old -> new per partition.
    const r3 = await runCli([...rewind, '--offset', '0']);
    t.is(r3.code, 0, r3.stderr);
    t.regex(r3.stdout, /partition +0: 0 -> 0/);
    // By time: after every message -> the end of each partition; time 0 -> the start.
    const late = await runCli([...rewind, '--from-time', String(Date.now() + 3_600_000), '--json']);
    t.is(late.code, 0, late.stderr);
    const lateRep = JSON.parse(late.stdout) as RewindReport;
    t.deepEqual(lateRep.partitions.map((p) => p.new), lateRep.partitions.map((p) => p.high));
    const early = await runCli([...rewind, '--from-time', '0', '--json']);
    t.is(early.code, 0, early.stderr);
    const earlyRep = JSON.parse(early.stdout) as RewindReport;
    t.deepEqual(earlyRep.partitions.map((p) => p.new), earlyRep.partitions.map((p) => p.low));

    // Restarted, the receiver consumes everything again; B does not change.
    await s.restartReceiver();
    await waitFor(async () => {
      const st = await s.receiverStats();
      return st.consumerLag === 0 && st.applied + st.lostConflict >= rep1.replayMessages;
    }, CONVERGE_TIMEOUT_MS, 'the receiver to consume the topic again');
    t.deepEqual(await snapshot(), before);
    t.is(await countRecords(s.clientB), n);

    // Re-ship from the source: every record goes to Kafka again, and B still does not change.
    const lostBefore = (await s.receiverStats()).lostConflict;
    const rs = await runCli(['replay', '--node', s.a, '--dc', 'B', '--namespace', 'test', '--from-time', '0', '--json']);
    t.is(rs.code, 0, rs.stderr);
    const reshipped = JSON.parse(rs.stdout) as ReshipReport;
    t.true(reshipped.completed);
    t.true(reshipped.shipped >= n, `shipped ${reshipped.shipped}`);
    t.regex(reshipped.answer, /^ok;streams=1;partitions=4096$/);
    await waitFor(async () => {
      const st = await s.receiverStats();
      return st.consumerLag === 0 && st.lostConflict - lostBefore >= n;
    }, CONVERGE_TIMEOUT_MS, 'the receiver to see the re-shipped records');
    t.deepEqual(await snapshot(), before);
    t.is(await countRecords(s.clientB), n);
    const bad = await runCli(['replay', '--node', s.a, '--dc', 'nope', '--namespace', 'test', '--from-time', '0']);
    t.is(bad.code, 2);
    t.regex(bad.stderr, /ships no stream nope\/test/);
  });

  test.serial(`[${kind}] ferry failover: drains, lifts B's fence, fences A and reports the data-loss window`, async (t) => {
    const s = await startSites(t, (dir) => kafka.broker(kind, dir));
    const n = 100;
    await writeRecords(s.clientA, n, 'fo');
    // Passive B refuses client writes.
    t.is(await writeError(s.clientB, 'before'), ResultCode.FORBIDDEN);
    t.regex(await s.clientB.infoValue('get-config:context=namespace;id=test'), /(^|;)fenced=true(;|$)/);

    // An unreachable passive node changes nothing.
    const closed = await freePort();
    const down = await runCli(['failover', '--passive', `127.0.0.1:${closed}`, '--namespace', 'test', '--receiver', s.receiverUrl, '--old-active', s.a, '--request-timeout-ms', '2000']);
    t.is(down.code, 2);
    t.is(await writeError(s.clientA, 'still-active'), undefined, 'A was not fenced');
    t.true((await s.receiverStats()).running, 'the receiver was not stopped');

    const startedAt = Date.now();
    const r = await runCli(['failover', '--passive', s.b, '--namespace', 'test', '--receiver', s.receiverUrl, '--old-active', s.a, '--json']);
    t.is(r.code, 0, r.stderr);
    const rep = JSON.parse(r.stdout) as FailoverReport;
    t.deepEqual(rep.promoted, [{ node: s.b, fencedBefore: true, fencedAfter: false }]);
    t.like(rep.oldActive, { node: s.a, reachable: true, fenced: true, shipped: true });
    t.true(rep.drain.completed);
    t.true(rep.drain.receiverWasRunning);
    t.is(rep.drain.consumerLag, 0);
    t.true(rep.receiverStopped);
    t.true(rep.receiverFinal!.applied >= n + 1);
    t.true(rep.newestSourceChangeMs! >= startedAt - 60_000 && rep.newestSourceChangeMs! <= rep.at);
    t.is(rep.dataLossWindowMs, rep.at - rep.newestSourceChangeMs!);

    // Everything A accepted is on B; B takes writes now, A refuses them.
    t.is(await countRecords(s.clientB), n + 1);
    t.is(await writeError(s.clientB, 'after'), undefined);
    t.deepEqual((await s.clientB.get({ namespace: 'test', set: 'ops', key: 'after' }))!.bins, { v: 1 });
    t.is(await writeError(s.clientA, 'after-on-a'), ResultCode.FORBIDDEN);
    t.false((await s.receiverStats()).running);

    // Again, with the old active unreachable: still promoted (idempotent), and the report says A is not fenced.
    const unreachable = await runCli(['failover', '--passive', s.b, '--namespace', 'test', '--old-active', `127.0.0.1:${closed}`, '--request-timeout-ms', '2000', '--json']);
    t.is(unreachable.code, 0, unreachable.stderr);
    const rep2 = JSON.parse(unreachable.stdout) as FailoverReport;
    t.deepEqual(rep2.promoted, [{ node: s.b, fencedBefore: false, fencedAfter: false }]);
    t.like(rep2.oldActive, { reachable: false, fenced: false });
    t.is(rep2.dataLossWindowMs, null, 'no receiver given: unknown');
    // The text report names the outcome.
    const again = await runCli(['failover', '--passive', s.b, '--namespace', 'test', '--old-active', s.a]);
    t.is(again.code, 0, again.stderr);
    t.regex(again.stdout, /promoted 127\.0\.0\.1:\d+: fence was already off/);
    t.regex(again.stdout, /old active 127\.0\.0\.1:\d+: fenced/);
    t.is(await writeError(s.clientB, 'after-again'), undefined);
  });

}

// ---------------------------------------------------------------- pure parts

test('endpoints, URLs and times are parsed or refused with USAGE', (t) => {
  t.deepEqual(parseHostPort('127.0.0.1:3000', '--node'), { host: '127.0.0.1', port: 3000 });
  t.deepEqual(parseHostPort('[::1]:3000', '--node'), { host: '::1', port: 3000 });
  t.deepEqual(parseHostPortList('a:1, b:2', '--passive'), [{ host: 'a', port: 1 }, { host: 'b', port: 2 }]);
  for (const bad of ['a', 'a:', ':1', 'a:0', 'a:70000', 'a:1:2']) {
    const e = t.throws(() => parseHostPort(bad, '--node'), { instanceOf: OpsError });
    t.is(e.code, 'USAGE');
  }
  t.is(parseBaseUrl('127.0.0.1:9464', '--receiver'), 'http://127.0.0.1:9464');
  t.is(parseBaseUrl('http://h:1/', '--receiver'), 'http://h:1');
  t.is(parseTime('1700000000000', '--from-time'), 1_700_000_000_000);
  t.is(parseTime('2026-01-02T03:04:05Z', '--from-time'), Date.UTC(2026, 0, 2, 3, 4, 5));
  t.is(parseTime('2026-01-02T03:04:05+01:00', '--from-time'), Date.UTC(2026, 0, 2, 2, 4, 5));
  for (const bad of ['yesterday', '-5', '2026-13-45', '']) t.throws(() => parseTime(bad, '--from-time'), { instanceOf: OpsError });
});

test('planRewind: beginning, time (no later message -> end), offset clamped to the log', (t) => {
  const bounds = [
    { partition: 1, low: 5, high: 50 },
    { partition: 0, low: 0, high: 10 },
  ];
  const committed = new Map([[0, 10]]);
  t.deepEqual(planRewind(bounds, committed, { kind: 'beginning' }, new Map()).map((p) => [p.partition, p.old, p.new]), [[0, 10, 0], [1, -1, 5]]);
  t.deepEqual(planRewind(bounds, committed, { kind: 'time', ms: 1 }, new Map([[0, 3]])).map((p) => [p.partition, p.new]), [[0, 3], [1, 50]]);
  const off = planRewind(bounds, committed, { kind: 'offset', offset: 20 }, new Map());
  t.deepEqual(off.map((p) => [p.partition, p.new, p.clamped]), [[0, 10, true], [1, 20, false]]);
  t.deepEqual(planRewind(bounds, committed, { kind: 'offset', offset: 0 }, new Map()).map((p) => [p.new, p.clamped]), [[0, false], [5, true]]);
});

test('lag report: receiver columns only on the stream whose topic it consumes; partitions listed only when behind', (t) => {
  const stream = (destination: string, topic: string) => ({
    destination, namespace: 'test', topic, connected: true, recordsBehind: 7, msBehind: 1200, oldestUnshippedLutMs: 1, shipped: 9, shippedPerS: 3,
    skipped: 0, retries: 2, errors: 0, lastError: '', recoveringPartitions: 0,
    partitions: [{ pid: 3, behind: 7, checkpointMs: 0, recovering: false }, { pid: 4, behind: 0, checkpointMs: 0, recovering: false }],
  });
  const xdr = parseXdrStats(JSON.stringify({ site: 'A', streams: [stream('B', 'ferry.A.test'), stream('C', 'other')] }), 'n:1');
  const r = buildLagReport(0, 'n:1', xdr, {
    url: 'http://r:1',
    stats: { groupId: 'g', topics: ['ferry.A.test'], running: true, applied: 5, lostConflict: 1, deadLettered: 4, retries: 0, appliedPerS: 11, consumerLag: 6, lagMeasuredAtMs: 1, applyLagMs: 80, maxSourceLutMs: 1, lastError: '' },
  });
  t.deepEqual(r.streams.map((s) => s.received), [true, false]);
  t.deepEqual(r.streams[0]!.partitions!.map((p) => p.pid), [3]);
  const text = formatLagReport(r).split('\n');
  t.regex(text.find((l) => l.startsWith('B '))!, /^B\s+test\s+7\s+1200\s+3\s+2\s+11\s+1\s+4\s+6\s+80$/);
  t.regex(text.find((l) => l.startsWith('C '))!, /^C\s+test\s+7\s+1200\s+3\s+2\s+-\s+-\s+-\s+-\s+-$/);
  t.true(text.some((l) => /^B\s+test\s+3\s+7\s+no\s+-$/.test(l)), text.join('\n'));
  t.throws(() => parseXdrStats('ERROR:4:unknown command', 'n:1'), { instanceOf: OpsError });
});

test('formatTable aligns numbers right and text left', (t) => {
  t.is(formatTable(['NAME', 'N'], [['a', 1], ['bbb', 22.25]]), ['NAME     N', 'a        1', 'bbb   22.3'].join('\n'));
});
