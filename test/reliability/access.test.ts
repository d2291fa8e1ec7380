/**
 * Reliability 8: access, end to end (CLI agent with the privilege-separated
 * server) bound OFF loopback: a dummy interface pm0 with 10.213.0.1/32 (local
 * only; removed after; where the kernel has no dummy driver the address goes
 * on lo, which is still not a 127/8 address and still local). Every HTTP, REST and WebSocket request without the
 * token gets 401, a foreign Origin 403; the token comes from --token-file,
 * created 0600 with a random token when absent and refused when others can read
 * it; bundles are 0600 in a 0700 directory; the server compares the token with
 * timingSafeEqual (asserted on the source: a timing test would be noise).
 * Existing coverage: test/unit/server.test.ts checks the same rules on the bare
 * server bound to 127.0.0.2; test/unit/store.test.ts checks bundle modes.
 */
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { killGroup, stopAll } from '../helpers/procs';
import { CLI, healthOf, httpGet, ROOT, startCliAgent, upgradeStatus, type CliAgent } from '../soak/harness';
import { loadTokenFile } from '../../agent/cli';
import { createBundleStore } from '../../agent/store';

const IFACE = 'pm0';
const ADDR = '10.213.0.1';
let dir: string;
let agent: CliAgent | undefined;

let iface = IFACE;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-access-'));
  try {
    execFileSync('ip', ['link', 'add', IFACE, 'type', 'dummy'], { stdio: 'pipe' });
    execFileSync('ip', ['link', 'set', IFACE, 'up']);
  } catch {
    iface = 'lo'; // no dummy driver in this kernel: a non-127 address on lo is just as local
  }
  execFileSync('ip', ['addr', 'add', `${ADDR}/32`, 'dev', iface]);
});
afterAll(async () => {
  if (agent) await killGroup(agent.child, 'SIGTERM');
  await stopAll();
  try {
    if (iface === IFACE) execFileSync('ip', ['link', 'del', IFACE]);
    else execFileSync('ip', ['addr', 'del', `${ADDR}/32`, 'dev', iface]);
  } catch { /* already gone */ }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('token file: created 0600 with a random token, reused, refused when others can read it', () => {
  const f = path.join(dir, 'token');
  const t1 = loadTokenFile(f);
  expect(fs.statSync(f).mode & 0o777).toBe(0o600);
  expect(t1.length).toBeGreaterThanOrEqual(40);
  expect(loadTokenFile(f)).toBe(t1);
  expect(loadTokenFile(path.join(dir, 'token2'))).not.toBe(t1);
  fs.chmodSync(f, 0o644);
  expect(() => loadTokenFile(f)).toThrow(/mode 0644: others can read it/);
  fs.chmodSync(f, 0o600);
  // The CLI refuses to bind off loopback without a token.
  let err = '';
  try { execFileSync(process.execPath, [CLI, 'run', '--host', ADDR, '--port', '0', '--data-dir', dir], { stdio: 'pipe', timeout: 10_000 }); } catch (e) { err = String((e as { stderr: Buffer }).stderr); }
  expect(err).toMatch(/requires a token/);
});

test(`bound to ${ADDR} (not loopback): 401 without the token (HTTP, REST, WS), 403 for a foreign Origin, 200/101 with it`, async () => {
  const tokenFile = path.join(dir, 'agent-token');
  agent = await startCliAgent(['--host', ADDR, '--token-file', tokenFile, '--no-auto', '--data-dir', path.join(dir, 'data')]);
  expect(fs.statSync(tokenFile).mode & 0o777).toBe(0o600);
  const token = fs.readFileSync(tokenFile, 'utf8').trim();
  const base = agent.url;
  expect(new URL(base).hostname).toBe(ADDR);
  const ws = base.replace(/^http/, 'ws') + 'ws';
  const auth = { Authorization: `Bearer ${token}` };
  const results: Record<string, number> = {};
  for (const p of ['', 'index.html', 'api/health', 'api/incidents', 'api/incidents/x.pb', 'api/incidents/x.json', 'metrics', 'nope']) {
    results[`GET /${p}`] = (await httpGet(base + p)).status;
    results[`GET /${p} wrong token`] = (await httpGet(base + p, { Authorization: `Bearer ${token.slice(0, -1)}x` })).status;
    results[`GET /${p} ?token=wrong`] = (await httpGet(`${base}${p}?token=nope${'x'.repeat(20)}`)).status;
  }
  results['POST /api/health'] = (await httpGet(base + 'api/health', {}, 'POST')).status;
  results['WS'] = await upgradeStatus(ws);
  results['WS wrong token'] = await upgradeStatus(ws, { headers: { Authorization: 'Bearer nope-nope-nope-nope' } });
  for (const [what, status] of Object.entries(results)) expect([what, status]).toEqual([what, 401]);
  // Foreign Origin: 403 even with the token.
  expect((await httpGet(base + 'api/health', { ...auth, Origin: 'http://evil.example' })).status).toBe(403);
  expect(await upgradeStatus(ws, { headers: { ...auth, Origin: 'http://evil.example' } })).toBe(403);
  // With the token: served.
  expect((await healthOf(base, auth)).ok).toBe(true);
  expect((await httpGet(base + 'api/incidents', auth)).status).toBe(200);
  expect(await upgradeStatus(ws, { headers: auth })).toBe(101);
  expect(await upgradeStatus(`${ws}?token=${token}`)).toBe(101);
  console.log(`access off loopback (${ADDR}): ${Object.keys(results).length} requests without a valid token, all 401; foreign Origin 403 (HTTP and WS)`);
});

test('the token comparison is constant time (timingSafeEqual over digests), and bundles are 0600 in a 0700 directory', async () => {
  const src = fs.readFileSync(path.join(ROOT, 'agent', 'server', 'access.ts'), 'utf8');
  expect(src).toMatch(/timingSafeEqual\(sha256\(candidate\), digest\)/);
  expect(src).not.toMatch(/===\s*token\b|token\s*===/);
  const store = createBundleStore({ dir: path.join(dir, 'bundles') });
  await store.ready();
  const res = await store.write({ worker: { pid: 1 }, verdict: { kind: 'crashed', tMs: Date.now() } as never });
  expect(fs.statSync(res.path).mode & 0o777).toBe(0o600);
  expect(fs.statSync(path.join(dir, 'bundles')).mode & 0o777).toBe(0o700);
  await store.close();
});
