import test from 'ava';
import { InFlightLimit } from '../../receiver/in-flight.js';
import { seededRandom } from '../../store/runtime/index.js';

test('in-flight limit: never more than max at once, waiters served in order, a failure frees its slot', async (t) => {
  const seed = 7;
  const rnd = seededRandom(seed);
  const limit = new InFlightLimit(3);
  let now = 0;
  let peak = 0;
  const started: number[] = [];
  const gates: Array<() => void> = [];
  const jobs = Array.from({ length: 20 }, (_, i) =>
    limit.run(async () => {
      started.push(i);
      now++;
      peak = Math.max(peak, now);
      t.is(limit.inFlight, Math.min(3, now), `seed ${seed}`);
      await new Promise<void>((resolve) => gates.push(resolve));
      now--;
      if (i % 5 === 0) throw new Error(`job ${i} failed`);
      return i;
    }),
  );
  // Release the running jobs in a seeded order until all are done.
  while (started.length < 20 || gates.length > 0) {
    await new Promise((r) => setImmediate(r));
    if (gates.length === 0) continue;
    const g = gates.splice(rnd.int(gates.length), 1)[0]!;
    g();
  }
  const results = await Promise.allSettled(jobs);
  t.is(peak, 3, `seed ${seed}`);
  t.deepEqual(started, Array.from({ length: 20 }, (_, i) => i), 'started in arrival order');
  t.is(results.filter((r) => r.status === 'rejected').length, 4);
  t.is(limit.inFlight, 0);
  t.throws(() => new InFlightLimit(0), { instanceOf: RangeError });
});
