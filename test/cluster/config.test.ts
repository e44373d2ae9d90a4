import test from 'ava';
import { ConfigError, loadNodeConfig } from '../../store/config.js';

const load = (overrides: Record<string, unknown>, env: Record<string, string> = {}) => loadNodeConfig({ env, overrides: { data: '/tmp/ferry-cfg-test', ...overrides } });

test('no seeds and no heartbeat port: a one-node cluster with no heartbeat listener', (t) => {
  const c = load({});
  t.false(c.heartbeat.enabled);
  t.deepEqual(c.heartbeat.seeds, []);
  t.is(c.namespaces[0]!.replicationFactor, 2);
  t.is(c.rackId, undefined);
});

test('seeds from flags and from the environment; a seed without a port is refused naming the key', (t) => {
  const c = load({ 'heartbeat.seeds': ['10.0.0.1:3002', '[::1]:3102'] });
  t.true(c.heartbeat.enabled);
  t.deepEqual(c.heartbeat.seeds, [{ host: '10.0.0.1', port: 3002 }, { host: '::1', port: 3102 }]);
  t.is(c.heartbeat.port, 0, 'with seeds and no port: any free port');
  const e = load({}, { FERRY_HEARTBEAT_SEEDS: 'a:1,b:2' });
  t.deepEqual(e.heartbeat.seeds.map((s) => s.host), ['a', 'b']);
  t.throws(() => load({ 'heartbeat.seeds': ['10.0.0.1'] }), { instanceOf: ConfigError, message: /heartbeat\.seeds\[0\]: must be host:port: value was "10\.0\.0\.1"/ });
  t.throws(() => load({ 'heartbeat.interval-ms': 5 }), { instanceOf: ConfigError, message: /interval-ms/ });
  t.throws(() => load({ namespaces: [{ name: 'test', 'replication-factor': 9 }] }), { instanceOf: ConfigError, message: /replication-factor/ });
});

test('advertise addresses: what peers and clients are told when listening on a wildcard', (t) => {
  const c = load({ 'service.address': '0.0.0.0', 'service.advertise-address': '10.0.0.5', 'heartbeat.port': 3002 });
  t.is(c.host, '0.0.0.0');
  t.is(c.advertiseHost, '10.0.0.5');
  t.is(c.heartbeat.host, '0.0.0.0');
  t.is(c.heartbeat.advertiseHost, '10.0.0.5');
  const d = load({ 'heartbeat.port': 3002, 'heartbeat.address': '10.0.0.6' });
  t.is(d.advertiseHost, '127.0.0.1');
  t.is(d.heartbeat.advertiseHost, '10.0.0.6');
});
