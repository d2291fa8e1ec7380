/**
 * Gathers why a worker died beyond what killed it (issue 15): where its last
 * window went — by default its server's own timeout (server-timeout.ts) — from
 * its timeline's time-class buckets and per-thread snapshots, and the HTTP
 * requests it had read and not answered, from the kernel's requests map. The
 * same facts for a live worker, up to now, on request.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { AgentOptions } from '../config';
import { NS_PER_TICK, type Clock } from '../core/clock';
import type { Tracer } from '../native';
import { deviceName, devName } from '../probes/disk';
import { forgetRequests, parseRequestLine, readRequests, REQ_QUERY_CUT, REQ_TRUNCATED } from '../probes/requests';
import { forgetThreads, readThreadTimes, TIME_CLASSES } from '../probes/runqlat';
import { readCmdline } from '../procfs';
import type { RequestInFlight, Service, TimeBreakdown } from '../../proto/codec';
import type { Registry } from '../registry/registry';
import type { ServiceState, WorkerState } from '../registry/state';
import type { ThreadSampler } from '../sampling/threads';
import { serverWindow, type ServerWindow } from './server-timeout';
import type { WhyFacts } from './why-text';
import { SHARE_CLASS, SHARE_KEYS, timeBreakdown } from './why-time';

export interface WhyDeps {
  options: AgentOptions;
  clock: Clock;
  tracer: Tracer;
  loaded: ReadonlySet<string>;
  registry: Registry;
  threads: ThreadSampler;
}

export interface Why {
  /** The facts of a death at `deathMs`; frees the dead worker's per-request and per-thread kernel entries. */
  atDeath(w: WorkerState, deathMs: number): WhyFacts;
  /** The same for a live worker, over the window that ends now (states still under way included). */
  live(w: WorkerState, nowMs: number, windowMs?: number): WhyFacts;
}

/** Services whose window is remembered (they are few; the bound guards against churn). */
const MAX_CACHED_WINDOWS = 256;

const readText = (file: string): string | null => {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return null;
  }
};

/** The master's argv, environment and config files as it sees them (its cwd, its root). */
function masterWindow(service: Service, masterPid: number, cmdline: string): ServerWindow {
  const argv = readCmdline(masterPid) ?? cmdline.split(' ').filter(Boolean);
  const env: Record<string, string> = {};
  for (const kv of (readText(`/proc/${masterPid}/environ`) ?? '').split('\0'))
    if (kv.startsWith('GUNICORN_CMD_ARGS=')) env.GUNICORN_CMD_ARGS = kv.slice(18);
  const read = (file: string) => readText(path.join(`/proc/${masterPid}/root`, path.isAbsolute(file) ? file
    : path.join(fs.readlinkSync(`/proc/${masterPid}/cwd`), file)));
  return serverWindow(service.kind, argv, env, (f) => {
    try {
      return read(f);
    } catch {
      return null; // the master is gone: its cwd with it
    }
  });
}

export function createWhy(d: WhyDeps): Why {
  const windows = new Map<string, ServerWindow>();

  const windowOf = (w: WorkerState): ServerWindow => {
    const s: ServiceState | undefined = d.registry.serviceOf(w);
    const master = s ? d.registry.workers.get(s.masterKey) : undefined;
    const key = s ? `${s.service.id}:${s.masterKey}` : '';
    let win = windows.get(key);
    if (!win) {
      win = s ? masterWindow(s.service, master?.identity.pid ?? s.service.masterPid, master?.identity.cmdline ?? '') : serverWindow('unknown', [], {}, () => null);
      if (s) {
        if (windows.size >= MAX_CACHED_WINDOWS) windows.clear();
        windows.set(key, win);
      }
    }
    // The timeline holds no more than the bundle window (and its ring).
    const cap = Math.min(d.options.bundleWindowMs, d.options.windowMs);
    return win.ms > cap ? { ms: cap, source: `${win.source}, cut to the ${cap / 1000} s kept` } : win;
  };

  /** The device of the latest block request it issued (the disk probe), else of its latest slow-io marker. */
  const device = (w: WorkerState, toMs: number): string | undefined => {
    const dev = w.prev?.disk?.lastDev;
    if (dev) return deviceName(devName(dev));
    return w.markers.between(toMs - d.options.bundleWindowMs, toMs + 1).reverse().find((m) => m.kind === 'slow-io')?.details.device;
  };

  const breakdown = (w: WorkerState, toMs: number, windowMs?: number): TimeBreakdown => {
    const win = windowMs ? { ms: Math.min(windowMs, d.options.windowMs), source: 'asked for' } : windowOf(w);
    const interval = d.options.intervalMs;
    const buckets = w.timeline.buckets(toMs - win.ms - interval, toMs + interval);
    // A worker tracked for less than the window is explained over the time it was watched.
    const watched = buckets.length && buckets[0].tMs > toMs - win.ms ? buckets[0].tMs : toMs - win.ms;
    const fromMs = Math.max(toMs - win.ms, watched);
    return timeBreakdown({
      buckets, fromMs, toMs, intervalMs: interval, pid: w.identity.pid,
      windowSource: fromMs > toMs - win.ms ? `${win.source}; tracked for ${Math.round((toMs - fromMs) / 1000)} s` : win.source,
      threads: d.threads.window(w, fromMs), device: device(w, toMs),
    });
  };

  const requests = (w: WorkerState, endMs: number, free: boolean): Pick<WhyFacts, 'requests' | 'requestsNote'> => {
    const kind = d.registry.serviceOf(w)?.service.kind;
    if (kind === 'celery')
      return { requestsNote: 'celery tasks are not visible to the agent: they reach prefork children over a pipe, not a socket' };
    if (!d.options.requests) return { requestsNote: 'not captured (--no-requests)' };
    if (!d.loaded.has('requests')) return { requestsNote: 'not captured: the requests probe is not loaded (see premortem doctor)' };
    const pid = w.identity.pid;
    const found = readRequests(d.tracer, pid, w.identity.startTicks * NS_PER_TICK);
    if (free) forgetRequests(d.tracer, pid, found.map((r) => r.fd));
    return {
      requests: found.map((r): RequestInFlight => {
        const startedMs = d.clock.recMs(r.startNs);
        return {
          ...parseRequestLine(r.line), startedMs, ageMs: Math.max(0, endMs - startedMs), tid: r.tid, fd: r.fd,
          truncated: (r.flags & REQ_TRUNCATED) !== 0, queryDropped: (r.flags & REQ_QUERY_CUT) !== 0,
        };
      }),
    };
  };

  /** States still under way (a thread in D for 20 s now) are in no bucket yet: add their part of the window. */
  const addUnderWay = (w: WorkerState, t: TimeBreakdown) => {
    const pid = w.identity.pid;
    const nowNs = Number(process.hrtime.bigint()); // CLOCK_MONOTONIC, as bpf_ktime_get_ns()
    let tids: number[] = [];
    try {
      tids = fs.readdirSync(`/proc/${pid}/task`).map(Number);
    } catch {
      return;
    }
    const entries = readThreadTimes(d.tracer, pid, tids);
    for (const e of entries) {
      if (!e.sinceNs || e.state <= 0 || e.state >= TIME_CLASSES) continue;
      const ns = Math.max(0, nowNs - Math.max(e.sinceNs, nowNs - t.windowMs * 1e6));
      const key = SHARE_KEYS.find((k) => SHARE_CLASS[k] === e.state);
      if (key && t.total) t.total[key] += ns;
    }
  };

  return {
    atDeath(w, deathMs) {
      const facts: WhyFacts = {};
      try {
        if (d.loaded.has('runqlat')) facts.time = breakdown(w, deathMs);
        Object.assign(facts, requests(w, deathMs, true));
        if (d.loaded.has('runqlat')) forgetThreads(d.tracer, new Set([w.identity.pid, ...d.threads.tids(w)]));
      } catch {
        /* a probe went away: the verdict stands without these facts */
      }
      return facts;
    },
    live(w, nowMs, windowMs) {
      const facts: WhyFacts = {};
      if (d.loaded.has('runqlat')) {
        facts.time = breakdown(w, nowMs, windowMs);
        addUnderWay(w, facts.time);
      }
      return Object.assign(facts, requests(w, nowMs, false));
    },
  };
}
