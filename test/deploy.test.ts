/**
 * The install files: deploy/kubernetes/daemonset.yaml (parsed with js-yaml)
 * and deploy/premortem.service (parsed as INI here, and verified by systemd's
 * own `systemd-analyze verify`). The command lines in both must be accepted by
 * the real CLI parser.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseArgs, runOptions } from '../agent/cli';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const yaml = require('js-yaml') as { safeLoadAll(text: string): unknown[] };

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const ROOT = path.resolve(__dirname, '..');
const CAPS = ['BPF', 'PERFMON', 'SYS_PTRACE', 'DAC_READ_SEARCH'];

describe('Kubernetes DaemonSet', () => {
  const docs = yaml.safeLoadAll(fs.readFileSync(path.join(ROOT, 'deploy', 'kubernetes', 'daemonset.yaml'), 'utf8')) as Obj[];
  const ds = docs.find((d) => d?.kind === 'DaemonSet')!;
  const pod = ds?.spec?.template?.spec as Obj;
  const c = pod?.containers?.[0] as Obj;

  test('well-formed objects: apiVersion, kind, names, namespace; selector matches the pod labels', () => {
    expect(docs.map((d) => d.kind)).toEqual(['Namespace', 'ServiceAccount', 'DaemonSet']);
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

  test('host PID namespace, capabilities instead of privileged', () => {
    expect(pod.hostPID).toBe(true);
    expect(pod.hostNetwork).not.toBe(true);
    expect(c.securityContext.privileged).toBe(false);
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
    expect(c.securityContext.capabilities.drop).toEqual(['ALL']);
    expect(c.securityContext.capabilities.add).toEqual(expect.arrayContaining(CAPS));
    expect(c.securityContext.capabilities.add).not.toContain('SYS_ADMIN');
  });

  test('mounts for BTF, tracefs, cgroups and the data directory, each backed by a hostPath volume', () => {
    const volumes = new Map<string, Obj>((pod.volumes as Obj[]).map((v) => [v.name, v]));
    const mounts = new Map<string, Obj>((c.volumeMounts as Obj[]).map((m) => [m.mountPath, m]));
    for (const m of c.volumeMounts as Obj[]) expect(volumes.has(m.name)).toBe(true);
    for (const [p, ro] of [['/sys/kernel/btf', true], ['/sys/kernel/tracing', true], ['/sys/fs/cgroup', true], ['/var/lib/premortem', undefined]] as const) {
      const m = mounts.get(p);
      expect(m).toBeDefined();
      expect(m!.readOnly).toBe(ro);
      expect(volumes.get(m!.name)!.hostPath.path).toBe(p);
    }
    expect(volumes.get(mounts.get('/var/lib/premortem')!.name)!.hostPath.type).toBe('DirectoryOrCreate');
  });

  test('resource limits, the token from a Secret, liveness on /api/health, args the CLI accepts', () => {
    expect(c.resources.limits.cpu).toMatch(/^\d+m?$/);
    expect(c.resources.limits.memory).toMatch(/^\d+(Mi|Gi)$/);
    expect(c.resources.requests.memory).toBeDefined();
    const token = (c.env as Obj[]).find((e) => e.name === 'PREMORTEM_TOKEN')!;
    expect(token.valueFrom.secretKeyRef).toEqual({ name: 'premortem-token', key: 'token' });
    const probe = c.livenessProbe;
    const probeText = JSON.stringify(probe);
    expect(probeText).toContain('/api/health');
    expect(probeText).toContain('PREMORTEM_TOKEN');
    expect(probe.periodSeconds).toBeGreaterThan(0);
    // The probe's script is valid JavaScript.
    expect(() => new Function(probe.exec.command[2])).not.toThrow(); // eslint-disable-line no-new-func
    const port = (c.ports as Obj[]).find((p) => p.name === 'http')!.containerPort;
    expect(probeText).toContain(`port:${port}`);
    // The container's command line, through the real CLI parser.
    const parsed = parseArgs(c.args);
    expect(parsed.cmd).toBe('run');
    const prev = process.env.PREMORTEM_TOKEN;
    process.env.PREMORTEM_TOKEN = 'a-token-of-sufficient-length';
    try {
      const o = runOptions(parsed);
      expect(o).toMatchObject({ host: '0.0.0.0', port, dataDir: '/var/lib/premortem', token: 'a-token-of-sufficient-length' });
    } finally {
      if (prev === undefined) delete process.env.PREMORTEM_TOKEN;
      else process.env.PREMORTEM_TOKEN = prev;
    }
    expect(ds.spec.template.metadata.annotations['prometheus.io/path']).toBe('/metrics');
  });
});

describe('systemd unit', () => {
  const file = path.join(ROOT, 'deploy', 'premortem.service');
  const text = fs.readFileSync(file, 'utf8');

  /** INI as systemd reads it: [Section], Key=Value (keys may repeat), # and ; comments. */
  function parseUnit(src: string): Map<string, Map<string, string[]>> {
    const out = new Map<string, Map<string, string[]>>();
    let section: Map<string, string[]> | undefined;
    src.split('\n').forEach((raw, i) => {
      const line = raw.trim();
      if (!line || line.startsWith('#') || line.startsWith(';')) return;
      const s = /^\[([A-Za-z]+)\]$/.exec(line);
      if (s) {
        if (out.has(s[1])) throw new Error(`line ${i + 1}: section [${s[1]}] repeated`);
        out.set(s[1], (section = new Map()));
        return;
      }
      const kv = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
      if (!kv || !section) throw new Error(`line ${i + 1}: not Key=Value inside a section: ${raw}`);
      section.set(kv[1], [...(section.get(kv[1]) ?? []), kv[2]]);
    });
    return out;
  }

  test('keys: capabilities, restart policy, data directory, a dedicated user, sandboxing compatible with BPF', () => {
    const u = parseUnit(text);
    expect([...u.keys()]).toEqual(['Unit', 'Service', 'Install']);
    const svc = u.get('Service')!;
    const one = (k: string) => svc.get(k)?.at(-1);
    const caps = (k: string) => one(k)!.split(/\s+/).sort();
    expect(caps('AmbientCapabilities')).toEqual(CAPS.map((x) => `CAP_${x}`).sort());
    expect(caps('CapabilityBoundingSet')).toEqual(caps('AmbientCapabilities'));
    expect(one('Restart')).toBe('on-failure');
    expect(one('StateDirectory')).toBe('premortem');
    expect(one('User')).toBe('premortem');
    expect(one('DynamicUser')).toBe('yes');
    expect(one('ProtectSystem')).toBe('strict');
    // Options that would break tracing must stay off.
    expect(svc.has('ProtectProc')).toBe(false);
    expect(svc.has('ProcSubset')).toBe(false);
    expect(svc.has('MemoryDenyWriteExecute')).toBe(false);
    expect(svc.has('PrivateUsers')).toBe(false);
    expect(svc.has('SystemCallFilter')).toBe(false);
    expect(u.get('Install')!.get('WantedBy')).toEqual(['multi-user.target']);
    // ExecStart through the real CLI parser: the data directory is the StateDirectory.
    const [bin, ...args] = one('ExecStart')!.split(/\s+/);
    expect(bin).toBe('/opt/premortem/bin/premortem');
    const o = runOptions(parseArgs(args));
    expect(o.dataDir).toBe(`/var/lib/${one('StateDirectory')}`);
    expect(o.host ?? '127.0.0.1').toBe('127.0.0.1');
  });

  test('systemd-analyze verify accepts it (ExecStart pointed at this checkout)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-unit-'));
    try {
      const copy = path.join(dir, 'premortem.service');
      fs.writeFileSync(copy, text.replace('/opt/premortem/bin/premortem', path.join(ROOT, 'bin', 'premortem')));
      // verify exits 0 on unknown keys and bad values, but says so: its output must be empty.
      const out = execFileSync('/bin/sh', ['-c', `/usr/bin/systemd-analyze verify '${copy}' 2>&1; echo "exit=$?"`], { encoding: 'utf8' });
      expect(out).toBe('exit=0\n');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
