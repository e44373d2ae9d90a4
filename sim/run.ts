/**
 * One simulation run: site A (a namespace with commit-to-device and a shipper), the simulated
 * Kafka log, the receiver and site B, all on one Scheduler and one seed. Phases:
 * 1. workload + faults: random commands to A; random crashes of A (the device loses or tears
 *    unsynced writes) and of the receiver; the log goes down or slow, loses produce acks and
 *    redelivers; the link to B drops applies;
 * 2. settle: faults stop, everything runs until B has caught up (bounded virtual time);
 * 3. check: the ledger of acknowledged writes against A, B against A, nothing threw.
 * The same seed replays the same run: the trace hash covers every event time and decision.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Destination, Receiver } from '../receiver/receiver.js';
import { Shipper } from '../shipper/shipper.js';
import { seededRandom, type Random } from '../store/runtime/index.js';
import { ConflictPolicy, ResultCode, type ConflictPolicyId, type RecordVersion } from '../store/types.js';
import type { XdrConfig } from '../shipper/config.js';
import { NO_KAFKA_SECURITY } from '../kafka/security.js';
import { checkLedger, compareSites, snapshot, type Acked } from './checkers.js';
import type { SimDevice } from './device.js';
import { APPLY_TIMEOUT_MS, CLIENT_TIMEOUT_MS, FAULT_WINDOW_MS_MAX, OPS_IN_FLIGHT_MAX, SETTLE_MS_MAX, TOPIC, errorText, runDriver, runFaults, simReceiver, simResult, startRun, type SimResult } from './driver.js';
import { SimKafkaLog } from './kafka-log.js';
import { SIM_EPOCH_MS, type Scheduler } from './scheduler.js';
import { newDevice, openSite, type SimSite } from './site.js';
import { SIM_NAMESPACE, Workload } from './workload.js';

export interface SimOptions {
  seed: number;
  /** Client commands in the workload phase. */
  ops: number;
  /** Inject faults (default true). */
  faults?: boolean;
  /** The destination's ship-expirations (default false, as the product's default). */
  shipExpirations?: boolean;
  log?: (line: string) => void;
}

export { TOPIC, type SimResult };

/** Mean virtual gap between client commands, ms. */
const OP_GAP_MS_MAX = 40;
/** Longest Kafka outage, ms. */
const KAFKA_DOWN_MS_MAX = 8000;
/** The last fault must have finished this long after the workload ends. */
const FAULT_FINISH_MS_MAX = 60_000;
/** Largest clock difference between the sites, ms. */
const CLOCK_SKEW_MS_MAX = 5000;
/** A crash of A waits up to this long for unsynced writes to be in flight. */
const CRASH_WAIT_UNSYNCED_MS_MAX = 500;

interface World {
  sched: Scheduler;
  log: SimKafkaLog;
  a: SimSite;
  aIncarnation: number;
  shipper: Shipper;
  b: SimSite;
  receiver: Receiver;
  rIncarnation: number;
  bDown: boolean;
  bIncarnation: number;
  /** A is shutting down cleanly: clients are refused (connection refused) until it is back. */
  aStopping: boolean;
  /** A's warm-restart snapshot directory. */
  stateDir: string;
  bSkewMs: number;
  /** The receiver's conflict policy, per seed. */
  policy: ConflictPolicyId;
  shipExpirations: boolean;
  errors: string[];
  counters: Record<string, number>;
}

export function xdrConfig(shipExpirations: boolean): XdrConfig {
  return {
    site: 'A',
    destinations: [
      {
        name: 'B', brokers: ['sim:9092'], topic: TOPIC, namespaces: [SIM_NAMESPACE], shipSets: [], ignoreSets: [], shipBins: [],
        shipDeletes: true, shipExpirations, forward: false, maxRecordsPerS: 0, batchMax: 200, batchMaxBytes: 900_000, lingerMs: 2,
        kafkaPartitions: 4, compression: 'none', checkpointIntervalMs: 200, retryBackoffMaxMs: 1000, rpo0Namespaces: [], rpo0Sets: [], rpo0TimeoutMs: 2000, security: NO_KAFKA_SECURITY,
      },
    ],
  };
}

async function startA(w: World, device: SimDevice): Promise<void> {
  const owner = `A#${++w.aIncarnation}`;
  const site = await openSite(w.sched, owner, device, 0, w.stateDir);
  w.sched.note(`start ${owner} ${site.openMode}`);
  w.counters[`startsA:${site.openMode}`] = (w.counters[`startsA:${site.openMode}`] ?? 0) + 1;
  w.a = site;
  w.shipper = new Shipper(xdrConfig(w.shipExpirations), () => undefined, { clock: w.sched.clock, timers: w.sched.timersFor(owner), random: seededRandom(w.aIncarnation), kafka: w.log.linkFor(owner) });
  await w.shipper.start(w.a.node);
}

/** B reached in process; while "unreachable" an apply times out (the receiver retries the batch). */
function destinationB(w: World, owner: string): Destination {
  return {
    applyReplicated: async (v: RecordVersion, policy) => {
      await w.sched.sleep(owner, 1);
      if (w.bDown) {
        await w.sched.sleep(owner, 200);
        return { resultCode: ResultCode.TIMEOUT };
      }
      // A crashed B never answers: the apply times out as the smart client's would.
      const timeout = w.sched.sleep(owner, APPLY_TIMEOUT_MS).then(() => ({ resultCode: ResultCode.TIMEOUT, applied: false }));
      const r = await Promise.race([w.b.ns.applyReplicated(v, policy), timeout]);
      w.sched.note(`apply ${v.digest.toString('hex')} gen=${v.generation} lut=${v.lutMs} tomb=${v.tombstone ? 1 : 0} -> ${r.resultCode}`);
      return r;
    },
    close: () => undefined,
  };
}

async function startReceiver(w: World): Promise<void> {
  const owner = `R#${++w.rIncarnation}`;
  w.sched.note(`start ${owner}`);
  w.receiver = simReceiver(w.sched, w.log, owner, 100 + w.rIncarnation, w.policy, () => destinationB(w, owner));
  await w.receiver.start();
}

/** Crashes A, usually while writes are not yet synced (that is where a crash can hurt). */
async function crashA(w: World, r: Random): Promise<void> {
  const waitUntil = w.sched.nowMs + (r.int(4) === 0 ? 0 : CRASH_WAIT_UNSYNCED_MS_MAX);
  while (w.a.device.unsyncedWrites === 0 && w.sched.nowMs < waitUntil) await w.sched.sleep('faults', 1);
  w.sched.kill(w.a.owner);
  const device = w.a.device.crash(`A#${w.aIncarnation + 1}`);
  w.counters.crashesA = (w.counters.crashesA ?? 0) + 1;
  await startA(w, device);
}

/** Restarts A cleanly: the shipper stops, the namespace closes (warm snapshot), then reopens warm. */
async function restartA(w: World): Promise<void> {
  w.aStopping = true;
  await w.shipper.stop();
  await w.a.ns.close();
  w.sched.kill(w.a.owner);
  w.counters.restartsA = (w.counters.restartsA ?? 0) + 1;
  await startA(w, w.a.device.crash(`A#${w.aIncarnation + 1}`));
  w.aStopping = false;
}

/** Crashes B (the receiver's applies in flight time out); B restarts from its device. */
async function crashB(w: World): Promise<void> {
  w.sched.kill(w.b.owner);
  const owner = `B#${++w.bIncarnation}`;
  w.sched.note(`start ${owner}`);
  w.counters.crashesB = (w.counters.crashesB ?? 0) + 1;
  w.b = await openSite(w.sched, owner, w.b.device.crash(owner), w.bSkewMs);
}

async function crashReceiver(w: World): Promise<void> {
  w.sched.kill(`R#${w.rIncarnation}`);
  w.counters.crashesReceiver = (w.counters.crashesReceiver ?? 0) + 1;
  await startReceiver(w);
}

/** A fault that lasts a while, then heals (on the faults driver's own timers). */
async function window(w: World, r: Random, on: () => void, off: () => void, msMax = FAULT_WINDOW_MS_MAX): Promise<void> {
  on();
  await w.sched.sleep('faults', 200 + r.int(msMax));
  off();
}

async function injectFault(w: World, r: Random): Promise<void> {
  const kind = r.int(10);
  w.sched.note(`fault ${kind}`);
  const count = (name: string) => (w.counters[name] = (w.counters[name] ?? 0) + 1);
  switch (kind) {
    case 0:
    case 1:
      return crashA(w, r);
    case 2:
      return crashReceiver(w);
    case 3:
      count('kafkaDown');
      // Long enough, sometimes, for short-TTL records to expire before they are shipped.
      return window(w, r, () => (w.log.down = true), () => (w.log.down = false), KAFKA_DOWN_MS_MAX);
    case 4:
      count('kafkaSlow');
      return window(w, r, () => (w.log.slowMs = 50 + r.int(500)), () => (w.log.slowMs = 0));
    case 5:
      count('ackLoss');
      return window(w, r, () => (w.log.faults.ackLostPct = 30), () => (w.log.faults.ackLostPct = 0));
    case 7:
      return crashB(w);
    case 8:
      return restartA(w);
    case 6:
      count('redelivery');
      return window(w, r, () => (w.log.faults.redeliverPct = 30), () => (w.log.faults.redeliverPct = 0));
    default:
      count('bUnreachable');
      return window(w, r, () => (w.bDown = true), () => (w.bDown = false));
  }
}

async function runWorkload(w: World, r: Random, ops: number, ledger: Map<string, Acked & { digest: Buffer }>): Promise<void> {
  const wl = new Workload(r);
  let inFlight = 0;
  for (let i = 0; i < ops; i++) {
    await w.sched.sleep('client', r.int(OP_GAP_MS_MAX + 1));
    while (inFlight >= OPS_IN_FLIGHT_MAX) await w.sched.sleep('client', 5);
    const c = wl.next();
    if (w.aStopping) {
      w.counters[`${c.kind}:refused`] = (w.counters[`${c.kind}:refused`] ?? 0) + 1;
      continue;
    }
    const ns = w.a.ns;
    inFlight++;
    const timeout = w.sched.sleep('client', CLIENT_TIMEOUT_MS).then(() => undefined);
    void Promise.race([ns.execute(c.cmd), timeout]).then(
      (res) => {
        inFlight--;
        w.counters[`${c.kind}:${res === undefined ? 'timeout' : res.resultCode}`] = (w.counters[`${c.kind}:${res === undefined ? 'timeout' : res.resultCode}`] ?? 0) + 1;
        if (!res || res.resultCode !== ResultCode.OK) return;
        w.sched.note(`ack ${c.kind} ${c.key} ${c.cmd.digest.toString('hex')} gen=${res.generation} lut=${res.lutMs}`);
        const hex = c.cmd.digest.toString('hex');
        const prev = ledger.get(hex);
        if (prev && prev.lutMs >= res.lutMs) return;
        const acked: Acked & { digest: Buffer } = { key: c.key, kind: c.kind, digest: c.cmd.digest, lutMs: res.lutMs, generation: res.generation, tombstone: c.kind === 'delete', voidTimeS: res.voidTimeS };
        if (c.bins) acked.bins = c.bins;
        ledger.set(hex, acked);
      },
      (err: unknown) => {
        inFlight--;
        w.errors.push(`command ${c.kind} ${c.key} threw: ${errorText(err)}`);
      },
    );
  }
  while (inFlight > 0) await w.sched.sleep('client', 10);
}

/** Settled: nothing left to ship, the receiver has applied everything and B equals A. */
function settled(w: World): boolean {
  const streams = w.shipper.stats();
  if (streams.some((s) => s.recordsBehind > 0 || s.recoveringPartitions > 0)) return false;
  return compareSites(snapshot(w.a.ns, w.sched.nowMs), snapshot(w.b.ns, w.sched.nowMs), 1).length === 0;
}

export async function runSimulation(o: SimOptions): Promise<SimResult> {
  const { sched, root, rWork, rFaults } = startRun(o);
  const log = new SimKafkaLog(sched, seededRandom(root.u32()));
  const devSeedA = root.u32();
  const devSeedB = root.u32();
  const w = { sched, log, aIncarnation: 0, rIncarnation: 0, bIncarnation: 1, aStopping: false, stateDir: mkdtempSync(join(tmpdir(), 'ferry-sim-')), bSkewMs: root.int(2 * CLOCK_SKEW_MS_MAX + 1) - CLOCK_SKEW_MS_MAX, policy: root.int(2) === 0 ? ConflictPolicy.GENERATION : ConflictPolicy.LAST_UPDATE_TIME, bDown: false, shipExpirations: o.shipExpirations ?? false, errors: [] as string[], counters: {} as Record<string, number> } as World;
  const ledger = new Map<string, Acked & { digest: Buffer }>();
  const failures: string[] = [];
  const { done } = await runDriver(sched, w.errors, failures, async (state) => {
    await startA(w, newDevice(sched, 'A#1', devSeedA));
    w.b = await openSite(sched, 'B#1', newDevice(sched, 'B#1', devSeedB), w.bSkewMs);
    await startReceiver(w);
    state.phase = 'workload';
    let workloadDone = false;
    const faults = o.faults === false ? Promise.resolve() : runFaults(sched, rFaults, () => workloadDone, () => injectFault(w, rFaults));
    await runWorkload(w, rWork, o.ops, ledger);
    workloadDone = true;
    let faultsDone = false;
    await Promise.race([faults.then(() => void (faultsDone = true)), sched.sleep('client', FAULT_FINISH_MS_MAX)]);
    if (!faultsDone) failures.push(`the last fault (a restart?) did not complete within ${FAULT_FINISH_MS_MAX} ms of virtual time`);
    log.down = false;
    log.slowMs = 0;
    log.faults = { delayMsMax: 5, ackLostPct: 0, redeliverPct: 0 };
    w.bDown = false;
    state.phase = 'settle';
    const settleUntil = sched.nowMs + SETTLE_MS_MAX;
    while (!settled(w) && sched.nowMs < settleUntil) await sched.sleep('client', 500);
    if (!settled(w)) failures.push(`B did not converge with A within ${SETTLE_MS_MAX} ms of virtual time after faults stopped`);
    state.phase = 'check';
  });
  rmSync(w.stateDir, { recursive: true, force: true });
  const now = sched.nowMs;
  if (done && w.a) {
    failures.push(...checkLedger(w.a.ns, ledger, now).map((s) => `ledger: ${s}`));
    if (w.b) failures.push(...compareSites(snapshot(w.a.ns, now), snapshot(w.b.ns, now)).map((s) => `B != A: ${s}`));
  }
  failures.push(...w.errors);
  const aSnap = w.a ? snapshot(w.a.ns, now) : new Map();
  const summary: Record<string, number | string> = {
    virtualMs: now - SIM_EPOCH_MS,
    events: sched.executed,
    records: aSnap.size,
    acked: ledger.size,
    produced: log.stats.produced,
    ackLost: log.stats.ackLost,
    redelivered: log.stats.redelivered,
    deviceLost: w.a?.device.stats.lost ?? 0,
    deviceTorn: w.a?.device.stats.torn ?? 0,
    deviceFlipped: w.a?.device.stats.flipped ?? 0,
    bClockSkewMs: w.bSkewMs,
    policy: w.policy,
    ...w.counters,
  };
  // Tear down what is still running so its events stop with this run.
  sched.kill(w.a?.owner ?? '');
  sched.kill(`R#${w.rIncarnation}`);
  sched.kill(w.b?.owner ?? '');
  return simResult(o.seed, sched, failures, summary);
}
