/**
 * Reliability 3 (short runs): 2,000 forks/s for 10 s by a tracked master, and a
 * gunicorn --max-requests 1 under load for 10 s. The 60-s versions are in
 * test/soak/churn.test.ts. See test/soak/churn.ts for what is measured.
 * Existing coverage: test/agent.test.ts checks recycling verdicts (exited, no
 * bundle) at --max-requests 5; this one checks bounds and the return to baseline.
 */
import { stopAll } from './helpers/procs';
import { runForkChurn, runGunicornRecycling } from './soak/churn';

afterAll(stopAll);

test('2,000 forks/s for 10 s: RSS under the cap, tables bounded, BPF maps and tracked set back to baseline', async () => {
  const r = await runForkChurn({ rate: 2000, seconds: 10 });
  const { samples, ...rest } = r;
  console.log(`fork churn: ${JSON.stringify(rest)}\nsamples: ${JSON.stringify(samples.filter((_, i) => i % 4 === 0))}`);
}, 80_000);

test('gunicorn --max-requests 1 under load for 10 s: bounded, back to baseline, no post-mortems', async () => {
  const r = await runGunicornRecycling({ seconds: 10, concurrency: 4 });
  console.log(`gunicorn recycling: ${JSON.stringify(r)}`);
}, 80_000);
