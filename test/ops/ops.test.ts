/**
 * ferry lag, replay and failover against real processes: the embedded broker, node A shipping to
 * node B (fenced), and a receiver applying to B. The commands run as a user types them.
 */
import test from 'ava';
import type { LagReport } from '../../ops/lag.js';
import type { FailoverReport } from '../../ops/failover.js';
import type { ReshipReport, RewindReport } from '../../ops/replay.js';
import type { FerryClient } from '../../store/client/client.js';
import { ResultCode } from '../../store/types.js';
import { freePort, runCli, runUntilLines, startSites, waitFor, type Sites } from './helpers.js';

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
  await waitFor(async () => {
    const r = await lagJson(s);
    const st = r.streams[0]!;
    const rc = r.receiver!;
    return st.recordsBehind === 0 && st.msBehind === 0 && rc.consumerLag === 0 && rc.applied + rc.lostConflict >= applied;
  }, CONVERGE_TIMEOUT_MS, 'ferry lag to show nothing behind');
}

async function writeError(c: FerryClient, key: string): Promise<number | undefined> {
  try {
    await c.put({ namespace: 'test', set: 'ops', key }, { v: 1 });
    return undefined;
  } catch (err) {
    return (err as { code?: number }).code;
  }
}

test.serial('ferry lag: the stream, the receiver, JSON per refresh, and exit 2 when unreachable', async (t) => {
  const s = await startSites(t);
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
  const closed = await freePort();
  const noNode = await runCli(['lag', '--node', `127.0.0.1:${closed}`, '--timeout-ms', '2000']);
  t.is(noNode.code, 2);
  t.regex(noNode.stderr, /ferry lag: node 127\.0\.0\.1:\d+/);
  const noReceiver = await runCli(['lag', '--node', s.a, '--receiver', `http://127.0.0.1:${closed}`, '--json']);
  t.is(noReceiver.code, 2);
  t.is((JSON.parse(noReceiver.stdout) as { error: { code: string } }).error.code, 'UNREACHABLE');
  // A node without a shipper (B) is named as such.
  const notShipping = await runCli(['lag', '--node', s.b]);
  t.is(notShipping.code, 2);
  t.regex(notShipping.stderr, /xdr/);
  const usage = await runCli(['lag', '--node', 'nohostport']);
  t.is(usage.code, 2);
});

test.serial('ferry replay: a rewound group and a re-ship leave B unchanged; an active group is refused', async (t) => {
  const s = await startSites(t);
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

test.serial('ferry failover: drains, lifts B\'s fence, fences A and reports the data-loss window', async (t) => {
  const s = await startSites(t);
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

  // The text report of a second run (nothing left to do) names the outcome.
  const again = await runCli(['failover', '--passive', s.b, '--namespace', 'test', '--old-active', s.a]);
  t.is(again.code, 0, again.stderr);
  t.regex(again.stdout, /promoted 127\.0\.0\.1:\d+: fence was already off/);
  t.regex(again.stdout, /old active 127\.0\.0\.1:\d+: fenced/);
});
