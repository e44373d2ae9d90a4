/**
 * Membership under network faults: three heartbeats on an in-memory network (a Transport whose
 * links can be cut) converge, a node cut away from the others leaves, the two re-form with a new
 * key while the lone node forms its own cluster, and after the heal all three converge again on
 * the original key. Short heartbeat intervals on real timers; every wait is bounded.
 */
import test from 'ava';
import { FABRIC_PROTOCOL_VERSION, Heartbeat } from '../../store/cluster/heartbeat.js';
import { clusterKeyOf } from '../../store/cluster/partition-table.js';
import type { Endpoint, FabricConnection, FabricListener, Transport } from '../../store/transport/index.js';
import { systemClock, systemTimers } from '../../store/runtime/index.js';
import { waitFor } from '../helpers/procs.js';

const WAIT_MS = 10_000;

/** An in-memory network: hosts listen on one port each; a cut link drops frames both ways. */
class Network {
  readonly listeners = new Map<string, (c: FabricConnection) => void>();
  readonly cut = new Set<string>();
  link(a: string, b: string): string {
    return [a, b].sort().join('|');
  }
  transportFor(host: string): Transport {
    return {
      listen: async (ep: Endpoint, onConnection): Promise<FabricListener> => {
        this.listeners.set(`${ep.host}:${ep.port}`, onConnection);
        return { port: ep.port, close: async () => void this.listeners.delete(`${ep.host}:${ep.port}`) };
      },
      connect: (ep: Endpoint) => {
        const [mine, theirs] = [new Side(`${ep.host}:${ep.port}`), new Side(`${host}:?`)];
        mine.peer = theirs;
        theirs.peer = mine;
        mine.ok = theirs.ok = () => !this.cut.has(this.link(host, ep.host));
        const accept = this.listeners.get(`${ep.host}:${ep.port}`);
        if (accept) queueMicrotask(() => accept(theirs));
        else queueMicrotask(() => mine.close());
        return mine;
      },
    };
  }
}

class Side implements FabricConnection {
  peer: Side | undefined;
  ok: () => boolean = () => true;
  closed = false;
  #frames: Array<(f: Buffer) => void> = [];
  #closes: Array<() => void> = [];
  constructor(readonly remote: string) {}
  send(frame: Buffer): void {
    const p = this.peer;
    if (this.closed || !p || !this.ok()) return;
    const copy = Buffer.from(frame);
    setImmediate(() => {
      if (!p.closed) for (const cb of p.#frames) cb(copy);
    });
  }
  onFrame(cb: (f: Buffer) => void): void {
    this.#frames.push(cb);
  }
  onClose(cb: () => void): void {
    if (this.closed) cb();
    else this.#closes.push(cb);
  }
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const cb of this.#closes.splice(0)) cb();
    this.peer?.close();
  }
}

test('three nodes converge; one cut away leaves and forms its own cluster; after the heal all converge again', async (t) => {
  const net = new Network();
  const ids = ['A1', 'B2', 'C3'];
  const hosts = ['n1', 'n2', 'n3'];
  const logs: string[] = [];
  const hbs = ids.map(
    (nodeId, i) =>
      new Heartbeat({
        nodeId,
        clusterName: 'sim',
        listen: { host: hosts[i]!, port: 1 },
        service: () => ({ host: hosts[i]!, port: 3000 }),
        seeds: i === 0 ? [] : [{ host: 'n1', port: 1 }],
        intervalMs: 20,
        timeoutCount: 10,
        transport: net.transportFor(hosts[i]!),
        clock: systemClock,
        timers: systemTimers,
        log: (_level, msg) => logs.push(`${nodeId}: ${msg}`),
      }),
  );
  t.teardown(() => Promise.all(hbs.map((h) => h.stop())));
  for (const h of hbs) await h.start();
  const all = clusterKeyOf(ids.map((nodeId) => ({ nodeId })));
  const keys = (): string[] => hbs.map((h) => h.snapshot().clusterKey);
  await waitFor(() => keys().every((k) => k === all) && hbs.every((h) => h.integrity()), WAIT_MS, 'three nodes to converge');

  // C is reachable by neither A nor B.
  net.cut.add(net.link('n1', 'n3'));
  net.cut.add(net.link('n2', 'n3'));
  const pair = clusterKeyOf([{ nodeId: 'A1' }, { nodeId: 'B2' }]);
  const alone = clusterKeyOf([{ nodeId: 'C3' }]);
  // Integrity follows one pulse later: each must hear the other announce the new key.
  await waitFor(() => keys().join() === [pair, pair, alone].join() && hbs[0]!.integrity() && hbs[1]!.integrity(), WAIT_MS, 'A and B to re-form without C');
  t.true(logs.some((l) => /^A1: node C3 .* is gone/.test(l)), logs.join('\n'));
  const generation = hbs[0]!.snapshot().generation;

  net.cut.clear();
  await waitFor(() => keys().every((k) => k === all) && hbs.every((h) => h.integrity()), WAIT_MS, 'all three to converge after the heal');
  t.true(hbs[0]!.snapshot().generation > generation, 'each membership change raises the generation');
});

test('a pulse with another cluster-name never makes a member', async (t) => {
  const net = new Network();
  const mk = (nodeId: string, host: string, clusterName: string, seeds: Endpoint[]): Heartbeat =>
    new Heartbeat({ nodeId, clusterName, listen: { host, port: 1 }, service: () => ({ host, port: 3000 }), seeds, intervalMs: 20, timeoutCount: 10, transport: net.transportFor(host), clock: systemClock, timers: systemTimers });
  const a = mk('A1', 'n1', 'one', []);
  const b = mk('B2', 'n2', 'two', [{ host: 'n1', port: 1 }]);
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  await a.start();
  await b.start();
  await waitFor(() => a.counters.refused_cluster_name > 0 && b.counters.refused_cluster_name > 0, WAIT_MS, 'both sides to refuse');
  t.is(a.snapshot().members.length, 1);
  t.is(b.snapshot().members.length, 1);
});

test('a node of another fabric protocol version (an older ferry) never makes a member, and both sides say why', async (t) => {
  const net = new Network();
  const logs: string[] = [];
  const mk = (nodeId: string, host: string, fabricVersion: number | undefined, seeds: Endpoint[]): Heartbeat =>
    new Heartbeat({
      nodeId,
      clusterName: 'one',
      listen: { host, port: 1 },
      service: () => ({ host, port: 3000 }),
      seeds,
      intervalMs: 20,
      timeoutCount: 10,
      ...(fabricVersion !== undefined ? { fabricVersion } : {}),
      transport: net.transportFor(host),
      clock: systemClock,
      timers: systemTimers,
      log: (_level, msg) => void logs.push(`${nodeId}: ${msg}`),
    });
  const a = mk('A1', 'n1', undefined, []);
  const b = mk('B2', 'n2', 1, [{ host: 'n1', port: 1 }]);
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  await a.start();
  await b.start();
  await waitFor(() => a.counters.refused_fabric_version > 0 && logs.some((l) => /^B2: node A1 refused us: fabric protocol version 1/.test(l)), WAIT_MS, 'the refusal on both sides');
  t.true(logs.some((l) => l.startsWith(`A1: refusing node B2 at n2:1: fabric protocol version 1 of node B2 differs from ours (${FABRIC_PROTOCOL_VERSION})`)), logs.join('\n'));
  t.is(a.snapshot().members.length, 1);
  t.is(b.snapshot().members.length, 1);
});

test('over TCP, a peer whose process is gone (its heartbeat port refuses connects) leaves long before the node timeout', async (t) => {
  const { tcpTransport } = await import('../../store/transport/tcp.js');
  const { freePort } = await import('../helpers/procs.js');
  const host = '127.0.0.1';
  // A node timeout of 60 s: far longer than the bounded wait below, so only refusals can explain a departure.
  const intervalMs = 50;
  const timeoutCount = 1200;
  const logs: string[] = [];
  const ports = [await freePort(), await freePort()];
  const mk = (nodeId: string, i: number): Heartbeat =>
    new Heartbeat({
      nodeId,
      clusterName: 'tcp',
      listen: { host, port: ports[i]! },
      service: () => ({ host, port: 3000 + i }),
      seeds: i === 0 ? [] : [{ host, port: ports[0]! }],
      intervalMs,
      timeoutCount,
      transport: tcpTransport,
      clock: systemClock,
      timers: systemTimers,
      log: (_level, msg) => logs.push(`${nodeId}: ${msg}`),
    });
  const a = mk('A1', 0);
  const b = mk('B2', 1);
  t.teardown(() => Promise.all([a.stop(), b.stop()]));
  await a.start();
  await b.start();
  await waitFor(() => a.snapshot().members.length === 2 && b.snapshot().members.length === 2, WAIT_MS, 'A and B to join');
  // B's process "dies": its listener and connections close; A's connects to it are refused.
  await b.stop();
  await waitFor(() => a.snapshot().members.length === 1, WAIT_MS, 'A to see B gone');
  t.true(logs.some((l) => /^A1: node B2 .* is gone \(its heartbeat port refused \d+ connects/.test(l)), logs.join('\n'));
});
