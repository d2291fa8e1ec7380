/**
 * Real CPython interpreters for the python room's tests: the pyenv builds of
 * this machine (no USDT probes, full symbol tables) and Debian's python3.11
 * (USDT probes, stripped). A missing interpreter fails the test that needs it.
 */
import * as fs from 'fs';

export const PYENV_ROOT = '/root/.pyenv/versions';
export const DEBIAN_PYTHON = '/usr/bin/python3.11';

/** The pyenv interpreter of Python 3.`minor` (e.g. 12 → /root/.pyenv/versions/3.12.1/bin/python3.12). */
export function pyenvPython(minor: number): string {
  const dirs = fs.existsSync(PYENV_ROOT) ? fs.readdirSync(PYENV_ROOT) : [];
  const v = dirs.find((d) => d.startsWith(`3.${minor}.`));
  const exe = v && `${PYENV_ROOT}/${v}/bin/python3.${minor}`;
  if (!exe || !fs.existsSync(exe))
    throw new Error(`no pyenv Python 3.${minor} under ${PYENV_ROOT} (found: ${dirs.join(', ') || 'nothing'}): these tests need the pyenv builds`);
  return exe;
}

/** The libpython a pyenv interpreter loads. */
export function pyenvLibpython(minor: number): string {
  return fs.realpathSync(pyenvPython(minor).replace(/\/bin\/python3\.\d+$/, `/lib/libpython3.${minor}.so.1.0`));
}

/**
 * Builds cyclic garbage under a big live heap, so that full collections take
 * milliseconds; measures each collection itself (gc.callbacks) to compare.
 * Prints "ready", waits for a line, works, prints "done {json}" with, per
 * generation, [collections, longest ns, collected + uncollectable], then waits.
 */
export const GC_SCRIPT = `
import gc, sys, time, json
stats = {0: [0, 0, 0], 1: [0, 0, 0], 2: [0, 0, 0]}
t0 = [0]
def cb(phase, info):
    if phase == 'start': t0[0] = time.perf_counter_ns()
    else:
        s = stats[info['generation']]
        s[0] += 1; s[1] = max(s[1], time.perf_counter_ns() - t0[0]); s[2] += info['collected'] + info['uncollectable']
print('ready', flush=True)
sys.stdin.readline()
gc.callbacks.append(cb)
live = [[i] for i in range(400000)]
for round in range(5):
    if round >= 3: gc.disable()  # the last rounds' cycles wait for the full collection
    for i in range(20000):
        a = {}; b = {'a': a}; a['b'] = b
    gc.collect()
    gc.enable()
gc.callbacks.remove(cb)
print('done', json.dumps(stats), flush=True)
sys.stdin.readline()
`;

export type GcOwnStats = Record<'0' | '1' | '2', [number, number, number]>;
