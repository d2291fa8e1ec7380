/**
 * What runs next to the workload in one overhead run: nothing, premortem
 * (with or without a viewer draining its stream), premortem with one feature
 * off (`premortem-no-<feature>`, bench/features.ts), or the libbpf-tools users
 * would pick instead. Each condition reports the pids whose CPU is its cost
 * (the agent's whole process tree: tracer and server process).
 */
import { ChildProcess } from 'child_process';
import { AgentProc, connectViewer, startAgent, Viewer, waitTracked } from './agentproc';
import { ABLATION_PREFIX, Feature } from './features';
import { bpfObjectsOf, ensureTracefs, killGroup, output, start, waitFor } from './lib';

export const CONDITIONS = ['none', 'premortem', 'premortem-noclient', 'runqlat', 'tcpstates', 'libbpf-tools'] as const;
export type FixedCondition = (typeof CONDITIONS)[number];
/** A fixed condition, or `premortem-no-<feature>`. */
export type Condition = FixedCondition | `${typeof ABLATION_PREFIX}${string}`;
export const TRACERS: Condition[] = CONDITIONS.filter((c) => c !== 'none');

export function describe(c: Condition, features: Feature[] = []): string {
  if (c.startsWith(ABLATION_PREFIX)) {
    const f = features.find((x) => `${ABLATION_PREFIX}${x.name}` === c);
    return `premortem with ${c.slice(ABLATION_PREFIX.length)} off (${f?.how ?? '?'}), one viewer client`;
  }
  return DESCRIPTIONS[c as FixedCondition];
}

export const DESCRIPTIONS: Record<FixedCondition, string> = {
  none: 'no tracer',
  premortem: 'premortem run, all probes, one viewer client draining the WebSocket stream',
  'premortem-noclient': 'premortem run, all probes, server up, no client',
  runqlat: 'libbpf-tools runqlat (in-kernel histogram, printed at exit)',
  tcpstates: 'libbpf-tools tcpstates (a perf-buffer record per TCP transition, output to /dev/null)',
  'libbpf-tools': 'runqlat + tcpstates + biolatency + exitsnoop together (outputs to /dev/null)',
};

export interface Running {
  condition: Condition;
  /** Process trees whose CPU is the tracer's cost. */
  pids: number[];
  agent?: AgentProc;
  viewer?: Viewer;
  stop(): Promise<void>;
}

const TOOLS: Record<string, string[]> = {
  runqlat: ['/usr/sbin/runqlat'],
  tcpstates: ['/usr/sbin/tcpstates'],
  biolatency: ['/usr/sbin/biolatency'],
  exitsnoop: ['/usr/sbin/exitsnoop'],
};

async function startTool(name: string): Promise<ChildProcess> {
  ensureTracefs();
  const [cmd, ...args] = TOOLS[name];
  // stdout to /dev/null: the cheapest sink a streaming tool can have.
  const c = start(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
  const out = output(c);
  await waitFor(() => {
    if (c.exitCode !== null) throw new Error(`${name} exited ${c.exitCode}: ${out.text().slice(-400)}`);
    return bpfObjectsOf(c.pid!).links > 0;
  }, 15000, `${name} attached`);
  return c;
}

export interface ConditionContext {
  /** --match for the agent. */
  match: string;
  /** Live processes the agent must track before the run starts. */
  expectTracked: number;
  intervalMs?: number;
  /** The features premortem-no-<feature> conditions may name. */
  features?: Feature[];
}

export async function startCondition(condition: Condition, ctx: ConditionContext): Promise<Running> {
  if (condition === 'none') return { condition, pids: [], stop: async () => undefined };
  if (condition === 'premortem' || condition === 'premortem-noclient' || condition.startsWith(ABLATION_PREFIX)) {
    const off = condition.startsWith(ABLATION_PREFIX) ? ctx.features?.find((f) => `${ABLATION_PREFIX}${f.name}` === condition) : undefined;
    if (condition.startsWith(ABLATION_PREFIX) && !off) throw new Error(`unknown feature in condition ${condition}`);
    const agent = await startAgent({ match: ctx.match, intervalMs: ctx.intervalMs, extra: off?.offArgs });
    try {
      await waitTracked(agent, ctx.expectTracked);
      const viewer = condition !== 'premortem-noclient' ? await connectViewer(agent.wsUrl!) : undefined;
      return {
        condition, pids: [agent.pid], agent, viewer,
        async stop() {
          viewer?.close();
          await agent.stop();
        },
      };
    } catch (e) {
      await agent.stop();
      throw e;
    }
  }
  const names = condition === 'libbpf-tools' ? ['runqlat', 'tcpstates', 'biolatency', 'exitsnoop'] : [condition];
  const procs: ChildProcess[] = [];
  try {
    for (const n of names) procs.push(await startTool(n));
  } catch (e) {
    await Promise.all(procs.map((p) => killGroup(p, 'SIGINT', 3000)));
    throw e;
  }
  return {
    condition, pids: procs.map((p) => p.pid!),
    async stop() {
      await Promise.all(procs.map((p) => killGroup(p, 'SIGINT', 3000)));
    },
  };
}
