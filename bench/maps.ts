/**
 * The BPF maps an agent holds, map by map: kernel memory (memlock, as
 * `bpftool map show` reports it), its bound and why it is that size. The
 * reasons are kept here, by map name; a map nobody has justified yet is
 * reported as such, never silently.
 */
import { execFileSync } from 'child_process';
import { bpfObjectsOf } from './lib';

export interface MapRow {
  id: number;
  name: string;
  type: string;
  keyBytes: number;
  valueBytes: number;
  maxEntries: number;
  memlockBytes: number;
  /** Entries in use at the time of reading (hash maps; null where not counted). */
  entries: number | null;
  why: string;
}

const PER_PROCESS = 'one entry per tracked process (PM_MAX_TRACKED = 8192, preallocated LRU hash: memlock is max_entries × (key + value + ~100 B), used or not)';

/** Why each map exists and is the size it is (names as the kernel keeps them: at most 15 characters). */
export const MAP_WHY: Record<string, string> = {
  pids: 'the kernel pid filter: the tracked processes, shared by every probe (PM_MAX_TRACKED)',
  events: 'the ring buffer every record goes through; size = the agent\'s ringBufferBytes (config.ts), shared by every probe',
  drops: 'records lost per type (failed ring buffer reserves), per CPU',
  inflight: 'block requests between issue and completion (PM_DISK_MAX_INFLIGHT = 16384: a deep NVMe queue per device)',
  disk_dev: 'per block device statistics (PM_DISK_MAX_DEVICES = 256)',
  disk_proc: `block I/O per process: ${PER_PROCESS}`,
  dstate_start: 'threads of tracked processes in D state right now (PM_DISK_MAX_DSTATE = 16384)',
  dstate_hist: `time in D state per process: ${PER_PROCESS}`,
  lc_stats: 'lifecycle probe counters (one per-CPU entry)',
  faults: `page faults per process: ${PER_PROCESS}`,
  rss_last: `latest RSS per process (rss_stat): ${PER_PROCESS}`,
  thread_flt: 'per-thread fault state in task storage: freed with the thread, no preallocation',
  __bpf_usdt_spec: 'libbpf USDT argument specs (libbpf\'s default bound)',
  __bpf_usdt_ip_t: 'libbpf USDT address → spec (libbpf\'s default bound)',
  gc_running: 'threads inside a Python collection (PM_GC_MAX_RUNNING = 16384)',
  gc_hist: `GC pause histogram per process: ${PER_PROCESS}`,
  gc_stats: `GC counters per process: ${PER_PROCESS}`,
  start: 'runnable-since timestamp per thread (PM_MAX_THREADS = 65536 threads of tracked processes at once)',
  runq_hist: `runqueue latency histogram per process: ${PER_PROCESS}`,
  cpu_stats: `context switches per process: ${PER_PROCESS}`,
  ports: 'watched TCP ports (PM_TCP_MAX_PORTS = 64)',
  tcp_stats: 'TCP counters per watched port slot, per CPU (PM_TCP_MAX_SLOTS = 128)',
  tcp_listen: 'accept queue of each watched listening port (PM_TCP_MAX_SLOTS)',
  close_wait: 'sockets of watched ports in CLOSE_WAIT (PM_TCP_MAX_CLOSE_WAIT = 8192)',
  scan_timer: 'the one BPF timer that scans close_wait',
};

function whyOf(name: string): string {
  if (MAP_WHY[name]) return MAP_WHY[name];
  if (/\.(rodata|data|bss|kconfig)/.test(name) || name.startsWith('.rodata')) return 'the probe\'s global variables (one page)';
  return 'NOT JUSTIFIED YET: add its reason to bench/maps.ts';
}

interface BpftoolMap { id: number; type: string; name?: string; bytes_key: number; bytes_value: number; max_entries: number; bytes_memlock?: number }

/** Entries of a hash map (bpftool map dump), or null for other types. */
function countEntries(m: BpftoolMap): number | null {
  if (!/hash/.test(m.type)) return null;
  try {
    const out = execFileSync('bpftool', ['map', 'dump', 'id', String(m.id), '-j'], { encoding: 'utf8', maxBuffer: 256 << 20 });
    return (JSON.parse(out) as unknown[]).length;
  } catch {
    return null;
  }
}

/** Every map `pid` holds, largest first. `entries`: also count the entries of hash maps (slower). */
export function agentMaps(pid: number, opts: { entries?: boolean } = {}): MapRow[] {
  const ids = bpfObjectsOf(pid).maps;
  const all = JSON.parse(execFileSync('bpftool', ['map', 'show', '-j'], { encoding: 'utf8', maxBuffer: 64 << 20 })) as BpftoolMap[];
  return all.filter((m) => ids.has(m.id)).map((m) => ({
    id: m.id, name: m.name ?? '', type: m.type, keyBytes: m.bytes_key, valueBytes: m.bytes_value, maxEntries: m.max_entries,
    memlockBytes: m.bytes_memlock ?? ids.get(m.id) ?? 0, entries: opts.entries ? countEntries(m) : null, why: whyOf(m.name ?? ''),
  })).sort((a, b) => b.memlockBytes - a.memlockBytes);
}
