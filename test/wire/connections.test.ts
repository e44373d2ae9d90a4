/**
 * Connection handling against a real node: the configured connection limit, INFO and AS_MSG on one
 * socket, and many concurrent connections.
 */
import test from 'ava';
import net from 'node:net';
import { startNode, type NodeProcess } from './node-process.js';
import { FrameParser } from '../../store/wire/proto.js';
import { encodeInfoRequestFrame, parseInfoResponse } from '../../store/wire/info-codec.js';
import { FerryClient } from '../../store/client/client.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadNodeConfig } from '../../store/config.js';
import { openStoreNode } from '../../store/node.js';
import { startWireServer } from '../../store/wire/server.js';

const LIMIT = 5;
const WAIT_MS = 5_000;
let node: NodeProcess;

test.before(async () => {
  node = await startNode({ env: { FERRY_MAX_CONNECTIONS: String(LIMIT) } });
});
test.after.always(async () => {
  await node?.destroy();
});

function open(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: node.host, port: node.port }, () => resolve(s));
    s.once('error', reject);
  });
}

/** Sends an info request and waits for the answer or the socket closing. */
function ask(s: net.Socket, cmd: string): Promise<string | 'closed'> {
  return new Promise((resolve) => {
    const parser = new FrameParser();
    const timer = setTimeout(() => resolve('closed'), WAIT_MS);
    const onClose = (): void => {
      clearTimeout(timer);
      resolve('closed');
    };
    const onData = (c: Buffer): void => {
      const frames = parser.push(c);
      if (frames.length > 0) {
        clearTimeout(timer);
        s.off('data', onData);
        s.off('close', onClose);
        resolve(parseInfoResponse(frames[0]!.body).get(cmd) ?? '');
      }
    };
    s.on('data', onData);
    s.once('close', onClose);
    s.write(encodeInfoRequestFrame([cmd]));
  });
}

test.serial('connections beyond the limit are refused; the others keep working', async (t) => {
  const held: net.Socket[] = [];
  for (let i = 0; i < LIMIT; i++) held.push(await open());
  for (const s of held) t.is(await ask(s, 'build'), '8.1.1.0');
  const extra = await open();
  t.is(await ask(extra, 'build'), 'closed');
  t.is(await ask(held[0]!, 'status'), 'ok');
  for (const s of held) s.destroy();
  // Once freed, new connections are served again (the server notices closes asynchronously).
  let answer: string | 'closed' = 'closed';
  for (let i = 0; i < 50 && answer === 'closed'; i++) {
    await new Promise((r) => setTimeout(r, 100));
    const s = await open();
    answer = await ask(s, 'build');
    s.destroy();
  }
  t.is(answer, '8.1.1.0');
});

test.serial('info and data commands share one socket; a pooled client works within the limit', async (t) => {
  const c = await FerryClient.connect({ hosts: [{ host: node.host, port: node.port }], maxConnsPerNode: 1, tendIntervalMs: 0 });
  try {
    const ns = (await c.infoValue('namespaces')).split(';')[0]!;
    await Promise.all(Array.from({ length: 20 }, (_, i) => c.put({ namespace: ns, set: 'conn', key: i }, { i })));
    const got = await Promise.all(Array.from({ length: 20 }, (_, i) => c.get({ namespace: ns, set: 'conn', key: i })));
    t.deepEqual(got.map((r) => r!.bins['i']), Array.from({ length: 20 }, (_, i) => i));
    t.is(await c.infoValue('status'), 'ok');
  } finally {
    c.close();
  }
});

test.serial('idle connections are closed; active ones stay', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ferry-wire-idle-'));
  const store = await openStoreNode(loadNodeConfig({ env: { FERRY_NS_STORAGE_ENGINE: 'memory' }, overrides: { data: dir } }));
  const server = await startWireServer(store, { port: 0, idleTimeoutMs: 1000 });
  t.teardown(async () => {
    await server.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const connectTo = (): Promise<net.Socket> =>
    new Promise((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: server.port }, () => resolve(s));
      s.once('error', reject);
    });
  const idle = await connectTo();
  const active = await connectTo();
  let idleClosed = false;
  idle.once('close', () => (idleClosed = true));
  // The idle socket goes within two sweep intervals (<= 2 s); the active one asks every 100 ms.
  for (let i = 0; i < 30; i++) {
    t.is(await ask(active, 'status'), 'ok');
    await new Promise((r) => setTimeout(r, 100));
  }
  t.true(idleClosed);
  t.false(active.destroyed);
  active.destroy();
});
