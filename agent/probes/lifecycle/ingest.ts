/**
 * What the agent does with lifecycle records: forks of tracked masters become
 * workers, execs rename them (or show they are not workers, or start a new
 * service), signals and OOM kills become facts for the verdict and markers,
 * and an exit starts the judging.
 */
import { memoryCgroupById, memoryCgroupOf } from '../../cgroup/memory';
import { NS_PER_TICK } from '../../core/clock';
import { marker } from '../../core/markers';
import { createSenderReader } from '../../deaths/senders';
import { FATAL_SIGNALS, signalName, STOP_SIGNALS } from '../../deaths/verdict';
import { formatBytes } from '../../../proto/format';
import type { IngestContext, RecordHandlers } from '../../ingest/context';
import { readCmdline, readExe } from '../../procfs';
import { isPythonProcess, NOT_A_WORKER } from '../../registry/discovery';
import { subjectOf } from '../../sampling/worker';
import { RecordType } from '../../records';
import { ExecFlags, ExecRecord, ExitRecord, ForkRecord, ForkTracking, OomKind, OomRecord, SignalRecord } from './index';

/** Signals recorded per worker for its verdict (most recent kept). */
const MAX_SIGNALS_PER_WORKER = 32;
/** A command line is kept up to this length. */
const MAX_CMDLINE = 512;

export function lifecycleHandlers(ctx: IngestContext): RecordHandlers {
  const { registry, clock, markers } = ctx;
  // A sender is read from /proc now: a `kill` command or a runtime's helper is gone by judge time.
  const senders = createSenderReader();

  const onFork = (r: ForkRecord) => {
    if (r.isThread) return;
    const parent = registry.workerByPid(r.parentPid);
    if (!parent || parent.identity.role === 'worker') {
      // The kernel tracked a child of a following parent we no longer know: drop it.
      if (r.tracked === ForkTracking.Tracked && !parent) registry.untrackUnknown(r.childPid);
      return;
    }
    const s = registry.serviceOf(parent);
    if (!s) return;
    if (parent.identity.role === 'standalone') {
      parent.identity.role = 'master'; // it turned out to be a pre-fork server
      ctx.topology();
    }
    const child = { pid: r.childPid, startTicks: Math.floor(r.childStartNs / NS_PER_TICK), ppid: r.parentPid, comm: r.childComm, cmdline: [], exe: '' };
    const w = registry.register(child, s, 'worker', { comm: r.childComm, forked: true });
    // A child starts in its parent's cgroup: known before its first tick, without reading /proc.
    if (w && !w.memoryCgroup) w.memoryCgroup = parent.memoryCgroup;
  };

  const onExec = (r: ExecRecord) => {
    const w = registry.workerByPid(r.pid);
    if (!w) {
      if (r.flags & ExecFlags.Candidate) ctx.watch.candidateExec(r.pid);
      return;
    }
    w.identity.comm = r.comm;
    const cmd = readCmdline(r.pid);
    if (cmd) w.identity.cmdline = cmd.join(' ').slice(0, MAX_CMDLINE);
    // A child that runs something else than Python (a shell, a helper tool) is not a worker.
    const notPython = cmd !== null && !isPythonProcess(readExe(r.pid) ?? r.filename, cmd);
    if (w.identity.role === 'worker' && (notPython || NOT_A_WORKER.test(w.identity.cmdline))) registry.retire(w, true);
    else ctx.execed(r.pid);
  };

  const onSignal = (r: SignalRecord) => {
    const w = registry.workerByPid(r.pid, r.startNs);
    if (!w) return;
    const tMs = clock.recMs(r.tsNs);
    const readSender = !r.kernel && r.senderPid !== r.pid && (FATAL_SIGNALS.has(r.sig) || STOP_SIGNALS.has(r.sig));
    const process = readSender ? senders.read(r.senderPid, r.senderComm, r.tsNs, r.senderTid) : undefined;
    w.signals.push({ tMs, sig: r.sig, senderPid: r.senderPid, senderComm: r.senderComm, kernel: r.kernel, ...(process ? { process } : {}) });
    if (w.signals.length > MAX_SIGNALS_PER_WORKER) w.signals.shift();
    markers.raise(w, marker(tMs, 'signal', subjectOf(w), FATAL_SIGNALS.has(r.sig) ? 'warning' : 'info',
      `${signalName(r.sig)} from ${r.kernel ? 'the kernel' : `pid ${r.senderPid} (${r.senderComm})`}`,
      { sig: r.sig, senderPid: r.senderPid, siCode: r.siCode }, { signal: signalName(r.sig), sender: r.kernel ? 'kernel' : r.senderComm }), true);
  };

  const onOom = (r: OomRecord) => {
    const w = registry.workerByPid(r.pid, r.startNs);
    if (!w) return;
    const tMs = clock.recMs(r.tsNs);
    const rss = r.rssAnonBytes + r.rssFileBytes + r.rssShmemBytes;
    const scope = r.kind === OomKind.Cgroup ? 'cgroup' : r.kind === OomKind.Global ? 'global' : 'none';
    // The kernel names the cgroups by id: the victim's /proc may already show the root cgroup.
    const known = w.memoryCgroup ?? memoryCgroupOf(w.identity.pid) ?? undefined;
    const own = memoryCgroupById(r.cgroupId, known) ?? known;
    if (own && own.path !== '/') w.memoryCgroup = own;
    // The cgroup at its limit (the victim's own or an ancestor) is the one the post-mortem names.
    w.oomCgroup = (r.kind === OomKind.Cgroup ? memoryCgroupById(r.oomCgroupId, own) : null) ?? own;
    w.oom = {
      tMs, scope, cgroupPath: scope === 'cgroup' ? w.oomCgroup?.path ?? '' : '', rssBytes: rss,
      limitBytes: r.oomLimitBytes || r.memcgLimitBytes, usageBytes: r.oomUsageBytes || r.memcgUsageBytes,
    };
    markers.raise(w, marker(tMs, 'oom', subjectOf(w), 'critical',
      `the kernel OOM-killer chose pid ${r.pid} (${r.comm}): RSS ${formatBytes(rss)}${w.oom.limitBytes ? `, ${scope} limit ${formatBytes(w.oom.limitBytes)}` : ''}`,
      { rssBytes: rss, limitBytes: w.oom.limitBytes, usageBytes: w.oom.usageBytes }, { scope }), true);
  };

  const onExit = (r: ExitRecord) => {
    if (!r.groupDead) return; // a thread, not the process
    const w = registry.workerByPid(r.pid, r.startNs);
    if (!w || !w.alive) return;
    w.exit = r;
    ctx.judge.schedule(w, clock.recMs(r.tsNs));
  };

  return [
    [RecordType.Fork, onFork], [RecordType.Exec, onExec], [RecordType.Signal, onSignal],
    [RecordType.Oom, onOom], [RecordType.Exit, onExit],
  ];
}
