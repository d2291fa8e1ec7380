/** One host bucket per tick: pressure (PSI), load and memory from /proc, and each block device's I/O. */
import type { ErrorCounter } from '../core/errors';
import type { Tracer } from '../native';
import { readDiskDevices, type DiskStats } from '../probes/disk';
import { readHost, HostSample } from '../procfs';
import type { DeviceBucket } from '../../proto/codec';
import { deviceBuckets } from './cumulative';

export interface HostSampler {
  sample(): HostSample & { devices: DeviceBucket[] };
}

export function createHostSampler(tracer: Tracer, loaded: ReadonlySet<string>, errors: ErrorCounter): HostSampler {
  let lastDevices: Map<string, DiskStats> | undefined;

  /** Per-device block I/O since the last tick (the disk probe's kernel histograms). */
  const devices = (): DeviceBucket[] => {
    if (!loaded.has('disk')) return [];
    try {
      const now = readDiskDevices(tracer);
      const out = deviceBuckets(now, lastDevices);
      lastDevices = now;
      return out;
    } catch (e) {
      errors.count('disk-devices', e);
      return [];
    }
  };

  return { sample: () => ({ ...readHost(), devices: devices() }) };
}
