/**
 * disk: block request latency per device and per tracked process, slow
 * requests, and D-state time (bpf/disk.h).
 *
 * Attribution: a request counts for a tracked process when it issued it (reads,
 * O_DIRECT writes, the flush of its fsync). Buffered writes reach the disk
 * later through write-back kernel threads and count for the device only; the
 * process's D-state histogram still shows it waiting on them.
 */
import * as fs from 'fs';
import type { Tracer } from '../../native';
import { COMM_LEN, Histogram, RecordHeader, RecordType, cstr, decodeHist, registerDecoder, registerLayout, u64 } from '../../records';

export const BIO_SLOW = registerLayout('bio_slow', {
  size: 80,
  type: RecordType.BioSlow,
  offsets: {
    dev: 16, op: 20, sector: 24, latency_ns: 32, bytes: 40, pid: 44, tid: 48, error: 52, tracked: 56, comm: 64,
  },
});

export const DISK_STATS = registerLayout('disk_stats', {
  size: 360,
  offsets: {
    lat: 0, read_ops: 280, read_bytes: 288, write_ops: 296, write_bytes: 304, flush_ops: 312,
    other_ops: 320, other_bytes: 328, errors: 336, slow: 344, last_dev: 352,
  },
});

/** Block request operations (REQ_OP_*). */
export const DiskOp = { Read: 0, Write: 1, Flush: 2, Discard: 3 } as const;
const OP_NAMES: Record<number, string> = { 0: 'read', 1: 'write', 2: 'flush', 3: 'discard', 5: 'secure-erase', 9: 'write-zeroes' };
export function diskOpName(op: number): string {
  return OP_NAMES[op] ?? `op${op}`;
}

/** A kernel dev_t (major << 20 | minor) as "major:minor", as in /proc/partitions and lsblk. */
export function devName(dev: number): string {
  return `${dev >>> 20}:${dev & 0xfffff}`;
}


/** A block request slower than the load-time threshold (disk rodata targ_slow_us). */
export interface BioSlowRecord extends RecordHeader {
  type: typeof RecordType.BioSlow;
  dev: number;
  op: number;
  sector: number;
  latencyNs: number;
  bytes: number;
  /** tgid of the issuing task; 0 when a kernel thread (write-back) issued it. */
  pid: number;
  tid: number;
  /** blk_status_t at completion, 0 = ok. */
  error: number;
  /** The issuing process was tracked at issue time. */
  tracked: boolean;
  comm: string;
}

const B = BIO_SLOW.offsets;
registerDecoder(RecordType.BioSlow, BIO_SLOW.size, (dv, o, h) => {
  const r = h as BioSlowRecord;
  r.dev = dv.getUint32(o + B.dev, true);
  r.op = dv.getUint32(o + B.op, true);
  r.sector = u64(dv, o + B.sector);
  r.latencyNs = u64(dv, o + B.latency_ns);
  r.bytes = dv.getUint32(o + B.bytes, true);
  r.pid = dv.getUint32(o + B.pid, true);
  r.tid = dv.getUint32(o + B.tid, true);
  r.error = dv.getUint32(o + B.error, true);
  r.tracked = dv.getUint32(o + B.tracked, true) !== 0;
  r.comm = cstr(dv, o + B.comm, COMM_LEN);
  return r;
});

/** Cumulative block I/O of one device or one tracked process. */
export interface DiskStats {
  /** Issue -> completion latency. */
  latency: Histogram;
  readOps: number;
  readBytes: number;
  writeOps: number;
  writeBytes: number;
  flushOps: number;
  otherOps: number;
  otherBytes: number;
  errors: number;
  slow: number;
  /** Per process: the device (kernel dev_t) of the latest request it issued; 0 for none. */
  lastDev: number;
}

export function decodeDiskStats(buf: ArrayBuffer, offset = 0): DiskStats {
  const dv = new DataView(buf, offset, DISK_STATS.size);
  const o = DISK_STATS.offsets;
  return {
    latency: decodeHist(buf, offset + o.lat),
    readOps: u64(dv, o.read_ops),
    readBytes: u64(dv, o.read_bytes),
    writeOps: u64(dv, o.write_ops),
    writeBytes: u64(dv, o.write_bytes),
    flushOps: u64(dv, o.flush_ops),
    otherOps: u64(dv, o.other_ops),
    otherBytes: u64(dv, o.other_bytes),
    errors: u64(dv, o.errors),
    slow: u64(dv, o.slow),
    lastDev: u64(dv, o.last_dev),
  };
}

/** Per-device statistics, keyed by "major:minor". */
export function readDiskDevices(tracer: Tracer): Map<string, DiskStats & { dev: number }> {
  const d = tracer.mapDump('disk', 'disk_dev');
  const out = new Map<string, DiskStats & { dev: number }>();
  d.keys.forEach((dev, i) => out.set(devName(dev), { dev, ...decodeDiskStats(d.values, i * d.valueSize) }));
  return out;
}

/** Block I/O a tracked process issued itself, or null when it has issued none. */
export function readDiskProcess(tracer: Tracer, pid: number): DiskStats | null {
  const v = tracer.mapLookup('disk', 'disk_proc', pid);
  return v ? decodeDiskStats(v) : null;
}

/** Time a tracked process's threads spent in uninterruptible sleep (D state), or null. */
export function readDStateHist(tracer: Tracer, pid: number): Histogram | null {
  const v = tracer.mapLookup('disk', 'dstate_hist', pid);
  return v ? decodeHist(v) : null;
}

/** Device names looked up in sysfs (a host has few devices; the bound guards against churn). */
const MAX_DEVICE_NAMES = 1024;
const deviceNames = new Map<string, string>();

/** "vda", "loop0": the kernel's name of a block device "major:minor" (the number itself when unknown). */
export function deviceName(majMin: string): string {
  let name = deviceNames.get(majMin);
  if (name !== undefined) return name;
  try {
    name = /^DEVNAME=(.+)$/m.exec(fs.readFileSync(`/sys/dev/block/${majMin}/uevent`, 'utf8'))?.[1] ?? majMin;
  } catch {
    name = majMin; // gone, or not visible from here: not cached, it may appear
    return name;
  }
  if (deviceNames.size >= MAX_DEVICE_NAMES) deviceNames.clear();
  deviceNames.set(majMin, name);
  return name;
}

/** "major:minor" from stat's st_dev (glibc encoding). */
export function statDevName(stDev: number): string {
  // glibc's dev_t encoding: major = bits 8..19 (and 32..43), minor = bits 0..7 and 20..31.
  const major = ((stDev >>> 8) & 0xfff) >>> 0;
  const minor = ((stDev & 0xff) | ((stDev >>> 12) & 0xfff00)) >>> 0;
  return `${major}:${minor}`;
}

/**
 * The whole disk of a block device "major:minor" (statistics are kept per
 * disk): a partition's parent from sysfs, the device itself otherwise.
 */
export function wholeDiskName(majMin: string): string {
  try {
    const dir = fs.realpathSync(`/sys/dev/block/${majMin}`);
    if (fs.existsSync(`${dir}/partition`)) return fs.readFileSync(`${dir}/../dev`, 'utf8').trim();
  } catch {
    /* not a block device we can see: keep it as is */
  }
  return majMin;
}
