/** ferry info against a real node process, typed as a user would. */
import test from 'ava';
import { startNode, type NodeProcess } from '../wire/node-process.js';
import { runCli } from './helpers.js';


let node: NodeProcess;

test.before(async () => {
  node = await startNode({ extraArgs: ['--storage', 'memory'] });
});

test.after.always(async () => {
  await node?.destroy();
});


test('prints name<TAB>value lines in the order asked', async (t) => {
  const r = await runCli(['info', '--node', `${node.host}:${node.port}`, 'build', 'edition', 'namespaces', 'ferry-checksums:namespace=test']);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(r.stdout.split('\n'), [
    'build\t8.1.1.0',
    'edition\tAerospike Community Edition',
    'namespaces\ttest',
    'ferry-checksums:namespace=test\t',
    '',
  ]);
});

test('--host/--port and the default command set', async (t) => {
  const r = await runCli(['info', '--host', node.host, '--port', String(node.port)]);
  t.is(r.code, 0, r.stderr);
  const lines = new Map(r.stdout.trim().split('\n').map((l) => l.split('\t') as [string, string]));
  t.deepEqual([...lines.keys()], ['node', 'build', 'edition', 'version', 'ferry-node']);
  t.regex(lines.get('node')!, /^[0-9A-F]+$/);
  t.is(lines.get('ferry-node')!.split(';')[0], `node-id=${lines.get('node')}`);
});

test('--lines splits values at semicolons', async (t) => {
  const r = await runCli(['info', '--node', `${node.host}:${node.port}`, '-l', 'namespace/test']);
  t.is(r.code, 0, r.stderr);
  const [head, ...items] = r.stdout.trim().split('\n');
  t.is(head, 'namespace/test');
  t.true(items.length > 3);
  t.true(items.every((l) => /^  [^;]+=/.test(l)), r.stdout);
});

test('an ERROR answer exits 1; bad options and an unreachable node exit 2', async (t) => {
  const err = await runCli(['info', '--node', `${node.host}:${node.port}`, 'ferry-digests:namespace=nope;partition=0', 'build']);
  t.is(err.code, 1);
  t.regex(err.stdout, /^ferry-digests:namespace=nope;partition=0\tERROR:20:/m);
  t.regex(err.stdout, /^build\t8\.1\.1\.0$/m);
  const bad = await runCli(['info', '--node', 'nohostport']);
  t.is(bad.code, 2);
  const both = await runCli(['info', '--node', `${node.host}:${node.port}`, '--port', '3000']);
  t.is(both.code, 2);
  const down = await runCli(['info', '--node', '127.0.0.1:1', '--timeout-ms', '2000', 'build']);
  t.is(down.code, 2);
  t.regex(down.stderr, /ferry info:/);
});
