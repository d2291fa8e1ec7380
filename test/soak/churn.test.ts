/**
 * Soak, reliability 3: up to 2,000 forks/s (PREMORTEM_CHURN_RATE; paced to half
 * of what this machine forks) for PREMORTEM_CHURN_SECONDS (default 60) by a
 * tracked master, then gunicorn --max-requests 1 under load for as long.
 * See test/soak/churn.ts for the measurements and bounds.
 */
import { stopAll } from '../helpers/procs';
import { runForkChurn, runGunicornRecycling } from './churn';
import { envNumber } from './harness';

afterAll(stopAll);
const SECONDS = envNumber('PREMORTEM_CHURN_SECONDS', 60);

test(`fork churn for ${SECONDS} s`, async () => {
  const { samples, ...r } = await runForkChurn({ maxRate: envNumber('PREMORTEM_CHURN_RATE', 2000), seconds: SECONDS });
  console.log(`fork churn soak: ${JSON.stringify(r)}\nRSS MiB over time: ${samples.map((s) => s.rssMiB.toFixed(0)).join(' ')}`);
}, SECONDS * 1000 + 120_000);

test(`gunicorn --max-requests 1 under load for ${SECONDS} s`, async () => {
  console.log(`gunicorn recycling soak: ${JSON.stringify(await runGunicornRecycling({ seconds: SECONDS, concurrency: 4 }))}`);
}, SECONDS * 1000 + 120_000);
