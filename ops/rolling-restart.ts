/**
 * Quiesce and rolling restarts, driven from outside the cluster through info commands.
 *
 * ferry cannot restart processes it did not start, so a rolling restart is a procedure this
 * module drives node by node, with the restart itself left to a callback (the CLI runs a shell
 * command or waits for the operator; a test restarts its own process):
 *   1. every member answers `cluster-stable:size=N` with the same key (nothing left to migrate);
 *   2. `quiesce` on the node; wait until it reports `effective_is_quiesced` and the cluster is
 *      stable again (its masters moved to its replicas without moving data; the nodes taking its
 *      holder places were filled);
 *   3. wait until no client command reached it for CLIENT_QUIET_MS (clients refreshed their
 *      maps; at most CLIENT_QUIET_WAIT_MAX_MS), then restart it (the callback); wait until it
 *      answers again unquiesced (a restarted node comes back active) with the full cluster size,
 *      and the cluster is stable (it rejoined and received only what changed while it was away);
 *   4. next node.
 * A failure at any step stops the procedure (the node is left quiesced if the restart failed,
 * so the operator can look; `quiesce-undo` brings it back).
 */
import { clusterReport } from './commands/cluster.js';
import { OpsError, endpointText, errorText, parseKv, sleep, withNode, type Endpoint } from './util.js';

/** Poll period of every wait. */
export const POLL_MS = 200;
/** Default bound of each wait (a stable cluster, a quiesce taking effect, a node coming back). */
export const STEP_TIMEOUT_MS_DEFAULT = 300_000;
/**
 * After the quiesce took effect, the node is restarted only once no client command reached it
 * for this long: clients learn the new partition map at their next tend (the official client's
 * default tend interval is 1 s) and until then send it commands it proxies; a client whose map
 * still names the node when it stops fails a write it does not retry ("Failed to connect").
 */
export const CLIENT_QUIET_MS = 2_500;
/** Longest wait for clients to leave a quiesced node; then it is restarted anyway (and the log says so). */
export const CLIENT_QUIET_WAIT_MAX_MS = 30_000;
/** Counters of `ferry-wire` that count commands from clients (not those proxied to this node by peers). */
const CLIENT_COMMAND_COUNTERS = ['reads', 'writes', 'batches', 'scans', 'proxied', 'not_owner', 'replicated_writes'];
/** Connect and request timeout of each info command. */
const INFO_TIMEOUT_MS = 5_000;

export interface RollingNode {
  nodeId: string;
  address: Endpoint;
}

export interface RollingRestartOptions {
  /** Restarts the node (and resolves once it was restarted, or is being restarted). */
  restart: (node: RollingNode) => Promise<void>;
  /** Bound of each wait. */
  stepTimeoutMs?: number;
  /** How long no client command may reach a quiesced node before it is restarted (CLIENT_QUIET_MS). */
  clientQuietMs?: number;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface RollingStep {
  nodeId: string;
  address: string;
  /** ms from quiesce to a stable cluster with the node quiesced. */
  quiesceMs: number;
  /** ms from the restart callback's start to a stable cluster with the node back. */
  restartMs: number;
}

const info = (e: Endpoint, cmd: string): Promise<string> => withNode(e, INFO_TIMEOUT_MS, (n) => n.info(cmd));

/** Sends `quiesce` (or `quiesce-undo`) to one node; throws unless it answers ok. */
export async function quiesceNode(e: Endpoint, undo = false): Promise<void> {
  const cmd = undo ? 'quiesce-undo' : 'quiesce';
  const answer = await info(e, cmd);
  if (answer !== 'ok') throw new OpsError('REFUSED', `node ${endpointText(e)}: ${cmd} answered "${answer}"`);
}

/** The members' service addresses as the given node lists them. */
export async function membersOf(seed: Endpoint): Promise<RollingNode[]> {
  const r = await clusterReport(seed, INFO_TIMEOUT_MS);
  return r.view.members.map((m) => {
    if (!m.service) throw new OpsError('UNREACHABLE', `node ${m.nodeId}: no service address known`);
    return { nodeId: m.nodeId, address: m.service };
  });
}

/** Polls until `check` answers undefined (done) or the bound passes; throws with its last reason. */
async function until(what: string, timeoutMs: number, check: () => Promise<string | undefined>, signal?: AbortSignal): Promise<void> {
  const end = Date.now() + timeoutMs;
  let reason = 'not asked yet';
  for (;;) {
    if (signal?.aborted) throw new OpsError('INTERRUPTED', `interrupted waiting for ${what}`);
    try {
      const r = await check();
      if (r === undefined) return;
      reason = r;
    } catch (err) {
      reason = errorText(err);
    }
    if (Date.now() > end) throw new OpsError('TIMEOUT', `timed out after ${timeoutMs} ms waiting for ${what} (${reason})`);
    await sleep(POLL_MS, signal);
  }
}

/** Waits until every node answers `cluster-stable:size=N` with one key; returns it. */
export async function waitClusterStable(nodes: readonly RollingNode[], timeoutMs: number, signal?: AbortSignal): Promise<string> {
  let key = '';
  await until(
    `a stable cluster of ${nodes.length}`,
    timeoutMs,
    async () => {
      const answers = await Promise.all(nodes.map((n) => info(n.address, `cluster-stable:size=${nodes.length}`).catch((err: unknown) => `ERROR:${errorText(err)}`)));
      const bad = answers.findIndex((a) => a.startsWith('ERROR') || a !== answers[0]);
      if (bad >= 0) return `${nodes[bad]!.nodeId}: ${answers[bad]}`;
      key = answers[0]!;
      return undefined;
    },
    signal,
  );
  return key;
}

/** Waits until the node reports the wanted quiesce state and the full cluster size. */
async function waitNodeState(node: RollingNode, size: number, quiesced: boolean, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  await until(
    `node ${node.nodeId} ${quiesced ? 'quiesced' : 'back and active'}`,
    timeoutMs,
    async () => {
      const s = parseKv(await info(node.address, 'statistics'));
      if (s.get('cluster_size') !== String(size)) return `cluster_size ${s.get('cluster_size')}`;
      if (s.get('effective_is_quiesced') !== String(quiesced) || s.get('pending_quiesce') !== String(quiesced)) return `effective_is_quiesced ${s.get('effective_is_quiesced')}`;
      return undefined;
    },
    signal,
  );
}

/** Commands from clients the node has served or proxied so far. */
async function clientCommands(e: Endpoint): Promise<number> {
  const c = parseKv(await info(e, 'ferry-wire'));
  return CLIENT_COMMAND_COUNTERS.reduce((sum, k) => sum + Number(c.get(k) ?? 0), 0);
}

/**
 * Waits until no client command reached the node for `quietMs` (its clients moved to the new
 * map), at most `maxMs`; answers how long it waited and whether clients were still coming.
 */
export async function waitClientsGone(node: RollingNode, quietMs = CLIENT_QUIET_MS, maxMs = CLIENT_QUIET_WAIT_MAX_MS, signal?: AbortSignal): Promise<{ waitedMs: number; quiet: boolean }> {
  const t0 = Date.now();
  let last = await clientCommands(node.address);
  let since = Date.now();
  for (;;) {
    if (Date.now() - since >= quietMs) return { waitedMs: Date.now() - t0, quiet: true };
    if (Date.now() - t0 >= maxMs) return { waitedMs: Date.now() - t0, quiet: false };
    await sleep(POLL_MS, signal);
    const now = await clientCommands(node.address);
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
}

/** Quiesces one node and waits until the cluster is stable with it quiesced. */
export async function quiesceAndWait(node: RollingNode, nodes: readonly RollingNode[], timeoutMs: number, signal?: AbortSignal): Promise<void> {
  await quiesceNode(node.address);
  await waitNodeState(node, nodes.length, true, timeoutMs, signal);
  await waitClusterStable(nodes, timeoutMs, signal);
}

/** Restarts every member of the cluster `seed` belongs to, one at a time (see the module note). */
export async function rollingRestart(seed: Endpoint, o: RollingRestartOptions): Promise<RollingStep[]> {
  const timeoutMs = o.stepTimeoutMs ?? STEP_TIMEOUT_MS_DEFAULT;
  const log = o.log ?? (() => undefined);
  const nodes = await membersOf(seed);
  const key = await waitClusterStable(nodes, timeoutMs, o.signal);
  log(`cluster of ${nodes.length} stable (key ${key}); restarting ${nodes.map((n) => n.nodeId).join(', ')} in turn`);
  const steps: RollingStep[] = [];
  for (const node of nodes) {
    const address = endpointText(node.address);
    const t0 = Date.now();
    await quiesceAndWait(node, nodes, timeoutMs, o.signal);
    const quiesceMs = Date.now() - t0;
    const drained = await waitClientsGone(node, o.clientQuietMs ?? CLIENT_QUIET_MS, CLIENT_QUIET_WAIT_MAX_MS, o.signal);
    log(
      `node ${node.nodeId} (${address}) quiesced, cluster stable after ${quiesceMs} ms, ${drained.quiet ? `no client command for ${o.clientQuietMs ?? CLIENT_QUIET_MS} ms` : `clients still sending it commands after ${drained.waitedMs} ms (their maps are not refreshed)`}; restarting it`,
    );
    const t1 = Date.now();
    try {
      await o.restart(node);
    } catch (err) {
      throw new OpsError('REFUSED', `${errorText(err)}; node ${node.nodeId} (${address}) is left quiesced for a look: \`ferry cluster quiesce --undo --node ${address}\` brings it back`);
    }
    await waitNodeState(node, nodes.length, false, timeoutMs, o.signal);
    await waitClusterStable(nodes, timeoutMs, o.signal);
    const restartMs = Date.now() - t1;
    log(`node ${node.nodeId} (${address}) back, cluster stable after ${restartMs} ms`);
    steps.push({ nodeId: node.nodeId, address, quiesceMs, restartMs });
  }
  return steps;
}
