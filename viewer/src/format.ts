/** Number, byte, duration and time formatting shared by the views. */
import type { VerdictKind } from './codec';

export function fmtBytes(n: number | null | undefined): string {
  if (n == null || !Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a < 1024) return Number.isInteger(n) || a >= 10 ? `${Math.round(n)} B` : `${n.toFixed(1)} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024, i = 0;
  while (Math.abs(v) >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2)} ${units[i]}`;
}

export function fmtUs(us: number | null | undefined): string {
  if (us == null || !Number.isFinite(us)) return '–';
  if (us < 1000) return `${Math.round(us)} µs`;
  if (us < 1_000_000) return `${(us / 1000).toFixed(us < 10_000 ? 2 : 1)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}

export function fmtMs(ms: number | null | undefined): string {
  if (ms == null || !Number.isFinite(ms)) return '–';
  return fmtUs(ms * 1000);
}

export function fmtNum(n: number | null | undefined, digits = 1): string {
  if (n == null || !Number.isFinite(n)) return '–';
  const a = Math.abs(n);
  if (a >= 1e9) return `${(n / 1e9).toFixed(digits)}G`;
  if (a >= 1e6) return `${(n / 1e6).toFixed(digits)}M`;
  if (a >= 1e4) return `${(n / 1e3).toFixed(digits)}k`;
  if (Number.isInteger(n)) return String(n);
  return n.toFixed(a < 10 ? 2 : digits);
}

const pad = (n: number, w = 2) => String(n).padStart(w, '0');

export function fmtClock(tMs: number, withMs = false): string {
  if (!tMs) return '–';
  const d = new Date(tMs);
  const s = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  return withMs ? `${s}.${pad(d.getMilliseconds(), 3)}` : s;
}

export function fmtDateTime(tMs: number): string {
  if (!tMs) return '–';
  const d = new Date(tMs);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${fmtClock(tMs, true)}`;
}

export function fmtAgo(tMs: number, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - tMs) / 1000));
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

export function fmtDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
}

export const VERDICT_LABEL: Record<VerdictKind, string> = {
  'oom-killed': 'OOM-killed',
  'killed-by-master': 'Killed by master',
  'killed-by-other': 'Killed by another process',
  crashed: 'Crashed',
  exited: 'Exited',
  unknown: 'Unknown cause',
};

export function verdictLabel(kind: VerdictKind | string | undefined): string {
  return VERDICT_LABEL[(kind ?? 'unknown') as VerdictKind] ?? String(kind);
}
