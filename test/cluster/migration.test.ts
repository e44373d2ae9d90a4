/**
 * Migrations under load with real processes: a 3-node replication-factor-2 cluster (device
 * storage) takes a steady write load from the official client while readers read back every
 * acknowledged key; a fourth node joins, a node is killed -9 and restarted. While partitions
 * move, reads of acknowledged writes are counted by outcome and none may answer NOT_FOUND (the
 * acting master serves until the new master is filled, one working master at a time) and every
 * acknowledged write reads back afterwards. Once `cluster-stable`: every partition has exactly rf FULL copies,
 * on its holders only (superseded copies dropped), and master and replica checksums agree
 * (but for writes in doubt: replica writes are retransmitted until acknowledged).
 * Then a node stopped under writes and restarted warm receives only what changed (delta).
 *
 * The readers pick keys with a seeded PRNG; the seed is printed on failure.
 */
import test from 'ava';
import { createRequire } from 'node:module';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { waitFor } from '../helpers/procs.js';
import { ClientLoad, checksumsOf, connectClient, info, startMember as startClusterMember, startMembers, stats, stopMembers, type Member, type MemberOptions } from '../helpers/cluster-members.js';
import { parseKv } from '../../ops/util.js';
import { computePartitionTable } from '../../store/cluster/partition-table.js';
import { computeDigest } from '../../store/digest.js';
import { PARTITION_COUNT } from '../../store/types.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const Aerospike: Any = createRequire(import.meta.url)('aerospike');
const ns = 'test';
const set = 'mig';
const RF = 2;
/** Bounds every wait for membership plus migrations (a few seconds on a quiet machine). */
const STABLE_TIMEOUT_MS = 90_000;
/**
 * Node timeout of 20 beats (3 s): the test machine is shared and loaded; a node that misses its
 * beats for the default 1.5 s while busy makes the cluster flap, which tests the heartbeat, not
 * migrations.
 */
const NODE_ENV = { FERRY_NS_FILESIZE: String(16 * 1024 * 1024), FERRY_HEARTBEAT_TIMEOUT_COUNT: '20' };
const SEED = Number(process.env['FERRY_TEST_SEED'] ?? Date.now() % 100_000);
/** Aerospike result code of a read of a missing record. */
const NOT_FOUND = 2;

const members: Member[] = [];
const dirs: string[] = [];
const memberOptions: MemberOptions = { tmpPrefix: 'ferry-mig-', env: NODE_ENV, dirs };
/** A new process every start (test/helpers/cluster-members.ts); a restart keeps dir and ports. */
const startMember = (seedHb: number | undefined, reuse?: Member): Promise<Member> => startClusterMember(memberOptions, seedHb, reuse);

/** Waits until the given members agree on one key and report no migration work left. */
async function stable(list: Member[]): Promise<void> {
  await waitFor(
    async () => {
      try {
        const answers = await Promise.all(list.map((m) => info(m.port, `cluster-stable:size=${list.length}`)));
        return answers.every((a) => a === answers[0] && !a.startsWith('ERROR'));
      } catch {
        return false;
      }
    },
    STABLE_TIMEOUT_MS,
    `${list.length} nodes to agree and finish migrating`,
  ).catch(async (err: Error) => {
    const report = await Promise.all(
      list.map(async (m) => {
        const s = await stats(m.port).catch(() => new Map<string, string>());
        const n = await stats(m.port, `namespace/${ns}`).catch(() => new Map<string, string>());
        const pick = (x: Map<string, string>) => [...x].filter(([k]) => /cluster_key|cluster_size|migrate|rebalance|partitions_/.test(k)).map(([k, v]) => `${k}=${v}`).join(' ');
        return `${m.id}: ${pick(s)} | ${pick(n)}`;
      }),
    );
    throw new Error(`${err.message}\n${report.join('\n')}`);
  });
}

/** Writers put fresh keys; readers read acknowledged keys back and count what went wrong. */
class Load extends ClientLoad {
  /** Keys whose write failed (timeout: in doubt, the master may have it and a replica not). */
  readonly failed: string[] = [];
  notFound = 0;
  wrongValue = 0;
  readErrors = 0;
  writeErrors = 0;
  reads = 0;
  /** Error codes of failed commands, with counts. */
  readonly errorCodes = new Map<number, number>();

  constructor(client: Any, prefix: string) {
    super(client, prefix, SEED);
    this.start(2);
  }

  protected async write(k: string): Promise<void> {
    try {
      await this.client.put(new Aerospike.Key(ns, set, k), { v: k }, {}, { totalTimeout: 3000, maxRetries: 5 });
      this.acked.push(k);
    } catch (err) {
      this.writeErrors++;
      this.failed.push(k);
      this.#code(err);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  protected async read(k: string): Promise<void> {
    try {
      const r = await this.client.get(new Aerospike.Key(ns, set, k), { totalTimeout: 3000, maxRetries: 5 });
      this.reads++;
      if (r.bins.v !== k) this.wrongValue++;
    } catch (err) {
      if ((err as { code?: number }).code === NOT_FOUND) this.notFound++;
      else this.readErrors++;
      this.#code(err);
    }
  }

  #code(err: unknown): void {
    const c = Number((err as { code?: number }).code);
    this.errorCodes.set(c, (this.errorCodes.get(c) ?? 0) + 1);
  }
}

let client: Any;

test.before(async () => {
  members.push(...(await startMembers(memberOptions, 3)));
  await stable(members);
  client = await connectClient(members[0]!.port);
});

test.after.always(() => stopMembers(client, members, dirs));

test.serial('a join, a kill -9 and a restart under load: every acknowledged write reads back; then rf full copies on the holders only', async (t) => {
  t.timeout(4 * STABLE_TIMEOUT_MS);
  t.log(`seed ${SEED} (FERRY_TEST_SEED=${SEED} replays the readers' choices)`);
  const load = new Load(client, 'w');
  await waitFor(() => load.acked.length >= 300, STABLE_TIMEOUT_MS, 'some acknowledged writes');
  const t0 = Date.now();
  const phases: string[] = [];
  const phase = (what: string): void => void phases.push(`${what} at ${Date.now() - t0} ms (${load.acked.length} acknowledged, ${load.notFound} NOT_FOUND)`);
  members.push(await startMember(members[0]!.hbPort));
  phase('joined');
  await stable(members);
  phase('stable 4');
  const joined = Number((await stats(members[3]!.port)).get('migrate_records_received'));
  t.true(joined > 0, 'the newcomer was filled by migrations');
  const victim = members[2]!;
  await victim.proc.stop('SIGKILL');
  const survivors = members.filter((m) => m !== victim);
  phase('killed');
  await stable(survivors);
  phase('stable 3');
  const written = load.acked.length;
  const victimOutput = victim.proc.output;
  members[2] = await startMember(members[0]!.hbPort, victim);
  phase('restarted');
  await stable(members);
  phase('stable 4 again');
  await waitFor(() => load.acked.length >= written + 200, STABLE_TIMEOUT_MS, 'writes after the restart');
  await load.stop();
  t.log(phases.join('; '));
  t.log(`acknowledged ${load.acked.length} writes, ${load.reads} reads; write errors ${load.writeErrors}, read errors ${load.readErrors} (codes ${JSON.stringify([...load.errorCodes])})`);
  const wire = await Promise.all(members.map(async (m) => [m.id, parseKv(await info(m.port, 'ferry-wire'))] as const));
  t.log(`per node (reads as replica, NOT_FOUND as master / as replica, proxied): ${wire.map(([id, w]) => `${id}: ${w.get('replica_reads')}, ${w.get('read_not_found_master')}/${w.get('read_not_found_replica')}, ${w.get('proxied')}`).join('; ')} (the killed node's first process not counted)`);
  // The acting master serves until the new master is filled, and one working master at a time:
  // no read of an acknowledged write answers NOT_FOUND while partitions move. (The NOT_FOUNDs
  // this test used to count came from transient splits of the membership when a node joined or
  // restarted; see the agreement tests.)
  t.is(load.notFound, 0, `reads of acknowledged writes that answered NOT_FOUND while partitions moved (seed ${SEED})`);
  t.is(load.wrongValue, 0, 'reads with another value');
  for (let i = 0; i < load.acked.length; i += 500) {
    const keys = load.acked.slice(i, i + 500);
    const rows = await client.batchRead(keys.map((k) => ({ key: new Aerospike.Key(ns, set, k), readAllBins: true })));
    t.deepEqual(rows.map((r: Any) => r.record?.bins?.v), keys, 'every acknowledged write reads back');
  }
  await stable(members);
  const table = computePartitionTable(members.map((m) => ({ nodeId: m.id })), RF);
  // Replica writes still being retransmitted (a replica was slow to answer) are let finish first.
  await waitFor(async () => (await Promise.all(members.map((m) => stats(m.port)))).every((s) => s.get('replica_writes_pending') === '0'), STABLE_TIMEOUT_MS, 'no replica write pending');
  const sums = await Promise.all(members.map((m) => checksumsOf(m.port, ns)));
  const inDoubt = new Set(load.failed.map((k) => computeDigest(set, k).toString('hex')));
  const differingCopies: string[] = [];
  let inDoubtDiffering = 0;
  let copies = 0;
  for (let pid = 0; pid < PARTITION_COUNT; pid++) {
    const holders = [table.nodeAt(pid, 0), table.nodeAt(pid, 1)];
    const having = members.filter((_, i) => sums[i]!.has(pid)).map((m) => m.id);
    if (having.length === 0) continue;
    copies++;
    t.deepEqual(having.sort(), [...holders].sort(), `partition ${pid} is held by its holders only`);
    const values = sums.map((s) => s.get(pid)).filter((v) => v !== undefined);
    if (new Set(values).size === 1) continue;
    // Copies differ: name the records and whether their write was in doubt. A write in doubt may
    // sit on one copy only: its master applied it and was killed before replicating it, and the
    // restarted node's subset copy keeps it (migrations ship only what wins over its metadata;
    // nothing sends its extra records to the others). Any other difference is a bug.
    const listings = await Promise.all(
      members.filter((_, i) => sums[i]!.has(pid)).map(async (m) => new Set((await info(m.port, `ferry-digests:namespace=${ns};partition=${pid}`)).split(';').filter(Boolean))),
    );
    const differing = [...listings[0]!].filter((e) => !listings[1]!.has(e)).concat([...listings[1]!].filter((e) => !listings[0]!.has(e)));
    const unexplained = differing.filter((e) => !inDoubt.has(e.split(':')[0]!));
    inDoubtDiffering += differing.length - unexplained.length;
    if (unexplained.length > 0) {
      differingCopies.push(`partition ${pid}: ${unexplained.slice(0, 4).join(' ')}`);
      // What a failure needs to be understood: the key, and that digest on every member.
      for (const e of unexplained.slice(0, 4)) {
        const digest = e.split(':')[0]!;
        const key = load.acked.find((k) => computeDigest(set, k).toString('hex') === digest);
        const where = await Promise.all(
          members.map(async (m) => `${m.id}(pos ${table.positionOf(m.id, pid)}): ${(await info(m.port, `ferry-digests:namespace=${ns};partition=${pid}`)).split(';').find((x) => x.startsWith(digest)) ?? 'absent'}`),
        );
        t.log(`partition ${pid} key ${key ?? '(not an acknowledged key)'} acked #${key ? load.acked.indexOf(key) : -1}: ${where.join(', ')}`);
      }
    }
  }
  t.true(copies > 1000, 'the load touched most partitions');
  t.log(`copy entries differing by a write in doubt: ${inDoubtDiffering}`);
  // Replica writes are retransmitted until acknowledged: once stable, every replica equals its
  // master except for writes in doubt.
  if (differingCopies.length > 0) {
    const dir = mkdtempSync(path.join(tmpdir(), `ferry-mig-fail-${SEED}-`));
    writeFileSync(path.join(dir, `${victim.id}-killed.log`), victimOutput);
    for (const m of members) writeFileSync(path.join(dir, `${m.id}.log`), m.proc.output);
    t.log(`node logs in ${dir}`);
  }
  t.deepEqual(differingCopies, [], 'master and replica checksums agree in every partition (writes in doubt aside)');
  for (const m of members) {
    const s = await stats(m.port, `namespace/${ns}`);
    const own = Array.from({ length: PARTITION_COUNT }, (_, pid) => table.positionOf(m.id, pid) < RF).filter(Boolean).length;
    t.is(Number(s.get('partitions_full')), own, `node ${m.id}: a full copy of every partition it holds`);
    t.is(Number(s.get('partitions_subset')), 0);
  }
});

test.serial('a node stopped under writes and restarted warm receives only what changed while it was away', async (t) => {
  t.timeout(3 * STABLE_TIMEOUT_MS);
  const away = members[1]!;
  const heldBefore = Number((await stats(away.port, `namespace/${ns}`)).get('master_objects')) + Number((await stats(away.port, `namespace/${ns}`)).get('prole_objects'));
  await away.proc.stop('SIGTERM');
  const others = members.filter((m) => m !== away);
  await stable(others);
  const load = new Load(client, 'x');
  await waitFor(() => load.acked.length >= 300, STABLE_TIMEOUT_MS, 'writes while the node is away');
  await load.stop();
  const writtenAway = load.acked.length + load.writeErrors;
  members[1] = await startMember(members[0]!.hbPort, away);
  t.regex(members[1]!.proc.output.split(`namespace ${ns} opened`).at(-1)!, /^ \(warm,/, 'the node restarted warm');
  await stable(members);
  const received = Number((await stats(away.port)).get('migrate_records_received'));
  t.log(`held ${heldBefore} records before; ${writtenAway} written while away; ${received} migrated into it on return`);
  t.true(heldBefore > 2 * writtenAway, 'a fill would have moved far more than a delta');
  t.true(received > 0, 'what changed was migrated');
  t.true(received <= 1.2 * writtenAway, `delta: ${received} records migrated for ${writtenAway} written while away`);
  const rows = await client.batchRead(load.acked.map((k) => ({ key: new Aerospike.Key(ns, set, k), readAllBins: true })));
  t.deepEqual(rows.map((r: Any) => r.record?.bins?.v), load.acked);
});
