/**
 * Soak, issue 16: the agent's footprint is flat over time — PREMORTEM_SOAK_MINUTES
 * (default 30) of worker recycling, SIGKILLed workers and viewers coming and going
 * (test/soak/footprint.ts). Asserted: RSS of the tracer + its server process after
 * the warm-up (minute 5 of 30; a sixth of a shorter run) stays within 10 % of its
 * value then; fds and pid-filter entries back to their values at the start.
 * Written: docs/soak-footprint.svg (the curve) and docs/soak-footprint.json (what
 * `npm run bench` reports as the soak target).
 */
import * as fs from 'fs';
import * as path from 'path';
import type { SoakSummary } from '../../bench/targets';
import { stopAll } from '../helpers/procs';
import { lineChartSvg } from './curve-svg';
import { flatness, planFor, runFootprintSoak } from './footprint';
import { ROOT, soakMinutes } from './harness';

afterAll(stopAll);
const MINUTES = soakMinutes(30);

test(`footprint for ${MINUTES} min with worker churn, deaths and viewers: RSS flat after warm-up, fds and map entries back`, async () => {
  const r = await runFootprintSoak(planFor(MINUTES));
  const flat = flatness(r);
  const summary: SoakSummary = {
    finishedAt: new Date().toISOString(), minutes: MINUTES, rssAt5MiB: round(flat.atWarmupMiB), rssMaxAfterWarmupMiB: round(flat.maxAfterMiB), withinPct: round(flat.withinPct),
    fdsStart: r.start.fds, fdsEnd: r.end.fds, mapEntriesStart: r.start.pidsEntries, mapEntriesEnd: r.end.pidsEntries,
    ok: flat.withinPct <= 10 && r.end.fds <= r.start.fds + 2 && r.end.pidsEntries === r.start.pidsEntries,
  };
  const docs = path.join(ROOT, 'docs');
  const min = (s: number) => Math.round((s / 60) * 100) / 100;
  fs.writeFileSync(path.join(docs, 'soak-footprint.svg'), lineChartSvg({
    title: `premortem footprint soak, ${MINUTES} min (${summary.finishedAt.slice(0, 16)}Z): ${r.requests} requests, ${r.deaths} kills, ${r.viewers} viewers`,
    xLabel: 'minutes', yLabel: 'RSS MiB',
    series: [
      { name: 'tracer + server', color: '#1f5fbf', points: r.samples.map((s) => [min(s.tS), s.tracerMiB + s.serverMiB]) },
      { name: 'tracer', color: '#2a9d55', points: r.samples.map((s) => [min(s.tS), s.tracerMiB]) },
      { name: 'server process', color: '#d08a1a', points: r.samples.map((s) => [min(s.tS), s.serverMiB]) },
    ],
    vLines: [{ x: min(r.plan.warmupS), label: 'end of warm-up' }],
    hLines: [{ y: flat.atWarmupMiB * 1.1, label: '+10 % of warm-up' }],
  }));
  fs.writeFileSync(path.join(docs, 'soak-footprint.json'), JSON.stringify({ ...summary, plan: r.plan, requests: r.requests, deaths: r.deaths, viewers: r.viewers, incidents: r.incidents,
    samples: r.samples.map((s) => ({ ...s, tS: Math.round(s.tS), tracerMiB: round(s.tracerMiB), serverMiB: round(s.serverMiB) })) }, null, 1) + '\n');
  console.log(`footprint soak: ${JSON.stringify({ ...summary, plan: r.plan, requests: r.requests, deaths: r.deaths, viewers: r.viewers, incidents: r.incidents })}`);
  expect(r.deaths).toBeGreaterThan(0);
  expect(r.incidents).toBeGreaterThan(0); // the kills were seen and judged
  expect(r.requests).toBeGreaterThan(0);
  expect(flat.withinPct).toBeLessThanOrEqual(10);
  expect(r.end.fds).toBeLessThanOrEqual(r.start.fds + 2);
  expect(r.end.pidsEntries).toBe(r.start.pidsEntries);
}, soakMinutes(30) * 60_000 + 180_000);

const round = (x: number) => Math.round(x * 10) / 10;
