import test from 'ava';
import { clusterId } from '../../scripts/kafka/cluster.js';

// CI once failed because a random cluster id began with '-', which kafka-storage read as an option.
test('kafka cluster ids never start with a dash and are 22 base64url characters', (t) => {
  const draws = [Buffer.from([0xfb, ...new Array(15).fill(0)]), Buffer.from([0xfb, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]), Buffer.alloc(16, 7)];
  t.true(draws[0]!.toString('base64url').startsWith('-'));
  let i = 0;
  const id = clusterId(() => draws[i++]!);
  t.is(i, 3, 'both dash-led draws were rejected');
  t.is(id, Buffer.alloc(16, 7).toString('base64url'));
  for (let n = 0; n < 2000; n++) t.regex(clusterId(), /^[A-Za-z0-9_][A-Za-z0-9_-]{21}$/);
});
