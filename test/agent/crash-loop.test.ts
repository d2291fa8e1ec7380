/**
 * A service whose workers die within a second of starting — a gunicorn app
 * that raises on import, restarted by a supervisor (a shell loop) five times
 * in ten seconds — is still seen: its masters are found from the kernel's exec
 * records (periodic /proc discovery is set to once a minute here, so it cannot
 * be what finds them), every worker death is judged, and the crash loop raises
 * a restart storm, counted across the restarts of the one service.
 */
import * as fs from 'fs';
import * as path from 'path';
import { exited, start, waitFor } from '../helpers/procs';
import { freePort } from '../helpers/services';
import { useTestAgent } from '../helpers/agent';

// Periodic discovery once a minute: only the kernel's exec records can find these masters in time.
const t = useTestAgent('crashloop', { windowMs: 60_000, bundleWindowMs: 30_000, discoveryIntervalMs: 60_000 });

test('an app that raises on import, restarted five times in 10 s: every worker death judged, a restart storm', async () => {
  fs.writeFileSync(path.join(t.app.dir, 'broken.py'), 'raise RuntimeError("missing setting DATABASE_URL")\n');
  const port = await freePort();
  const gunicorn = `/usr/bin/python3 /usr/bin/gunicorn --chdir ${t.app.dir} -b 127.0.0.1:${port} -w 1 broken:app`;
  const loop = start('sh', ['-c', `for i in 1 2 3 4 5; do ${gunicorn}; echo "exit $?"; sleep 0.5; done`]);
  let out = '';
  loop.stdout!.on('data', (d) => (out += d));
  await exited(loop, 60_000);
  expect(out.match(/exit 3/g)).toHaveLength(5); // gunicorn: "Worker failed to boot", exit 3, each time

  const workerDeaths = await waitFor(() => {
    const w = t.deaths.filter((d) => d.identity?.role === 'worker');
    return w.length >= 5 && w;
  }, 15_000, 'five worker deaths judged');
  for (const d of workerDeaths) expect(d.verdict).toMatchObject({ kind: 'exited', exitCode: 3, failure: true });
  expect(new Set(workerDeaths.map((d) => d.identity!.serviceId)).size).toBe(5); // five masters, one per restart
  const storm = await waitFor(() => t.markers.find((m) => m.kind === 'restart-storm'), 10_000, 'a restart-storm marker');
  expect(storm.numbers.deaths).toBeGreaterThanOrEqual(5);
  await waitFor(() => t.bundles.filter((b) => workerDeaths.some((d) => d.identity!.pid === b.incident.pid)).length >= 5 && true, 10_000,
    'a post-mortem for each worker death');
}, 90_000);
