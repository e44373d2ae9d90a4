/**
 * The proxy's retransmission and repeat detection (store/cluster/proxy.ts) on the simulator's
 * network and virtual time: two real heartbeats, clusters and proxies; A1 forwards commands for
 * a partition A2 masters. A2's executor counts how often it ran each command and answers with
 * that count as the generation (what an increment would show), so a write run twice is seen.
 */
import test from 'ava';
import { Cluster } from '../../store/cluster/cluster.js';
import { Heartbeat } from '../../store/cluster/heartbeat.js';
import { ClusterProxy } from '../../store/cluster/proxy.js';
import { seededRandom } from '../../store/runtime/index.js';
import { PARTITION_COUNT, ResultCode } from '../../store/types.js';
import { decodeMsg, encodeHeaderFrame, Info1, Info2 } from '../../store/wire/message.js';
import { PROTO_HEADER_BYTES } from '../../store/wire/proto.js';
import { SimNetwork } from '../../sim/network.js';
import { Scheduler } from '../../sim/scheduler.js';

const HOSTS = ['n1', 'n2'] as const;
const TIMEOUT_MS = 3000;

interface World {
  sched: Scheduler;
  net: SimNetwork;
  /** Runs of each command at A2, by the command's frame (hex). */
  runs: Map<string, number>;
  /** Called by A2's executor before it answers (a test can cut the answer off). */
  beforeAnswer: () => void;
  node(i: 0 | 1, incarnation: number): { hb: Heartbeat; proxy: ClusterProxy };
}

function world(seed: number): World {
  const sched = new Scheduler();
  const net = new SimNetwork(sched, seededRandom(seed));
  const w: World = {
    sched,
    net,
    runs: new Map(),
    beforeAnswer: () => undefined,
    node: (i, incarnation) => {
      const owner = `${HOSTS[i]}#${incarnation}`;
      const hb = new Heartbeat({
        nodeId: `A${i + 1}`,
        clusterName: 'sim',
        listen: { host: HOSTS[i], port: 1 },
        service: () => ({ host: HOSTS[i], port: 3000 }),
        seeds: [{ host: HOSTS[1 - i]!, port: 1 }],
        transport: net.transportFor(HOSTS[i], owner),
        clock: sched.clock,
        timers: sched.timersFor(owner),
        random: seededRandom(seed * 10 + incarnation * 2 + i),
      });
      const proxy = new ClusterProxy(new Cluster(hb, `A${i + 1}`, 'sim'), hb, sched.timersFor(owner), sched.clock);
      proxy.serve((frame) => {
        const k = frame.toString('hex');
        const n = (w.runs.get(k) ?? 0) + 1;
        w.runs.set(k, n);
        w.beforeAnswer();
        return Promise.resolve(encodeHeaderFrame({ resultCode: ResultCode.OK, generation: n }));
      }, () => undefined);
      return { hb, proxy };
    },
  };
  return w;
}

/** A command frame: a write (an increment, say) or a read; `tag` makes frames distinct. */
function command(write: boolean, tag: number): Buffer {
  return encodeHeaderFrame(write ? { info2: Info2.WRITE, generation: tag } : { info1: Info1.READ, generation: tag });
}

/** A partition A2 masters (a two-node table, no roles). */
function pidOfA2(c: Cluster): number {
  for (let pid = 0; pid < PARTITION_COUNT; pid++) if (c.masterOf(pid) === 'A2') return pid;
  throw new Error('A2 masters no partition');
}

/** Runs `body` on virtual time with A1 and A2 joined; returns what it returns. */
async function run<T>(w: World, body: (a1: { hb: Heartbeat; proxy: ClusterProxy }, pid: number) => Promise<T>): Promise<T> {
  const a1 = w.node(0, 1);
  const a2 = w.node(1, 1);
  let out: { value: T } | undefined;
  let failure: unknown;
  const done = (async () => {
    await a1.hb.start();
    await a2.hb.start();
    await w.sched.sleep('test', 2000);
    out = { value: await body(a1, pidOfA2(new Cluster(a1.hb, 'A1', 'sim'))) };
    await a1.hb.stop();
    await a2.hb.stop();
  })().catch((err: unknown) => void (failure = err));
  await w.sched.runUntil(Number.MAX_SAFE_INTEGER, () => out !== undefined || failure !== undefined);
  await done;
  for (const h of HOSTS) for (const i of [1, 2]) w.sched.kill(`${h}#${i}`);
  if (failure) throw failure;
  return out!.value;
}

const generationOf = (r: Buffer | number): number => (typeof r === 'number' ? -r : decodeMsg(r.subarray(PROTO_HEADER_BYTES)).generation);

test('a duplicated proxied write runs once at the master; a duplicated read is simply served twice', async (t) => {
  const w = world(1);
  const r = await run(w, async (a1, pid) => {
    w.net.setLinkFaults('n1', 'n2', { duplicatePct: 100 });
    const write = await a1.proxy.forward(pid, command(true, 1), TIMEOUT_MS);
    const read = await a1.proxy.forward(pid, command(false, 2), TIMEOUT_MS);
    await w.sched.sleep('test', 100); // the second copies arrive
    return { write: generationOf(write), read: generationOf(read) };
  });
  t.true(w.net.stats.duplicated > 0, 'frames were duplicated');
  t.is(r.write, 1, 'the write was answered');
  t.is(w.runs.get(command(true, 1).toString('hex')), 1, 'the write ran once');
  t.is(w.runs.get(command(false, 2).toString('hex')), 2, 'the read ran for each copy');
});

test('a proxied write whose answer is lost is retransmitted and answered from the kept answer, not run again', async (t) => {
  const w = world(2);
  const write = command(true, 7);
  const r = await run(w, async (a1, pid) => {
    let first = true;
    w.beforeAnswer = () => {
      if (!first) return;
      first = false;
      // The answer (and anything else on the link) is lost for 100 ms.
      w.net.setLinkFaults('n1', 'n2', { lossPct: 100 });
      w.sched.at('test', 100, () => w.net.clearLinkFaults());
    };
    const answer = await a1.proxy.forward(pid, write, TIMEOUT_MS);
    return { generation: generationOf(answer), retransmits: a1.proxy.counters.proxy_retransmits };
  });
  t.is(r.generation, 1, 'answered with the first run');
  t.true(r.retransmits >= 1, 'the proxyer sent it again');
  t.is(w.runs.get(write.toString('hex')), 1, 'the write ran once');
});

test('a restarted proxyer reusing a request id is not taken for a repeat (the origin carries its incarnation)', async (t) => {
  const w = world(3);
  const write = command(true, 9);
  const r = await run(w, async (a1, pid) => {
    const first = generationOf(await a1.proxy.forward(pid, write, TIMEOUT_MS));
    await a1.hb.stop();
    w.sched.kill('n1#1');
    w.net.crashHost('n1');
    const again = w.node(0, 2);
    await again.hb.start();
    await w.sched.sleep('test', 2000);
    const second = generationOf(await again.proxy.forward(pid, write, TIMEOUT_MS));
    await again.hb.stop();
    return { first, second };
  });
  t.deepEqual(r, { first: 1, second: 2 }, 'the new incarnation\'s id 1 ran as a new command');
});
