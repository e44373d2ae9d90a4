/**
 * The per-namespace memory budget, through a real node: past `memory-budget` (index plus block
 * caches) writes answer OUT_OF_SPACE with the reason in statistics and the log, reads go on, and
 * raising the budget (set-config, no restart) lets writes through again.
 */
import test from 'ava';
import { FerryClient } from '../../store/client/client.js';
import { waitFor } from '../helpers/procs.js';
import { startNode } from '../wire/node-process.js';

const RECORDS = 2000;

async function codeOf(p: Promise<unknown>): Promise<number> {
  try {
    await p;
    return 0;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

test('past memory-budget writes are refused with the reason; reads go on; a larger budget lets writes through', async (t) => {
  const node = await startNode({ extraArgs: ['--storage', 'memory'] });
  const c = await FerryClient.connect({ hosts: [{ host: node.host, port: node.port }], tendIntervalMs: 0 });
  t.teardown(async () => {
    c.close();
    await node.destroy();
  });
  for (let i = 0; i < RECORDS; i++) await c.put({ namespace: 'test', set: 's', key: i }, { v: i });
  const stats = async (): Promise<Record<string, string>> =>
    Object.fromEntries((await c.infoValue('namespace/test')).split(';').map((kv) => kv.split('=') as [string, string]));
  const used = Number((await stats()).memory_used_bytes);
  t.true(used > 0, `memory_used_bytes=${used}`);

  // A budget under what the index already uses.
  t.is(await c.infoValue(`set-config:context=namespace;id=test;memory-budget=${Math.floor(used / 2)}`), 'ok');
  t.is(await codeOf(c.put({ namespace: 'test', set: 's', key: 'over' }, { v: 1 })), 8);
  const st = await stats();
  t.is(st.stop_writes_reason, 'memory-budget');
  t.regex(st.stop_writes_detail ?? '', /at the memory-budget/);
  t.is((await c.get({ namespace: 'test', set: 's', key: 7 }))?.bins.v, 7);
  await waitFor(() => /writes refused \(memory-budget\)/.test(node.output), 10_000, 'the log to say why');

  t.is(await c.infoValue(`set-config:context=namespace;id=test;memory-budget=${used * 100}`), 'ok');
  t.is(await codeOf(c.put({ namespace: 'test', set: 's', key: 'over' }, { v: 1 })), 0);
  t.is((await stats()).stop_writes_reason, '');
});
