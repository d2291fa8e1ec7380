/**
 * A real post-mortem for exporter tests: the real agent (real BPF probes)
 * tracks a real gunicorn with two workers on 127.0.0.1; one worker is killed
 * with SIGKILL by this process, which the agent judges killed-by-other and
 * freezes into a bundle on disk. Everything started here is stopped by pid and
 * every temp dir removed by cleanup().
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createAgent } from '../../agent/agent';
import { createBundleStore } from '../../agent/store';
import { createLogger } from '../../agent/log';
import type { Bundle, IncidentSummary } from '../../proto/codec';
import { killGroup, sleep, stopAll, waitFor } from './procs';
import { appDir, freePort, get, gunicorn, ready, workersOf } from './services';

export interface RealBundle {
  bundle: Bundle;
  /** The protobuf Bundle bytes, as `premortem export --format pb` writes them. */
  bytes: Uint8Array;
  workerPid: number;
  masterPid: number;
  cleanup(): Promise<void>;
}

export async function produceRealBundle(prefix: string): Promise<RealBundle> {
  const app = appDir(prefix);
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `pm-${prefix}-data-`));
  const logger = createLogger({ level: 'error' });
  const store = createBundleStore({ dir: dataDir, logger });
  await store.ready();
  const agent = createAgent(
    { port: null, dataDir, intervalMs: 500, windowMs: 60_000, bundleWindowMs: 30_000, match: app.match, autoDiscover: false, discoveryIntervalMs: 300 },
    { store, logger },
  );
  const bundles: IncidentSummary[] = [];
  agent.on('bundle', (i: IncidentSummary) => bundles.push(i));
  const cleanup = async () => {
    await agent.stop();
    await store.close();
    await stopAll();
    app.remove();
    fs.rmSync(dataDir, { recursive: true, force: true });
  };
  try {
    await agent.start();
    const port = await freePort();
    const master = gunicorn(app, port, ['-w', '2']);
    await ready(port);
    const [worker] = await workersOf(master, 2);
    await waitFor(() => agent.snapshot().workers.some((w) => w.identity?.pid === worker && w.state === 'alive'), 10_000, `pid ${worker} to be tracked`);
    // A few intervals of life with some requests, so the timeline has buckets worth drawing.
    for (let i = 0; i < 20; i++) {
      await get(port, '/').catch(() => undefined);
      await sleep(100);
    }
    process.kill(worker, 'SIGKILL');
    const incident = await waitFor(() => bundles.find((b) => b.pid === worker), 15_000, `the post-mortem of pid ${worker}`);
    const bundle = await store.read(incident.id);
    const bytes = await store.readRaw(incident.id);
    await killGroup(master);
    return { bundle, bytes, workerPid: worker, masterPid: master.pid!, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
