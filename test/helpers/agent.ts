/**
 * A real agent for a test file (real probes, real store on a temp dir), that
 * tracks only the processes started in the test's own app dir (--match), and
 * records what it says: deaths, post-mortems and markers. One per file:
 * `const t = useTestAgent('tag', options)` in the file's top level.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createAgent, type Agent } from '../../agent/agent';
import type { AgentOptionsInput } from '../../agent/config';
import { createLogger, type Level } from '../../agent/log';
import { createBundleStore, type BundleStore } from '../../agent/store';
import type { Bundle, Death, IncidentSummary, Marker } from '../../proto/codec';
import { stopAll, waitFor } from './procs';
import { appDir, type AppDir } from './services';

export interface TestAgent {
  agent: Agent;
  store: BundleStore;
  app: AppDir;
  dataDir: string;
  deaths: Death[];
  /** Post-mortems written (the incident and the bundle as the agent emitted it), with when the agent said so. */
  bundles: Array<{ incident: IncidentSummary; bundle: Bundle; atMs: number }>;
  markers: Marker[];
  /** The judged death of `pid` (its first). */
  deathOf(pid: number, timeoutMs?: number): Promise<Death>;
  /** The post-mortem of `pid` once written (the incident), and the bundle read back from disk. */
  bundleOf(pid: number, timeoutMs?: number): Promise<{ incident: IncidentSummary; bundle: Bundle }>;
  /** Resolves once `pid` is tracked and alive. */
  tracked(pid: number, timeoutMs?: number): Promise<void>;
}

/**
 * Starts the agent in beforeAll and stops everything (agent, store, processes, app dir) in afterAll
 * (before the file's own afterAll hooks declared after this call: jest runs them in order).
 */
export function useTestAgent(tag: string, options: AgentOptionsInput = {}, { logLevel = 'error' }: { logLevel?: Level } = {}): TestAgent {
  const t = { deaths: [], bundles: [], markers: [] } as unknown as TestAgent;
  beforeAll(async () => {
    t.app = appDir(tag);
    t.dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `pm-${tag}-data-`));
    t.store = createBundleStore({ dir: t.dataDir, logger: createLogger({ level: 'error' }) });
    await t.store.ready();
    t.agent = createAgent({
      port: null, dataDir: t.dataDir, intervalMs: 500, windowMs: 120_000, bundleWindowMs: 60_000, match: t.app.match,
      autoDiscover: false, discoveryIntervalMs: 500, ...options,
    }, { store: t.store, logger: createLogger({ level: logLevel }) });
    t.agent.on('death', (d) => t.deaths.push(d));
    t.agent.on('bundle', (incident, bundle) => t.bundles.push({ incident, bundle, atMs: Date.now() }));
    t.agent.on('tick', (tick) => t.markers.push(...tick.markers));
    await t.agent.start();
  });
  afterAll(async () => {
    await t.agent?.stop();
    await t.store?.close();
    await stopAll();
    t.app?.remove();
    if (t.dataDir) fs.rmSync(t.dataDir, { recursive: true, force: true });
  });
  // pids wrap around (32768 here) while tests fork thousands: a pid seen tracked is matched by its identity.
  const startTicksOf = new Map<number, number>();
  t.deathOf = (pid, timeoutMs = 15_000) => waitFor(() => t.deaths.find((d) => d.identity?.pid === pid
    && (!startTicksOf.has(pid) || d.identity.startTicks === startTicksOf.get(pid))), timeoutMs, `the death of pid ${pid}`);
  t.bundleOf = async (pid, timeoutMs = 10_000) => {
    const { incident } = await waitFor(() => t.bundles.find((b) => b.incident.pid === pid
      && (!startTicksOf.has(pid) || b.incident.startTicks === startTicksOf.get(pid))), timeoutMs, `the post-mortem of pid ${pid}`);
    return { incident, bundle: await t.store.read(incident.id) };
  };
  t.tracked = async (pid, timeoutMs = 10_000) => {
    const w = await waitFor(() => t.agent.snapshot().workers.find((x) => x.identity?.pid === pid && x.state === 'alive'), timeoutMs, `pid ${pid} to be tracked`);
    startTicksOf.set(pid, w.identity!.startTicks);
  };
  return t;
}
