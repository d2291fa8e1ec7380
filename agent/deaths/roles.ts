/**
 * Who sent a signal, by role: the service's master, the kernel OOM killer,
 * systemd-oomd, systemd, the kubelet, a container runtime, a supervisor, an
 * operator's shell, a script... Pure: decided from the sender's pid and comm
 * (from the kernel's signal record) and, when the agent could read them at
 * signal time (senders.ts), its executable, command line, terminal and
 * parent chain. A sender it cannot place is `other`, named, never guessed.
 */
import type { SenderRole } from '../../proto/codec';

/** An ancestor of the sender, nearest first. */
export interface SenderAncestor {
  pid: number;
  comm: string;
  cmdline: string;
  tty: string;
}

/** The sender's process as read from /proc when its signal was seen. */
export interface SenderProcess {
  pid: number;
  comm: string;
  exe: string;
  cmdline: string;
  ppid: number;
  tty: string;
  uid: number;
  ancestors: SenderAncestor[];
}

export interface RoleInput {
  senderPid: number;
  senderComm: string;
  kernel: boolean;
  /** Read at signal time; absent when the sender was already gone (or reused its pid). */
  process?: SenderProcess;
}

export interface RoleContext {
  workerPid: number;
  masterPid?: number;
  /** The kernel's OOM killer chose this worker. */
  oom?: { scope: 'cgroup' | 'global' | 'none'; cgroupPath: string };
}

export interface SenderRoleInfo {
  role: SenderRole;
  /** Human: "an operator's shell (bash on pts/3)". */
  description: string;
  /** Why, when the sender's command says it: "podman kill", "kill -9 4242"; else "". */
  reason: string;
}

const SHELLS = /^(ba|da|z|k|mk|c|tc|fi|a|ya|)sh$|^busybox$/;
const KILL_TOOLS = /^(kill|pkill|killall|skill|xkill|timeout)$/;
const RUNTIMES = /^(containerd-shim.*|containerd|conmon|crun|runc|youki|dockerd|docker|podman|crio|cri-o|lxc-.*)$/;
const SUPERVISORS = /^(supervisord|circusd|runsv|runsvdir|s6-supervise|monit|supervise-daemon|supervise)$/;
const CONTAINER_INITS = /^(tini|dumb-init|docker-init|catatonit|s6-svscan|init)$/;
/** Ancestors that mean a person is at the keyboard. */
const SESSIONS = /^(sshd|sshd-session|login|agetty|tmux.*|screen|mosh-server|sudo|su|gnome-terminal.*|xterm|konsole|script)$/;

const base = (path: string) => path.slice(path.lastIndexOf('/') + 1);

/** Names a process goes by: its comm, its executable, and a script run by an interpreter (python supervisord). */
function namesOf(comm: string, p?: SenderProcess): string[] {
  const names = [comm];
  if (p?.exe) names.push(base(p.exe).replace(/ \(deleted\)$/, ''));
  const args = p?.cmdline.split(' ') ?? [];
  if (args[0]) names.push(base(args[0]));
  if (args[1] && /^python|^perl|^ruby|^node/.test(base(args[0] ?? ''))) names.push(base(args[1]));
  return names;
}

const isA = (re: RegExp, names: string[]) => names.some((n) => re.test(n));

/** A shell or a kill tool: at a terminal or in a session it is a person; otherwise a script. */
function shellRole(i: RoleInput, names: string[]): SenderRoleInfo {
  const p = i.process;
  const what = names.find((n) => SHELLS.test(n) || KILL_TOOLS.test(n)) ?? i.senderComm;
  const kind = SHELLS.test(what) ? 'shell' : 'command';
  // Gone before /proc could be read: a person or a script, the agent cannot tell.
  if (!p) return { role: 'shell', reason: '', description: `a ${kind} (${what}; it exited before its terminal could be read)` };
  const tty = p?.tty || p?.ancestors.find((a) => a.tty)?.tty || '';
  const session = p?.ancestors.find((a) => SESSIONS.test(a.comm));
  const reason = p && (KILL_TOOLS.test(i.senderComm) || / -c /.test(p.cmdline)) ? p.cmdline : '';
  if (tty || session) {
    const where = [tty ? `on ${tty}` : '', session ? `under ${session.comm}` : ''].filter(Boolean).join(' ');
    return { role: 'operator', description: `an operator's ${kind} (${what} ${where})`, reason };
  }
  const parent = p?.ancestors[0];
  return {
    role: 'script', reason,
    description: `a ${kind} with no terminal (${what}${parent ? `, started by ${parent.comm}` : ''}: a script or automation)`,
  };
}

/** Why a container runtime sent it: the command of the runtime or of its parent (podman kill, docker stop...). */
function runtimeReason(p?: SenderProcess): string {
  for (const cmd of [p?.cmdline ?? '', ...(p?.ancestors.map((a) => a.cmdline) ?? [])]) {
    const m = /(?:^|\/)(podman|docker|nerdctl|crictl|kubectl)(?:\s+\S+)*?\s+(kill|stop|rm|restart|pause|delete)\b/.exec(cmd);
    if (m) return `${m[1]} ${m[2]}`;
    const r = /(?:^|\/)(crun|runc|youki)\s+(?:--?\S+\s+)*(kill|delete)\b/.exec(cmd);
    if (r) return `${r[1]} ${r[2]}`;
  }
  return '';
}

/** The role of one signal's sender. */
export function classifySender(i: RoleInput, c: RoleContext): SenderRoleInfo {
  if (i.kernel) {
    if (c.oom && c.oom.scope !== 'none')
      return { role: 'kernel-oom', reason: c.oom.scope === 'cgroup' ? 'cgroup memory limit' : 'host out of memory',
        description: `the kernel OOM killer (${c.oom.scope === 'cgroup' ? `cgroup ${c.oom.cgroupPath || 'limit'}` : 'global'})` };
    return { role: 'kernel', reason: '', description: 'the kernel (a fault, no OOM record)' };
  }
  if (i.senderPid === c.workerPid) return { role: 'self', reason: '', description: 'the process itself' };
  const p = i.process;
  const names = namesOf(i.senderComm, p);
  if (c.masterPid !== undefined && i.senderPid === c.masterPid)
    return { role: 'master', reason: '', description: `its master (${names[names.length - 1]}, pid ${i.senderPid})` };
  if (isA(/^systemd-oomd$/, names)) return { role: 'systemd-oomd', reason: 'memory pressure', description: 'systemd-oomd (memory pressure, no kernel OOM)' };
  if (isA(/^kubelet$/, names)) return { role: 'kubelet', reason: '', description: 'the kubelet (an eviction, a failed liveness probe or a pod deletion)' };
  if (isA(RUNTIMES, names)) {
    const who = names.find((n) => RUNTIMES.test(n)) ?? i.senderComm;
    return { role: 'container-runtime', reason: runtimeReason(p), description: `the container runtime (${who})` };
  }
  if (isA(SUPERVISORS, names)) {
    const who = names.find((n) => SUPERVISORS.test(n)) ?? i.senderComm;
    return { role: 'supervisor', reason: '', description: `the supervisor ${who}` };
  }
  if (isA(/^systemd$/, names))
    return { role: 'systemd', reason: 'unit stop', description: i.senderPid === 1 ? 'systemd (pid 1) stopping its unit' : 'a systemd user manager stopping its unit' };
  if (i.senderPid === 1 || isA(CONTAINER_INITS, [i.senderComm]))
    return { role: 'init', reason: '', description: `the init process ${i.senderComm}${i.senderPid === 1 ? ' (pid 1)' : ''}, forwarding a stop` };
  if (isA(SHELLS, names) || isA(KILL_TOOLS, names)) return shellRole(i, names);
  return { role: 'other', reason: '', description: `pid ${i.senderPid} (${i.senderComm}${p?.exe ? `, ${p.exe}` : ''})` };
}

/** "bash[4100] pts/3": an ancestor as the post-mortem lists it. */
export function ancestorLabel(a: SenderAncestor): string {
  return `${a.comm}[${a.pid}]${a.tty ? ` ${a.tty}` : ''}`;
}
