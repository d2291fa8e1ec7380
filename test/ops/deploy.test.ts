/**
 * The install files: deploy/kubernetes/*.yaml (parsed with js-yaml),
 * deploy/Dockerfile and deploy/premortem.service (parsed as systemd reads it,
 * verified and scored by systemd's own `systemd-analyze`). The command lines
 * must be accepted by the real CLI parser, the image must be the one
 * `npm run package` builds, and the probes' script is run against a real HTTP
 * server. test/ops/package.test.ts installs the package these files name.
 */
import { execFileSync, spawn, spawnSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import { parseArgs, runOptions } from '../../agent/cli';
import { TRACER_NODE_FLAGS } from '../../agent/config';
import { allowedSyscalls, parseUnit, serviceValue, syscallGroups } from '../helpers/unit-file';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const yaml = require('js-yaml') as { safeLoadAll(text: string): unknown[] };

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ROOT = path.resolve(__dirname, '..', '..');
const CAPS = ['BPF', 'PERFMON', 'SYS_PTRACE', 'DAC_READ_SEARCH'];
const read = (...p: string[]) => fs.readFileSync(path.join(ROOT, ...p), 'utf8');
/** What scripts/package.sh builds: deb=dist/release/premortem_<v>_amd64.deb, image=premortem:<v>. */
const release = Object.fromEntries(execFileSync('bash', ['scripts/package.sh', '--print'], { cwd: ROOT, encoding: 'utf8', env: { ...process.env, PREMORTEM_IMAGE: '' } })
  .trim().split('\n').map((l) => l.split('=') as [string, string]));
const unit = parseUnit(read('deploy', 'premortem.service'));
const execStart = serviceValue(unit, 'ExecStart')!.split(/\s+/);

/** Runs the probe script with the token against a port; its exit status. */
function runProbe(script: string, port: number, probePath: string, token: string): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script.replace('port:7070', `port:${port}`), probePath],
      { env: { PREMORTEM_TOKEN: token }, stdio: 'ignore' });
    child.on('exit', (code) => resolve(code));
  });
}

describe('Kubernetes DaemonSet', () => {
  const docs = yaml.safeLoadAll(read('deploy', 'kubernetes', 'daemonset.yaml')) as Obj[];
  const ds = docs.find((d) => d?.kind === 'DaemonSet')!;
  const pod = ds?.spec?.template?.spec as Obj;
  const c = pod?.containers?.[0] as Obj;
  const port = (c.ports as Obj[]).find((p) => p.name === 'http')!.containerPort as number;

  test('well-formed objects: apiVersion, kind, names, namespace; selector matches the pod labels', () => {
    expect(docs.map((d) => d.kind)).toEqual(['Namespace', 'ServiceAccount', 'ResourceQuota', 'DaemonSet']);
    for (const d of docs) {
      expect(typeof d.apiVersion).toBe('string');
      expect(d.metadata.name).toBe('premortem');
      if (d.kind !== 'Namespace') expect(d.metadata.namespace).toBe('premortem');
    }
    expect(ds.apiVersion).toBe('apps/v1');
    for (const [k, v] of Object.entries(ds.spec.selector.matchLabels)) expect(ds.spec.template.metadata.labels[k]).toBe(v);
    expect(pod.serviceAccountName).toBe('premortem');
    expect(pod.containers).toHaveLength(1);
  });

  test('system-node-critical (admitted outside kube-system by a quota scoped to it), Linux x86-64 nodes only', () => {
    expect(pod.priorityClassName).toBe('system-node-critical');
    const quota = docs.find((d) => d.kind === 'ResourceQuota')!;
    expect(quota.spec.scopeSelector.matchExpressions).toContainEqual({ scopeName: 'PriorityClass', operator: 'In', values: ['system-node-critical'] });
    expect(pod.nodeSelector).toEqual({ 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': 'amd64' });
    expect(release.deb).toMatch(/_amd64\.deb$/); // the only architecture the package is built for
  });

  test("the node's pids and sockets, capabilities instead of privileged", () => {
    expect(pod.hostPID).toBe(true);
    expect(pod.hostNetwork).toBe(true); // /proc/net/tcp must be the node's
    expect(pod.dnsPolicy).toBe('ClusterFirstWithHostNet');
    expect(c.securityContext.privileged).toBe(false);
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(c.securityContext.readOnlyRootFilesystem).toBe(true);
    expect(c.securityContext.capabilities.drop).toEqual(['ALL']);
    expect(c.securityContext.capabilities.add).toEqual(expect.arrayContaining(CAPS));
    expect(c.securityContext.capabilities.add).not.toContain('SYS_ADMIN');
  });

  test('mounts for BTF, cgroups and the data directory; no tracefs, debugfs or bpffs, since no BPF program needs them', () => {
    const volumes = new Map<string, Obj>((pod.volumes as Obj[]).map((v) => [v.name, v]));
    const mounts = new Map<string, Obj>((c.volumeMounts as Obj[]).map((m) => [m.mountPath, m]));
    for (const m of c.volumeMounts as Obj[]) expect(volumes.has(m.name)).toBe(true);
    for (const [p, ro] of [['/sys/kernel/btf', true], ['/sys/fs/cgroup', true], ['/var/lib/premortem', undefined]] as const) {
      const m = mounts.get(p);
      expect(m).toBeDefined();
      expect(m!.readOnly).toBe(ro);
      expect(volumes.get(m!.name)!.hostPath.path).toBe(p);
    }
    expect(volumes.get(mounts.get('/var/lib/premortem')!.name)!.hostPath.type).toBe('DirectoryOrCreate');
    const special = /^\/sys\/(kernel\/(tracing|debug)|fs\/bpf)(\/|$)/;
    expect([...mounts.keys()].filter((p) => special.test(p))).toEqual([]);
    expect((pod.volumes as Obj[]).filter((v) => special.test(v.hostPath?.path ?? ''))).toEqual([]);
    // Why none is needed: every program is tp_btf, raw_tp, USDT or a uprobe (classic tracepoints would need tracefs).
    const sections = fs.readdirSync(path.join(ROOT, 'bpf')).filter((f) => f.endsWith('.bpf.c'))
      .flatMap((f) => [...read('bpf', f).matchAll(/SEC\("([^"]+)"\)/g)].map((m) => `${f}: ${m[1]}`));
    expect(sections.length).toBeGreaterThan(10);
    const needsTracefs = sections.filter((s) => !/: (tp_btf|raw_tp|raw_tracepoint|usdt|uprobe|uretprobe)(\/|$)|: \.maps$|: license$/.test(s));
    expect(needsTracefs).toEqual([]);
  });

  test('probes: liveness GET /api/health, readiness GET /api/ready, both with the token, on the container port', () => {
    const live = c.livenessProbe.exec.command as string[];
    const ready = c.readinessProbe.exec.command as string[];
    expect(live[0]).toBe(execStart[0]); // the node the package's unit runs, by absolute path
    expect(live.slice(0, 2)).toEqual([execStart[0], '-e']);
    expect(ready.slice(0, 3)).toEqual(live.slice(0, 3)); // one script, two paths
    expect(live[3]).toBe('/api/health');
    expect(ready[3]).toBe('/api/ready');
    expect(() => new Function(live[2])).not.toThrow(); // eslint-disable-line no-new-func
    expect(live[2]).toContain(`port:${port}`);
    expect(live[2]).toContain('process.env.PREMORTEM_TOKEN');
    for (const p of [c.livenessProbe, c.readinessProbe]) {
      expect(p.periodSeconds).toBeGreaterThan(0);
      expect(p.timeoutSeconds * 1000).toBeGreaterThan(4000); // the script's own request timeout
    }
  });

  test("the probes' script against a real server: 0 only for 200 with the right token; 1 for 401, 503, nothing listening", async () => {
    const script = (c.livenessProbe.exec.command as string[])[2];
    const token = 'a-token-of-sufficient-length';
    const server = http.createServer((req, res) => {
      const authorized = req.headers.authorization === `Bearer ${token}`;
      res.writeHead(!authorized ? 401 : req.url === '/api/health' ? 200 : 503).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const p = (server.address() as net.AddressInfo).port;
    try {
      expect(await runProbe(script, p, '/api/health', token)).toBe(0);
      expect(await runProbe(script, p, '/api/health', 'wrong-token-of-sufficient-length')).toBe(1);
      expect(await runProbe(script, p, '/api/ready', token)).toBe(1);
    } finally {
      await new Promise((r) => server.close(r));
    }
    expect(await runProbe(script, p, '/api/health', token)).toBe(1);
  });

  test('the token from a Secret, args the CLI accepts, resource limits', () => {
    expect(c.resources.limits.cpu).toMatch(/^\d+m?$/);
    expect(c.resources.limits.memory).toMatch(/^\d+(Mi|Gi)$/);
    expect(c.resources.requests.memory).toBeDefined();
    const token = (c.env as Obj[]).find((e) => e.name === 'PREMORTEM_TOKEN')!;
    expect(token.valueFrom.secretKeyRef).toEqual({ name: 'premortem-token', key: 'token' });
    const parsed = parseArgs(c.args);
    expect(parsed.cmd).toBe('run');
    const prev = process.env.PREMORTEM_TOKEN;
    process.env.PREMORTEM_TOKEN = 'a-token-of-sufficient-length';
    try {
      expect(runOptions(parsed)).toMatchObject({ host: '0.0.0.0', port, dataDir: '/var/lib/premortem', token: 'a-token-of-sufficient-length' });
    } finally {
      if (prev === undefined) delete process.env.PREMORTEM_TOKEN;
      else process.env.PREMORTEM_TOKEN = prev;
    }
    expect(ds.spec.template.metadata.annotations['prometheus.io/path']).toBe('/metrics');
  });

  test('the image is the one the repository builds (scripts/package.sh, deploy/Dockerfile)', () => {
    const version = JSON.parse(read('package.json')).version;
    expect(release.image).toBe(`premortem:${version}`);
    expect(c.image).toBe(release.image);
    expect(c.imagePullPolicy).toBe('IfNotPresent');
  });

  test('PodMonitor: selects the pods, scrapes the http port at /metrics with the token from the Secret', () => {
    const [pm] = yaml.safeLoadAll(read('deploy', 'kubernetes', 'podmonitor.yaml')) as Obj[];
    expect(pm).toMatchObject({ apiVersion: 'monitoring.coreos.com/v1', kind: 'PodMonitor', metadata: { namespace: 'premortem' } });
    for (const [k, v] of Object.entries(pm.spec.selector.matchLabels)) expect(ds.spec.template.metadata.labels[k]).toBe(v);
    const [ep] = pm.spec.podMetricsEndpoints as Obj[];
    expect(ep).toMatchObject({ port: 'http', path: '/metrics', authorization: { type: 'Bearer', credentials: { name: 'premortem-token', key: 'token' } } });
  });
});

describe('container image (deploy/Dockerfile)', () => {
  /** Instructions with continuation lines joined, comments dropped. */
  const instructions = read('deploy', 'Dockerfile').replace(/\\\n/g, ' ').split('\n')
    .map((l) => l.trim()).filter((l) => l && !l.startsWith('#'))
    .map((l) => { const m = /^([A-Z]+)\s+(.*)$/.exec(l)!; return { op: m[1], arg: m[2] }; });
  const lastFrom = instructions.map((i) => i.op).lastIndexOf('FROM');
  const final = instructions.slice(lastFrom);

  test('a Debian 12 base that installs the .deb scripts/package.sh builds, with no compiler and no build step', () => {
    expect(final[0].arg).toMatch(/^(docker\.io\/library\/)?debian:(12|bookworm)(-slim)?$/);
    const copy = final.find((i) => i.op === 'COPY' && /\.deb\s/.test(i.arg))!;
    const glob = copy.arg.split(/\s+/)[0];
    const re = new RegExp(`^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*')}$`);
    expect(path.basename(release.deb)).toMatch(re);
    const runs = instructions.filter((i) => i.op === 'RUN').map((i) => i.arg).join(' ; ');
    const installed = [...runs.matchAll(/apt-get install ((?:\s*[-\w./+*=:]+)+)/g)].flatMap((m) => m[1].trim().split(/\s+/)).filter((w) => !w.startsWith('-'));
    expect(installed).toContain('/tmp/premortem.deb');
    expect(installed.filter((p) => /^(clang|gcc|g\+\+|cpp|llvm|lld|build-essential|make|cmake|bpftool|libbpf-dev|libelf-dev|zlib1g-dev|npm)/.test(p))).toEqual([]);
    expect(runs).not.toMatch(/\b(npm|npx|cmake-js|tsc|node-gyp)\b/);
    expect(runs).toContain('--no-install-recommends');
  });

  test("the entrypoint is the package's agent on the node the unit names", () => {
    const entry = JSON.parse(final.find((i) => i.op === 'ENTRYPOINT')!.arg) as string[];
    expect(entry).toEqual(execStart.slice(0, 2 + TRACER_NODE_FLAGS.length));
    expect(entry[entry.length - 1]).toBe('/usr/lib/premortem/bin/premortem'); // bin/premortem of this repository, installed by the .deb
    expect(fs.existsSync(path.join(ROOT, 'bin', 'premortem'))).toBe(true);
  });
});

describe('systemd unit', () => {
  const text = read('deploy', 'premortem.service');
  const one = (k: string) => serviceValue(unit, k);

  test('keys: capabilities, restart policy, data directory, a dedicated user, sandboxing compatible with BPF', () => {
    expect([...unit.keys()]).toEqual(['Unit', 'Service', 'Install']);
    const svc = unit.get('Service')!;
    const caps = (k: string) => one(k)!.split(/\s+/).sort();
    expect(caps('AmbientCapabilities')).toEqual(CAPS.map((x) => `CAP_${x}`).sort());
    expect(caps('CapabilityBoundingSet')).toEqual(caps('AmbientCapabilities'));
    expect(one('Restart')).toBe('on-failure');
    expect(one('StateDirectory')).toBe('premortem');
    expect(one('User')).toBe('premortem');
    expect(one('DynamicUser')).toBe('yes');
    expect(one('NoNewPrivileges')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    // Options that would break tracing must stay off.
    for (const k of ['ProtectProc', 'ProcSubset', 'MemoryDenyWriteExecute', 'PrivateUsers', 'PrivateNetwork']) expect([k, svc.has(k)]).toEqual([k, false]);
    expect(unit.get('Install')!.get('WantedBy')).toEqual(['multi-user.target']);
  });

  test('ExecStart: the node binary by absolute path, the packaged agent, a command line the CLI accepts', () => {
    const [node, ...rest] = execStart;
    const flags = rest.slice(0, TRACER_NODE_FLAGS.length);
    const [agent, ...args] = rest.slice(TRACER_NODE_FLAGS.length);
    expect(node).toBe('/usr/bin/node');
    expect(flags).toEqual(TRACER_NODE_FLAGS); // the agent's V8 flags, as the bench measured it
    expect(agent).toBe('/usr/lib/premortem/bin/premortem');
    const o = runOptions(parseArgs(args));
    expect(o.dataDir).toBe(`/var/lib/${one('StateDirectory')}`);
    expect(o.host ?? '127.0.0.1').toBe('127.0.0.1');
  });

  test('SystemCallFilter: @system-service plus what tracing needs, every name known to systemd; native ABI only; EPERM', () => {
    const filter = one('SystemCallFilter')!;
    expect(filter.split(/\s+/)).toEqual(expect.arrayContaining(['@system-service', 'bpf', 'perf_event_open']));
    expect(unit.get('Service')!.get('SystemCallFilter')).toHaveLength(1); // one allow-list, no later deny list
    const groups = syscallGroups();
    const allowed = allowedSyscalls(filter, groups);
    const known = allowedSyscalls('@known', groups);
    expect([...allowed].filter((s) => !known.has(s))).toEqual([]);
    for (const s of ['bpf', 'perf_event_open', 'pkey_alloc', 'pkey_mprotect', 'epoll_wait', 'capset']) expect([s, allowed.has(s)]).toEqual([s, true]);
    for (const s of ['init_module', 'kexec_load', 'mount', 'ptrace', 'reboot', 'swapon']) expect([s, allowed.has(s)]).toEqual([s, false]);
    expect(one('SystemCallArchitectures')).toBe('native');
    expect(one('SystemCallErrorNumber')).toBe('EPERM');
  });

  test('systemd-analyze verify accepts it', () => {
    // verify exits 0 on unknown keys and bad values, but says so: its output must be empty.
    const r = spawnSync('/bin/sh', ['-c', `/usr/bin/systemd-analyze verify "$1" 2>&1; echo "exit=$?"`, 'sh', path.join(ROOT, 'deploy', 'premortem.service')], { encoding: 'utf8' });
    expect(r.stdout).toBe('exit=0\n');
    expect(text).toContain('ExecStart=/usr/bin/node ');
  });

  test('systemd-analyze security: exposure at most 2.4 (4.0 before the syscall filter; docs/DEPLOY.md)', () => {
    const r = spawnSync('/usr/bin/systemd-analyze', ['security', '--offline=true', '--no-pager', path.join(ROOT, 'deploy', 'premortem.service')], { encoding: 'utf8' });
    const m = /Overall exposure level for premortem\.service: (\d+\.\d)/.exec(r.stdout);
    expect(m).not.toBeNull();
    expect(Number(m![1])).toBeLessThanOrEqual(2.4);
    expect(r.stdout).toMatch(/✓ SystemCallArchitectures=/);
  });
});
