/**
 * stop-writes-sys-memory-pct (as Aerospike's): while the host's memory is used past the limit,
 * writes answer OUT_OF_SPACE (8) with the reason in statistics, reads go on, and writes resume by
 * themselves once use falls under it. Driven in-process through an injected probe over the wire
 * (ferry's client: the official one cannot share the node's event loop); then in a real node process against the real /proc probe (a limit of 1% is
 * always exceeded), where the log says why; and the /proc and cgroup parsing on files of our own.
 */
import test from 'ava';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadNodeConfig } from '../../store/config.js';
import { FerryClient } from '../../store/client/client.js';
import { hostMemoryProbe, parseCgroupMemory, parseMeminfo, usedPct, type SystemMemoryUsage } from '../../store/namespace/system-memory.js';
import { FerryNode } from '../../store/node.js';
import { waitFor } from '../helpers/procs.js';
import { tempDir } from '../helpers/store.js';
import { startNode } from '../wire/node-process.js';

const GiB = 1024 ** 3;

async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

function nsStats(info: string): Record<string, string> {
  return Object.fromEntries(info.split(';').map((kv) => kv.split('=') as [string, string]));
}

test('past stop-writes-sys-memory-pct writes answer 8 with the reason; reads go on; under it writes resume by themselves', async (t) => {
  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  let usage: SystemMemoryUsage | undefined = { usedBytes: 4 * GiB, totalBytes: 16 * GiB };
  const config = loadNodeConfig({
    env: {},
    overrides: { data: dir, 'service.port': 0, namespaces: [{ name: 'test', 'storage-engine': 'memory', 'stop-writes-sys-memory-pct': 90 }] },
  });
  const running = await FerryNode.start({ config, systemMemory: { usage: () => usage } });
  t.teardown(() => running.stop());
  const c = await FerryClient.connect({ hosts: [{ host: running.wire.host, port: running.wire.port }], tendIntervalMs: 0 });
  t.teardown(() => c.close());
  const key = (k: string) => ({ namespace: 'test', set: 's', key: k });
  const stats = async (): Promise<Record<string, string>> => nsStats(await c.infoValue('namespace/test'));

  await c.put(key('before'), { v: 1 });
  t.is((await stats())['stop-writes-sys-memory-pct'], '90');
  t.is(nsStats(await c.infoValue('statistics')).system_free_mem_pct, '75', 'the node reports the same probe');

  usage = { usedBytes: Math.ceil(0.95 * 16 * GiB), totalBytes: 16 * GiB };
  const st = await stats();
  t.is(st.stop_writes_reason, 'sys-memory-pct');
  t.regex(st.stop_writes_detail ?? '', /system memory 95% used .* at stop-writes-sys-memory-pct 90/);
  t.is(await codeOf(c.put(key('over'), { v: 2 })), 8);
  t.is((await c.get(key('before')))?.bins.v, 1, 'reads go on');

  // Under the limit again: no info call, the namespace notices on its own (its 1 s tick).
  usage = { usedBytes: 8 * GiB, totalBytes: 16 * GiB };
  await waitFor(async () => (await codeOf(c.put(key('over'), { v: 2 }))) === 0, 10_000, 'writes to resume');
  t.is((await stats()).stop_writes_reason, '');

  // An unreadable probe never stops writes, and 0 turns the check off.
  usage = undefined;
  t.is(await codeOf(c.put(key('unknown'), { v: 3 })), 0);
  usage = { usedBytes: 16 * GiB, totalBytes: 16 * GiB };
  t.is(await c.infoValue('set-config:context=namespace;id=test;stop-writes-sys-memory-pct=0'), 'ok');
  t.is(await codeOf(c.put(key('off'), { v: 4 })), 0);
});

test('a real node reads /proc: a 1% limit stops writes, with the reason in statistics and the log; 0 lets them through', async (t) => {
  const node = await startNode({ extraArgs: ['--storage', 'memory'] });
  const c = await FerryClient.connect({ hosts: [{ host: node.host, port: node.port }], tendIntervalMs: 0 });
  t.teardown(async () => {
    c.close();
    await node.destroy();
  });
  await c.put({ namespace: 'test', set: 's', key: 1 }, { v: 1 });
  t.is(await c.infoValue('set-config:context=namespace;id=test;stop-writes-sys-memory-pct=1'), 'ok');
  t.is(await codeOf(c.put({ namespace: 'test', set: 's', key: 2 }, { v: 2 })), 8);
  const st = nsStats(await c.infoValue('namespace/test'));
  t.is(st.stop_writes_reason, 'sys-memory-pct');
  t.regex(st.stop_writes_detail ?? '', /system memory \d+% used \([\d.]+ MiB of [\d.]+ MiB\)/);
  await waitFor(() => /writes refused \(sys-memory-pct\)/.test(node.output), 10_000, 'the log to say why');
  t.is(await c.infoValue('set-config:context=namespace;id=test;stop-writes-sys-memory-pct=0'), 'ok');
  t.is(await codeOf(c.put({ namespace: 'test', set: 's', key: 2 }, { v: 2 })), 0);
});

test('the probe reads meminfo, and a memory cgroup (v2 or v1) when its limit is under the host', (t) => {
  const meminfo = 'MemTotal:       16384 kB\nMemFree:         1024 kB\nMemAvailable:    4096 kB\n';
  t.deepEqual(parseMeminfo(meminfo), { usedBytes: 12288 * 1024, totalBytes: 16384 * 1024 });
  t.is(usedPct(parseMeminfo(meminfo)!), 75);
  t.is(parseMeminfo('MemTotal: 16384 kB\n'), undefined, 'no MemAvailable: unknown, not 100%');
  t.is(parseCgroupMemory('max\n', '1000\n', ''), undefined, 'no limit');
  t.is(parseCgroupMemory('9223372036854771712\n', '1000\n', ''), undefined, "v1's unlimited");
  t.deepEqual(parseCgroupMemory('4096\n', '3000\n', 'anon 1\ninactive_file 1000\n'), { usedBytes: 2000, totalBytes: 4096 });

  const { dir, cleanup } = tempDir();
  t.teardown(cleanup);
  const roots = (name: string, cgroupLine: string, files: Record<string, string>): { proc: string; cgroup: string } => {
    const proc = join(dir, name, 'proc');
    const cgroup = join(dir, name, 'cgroup');
    mkdirSync(join(proc, 'self'), { recursive: true });
    writeFileSync(join(proc, 'meminfo'), meminfo);
    writeFileSync(join(proc, 'self', 'cgroup'), cgroupLine);
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(join(cgroup, path, '..'), { recursive: true });
      writeFileSync(join(cgroup, path), text);
    }
    return { proc, cgroup };
  };
  const v2 = roots('v2', '0::/app\n', { 'app/memory.max': '8192\n', 'app/memory.current': '6144\n', 'app/memory.stat': 'inactive_file 2048\n' });
  t.deepEqual(hostMemoryProbe(v2).usage(), { usedBytes: 4096, totalBytes: 8192 }, 'a container limit under the host wins');
  const v1 = roots('v1', '4:memory:/box\n0::/\n', { 'memory/box/memory.limit_in_bytes': '8192\n', 'memory/box/memory.usage_in_bytes': '8192\n', 'memory/box/memory.stat': 'total_inactive_file 0\n' });
  t.deepEqual(hostMemoryProbe(v1).usage(), { usedBytes: 8192, totalBytes: 8192 });
  const big = roots('big', '0::/\n', { 'memory.max': String(1024 ** 4), 'memory.current': '1\n' });
  t.deepEqual(hostMemoryProbe(big).usage(), parseMeminfo(meminfo), 'a limit over the host: the host counts');

  const real = hostMemoryProbe().usage();
  t.truthy(real, 'this machine has a readable /proc/meminfo');
  t.true(real!.usedBytes > 0 && real!.usedBytes < real!.totalBytes);
});
