/**
 * What each chart plots, shared by the live view and the post-mortem.
 * Counters in buckets are per interval; they are shown per second (or, for
 * times, as the share of the interval) so that intervals of any length compare.
 */
import type { Bucket, HostBucket, ServiceBucket } from './codec';
import type { ChartSpec } from './charts';

export const WORKER_CHARTS: ChartSpec<Bucket>[] = [
  {
    id: 'runq', title: 'Runqueue latency', unit: 'us', log: true, note: 'wait for a CPU',
    series: [
      { label: 'p50', color: '#73bf69', value: (b) => (b.runqCount ? b.runqP50Us : null) },
      { label: 'p99', color: '#f2cc0c', value: (b) => (b.runqCount ? b.runqP99Us : null), width: 2 },
      { label: 'max', color: '#f2495c', value: (b) => (b.runqCount ? b.runqMaxUs : null), width: 1, dash: [4, 3] },
    ],
  },
  {
    id: 'memory', title: 'Memory', unit: 'bytes', note: 'RSS vs cgroup limit',
    series: [
      { label: 'RSS', color: '#5794f2', value: (b) => b.rssBytes || null, fill: true, width: 2 },
      // A cgroup without a limit is often a big shared one: its usage would dwarf the RSS.
      { label: 'cgroup usage', color: '#b877d9', value: (b) => (b.cgroupLimitBytes ? b.cgroupUsageBytes || null : null) },
      { label: 'limit', color: '#f2495c', value: (b) => b.cgroupLimitBytes || null, dash: [6, 4], width: 1.5 },
    ],
  },
  {
    id: 'faults', title: 'Page faults', unit: 'rate', unit2: 'rate', note: 'per second',
    series: [
      { label: 'minor', color: '#8ab8ff', value: (b, s) => b.minorFaults / s },
      { label: 'major', color: '#ff9830', value: (b, s) => b.majorFaults / s, scale: 'y2', width: 2 },
    ],
  },
  {
    id: 'io', title: 'D-state & disk I/O', unit: 'ms', unit2: 'bytesRate', note: 'blocked ms / interval',
    series: [
      { label: 'D-state', color: '#ff9830', value: (b) => b.dstateNs / 1e6, fill: true, width: 2 },
      { label: 'longest', color: '#f2495c', value: (b) => (b.dstateMaxNs ? b.dstateMaxNs / 1e6 : null), dash: [4, 3] },
      { label: 'read', color: '#73bf69', value: (b, s) => b.bioReadBytes / s, scale: 'y2' },
      { label: 'write', color: '#5794f2', value: (b, s) => b.bioWriteBytes / s, scale: 'y2' },
    ],
  },
  {
    id: 'gc', title: 'GC pauses', unit: 'ms', unit2: 'rate', note: 'Python collector',
    series: [
      { label: 'paused', color: '#b877d9', value: (b) => b.gcPauseNs / 1e6, fill: true, width: 2 },
      { label: 'longest', color: '#f2495c', value: (b) => (b.gcMaxPauseNs ? b.gcMaxPauseNs / 1e6 : null), dash: [4, 3] },
      { label: 'pauses', color: '#8a93a3', value: (b, s) => b.gcPauses / s, scale: 'y2', width: 1 },
    ],
  },
  {
    id: 'cpu', title: 'CPU & switches', unit: 'pct', unit2: 'rate', note: 'on-CPU share',
    series: [
      { label: 'CPU', color: '#73bf69', value: (b) => (b.intervalMs ? (100 * b.cpuMs) / b.intervalMs : null), fill: true, width: 2 },
      { label: 'involuntary', color: '#f2495c', value: (b, s) => b.involuntarySwitches / s, scale: 'y2' },
      { label: 'voluntary', color: '#5794f2', value: (b, s) => b.voluntarySwitches / s, scale: 'y2', width: 1 },
    ],
  },
];

const SOCKET_COLORS: Record<string, string> = {
  ESTABLISHED: '#73bf69', CLOSE_WAIT: '#f2495c', TIME_WAIT: '#8a93a3', SYN_RECV: '#f2cc0c', FIN_WAIT1: '#5794f2',
  FIN_WAIT2: '#8ab8ff', LAST_ACK: '#ff9830', CLOSING: '#b877d9', SYN_SENT: '#ca95e5', LISTEN: '#5b6473',
};
const SOCKET_ORDER = ['ESTABLISHED', 'CLOSE_WAIT', 'TIME_WAIT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'LAST_ACK', 'CLOSING', 'SYN_SENT'];

/** Socket states present in the rows (LISTEN left out: it is the listener itself). */
export function socketChart(rows: ServiceBucket[]): ChartSpec<ServiceBucket> {
  const seen = new Set<string>();
  for (const r of rows) for (const k of Object.keys(r.socketStates)) if (k !== 'LISTEN') seen.add(k);
  seen.add('ESTABLISHED');
  seen.add('CLOSE_WAIT');
  const states = [...seen].sort((a, b) => (SOCKET_ORDER.indexOf(a) + 100 * +!SOCKET_ORDER.includes(a)) - (SOCKET_ORDER.indexOf(b) + 100 * +!SOCKET_ORDER.includes(b)));
  return {
    id: 'sockets', title: 'Socket states', unit: 'count', note: 'on the service ports',
    // TIME_WAIT (closed, waiting out 2MSL) counts in thousands under load: its own axis keeps CLOSE_WAIT readable.
    unit2: 'count',
    series: states.map((st) => ({
      label: st, color: SOCKET_COLORS[st] ?? '#ca95e5', value: (r: ServiceBucket) => r.socketStates[st] ?? 0,
      width: st === 'CLOSE_WAIT' ? 2 : 1.5, fill: st === 'CLOSE_WAIT', scale: st === 'TIME_WAIT' ? 'y2' as const : 'y' as const,
    })),
  };
}

export const BACKLOG_CHART: ChartSpec<ServiceBucket> = {
  id: 'backlog', title: 'Accept backlog & TCP trouble', unit: 'count', unit2: 'rate', note: 'depth vs listen() max',
  series: [
    { label: 'depth', color: '#f2cc0c', value: (r) => r.backlogDepth, fill: true, width: 2 },
    { label: 'max', color: '#f2495c', value: (r) => r.backlogMax || null, dash: [6, 4] },
    { label: 'drops', color: '#ff9830', value: (r, s) => r.listenDrops / s, scale: 'y2' },
    { label: 'resets', color: '#b877d9', value: (r, s) => (r.resetsSent + r.resetsReceived) / s, scale: 'y2', width: 1 },
    { label: 'retransmits', color: '#8ab8ff', value: (r, s) => r.retransmits / s, scale: 'y2', width: 1 },
  ],
};

/** Throttled time is shown as the share of the interval the cgroup's tasks were held back by its CPU quota. */
export const WORKERS_CHART: ChartSpec<ServiceBucket> = {
  id: 'workers', title: 'Workers & CPU throttling', unit: 'count', unit2: 'pct', note: 'alive, deaths, throttled',
  series: [
    { label: 'alive', color: '#73bf69', value: (r) => r.workersAlive, width: 2 },
    { label: 'deaths', color: '#f2495c', value: (r) => r.deaths, width: 2 },
    { label: 'throttled', color: '#ff9830', value: (r, s) => r.cpuThrottledUs / (10 * s * 1000), scale: 'y2', fill: true },
  ],
};

export const HOST_CHART: ChartSpec<HostBucket> = {
  id: 'host', title: 'Host pressure (PSI)', unit: 'pct', unit2: 'ratio', note: 'some avg10',
  series: [
    { label: 'memory', color: '#b877d9', value: (r) => r.psiMemSomeAvg10, width: 2 },
    { label: 'cpu', color: '#f2cc0c', value: (r) => r.psiCpuSomeAvg10 },
    { label: 'io', color: '#ff9830', value: (r) => r.psiIoSomeAvg10 },
    { label: 'load1', color: '#8a93a3', value: (r) => r.load1, scale: 'y2', width: 1 },
  ],
};

const DEVICE_COLORS = ['#5794f2', '#ff9830', '#73bf69', '#b877d9', '#f2cc0c', '#8ab8ff', '#f2495c', '#ca95e5'];
/** Devices charted at most (the busiest first); the bundle keeps up to 16 per bucket. */
const MAX_CHARTED_DEVICES = 8;

/** Block request latency (p99, issue to completion) of each device active in the rows. */
export function deviceChart(rows: HostBucket[]): ChartSpec<HostBucket> {
  const ops = new Map<string, number>();
  for (const r of rows) for (const d of r.devices ?? []) ops.set(d.device, (ops.get(d.device) ?? 0) + d.ops);
  const names = [...ops.entries()].sort((a, b) => b[1] - a[1]).slice(0, MAX_CHARTED_DEVICES).map(([n]) => n).sort();
  return {
    id: 'devices', title: 'Block I/O latency', unit: 'us', log: true, note: 'p99 per device',
    series: names.map((n, i) => ({
      label: n, color: DEVICE_COLORS[i % DEVICE_COLORS.length], width: 1.5,
      value: (r: HostBucket) => r.devices?.find((d) => d.device === n)?.latP99Us ?? null,
    })),
  };
}
