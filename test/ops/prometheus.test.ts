import test from 'ava';
import { prometheusEndpoint } from '../../ops/prometheus.js';
import type { MetricSample } from '../../store/index.js';

test('prom-client exposition: default process metrics, HELP/TYPE per family, current values only', async (t) => {
  let samples: MetricSample[] = [
    { name: 'ferry_test_applied_total', help: 'Applied', type: 'counter', value: 5, labels: { group: 'g' } },
    { name: 'ferry_test_lag', help: 'Lag', type: 'gauge', value: 7, labels: { partition: '0' } },
    { name: 'ferry_test_lag', help: 'Lag', type: 'gauge', value: 2, labels: { partition: '1' } },
  ];
  const p = prometheusEndpoint(() => samples);
  let text = await p.render();
  t.regex(text, /^process_resident_memory_bytes \d+/m, 'default process metrics');
  t.regex(text, /^nodejs_eventloop_lag_seconds /m);
  t.regex(text, /^# HELP ferry_test_applied_total Applied$/m);
  t.regex(text, /^# TYPE ferry_test_applied_total counter$/m);
  t.regex(text, /^ferry_test_applied_total\{group="g"\} 5$/m);
  t.regex(text, /^ferry_test_lag\{partition="1"\} 2$/m);
  // A component's total moves on and a partition goes away: the scrape shows exactly that.
  samples = [
    { name: 'ferry_test_applied_total', help: 'Applied', type: 'counter', value: 9, labels: { group: 'g' } },
    { name: 'ferry_test_lag', help: 'Lag', type: 'gauge', value: 0, labels: { partition: '0' } },
  ];
  text = await p.render();
  t.regex(text, /^ferry_test_applied_total\{group="g"\} 9$/m);
  t.regex(text, /^ferry_test_lag\{partition="0"\} 0$/m);
  t.notRegex(text, /partition="1"/);
  samples = [{ name: 'ferry_test_lag', help: 'Lag', type: 'counter', value: 1 }];
  await t.throwsAsync(p.render(), { message: /both a gauge and a counter/ });
});
