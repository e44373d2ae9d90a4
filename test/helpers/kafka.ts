/**
 * The Kafka a test ships through, as a parameter: `embedded` (ferry's own broker, one process per
 * test, as a user starts it) or `apache` (a real Apache Kafka KRaft node, started once per test
 * file and shared by its tests; each test gets its own topic and group names).
 *
 *   const kafka = kafkaPerFile(test);
 *   for (const kind of BROKER_KINDS) test.serial(`[${kind}] ...`, async (t) => {
 *     const broker = await kafka.broker(kind, dir); ... });
 *
 * Where Apache Kafka cannot run (no Java, no jars) the `apache` tests fail with the reason.
 */
import { join } from 'node:path';
import type { TestFn } from 'ava';
import { KafkaCluster, type KafkaClusterOptions } from '../../scripts/kafka/cluster.js';
import { FerryProcess, freePort } from './procs.js';

export const BROKER_KINDS = ['embedded', 'apache'] as const;
export type BrokerKind = (typeof BROKER_KINDS)[number];

export interface BrokerUnderTest {
  readonly kind: BrokerKind;
  /** Bootstrap host:port list. */
  readonly brokers: string[];
  /** Appended to topic and group names: '' on a fresh embedded broker, unique on a shared one. */
  readonly suffix: string;
  /** An outage: the (first) broker stops; `start` brings it back with its data. */
  stop(signal?: 'SIGTERM' | 'SIGKILL'): Promise<void>;
  start(): Promise<void>;
  /** End of the test: an embedded broker is killed; a shared cluster stays for the next test. */
  close(): Promise<void>;
}

export interface KafkaPerFile {
  /** The shared Apache Kafka of this file, started on first use. */
  cluster(): Promise<KafkaCluster>;
  broker(kind: BrokerKind, dir: string): Promise<BrokerUnderTest>;
}

/** Registers `test.after.always` to kill the file's Apache Kafka, if one was started. */
export function kafkaPerFile(test: TestFn, opts: Partial<KafkaClusterOptions> = {}): KafkaPerFile {
  let started: Promise<KafkaCluster> | undefined;
  let uses = 0;
  test.after.always(async () => {
    if (started) await (await started.catch(() => undefined))?.kill();
  });
  const cluster = (): Promise<KafkaCluster> => (started ??= KafkaCluster.start({ nodes: 1, ...opts }));
  return {
    cluster,
    async broker(kind, dir) {
      if (kind === 'embedded') return embeddedBroker(dir);
      const c = await cluster();
      uses++;
      const node = c.nodes[0]!;
      return {
        kind,
        brokers: c.brokers,
        suffix: `-${uses}`,
        stop: (signal = 'SIGTERM') => node.stop(signal),
        start: () => node.start(),
        close: async () => {
          // A test that stopped the node leaves it running for the next one.
          await node.start();
        },
      };
    },
  };
}

/** The embedded broker as `ferry broker` (with `extra` options), stopped and restarted on its port. */
export async function embeddedBroker(dir: string, extra: string[] = []): Promise<BrokerUnderTest> {
  const port = await freePort();
  const proc = new FerryProcess('broker', ['broker', '--data', join(dir, 'broker'), '--port', String(port), ...extra], /ferry broker listening/);
  await proc.start();
  return {
    kind: 'embedded',
    brokers: [`127.0.0.1:${port}`],
    suffix: '',
    stop: (signal = 'SIGTERM') => proc.stop(signal),
    start: async () => void (await proc.start()),
    close: () => proc.stop('SIGKILL'),
  };
}
