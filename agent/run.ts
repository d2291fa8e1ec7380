/**
 * `premortem run`: the agent, its post-mortem store and the viewer server,
 * wired together. Shutdown runs once and closes everything.
 */
import * as os from 'os';
import * as path from 'path';
import { createAgent, Agent, AGENT_VERSION } from './agent';
import type { AgentOptionsInput } from './config';
import { resolveOptions } from './config';
import { log, Logger } from './log';
import { projectRoot } from './native';
import { createBundleStore, BundleStore } from './store';
import { createServer, PremortemServer, ServerHooks } from './server';

export interface Running {
  agent: Agent;
  store: BundleStore;
  server?: PremortemServer;
  url?: string;
  stop(): Promise<void>;
}

export interface RunExtras {
  logger?: Logger;
  /** Extra routes (e.g. /metrics), installed on the server. */
  extraRoutes?: ServerHooks['extraRoutes'];
  staticDir?: string;
}

export async function runPremortem(input: AgentOptionsInput, extras: RunExtras = {}): Promise<Running> {
  const options = resolveOptions(input);
  const logger = extras.logger ?? log;
  const store = createBundleStore({ dir: options.dataDir, quotaBytes: options.quotaBytes, maxBundles: options.maxBundles,
    retentionDays: options.retentionDays, logger });
  try {
    await store.ready();
  } catch (e) {
    // The agent traces on without a writable data directory; health says why.
    logger.error(`post-mortem store unavailable: ${(e as Error).message}`, { dir: options.dataDir });
  }
  const agent = createAgent(options, { store, logger });
  await agent.start();

  let server: PremortemServer | undefined;
  let url: string | undefined;
  if (options.port !== null) {
    server = createServer({
      host: options.host, port: options.port, token: options.token, store,
      staticDir: extras.staticDir ?? path.join(projectRoot(), 'dist', 'viewer'),
      agentVersion: AGENT_VERSION, intervalMs: options.intervalMs, windowMs: options.windowMs, logger, hostName: os.hostname(),
      hooks: {
        health: () => ({ ...agent.health(), store: store.health() }),
        features: () => agent.features(),
        snapshot: () => agent.snapshot(),
        history: (key, from, to) => agent.history(key, from, to),
        extraRoutes: extras.extraRoutes,
      },
    });
    agent.on('tick', (delta) => server!.broadcastDelta(delta));
    agent.on('topology', () => server!.publishSnapshot(agent.snapshot()));
    agent.on('death', (d) => server!.broadcastDeath(d));
    agent.on('bundle', (incident) => server!.broadcastBundleReady(incident));
    agent.on('lost', (l) => server!.broadcastLost(l));
    try {
      ({ url } = await server.listen());
    } catch (e) {
      await agent.stop();
      throw e;
    }
  }

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const results = await Promise.allSettled([server?.close(), agent.stop()]);
      await store.close().catch(() => undefined); // after the agent: flushes bundles being written
      for (const r of results) if (r.status === 'rejected') logger.error('shutdown step failed', { error: String(r.reason) });
    })());
  return { agent, store, server, url, stop };
}
