/**
 * Agent killed and restarted (reliability item 5), shared by the short run
 * and the soak: a real CLI agent (`premortem run`, privilege-separated server)
 * is SIGKILLed `rounds` times while a tracked master's workers die every
 * 100 ms (bundles being written when the kill lands). After each kill: none of
 * the dead agent's BPF links or programs remain (bpftool), its server child is
 * gone; after each restart: /api/health answers within 5 s (or, on a machine
 * slower to start, three times its first start + 2 s). At the end every
 * file in the data directory is a complete bundle with a valid checksum (or
 * absent), and no temporary file survives the next start.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { createBundleStore, decodeBundleFile } from '../../agent/store';
import { dyingChildrenMaster, printed, sleep, start, killGroup } from '../helpers/procs';
import { allLinkIds, allProgIds, alive, bpfObjectsOf, childPids, healthOf, startCliAgent } from './harness';

const MASTER = dyingChildrenMaster(0.02, 0.1);

export interface RestartResult { rounds: number; firstStartMs: number; maxHealthyMs: number; bundlesWritten: number; listed: number; files: number; tempFilesSeen: number; leftLinks: number; leftProgs: number }

export async function runRestarts(rounds: number): Promise<RestartResult> {
  const tag = `pm-restart-${process.pid}-${Date.now()}`;
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-restart-'));
  const master = start('/usr/bin/python3.11', ['-c', MASTER, tag], { stdio: ['ignore', 'pipe', 'inherit'] });
  let maxHealthyMs = 0, leftLinks = 0, leftProgs = 0, tempFilesSeen = 0;
  // The first start (nothing killed yet) is this machine's own start time: a restart
  // after a SIGKILL must be healthy within 5 s, or three times that plus 2 s on a
  // machine that starts node and loads BPF more slowly (nothing left behind slows it).
  let limitMs = 5000, firstStartMs = 0;
  try {
    await printed(master, /ready/);
    for (let i = 0; i < rounds; i++) {
      const t0 = Date.now();
      const agent = await startCliAgent(['--no-auto', '--match', tag, '--interval-ms', '500', '--window-s', '30', '--bundle-window-s', '5', '--data-dir', dataDir],
        { timeoutMs: 60_000 });
      let healthy = false;
      while (!healthy) {
        try { healthy = (await healthOf(agent.url)).ok === true; } catch { await sleep(20); }
        if (Date.now() - t0 > 60_000) break;
      }
      const healthyMs = Date.now() - t0;
      expect(healthy).toBe(true);
      if (i === 0) { firstStartMs = healthyMs; limitMs = Math.max(limitMs, 3 * healthyMs + 2000); }
      else expect({ round: i, healthyMs, limitMs, healthy: healthyMs < limitMs }).toMatchObject({ healthy: true });
      maxHealthyMs = Math.max(maxHealthyMs, healthyMs);
      const pid = agent.child.pid!;
      const ours = bpfObjectsOf(pid);
      expect(ours.links.length).toBeGreaterThan(10);
      const servers = childPids(pid);
      // Let it work (and write bundles) for a while, then SIGKILL mid-flight.
      await sleep(400 + Math.random() * 1200);
      tempFilesSeen += fs.readdirSync(dataDir).filter((f) => f.startsWith('.tmp-')).length;
      process.kill(pid, 'SIGKILL');
      await killGroup(agent.child, 'SIGKILL');
      // Links and programs are fds: gone with the process (checked within 2 s).
      let links: number[] = [], progs: number[] = [];
      for (let k = 0; k < 100; k++) {
        const l = allLinkIds(), p = allProgIds();
        links = ours.links.filter((id) => l.has(id));
        progs = ours.progs.filter((id) => p.has(id));
        if (!links.length && !progs.length && !servers.some(alive)) break;
        await sleep(20);
      }
      expect({ round: i, links, progs, servers: servers.filter(alive) }).toEqual({ round: i, links: [], progs: [], servers: [] });
      leftLinks += links.length;
      leftProgs += progs.length;
    }
    // Every file is a complete bundle or was never renamed into place.
    const files = fs.readdirSync(dataDir).filter((f) => f.endsWith('.pmb'));
    for (const f of files) decodeBundleFile(fs.readFileSync(path.join(dataDir, f)), f);
    const store = createBundleStore({ dir: dataDir });
    await store.ready(); // removes temp files of dead writers
    const listed = await store.list();
    expect(store.health().corrupt).toBe(0);
    expect(listed.length).toBe(files.length);
    expect(listed.length).toBeGreaterThan(rounds);
    expect(fs.readdirSync(dataDir).filter((f) => f.startsWith('.tmp-'))).toEqual([]);
    await store.close();
    return { rounds, firstStartMs, maxHealthyMs, bundlesWritten: files.length, listed: listed.length, files: files.length, tempFilesSeen, leftLinks, leftProgs };
  } finally {
    await killGroup(master);
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
