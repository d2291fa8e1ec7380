/**
 * Smoke run of `npm run bench`: one round of 1 s of W1 (none and premortem,
 * real gunicorn, real agent, a real viewer client) and a brief ingest run.
 * Asserts only that the results are well formed — the figures themselves are
 * the benchmark's business, not a test's.
 */
import { spawn } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const RUN = path.resolve(__dirname, '..', '..', 'dist', 'bench', 'run.js');
const isNum = (x: unknown) => typeof x === 'number' && Number.isFinite(x);

let out: string;
beforeAll(() => {
  out = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-bench-smoke-'));
});
afterAll(() => {
  fs.rmSync(out, { recursive: true, force: true });
});

test('bench --smoke produces well-formed JSON and Markdown results', async () => {
  expect(fs.existsSync(RUN)).toBe(true); // npm test builds first (scripts/setup.sh)
  const child = spawn(process.execPath, [RUN, '--smoke', '--out', out, '--seed', '1'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d) => (log += d));
  child.stderr.on('data', (d) => (log += d));
  const code = await new Promise<number | null>((resolve) => {
    const t = setTimeout(() => child.kill('SIGINT'), 75_000); // the bench cleans up on SIGINT
    child.once('exit', (c) => {
      clearTimeout(t);
      resolve(c);
    });
  });
  if (code !== 0) throw new Error(`bench --smoke exited ${code}:\n${log.slice(-3000)}`);

  const json = fs.readdirSync(out).find((f) => /^bench-smoke-.*\.json$/.test(f));
  const md = fs.readdirSync(out).find((f) => /^bench-smoke-.*\.md$/.test(f));
  expect(json).toBeDefined();
  expect(md).toBeDefined();
  const r = JSON.parse(fs.readFileSync(path.join(out, json!), 'utf8'));
  expect(r.schema).toBe('premortem-bench/1');
  expect(r.errors).toEqual([]);
  expect(r.machine.cpus).toBeGreaterThan(0);

  // Overhead: W1 with none and premortem, one pair.
  expect(r.overhead).toHaveLength(1);
  const w1 = r.overhead[0];
  expect(w1.name).toBe('W1');
  expect(typeof w1.inconclusive).toBe('boolean');
  expect(w1.runs.map((x: { condition: string }) => x.condition)).toEqual(['none', 'premortem', 'none']);
  for (const run of w1.runs) {
    expect(run.rps).toBeGreaterThan(0);
    expect(isNum(run.p99Ms)).toBe(true);
    expect(run.ctxtPerRequest).toBeGreaterThan(0);
  }
  const pm = w1.runs[1];
  // Measured for the traced run only; a short smoke run of a light agent may round to 0 clock ticks.
  expect(isNum(pm.tracerCpuPct)).toBe(true);
  expect(pm.tracerCpuPct).toBeGreaterThanOrEqual(0);
  expect(w1.runs[0].tracerCpuPct).toBeNull();
  expect(pm.viewerFrames).toBeGreaterThanOrEqual(0);
  const c = w1.conditions.find((x: { condition: string }) => x.condition === 'premortem');
  expect(c.pairs).toBe(1);
  for (const k of ['rpsRatio', 'p99Ratio', 'tracerCpuPct', 'ctxtInflationPerRequest', 'ctxtInflationPerSec']) expect(isNum(c[k])).toBe(true);

  // Ingest: exact accounting at overload.
  expect(r.ingest.accountingExact).toBe(true);
  expect(r.ingest.overload.dropped).toBeGreaterThan(0);
  expect(r.ingest.overload.produced).toBe(r.ingest.overload.delivered + r.ingest.overload.dropped);
  expect(r.ingest.bestZeroLossPerSec).toBeGreaterThan(0);

  // Steps not in the smoke run are null, and every target has a status.
  expect(r.memory).toBeNull();
  expect(r.latency).toBeNull();
  expect(r.programCost).toBeNull();
  expect(r.targets.length).toBeGreaterThan(5);
  for (const t of r.targets) expect(['met', 'missed', 'inconclusive', 'not run']).toContain(t.status);
  expect(r.targets.find((t: { id: string }) => t.id === 'W1-rps').status).not.toBe('not run');

  const text = fs.readFileSync(path.join(out, md!), 'utf8');
  expect(text).toMatch(/^# premortem benchmarks/);
  expect(text).toContain('| premortem | 1 |');

  // Nothing left behind: the bench's cgroup (named after its pid) and its children are gone.
  expect(fs.existsSync(`/sys/fs/cgroup/memory/pm-bench-${child.pid}`)).toBe(false);
  expect(fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
    try { return fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1].split(' ')[1] === String(child.pid); } catch { return false; }
  })).toEqual([]);
}, 90_000);
