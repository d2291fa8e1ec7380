/**
 * The kernel's own accounting of BPF programs (kernel.bpf_stats_enabled:
 * run_time_ns / run_cnt per program), read with `bpftool prog show -j`.
 */
import { execFileSync } from 'child_process';

export interface ProgStat { id: number; name: string; runTimeNs: number; runCnt: number }

/** Every BPF program on the host, by id (names as bpftool shows them: from BTF in full, else cut at 15). */
export function progStats(): Map<number, ProgStat> {
  const out = new Map<number, ProgStat>();
  const all = JSON.parse(execFileSync('bpftool', ['prog', 'show', '-j'], { encoding: 'utf8', maxBuffer: 64 << 20 })) as
    Array<{ id: number; name?: string; run_time_ns?: number; run_cnt?: number }>;
  for (const p of all) out.set(p.id, { id: p.id, name: p.name ?? '', runTimeNs: p.run_time_ns ?? 0, runCnt: p.run_cnt ?? 0 });
  return out;
}

/** BPF object names are cut to 15 characters. */
export const bpfName = (n: string) => n.slice(0, 15);
