/**
 * docker-compose.yml and deploy/ cannot drift from ferry and from the tests: every ferry
 * service's config file loads through ferry's own validation (node, xdr, receiver), every Kafka
 * address they name is a Kafka service's advertised listener, the Kafka image is the version and
 * the settings the tests run (scripts/kafka), Prometheus scrapes exactly the ferry processes'
 * metrics ports, and the Grafana dashboard queries only metrics ferry exports.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { kafkaSettings, kafkaVersion } from '../../scripts/kafka/cluster.js';
import { loadReceiverConfig } from '../../ops/commands/receiver.js';
import { defaultTopic, parseXdrConfig } from '../../shipper/config.js';
import { loadNodeConfig } from '../../store/config.js';
import { ROOT } from '../helpers/procs.js';

interface Service {
  image?: string;
  build?: string;
  command?: string[];
  environment?: Record<string, string | number>;
  volumes?: string[];
}

const compose = parse(readFileSync(join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as { services: Record<string, Service> };
const services = Object.entries(compose.services);
const kafkaServices = services.filter(([, s]) => s.image?.startsWith('apache/kafka:'));
const ferryServices = services.filter(([, s]) => s.build === '.');

/** The deploy/ file behind `--config /etc/ferry/X` (mounted from ./deploy). */
function configFile(name: string, s: Service): string {
  const i = s.command?.indexOf('--config') ?? -1;
  if (i < 0) throw new Error(`${name}: no --config`);
  const path = s.command![i + 1]!;
  const mount = s.volumes?.map((v) => v.split(':')).find(([from, to]) => from === './deploy' && path.startsWith(`${to}/`));
  if (!mount) throw new Error(`${name}: ${path} is not under a ./deploy mount`);
  return join(ROOT, 'deploy', path.slice(mount[1]!.length + 1));
}

const nodes = ferryServices.filter(([, s]) => s.command?.[0] === 'node').map(([name, s]) => {
  const config = loadNodeConfig({ file: configFile(name, s), env: {} });
  return { name, config, xdr: parseXdrConfig(config.xdr) };
});
const receivers = ferryServices.filter(([, s]) => s.command?.[0] === 'receiver').map(([name, s]) => ({ name, config: loadReceiverConfig(configFile(name, s)) }));

test('Kafka: three KRaft nodes of the pinned version with the settings the tests use', (t) => {
  t.is(kafkaServices.length, 3);
  const voters = kafkaServices.map(([name, s]) => `${s.environment!.KAFKA_NODE_ID}@${name}:9093`).join(',');
  for (const [name, s] of kafkaServices) {
    t.is(s.image, `apache/kafka:${kafkaVersion()}`, name);
    const env = s.environment!;
    for (const [k, v] of Object.entries(kafkaSettings(3))) t.is(String(env[`KAFKA_${k.toUpperCase().replaceAll('.', '_')}`]), String(v), `${name}: ${k}`);
    t.is(env.KAFKA_CONTROLLER_QUORUM_VOTERS, voters, name);
    t.is(env.KAFKA_ADVERTISED_LISTENERS, `PLAINTEXT://${name}:9092`, name);
    t.regex(String(env.CLUSTER_ID), /^[A-Za-z0-9_-]{22}$/);
  }
});

test('ferry services: configs load through ferry\'s schemas and name only real Kafka listeners, topics and nodes', (t) => {
  const listeners = new Set(kafkaServices.map(([name]) => `${name}:9092`));
  t.true(nodes.length >= 2 && receivers.length >= 1);
  const shipped = new Set<string>();
  for (const n of nodes) {
    for (const d of n.xdr.destinations) {
      t.deepEqual(d.brokers.filter((b) => !listeners.has(b)), [], `${n.name} → ${d.name}`);
      t.is(d.brokers.length, listeners.size, `${n.name} bootstraps from every Kafka node`);
      for (const ns of d.namespaces) shipped.add(d.topic || defaultTopic(n.xdr.site, ns));
    }
  }
  const nodePorts = new Set(nodes.map((n) => `${n.name}:${n.config.port}`));
  for (const r of receivers) {
    t.deepEqual(r.config.options.brokers.filter((b) => !listeners.has(b)), [], r.name);
    t.deepEqual(r.config.options.topics.filter((tp) => !shipped.has(tp)), [], `${r.name} consumes shipped topics`);
    t.deepEqual(r.config.options.destination.map((d) => `${d.host}:${d.port}`).filter((d) => !nodePorts.has(d)), [], `${r.name} applies to a node`);
  }
});

test('Prometheus scrapes every ferry process on its metrics port, and Grafana queries only ferry\'s metrics', (t) => {
  const prom = parse(readFileSync(join(ROOT, 'deploy/prometheus.yml'), 'utf8')) as { scrape_configs: Array<{ static_configs: Array<{ targets: string[]; labels: Record<string, string> }> }> };
  const targets = prom.scrape_configs.flatMap((j) => j.static_configs.flatMap((c) => c.targets.map((tg) => ({ tg, labels: c.labels }))));
  const expected = [...nodes.map((n) => `${n.name}:${n.config.metricsPort}`), ...receivers.map((r) => `${r.name}:${r.config.metricsPort}`)];
  t.true(nodes.every((n) => n.config.metricsPort > 0), 'every node exports metrics');
  t.deepEqual(targets.map((x) => x.tg).sort(), expected.sort());
  for (const x of targets) t.truthy(x.labels.site && x.labels.node, `${x.tg} has site and node labels`);

  const exported = ['shipper/shipper.ts', 'receiver/receiver.ts'].map((f) => readFileSync(join(ROOT, f), 'utf8')).join('\n');
  const dashboard = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/dashboards/ferry.json'), 'utf8')) as { panels: Array<{ title: string; targets: Array<{ expr: string; datasource: { uid: string } }> }> };
  const datasource = parse(readFileSync(join(ROOT, 'deploy/grafana/provisioning/datasources/prometheus.yml'), 'utf8')) as { datasources: Array<{ uid: string; url: string }> };
  t.is(datasource.datasources[0]!.url, 'http://prometheus:9090');
  const used = new Set<string>();
  for (const p of dashboard.panels) {
    for (const q of p.targets) {
      t.is(q.datasource.uid, datasource.datasources[0]!.uid, p.title);
      for (const m of q.expr.match(/ferry_[a-z_]+/g) ?? []) used.add(m);
    }
  }
  for (const m of used) t.true(exported.includes(`'${m}'`) || exported.includes(`\`${m}`), `${m} is exported by ferry`);
  for (const m of ['ferry_xdr_records_behind', 'ferry_xdr_shipped_total', 'ferry_receiver_lost_conflict_total', 'ferry_receiver_dead_lettered_total', 'ferry_xdr_partition_records_behind', 'ferry_receiver_partition_consumer_lag']) t.true(used.has(m), `the dashboard shows ${m}`);
  const provider = parse(readFileSync(join(ROOT, 'deploy/grafana/provisioning/dashboards/ferry.yml'), 'utf8')) as { providers: Array<{ options: { path: string } }> };
  const grafana = compose.services.grafana!;
  t.true(grafana.volumes!.includes(`./deploy/grafana/dashboards:${provider.providers[0]!.options.path}:ro`));
});
