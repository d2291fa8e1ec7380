/** What works on this host: each probe loaded or not, each program attached or why not. */
import type { Logger } from './log';
import type { Tracer } from './native';
import type { Feature } from '../proto/codec';

export interface ProbeFeatures {
  /** Names of the probes that loaded. */
  loaded: Set<string>;
  features: Feature[];
}

export function probeFeatures(tracer: Tracer, log: Logger): ProbeFeatures {
  const loaded = new Set<string>();
  const features: Feature[] = [];
  for (const p of tracer.probes()) {
    if (p.loaded) loaded.add(p.name);
    const off = p.programs.filter((g) => !g.attached && !g.deferred);
    features.push({
      name: p.name,
      enabled: p.loaded && off.length < p.programs.length,
      reason: !p.loaded ? p.error?.message.split('\n')[0] ?? 'not loaded'
        : off.length ? `off: ${off.map((g) => `${g.section} (${g.error?.message.split('\n')[0] ?? 'not attached'})`).join('; ')}` : '',
    });
  }
  for (const f of features) if (!f.enabled || f.reason) log.warn(`probe ${f.name}: ${f.enabled ? 'partly on' : 'off'}`, { reason: f.reason });
  return { loaded, features };
}
