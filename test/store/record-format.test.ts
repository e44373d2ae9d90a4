import test from 'ava';
import { checkRecordRun, encodeRecord, type StoredRecord } from '../../store/storage/record-format.js';
import { computeDigest } from '../../store/digest.js';
import { str } from '../helpers/store.js';
import { testRandom } from '../helpers/seed.js';

const record = (key: string, value: string): StoredRecord => ({
  digest: computeDigest('demo', key),
  setName: 'demo',
  generation: 1,
  lutMs: 1_790_000_000_000,
  voidTimeS: 0,
  tombstone: false,
  bins: [{ name: 'v', ...str(value) }],
});

test('the check before write accepts an intact run of records and names the first damaged one', (t) => {
  const r = testRandom(t);
  const parts = Array.from({ length: 20 }, (_, i) => encodeRecord(record(`k${i}`, 'x'.repeat(r.int(300))), 7));
  const run = Buffer.concat(parts);
  t.is(checkRecordRun(run, 0, run.length), undefined);
  const second = parts[0]!.length;
  t.is(checkRecordRun(run, second, run.length), undefined, 'a range may start at any record boundary');
  // One flipped bit anywhere inside a record is found.
  const at = r.int(run.length);
  const damaged = Buffer.from(run);
  damaged[at] = damaged[at]! ^ (1 << r.int(8));
  const starts = parts.reduce<number[]>((acc, p, i) => [...acc, (acc[i] ?? 0) + p.length], [0]);
  const recordStart = starts.filter((s) => s <= at).pop()!;
  const end = starts.find((s) => s > at)!;
  // A flip in the alignment padding changes nothing a reader uses; anything else is reported.
  const length = run.readUInt32LE(recordStart + 4);
  if (at - recordStart < length) t.regex(checkRecordRun(damaged, 0, run.length) ?? 'missed', new RegExp(`at byte ${recordStart} |overrun`));
  else t.true(end > at);
  // A range that cuts a record in two is refused.
  t.regex(checkRecordRun(run, 0, run.length - 16) ?? 'missed', /bad-length|overrun/);
});
