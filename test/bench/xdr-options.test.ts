import test from 'ava';
import { main } from '../../bench/xdr.bench.js';

// Bad options of `npm run bench -- xdr` are refused with a message naming them, before any process starts.
test('xdr bench: --phases, --nodes and --failback-records are checked before anything starts', async (t) => {
  await t.throwsAsync(main(['--phases', 'lag,failback']), { message: '--phases: failback needs failover (it brings A back after the failover)' });
  await t.throwsAsync(main(['--phases', 'lag,teleport']), { message: /^--phases: unknown teleport \(known: lag, ramp, catchup, rpo0, failover, failback\)$/ });
  await t.throwsAsync(main(['--nodes', '0']), { message: '--nodes needs a number >= 1, got "0"' });
  await t.throwsAsync(main(['--nodes', '2.5']), { message: '--nodes needs a whole number from 1 to 8' });
  await t.throwsAsync(main(['--failback-records', '10']), { message: '--failback-records needs a number >= 100, got "10"' });
});
