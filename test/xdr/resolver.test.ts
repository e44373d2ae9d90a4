import test from 'ava';
import { openNamespace } from '../../store/node.js';
import { computeDigest } from '../../store/digest.js';
import { ParticleType, type ConflictPolicyId, type RecordVersion } from '../../store/types.js';
import { decodeVersion, encodeVersion, ShipCodecError } from '../../store/index.js';
import { nsConfig, tempDir } from '../helpers/store.js';
import { testRandom } from '../helpers/seed.js';

const T0 = 1_790_000_000_000;

function randomVersions(seed: number, keys: number, perKey: number): RecordVersion[] {
  let x = seed;
  const rnd = (n: number) => {
    x = (x * 48271) % 2147483647;
    return x % n;
  };
  const out: RecordVersion[] = [];
  for (let k = 0; k < keys; k++) {
    const digest = computeDigest('p', `key${k}`);
    for (let i = 0; i < perKey; i++) {
      const tombstone = rnd(5) === 0;
      out.push({
        namespace: 'test', set: 'p', digest,
        generation: 1 + rnd(6), lutMs: T0 + rnd(8), voidTimeS: 0, tombstone,
        bins: tombstone ? [] : [{ name: 'v', type: ParticleType.STRING, bytes: Buffer.from(`k${k}-${rnd(3)}`) }],
      });
    }
  }
  return out;
}

function shuffle<T>(a: T[], seed: number): T[] {
  const b = [...a];
  let x = seed;
  for (let i = b.length - 1; i > 0; i--) {
    x = (x * 48271) % 2147483647;
    const j = x % (i + 1);
    [b[i], b[j]] = [b[j]!, b[i]!];
  }
  return b;
}

async function applyAll(versions: RecordVersion[], policy: ConflictPolicyId): Promise<string[]> {
  const { dir, cleanup } = tempDir();
  const ns = await openNamespace(nsConfig(dir, { 'storage-engine': 'memory' }));
  for (const v of versions) await ns.applyReplicated(v, policy);
  const state: string[] = [];
  for (let k = 0; k < 40; k++) {
    const v = ns.readVersion(computeDigest('p', `key${k}`));
    state.push(v ? `${v.generation}:${v.lutMs}:${v.tombstone}:${v.bins.map((b) => b.bytes.toString()).join(',')}` : 'none');
  }
  await ns.close();
  cleanup();
  return state;
}

for (const policy of ['generation', 'last-update-time'] as const) {
  test(`resolver (${policy}): duplicates and any delivery order give the same final state`, async (t) => {
    for (let seed = 1; seed <= 6; seed++) {
      const versions = randomVersions(seed * 7919, 40, 6);
      const reference = await applyAll(versions, policy);
      const withDuplicates = shuffle([...versions, ...versions.slice(0, 100), ...versions], seed);
      t.deepEqual(await applyAll(withDuplicates, policy), reference, `seed ${seed}`);
      t.deepEqual(await applyAll(shuffle(versions, seed + 1000), policy), reference, `seed ${seed} reordered`);
    }
  });
}

test('shipped-record codec round-trips every field and refuses damaged messages', (t) => {
  const key = { type: ParticleType.STRING, bytes: Buffer.from('user-7') } as const;
  const v: RecordVersion = {
    namespace: 'test', set: 'demo', digest: computeDigest('demo', key), key,
    generation: 7, lutMs: T0 + 5, voidTimeS: 12345, tombstone: false,
    bins: [
      { name: 'i', type: ParticleType.INTEGER, bytes: Buffer.from('0000000000000007', 'hex') },
      { name: 'l', type: ParticleType.LIST, bytes: Buffer.from('9201a178', 'hex') },
      { name: 'g', type: ParticleType.GEOJSON, bytes: Buffer.from('00000000{"type":"Point"}') },
    ],
  };
  const m = encodeVersion(v, 'A', 492);
  t.is(m.headers['ferry-partition'], '492');
  t.deepEqual(decodeVersion(m.key, m.value, m.headers), v);
  const tomb = { ...v, tombstone: true, bins: [] };
  const mt = encodeVersion(tomb, 'A', 1);
  t.deepEqual(decodeVersion(mt.key, mt.value, mt.headers), tomb);
  t.throws(() => decodeVersion(Buffer.alloc(3), m.value, m.headers), { instanceOf: ShipCodecError });
  t.throws(() => decodeVersion(m.key, m.value.subarray(0, m.value.length - 1), m.headers), { instanceOf: ShipCodecError });
  t.throws(() => decodeVersion(m.key, Buffer.concat([m.value, Buffer.from([0])]), m.headers), { instanceOf: ShipCodecError });
  t.throws(() => decodeVersion(m.key, m.value, {}), { instanceOf: ShipCodecError, message: /ferry-ns/ });
  t.throws(() => decodeVersion(computeDigest('demo', 'other'), m.value, m.headers), { instanceOf: ShipCodecError, message: /digest/ });
  const r = testRandom(t);
  for (let i = 0; i < 2000; i++) {
    const junk = Buffer.from(m.value);
    const at = r.int(junk.length);
    junk[at] = junk[at]! ^ (1 << r.int(8));
    try {
      decodeVersion(m.key, junk, m.headers);
    } catch (err) {
      t.true(err instanceof ShipCodecError);
    }
  }
});
