/**
 * premortem's metric families as OpenTelemetry MetricData, for the SDK's
 * metric reader (a MetricProducer): gauges, cumulative monotonic sums and
 * explicit-bucket histograms built from the same samples /metrics serves.
 * Labels are renamed to OpenTelemetry semantic-convention attributes where
 * one exists, `premortem.<label>` otherwise.
 */
import { ValueType, type Attributes, type HrTime } from '@opentelemetry/api';
import type { Resource } from '@opentelemetry/resources';
import {
  AggregationTemporality, DataPointType,
  type MetricData, type MetricProducer,
} from '@opentelemetry/sdk-metrics';
import type { Metrics, MetricFamily, Sample } from './metrics';

/** Prometheus label -> OpenTelemetry attribute (semantic conventions where they have a name). */
const ATTRIBUTE_OF: Record<string, string> = {
  service: 'service.name',
  pid: 'process.pid',
  cgroup: 'process.linux.cgroup',
  container_id: 'container.id',
  pod: 'k8s.pod.name',
  pod_uid: 'k8s.pod.uid',
  namespace: 'k8s.namespace.name',
};
/** Attributes whose values are numbers or booleans in OTLP. */
const NUMERIC = new Set(['pid', 'slot']);
/** Families that say nothing the resource does not (service.version). */
const SKIPPED = new Set(['premortem_build_info']);

export function toAttributes(labels: Record<string, string>): Attributes {
  const out: Attributes = {};
  for (const [k, v] of Object.entries(labels)) {
    if (v === '') continue; // an empty Prometheus label is an absent one
    // A pod's container is named by its spec (k8s.container.name); elsewhere by its runtime (container.name).
    const name = k === 'container' ? (labels.pod_uid ? 'k8s.container.name' : 'container.name') : ATTRIBUTE_OF[k] ?? `premortem.${k}`;
    out[name] = NUMERIC.has(k) ? Number(v) : k === 'failure' ? v === 'true' : v;
  }
  return out;
}

const hrTime = (ms: number): HrTime => [Math.floor(ms / 1000), Math.round((ms % 1000) * 1e6)];

function toMetricData(f: MetricFamily, nowMs: number, startMs: number): MetricData {
  const descriptor = { name: f.name, description: f.help, unit: f.unit, valueType: ValueType.DOUBLE };
  const endTime = hrTime(nowMs);
  const point = <T>(s: Sample, value: T) =>
    ({ startTime: hrTime(s.startMs ?? startMs), endTime, attributes: toAttributes(s.labels), value });
  if (f.type === 'gauge') {
    return { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.GAUGE,
      dataPoints: f.samples.map((s) => point(s, s.value)) };
  }
  if (f.type === 'counter') {
    return { descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.SUM, isMonotonic: true,
      dataPoints: f.samples.map((s) => point(s, s.value)) };
  }
  return {
    descriptor, aggregationTemporality: AggregationTemporality.CUMULATIVE, dataPointType: DataPointType.HISTOGRAM,
    dataPoints: f.samples.map((s) => point(s, {
      buckets: { boundaries: [...s.hist!.bounds], counts: [...s.hist!.counts] }, sum: s.hist!.sum, count: s.hist!.count,
    })),
  };
}

/** A MetricProducer over premortem's families, read afresh at each export. */
export function createMetricProducer(metrics: Metrics, resource: Resource, scope: { name: string; version: string }): MetricProducer {
  const startMs = Date.now();
  return {
    async collect() {
      const nowMs = Date.now();
      const data = metrics.families().filter((f) => f.samples.length && !SKIPPED.has(f.name)).map((f) => toMetricData(f, nowMs, startMs));
      return { resourceMetrics: { resource, scopeMetrics: [{ scope, metrics: data }] }, errors: [] };
    },
  };
}
