/**
 * Reliability 2 (short run): a flood of up to 1 M records/s for 5 s into a
 * 64 KiB ring buffer through a real agent, its reader held (Tracer.pause())
 * for the first 1.5 s so that records are lost on any machine, however fast it
 * reads. The 30-s version is test/soak/flood.test.ts.
 * Existing coverage: test/kernel/tracer.test.ts 'loss accounting' checks the same
 * equation on a bare tracer (JS held, reader paused); this one runs the whole
 * agent and checks what the viewer, /metrics and the timeline show.
 */
import { stopAll } from '../helpers/procs';
import { runFloodScenario } from '../soak/flood';

afterAll(stopAll);

test('flood 5 s into a 64 KiB ring, reader held 1.5 s: produced = delivered + dropped; Lost within 2 s; gap marked', async () => {
  const r = await runFloodScenario({ seconds: 5, ratePerSec: 1_000_000, ringBufferBytes: 64 * 1024, holdMs: 1500 });
  console.log(`flood (${r.ratePerSec} records/s reached of 1,000,000 asked): ${JSON.stringify(r)}`);
}, 90_000);
