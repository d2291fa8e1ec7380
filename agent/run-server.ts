/**
 * The viewer server of `premortem run`, wired to a running agent: its routes
 * (health, readiness, the why route, /metrics), its configuration, and the
 * agent's events broadcast to the viewers. In a capability-free child process
 * when this one holds capabilities (agent/server/process.ts).
 */
import * as os from 'os';
import * as path from 'path';
import { Agent, AGENT_VERSION } from './agent';
import type { AgentOptions } from './config';
import type { HealthMonitor } from './health';
import { livenessLimitMs } from './health';
import type { Logger } from './log';
import type { Metrics } from './metrics';
import { projectRoot } from './native';
import { createServer, PremortemServer, ServerHooks } from './server';
import { holdsCapabilities, startServerProcess } from './server/process';
import { whyRoute, WHY_ROUTE_PATH } from './server/why';
import type { BundleStore } from './store';
import type { Feature } from '../proto/codec';

/** Longest a viewer waits for a topology change (services, workers born and dead). */
export const SNAPSHOT_COALESCE_MS = 200;

export interface ViewerServerParts {
  agent: Agent;
  store: BundleStore;
  health: HealthMonitor;
  features: () => Feature[];
  options: AgentOptions;
  logger: Logger;
  /** Served at its path when present (`--no-metrics`: absent). */
  metrics?: Metrics;
  /** A caller's own routes; then every other path may wait for the agent too. */
  extraRoutes?: ServerHooks['extraRoutes'];
  staticDir?: string;
  privilegeSeparation?: boolean;
}

function serverHooks(p: ViewerServerParts): ServerHooks {
  const { agent, store, health, features, metrics } = p;
  const serveWhy = whyRoute(agent); // GET /api/workers/:worker/why
  const extraRoutes: ServerHooks['extraRoutes'] = (req, res, url) => serveWhy(req, res, url)
    || (metrics?.handle(req, res, url) ?? false) || (p.extraRoutes?.(req, res, url) ?? false);
  return {
    health: () => ({ ...agent.health(), features: features(), store: store.health(), ...health.liveness() }),
    ready: () => health.readiness(),
    features,
    snapshot: () => agent.snapshot(),
    history: (key, from, to, also) => agent.history(key, from, to, also),
    extraRoutes,
    // Only /metrics and the why route are ours: other paths never wait for the agent (unless a caller adds its own routes).
    extraRoutePaths: p.extraRoutes ? undefined : [WHY_ROUTE_PATH, ...(metrics ? [metrics.path] : [])],
  };
}

function serverConfig(options: AgentOptions, port: number, staticDir: string | undefined) {
  return {
    host: options.host, port, token: options.token,
    staticDir: staticDir ?? path.join(projectRoot(), 'dist', 'viewer'),
    agentVersion: AGENT_VERSION, intervalMs: options.intervalMs, windowMs: options.windowMs, hostName: os.hostname(),
    livenessLimitMs: livenessLimitMs(options.intervalMs),
  };
}

/** Every agent event a viewer sees: deltas, topology (coalesced), deaths, bundles, losses, store errors. */
function broadcastAgentEvents(agent: Agent, server: PremortemServer): void {
  agent.on('tick', (delta) => server.broadcastDelta(delta));
  // Topology changes come in bursts (a fork storm changes it thousands of times a second):
  // one snapshot per SNAPSHOT_COALESCE_MS at most, always the latest.
  let snapshotTimer: NodeJS.Timeout | undefined;
  agent.on('topology', () => {
    if (snapshotTimer) return;
    snapshotTimer = setTimeout(() => {
      snapshotTimer = undefined;
      server.publishSnapshot(agent.snapshot());
    }, SNAPSHOT_COALESCE_MS);
    snapshotTimer.unref();
  });
  agent.on('death', (d) => server.broadcastDeath(d));
  agent.on('bundle', (incident) => server.broadcastBundleReady(incident));
  agent.on('lost', (l) => server.broadcastLost(l));
  agent.on('store-error', (code: string, message: string) => server.broadcastError(code, message));
}

/** The server, created (here or in a child) and fed by the agent; it listens when told to. */
export function createViewerServer(p: ViewerServerParts, port: number): PremortemServer {
  const { agent, store, logger } = p;
  const hooks = serverHooks(p);
  const config = serverConfig(p.options, port, p.staticDir);
  const separate = p.privilegeSeparation ?? holdsCapabilities();
  const server = separate ? startServerProcess({ config, store, hooks, logger }) : createServer({ ...config, store, logger, hooks });
  // The server child cannot call agent.snapshot(): it starts from this one and every later topology change.
  if (separate) server.publishSnapshot(agent.snapshot());
  broadcastAgentEvents(agent, server);
  return server;
}
