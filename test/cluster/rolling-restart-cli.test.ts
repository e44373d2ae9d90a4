/**
 * `ferry cluster rolling-restart --exec '<command>'` as an operator types it, against a real
 * 3-node cluster under a light write load from the official client: the command is run once per
 * node, in turn, with {node}, {host} and {port} replaced; here it is a one-line request to the
 * test, which restarts that node's process (warm, same data directory and command line) and
 * answers once it is started. The CLI exits 0 after every node came back; no client command
 * failed and every acknowledged write reads back. A restart command that fails stops the CLI
 * with a clear error naming the node and the command.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import { ROOT, waitFor } from '../helpers/procs.js';
import { connectClient, info, startMember, startMembers, stopMembers, type Member, type MemberOptions } from '../helpers/cluster-members.js';
import { waitClusterStable } from '../../ops/rolling-restart.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const Aerospike: Any = createRequire(import.meta.url)('aerospike');
const run = promisify(execFile);
const ns = 'test';
const set = 'rr';
const STABLE_TIMEOUT_MS = 90_000;
/** Aerospike result code of a command that ran out of time (counted, not failed: see quiesce.test.ts). */
const CLIENT_TIMEOUT = 9;

const dirs: string[] = [];
/** As in quiesce.test.ts: a 3 s node timeout, so a loaded shared machine does not make the cluster flap. */
const MEMBERS: MemberOptions = { tmpPrefix: 'ferry-rr-', env: { FERRY_NS_FILESIZE: String(16 * 1024 * 1024), FERRY_HEARTBEAT_TIMEOUT_COUNT: '20' }, dirs };
let members: Member[] = [];
let server: Server | undefined;
let client: Any;

const addresses = () => members.map((m) => ({ nodeId: m.id, address: { host: '127.0.0.1', port: m.port } }));

/**
 * The restart the --exec command asks for: warm (SIGTERM, same data), with the command line the
 * member was started with (the first one has no seed: it rejoins through its remembered peers).
 */
async function restartMember(m: Member): Promise<void> {
  await m.proc.stop('SIGTERM');
  const seedHb = m === members[0] ? undefined : members[0]!.hbPort;
  members[members.indexOf(m)] = await startMember(MEMBERS, seedHb, m);
}

test.before(async () => {
  members = await startMembers(MEMBERS, 3);
  await waitClusterStable(addresses(), STABLE_TIMEOUT_MS);
  client = await connectClient(members[0]!.port);
});

test.after.always(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  await stopMembers(client, members, dirs);
});

test.serial('ferry cluster rolling-restart --exec restarts every node in turn; no client command fails', async (t) => {
  t.timeout(8 * STABLE_TIMEOUT_MS);
  const asked: string[] = [];
  server = createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const m = members.find((x) => x.id === u.searchParams.get('node'));
    asked.push(`${u.searchParams.get('node')} ${u.searchParams.get('host')}:${u.searchParams.get('port')}`);
    if (!m || u.searchParams.get('port') !== String(m.port)) {
      res.writeHead(404).end('no such member');
      return;
    }
    restartMember(m).then(
      () => res.writeHead(200).end('ok'),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  const hookPort = (server.address() as { port: number }).port;
  // What an operator's restart command looks like to the CLI: a shell line that exits 0 once the node was restarted.
  const exec = `node -e "fetch('http://127.0.0.1:${hookPort}/?node={node}&host={host}&port={port}').then(async (r) => { process.stdout.write('hook: ' + (await r.text()) + '\\n'); process.exit(r.ok ? 0 : 1); }, () => process.exit(1))"`;

  const acked: string[] = [];
  const failures: string[] = [];
  let timeouts = 0;
  let running = true;
  const writer = (async () => {
    for (let i = 0; running; i++) {
      const k = `w${i}`;
      try {
        await client.put(new Aerospike.Key(ns, set, k), { v: k });
        acked.push(k);
      } catch (err) {
        const e = err as { code?: number; message?: string };
        if (e.code === CLIENT_TIMEOUT) timeouts++;
        else failures.push(`put ${k}: code ${e.code} ${e.message ?? ''}`);
      }
      await new Promise((r) => setTimeout(r, 3));
    }
  })();
  await waitFor(() => acked.length >= 200, STABLE_TIMEOUT_MS, 'some acknowledged writes');
  let stdout = '';
  try {
    ({ stdout } = await run(process.execPath, [path.join(ROOT, 'bin/ferry.mjs'), 'cluster', 'rolling-restart', '--node', `127.0.0.1:${members[1]!.port}`, '--exec', exec, '--timeout-ms', String(STABLE_TIMEOUT_MS)], { cwd: ROOT, timeout: 6 * STABLE_TIMEOUT_MS }));
  } finally {
    running = false;
    await writer;
  }
  t.log(stdout);
  t.log(`${acked.length} writes acknowledged, ${timeouts} timed out (1 s client timeout; counted), ${failures.length} failed`);
  t.regex(stdout, /rolling restart done: 3 node\(s\)/);
  t.is((stdout.match(/^hook: ok$/gm) ?? []).length, 3, 'the restart command ran once per node and each said ok');
  t.deepEqual(asked.map((a) => a.split(' ')[0]).sort(), members.map((m) => m.id).sort(), 'every node was restarted once, with {node} replaced');
  t.true(asked.every((a) => /^[0-9A-F]+ 127\.0\.0\.1:\d+$/.test(a)), `{host} and {port} replaced: ${asked.join(', ')}`);
  t.deepEqual(failures, [], 'no client command failed');
  await waitClusterStable(addresses(), STABLE_TIMEOUT_MS);
  for (let i = 0; i < acked.length; i += 500) {
    const keys = acked.slice(i, i + 500);
    const rows = await client.batchRead(keys.map((k) => ({ key: new Aerospike.Key(ns, set, k), readAllBins: true })));
    t.deepEqual(rows.map((r: Any) => r.record?.bins?.v), keys, 'every acknowledged write reads back');
  }
});

test.serial('a restart command that fails stops the rolling restart with an error naming the node and the command', async (t) => {
  t.timeout(3 * STABLE_TIMEOUT_MS);
  const err = await run(process.execPath, [path.join(ROOT, 'bin/ferry.mjs'), 'cluster', 'rolling-restart', '--node', `127.0.0.1:${members[0]!.port}`, '--exec', 'exit 3', '--timeout-ms', String(STABLE_TIMEOUT_MS)], { cwd: ROOT, timeout: 2 * STABLE_TIMEOUT_MS }).then(
    () => undefined,
    (e: { code: number; stderr: string }) => e,
  );
  t.truthy(err, 'the CLI failed');
  t.not(err!.code, 0);
  t.regex(err!.stderr, /restart command for [0-9A-F]+ "exit 3" exited 3/);
  const left = /node ([0-9A-F]+) \(127\.0\.0\.1:(\d+)\) is left quiesced for a look: `ferry cluster quiesce --undo --node 127\.0\.0\.1:\d+`/.exec(err!.stderr);
  t.truthy(left, `it says which node it left quiesced and how to undo it: ${err!.stderr}`);
  // The command it names, as the operator would run it.
  const undo = await run(process.execPath, [path.join(ROOT, 'bin/ferry.mjs'), 'cluster', 'quiesce', '--undo', '--node', `127.0.0.1:${left![2]}`, '--timeout-ms', String(STABLE_TIMEOUT_MS)], { cwd: ROOT, timeout: 2 * STABLE_TIMEOUT_MS });
  t.regex(undo.stdout, /no longer quiesced/);
  await waitClusterStable(addresses(), STABLE_TIMEOUT_MS);
});
