/**
 * /metrics by the Prometheus conventions, on the real page: the real agent
 * (runPremortem, real BPF probes, the server in its capability-less child as
 * in production) tracks a real gunicorn with two workers.
 *   - `promtool check metrics` finds nothing to say about the page;
 *   - worker series are keyed by slot (no pid label), so a recycled worker
 *     continues its slot's series (generation 1) instead of adding one;
 *     --metrics-pid-label adds the pid on request;
 *   - the agent's process is described by prom-client's process_* and
 *     nodejs_*; node_exporter's figures (load1, MemAvailable) are not repeated;
 *     PSI is a _seconds_total counter; unknown values are absent, not 0;
 *   - a real Prometheus scrapes it: histogram_quantile works on the runqueue
 *     histogram, an incident is counted by verdict;
 *   - two deployments running the same `gunicorn app:app` (each in its own
 *     cgroup and network namespace, both on 127.0.0.1:8000) stay apart.
 * Plus the cardinality bounds and histogram arithmetic on a scripted agent.
 */
import { ChildProcess } from 'child_process';
import { EventEmitter } from 'events';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runPremortem, type Running } from '../../agent/run';
import { createLogger } from '../../agent/log';
import { createMetrics, OTHER_SERVICE } from '../../agent/metrics';
import type { Agent } from '../../agent/agent';
import { killGroup, sleep, start, stopAll, waitFor } from '../helpers/procs';
import { appDir, AppDir, freePort, get, gunicorn, ready, workersOf } from '../helpers/services';
import { createCgroup2, getText, promtoolCheckMetrics, samplesOf, type TestCgroup2 } from '../helpers/metrics';

jest.setTimeout(90_000);

let app: AppDir;
let tmp: string;
let running: Running | undefined;
let prom: ChildProcess | undefined;
let promPort: number;
const cgroups: TestCgroup2[] = [];
const quiet = createLogger({ level: 'error' });

beforeAll(() => {
  app = appDir('metrics');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-metrics-'));
});

afterAll(async () => {
  if (prom) await killGroup(prom, 'SIGTERM');
  await running?.stop();
  await stopAll();
  for (const cg of cgroups) await cg.remove();
  app?.remove();
  fs.rmSync(tmp, { recursive: true, force: true });
});

interface PromResult { metric: Record<string, string>; value: [number, string] }

async function query(q: string): Promise<PromResult[]> {
  const r = await getText(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
  const j = JSON.parse(r.body) as { status: string; data: { resultType: string; result: PromResult[] }; error?: string };
  if (j.status !== 'success') throw new Error(`query ${q}: ${j.error}`);
  return j.data.result;
}

/** Polls a PromQL query until `ok` holds (Prometheus answers errors while it starts: retried). */
async function until(q: string, ok: (r: PromResult[]) => boolean, timeoutMs = 20_000): Promise<PromResult[]> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const r = await query(q);
      if (ok(r)) return r;
      last = r;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > deadline) throw new Error(`Prometheus: ${q} never satisfied the test within ${timeoutMs} ms; last: ${JSON.stringify(last).slice(0, 600)}`);
    await sleep(250);
  }
}

test('the real page: promtool-clean, worker series by slot (stable across recycling), process_*/nodejs_* defaults, PSI counters; a real Prometheus scrapes it', async () => {
  const port = await freePort();
  const master = gunicorn(app, port, ['-w', '2']);
  await ready(port);
  const workers = await workersOf(master, 2);

  running = await runPremortem(
    { host: '127.0.0.1', port: 0, dataDir: path.join(tmp, 'data'), intervalMs: 500, windowMs: 60_000, bundleWindowMs: 30_000,
      match: app.match, autoDiscover: false, discoveryIntervalMs: 300 },
    { logger: quiet, privilegeSeparation: true },
  );
  const agentPort = new URL(running.url!).port;
  const metricsUrl = `http://127.0.0.1:${agentPort}/metrics`;
  const tracked = () => running!.agent.snapshot().workers.filter((w) => w.state === 'alive' && w.identity?.role === 'worker');
  await waitFor(() => workers.every((pid) => tracked().some((w) => w.identity?.pid === pid)), 15_000, 'both workers to be tracked');
  for (let i = 0; i < 20; i++) await get(port, '/').catch(() => undefined);
  const page = await waitForPage(metricsUrl, (p) => samplesOf(p, 'premortem_worker_rss_bytes', { role: 'worker' }).length === 2);

  // promtool has nothing to say about the page.
  const lint = promtoolCheckMetrics(page);
  expect(lint.problems).toBe('');
  expect(lint.status).toBe(0);

  // Worker series by slot, no pid; the slots are the agent's.
  const rss = samplesOf(page, 'premortem_worker_rss_bytes', { role: 'worker' });
  expect(rss.map((s) => s.labels.slot).sort()).toEqual(['0', '1']);
  expect(page).not.toMatch(/^premortem_worker_\w+\{[^}]*\bpid="/m);
  const slotOf = new Map(tracked().map((w) => [w.identity!.pid, String(w.identity!.slot)]));
  expect([...slotOf.values()].sort()).toEqual(['0', '1']);
  for (const s of rss) expect(s.labels).toMatchObject({ service: expect.stringMatching(/gunicorn/), cgroup: expect.any(String), unit: expect.any(String) });
  expect(samplesOf(page, 'premortem_worker_generation', { role: 'worker' }).map((s) => s.value)).toEqual([0, 0]);
  // The agent's own process, from prom-client's default collectors; no home-made copies.
  for (const name of ['process_resident_memory_bytes', 'process_cpu_seconds_total', 'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds'])
    expect(samplesOf(page, name).length).toBeGreaterThan(0);
  expect(samplesOf(page, 'process_resident_memory_bytes')[0].value).toBeGreaterThan(10 * 2 ** 20);
  for (const gone of ['premortem_host_load1', 'premortem_host_memory_available_bytes', 'premortem_host_pressure_avg10', 'premortem_agent_resident_memory_bytes', 'premortem_agent_cpu_seconds_total', 'premortem_agent_info'])
    expect(page).not.toContain(gone);
  // PSI as cumulative seconds, like node_exporter's.
  const psi = samplesOf(page, 'premortem_host_pressure_seconds_total', { resource: 'cpu', kind: 'some' });
  expect(psi).toHaveLength(1);
  expect(psi[0].value).toBeGreaterThan(0);
  // Unknown is absent, not 0: these processes are in no limited memory cgroup, and the master in no slot.
  expect(samplesOf(page, 'premortem_worker_cgroup_memory_limit_bytes')).toEqual([]);
  expect(samplesOf(page, 'premortem_worker_rss_bytes', { role: 'master' })[0].labels.slot).toBeUndefined();

  // --metrics-pid-label: the pid on request.
  const withPid = createMetrics(running.agent, { pidLabel: true });
  await new Promise((r) => running!.agent.once('tick', r));
  const pidPage = await withPid.registry.metrics();
  withPid.close();
  for (const pid of workers) expect(samplesOf(pidPage, 'premortem_worker_rss_bytes', { pid: String(pid), slot: slotOf.get(pid)! })).toHaveLength(1);

  // A real Prometheus scrapes every second.
  promPort = await freePort();
  const cfg = path.join(tmp, 'prometheus.yml');
  fs.writeFileSync(cfg, `global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: premortem
    scrape_interval: 1s
    scrape_timeout: 900ms
    static_configs:
      - targets: ['127.0.0.1:${agentPort}']
`);
  prom = start('/usr/bin/prometheus', [`--config.file=${cfg}`, `--storage.tsdb.path=${path.join(tmp, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn'], { cwd: tmp });
  await until('up{job="premortem"}', (r) => r.length === 1 && r[0].value[1] === '1', 30_000);
  const victim = workers[0];
  const slot = slotOf.get(victim)!;
  await until(`premortem_worker_runqueue_latency_seconds_count{role="worker",slot="${slot}"}`, (r) => r.length === 1 && Number(r[0].value[1]) > 0);
  const p99 = await query(`histogram_quantile(0.99, premortem_worker_runqueue_latency_seconds_bucket{role="worker",slot="${slot}"})`);
  expect(Number(p99[0].value[1])).toBeGreaterThan(0);
  const types = (await until('premortem_agent_records_delivered_total', (r) => r.length > 0)).map((r) => r.metric.type);
  expect(types).toEqual(expect.arrayContaining(['exit', 'fork', 'signal', 'runq_slow', 'oom']));

  // Recycling: the master forks a replacement into the same slot; its series continue (generation 1), none is added.
  process.kill(victim, 'SIGKILL');
  await until('premortem_incidents_total{verdict="killed-by-other"}', (r) => r.length === 1 && r[0].value[1] === '1');
  await until('premortem_worker_deaths_total{verdict="killed-by-other",failure="true"}', (r) => r.length === 1 && r[0].value[1] === '1');
  await until(`premortem_worker_generation{role="worker",slot="${slot}"}`, (r) => r.length === 1 && r[0].value[1] === '1').catch(async (e) => {
    const direct = (await getText(metricsUrl)).body.split('\n').filter((x) => /^premortem_worker_generation|^up/.test(x)).join('\n');
    throw new Error(`${(e as Error).message}\nup: ${JSON.stringify(await query('up'))}\ndirect page:\n${direct}`);
  });
  const series = await until('count(count_over_time(premortem_worker_rss_bytes{role="worker"}[5m]))', (r) => r.length === 1);
  expect(series[0].value[1]).toBe('2');
  const after = await getText(metricsUrl);
  expect(promtoolCheckMetrics(after.body).problems).toBe('');
  expect(samplesOf(after.body, 'premortem_worker_rss_bytes', { role: 'worker' }).map((s) => s.labels.slot).sort()).toEqual(['0', '1']);
  await killGroup(master);
});

/** The page once `ok` holds for it. */
async function waitForPage(url: string, ok: (page: string) => boolean, timeoutMs = 15_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  let last = '';
  for (;;) {
    last = (await getText(url)).body;
    if (ok(last)) return last;
    if (Date.now() > deadline) throw new Error(`${url} never satisfied the test within ${timeoutMs} ms:\n${last.slice(0, 2000)}`);
    await sleep(200);
  }
}

test('two deployments of the same `gunicorn app:app` (own cgroup and network namespace, both 127.0.0.1:8000) stay apart', async () => {
  await running?.stop();
  running = undefined;
  const tag = `pm-metrics-${process.pid}`;
  const a = createCgroup2(`${tag}-a.service`);
  cgroups.push(a);
  const b = createCgroup2(`${tag}-b.service`);
  cgroups.push(b);
  const masters = [a, b].map((cg) => gunicorn(app, 8000, ['-w', '1'], { prefix: cg.prefix(true) }));
  await Promise.all(masters.map((m) => workersOf(m, 1)));
  running = await runPremortem(
    { port: null, dataDir: path.join(tmp, 'data2'), intervalMs: 500, windowMs: 60_000, bundleWindowMs: 30_000,
      match: app.match, autoDiscover: false, discoveryIntervalMs: 300 },
    { logger: quiet },
  );
  const services = await waitFor(() => {
    const s = running!.agent.snapshot().services.filter((x) => x.cgroup === a.path || x.cgroup === b.path);
    return s.length === 2 ? s : undefined;
  }, 15_000, 'both services to be found');
  expect(services[0].name).toBe(services[1].name); // the same command line: the name alone would merge them
  const page = await (async () => {
    for (let i = 0; i < 75; i++) {
      const p = await running!.metrics!.registry.metrics();
      if (samplesOf(p, 'premortem_service_workers_alive').length === 2 && samplesOf(p, 'premortem_worker_rss_bytes', { role: 'worker' }).length === 2) return p;
      await sleep(200);
    }
    throw new Error('two services with one worker each never appeared on the page');
  })();
  const alive = samplesOf(page, 'premortem_service_workers_alive');
  expect(alive.map((s) => s.labels.service)).toEqual([services[0].name, services[0].name]);
  expect(alive.map((s) => s.labels.cgroup).sort()).toEqual([a.path, b.path].sort());
  expect(alive.map((s) => s.labels.unit).sort()).toEqual([`${tag}-a.service`, `${tag}-b.service`]);
  expect(alive.map((s) => s.value)).toEqual([1, 1]);
  // Each worker stays in its own deployment's series.
  expect(samplesOf(page, 'premortem_worker_rss_bytes', { role: 'worker', slot: '0' }).map((s) => s.labels.cgroup).sort()).toEqual([a.path, b.path].sort());
  expect(promtoolCheckMetrics(page).problems).toBe('');
  await Promise.all(masters.map((m) => killGroup(m)));
});

test('cardinality bounds: live workers capped, retired workers removed, services capped to _other; histogram from log2 slots', async () => {
  const agent = new EventEmitter() as unknown as Agent & EventEmitter;
  const services = ['a', 'b', 'c'].map((n) => ({ id: `id-${n}`, name: `svc-${n}`, unit: '', cgroup: '/', ports: [] }));
  const identity = (pid: number) => ({ pid, startTicks: 1, role: 'worker', slot: Math.floor((pid - 1) / 3), generation: 0, serviceId: services[(pid - 1) % 3].id, startedMs: 1000 });
  let live: number[] = [];
  Object.assign(agent, {
    snapshot: () => ({ tMs: 0, services, workers: live.map((pid) => ({ identity: identity(pid), state: 'alive' })) }),
    health: () => ({ startedMs: 0, trackedProcesses: 0, trackedWorkersAlive: 0, refusedOverCap: 0, records: { delivered: {}, dropped: {}, droppedTotal: 0 },
      features: [], memory: { rssBytes: 1, heapUsedBytes: 1, timelineBytes: 1 }, cpu: { userMs: 0, systemMs: 0 }, errors: {} }),
  });
  const m = createMetrics(agent, { maxWorkerSeries: 3, maxServices: 2, pressureDir: tmp });
  const hist = new Array(32).fill(0);
  hist[0] = 1; hist[1] = 2; hist[3] = 4; hist[10] = 8; // <1 µs, [1,2) µs, [4,8) µs, [512,1024) µs
  const tick = (pids: number[]) => {
    live = pids;
    agent.emit('tick', {
      tMs: 0, intervalMs: 500, markers: [],
      workers: pids.map((pid) => ({ pid, startTicks: 1, serviceId: services[(pid - 1) % 3].id, bucket: { rssBytes: pid, runqHist: hist, cpuMs: 10 } })),
      services: services.map((s) => ({ serviceId: s.id, socketStates: { ESTABLISHED: 1 }, backlogDepth: 1, backlogMax: 8, workersAlive: 1 })),
    });
  };
  tick([1, 2, 3, 4, 5]);
  let text = await m.registry.metrics();
  // pids 3 (svc-c, past maxServices) is omitted; 1, 2, 4 fill the 3 series; 5 is past maxWorkerSeries.
  expect(text.match(/^premortem_worker_rss_bytes\{/gm)).toHaveLength(3);
  expect(text).toMatch(/^premortem_metrics_workers_omitted 2$/m);
  expect(text).toContain(`premortem_service_workers_alive{service="${OTHER_SERVICE}",unit="",cgroup=""} 1`);
  expect(text).not.toContain('service="svc-c"');
  const l = 'service="svc-a",unit="",cgroup="/",role="worker",slot="0"';
  // Cumulative buckets: le=1e-6 holds slot 0, le=4e-6 slots 0..2, le=1.6e-5 slots 0..4, le=0.001024 slots 0..10.
  expect(text).toContain(`premortem_worker_runqueue_latency_seconds_bucket{${l},le="0.000001"} 1`);
  expect(text).toContain(`premortem_worker_runqueue_latency_seconds_bucket{${l},le="0.000004"} 3`);
  expect(text).toContain(`premortem_worker_runqueue_latency_seconds_bucket{${l},le="0.000016"} 7`);
  expect(text).toContain(`premortem_worker_runqueue_latency_seconds_bucket{${l},le="0.001024"} 15`);
  expect(text).toContain(`premortem_worker_runqueue_latency_seconds_count{${l}} 15`);
  tick([1, 2, 3, 4, 5]);
  expect(await m.registry.metrics()).toContain(`premortem_worker_cpu_seconds_total{${l}} 0.02`);
  // Workers 1-3 retire: their series go, 5 takes a place.
  tick([4, 5]);
  text = await m.registry.metrics();
  expect(text.match(/^premortem_worker_rss_bytes\{/gm)).toHaveLength(2);
  expect(text).toMatch(/^premortem_metrics_workers_omitted 0$/m);
  // Service counters keep counting what retired workers did.
  expect(text).toContain('premortem_service_runqueue_latency_seconds_count{service="svc-a",unit="",cgroup="/"} 75');
  // Unknown cgroup usage and limit: absent, not 0; no PSI files here: no PSI series.
  expect(text).not.toContain('premortem_worker_cgroup_memory_usage_bytes{');
  expect(text).not.toContain('premortem_host_pressure_seconds_total{');
  expect(promtoolCheckMetrics(text).problems).toBe('');
  m.close();
});
