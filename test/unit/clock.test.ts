/** The boot-clock -> wall-clock offset: steady under reading jitter, follows real steps. */
import { CLOCK_STEP_MS, createClock } from '../../agent/core/clock';

test('reading jitter never moves a record; a step of the wall clock does', () => {
  let jitterMs = 0, stepMs = 0;
  const bootTimeNs = () => (Date.now() - 3_600_000 - stepMs + jitterMs) * 1e6;
  const clock = createClock(1000, bootTimeNs);
  const ts = 5_000_000_123_456; // one record's boot-clock time
  const first = clock.recMs(ts);
  for (const j of [0.4, -0.6, 0.9, -0.2, 0.7]) { // sub-ms noise between the two clock reads
    jitterMs = j;
    clock.sync();
    expect(clock.recMs(ts)).toBe(first);
  }
  stepMs = CLOCK_STEP_MS * 10; // NTP stepped the wall clock forward
  clock.sync();
  expect(Math.abs(clock.recMs(ts) - (first + stepMs))).toBeLessThanOrEqual(2);
});
