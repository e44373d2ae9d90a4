/**
 * Shipper and receiver through Apache Kafka's SASL_SSL listener: TLS with a CA and a client
 * certificate (mutual TLS, certificates made here with openssl), SASL PLAIN, SCRAM-SHA-256 and
 * SCRAM-SHA-512. A wrong password is reported naming the destination (shipper) or the group
 * (receiver, which stops with exit 2), not retried in silence. `ferry replay` rewinds a group
 * through the same listener with the same options as flags.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FerryClient } from '../../store/client/client.js';
import { Kafka, logLevel } from 'kafkajs';
import { parseXdrConfig } from '../../shipper/config.js';
import { NO_KAFKA_SECURITY, kafkaClientSecurity } from '../../kafka/security.js';
import { kafkaPerFile } from '../helpers/kafka.js';
import { FerryProcess, freePort, waitFor } from '../helpers/procs.js';
import { runCli } from '../ops/helpers.js';
import { startSites } from './sites.js';

const USER = 'alice';
const PASSWORD = 'alice-secret';

/** A CA, a server certificate for 127.0.0.1 and a client certificate, all signed by the CA. */
function makeCerts(dir: string): { ca: string; serverPem: string; clientCert: string; clientKey: string } {
  const ssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=ferry test CA');
  for (const who of ['server', 'client']) {
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${who}.key`, '-out', `${who}.csr`, '-subj', `/CN=ferry test ${who}`);
    writeFileSync(join(dir, `${who}.ext`), who === 'server' ? 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' : 'extendedKeyUsage=clientAuth\n');
    ssl('x509', '-req', '-in', `${who}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${who}.pem`, '-days', '2', '-extfile', `${who}.ext`);
  }
  // Kafka's PEM keystore: the PKCS#8 key, then the certificate.
  const serverPem = readFileSync(join(dir, 'server.key'), 'utf8') + readFileSync(join(dir, 'server.pem'), 'utf8');
  return { ca: join(dir, 'ca.pem'), serverPem, clientCert: join(dir, 'client.pem'), clientKey: join(dir, 'client.key') };
}

const certDir = mkdtempSync(join(tmpdir(), 'ferry-certs-'));
const certs = makeCerts(certDir);
test.after.always(() => rmSync(certDir, { recursive: true, force: true }));
const kafka = kafkaPerFile(test, {
  secure: { keystorePem: certs.serverPem, caPem: readFileSync(certs.ca, 'utf8'), clientAuth: true, users: { [USER]: PASSWORD } },
});

const tls = () => ({ 'tls-ca-file': certs.ca, 'tls-cert-file': certs.clientCert, 'tls-key-file': certs.clientKey });

test.serial('[apache SASL_SSL] the shipper (SCRAM-SHA-256) and the receiver (SCRAM-SHA-512) replicate over mutual TLS', async (t) => {
  const cluster = await kafka.cluster();
  const s = await startSites((dir) => kafka.broker('apache', dir), {
    destination: { brokers: cluster.secureBrokers, ...tls(), 'sasl-mechanism': 'scram-sha-256', 'sasl-username': USER, 'sasl-password': PASSWORD },
    receiver: { brokers: cluster.secureBrokers, ...tls(), 'sasl-mechanism': 'scram-sha-512', 'sasl-username': USER, 'sasl-password': PASSWORD },
  });
  t.teardown(() => s.close());
  for (let i = 0; i < 50; i++) await s.clientA.put({ namespace: 'test', set: 'sec', key: `k${i}` }, { i });
  await s.converged();
  t.deepEqual((await s.clientB.get({ namespace: 'test', set: 'sec', key: 'k49' }))?.bins, { i: 49 });
  t.true((await s.receiverStats()).applied >= 50);
});

test.serial('[apache SASL_SSL] a wrong password names the destination (shipper) and stops the receiver with exit 2; PLAIN with the right one works', async (t) => {
  const cluster = await kafka.cluster();
  const dir = mkdtempSync(join(tmpdir(), 'ferry-sec-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const port = await freePort();
  const bad = { ...tls(), 'sasl-mechanism': 'plain', 'sasl-username': USER, 'sasl-password': 'wrong' };
  writeFileSync(join(dir, 'a.json'), JSON.stringify({
    namespaces: [{ name: 'test', 'storage-engine': 'memory' }],
    xdr: { site: 'A', destinations: [{ name: 'B', brokers: cluster.secureBrokers, namespaces: ['test'], topic: 'ferry.A.badpass', ...bad }] },
  }));
  const node = new FerryProcess('node A', ['node', '--config', join(dir, 'a.json'), '--data', join(dir, 'a'), '--port', String(port)], /ferry node listening/);
  t.teardown(() => node.stop('SIGKILL'));
  await node.start();
  const client = await FerryClient.connect({ hosts: [{ host: '127.0.0.1', port }], tendIntervalMs: 0 });
  t.teardown(() => client.close());
  let lastError = '';
  await waitFor(async () => {
    const x = JSON.parse(await client.infoValue('xdr-stats')) as { streams: Array<{ lastError: string; connected: boolean }> };
    lastError = x.streams[0]?.lastError ?? '';
    return lastError !== '';
  }, 30_000, 'the shipper to report the failed login');
  t.regex(lastError, /^destination B: Kafka 127\.0\.0\.1:\d+ refused the connection \(SASL PLAIN as user "alice", TLS with a client certificate\)/);
  t.regex(node.output, /destination B: Kafka .* refused the connection/);

  const receiverConfig = (extra: Record<string, unknown>, name: string) => {
    const file = join(dir, name);
    writeFileSync(file, JSON.stringify({ brokers: cluster.secureBrokers, topics: ['ferry.A.badpass'], 'group-id': 'sec-group', destination: [`127.0.0.1:${port}`], 'metrics-port': 0, ...tls(), ...extra }));
    return file;
  };
  const r = await runCli(['receiver', '--config', receiverConfig(bad, 'bad.json')], 60_000);
  t.is(r.code, 2, r.stderr);
  t.regex(r.stderr, /ferry receiver: group sec-group: Kafka 127\.0\.0\.1:\d+.* refused the connection \(SASL PLAIN as user "alice"/);

  // Mutual TLS: the right password without a client certificate is refused too.
  const noCert = await runCli(['receiver', '--config', receiverConfig({ 'tls-cert-file': '', 'tls-key-file': '', 'sasl-mechanism': 'plain', 'sasl-username': USER, 'sasl-password': PASSWORD }, 'nocert.json')], 60_000);
  t.is(noCert.code, 2, noCert.stderr);
  t.regex(noCert.stderr, /group sec-group: Kafka .* refused the connection \(SASL PLAIN as user "alice", TLS\)/);

  const good = new FerryProcess('receiver', ['receiver', '--config', receiverConfig({ 'sasl-mechanism': 'plain', 'sasl-username': USER, 'sasl-password': PASSWORD }, 'good.json')], /ferry receiver ready/);
  t.teardown(() => good.stop('SIGKILL'));
  await good.start();
  t.pass();
});

test.serial('[apache SASL_SSL] ferry replay rewinds a group over mutual TLS with SCRAM-SHA-512; a wrong password exits 2 naming the user', async (t) => {
  const cluster = await kafka.cluster();
  const dir = mkdtempSync(join(tmpdir(), 'ferry-sec-replay-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const topic = 'ferry.A.replaysec';
  const group = 'replay-sec-group';
  const secure = new Kafka({
    brokers: cluster.secureBrokers, logLevel: logLevel.NOTHING,
    ...kafkaClientSecurity({ ...NO_KAFKA_SECURITY, tlsCaFile: certs.ca, tlsCertFile: certs.clientCert, tlsKeyFile: certs.clientKey, saslMechanism: 'scram-sha-512', saslUsername: USER, saslPassword: PASSWORD }),
  });
  const admin = secure.admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
  const producer = secure.producer();
  await producer.connect();
  await producer.send({ topic, messages: Array.from({ length: 6 }, (_, i) => ({ key: `k${i}`, value: `v${i}`, partition: i % 2 })) });
  await producer.disconnect();

  const passwordFile = join(dir, 'password');
  writeFileSync(passwordFile, `${PASSWORD}\n`);
  const flags = ['--tls-ca-file', certs.ca, '--tls-cert-file', certs.clientCert, '--tls-key-file', certs.clientKey, '--sasl-mechanism', 'scram-sha-512', '--sasl-username', USER];
  const replay = ['replay', '--brokers', cluster.secureBrokers.join(','), '--group', group, '--topic', topic, '--offset', '1', '--json'];
  const r = await runCli([...replay, ...flags, '--sasl-password-file', passwordFile], 60_000);
  t.is(r.code, 0, r.stderr);
  const report = JSON.parse(r.stdout) as { partitions: Array<{ partition: number; new: number; high: number }> };
  t.deepEqual(report.partitions.map((p) => [p.partition, p.new, p.high]), [[0, 1, 3], [1, 1, 3]]);
  // What the broker holds for the group now (read with the same secure client).
  const committed = (await admin.fetchOffsets({ groupId: group, topics: [topic] }))[0]!.partitions.map((p) => [p.partition, Number(p.offset)]).sort();
  t.deepEqual(committed, [[0, 1], [1, 1]]);

  writeFileSync(passwordFile, 'wrong\n');
  const bad = await runCli([...replay, ...flags, '--sasl-password-file', passwordFile], 60_000);
  t.is(bad.code, 2, bad.stdout);
  t.regex(bad.stderr, /ferry replay: group replay-sec-group: Kafka 127\.0\.0\.1:\d+.* refused the connection \(SASL SCRAM-SHA-512 as user "alice", TLS with a client certificate\)/);
  // Without TLS flags the SASL_SSL listener is not reachable as plaintext; the flags are validated.
  const noUser = await runCli([...replay, '--sasl-mechanism', 'plain'], 30_000);
  t.is(noUser.code, 2);
  t.regex(noUser.stderr, /--sasl-username: required with sasl-mechanism plain/);
});

test('security options are validated naming the key', (t) => {
  const dest = (extra: Record<string, unknown>) => ({ site: 'A', destinations: [{ name: 'B', brokers: ['h:1'], namespaces: ['test'], ...extra }] });
  t.throws(() => parseXdrConfig(dest({ 'sasl-mechanism': 'gssapi' })), { message: /xdr\.destinations\[0\]\.sasl-mechanism/ });
  t.throws(() => parseXdrConfig(dest({ 'sasl-mechanism': 'plain' })), { message: /xdr\.destinations\[0\]\.sasl-username: required/ });
  t.throws(() => parseXdrConfig(dest({ 'tls-cert-file': '/x' })), { message: /xdr\.destinations\[0\]\.tls-cert-file/ });
  t.like(parseXdrConfig(dest({ 'sasl-mechanism': 'scram-sha-512', 'sasl-username': 'u', 'sasl-password': 'p' })).destinations[0]!.security, { saslMechanism: 'scram-sha-512', saslUsername: 'u' });
});
