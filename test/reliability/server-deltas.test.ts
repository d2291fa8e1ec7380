/**
 * The privilege-separated server process gets deltas only while a viewer is
 * connected (each is a copy of every tracked worker's bucket): with none, the
 * agent holds the latest; a viewer that connects receives it at once, then
 * every later one; when the last viewer leaves, deltas stop again.
 */
import { startServerProcess, type ServerProcess } from '../../agent/server/process';
import { waitFor } from '../helpers/procs';
import { connect, quietLogger, type Viewer } from '../soak/harness';

let sp: ServerProcess;
let wsUrl: string;

const delta = (tMs: number) => ({ tMs, intervalMs: 1000, workers: [], services: [], markers: [] });
const deltasOf = (v: Viewer) => v.messages.filter((m) => m.body === 'delta').map((m) => Number(m.delta!.tMs));

beforeAll(async () => {
  sp = startServerProcess({ config: { host: '127.0.0.1', port: 0 }, hooks: {}, logger: quietLogger() });
  const { url } = await sp.listen();
  wsUrl = url.replace(/^http/, 'ws').replace(/\/?$/, '/ws');
}, 30_000);

afterAll(async () => {
  await sp?.close();
});

test('no viewer: deltas are held, not sent; a viewer gets the latest at once, then each one', async () => {
  for (const t of [1000, 2000, 3000]) sp.broadcastDelta(delta(t));
  expect(sp.deltasNotSent).toBe(3);
  const v = await connect(wsUrl);
  v.send({ subscribe: { all: true } });
  await waitFor(() => deltasOf(v).length >= 1, 5000, 'the held delta');
  expect(deltasOf(v)).toEqual([3000]);
  sp.broadcastDelta(delta(4000));
  await waitFor(() => deltasOf(v).length >= 2, 5000, 'the next delta');
  expect(deltasOf(v)).toEqual([3000, 4000]);
  expect(sp.deltasNotSent).toBe(3);

  v.ws.close();
  await v.closed;
  await waitFor(() => sp.counters().clients === 0, 5000, 'the server to report no viewer');
  sp.broadcastDelta(delta(5000));
  expect(sp.deltasNotSent).toBe(4);
});
