/**
 * Record dispatch: each batch of kernel records is decoded and every record
 * handed to the handler its probe registered for its type (an array lookup
 * per record). Handlers live beside their probe's decoder
 * (agent/probes/<probe>/ingest.ts) and share this context.
 */
import type { AgentOptions } from '../config';
import type { Clock } from '../core/clock';
import type { ErrorCounter } from '../core/errors';
import type { MarkerBoard } from '../core/markers';
import type { Judge } from '../deaths/judge';
import type { Registry } from '../registry/registry';
import type { Watch } from '../registry/watch';
import { decodeBatch, KernelRecord } from '../records';

export interface IngestContext {
  options: AgentOptions;
  clock: Clock;
  registry: Registry;
  markers: MarkerBoard;
  judge: Judge;
  watch: Watch;
  errors: ErrorCounter;
  /** The process a marker or fact is about changed role or name. */
  topology(): void;
  /** The kernel saw a tracked process exec: its interpreter may need probes. */
  execed(pid: number): void;
}

/** Handlers of one probe's record types. */
export type RecordHandlers = Array<[type: number, handle: (r: never) => void]>;

export interface Ingest {
  onBatch(batch: ArrayBuffer): void;
}

export function createIngest(handlers: RecordHandlers, errors: ErrorCounter): Ingest {
  const table: Array<((r: KernelRecord) => void) | undefined> = [];
  for (const [type, handle] of handlers) table[type] = handle as (r: KernelRecord) => void;
  const onRecord = (r: KernelRecord) => table[r.type]?.(r);
  return {
    onBatch(batch) {
      try {
        decodeBatch(batch, onRecord);
      } catch (e) {
        errors.count('decode', e);
      }
    },
  };
}
