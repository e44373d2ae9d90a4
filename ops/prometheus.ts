/**
 * Prometheus exposition for every ferry process (node, receiver, broker), with prom-client: the
 * default process metrics (CPU, memory, event-loop lag, handles, GC) plus the samples the
 * components describe (store/api.ts MetricSample). One Registry per endpoint, no global one.
 *
 * Families are created the first time a sample names them. Every scrape resets them and sets the
 * current values, so label sets that went away (a partition, a stream) disappear. Counters carry
 * totals kept by the components; prom-client counters only go up, so a scrape resets the family
 * and adds the total.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { MetricSample } from '../store/index.js';

type Family = { type: 'gauge'; metric: Gauge<string> } | { type: 'counter'; metric: Counter<string> };

export interface PrometheusEndpoint {
  readonly contentType: string;
  /** The text exposition: default metrics, then the current samples. */
  render(): Promise<string>;
}

export function prometheusEndpoint(samples: () => MetricSample[] | Promise<MetricSample[]>): PrometheusEndpoint {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const families = new Map<string, Family>();
  const familyOf = (s: MetricSample): Family => {
    let f = families.get(s.name);
    if (!f) {
      const o = { name: s.name, help: s.help, labelNames: Object.keys(s.labels ?? {}), registers: [registry] };
      f = s.type === 'counter' ? { type: 'counter', metric: new Counter(o) } : { type: 'gauge', metric: new Gauge(o) };
      families.set(s.name, f);
    }
    if (f.type !== s.type) throw new Error(`metric ${s.name} is both a ${f.type} and a ${s.type}`);
    return f;
  };
  return {
    contentType: registry.contentType,
    render: async () => {
      const current = await samples();
      for (const f of families.values()) f.metric.reset();
      for (const s of current) {
        const f = familyOf(s);
        const labels = s.labels ?? {};
        if (f.type === 'gauge') f.metric.set(labels, s.value);
        else if (s.value > 0) f.metric.inc(labels, s.value);
        else f.metric.inc(labels, 0);
      }
      return registry.metrics();
    },
  };
}
