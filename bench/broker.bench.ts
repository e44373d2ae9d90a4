/**
 * `npm run bench -- broker [--messages N] [--partitions N] [--producers N] [--in-flight N] [--e2e-seconds N] [--flush-policy fsync|os] [--peer apache]`
 * With `--peer apache` the same run follows against a 1-node Apache Kafka (scripts/kafka, full
 * JIT, 1 GiB heap) on the same machine, for a side-by-side comparison; each prints its JSON line
 * (the peer's with "peer":"apache").
 *
 * The broker runs in a child process (`ferry broker`, its own core); this process drives it with
 * kafkajs: 200-byte messages in batches of 1000 with acks=-1 from kafkajs producers in worker
 * threads (produce), a group consumer reading
 * them all back (consume), then a paced 10k messages/s stream measuring end-to-end latency
 * (send call → consumer callback). Prints figures next to the goals and ends with one JSON line
 * {"bench":"broker", ...}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Kafka, logLevel } from 'kafkajs';
import { KafkaCluster, kafkaVersion } from '../scripts/kafka/cluster.js';
import { BenchArgs } from './args.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const messageBytes = 200;
const batchMessages = 1000;
const startTimeoutMs = 60_000;
const phaseTimeoutMs = 180_000;
const e2eRatePerS = 10_000;
const e2eTickMs = 10;
const goalMsgsPerS = 100_000;
const goalE2eP99Ms = 20;

interface Args {
  messages: number;
  partitions: number;
  inFlight: number;
  producers: number;
  e2eSeconds: number;
  flushPolicy: string;
  peer: string;
}

function parseArgs(argv: string[]): Args {
  const o = new BenchArgs(argv);
  o.onlyKnown(['messages', 'partitions', 'in-flight', 'producers', 'e2e-seconds', 'flush-policy', 'peer']);
  return {
    messages: o.num('messages', 300_000, 1),
    partitions: o.num('partitions', 4, 1),
    inFlight: o.num('in-flight', 4, 1),
    producers: o.num('producers', 2, 1),
    e2eSeconds: o.num('e2e-seconds', 10, 0),
    flushPolicy: o.str('flush-policy', 'fsync'),
    peer: o.str('peer', ''),
  };
}

function startBrokerProcess(dataDir: string, flushPolicy: string): Promise<{ child: ChildProcess; broker: string }> {
  const child = spawn(process.execPath, ['bin/ferry.mjs', 'broker', '--data', dataDir, '--port', '0', '--flush-policy', flushPolicy], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error(`broker did not start in ${startTimeoutMs} ms`)), startTimeoutMs);
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /ferry broker listening on (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve({ child, broker: m[1]! });
      }
    });
    child.once('exit', (code) => reject(new Error(`broker exited with ${code}`)));
  });
}

/** CPU seconds (user + system) used so far by a process, from /proc. */
function cpuSeconds(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return NaN;
  }
}

function selfCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish in ${phaseTimeoutMs} ms`)), phaseTimeoutMs);
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}

export async function main(argv: string[]): Promise<void> {
  const args = parseArgs(argv);
  if (args.peer !== '' && args.peer !== 'apache') throw new Error(`--peer: only "apache" is known, got "${args.peer}"`);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'ferry-broker-bench-'));
  const { child, broker } = await startBrokerProcess(dataDir, args.flushPolicy);
  try {
    await benchOne(args, broker, child.pid!, 'ferry broker');
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dataDir, { recursive: true, force: true });
  }
  if (args.peer === 'apache') {
    const cluster = await KafkaCluster.start({ nodes: 1, quickJvm: false, heapMb: 1024 });
    try {
      console.log(`\npeer: Apache Kafka ${kafkaVersion()} (1 KRaft node, acks=-1 means in the leader's log; Kafka fsyncs on its own schedule, not per produce)`);
      await benchOne(args, cluster.brokers[0]!, cluster.nodes[0]!.pid!, 'apache', 'apache');
    } finally {
      await cluster.stop();
    }
  }
}

async function benchOne(args: Args, broker: string, brokerPid: number, label: string, peer?: string): Promise<void> {
  const child = { pid: brokerPid };
  const kafka = new Kafka({ clientId: 'bench', brokers: [broker], logLevel: logLevel.NOTHING });
  {
    const admin = kafka.admin();
    await admin.connect();
    await admin.createTopics({ topics: [{ topic: 'bench', numPartitions: args.partitions }, { topic: 'e2e', numPartitions: 1 }] });
    await admin.disconnect();

    // Produce: batches of 1000 × 200 bytes, acks=-1, from `producers` kafkajs producers in worker
    // threads (one kafkajs producer saturates a core encoding), each with `inFlight` sends outstanding.
    const batches = Math.ceil(args.messages / batchMessages);
    const total = batches * batchMessages;
    const workers = Array.from({ length: args.producers }, (_, i) => {
      const share = Math.floor(batches / args.producers) + (i < batches % args.producers ? 1 : 0);
      const job: ProducerJob = { role: 'bench-producer', broker, batches: share, inFlight: args.inFlight, partitions: args.partitions };
      // tsx's loader is per thread: register it in the worker before importing this file.
      const boot = `import('tsx/esm/api').then((m) => { m.register(); return import(${JSON.stringify(import.meta.url)}); })`;
      return new Worker(boot, { eval: true, workerData: job });
    });
    const message = (w: Worker, type: string): Promise<{ type: string; cpu?: number }> =>
      new Promise((resolve, reject) => {
        const onMsg = (m: { type: string; cpu?: number }): void => {
          if (m.type === type) {
            w.off('message', onMsg);
            resolve(m);
          }
        };
        w.on('message', onMsg);
        w.once('error', reject);
      });
    await withTimeout(Promise.all(workers.map((w) => message(w, 'ready'))), 'producer start');
    const brokerCpu0 = cpuSeconds(child.pid!);
    const clientCpu0 = selfCpuSeconds();
    const t0 = process.hrtime.bigint();
    const finished = workers.map((w) => message(w, 'done'));
    for (const w of workers) w.postMessage('go');
    await withTimeout(Promise.all(finished), 'produce');
    const produceS = Number(process.hrtime.bigint() - t0) / 1e9;
    const produceBrokerCpu = (cpuSeconds(child.pid!) - brokerCpu0) / produceS;
    const produceClientCpu = (selfCpuSeconds() - clientCpu0) / produceS;
    await Promise.all(workers.map((w) => w.terminate()));
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const produceMsgsPerS = total / produceS;
    const produceMbPerS = (total * messageBytes) / produceS / 1e6;

    // Consume everything back with a group consumer.
    const consumer = kafka.consumer({ groupId: 'bench-consume', maxBytesPerPartition: 4 * 1024 * 1024, maxBytes: 16 * 1024 * 1024 });
    await consumer.connect();
    await consumer.subscribe({ topic: 'bench', fromBeginning: true });
    let consumed = 0;
    const cBrokerCpu0 = cpuSeconds(child.pid!);
    const cClientCpu0 = selfCpuSeconds();
    const c0 = process.hrtime.bigint();
    let cEnd = 0n;
    const allConsumed = new Promise<void>((resolve) => {
      void consumer.run({
        eachBatchAutoResolve: true,
        eachBatch: async ({ batch: b }) => {
          consumed += b.messages.length;
          if (consumed >= total) {
            cEnd = process.hrtime.bigint();
            resolve();
          }
        },
      });
    });
    await withTimeout(allConsumed, 'consume');
    const consumeS = Number(cEnd - c0) / 1e9;
    const consumeMsgsPerS = total / consumeS;
    const consumeBrokerCpu = (cpuSeconds(child.pid!) - cBrokerCpu0) / consumeS;
    const consumeClientCpu = (selfCpuSeconds() - cClientCpu0) / consumeS;
    await consumer.disconnect();

    // End-to-end latency at 10k messages/s: 100 messages every 10 ms, send time in the value.
    const latencies: number[] = [];
    const trace: [number, number][] = [];
    const ackLatencies: number[] = [];
    const e2eConsumer = kafka.consumer({ groupId: 'bench-e2e', maxWaitTimeInMs: 500 });
    await e2eConsumer.connect();
    await e2eConsumer.subscribe({ topic: 'e2e', fromBeginning: false });
    let joined = false;
    e2eConsumer.on(e2eConsumer.events.GROUP_JOIN, () => (joined = true));
    await e2eConsumer.run({
      eachMessage: async ({ message }) => {
        const sent = Number(message.value!.readBigInt64BE(0)) / 1e6;
        const now = Number(process.hrtime.bigint()) / 1e6;
        latencies.push(now - sent);
        if (process.env.FERRY_BENCH_TRACE) trace.push([Math.round(now), Math.round(now - sent)]);
      },
    });
    const joinDeadline = Date.now() + 30_000;
    while (!joined && Date.now() < joinDeadline) await new Promise((r) => setTimeout(r, 50));
    await new Promise((r) => setTimeout(r, 500));
    const perTick = (e2eRatePerS * e2eTickMs) / 1000;
    const ticks = (args.e2eSeconds * 1000) / e2eTickMs;
    const e2eStart = Date.now();
    const e2eStartHr = Number(process.hrtime.bigint()) / 1e6;
    const sends: Promise<unknown>[] = [];
    for (let i = 0; i < ticks; i++) {
      const due = e2eStart + i * e2eTickMs;
      const wait = due - Date.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const messages = Array.from({ length: perTick }, () => {
        const v = Buffer.alloc(messageBytes);
        v.writeBigInt64BE(process.hrtime.bigint(), 0);
        return { value: v };
      });
      const sentAt = performance.now();
      sends.push(producer.send({ topic: 'e2e', acks: -1, messages }).then(() => ackLatencies.push(performance.now() - sentAt)));
    }
    await withTimeout(Promise.all(sends), 'e2e produce');
    const e2eExpected = ticks * perTick;
    const drainDeadline = Date.now() + 10_000;
    while (latencies.length < e2eExpected && Date.now() < drainDeadline) await new Promise((r) => setTimeout(r, 50));
    const achievedRate = latencies.length / ((Date.now() - e2eStart) / 1000);
    await e2eConsumer.disconnect();
    await producer.disconnect();
    if (process.env.FERRY_BENCH_TRACE) {
      const slow = trace.filter(([, l]) => l > 20);
      const byMs = new Map<number, number>();
      for (const [at, l] of slow) byMs.set(at - l, Math.max(byMs.get(at - l) ?? 0, l));
      console.error('slow sends (send time → worst latency ms):', [...byMs].slice(0, 40).map(([a, l]) => `${a - Math.round(e2eStartHr)}:${l}`).join(' '));
    }
    latencies.sort((a, b) => a - b);
    ackLatencies.sort((a, b) => a - b);
    const p50 = percentile(latencies, 50);
    const p99 = percentile(latencies, 99);

    const f = (n: number, d = 0): string => n.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d });
    const mark = (ok: boolean): string => (ok ? 'meets goal' : 'BELOW GOAL');
    console.log(`broker benchmark (${label}): ${f(total)} messages of ${messageBytes} B, batches of ${batchMessages}, acks=-1, ${args.partitions} partitions, ${args.producers} producers × ${args.inFlight} sends in flight, ${peer ? 'Kafka flushing on its own schedule' : `flush policy ${args.flushPolicy}`}`);
    console.log(`  produce   ${f(produceMsgsPerS).padStart(10)} msgs/s  ${f(produceMbPerS, 1).padStart(7)} MB/s   goal ≥ ${f(goalMsgsPerS)} msgs/s  ${mark(produceMsgsPerS >= goalMsgsPerS)}  (cores busy: broker ${f(produceBrokerCpu, 2)}, kafkajs process ${f(produceClientCpu, 2)})`);
    console.log(`  consume   ${f(consumeMsgsPerS).padStart(10)} msgs/s                 goal ≥ ${f(goalMsgsPerS)} msgs/s  ${mark(consumeMsgsPerS >= goalMsgsPerS)}  (cores busy: broker ${f(consumeBrokerCpu, 2)}, kafkajs ${f(consumeClientCpu, 2)})`);
    console.log(`  e2e @10k/s  p50 ${f(p50, 2)} ms  p99 ${f(p99, 2)} ms  (${f(latencies.length)} of ${f(e2eExpected)} messages, ${f(achievedRate)} msgs/s)   goal p99 < ${goalE2eP99Ms} ms  ${mark(p99 < goalE2eP99Ms)}`);
    console.log(`  broker CPU per message: produce ${f((produceBrokerCpu * 1e6) / produceMsgsPerS, 2)} µs, consume ${f((consumeBrokerCpu * 1e6) / consumeMsgsPerS, 2)} µs (the rest of the time goes to kafkajs)`);
    console.log(`  produce ack (acks=-1${peer ? '' : `, flush policy ${args.flushPolicy}`}) at 10k/s  p50 ${f(percentile(ackLatencies, 50), 2)} ms  p99 ${f(percentile(ackLatencies, 99), 2)} ms`);
    console.log(
      JSON.stringify({
        bench: 'broker',
        ...(peer ? { peer } : {}),
        messages: total,
        message_bytes: messageBytes,
        batch_messages: batchMessages,
        partitions: args.partitions,
        in_flight: args.inFlight,
        flush_policy: peer ? 'kafka' : args.flushPolicy,
        produce_msgs_per_s: Math.round(produceMsgsPerS),
        produce_mb_per_s: Number(produceMbPerS.toFixed(1)),
        produce_broker_cores: Number(produceBrokerCpu.toFixed(2)),
        produce_broker_cpu_us_per_msg: Number(((produceBrokerCpu * 1e6) / produceMsgsPerS).toFixed(3)),
        produce_client_cores: Number(produceClientCpu.toFixed(2)),
        consume_msgs_per_s: Math.round(consumeMsgsPerS),
        consume_broker_cores: Number(consumeBrokerCpu.toFixed(2)),
        consume_broker_cpu_us_per_msg: Number(((consumeBrokerCpu * 1e6) / consumeMsgsPerS).toFixed(3)),
        consume_client_cores: Number(consumeClientCpu.toFixed(2)),
        producers: args.producers,
        e2e_rate_per_s: e2eRatePerS,
        e2e_messages: latencies.length,
        e2e_p50_ms: Number(p50.toFixed(2)),
        e2e_p99_ms: Number(p99.toFixed(2)),
        ack_p50_ms: Number(percentile(ackLatencies, 50).toFixed(2)),
        ack_p99_ms: Number(percentile(ackLatencies, 99).toFixed(2)),
      }),
    );
  }
}

interface ProducerJob {
  role: 'bench-producer';
  broker: string;
  batches: number;
  inFlight: number;
  partitions: number;
}

/** Worker-thread side: one kafkajs producer sending its share of batches on 'go'. */
async function producerWorker(job: ProducerJob): Promise<void> {
  const kafka = new Kafka({ clientId: 'bench-producer', brokers: [job.broker], logLevel: logLevel.NOTHING });
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const value = Buffer.alloc(messageBytes, 'x');
  const batch = Array.from({ length: batchMessages }, (_, i) => ({ key: null, value, partition: i % job.partitions }));
  await new Promise<void>((resolve) => {
    parentPort!.once('message', () => resolve());
    parentPort!.postMessage({ type: 'ready' });
  });
  let next = 0;
  await Promise.all(
    Array.from({ length: job.inFlight }, async () => {
      while (next < job.batches) {
        next++;
        await producer.send({ topic: 'bench', acks: -1, messages: batch });
      }
    }),
  );
  parentPort!.postMessage({ type: 'done' });
  await producer.disconnect();
}

if (!isMainThread && (workerData as ProducerJob | undefined)?.role === 'bench-producer') {
  void producerWorker(workerData as ProducerJob);
}
