/**
 * Soak, reliability 2: the flood for PREMORTEM_FLOOD_SECONDS (default 30 s) at
 * up to PREMORTEM_FLOOD_RATE records/s (default 1,000,000; the rate reached is
 * printed) into a 64 KiB ring buffer, the reader held for the first 5 s. See
 * test/soak/flood.ts for what is asserted.
 */
import { stopAll } from '../helpers/procs';
import { runFloodScenario } from './flood';
import { envNumber } from './harness';

afterAll(stopAll);

const SECONDS = envNumber('PREMORTEM_FLOOD_SECONDS', 30);

test(`flood ${SECONDS} s: exact accounting, loss shown within 2 s, gap marked`, async () => {
  const r = await runFloodScenario({ seconds: SECONDS, ratePerSec: envNumber('PREMORTEM_FLOOD_RATE', 1_000_000), ringBufferBytes: 64 * 1024, holdMs: 5000 });
  console.log(`flood soak: ${JSON.stringify(r)}`);
}, SECONDS * 1000 + 120_000);
