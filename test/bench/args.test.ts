import test from 'ava';
import { BenchArgs, BenchArgsError } from '../../bench/args.js';

test('bench options: --name value pairs, bare switches, defaults, and a bad number named', (t) => {
  const a = new BenchArgs(['--seconds', '30', '--no-redis', '--storage', 'memory', '--rates', '1000,5000', '--keys', '']);
  t.is(a.num('seconds', 10), 30);
  t.is(a.num('records', 7), 7, 'absent: the default');
  t.is(a.num('keys', 100), 100, 'no value: the default');
  t.true(a.has('no-redis'));
  t.false(a.has('commit-to-device'));
  t.is(a.value('storage'), 'memory');
  t.is(a.value('compression'), undefined);
  t.is(a.str('chart', 'docs/x.png'), 'docs/x.png');
  t.is(a.value('rates'), '1000,5000');
  const bad = t.throws(() => new BenchArgs(['--seconds', 'ten']).num('seconds', 10), { instanceOf: BenchArgsError });
  t.is(bad?.message, '--seconds needs a number, got "ten"');
  t.throws(() => new BenchArgs(['--ops', '0']).num('ops', 5, 1), { message: '--ops needs a number >= 1, got "0"' });
  t.notThrows(() => new BenchArgs(['--peer', 'apache', '--messages', '10']).onlyKnown(['peer', 'messages']));
  t.throws(() => new BenchArgs(['--peer', 'apache', '--mesages', '10']).onlyKnown(['peer', 'messages']), { message: 'unknown option --mesages' });
});
