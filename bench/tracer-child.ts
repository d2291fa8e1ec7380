/**
 * One tracer in its own process, for cost comparisons: loads the addon at a
 * given path (this build's, or an older build's), tracks the given pids (and
 * what they fork), prints "ready", and holds the probes until stdin closes or
 * it is signalled. Its BPF programs are found by the parent through its fds.
 *
 *   node dist/bench/tracer-child.js '{"addon":"...premortem.node","probes":["runqlat"],"pids":[1,2]}'
 */
interface ChildArgs {
  addon: string;
  probes: string[];
  pids: number[];
}

interface MinimalTracer {
  track(pid: number, startNs?: number, flags?: number): void;
  probes(): Array<{ name: string; loaded: boolean; error?: { message: string } }>;
  close(): void;
}

const TRACK_FOLLOW_FORKS = 1;

function main(): void {
  const a = JSON.parse(process.argv[2] ?? '{}') as ChildArgs;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const addon = require(a.addon) as { Tracer: new (o: object) => MinimalTracer };
  const tracer = new addon.Tracer({ probes: a.probes, onRecords() { /* counted by the kernel's stats only */ } });
  const bad = tracer.probes().filter((p) => !p.loaded);
  if (bad.length) throw new Error(`probes not loaded: ${bad.map((p) => `${p.name}: ${p.error?.message}`).join('; ')}`);
  for (const pid of a.pids) tracer.track(pid, 0, TRACK_FOLLOW_FORKS);
  process.stdout.write('ready\n');
  const stop = () => {
    tracer.close();
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
  setInterval(() => undefined, 1 << 30);
}

main();
