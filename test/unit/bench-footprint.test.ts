/**
 * The benchmark's footprint logic, pure parts: the command line of the
 * footprint steps, the judgement of idle CPU against its goal when the
 * machine's other load moves it, and the soak's curve as a picture.
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { parseOptions } from '../../bench/options';
import { evaluateTargets, judgeWindows } from '../../bench/targets';
import { lineChartSvg } from '../soak/curve-svg';
import { planFor } from '../soak/footprint';

describe('bench options of the footprint steps', () => {
  test('--scaling-workers always measures 0 (the per-worker cost is against it), sorted, once', () => {
    const o = parseOptions(['--only', 'scaling,memory', '--scaling-workers', '256,16', '--scaling-seconds', '30', '--memory-workers', '256'], {});
    expect(o.steps).toEqual(['scaling', 'memory']);
    expect(o.scaling.counts).toEqual([0, 16, 256]);
    expect(o.scaling.seconds).toBe(30);
    expect(o.memory.counts).toEqual([256]);
  });
  test('defaults, and bad counts named by their option', () => {
    const o = parseOptions([], {});
    expect(o.scaling.counts).toEqual([0, 16, 256, 1024]);
    expect(o.memory.counts).toEqual([0, 16, 256]);
    expect(() => parseOptions(['--memory-workers', '12x'], {})).toThrow(/--memory-workers: 12x is not a number of workers/);
    expect(() => parseOptions(['--scaling-workers', '-1'], {})).toThrow(/--scaling-workers/);
  });
  test('stack sampling is one of the features measured on their own', () => {
    const o = parseOptions(['--features', 'stacks'], {});
    expect(o.features.map((f) => [f.name, f.offArgs])).toEqual([['stacks', ['--stack-interval-ms', '0']]]);
  });
});

describe('idle CPU judged window by window', () => {
  test('met only when every window and the whole meet the goal; missed when every window misses', () => {
    expect(judgeWindows({ cpuPct: 0.5, windowsPct: [0.4, 0.6, 0.5] }, 1).status).toBe('met');
    expect(judgeWindows({ cpuPct: 1.5, windowsPct: [1.4, 1.6, 1.2] }, 1).status).toBe('missed');
    const j = judgeWindows({ cpuPct: 0.9, windowsPct: [0.4, 1.6, 0.7] }, 1);
    expect(j.status).toBe('inconclusive');
    expect(j.note).toMatch(/1 of 3 windows above 1 %/);
    expect(judgeWindows(undefined, 1).status).toBe('not run');
    expect(judgeWindows({ cpuPct: 0.9 }, 1).status).toBe('met'); // results older than the windows
  });
  test('the targets carry it, with the windows and the host load in the measured figure', () => {
    const point = (workers: number, cpuPct: number, windowsPct: number[]) => ({ workers, trackedAlive: workers + 1, seconds: 30, cpuPct, tracerPct: cpuPct, serverPct: 0,
      usPerWorkerTick: null, togetherMiB: 80, windowsPct, hostBusyPct: 70 });
    const t = evaluateTargets({
      schema: 'premortem-bench/1', startedAt: '', finishedAt: '', machine: { cpus: 2, kernel: '', node: '', loadAvgAtStart: [0, 0, 0] }, options: {},
      overhead: null, memory: null, ingest: null, latency: null, programCost: null, profile: null, errors: [],
      scaling: { intervalMs: 1000, marginal: [], points: [point(0, 0.15, [0.1, 0.3]), point(256, 2, [1.9, 2.1])] },
    }, '/nonexistent');
    const byId = new Map(t.map((x) => [x.id, x]));
    expect(byId.get('cpu-idle-0')!.status).toBe('inconclusive');
    expect(byId.get('cpu-idle-256')!.status).toBe('missed');
    expect(byId.get('cpu-idle-256')!.measured).toMatch(/windows 1\.900–2\.100; host busy 70 %/);
    expect(byId.get('soak')!.status).toBe('not run');
  });
  test('a soak shorter than 30 min that passed is inconclusive, one that failed is missed', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pm-soak-target-'));
    try {
      const file = path.join(dir, 'soak.json');
      const judge = (minutes: number, ok: boolean) => {
        fs.writeFileSync(file, JSON.stringify({ finishedAt: '2026-12-02T00:00:00Z', minutes, rssAt5MiB: 100, rssMaxAfterWarmupMiB: 105, withinPct: 5, fdsStart: 1, fdsEnd: 1, mapEntriesStart: 5, mapEntriesEnd: 5, ok }));
        return evaluateTargets({ schema: 'premortem-bench/1', startedAt: '', finishedAt: '', machine: { cpus: 2, kernel: '', node: '', loadAvgAtStart: [0, 0, 0] }, options: {},
          overhead: null, memory: null, ingest: null, latency: null, programCost: null, errors: [] }, file).find((t) => t.id === 'soak')!;
      };
      expect(judge(5, true)).toMatchObject({ status: 'inconclusive', note: expect.stringMatching(/5 min, not 30/) });
      expect(judge(5, false).status).toBe('missed');
      expect(judge(30, true).status).toBe('met');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('footprint soak plan and picture', () => {
  test('30 min: warm-up 5 min, full 10-min windows; shorter runs scale down', () => {
    expect(planFor(30)).toMatchObject({ warmupS: 300, windowS: 600, deathEveryS: 60 });
    const p = planFor(5);
    expect(p.warmupS).toBe(100); // until the 100-s windows are full
    expect(p.windowS).toBe(100);
    expect(p.deathEveryS).toBe(30);
  });
  test('the curve is an SVG with one line per series and the markers', () => {
    const svg = lineChartSvg({ title: 'a <b>', xLabel: 'min', yLabel: 'MiB', series: [{ name: 'rss', color: '#000', points: [[0, 10], [1, 12], [2, 11]] }],
      vLines: [{ x: 1, label: 'warm' }], hLines: [{ y: 13.2, label: '+10 %' }] });
    expect(svg).toMatch(/^<svg xmlns/);
    expect(svg.match(/<polyline/g)).toHaveLength(1);
    expect(svg).toContain('a &lt;b>');
    expect(svg).toContain('+10 %');
  });
});
