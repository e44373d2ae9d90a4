/**
 * `npm run bench -- receiver [--records 30000] [--apply-concurrency 256] [--partitions 4] [--no-commit-to-device]`
 *
 * The receiver's backlog drain rate, the part of convergence after an outage that the receiver
 * owns: `--records` shipped versions (200-byte string bin, a third of them newer versions of the
 * same keys) are produced in the ferry format to the embedded broker first, then `ferry receiver`
 * starts and applies them to a fenced node B (commit-to-device by default, as in `npm run chaos`:
 * every replicated write waits for a group commit). drain_records_per_s = records / (time from
 * the receiver's ready line until every message is applied or lost its conflict and the group's
 * lag is 0). Real processes on this machine; ends with one line of JSON {"bench":"receiver", ...}.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { FerryProcess } from '../ops/ferry-process.js';
import { freePort } from '../ops/free-port.js';
import { ParticleType, computeDigest, encodeVersion, partitionOf } from '../store/index.js';
import type { ReceiverStats } from '../receiver/receiver.js';

const TOPIC = 'ferry.A.test';
/** Messages per produce request while filling the topic. */
const PRODUCE_BATCH = 1000;
/** Stats poll while draining. */
const POLL_MS = 100;
/** Give up after this long. */
const DRAIN_TIMEOUT_MS = 600_000;
const BIN_BYTES = 200;

function numArg(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(args[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} needs a positive integer`);
  return v;
}

async function fill(brokers: string[], records: number, partitions: number): Promise<void> {
  const kafka = new Kafka({ brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({ topics: [{ topic: TOPIC, numPartitions: partitions }] });
  await admin.disconnect();
  const p = kafka.producer();
  await p.connect();
  const keys = Math.max(1, Math.floor((records * 2) / 3));
  const lut = Date.now();
  let batch: Array<ReturnType<typeof encodeVersion> & { partition: number }> = [];
  for (let i = 0; i < records; i++) {
    const digest = computeDigest('demo', `k${i % keys}`);
    const pid = partitionOf(digest);
    const v = { namespace: 'test', set: 'demo', digest, generation: 1 + Math.floor(i / keys), lutMs: lut + i, voidTimeS: 0, tombstone: false, bins: [{ name: 's', type: ParticleType.STRING, bytes: Buffer.from(`v${i}-`.padEnd(BIN_BYTES, 'x')) }] };
    batch.push({ ...encodeVersion(v, 'A', pid), partition: pid % partitions });
    if (batch.length === PRODUCE_BATCH || i === records - 1) {
      await p.send({ topic: TOPIC, messages: batch });
      batch = [];
    }
  }
  await p.disconnect();
}

export async function main(args: string[]): Promise<void> {
  const records = numArg(args, 'records', 30_000);
  const applyConcurrency = numArg(args, 'apply-concurrency', 256);
  const partitions = numArg(args, 'partitions', 4);
  const commitToDevice = !args.includes('--no-commit-to-device');
  const dir = mkdtempSync(join(tmpdir(), 'ferry-bench-receiver-'));
  const ports = { broker: await freePort(), b: await freePort(), r: await freePort() };
  const brokers = [`127.0.0.1:${ports.broker}`];
  writeFileSync(join(dir, 'b.json'), JSON.stringify({ namespaces: [{ name: 'test', filesize: 256 * 1024 * 1024, 'write-block-size': 262144, fenced: true, 'nsup-period': 0, 'commit-to-device': commitToDevice }] }));
  writeFileSync(join(dir, 'r.json'), JSON.stringify({ brokers, topics: [TOPIC], destination: [`127.0.0.1:${ports.b}`], 'metrics-port': ports.r, 'group-id': 'bench', 'apply-concurrency': applyConcurrency }));
  const broker = new FerryProcess('broker', ['broker', '--data', join(dir, 'broker'), '--port', String(ports.broker)], /listening/);
  const b = new FerryProcess('node B', ['node', '--config', join(dir, 'b.json'), '--data', join(dir, 'b'), '--port', String(ports.b)], /ferry node listening/);
  const receiver = new FerryProcess('receiver', ['receiver', '--config', join(dir, 'r.json')], /ferry receiver ready/);
  try {
    await broker.start();
    await b.start();
    await fill(brokers, records, partitions);
    await receiver.start();
    const start = performance.now();
    const deadline = Date.now() + DRAIN_TIMEOUT_MS;
    let s: ReceiverStats;
    for (;;) {
      const res = await fetch(`http://127.0.0.1:${ports.r}/stats`, { signal: AbortSignal.timeout(5000) });
      s = (await res.json()) as ReceiverStats;
      if (s.applied + s.lostConflict >= records && s.consumerLag === 0) break;
      if (Date.now() > deadline) throw new Error(`not drained after ${DRAIN_TIMEOUT_MS} ms: ${JSON.stringify(s)}`);
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    const drainS = (performance.now() - start) / 1000;
    const perS = Math.round(records / drainS);
    console.log(`receiver drain: ${records} records over ${partitions} partitions into a ${commitToDevice ? 'commit-to-device' : 'buffered'} node, apply-concurrency ${applyConcurrency}`);
    console.log(`  drained in ${drainS.toFixed(2)} s: ${perS} records/s (applied ${s.applied}, lost conflict ${s.lostConflict}, retries ${s.retries})`);
    console.log(JSON.stringify({ bench: 'receiver', date: new Date().toISOString(), records, partitions, apply_concurrency: applyConcurrency, commit_to_device: commitToDevice, drain_s: Math.round(drainS * 100) / 100, drain_records_per_s: perS, retries: s.retries }));
  } finally {
    await receiver.stop('SIGKILL');
    await b.stop('SIGKILL');
    await broker.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  }
}
