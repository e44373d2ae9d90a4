/**
 * Test helper: a cluster of real ferry node processes under a client load, as
 * test/cluster/migration.test.ts and test/cluster/quiesce.test.ts run it: members started on
 * free ports (each seeded from another's heartbeat port), info and statistics, partition
 * checksums, and the writers-and-readers load both tests count outcomes of.
 */
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseKv, withNode } from '../../ops/util.js';
import { seededRandom, type Random } from '../../store/runtime/index.js';
import { FerryProcess, freePort } from './procs.js';

export interface Member {
  proc: FerryProcess;
  port: number;
  hbPort: number;
  /** Set when the members serve metrics (MemberOptions.metrics). */
  metricsPort?: number;
  dir: string;
  id: string;
}

export interface MemberOptions {
  /** Prefix of each member's data directory under the system temporary directory. */
  tmpPrefix: string;
  /** Environment of every node process. */
  env: Record<string, string>;
  /** Each member serves metrics on a port of its own (`--metrics-port`). */
  metrics?: boolean;
  /** The data directories created are added here (the test removes them). */
  dirs: string[];
}

export const info = (port: number, cmd: string): Promise<string> => withNode({ host: '127.0.0.1', port }, 5000, (n) => n.info(cmd));
export const stats = async (port: number, cmd = 'statistics'): Promise<Map<string, string>> => parseKv(await info(port, cmd));

/**
 * Starts a member seeded from `seedHb` (a heartbeat port; none: the first member). With `reuse`,
 * restarts that member: the same data directory and ports. A new process every time, so a
 * restarted member gets the seed it is given now: reusing the first member's process would bring
 * it back with no seed, as a one-node cluster of its own.
 */
export async function startMember(o: MemberOptions, seedHb: number | undefined, reuse?: Member): Promise<Member> {
  const dir = reuse?.dir ?? mkdtempSync(path.join(tmpdir(), o.tmpPrefix));
  if (!reuse) o.dirs.push(dir);
  const port = reuse?.port ?? (await freePort());
  const hbPort = reuse?.hbPort ?? (await freePort());
  const metricsPort = o.metrics ? (reuse?.metricsPort ?? (await freePort())) : undefined;
  const args = ['node', '--port', String(port), '--heartbeat-port', String(hbPort), ...(metricsPort !== undefined ? ['--metrics-port', String(metricsPort)] : []), '--data', dir];
  if (seedHb !== undefined) args.push('--seed', `127.0.0.1:${seedHb}`);
  const proc = new FerryProcess(`node ${port}`, args, /ferry node heartbeat on .*\n[^]*ferry node listening on /, o.env);
  await proc.start();
  const id = await info(port, 'node');
  return { proc, port, hbPort, ...(metricsPort !== undefined ? { metricsPort } : {}), dir, id };
}

/** Starts `n` members, the first unseeded and the others seeded from it, one after another. */
export async function startMembers(o: MemberOptions, n: number): Promise<Member[]> {
  const first = await startMember(o, undefined);
  const out = [first];
  for (let i = 1; i < n; i++) out.push(await startMember(o, first.hbPort));
  return out;
}

/* The official client is CommonJS with loose typings; it is driven through `any` on purpose. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Any = any;
const Aerospike: Any = createRequire(import.meta.url)('aerospike');

/** The official client, connected through the member on `port`, logging off. */
export function connectClient(port: number): Promise<Any> {
  return Aerospike.connect({ hosts: [{ addr: '127.0.0.1', port }], log: { level: Aerospike.log.OFF } });
}

/** Closes the client, kills every member and removes the data directories. */
export async function stopMembers(client: Any, members: readonly Member[], dirs: readonly string[]): Promise<void> {
  await client?.close();
  await Promise.all(members.map((m) => m.proc.stop('SIGKILL')));
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

/** Per node: partition -> checksum text of the non-empty partitions it holds. */
export async function checksumsOf(port: number, ns: string): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  const text = await info(port, `ferry-checksums:namespace=${ns}`);
  for (const part of text.split(';').filter(Boolean)) {
    const [pid, ...rest] = part.split(':');
    out.set(Number(pid), rest.join(':'));
  }
  return out;
}

export const pause = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Writers put fresh keys (`prefix` and a number); as many readers read acknowledged keys back,
 * picked with a PRNG seeded with `seed`. A subclass sends and counts the commands (write, read)
 * and calls start() last in its constructor, once its own counters are set.
 */
export abstract class ClientLoad {
  readonly acked: string[] = [];
  #running = true;
  #next = 0;
  readonly #done: Array<Promise<void>> = [];
  readonly #random: Random;

  constructor(
    protected readonly client: Any,
    private readonly prefix: string,
    seed: number,
  ) {
    this.#random = seededRandom(seed);
  }

  /** Starts `writers` writers and as many readers. */
  protected start(writers: number): void {
    for (let i = 0; i < writers; i++) this.#done.push(this.#writer(), this.#reader());
  }

  /** Writes key `k` (the writer's next fresh key); adds it to `acked` once acknowledged. */
  protected abstract write(k: string): Promise<void>;
  /** Reads back `k`, an acknowledged key. */
  protected abstract read(k: string): Promise<void>;

  async #writer(): Promise<void> {
    while (this.#running) await this.write(`${this.prefix}${this.#next++}`);
  }

  async #reader(): Promise<void> {
    while (this.#running) {
      if (this.acked.length === 0) {
        await pause(10);
        continue;
      }
      await this.read(this.acked[this.#random.u32() % this.acked.length]!);
    }
  }

  async stop(): Promise<void> {
    this.#running = false;
    await Promise.all(this.#done);
  }
}
