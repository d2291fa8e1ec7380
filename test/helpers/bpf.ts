/** What the kernel says about BPF links: global (bpftool) and per process (fdinfo). */
import { execFileSync } from 'child_process';
import * as fs from 'fs';

/** Ids of every BPF link on the host. */
export function allLinkIds(): Set<number> {
  const links = JSON.parse(execFileSync('bpftool', ['link', 'show', '-j']).toString() || '[]') as Array<{ id: number }>;
  return new Set(links.map((l) => l.id));
}

/** Ids of the BPF links a process holds open (from /proc/PID/fdinfo). */
export function linkIdsOf(pid: number): number[] {
  const ids: number[] = [];
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`) !== 'anon_inode:bpf_link') continue;
      const m = fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').match(/^link_id:\s+(\d+)/m);
      if (m) ids.push(Number(m[1]));
    } catch {
      /* fd closed meanwhile */
    }
  }
  return ids.sort((a, b) => a - b);
}

/** Which of `ids` still exist on the host. */
export function stillAttached(ids: number[]): number[] {
  const all = allLinkIds();
  return ids.filter((id) => all.has(id));
}
