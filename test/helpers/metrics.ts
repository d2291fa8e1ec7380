/**
 * Helpers for tests that read a real /metrics page: fetch it, lint it with
 * promtool (Debian's prometheus package), pick samples out of it, and put
 * real services into their own cgroup v2 (and network namespace).
 */
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { cgroupMounts } from '../../agent/cgroup/memory';
import { sleep } from './procs';

export const PROMTOOL = '/usr/bin/promtool';

export function getText(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string; type: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { timeout: 8000, agent: false, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, type: String(res.headers['content-type']) }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer within 8 s`)));
    req.on('error', reject);
  });
}

/** `promtool check metrics` on a page: its exit status and every problem it printed. */
export function promtoolCheckMetrics(page: string): { status: number | null; problems: string } {
  if (!fs.existsSync(PROMTOOL)) throw new Error(`${PROMTOOL} is missing: scripts/setup.sh --test installs Debian's prometheus package`);
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: page, encoding: 'utf8' });
  return { status: r.status, problems: `${r.stdout}${r.stderr}`.trim() };
}

export interface PageSample { name: string; labels: Record<string, string>; value: number }

/** The samples of a Prometheus text page (no escapes in our label values beyond \" and \\). */
export function parsePage(page: string): PageSample[] {
  const out: PageSample[] = [];
  for (const line of page.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2].replace(/\\(.)/g, '$1');
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

export const samplesOf = (page: string, name: string, match: Record<string, string> = {}): PageSample[] =>
  parsePage(page).filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v));

/** The metric names a page carries (histogram series collapsed to their family name too). */
export function namesOnPage(page: string): Set<string> {
  const names = new Set<string>();
  for (const s of parsePage(page)) {
    names.add(s.name);
    names.add(s.name.replace(/_(bucket|sum|count)$/, ''));
  }
  return names;
}

export interface TestCgroup2 {
  /** Path as /proc/PID/cgroup shows it (0::<path>). */
  path: string;
  dir: string;
  /** A shell prefix that moves the command into this cgroup (and, with netns, a new network namespace). */
  prefix(netns?: boolean): string[];
  remove(): Promise<void>;
}

/** A cgroup v2 directory (no controllers needed): tells services apart as containers' cgroups do. */
export function createCgroup2(name: string): TestCgroup2 {
  const mount = cgroupMounts().v2;
  if (!mount) throw new Error('no cgroup2 hierarchy mounted: this test needs one (here /sys/fs/cgroup/unified)');
  const dir = path.join(mount, name);
  fs.mkdirSync(dir);
  const procs = path.join(dir, 'cgroup.procs');
  return {
    path: `/${name}`,
    dir,
    prefix(netns = false) {
      const script = `echo $$ > ${procs} && ${netns ? 'ip link set lo up && ' : ''}exec "$@"`;
      return [...(netns ? ['/usr/bin/unshare', '--net'] : []), '/bin/sh', '-c', script, 'sh'];
    },
    async remove() {
      for (let attempt = 0; attempt < 100; attempt++) {
        let pids: number[];
        try {
          pids = fs.readFileSync(procs, 'utf8').split('\n').filter(Boolean).map(Number);
        } catch {
          return;
        }
        for (const pid of pids) {
          try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ }
        }
        try {
          fs.rmdirSync(dir);
          return;
        } catch {
          await sleep(20);
        }
      }
      throw new Error(`could not remove test cgroup ${dir}`);
    },
  };
}
