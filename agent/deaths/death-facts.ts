/**
 * The facts a verdict is decided from (verdict.ts DeathFacts), gathered from what the
 * registry kept about a dead worker: its exit record, the signals it and its master
 * received, the OOM record, its RSS series, its last stacks, its master's log lines
 * and where its last seconds went.
 */
import type { AgentOptions } from '../config';
import type { LossLedger } from '../core/loss';
import type { Registry } from '../registry/registry';
import type { ServiceState, WorkerState } from '../registry/state';
import type { FrozenStacks } from '../sampling/stack-ring';
import type { MasterLogReader } from './master-log';
import { SIGNAL_LOOKBACK_MS, type DeathFacts } from './verdict';
import type { Why } from './why-facts';

export interface DeathFactsDeps {
  options: Pick<AgentOptions, 'intervalMs' | 'bundleWindowMs'>;
  registry: Registry;
  loss: LossLedger;
  masterLogs: MasterLogReader;
  /** Where the last seconds went, the requests in flight (absent: not gathered). */
  why?: Why;
}

export function gatherDeathFacts(d: DeathFactsDeps, w: WorkerState, s: ServiceState | undefined, deathMs: number, stacks?: FrozenStacks): DeathFacts {
  const e = w.exit;
  const master = s ? d.registry.workers.get(s.masterKey) : undefined;
  const hasMaster = w.identity.role === 'worker' && master && master !== w;
  // A master's log line about a kill comes just before its first signal: read after that.
  const firstFromMaster = hasMaster ? w.signals.find((x) => !x.kernel && x.senderPid === master.identity.pid && x.tMs >= deathMs - SIGNAL_LOOKBACK_MS) : undefined;
  return {
    exit: {
      pid: w.identity.pid, comm: w.identity.comm, tMs: deathMs,
      exitStatus: e?.exitStatus ?? 0, termSignal: e?.termSignal ?? 0, coreDumped: e?.coreDumped ?? false,
    },
    exitSeen: e !== undefined,
    signals: w.signals,
    oom: w.oom,
    masterPid: w.identity.role === 'worker' ? master?.identity.pid ?? w.identity.ppid : undefined,
    masterComm: master?.identity.comm,
    rss: w.timeline.series('rssBytes').map(([t, v], i, a) => [i === a.length - 1 ? deathMs : t + d.options.intervalMs, v]),
    lostRecords: d.loss.between(deathMs - d.options.bundleWindowMs, deathMs),
    why: d.why?.atDeath(w, deathMs),
    stacks: stacks?.stacks,
    master: hasMaster && master.alive ? d.masterLogs.factsFor(master.key, master.identity.pid, master.identity.comm, w.identity.pid, firstFromMaster?.tMs ?? 0) : undefined,
    masterSignals: hasMaster ? master.signals : undefined,
  };
}
