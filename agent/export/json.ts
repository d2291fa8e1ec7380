/** The JSON export: a bundle in the proto3 JSON mapping, every field present. */
import type { Bundle, Codec, DeepPartial } from '../../proto/codec';
import { loadCodec } from '../../proto/node';

/**
 * The JSON form of a bundle (`premortem export --format json`, GET
 * /api/incidents/:id.json). Field names are the proto3 JSON names
 * (lowerCamelCase of proto/premortem.proto) and never change meaning; every
 * field is present (defaults filled, absent sub-messages are null); 64-bit integers are JSON numbers (exact
 * below 2^53); enums are kebab-case strings ('oom-killed', 'cgroup').
 * Top level: { format: "premortem-bundle", formatVersion, id, createdMs, host,
 * agentVersion, worker, service, verdict, timelines[], serviceBuckets[],
 * hostBuckets[], markers[], cgroupLimits, windowStartMs, windowEndMs,
 * lostRecords, intervalMs, kernel, stacks[] }.
 */
export function bundleToJson(bundle: DeepPartial<Bundle>, codec: Codec = loadCodec()): Record<string, unknown> {
  return { format: 'premortem-bundle', ...codec.toJSON('Bundle', bundle) };
}
