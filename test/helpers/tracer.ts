/**
 * Opens the real tracer for a kernel test and collects decoded records.
 * If BPF cannot be loaded the test fails here, with the reason: never a skip.
 */
import { loadAddon, Tracer, TracerOptions } from '../../agent/native';
import { decodeBatch } from '../../agent/records';
import type { AnyRecord } from '../../agent/probes';
import '../../agent/probes';

export interface TestTracer {
  tracer: Tracer;
  records: AnyRecord[];
  ofType<T extends AnyRecord['type']>(type: T): Extract<AnyRecord, { type: T }>[];
  close(): void;
}

export function openTracer(options: Omit<TracerOptions, 'onRecords'>): TestTracer {
  const addon = loadAddon();
  const records: AnyRecord[] = [];
  let tracer: Tracer;
  try {
    tracer = new addon.Tracer({
      pollMs: 5,
      ...options,
      onRecords(batch) {
        decodeBatch(batch, (r) => records.push(r as AnyRecord));
      },
    });
  } catch (e) {
    const err = e as Error & { code?: string };
    throw new Error(
      `cannot load premortem's BPF programs (${err.code}): ${err.message}\n` +
        'Kernel tests need root (or CAP_BPF + CAP_PERFMON) and a kernel with BTF; they fail rather than skip.',
    );
  }
  const bad = tracer.probes().filter((p) => !p.loaded);
  if (bad.length) {
    tracer.close();
    throw new Error(`probes failed to load: ${bad.map((p) => `${p.name}: ${p.error?.message}`).join('; ')}`);
  }
  return {
    tracer,
    records,
    ofType: (type) => records.filter((r) => r.type === type) as never,
    close: () => tracer.close(),
  };
}
