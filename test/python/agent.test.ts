/**
 * Issue 14 §3 end to end: GC pauses of pythons without USDT probes reach the
 * agent's timelines, and its features say which method each interpreter got.
 * pyenv 3.12 (uprobe on gc_collect_main, generations read) and 3.8 (uprobes on
 * the collector's compiler clones, generation unknown: still pauses).
 */
import { ChildProcess } from 'child_process';
import { createAgent, Agent } from '../../agent/agent';
import { createLogger } from '../../agent/log';
import { printed, start, stopAll, waitFor } from '../helpers/procs';
import { GC_SCRIPT, GcOwnStats, pyenvLibpython, pyenvPython } from '../helpers/python';

let agent: Agent;

beforeAll(async () => {
  agent = createAgent({ port: null, intervalMs: 500, windowMs: 60_000, bundleWindowMs: 30_000, autoDiscover: false, probes: ['lifecycle', 'pygc'] },
    { logger: createLogger({ level: 'warn' }) });
  await agent.start();
});

afterAll(async () => {
  await agent?.stop();
  await stopAll();
});

async function gcRun(minor: number): Promise<{ child: ChildProcess; own: GcOwnStats }> {
  const child = start(pyenvPython(minor), ['-c', GC_SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
  await printed(child, /ready/);
  expect(agent.trackPid(child.pid!)).toBe(true);
  child.stdin!.write('go\n');
  const line = await printed(child, /done (\{.*\})/, 60000);
  return { child, own: JSON.parse(line.slice(5)) };
}

test.each([12, 8])('pyenv Python 3.%i: every collection is a GC pause in the timeline; the feature names the uprobe', async (minor) => {
  const { child, own } = await gcRun(minor);
  const total = own['0'][0] + own['1'][0] + own['2'][0];
  const w = agent.snapshot().workers.find((x) => x.identity?.pid === child.pid)!;
  const buckets = await waitFor(() => {
    const b = agent.history(`${child.pid}:${w.identity!.startTicks}`, 0, Infinity).timelines[0]?.buckets ?? [];
    return b.reduce((n, x) => n + x.gcPauses, 0) === total && b;
  }, 8000, `${total} GC pauses in the timeline of pid ${child.pid}`);
  expect(Math.max(...buckets.map((b) => b.gcMaxPauseNs))).toBeGreaterThan(own['2'][1] * 0.5);
  const feature = agent.features().find((f) => f.name === `gc-uprobe ${pyenvLibpython(minor)}`);
  expect(feature).toMatchObject({ enabled: true });
  expect(feature!.reason).toMatch(minor === 8 ? /collect\.constprop/ : /gc_collect_main\(\)/);
});
