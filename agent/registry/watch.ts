/**
 * Keeping the registry in step with the host: a /proc scan every
 * discoveryIntervalMs (new services, their workers and ports), a look at each
 * would-be Python server the kernel saw exec (so a service that dies within a
 * second is still seen), and a sweep for tracked processes that vanished
 * without an exit record.
 */
import type { AgentOptions } from '../config';
import { createNetnsCache } from '../container/netns-cache';
import type { ErrorCounter } from '../core/errors';
import { listeningInodes, nsInode, readCmdline, readStat } from '../procfs';
import { discover, discoverExec, NOT_A_WORKER, Selection } from './discovery';
import type { Registry } from './registry';
import type { WorkerState } from './state';

/** A namespace's listening sockets are re-read at most this often (every socket of the namespace is walked). */
const LISTENING_REFRESH_MS = 5000;
/** A command line is kept up to this length. */
const MAX_CMDLINE = 512;

export interface Watch {
  start(): void;
  stop(): void;
  /** The kernel saw an untracked process exec something named like a Python server. */
  candidateExec(pid: number): void;
  /** Listening TCP sockets (inode -> port) of the network namespace `pid` is in, cached per namespace. */
  listening(pid: number): Map<number, number>;
}

export function selectionOf(o: AgentOptions): Selection {
  return { pids: o.pids, match: o.match, cgroup: o.cgroup, exclude: o.exclude, autoDiscover: o.autoDiscover || !(o.pids.length || o.match || o.cgroup) };
}

export function createWatch(options: AgentOptions, registry: Registry, errors: ErrorCounter, onVanished: (w: WorkerState, tMs: number) => void): Watch {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const listeningCache = createNetnsCache((pid) => listeningInodes(pid));
  const selection = selectionOf(options);

  const listening = (pid: number) => {
    const netns = nsInode(pid, 'net');
    return (netns !== null && listeningCache.get(netns, [pid], LISTENING_REFRESH_MS)) || new Map<number, number>();
  };

  const scan = () => {
    if (stopped) return;
    try {
      for (const svc of discover(selection, process.pid, process.ppid, listening)) registry.adoptService(svc);
    } catch (e) {
      errors.count('discovery', e);
      return;
    }
    sweep();
  };

  const sweep = () => {
    for (const w of registry.workers.values()) {
      if (!w.alive || w.judging) continue;
      const st = readStat(w.identity.pid);
      if (st && st.startTicks === w.identity.startTicks && st.state !== 'Z') continue;
      if (st && st.state === 'Z') continue; // exit record is on its way or the parent has yet to reap
      onVanished(w, Date.now()); // judged from what is known
    }
    // A child registered between its fork and its exec may turn out to be a pool helper.
    for (const w of [...registry.workers.values()]) {
      if (!w.alive || w.judging || w.identity.role !== 'worker') continue;
      const cmd = readCmdline(w.identity.pid);
      if (!cmd) continue;
      const line = cmd.join(' ');
      if (NOT_A_WORKER.test(line)) registry.retire(w, true);
      else if (line !== w.identity.cmdline && line) w.identity.cmdline = line.slice(0, MAX_CMDLINE);
    }
    registry.forgetIdleServices(Date.now());
  };

  return {
    start() {
      for (const pid of options.pids) registry.trackPid(pid);
      scan();
      timer = setInterval(scan, options.discoveryIntervalMs);
      timer.unref?.();
    },
    stop() {
      stopped = true;
      clearInterval(timer);
    },
    candidateExec(pid) {
      if (stopped) return;
      try {
        const d = discoverExec(pid, selection);
        if (d) registry.adoptService(d);
      } catch (e) {
        errors.count('discovery', e);
      }
    },
    listening,
  };
}
