import test from 'ava';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError, loadNodeConfig } from '../../store/config.js';
import { tempDir } from '../helpers/store.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

test('defaults are Aerospike-like: port 3000, namespace test, data under ./data', (t) => {
  const c = loadNodeConfig({ env: {} });
  t.is(c.port, 3000);
  t.deepEqual(c.namespaces.map((n) => n.name), ['test']);
  t.true(c.data.endsWith('/data'));
  t.is(c.namespaces[0]!.writeBlockSize, 1024 * 1024);
  t.is(c.namespaces[0]!.transactionPendingLimit, 20);
  t.is(c.namespaces[0]!.defragLwmPct, 50);
});

test('environment variables set node and namespace keys', (t) => {
  const c = loadNodeConfig({ env: { FERRY_PORT: '3100', FERRY_DATA: '/tmp/x', FERRY_NS_DEFAULT_TTL: '60', FERRY_NS_STORAGE_ENGINE: 'memory' } });
  t.is(c.port, 3100);
  t.is(c.data, '/tmp/x');
  t.is(c.namespaces[0]!.defaultTtlS, 60);
  t.is(c.namespaces[0]!.storageEngine, 'memory');
});

test('bad values are refused with a message naming the key and the value', (t) => {
  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  const file = join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify({ service: { port: 70000 } }));
  const e1 = t.throws(() => loadNodeConfig({ env: {}, file }), { instanceOf: ConfigError });
  t.regex(e1!.message, /service\.port/);
  t.regex(e1!.message, /70000/);
  writeFileSync(file, JSON.stringify({ namespaces: [{ name: 'ns1', 'defrag-lwm-pct': 150 }] }));
  const e2 = t.throws(() => loadNodeConfig({ env: {}, file }), { instanceOf: ConfigError });
  t.regex(e2!.message, /namespaces\[0\]\.defrag-lwm-pct/);
  t.regex(e2!.message, /150/);
  writeFileSync(file, JSON.stringify({ namespaces: [{ name: 'ns1', 'storage-engine': 'tape' }] }));
  t.regex(t.throws(() => loadNodeConfig({ env: {}, file }))!.message, /storage-engine.*tape/);
  writeFileSync(file, JSON.stringify({ surprise: 1 }));
  t.regex(t.throws(() => loadNodeConfig({ env: {}, file }))!.message, /surprise/);
  t.regex(t.throws(() => loadNodeConfig({ env: { FERRY_PORT: 'abc' } }))!.message, /service\.port/);
});

test('ferry node refuses bad configuration with exit status 2 and a clear message', (t) => {
  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  const file = join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify({ namespaces: [{ name: 'test', 'write-block-size': 1000 }] }));
  const r = spawnSync(process.execPath, ['bin/ferry.mjs', 'node', '--config', file, '--data', dir], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  t.is(r.status, 2);
  t.regex(r.stderr, /write-block-size/);
  t.regex(r.stderr, /1000/);
  const r2 = spawnSync(process.execPath, ['bin/ferry.mjs', 'node', '--port', 'x', '--data', dir], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
  t.is(r2.status, 2);
  t.regex(r2.stderr, /--port/);
});
