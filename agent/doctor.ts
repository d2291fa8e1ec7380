/**
 * `premortem doctor`: checks what the agent needs, one line per item with OK /
 * missing and what to do. It loads the real probes rather than guessing from
 * kernel versions.
 */
import * as fs from 'fs';
import { loadAddon } from './native';
import { withElf } from './python/elf';
import { scanPythonInterpreters } from './python/scan';

export type CheckStatus = 'ok' | 'missing' | 'warn' | 'info';

export interface Check {
  area: string;
  item: string;
  status: CheckStatus;
  detail: string;
  /** What to do about it, when not ok. */
  fix?: string;
}

export interface DoctorReport {
  checks: Check[];
  /** false when the agent cannot run at all. */
  canRun: boolean;
}

const CAP = { SYS_ADMIN: 21, PERFMON: 38, BPF: 39, SYS_PTRACE: 19, DAC_READ_SEARCH: 2 };

function effectiveCaps(): bigint {
  const m = fs.readFileSync('/proc/self/status', 'utf8').match(/^CapEff:\s+([0-9a-f]+)/m);
  return m ? BigInt('0x' + m[1]) : 0n;
}

const hasCap = (caps: bigint, n: number) => (caps & (1n << BigInt(n))) !== 0n;

function mounted(fstype: string): string | undefined {
  const line = fs.readFileSync('/proc/mounts', 'utf8').split('\n').find((l) => l.split(' ')[2] === fstype);
  return line?.split(' ')[1];
}

function checkKernel(checks: Check[]): boolean {
  const btf = fs.existsSync('/sys/kernel/btf/vmlinux');
  checks.push({
    area: 'kernel', item: 'BTF (/sys/kernel/btf/vmlinux)', status: btf ? 'ok' : 'missing',
    detail: btf ? `kernel ${fs.readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim()}` : 'no kernel BTF',
    fix: btf ? undefined : 'use a kernel built with CONFIG_DEBUG_INFO_BTF=y',
  });
  const caps = effectiveCaps();
  const root = process.getuid?.() === 0;
  const bpfOk = hasCap(caps, CAP.SYS_ADMIN) || (hasCap(caps, CAP.BPF) && hasCap(caps, CAP.PERFMON));
  checks.push({
    area: 'privileges', item: 'CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN)', status: bpfOk ? 'ok' : 'missing',
    detail: `${root ? 'root' : `uid ${process.getuid?.()}`}; CapEff=0x${caps.toString(16)}`,
    fix: bpfOk ? undefined : 'run as root, or: setcap cap_bpf,cap_perfmon,cap_sys_ptrace,cap_dac_read_search+ep $(which node)',
  });
  const procOk = hasCap(caps, CAP.SYS_PTRACE) || hasCap(caps, CAP.SYS_ADMIN) || root;
  checks.push({
    area: 'privileges', item: "reading other users' /proc (CAP_SYS_PTRACE)", status: procOk ? 'ok' : 'warn',
    detail: procOk ? 'can read /proc/PID/{maps,exe} of any process' : 'workers of other users cannot be inspected',
    fix: procOk ? undefined : 'grant CAP_SYS_PTRACE and CAP_DAC_READ_SEARCH',
  });
  const lockdown = fs.existsSync('/sys/kernel/security/lockdown')
    ? (fs.readFileSync('/sys/kernel/security/lockdown', 'utf8').match(/\[(\w+)\]/)?.[1] ?? 'unknown') : 'none';
  checks.push({ area: 'kernel', item: 'lockdown', status: lockdown === 'confidentiality' ? 'warn' : 'info', detail: lockdown });
  return btf && bpfOk;
}

/** Loads every probe for real and reports each program's hook. */
function checkProbes(checks: Check[], disablePrograms: string[]): boolean {
  let addon: ReturnType<typeof loadAddon>;
  try {
    addon = loadAddon();
  } catch (e) {
    checks.push({ area: 'build', item: 'native addon', status: 'missing', detail: (e as Error).message, fix: 'npm run build' });
    return false;
  }
  checks.push({ area: 'build', item: 'native addon', status: 'ok', detail: `probes: ${addon.probeNames().join(', ')}` });
  let tracer;
  try {
    tracer = new addon.Tracer({ ringBufferBytes: 1 << 16, disablePrograms, onRecords: () => undefined });
  } catch (e) {
    const err = e as Error & { code?: string };
    checks.push({ area: 'bpf', item: 'load probes', status: 'missing', detail: `${err.code}: ${err.message.split('\n')[0]}`,
      fix: 'see the privileges and BTF lines above' });
    return false;
  }
  let anyAttached = false;
  try {
    checks.push({ area: 'bpf', item: 'ring buffer map (BPF_MAP_TYPE_RINGBUF)', status: 'ok', detail: 'created and read' });
    for (const p of tracer.probes()) {
      if (!p.loaded) {
        checks.push({ area: 'bpf', item: `probe ${p.name}`, status: 'missing', detail: p.error?.message.split('\n')[0] ?? 'not loaded',
          fix: 'the agent runs without this probe; its signals are off' });
        continue;
      }
      for (const prog of p.programs) {
        const hook = prog.section.replace(/^tp_btf\//, 'tracepoint ');
        if (prog.deferred) {
          checks.push({ area: 'bpf', item: `${p.name}: ${prog.section} ${prog.name}`, status: 'ok', detail: 'loaded; attached per interpreter binary' });
        } else if (prog.attached) {
          anyAttached = true;
          checks.push({ area: 'bpf', item: `${p.name}: ${hook}`, status: 'ok', detail: 'loaded and attached' });
        } else if (!prog.enabled) {
          checks.push({ area: 'bpf', item: `${p.name}: ${hook}`, status: 'missing', detail: `disabled (${prog.name}): ${prog.error?.message.split('\n')[0] ?? 'by --disable'}`,
            fix: 'the agent runs without this signal' });
        } else {
          checks.push({ area: 'bpf', item: `${p.name}: ${hook}`, status: 'missing', detail: prog.error?.message.split('\n')[0] ?? 'not attached',
            fix: 'the agent runs without this signal' });
        }
      }
    }
  } finally {
    tracer.close();
  }
  return anyAttached;
}

function checkFilesystems(checks: Check[]): void {
  const tracefs = mounted('tracefs');
  checks.push({ area: 'filesystems', item: 'tracefs', status: tracefs ? 'ok' : 'info',
    detail: tracefs ? `mounted at ${tracefs}` : 'not mounted; not needed (premortem uses tp_btf and USDT only)' });
  const bpffs = mounted('bpf');
  checks.push({ area: 'filesystems', item: 'bpffs', status: bpffs ? 'ok' : 'info',
    detail: bpffs ? `mounted at ${bpffs}` : 'not mounted; not needed (nothing is pinned)' });
  const cg2 = fs.readFileSync('/proc/mounts', 'utf8').split('\n').filter((l) => l.split(' ')[2] === 'cgroup2').map((l) => l.split(' ')[1]);
  const v1mem = fs.existsSync('/sys/fs/cgroup/memory/memory.limit_in_bytes');
  checks.push({ area: 'cgroups', item: 'layout', status: cg2.length || v1mem ? 'ok' : 'warn',
    detail: `${v1mem ? 'v1 memory controller at /sys/fs/cgroup/memory' : 'no v1 memory controller'}; ${cg2.length ? `cgroup2 at ${cg2.join(', ')}` : 'no cgroup2 mount'}` });
  const psi = fs.existsSync('/proc/pressure/memory');
  checks.push({ area: 'kernel', item: 'PSI (/proc/pressure)', status: psi ? 'ok' : 'warn',
    detail: psi ? 'cpu, memory, io pressure available' : 'no pressure stall information',
    fix: psi ? undefined : 'boot with psi=1 (host pressure context will be missing)' });
}

/**
 * Whether this agent may attach uprobes (the GC probes of every python, USDT
 * included: they are uprobes too). Tried for real on a function of node's own
 * binary, for this process only (pid filter): no other process is touched.
 */
function checkUprobes(checks: Check[]): void {
  const item = 'uprobes (GC pauses: USDT and uprobe methods)';
  let tracer;
  try {
    const offset = withElf(process.execPath, (e) => {
      const fn = e.symbols((n) => n === 'uv_version')[0];
      return fn ? e.fileOffset(fn.value) : null;
    });
    if (offset === null) {
      checks.push({ area: 'bpf', item, status: 'info', detail: `no uv_version in ${process.execPath} to try one on` });
      return;
    }
    tracer = new (loadAddon().Tracer)({ probes: ['pygc'], ringBufferBytes: 1 << 16, onRecords: () => undefined });
    tracer.detach(tracer.attachUprobe('pygc', 'gc_entry', process.execPath, offset, process.pid));
    checks.push({ area: 'bpf', item, status: 'ok', detail: 'a uprobe attaches' });
  } catch (e) {
    const err = e as Error & { code?: string };
    checks.push({ area: 'bpf', item, status: 'warn', detail: `${err.code ?? 'error'}: ${err.message.split('\n')[0]}`,
      fix: 'no GC pauses for any python: uprobes need CAP_SYS_ADMIN on this kernel (CAP_BPF + CAP_PERFMON are not enough for the uprobe perf event)' });
  } finally {
    tracer?.close();
  }
}

/** One line per interpreter: how its GC pauses are measured (usdt, uprobe, none and why) and whether its stacks can be read. */
function checkPython(checks: Check[]): void {
  checkUprobes(checks);
  const found = scanPythonInterpreters();
  if (!found.length) checks.push({ area: 'python', item: 'interpreters', status: 'info', detail: 'no python interpreter found' });
  for (const py of found) {
    const ok = py.gcMethod !== 'none';
    const version = py.version ? `Python ${py.version}` : 'unknown version';
    checks.push({
      area: 'python', item: py.path, status: ok && py.stacks ? 'ok' : 'warn',
      detail: `${version}; GC pauses: ${py.gcMethod} (${py.gcReason}); stacks: ${py.stacks ? 'readable' : `no (${py.stacksReason})`}`,
      fix: ok ? undefined : 'GC pauses of its processes are not measured: use a build with --with-dtrace or one that keeps its symbol table (not stripped)',
    });
  }
}

export interface DoctorOptions {
  /** Programs not to load, as `probe/program`: shows what the agent reports when a hook is missing. */
  disablePrograms?: string[];
}

export async function runDoctor(opts: DoctorOptions = {}): Promise<DoctorReport> {
  const checks: Check[] = [];
  const basics = checkKernel(checks);
  const probes = checkProbes(checks, opts.disablePrograms ?? []);
  checkFilesystems(checks);
  checkPython(checks);
  return { checks, canRun: basics && probes };
}

export function formatDoctor(r: DoctorReport): string {
  const mark: Record<CheckStatus, string> = { ok: 'OK     ', missing: 'MISSING', warn: 'WARN   ', info: 'INFO   ' };
  const lines = r.checks.map((c) => `${mark[c.status]} ${c.area.padEnd(11)} ${c.item}: ${c.detail}${c.fix ? `\n        -> ${c.fix}` : ''}`);
  lines.push(r.canRun ? '\npremortem can run here.' : '\npremortem cannot run here: fix the MISSING lines above.');
  return lines.join('\n');
}
