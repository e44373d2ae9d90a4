import test from 'ava';
import { computeDigest, partitionOf } from '../../store/digest.js';

// Vectors from docs/aerospike-protocol.md section 6, each matched against the official client.
const vectors: Array<[string, string | number | Buffer, string, number]> = [
  ['demo', 'key1', 'ec91192d4b7f8ce35d5d78d34bca65cbaaaac960', 492],
  ['demo', 7, 'dc2e595bc2a0d8c6290c474d74e71b23e3ed846a', 3804],
  ['demo', Buffer.from('010203', 'hex'), 'ff31c926fbef445648ce63ca72a698a5473425c1', 511],
  ['', 'key1', '579f05ecf9e6a9e796f4da2ab0b1323364df5c10', 3927],
  ['demo', 'nokey', '0df7fa69b944a8131f4e02027ab8fa32e50f5f47', 1805],
];

test('digest and partition match the documented vectors', (t) => {
  for (const [set, key, hex, pid] of vectors) {
    const d = computeDigest(set, key);
    t.is(d.toString('hex'), hex, `${set}/${String(key)}`);
    t.is(partitionOf(d) as number, pid);
  }
});
