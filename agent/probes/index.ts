/**
 * The probes: one folder each (agent/probes/<probe>/: index.ts holds the record
 * layouts, decoders and map readers; ingest.ts what the agent does with its
 * records), its kernel side in bpf/<probe>.bpf.c + bpf/<probe>.h, its layout
 * checks in native/layout_<probe>.cc. Adding a probe is those files and one
 * line in PROBES. Importing this list registers every decoder: a record type
 * with no decoder fails test/kernel/records.test.ts.
 */
import type { IngestContext, RecordHandlers } from '../ingest/context';
import { RecordType, type UnknownRecord } from '../records';
import type { BioSlowRecord } from './disk';
import { diskHandlers } from './disk/ingest';
import type { FloodRecord } from './flood';
import type { ExecRecord, ExitRecord, ForkRecord, OomRecord, SignalRecord } from './lifecycle';
import { lifecycleHandlers } from './lifecycle/ingest';
import type { GcPauseRecord } from './pygc';
import { pygcHandlers } from './pygc/ingest';
import type { RunqSlowRecord } from './runqlat';
import { runqlatHandlers } from './runqlat/ingest';
import type { TcpEventRecord } from './tcp';
import { tcpHandlers } from './tcp/ingest';

export * from './runqlat';
export * from './flood';
export * from './lifecycle';
export * from './memory';
export * from './disk';
export * from './tcp';
export * from './pygc';
export * from './requests';

export interface ProbeModule {
  /** The kernel object's name: bpf/<name>.bpf.c. */
  name: string;
  /** Record types its programs submit. */
  records: number[];
  /** What the agent does with those records (none: its maps are read at each tick). */
  handlers?: (ctx: IngestContext) => RecordHandlers;
}

export const PROBES: readonly ProbeModule[] = [
  { name: 'runqlat', records: [RecordType.RunqSlow], handlers: runqlatHandlers },
  { name: 'lifecycle', records: [RecordType.Fork, RecordType.Exec, RecordType.Exit, RecordType.Signal, RecordType.Oom], handlers: lifecycleHandlers },
  { name: 'memory', records: [] },
  { name: 'disk', records: [RecordType.BioSlow], handlers: diskHandlers },
  { name: 'tcp', records: [RecordType.Tcp], handlers: tcpHandlers },
  { name: 'pygc', records: [RecordType.Gc], handlers: pygcHandlers },
  // Requests in flight: a map read at a worker's death (off with --no-requests).
  { name: 'requests', records: [] },
  // A load generator for the ingest bench and the loss tests: its records are only counted.
  { name: 'flood', records: [RecordType.Flood] },
];

/** Every decoded record, discriminated by `type`. Add each probe's records here. */
export type AnyRecord = RunqSlowRecord | FloodRecord | ForkRecord | ExecRecord | ExitRecord | SignalRecord | OomRecord | BioSlowRecord | TcpEventRecord | GcPauseRecord | UnknownRecord;

/** Every probe's handlers, for one agent. */
export function allHandlers(ctx: IngestContext): RecordHandlers {
  return PROBES.flatMap((p) => p.handlers?.(ctx) ?? []);
}
