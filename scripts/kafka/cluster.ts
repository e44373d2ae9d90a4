/**
 * Apache Kafka for tests and benchmarks: a 1- or 3-node KRaft cluster of real Kafka processes
 * (`java -cp 'scripts/kafka/libs/*' kafka.Kafka server.properties`) on free 127.0.0.1 ports.
 *
 * Every node is broker and controller (combined mode), so three JVMs make a cluster with a
 * controller quorum of three. The jars come from `scripts/kafka.sh fetch` (Maven, pinned in
 * scripts/kafka/pom.xml). Settings are kept light for a small shared machine: bounded heap,
 * serial GC, C1 only, two network and I/O threads, few internal-topic partitions, and fast
 * broker fencing so a killed node leaves the ISR in seconds rather than half a minute.
 *
 * Each node is a child process of the caller, stopped by its pid (SIGTERM, then SIGKILL after
 * a bounded wait) or killed with SIGKILL to simulate a crash. Its log goes to <dir>/node-<id>.log.
 *
 * Run directly, it starts a cluster in the foreground until SIGINT/SIGTERM:
 *   node --import tsx scripts/kafka/cluster.ts [--brokers 1|3] [--dir DIR]
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, type WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../ops/free-port.js';

export const KAFKA_DIR = fileURLToPath(new URL('.', import.meta.url));
export const KAFKA_LIBS_DIR = join(KAFKA_DIR, 'libs');
/** Kills a JVM whose starter is gone (see orphan-guard.mjs). */
const ORPHAN_GUARD = join(KAFKA_DIR, 'orphan-guard.mjs');
/** Written by kafka.sh fetch when it could not fetch: the reason, for the tests to report. */
const MISSING_FILE = join(KAFKA_LIBS_DIR, 'MISSING');

/** A node gets this long from spawn to "Kafka Server started". */
const NODE_START_TIMEOUT_MS = 90_000;
/** After SIGTERM, this long before SIGKILL. */
const NODE_STOP_TIMEOUT_MS = 20_000;
/** Storage formatting (a short JVM run) gets this long. */
const FORMAT_TIMEOUT_MS = 60_000;
/** Heap per node: enough for test loads, small enough for three on a shared machine. */
const HEAP_MB_DEFAULT = 320;
/** Log output kept in memory per node for readiness and leader checks. */
const OUTPUT_KEEP_CHARS = 200_000;

export class KafkaUnavailableError extends Error {
  readonly code = 'KAFKA_UNAVAILABLE';
  constructor(message: string) {
    super(message);
    this.name = 'KafkaUnavailableError';
  }
}

/** A SASL_SSL listener beside the plaintext one: TLS with this server key and CA, SASL users. */
export interface SecureListener {
  /** PEM: the server's private key (PKCS#8, unencrypted) followed by its certificate. */
  keystorePem: string;
  /** PEM: the CA that signed server and client certificates. */
  caPem: string;
  /** Require a client certificate signed by the CA (mutual TLS). */
  clientAuth: boolean;
  /** SASL users, for PLAIN and for SCRAM-SHA-256/512. */
  users: Record<string, string>;
}

export interface KafkaClusterOptions {
  nodes: 1 | 3;
  /** Working directory (data, configs, logs); a fresh temporary one by default. */
  dir?: string;
  heapMb?: number;
  /** Extra server.properties lines for every node. */
  properties?: Record<string, string | number | boolean>;
  secure?: SecureListener;
  /** Faster startup and less CPU (C1 only); off for benchmarks. */
  quickJvm?: boolean;
}

interface NodePorts {
  client: number;
  controller: number;
  secure: number;
}

export { freePort };

/** Says exactly what is missing to run Apache Kafka here, or nothing. */
export function kafkaMissing(): string | undefined {
  if (existsSync(MISSING_FILE)) return readFileSync(MISSING_FILE, 'utf8').trim();
  const java = spawnSync('java', ['-version'], { encoding: 'utf8' });
  if (java.error) return 'Java is missing (no `java` on PATH): install a JDK or JRE 17+ (Debian: apt-get install openjdk-17-jre-headless)';
  if (!existsSync(join(KAFKA_LIBS_DIR, '.stamp'))) return `Apache Kafka jars are missing in ${KAFKA_LIBS_DIR}: run scripts/kafka.sh fetch (needs Maven: apt-get install maven)`;
  return undefined;
}

/**
 * Kafka cluster ids are 16 random bytes, base64url without padding. Like Kafka's own Uuid.randomUuid,
 * never one that starts with '-': kafka-storage's argument parser would read it as an option
 * (1 id in 64 did, and the format failed with "--cluster-id: expected one argument").
 */
export function clusterId(random: () => Buffer = () => randomBytes(16)): string {
  for (;;) {
    const id = random().toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

const LOG4J2 = [
  'status = warn',
  'appender.out.type = Console',
  'appender.out.name = OUT',
  'appender.out.layout.type = PatternLayout',
  'appender.out.layout.pattern = [%d] %p %m (%c)%n',
  'rootLogger.level = INFO',
  'rootLogger.appenderRef.out.ref = OUT',
  // Config dumps are thousands of lines per client; they say nothing a test needs.
  'logger.config.name = org.apache.kafka.common.config.AbstractConfig',
  'logger.config.level = WARN',
  'logger.log.name = kafka.log',
  'logger.log.level = WARN',
  'logger.ulog.name = org.apache.kafka.storage.internals.log',
  'logger.ulog.level = WARN',
].join('\n');

/**
 * The broker settings every node gets, apart from its id, listeners and directories. The same
 * settings are in docker-compose.yml (test/ops/deploy.test.ts keeps the two in step).
 */
export function kafkaSettings(nodes: number): Record<string, string | number> {
  const minIsr = nodes >= 3 ? 2 : 1;
  return {
    'num.partitions': 1,
    'default.replication.factor': nodes,
    'min.insync.replicas': minIsr,
    'offsets.topic.replication.factor': nodes,
    'offsets.topic.num.partitions': 4,
    'transaction.state.log.replication.factor': nodes,
    'transaction.state.log.min.isr': minIsr,
    'transaction.state.log.num.partitions': 4,
    'share.coordinator.state.topic.replication.factor': nodes,
    'share.coordinator.state.topic.min.isr': minIsr,
    'share.coordinator.state.topic.num.partitions': 4,
    'num.network.threads': 2,
    'num.io.threads': 2,
    'num.replica.fetchers': 1,
    'background.threads': 2,
    'num.recovery.threads.per.data.dir': 1,
    'log.segment.bytes': 16 * 1024 * 1024,
    'group.initial.rebalance.delay.ms': 0,
    // A killed node is fenced (and leaves every ISR) after 3 s instead of 9.
    'broker.heartbeat.interval.ms': 500,
    'broker.session.timeout.ms': 3000,
    'replica.lag.time.max.ms': 5000,
  };
}

/** The pinned Kafka version (scripts/kafka/pom.xml). */
export function kafkaVersion(): string {
  const m = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(readFileSync(join(KAFKA_DIR, 'pom.xml'), 'utf8'));
  if (!m) throw new Error('scripts/kafka/pom.xml names no kafka.version');
  return m[1]!;
}

export class KafkaNode {
  private child: ChildProcess | undefined;
  private logFile: WriteStream | undefined;
  output = '';

  constructor(
    readonly id: number,
    readonly ports: NodePorts,
    private readonly dir: string,
    private readonly jvm: string[],
  ) {}

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.running ? this.child!.pid : undefined;
  }

  get configFile(): string {
    return join(this.dir, `node-${this.id}.properties`);
  }

  /** Spawns the JVM and waits for "Kafka Server started" in its log. */
  async start(): Promise<void> {
    if (this.running) return;
    this.logFile = createWriteStream(join(this.dir, `node-${this.id}.log`), { flags: 'a' });
    const args = [...this.jvm, `-Dlog4j2.configurationFile=${join(this.dir, 'log4j2.properties')}`, '-cp', `${KAFKA_LIBS_DIR}/*`, 'kafka.Kafka', this.configFile];
    const child = spawn('java', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    if (child.pid !== undefined) {
      // The JVM cannot watch us; a small guard does: the broker dies with whatever started it.
      const guard = spawn(process.execPath, [ORPHAN_GUARD, String(child.pid)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
      guard.channel?.unref();
      guard.unref();
    }
    const mark = this.output.length;
    const keep = (c: Buffer): void => {
      this.logFile?.write(c);
      this.output = (this.output + c.toString()).slice(-OUTPUT_KEEP_CHARS);
    };
    child.stderr!.on('data', keep);
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`kafka node ${this.id} did not start within ${NODE_START_TIMEOUT_MS} ms:\n${this.output.slice(-3000)}`));
      }, NODE_START_TIMEOUT_MS);
      let seen = '';
      child.stdout!.on('data', (c: Buffer) => {
        keep(c);
        seen = (seen + c.toString()).slice(-10_000);
        if (/Kafka Server started/.test(seen)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new KafkaUnavailableError(`cannot run java: ${err.message}`));
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`kafka node ${this.id} exited (${code ?? signal}) before it was ready:\n${this.output.slice(mark).slice(-3000)}`));
      });
    });
  }

  /** SIGTERM (clean shutdown) or SIGKILL (crash); resolves when the process is gone. */
  async stop(signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM'): Promise<void> {
    const p = this.child;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => p.once('exit', () => resolve()));
    p.kill(signal);
    const timer = setTimeout(() => p.kill('SIGKILL'), NODE_STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
    this.logFile?.end();
  }

  /** True when this node's last Raft transition made it the quorum leader (the active controller). */
  get isController(): boolean {
    const transitions = [...this.output.matchAll(/Completed transition to (\w+)/g)];
    return this.running && transitions.at(-1)?.[1] === 'Leader';
  }
}

export class KafkaCluster {
  readonly nodes: KafkaNode[];

  private constructor(
    readonly dir: string,
    private readonly ownsDir: boolean,
    nodes: KafkaNode[],
    readonly secure: SecureListener | undefined,
  ) {
    this.nodes = nodes;
  }

  /** host:port of every node's plaintext listener. */
  get brokers(): string[] {
    return this.nodes.map((n) => `127.0.0.1:${n.ports.client}`);
  }

  /** host:port of every node's SASL_SSL listener (when configured). */
  get secureBrokers(): string[] {
    return this.nodes.map((n) => `127.0.0.1:${n.ports.secure}`);
  }

  get controller(): KafkaNode | undefined {
    return this.nodes.find((n) => n.isController);
  }

  static async start(opts: KafkaClusterOptions): Promise<KafkaCluster> {
    const missing = kafkaMissing();
    if (missing) throw new KafkaUnavailableError(`Apache Kafka cannot run here: ${missing}`);
    const ownsDir = opts.dir === undefined;
    const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'ferry-kafka-'));
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'log4j2.properties'), LOG4J2);
    const ports: NodePorts[] = [];
    for (let i = 0; i < opts.nodes; i++) ports.push({ client: await freePort(), controller: await freePort(), secure: opts.secure ? await freePort() : 0 });
    const heapMb = opts.heapMb ?? HEAP_MB_DEFAULT;
    const jvm = [`-Xms64m`, `-Xmx${heapMb}m`, '-XX:+UseSerialGC', '-Xss512k', '-Djava.awt.headless=true', '-XX:ActiveProcessorCount=1'];
    if (opts.quickJvm !== false) jvm.push('-XX:TieredStopAtLevel=1');
    const nodes = ports.map((p, i) => new KafkaNode(i + 1, p, dir, jvm));
    const cluster = new KafkaCluster(dir, ownsDir, nodes, opts.secure);
    const id = clusterId();
    try {
      for (const n of nodes) {
        writeFileSync(n.configFile, cluster.properties(n, opts));
        cluster.format(n, id, jvm);
      }
      await Promise.all(nodes.map((n) => n.start()));
    } catch (err) {
      await cluster.stop();
      throw err;
    }
    return cluster;
  }

  private properties(n: KafkaNode, opts: KafkaClusterOptions): string {
    const count = this.nodes.length;
    const voters = this.nodes.map((m) => `${m.id}@127.0.0.1:${m.ports.controller}`).join(',');
    const listeners = [`PLAINTEXT://127.0.0.1:${n.ports.client}`, `CONTROLLER://127.0.0.1:${n.ports.controller}`];
    const advertised = [`PLAINTEXT://127.0.0.1:${n.ports.client}`];
    const protocolMap = ['PLAINTEXT:PLAINTEXT', 'CONTROLLER:PLAINTEXT'];
    const props: Record<string, string | number | boolean> = {
      'process.roles': 'broker,controller',
      'node.id': n.id,
      'controller.quorum.voters': voters,
      'controller.listener.names': 'CONTROLLER',
      'inter.broker.listener.name': 'PLAINTEXT',
      'log.dirs': join(this.dir, `data-${n.id}`),
      ...kafkaSettings(count),
      ...opts.properties,
    };
    const s = this.secure;
    if (s) {
      listeners.push(`SASL_SSL://127.0.0.1:${n.ports.secure}`);
      advertised.push(`SASL_SSL://127.0.0.1:${n.ports.secure}`);
      protocolMap.push('SASL_SSL:SASL_SSL');
      writeFileSync(join(this.dir, 'server.pem'), s.keystorePem);
      writeFileSync(join(this.dir, 'ca.pem'), s.caPem);
      const users = Object.entries(s.users).map(([u, p]) => `user_${u}="${p}"`).join(' ');
      Object.assign(props, {
        'sasl.enabled.mechanisms': 'PLAIN,SCRAM-SHA-256,SCRAM-SHA-512',
        'listener.name.sasl_ssl.plain.sasl.jaas.config': `org.apache.kafka.common.security.plain.PlainLoginModule required ${users};`,
        'listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config': 'org.apache.kafka.common.security.scram.ScramLoginModule required;',
        'listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config': 'org.apache.kafka.common.security.scram.ScramLoginModule required;',
        'listener.name.sasl_ssl.ssl.keystore.type': 'PEM',
        'listener.name.sasl_ssl.ssl.keystore.location': join(this.dir, 'server.pem'),
        'listener.name.sasl_ssl.ssl.truststore.type': 'PEM',
        'listener.name.sasl_ssl.ssl.truststore.location': join(this.dir, 'ca.pem'),
        'listener.name.sasl_ssl.ssl.client.auth': s.clientAuth ? 'required' : 'none',
        'ssl.endpoint.identification.algorithm': '',
      });
    }
    props['listeners'] = listeners.join(',');
    props['advertised.listeners'] = advertised.join(',');
    props['listener.security.protocol.map'] = protocolMap.join(',');
    return Object.entries(props).map(([k, v]) => `${k}=${String(v)}`).join('\n') + '\n';
  }

  /** `kafka-storage format`: the cluster id, and SCRAM credentials for the secure listener's users. */
  private format(n: KafkaNode, id: string, jvm: string[]): void {
    const scram = this.secure
      ? Object.entries(this.secure.users).flatMap(([u, p]) => ['SCRAM-SHA-256', 'SCRAM-SHA-512'].flatMap((m) => ['--add-scram', `${m}=[name=${u},password=${p}]`]))
      : [];
    const r = spawnSync('java', [...jvm, `-Dlog4j2.configurationFile=${join(this.dir, 'log4j2.properties')}`, '-cp', `${KAFKA_LIBS_DIR}/*`, 'kafka.tools.StorageTool', 'format', `--cluster-id=${id}`, '-c', n.configFile, ...scram], {
      encoding: 'utf8',
      timeout: FORMAT_TIMEOUT_MS,
    });
    if (r.error) throw new KafkaUnavailableError(`cannot run java: ${r.error.message}`);
    if (r.status !== 0) throw new Error(`kafka storage format of node ${n.id} failed (${r.status}):\n${r.stdout}\n${r.stderr}`);
  }

  /** Stops every node (SIGTERM, bounded) and removes the directory if it made it. */
  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop('SIGTERM')));
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Kills every node at once (end of a test: nothing to keep). */
  async kill(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop('SIGKILL')));
    if (this.ownsDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

async function main(argv: string[]): Promise<void> {
  const arg = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const nodes = Number(arg('--brokers') ?? 1);
  if (nodes !== 1 && nodes !== 3) throw new Error(`--brokers: must be 1 or 3: value was ${arg('--brokers')}`);
  const dir = arg('--dir');
  const cluster = await KafkaCluster.start({ nodes, ...(dir ? { dir } : {}) });
  console.log(`kafka ready: ${nodes} node(s), bootstrap ${cluster.brokers.join(',')}, pids ${cluster.nodes.map((n) => n.pid).join(',')}, dir ${cluster.dir}`);
  const stop = (): void => {
    console.log('kafka: stopping');
    cluster.stop().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).catch((err: Error) => {
    console.error(`kafka: ${err.message}`);
    process.exit(1);
  });
}
