/**
 * Reliability 5 (short run): the CLI agent SIGKILLed 5 times under load
 * (20 times in test/soak/restart.test.ts). See test/soak/restart.ts.
 * Existing coverage: test/kernel/tracer.test.ts checks that a bare tracer process
 * killed with SIGKILL leaves no links; test/unit/store.test.ts cuts a bundle mid-write.
 */
import { stopAll } from '../helpers/procs';
import { runRestarts } from '../soak/restart';

afterAll(stopAll);

test('SIGKILL 5 times under load: no links or programs left, healthy within 5 s (or 3x the first start + 2 s), no corrupt bundle, temp files cleaned', async () => {
  console.log(`restarts: ${JSON.stringify(await runRestarts(5))}`);
}, 150_000);
