/**
 * /metrics scraped by a real Prometheus (Debian's /usr/bin/prometheus) on
 * 127.0.0.1: the real agent (runPremortem, real BPF probes, the server in its
 * capability-less child as in production) tracks a real gunicorn worker;
 * Prometheus scrapes every second; its HTTP API must return the worker's RSS
 * for its pid, records delivered, a runqueue histogram, and, after the worker
 * is killed, an incident counted by verdict and the dead pid's series gone.
 * Plus the cardinality bounds and histogram arithmetic on a scripted agent.
 */
import { ChildProcess } from 'child_process';
import { EventEmitter } from 'events';
import * as fs from 'fs';
import * as http from 'http';
import * as os from 'os';
import * as path from 'path';
import { runPremortem, type Running } from '../agent/run';
import { createLogger } from '../agent/log';
import { createMetrics, OTHER_SERVICE } from '../agent/metrics';
import type { Agent } from '../agent/agent';
import { killGroup, sleep, start, stopAll, waitFor } from './helpers/procs';
import { appDir, AppDir, freePort, get, gunicorn, ready, workersOf } from './helpers/services';

jest.setTimeout(55_000);

let app: AppDir;
let tmp: string;
let running: Running | undefined;
let prom: ChildProcess | undefined;
let promPort: number;

beforeAll(() => {
  app = appDir('metrics');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-metrics-'));
});

afterAll(async () => {
  if (prom) await killGroup(prom, 'SIGTERM');
  await running?.stop();
  await stopAll();
  app?.remove();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function getText(url: string): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    http.get(url, { timeout: 5000, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
    }).on('error', reject);
  });
}

interface PromResult { metric: Record<string, string>; value: [number, string] }

async function query(q: string): Promise<PromResult[]> {
  const r = await getText(`http://127.0.0.1:${promPort}/api/v1/query?query=${encodeURIComponent(q)}`);
  const j = JSON.parse(r.body) as { status: string; data: { resultType: string; result: PromResult[] }; error?: string };
  if (j.status !== 'success') throw new Error(`query ${q}: ${j.error}`);
  return j.data.result;
}

/** Polls a PromQL query until `ok` holds (Prometheus answers errors while it starts: retried). */
async function until(q: string, ok: (r: PromResult[]) => boolean, timeoutMs = 15_000): Promise<PromResult[]> {
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

test('a real Prometheus scrapes the agent: worker RSS by pid, records delivered, runqueue histogram, incidents by verdict', async () => {
  const port = await freePort();
  const master = gunicorn(app, port, ['-w', '1']);
  await ready(port);
  const [worker] = await workersOf(master, 1);

  running = await runPremortem(
    { host: '127.0.0.1', port: 0, dataDir: path.join(tmp, 'data'), intervalMs: 500, windowMs: 60_000, bundleWindowMs: 30_000,
      match: app.match, autoDiscover: false, discoveryIntervalMs: 300 },
    { logger: createLogger({ level: 'error' }) },
  );
  const agentPort = new URL(running.url!).port;
  await waitFor(() => running!.agent.snapshot().workers.some((w) => w.identity?.pid === worker && w.state === 'alive'), 10_000, 'the worker to be tracked');

  // The endpoint itself: Prometheus text format from prom-client.
  const direct = await getText(`http://127.0.0.1:${agentPort}/metrics`);
  expect(direct.status).toBe(200);
  expect(direct.type).toMatch(/^text\/plain; version=0\.0\.4/);
  expect(direct.body).toMatch(/# TYPE premortem_worker_runqueue_latency_seconds histogram/);

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

  // Traffic, so the worker waits for CPUs and faults pages in.
  for (let i = 0; i < 20; i++) await get(port, '/').catch(() => undefined);
  const up = await until('up{job="premortem"}', (r) => r.length === 1 && r[0].value[1] === '1', 20_000);
  expect(up[0].metric.instance).toBe(`127.0.0.1:${agentPort}`);

  const rss = await until(`premortem_worker_rss_bytes{pid="${worker}"}`, (r) => r.length === 1 && Number(r[0].value[1]) > 0);
  expect(rss[0].metric).toMatchObject({ pid: String(worker), role: 'worker' });
  expect(rss[0].metric.service).toMatch(/gunicorn|app/);
  const vmRss = Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${worker}/status`, 'utf8'))![1]) * 1024;
  expect(Number(rss[0].value[1])).toBeGreaterThan(vmRss * 0.5);
  expect(Number(rss[0].value[1])).toBeLessThan(vmRss * 2);

  const types = (await until('premortem_agent_records_delivered_total', (r) => r.length > 0)).map((r) => r.metric.type).sort();
  expect(types).toEqual(expect.arrayContaining(['exit', 'fork', 'signal', 'runq_slow', 'oom']));
  const counts = await until(`premortem_worker_runqueue_latency_seconds_count{pid="${worker}"}`, (r) => r.length === 1 && Number(r[0].value[1]) > 0);
  // +Inf bucket = count, within one scrape (two queries could straddle a scrape).
  const infMinusCount = await query(`premortem_worker_runqueue_latency_seconds_bucket{pid="${worker}",le="+Inf"} - ignoring(le) premortem_worker_runqueue_latency_seconds_count{pid="${worker}"}`);
  expect(infMinusCount).toHaveLength(1);
  expect(Number(infMinusCount[0].value[1])).toBe(0);
  expect(Number(counts[0].value[1])).toBeGreaterThan(0);
  const p99 = await query(`histogram_quantile(0.99, premortem_worker_runqueue_latency_seconds_bucket{pid="${worker}"})`);
  expect(Number(p99[0].value[1])).toBeGreaterThan(0);
  expect((await query('premortem_agent_resident_memory_bytes'))[0].value[1]).not.toBe('0');
  expect(Number((await query('premortem_agent_tracked_workers_alive'))[0].value[1])).toBeGreaterThanOrEqual(2);

  // A death: counted by verdict, and the dead pid's series leave the scrape (Prometheus marks them stale).
  process.kill(worker, 'SIGKILL');
  const incidents = await until('premortem_incidents_total{verdict="killed-by-other"}', (r) => r.length === 1 && r[0].value[1] === '1');
  expect(incidents[0].metric.service).toBe(rss[0].metric.service);
  await until(`premortem_worker_deaths_total{verdict="killed-by-other"}`, (r) => r.length === 1 && r[0].value[1] === '1');
  // The kill was seen as kernel records: a signal and an exit delivered (and the master's fork of a replacement).
  const delivered = await until('premortem_agent_records_delivered_total{type=~"signal|exit"}', (r) => r.length === 2 && r.every((x) => Number(x.value[1]) >= 1));
  expect(delivered.map((r) => r.metric.type).sort()).toEqual(['exit', 'signal']);
  await until(`premortem_worker_rss_bytes{pid="${worker}"}`, (r) => r.length === 0);
  expect((await getText(`http://127.0.0.1:${agentPort}/metrics`)).body).not.toContain(`pid="${worker}"`);
  await killGroup(master);
});

test('cardinality bounds: live workers capped, retired workers removed, services capped to _other; histogram from log2 slots', async () => {
  const agent = new EventEmitter() as unknown as Agent & EventEmitter;
  const services = ['a', 'b', 'c'].map((n) => ({ id: `id-${n}`, name: `svc-${n}` }));
  Object.assign(agent, {
    snapshot: () => ({ tMs: 0, services, workers: [] }),
    health: () => ({ startedMs: 0, trackedProcesses: 0, trackedWorkersAlive: 0, refusedOverCap: 0, records: { delivered: {}, dropped: {}, droppedTotal: 0 },
      features: [], memory: { rssBytes: 1, heapUsedBytes: 1, timelineBytes: 1 }, cpu: { userMs: 0, systemMs: 0 }, errors: {} }),
  });
  const m = createMetrics(agent, { maxWorkerSeries: 3, maxServices: 2 });
  const hist = new Array(32).fill(0);
  hist[0] = 1; hist[1] = 2; hist[3] = 4; hist[10] = 8; // <1 µs, [1,2) µs, [4,8) µs, [512,1024) µs
  const tick = (pids: number[]) => agent.emit('tick', {
    tMs: 0, intervalMs: 500, markers: [],
    workers: pids.map((pid) => ({ pid, startTicks: 1, serviceId: services[(pid - 1) % 3].id, bucket: { rssBytes: pid, runqHist: hist, cpuMs: 10 } })),
    services: services.map((s) => ({ serviceId: s.id, socketStates: { ESTABLISHED: 1 }, backlogDepth: 1, backlogMax: 8, workersAlive: 1 })),
  });
  tick([1, 2, 3, 4, 5]);
  let text = await m.registry.metrics();
  expect(text.match(/^premortem_worker_rss_bytes\{/gm)).toHaveLength(3);
  expect(text).toMatch(/^premortem_metrics_workers_omitted 2$/m);
  // svc-c is past maxServices: summed under _other.
  expect(text).toContain(`premortem_service_workers_alive{service="${OTHER_SERVICE}"} 1`);
  expect(text).not.toContain('service="svc-c"');
  // Cumulative buckets: le=1e-6 holds slot 0, le=4e-6 slots 0..2, le=1.6e-5 slots 0..4, le=0.001024 slots 0..10.
  expect(text).toContain('premortem_worker_runqueue_latency_seconds_bucket{service="svc-a",pid="1",role="unknown",le="0.000001"} 1');
  expect(text).toContain('premortem_worker_runqueue_latency_seconds_bucket{service="svc-a",pid="1",role="unknown",le="0.000004"} 3');
  expect(text).toContain('premortem_worker_runqueue_latency_seconds_bucket{service="svc-a",pid="1",role="unknown",le="0.000016"} 7');
  expect(text).toContain('premortem_worker_runqueue_latency_seconds_bucket{service="svc-a",pid="1",role="unknown",le="0.001024"} 15');
  expect(text).toContain('premortem_worker_runqueue_latency_seconds_count{service="svc-a",pid="1",role="unknown"} 15');
  tick([1, 2, 3, 4, 5]);
  expect(await m.registry.metrics()).toContain('premortem_worker_cpu_seconds_total{service="svc-a",pid="1",role="unknown"} 0.02');
  // Workers 1-3 retire: their series go, 4 and 5 take their places.
  tick([4, 5]);
  text = await m.registry.metrics();
  expect(text).not.toMatch(/pid="[123]"/);
  expect(text.match(/^premortem_worker_rss_bytes\{/gm)).toHaveLength(2);
  // Service counters keep counting what retired workers did.
  expect(text).toContain('premortem_service_runqueue_latency_seconds_count{service="svc-a"} 75');
  m.close();
});
