/**
 * A worker in a container has two pids: the host's (what the kernel's records
 * and the agent use) and the one inside its PID namespace (what its own logs
 * print: "Booting worker with pid: 7"). A verdict names both, and the
 * master's, so the post-mortem can be matched with the service's own logs.
 */
import type { Identity, Verdict } from '../../proto/codec';
import { nsPidOf } from './label';

/** "pid 25200 (7 in its PID namespace)", or "pid 25200" on the host's namespace. */
export function pidText(id: Identity): string {
  const ns = nsPidOf(id);
  return ns === undefined ? `pid ${id.pid}` : `pid ${id.pid} (${ns} in its PID namespace)`;
}

/**
 * Appends the namespaced pids of the worker and its master to a verdict's summary and
 * evidence; a verdict about a process on the host's namespace is left as it is.
 */
export function addNamespacedPids(v: Verdict, worker: Identity, master?: Identity): void {
  const w = nsPidOf(worker);
  if (w === undefined) return;
  const m = master && master !== worker ? nsPidOf(master) : undefined;
  const hostPids = m === undefined ? `host pid ${worker.pid}` : `host pids ${worker.pid} and ${master!.pid}`;
  v.summary += ` Inside its PID namespace the ${worker.role === 'worker' ? 'worker' : 'process'} is pid ${w}${m === undefined ? '' : ` and its master pid ${m}`} (${hostPids}).`;
  v.evidence.push({ what: 'pid in its namespace', value: `${w}${m === undefined ? '' : `; master ${m}`}`, tMs: v.tMs, number: w, unit: '' });
}
