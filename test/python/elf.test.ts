/**
 * The python room's readers against the real files of this machine and
 * against the tools that know the answer (readelf, the DWARF-checked
 * numbers of offsets.ts), plus the pure choices: which collector function,
 * which cookie, which maps line.
 */
import { execFileSync } from 'child_process';
import { ElfError, openElf, withElf } from '../../agent/python/elf';
import { hasGcProbes } from '../../agent/python/usdt';
import { inspectBinary, versionFromName } from '../../agent/python/interpreter';
import { parseDebugOffsets, generationStatsOffset, DEBUG_OFFSETS_SIZE_3_13 } from '../../agent/python/debug-offsets';
import { chooseGcEntries, isGcEntryCandidate } from '../../agent/python/gc-entry';
import { parseMaps } from '../../agent/python/maps';
import { gcEntryCookie } from '../../agent/probes/pygc';
import { stackLayout } from '../../agent/python/offsets';
import { createRemoteReader } from '../../agent/python/remote';
import type { ElfSymbol } from '../../agent/python/elf';
import { printed, start, stopAll } from '../helpers/procs';
import { DEBIAN_PYTHON, pyenvLibpython } from '../helpers/python';

afterAll(() => stopAll());

describe('ELF reader on real interpreters', () => {
  test('stapsdt notes: the same python probes as readelf -n', () => {
    const notes = withElf(DEBIAN_PYTHON, (e) => e.stapsdtNotes());
    const ours = notes.filter((n) => n.provider === 'python').map((n) => `${n.name}@${n.pc.toString(16)}`).sort();
    const text = execFileSync('readelf', ['-n', DEBIAN_PYTHON], { encoding: 'utf8' });
    const theirs: string[] = [];
    const re = /Provider: python\s+Name: (\S+)\s+Location: 0x0*([0-9a-f]+)/g;
    for (let m = re.exec(text); m; m = re.exec(text)) theirs.push(`${m[1]}@${m[2]}`);
    expect(ours).toEqual(theirs.sort());
    expect(hasGcProbes(notes)).toBe(true);
    expect(notes.find((n) => n.name === 'gc__start')!.semaphore).not.toBe(0n); // libbpf must raise it
    expect(withElf(pyenvLibpython(11), (e) => e.stapsdtNotes())).toEqual([]);
  });

  test('symbols of .symtab and .dynsym, local and global, as readelf -s lists them', () => {
    const lib = pyenvLibpython(11);
    const names = new Set(['gc_collect_main', '_PyRuntime', 'PyGC_Collect', 'Py_Version']);
    const ours = withElf(lib, (e) => e.symbols((n) => names.has(n)))
      .map((s) => `${s.table} ${s.name} ${s.value.toString(16)} ${s.size} ${s.bind}`).sort();
    const theirs: string[] = [];
    let table = '';
    for (const line of execFileSync('readelf', ['-sW', lib], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n')) {
      const t = /Symbol table '\.(\w+)'/.exec(line);
      if (t) table = t[1];
      const f = line.trim().split(/\s+/);
      if (f.length >= 8 && names.has(f[7]) && (f[3] === 'FUNC' || f[3] === 'OBJECT'))
        theirs.push(`${table} ${f[7]} ${parseInt(f[1], 16).toString(16)} ${Number(f[2])} ${f[4].toLowerCase()}`);
    }
    expect(ours).toEqual(theirs.sort());
    expect(ours.some((s) => /^symtab gc_collect_main .* local$/.test(s))).toBe(true);
    expect(ours.some((s) => /^dynsym _PyRuntime .* global$/.test(s))).toBe(true);
  });

  test("a function's file offset, from the segments, matches the section's", () => {
    const lib = pyenvLibpython(12);
    withElf(lib, (e) => {
      const fn = e.symbols((n) => n === 'gc_collect_main')[0];
      const text = e.sections.find((s) => s.name === '.text')!;
      expect(e.fileOffset(fn.value)).toBe(fn.value - text.addr + text.offset);
      expect(e.vaddrOfFileOffset(0)).toBe(0); // a shared object is linked at 0
    });
    expect(withElf(DEBIAN_PYTHON, (e) => e.vaddrOfFileOffset(0))).toBe(0x400000); // Debian's is not PIE
  });

  test('versions from Py_Version (3.11+) and from the file name', () => {
    const v = (file: string) => inspectBinary(file, file, 'k', 'libpython').version;
    expect(v(pyenvLibpython(11))).toEqual({ major: 3, minor: 11, micro: 7, source: 'Py_Version' });
    expect(v(DEBIAN_PYTHON)).toMatchObject({ major: 3, minor: 11, source: 'Py_Version' });
    expect(v(pyenvLibpython(9))).toEqual({ major: 3, minor: 9, micro: null, source: 'file name' });
    expect(versionFromName('/usr/lib/libpython3.10.so.1.0')).toMatchObject({ major: 3, minor: 10 });
    expect(versionFromName('/usr/bin/python')).toBeNull();
  });

  test('errors carry stable codes', () => {
    expect(() => openElf('/etc/hostname')).toThrow(expect.objectContaining({ code: 'PREMORTEM_ERR_ELF' }));
    expect(() => openElf('/nonexistent/python')).toThrow(expect.objectContaining({ code: 'PREMORTEM_ERR_ELF_OPEN' }));
    expect(() => openElf('/etc/hostname')).toThrow(ElfError);
  });
});

describe("3.13's _Py_DebugOffsets, read from the file", () => {
  test('equal the offsets the DWARF of pyenv 3.13.0 gives', () => {
    const lib = pyenvLibpython(13);
    const d = withElf(lib, (e) => {
      const rt = e.symbols((n) => n === '_PyRuntime')[0];
      return parseDebugOffsets(e.readVaddr(rt.value, DEBUG_OFFSETS_SIZE_3_13)!);
    })!;
    // gdb -batch -ex 'ptype/o struct _ts' ... libpython3.13.so.1.0 (see offsets.ts)
    expect(d.versionHex >>> 8).toBe(0x030d00);
    expect(d.tstate).toMatchObject({ interp: 16, currentFrame: 72, threadId: 152, nativeThreadId: 160, next: 8 });
    expect(d.frame).toMatchObject({ previous: 8, executable: 0, instrPtr: 56, owner: 70 });
    expect(d.interp).toMatchObject({ gc: 7400, gilHolder: 7760, gilLocked: 7768 });
    expect(generationStatsOffset(d)).toBe(7528);
    expect(d.unicode.asciiSize).toBe(40);
    expect(d.bytes).toEqual({ obSize: 16, obSval: 32 });
    expect(d.freeThreaded).toBe(false);
    expect(stackLayout(3, 13, d)!.source).toMatch(/_Py_DebugOffsets/);
    // The collector's generation: the generation_stats counter it moves.
    const gc = { name: 'gc_collect_main', value: 1, size: 100, kind: 'func', bind: 'local', table: 'symtab', file: 'gc.c' } as const;
    expect(chooseGcEntries(3, 13, [gc], true, d).entries[0].generation)
      .toEqual({ from: 'arg-or-stats', index: 1, tstateInterp: 16, statsStride: 24, statsOffset: 7528 });
    expect(chooseGcEntries(3, 13, [gc], true, { ...d, freeThreaded: true }).reason).toMatch(/free-threaded/);
    expect(stackLayout(3, 13, { ...d, freeThreaded: true })).toBeNull();
    expect(parseDebugOffsets(Buffer.alloc(DEBUG_OFFSETS_SIZE_3_13))).toBeNull(); // no cookie
  });
});

describe('the collector per version (pure)', () => {
  const sym = (name: string, value: number, file = 'gcmodule.c'): ElfSymbol =>
    ({ name, value, size: 100, kind: 'func', bind: 'local', table: 'symtab', file });

  test('the exact function gets its generation argument; clones are attached with the generation unknown', () => {
    expect(chooseGcEntries(3, 11, [sym('gc_collect_main', 1)], true).entries.map((e) => e.generation)).toEqual([{ from: 'arg', index: 1 }]);
    expect(chooseGcEntries(3, 9, [sym('collect', 1)], true).entries[0].generation).toEqual({ from: 'arg', index: 1 });
    const c = chooseGcEntries(3, 8, [sym('collect.constprop.0', 1), sym('collect.constprop.1', 2)], true);
    expect(c.entries.map((e) => e.generation.from)).toEqual(['unknown', 'unknown']);
    expect(c.reason).toMatch(/compiler clones collect\.constprop\.0, collect\.constprop\.1/);
  });

  test('a static function of another file with the same name is not the collector', () => {
    const c = chooseGcEntries(3, 9, [sym('collect', 1, 'other.c'), sym('collect', 2)], true);
    expect(c.entries.map((e) => e.symbol.value)).toEqual([2]);
  });

  test('nothing to attach: stripped build, unknown version, ambiguous name', () => {
    expect(chooseGcEntries(3, 12, [], false).reason).toMatch(/no \.symtab \(stripped\)/);
    expect(chooseGcEntries(3, 12, [], true).reason).toMatch(/not in the symbol table/);
    expect(chooseGcEntries(3, 7, [sym('collect', 1)], true).reason).toMatch(/no known GC entry point for Python 3\.7/);
    expect(chooseGcEntries(3, 9, [sym('collect', 1, ''), sym('collect', 2, '')], true).reason).toMatch(/2 functions named collect/);
  });

  test('candidate names: the collectors and their clones, never .part or .cold', () => {
    expect(['collect', 'gc_collect_main', 'collect.constprop.1', 'gc_collect_main.isra.0'].every(isGcEntryCandidate)).toBe(true);
    expect(['collect.part.0', 'gc_collect_main.cold', 'collections_exec', 'gc_collect'].some(isGcEntryCandidate)).toBe(false);
  });

  test('attach cookies as bpf/pygc.h decodes them', () => {
    expect(gcEntryCookie({ from: 'arg', index: 1 })).toBe(0x101);
    expect(gcEntryCookie({ from: 'const', generation: 2 })).toBe(0x202);
    expect(gcEntryCookie({ from: 'unknown' })).toBe(0);
    const c = gcEntryCookie({ from: 'arg-or-stats', index: 1, tstateInterp: 16, statsStride: 24, statsOffset: 7528 });
    expect(c % 2 ** 32).toBe(3 | (1 << 8) | (16 << 16) | (24 << 24));
    expect(Math.floor(c / 2 ** 32)).toBe(7528);
  });
});

test('maps lines: file mappings with device and inode, anonymous ones left out', () => {
  const text = [
    '7f0000000000-7f0000100000 r--p 00000000 fe:00 339850                     /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0',
    '7f0000100000-7f0000200000 r-xp 00100000 fe:00 339850                     /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0',
    '7f0000200000-7f0000300000 rw-p 00000000 00:00 0 ',
    '00400000-00401000 r-xp 00000000 00:2a 17                                 /tmp/x/python3 (deleted)',
  ].join('\n');
  const m = parseMaps(text);
  expect(m).toHaveLength(3);
  expect(m[1]).toMatchObject({ start: 0x7f0000100000, offset: 0x100000, dev: 'fe:00', inode: 339850, perms: 'r-xp' });
  expect(m[2].path).toBe('/tmp/x/python3 (deleted)');
});

describe('remote reads (process_vm_readv)', () => {
  test("a live python's bytes object, with an unreadable range in the same batch", async () => {
    const child = start(DEBIAN_PYTHON, ['-c', 'import sys\nb = b"premortem-" * 10\nprint("ready", id(b), flush=True)\nsys.stdin.readline()'], { stdio: ['pipe', 'pipe', 'pipe'] });
    const line = await printed(child, /ready \d+/);
    const addr = Number(line.split(' ')[1]);
    const r = createRemoteReader(child.pid!);
    const [bad, data, size] = r.readMany([[4096, 8], [addr + 32, 100], [addr + 16, 8]]);
    expect(bad).toBeNull();
    expect(data!.toString('latin1')).toBe('premortem-'.repeat(10));
    expect(Number(size!.readBigInt64LE(0))).toBe(100);
    expect(r.calls).toBe(2); // stopped at the bad range, went on after it
    expect(r.read(2 ** 60, 8)).toBeNull(); // not a user address: no call at all
    expect(r.calls).toBe(2);
  });

  test('a partial batch: the ranges after a failing one are still read', () => {
    // A fake kernel: every range at address 0x1000 fails.
    const fake = (_pid: number, iov: Float64Array, out: Uint8Array) => {
      let n = 0;
      for (let i = 0; i < iov.length; i += 2) {
        if (iov[i] === 0x1000) return n;
        out.fill(iov[i] / 0x1000, n, n + iov[i + 1]);
        n += iov[i + 1];
      }
      return n;
    };
    const r = createRemoteReader(1, fake);
    const out = r.readMany([[0x2000, 2], [0x1000, 4], [0x3000, 1], [0x1000, 1], [0x4000, 3]]);
    expect(out.map((b) => (b ? [...b] : null))).toEqual([[2, 2], null, [3], null, [4, 4, 4]]);
    expect(r.calls).toBe(3);
  });
});
