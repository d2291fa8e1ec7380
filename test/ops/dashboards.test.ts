/**
 * The shipped dashboard (deploy/grafana/premortem.json) and alerting rules
 * (deploy/prometheus/premortem-rules.yml):
 *   - `promtool check rules` accepts the rules and `promtool test rules` runs
 *     their unit tests (input series for each alert, firing and quiet);
 *   - every dashboard query is valid PromQL (promtool checks it as a rule);
 *   - every metric name a dashboard query, a dashboard variable or a rule uses
 *     is on the real /metrics page of a real agent (server process as in
 *     production) tracking a real gunicorn in a memory-limited cgroup whose
 *     worker was killed five times (deaths, post-mortems, a restart-storm marker).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { runPremortem, type Running } from '../../agent/run';
import { createLogger } from '../../agent/log';
import { sleep, stopAll, waitFor } from '../helpers/procs';
import { appDir, AppDir, childrenOf, freePort, get, gunicorn, ready, workersOf } from '../helpers/services';
import { createMemoryCgroup, type TestMemoryCgroup } from '../helpers/cgroup';
import { getText, namesOnPage, promtoolCheckMetrics, PROMTOOL, samplesOf } from '../helpers/metrics';

jest.setTimeout(90_000);

const ROOT = path.resolve(__dirname, '..', '..');
const RULES_DIR = path.join(ROOT, 'deploy', 'prometheus');
const RULES = path.join(RULES_DIR, 'premortem-rules.yml');
const DASHBOARD = path.join(ROOT, 'deploy', 'grafana', 'premortem.json');

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'bool', 'offset', 'inf', 'nan']);

/** Metric names in a PromQL expression: identifiers outside label matchers, ranges and grouping lists that are not functions or keywords. */
function metricNames(expr: string): string[] {
  const e = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\b(group_left|group_right)\b/g, ' ');
  const names = new Set<string>();
  for (const m of e.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const before = e[m.index! - 1] ?? ' ';
    if (/[0-9.]/.test(before)) continue; // 1e6, 2.5e-3
    if (e.slice(m.index! + m[0].length).trimStart().startsWith('(')) continue; // a function
    if (KEYWORDS.has(m[0].toLowerCase())) continue;
    names.add(m[0]);
  }
  return [...names];
}

/** Grafana's variables, replaced by values Prometheus accepts. */
const concrete = (expr: string) => expr
  .replace(/\$__rate_interval|\$__range|\$__interval/g, '5m')
  .replace(/\$\{?(instance|service)\}?/g, '.*');

function dashboardQueries(d: Obj): string[] {
  const exprs: string[] = [];
  const walk = (panels: Obj[]) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) exprs.push(t.expr);
      if (p.panels) walk(p.panels);
    }
  };
  walk(d.panels);
  return exprs;
}

function variableQueries(d: Obj): string[] {
  return (d.templating.list as Obj[]).filter((v) => v.type === 'query')
    .map((v) => /^label_values\((.*),\s*\w+\)$/.exec(v.definition)?.[1] ?? v.definition);
}

function ruleExprs(): Array<{ name: string; expr: string }> {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const yaml = require('js-yaml') as { safeLoad(text: string): Obj };
  const doc = yaml.safeLoad(fs.readFileSync(RULES, 'utf8'));
  return (doc.groups as Obj[]).flatMap((g) => (g.rules as Obj[]).map((r) => ({ name: r.alert ?? r.record, expr: String(r.expr) })));
}

const promtool = (args: string[], cwd = RULES_DIR) => {
  if (!fs.existsSync(PROMTOOL)) throw new Error(`${PROMTOOL} is missing: scripts/setup.sh --test installs Debian's prometheus package`);
  const r = spawnSync(PROMTOOL, args, { cwd, encoding: 'utf8', timeout: 60_000 });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
};

let app: AppDir;
let tmp: string;
let cgroup: TestMemoryCgroup | undefined;
let running: Running | undefined;

beforeAll(() => {
  app = appDir('dash');
  tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-dash-'));
});

afterAll(async () => {
  await running?.stop();
  await stopAll();
  await cgroup?.remove();
  app?.remove();
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('promtool check rules, and promtool test rules with input series for every alert', () => {
  const check = promtool(['check', 'rules', RULES]);
  expect(check.out).toMatch(/SUCCESS: \d+ rules found/);
  expect(check.status).toBe(0);
  const unit = promtool(['test', 'rules', 'premortem-rules.test.yml']);
  expect(unit.out).toMatch(/SUCCESS/);
  expect(unit.status).toBe(0);
  // Each alert has a unit test that expects it to fire.
  const tests = fs.readFileSync(path.join(RULES_DIR, 'premortem-rules.test.yml'), 'utf8');
  for (const { name } of ruleExprs().filter((r) => /^Premortem/.test(r.name))) {
    expect(tests).toMatch(new RegExp(`alertname: ${name}\\n\\s+exp_alerts:\\n\\s+- exp_labels`));
  }
});

test('the dashboard: well-formed, every query valid PromQL on the ${datasource} variable', () => {
  const d = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as Obj;
  expect(d).toMatchObject({ uid: 'premortem', title: expect.any(String), schemaVersion: expect.any(Number) });
  expect((d.templating.list as Obj[]).map((v) => v.name)).toEqual(['datasource', 'instance', 'service']);
  const ids = (d.panels as Obj[]).map((p) => p.id);
  expect(new Set(ids).size).toBe(ids.length);
  for (const p of d.panels as Obj[]) {
    expect(p.gridPos.x + p.gridPos.w).toBeLessThanOrEqual(24);
    if (p.type === 'row') continue;
    expect(p.datasource).toEqual({ type: 'prometheus', uid: '${datasource}' });
    expect(p.targets.length).toBeGreaterThan(0);
  }
  const queries = dashboardQueries(d);
  expect(queries.length).toBeGreaterThanOrEqual(15);
  // promtool parses each query as a recording rule.
  const file = path.join(tmp, 'dashboard-queries.yml');
  fs.writeFileSync(file, `groups:\n  - name: dashboard\n    rules:\n${queries.map((q, i) => `      - record: dashboard:query_${i}\n        expr: ${JSON.stringify(concrete(q))}\n`).join('')}`);
  const check = promtool(['check', 'rules', file], tmp);
  expect(check.out).toMatch(new RegExp(`SUCCESS: ${queries.length} rules found`));
  expect(check.status).toBe(0);
});

test('every metric name the dashboard and the rules use is on the real /metrics page of an agent tracking a real gunicorn', async () => {
  cgroup = createMemoryCgroup(`pm-dash-${process.pid}`, 512 * 2 ** 20);
  const port = await freePort();
  const master = gunicorn(app, port, ['-w', '1'], { prefix: ['/bin/sh', '-c', `echo $$ > ${cgroup.dir}/cgroup.procs && exec "$@"`, 'sh'] });
  await ready(port);
  let [worker] = await workersOf(master, 1);
  running = await runPremortem(
    { host: '127.0.0.1', port: 0, dataDir: path.join(tmp, 'data'), intervalMs: 500, windowMs: 60_000, bundleWindowMs: 10_000,
      match: app.match, autoDiscover: false, discoveryIntervalMs: 300 },
    { logger: createLogger({ level: 'error' }), privilegeSeparation: true },
  );
  const metricsUrl = new URL('metrics', running.url).toString();
  await waitFor(() => running!.agent.snapshot().workers.some((w) => w.identity?.pid === worker && w.state === 'alive'), 15_000, 'the worker to be tracked');
  for (let i = 0; i < 20; i++) await get(port, '/').catch(() => undefined);
  // Five failures within a minute: deaths by verdict, post-mortems, and the agent's restart-storm marker.
  for (let kill = 0; kill < 5; kill++) {
    process.kill(worker, 'SIGKILL');
    const prev = worker;
    [worker] = await waitFor(() => {
      const kids = childrenOf(master.pid!).filter((pid) => pid !== prev);
      return kids.length ? kids : undefined;
    }, 15_000, `gunicorn to replace worker ${prev}`);
    await waitFor(() => running!.agent.snapshot().workers.some((w) => w.identity?.pid === worker && w.state === 'alive'), 15_000, `worker ${worker} to be tracked`);
    await get(port, '/').catch(() => undefined);
  }
  let page = '';
  const deadline = Date.now() + 20_000;
  for (;;) {
    page = (await getText(metricsUrl)).body;
    if (samplesOf(page, 'premortem_service_markers_total', { kind: 'restart-storm' }).length && samplesOf(page, 'premortem_incidents_total').length
      && samplesOf(page, 'premortem_worker_cgroup_memory_limit_bytes').length && samplesOf(page, 'premortem_service_backlog_max').length) break;
    if (Date.now() > deadline) throw new Error(`the page never showed a restart storm, incidents, a cgroup limit and a backlog maximum:\n${page.slice(0, 3000)}`);
    await sleep(250);
  }
  expect(promtoolCheckMetrics(page).problems).toBe('');
  expect(samplesOf(page, 'premortem_worker_cgroup_memory_limit_bytes', { role: 'worker' })[0].value).toBe(cgroup.limitBytes);
  const onPage = namesOnPage(page);
  const d = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8')) as Obj;
  const used = new Map<string, string>();
  for (const q of [...dashboardQueries(d), ...variableQueries(d)]) for (const n of metricNames(q)) used.set(n, `dashboard: ${q}`);
  for (const r of ruleExprs()) for (const n of metricNames(r.expr)) used.set(n, `rule ${r.name}: ${r.expr}`);
  expect(used.size).toBeGreaterThanOrEqual(20);
  const missing = [...used].filter(([n]) => !onPage.has(n)).map(([n, where]) => `${n} (${where})`);
  expect(missing).toEqual([]);
});

test('metricNames reads PromQL as Prometheus does', () => {
  expect(metricNames('histogram_quantile(0.99, sum by (instance, le) (rate(a_bucket{x="y{z}"}[5m])))')).toEqual(['a_bucket']);
  expect(metricNames('rate(b_total[1m]) * on (instance, job) group_left c_info / 2^30')).toEqual(['b_total', 'c_info']);
  expect(metricNames('x / y > 1e6 and z offset 5m')).toEqual(['x', 'y', 'z']);
});
