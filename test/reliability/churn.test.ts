/**
 * Reliability 3 (short runs): process churn by a tracked master paced to what
 * this machine can fork (up to 2,000 forks/s, for 10 s or until 2,000 forks),
 * and a gunicorn --max-requests 1 under load for 10 s (or until 10 recycles).
 * The 60-s versions are in test/soak/churn.test.ts. See test/soak/churn.ts for
 * what is measured; the rates reached are printed.
 * Existing coverage: test/agent/deaths.test.ts checks recycling verdicts (exited, no
 * bundle) at --max-requests 5; this one checks bounds and the return to baseline.
 */
import { stopAll } from '../helpers/procs';
import { runForkChurn, runGunicornRecycling } from '../soak/churn';

afterAll(stopAll);

test('fork churn at up to 2,000 forks/s: every fork seen, RSS under the cap, tables bounded, BPF maps and tracked set back to baseline', async () => {
  const { samples, ...rest } = await runForkChurn({ maxRate: 2000, seconds: 10 });
  console.log(`fork churn: ${JSON.stringify(rest)}\nsamples: ${JSON.stringify(samples.filter((_, i) => i % 4 === 0))}`);
}, 150_000);

test('gunicorn --max-requests 1 under load: bounded, back to baseline, no post-mortems', async () => {
  const r = await runGunicornRecycling({ seconds: 10, concurrency: 4 });
  console.log(`gunicorn recycling: ${JSON.stringify(r)}`);
}, 120_000);
