/** premortem doctor on this host: loads the probes for real; fails with reasons without privileges. */
import { execFileSync, spawnSync } from 'child_process';
import * as path from 'path';
import { projectRoot } from '../../agent/native';
import { runDoctor } from '../../agent/doctor';

test('every check is OK here, each tracepoint is named, and the agent can run', async () => {
  const r = await runDoctor();
  expect(r.canRun).toBe(true);
  const items = r.checks.map((c) => `${c.status} ${c.item}`);
  expect(items).toContain('ok BTF (/sys/kernel/btf/vmlinux)');
  expect(items).toContain('ok CAP_BPF + CAP_PERFMON (or CAP_SYS_ADMIN)');
  expect(items).toContain('ok ring buffer map (BPF_MAP_TYPE_RINGBUF)');
  for (const tp of ['sched_switch', 'sched_wakeup', 'sched_process_exit', 'signal_generate', 'mark_victim', 'inet_sock_set_state', 'block_rq_complete'])
    expect(items.some((i) => i.startsWith('ok ') && i.includes(`tracepoint ${tp}`))).toBe(true);
  expect(r.checks.filter((c) => c.area === 'bpf' && c.status === 'missing')).toEqual([]);
  expect(r.checks.some((c) => c.area === 'python' && c.item === '/usr/bin/python3' && c.status === 'ok')).toBe(true);
});

test('--json is machine-readable, and without privileges doctor exits non-zero saying why', () => {
  const cli = path.join(projectRoot(), 'dist', 'agent', 'cli.js');
  const json = JSON.parse(execFileSync(process.execPath, [cli, 'doctor', '--json']).toString());
  expect(json.canRun).toBe(true);
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--inh-caps=-all', process.execPath, cli, 'doctor']);
  expect(r.status).toBe(1);
  const out = r.stdout.toString();
  expect(out).toMatch(/MISSING privileges +CAP_BPF/);
  expect(out).toMatch(/premortem cannot run here/);
});
