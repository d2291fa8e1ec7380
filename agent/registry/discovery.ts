/**
 * Finds Python worker pools without configuration, from /proc: gunicorn,
 * uvicorn, uwsgi, hypercorn, daphne, celery, and plain python servers (a
 * python process holding a listening TCP socket). Each service is a master
 * (the root of a python process tree) and its python children, the workers.
 * Explicit selection (--pid, --match, --cgroup) and opting out (--exclude)
 * narrow or widen what auto-discovery finds. A service in a container or pod
 * is found the same way: its listening sockets are looked up in its own
 * network namespace, and it carries its namespaces and its container.
 */
import * as path from 'path';
import { ContainerResolver, createContainerResolver, serviceUnitOf } from '../container';
import type { ContainerInfo, ServiceKind } from '../../proto/codec';
import { listeningInodes, listPids, nsInode, readCgroups, readCmdline, readExe, readStat, socketInodes, ProcStat } from '../procfs';

export interface DiscoveredProcess {
  pid: number;
  startTicks: number;
  ppid: number;
  comm: string;
  cmdline: string[];
  exe: string;
}

export interface DiscoveredService {
  id: string;
  name: string;
  kind: ServiceKind;
  master: DiscoveredProcess;
  /** Empty for a single-process server (role standalone). */
  workers: DiscoveredProcess[];
  ports: number[];
  cgroup: string;
  memoryCgroup: string;
  unit: string;
  /** Inode of the master's network namespace (0: not read). */
  netns: number;
  /** Inode of the master's PID namespace (0: not read). */
  pidns: number;
  /** The container or pod it runs in (undefined on the host). */
  container?: ContainerInfo;
}

export interface Selection {
  pids?: number[];
  match?: RegExp;
  cgroup?: string;
  exclude?: RegExp;
  /** Find python servers on its own (default true unless an explicit selector is given). */
  autoDiscover?: boolean;
}

const SERVER_KINDS: Array<[ServiceKind, RegExp]> = [
  ['gunicorn', /(^|[/\s])gunicorn(:|\s|$)/],
  ['uvicorn', /(^|[/\s])uvicorn(\s|$)/],
  ['uwsgi', /(^|[/\s])uwsgi(\s|$)/],
  ['hypercorn', /(^|[/\s])hypercorn(\s|$)/],
  ['daphne', /(^|[/\s])daphne(\s|$)/],
  ['celery', /(^|[/\s])celery(\s|$)/],
];

/** Helper processes that live in a pool's tree but are not workers. */
const NOT_A_WORKER = /multiprocessing\.resource_tracker|multiprocessing\.forkserver|semaphore_tracker/;

/** Process supervisors written in Python (supervisord, circus): they run services, they are not one. */
const PYTHON_SUPERVISOR = /^(supervisord|circusd)$/;

export function isPythonProcess(exe: string, cmdline: string[]): boolean {
  if (cmdline.slice(0, 2).some((a) => PYTHON_SUPERVISOR.test(path.basename(a)))) return false;
  const base = path.basename(exe);
  if (/^python\d*(\.\d+)?$/.test(base) || /^uwsgi/.test(base)) return true;
  const arg0 = path.basename(cmdline[0] ?? '');
  return /^python\d*(\.\d+)?$/.test(arg0) || SERVER_KINDS.some(([, re]) => re.test(arg0));
}

export function classify(cmdline: string[]): ServiceKind {
  const text = cmdline.slice(0, 4).join(' ');
  for (const [kind, re] of SERVER_KINDS) if (re.test(text)) return kind;
  return 'python';
}

/** A short human name: "gunicorn app:app :8000". */
export function serviceName(kind: ServiceKind, cmdline: string[], ports: number[]): string {
  const args = cmdline.slice(1).filter((a) => !a.startsWith('-') && !/^\d+$/.test(a) && !/\/(gunicorn|uvicorn|celery|hypercorn|daphne)$/.test(a));
  // module:attr (app:app, myproj.wsgi:application), never host:port.
  const app = args.find((a) => /^[A-Za-z_][\w.]*:[A-Za-z_][\w.()]*$/.test(a))
    ?? (kind === 'python' ? path.basename(args.find((a) => a.endsWith('.py')) ?? args[0] ?? '') : '');
  return [kind, app, ports.length ? `:${ports.join(',:')}` : ''].filter(Boolean).join(' ');
}

export function serviceId(kind: ServiceKind, master: { pid: number; startTicks: number }): string {
  return `${kind}-${master.pid}-${master.startTicks}`;
}

function toProcess(st: ProcStat, cmdline: string[], exe: string): DiscoveredProcess {
  return { pid: st.pid, startTicks: st.startTicks, ppid: st.ppid, comm: st.comm, cmdline, exe };
}

let defaultResolver: ContainerResolver | undefined;
const resolver = () => (defaultResolver ??= createContainerResolver());

/**
 * One /proc scan: every python service on the host that the selection admits.
 * `listening(pid)` supplies the listening sockets (inode → port) of the network namespace `pid`
 * is in; the agent passes one cached per namespace: reading /proc/PID/net/tcp walks every socket
 * of that namespace (TIME_WAIT included).
 */
export function discover(sel: Selection = {}, selfPid = process.pid, parentPid = process.ppid,
  listening: (pid: number) => Map<number, number> = listeningInodes, containers: ContainerResolver = resolver()): DiscoveredService[] {
  const explicit = !!(sel.pids?.length || sel.match || sel.cgroup);
  const auto = sel.autoDiscover ?? !explicit;
  const procs = new Map<number, DiscoveredProcess>();
  for (const pid of listPids()) {
    if (pid === selfPid || pid === parentPid) continue; // never the agent, nor what launched it
    const st = readStat(pid);
    if (!st || st.state === 'Z') continue;
    const exe = readExe(pid) ?? '';
    const cmdline = readCmdline(pid);
    if (!cmdline || !cmdline.length) continue; // kernel threads
    const selected = sel.pids?.includes(pid) || (sel.match && sel.match.test(cmdline.join(' ')));
    if (!selected && !isPythonProcess(exe, cmdline)) continue;
    if (sel.exclude && sel.exclude.test(cmdline.join(' '))) continue;
    procs.set(pid, toProcess(st, cmdline, exe));
  }

  // Roots: python processes whose parent is not one of them.
  const children = new Map<number, DiscoveredProcess[]>();
  const roots: DiscoveredProcess[] = [];
  for (const p of procs.values()) {
    if (procs.has(p.ppid)) {
      const list = children.get(p.ppid) ?? [];
      list.push(p);
      children.set(p.ppid, list);
    } else roots.push(p);
  }

  const portsOf = (p: DiscoveredProcess) => {
    const out: number[] = [];
    let listen: Map<number, number> | undefined;
    for (const inode of socketInodes(p.pid)) {
      listen ??= listening(p.pid); // only when a python process holds sockets
      const port = listen.get(inode);
      if (port !== undefined && !out.includes(port)) out.push(port);
    }
    return out;
  };

  const services: DiscoveredService[] = [];
  for (const root of roots) {
    const workers = (children.get(root.pid) ?? []).filter((w) => !NOT_A_WORKER.test(w.cmdline.join(' ')));
    const ports = () => [...new Set([root, ...workers].flatMap(portsOf))].sort((a, b) => a - b);
    const svc = serviceOf(root, workers, ports, sel, auto, containers);
    if (svc) services.push(svc);
  }
  return services;
}

/**
 * The service rooted at `root` if the selection admits it (auto-discovery takes what looks like a
 * server). Its ports are read only when they can matter: listing the fds of Python processes the
 * selection cannot admit was half of each scan's CPU (6.2 -> 3.2 ms here) with auto-discovery off.
 */
function serviceOf(root: DiscoveredProcess, workers: DiscoveredProcess[], portsOf: () => number[], sel: Selection, auto: boolean,
  containers: ContainerResolver): DiscoveredService | undefined {
  const kind = classify(root.cmdline);
  const cgroups = readCgroups(root.pid);
  const cgroupPath = cgroups[''] ?? '';
  const selected = !!(sel.pids?.includes(root.pid) || workers.some((w) => sel.pids?.includes(w.pid))
    || (sel.match && sel.match.test(root.cmdline.join(' ')))
    || (sel.cgroup && Object.values(cgroups).some((c) => c === sel.cgroup || c.startsWith(sel.cgroup!.replace(/\/$/, '') + '/'))));
  if (!selected && !auto) return undefined;
  const ports = portsOf();
  const looksLikeServer = kind !== 'python' || ports.length > 0;
  if (!selected && !looksLikeServer) return undefined;
  return {
    id: serviceId(kind, root),
    name: serviceName(kind, root.cmdline, ports),
    kind,
    master: root,
    workers,
    ports,
    cgroup: cgroupPath,
    memoryCgroup: cgroups.memory ?? cgroupPath,
    unit: serviceUnitOf(cgroupPath),
    netns: nsInode(root.pid, 'net') ?? 0,
    pidns: nsInode(root.pid, 'pid') ?? 0,
    container: containers.infoOf(cgroups),
  };
}

/**
 * One process that just exec'd (the kernel's candidate exec record), looked at before the next
 * /proc scan: a service whose workers die within a second of starting is still seen. Only a
 * root (its parent is not a python process) starts a service here; its workers arrive as forks.
 */
export function discoverExec(pid: number, sel: Selection = {}, containers: ContainerResolver = resolver()): DiscoveredService | undefined {
  const st = readStat(pid);
  const cmdline = readCmdline(pid);
  if (!st || st.state === 'Z' || !cmdline?.length) return undefined;
  const exe = readExe(pid) ?? '';
  const selected = sel.pids?.includes(pid) || (sel.match && sel.match.test(cmdline.join(' ')));
  if (!selected && !isPythonProcess(exe, cmdline)) return undefined;
  if (sel.exclude && sel.exclude.test(cmdline.join(' '))) return undefined;
  const parentExe = readExe(st.ppid) ?? '';
  if (isPythonProcess(parentExe, readCmdline(st.ppid) ?? [])) return undefined; // part of another tree
  const explicit = !!(sel.pids?.length || sel.match || sel.cgroup);
  return serviceOf(toProcess(st, cmdline, exe), [], () => [], sel, sel.autoDiscover ?? !explicit, containers);
}


export { NOT_A_WORKER };
