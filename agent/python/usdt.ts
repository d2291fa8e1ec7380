/**
 * USDT (stapsdt) notes: which CPython builds carry python:gc__start and
 * python:gc__done. Only the gc probes are ever attached: CPython also has
 * function__entry, line and others, which fire per call or per line (and
 * `line` is known to crash 3.11); premortem never enables them.
 */

/** One USDT probe described by a stapsdt note. */
export interface UsdtNote {
  provider: string;
  name: string;
  /** Probe address (virtual, as linked). */
  pc: bigint;
  /** Address of the semaphore (0 when none): libbpf increments it while attached. */
  semaphore: bigint;
  args: string;
}

export const GC_PROBES = ['gc__start', 'gc__done'] as const;

/** Parses the body of a .note.stapsdt section (ELF64). */
export function parseStapsdtNotes(buf: Buffer): UsdtNote[] {
  const out: UsdtNote[] = [];
  let o = 0;
  const align4 = (n: number) => (n + 3) & ~3;
  while (o + 12 <= buf.length) {
    const namesz = buf.readUInt32LE(o);
    const descsz = buf.readUInt32LE(o + 4);
    const type = buf.readUInt32LE(o + 8);
    const nameStart = o + 12;
    const descStart = nameStart + align4(namesz);
    const next = descStart + align4(descsz);
    if (next > buf.length) break;
    const name = buf.toString('latin1', nameStart, nameStart + Math.max(0, namesz - 1));
    if (type === 3 && name === 'stapsdt' && descsz >= 24) {
      const d = buf.subarray(descStart, descStart + descsz);
      const strs = d.toString('latin1', 24).split('\0');
      out.push({
        pc: d.readBigUInt64LE(0),
        semaphore: d.readBigUInt64LE(16),
        provider: strs[0] ?? '',
        name: strs[1] ?? '',
        args: strs[2] ?? '',
      });
    }
    o = next;
  }
  return out;
}

/** Whether a file's notes include both python:gc__start and python:gc__done. */
export function hasGcProbes(notes: UsdtNote[]): boolean {
  return GC_PROBES.every((n) => notes.some((p) => p.provider === 'python' && p.name === n));
}

/** Every python:* probe name (doctor shows them; only gc__* are used). */
export function pythonProbeNames(notes: UsdtNote[]): string[] {
  return [...new Set(notes.filter((n) => n.provider === 'python').map((n) => n.name))].sort();
}
