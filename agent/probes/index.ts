/**
 * Every probe's decoder and layout, registered on import. Add one line per
 * probe module.
 */
export * from './runqlat';
export * from './flood';
export * from './lifecycle';
export * from './memory';
export * from './disk';
export * from './tcp';
export * from './pygc';

import type { RunqSlowRecord } from './runqlat';
import type { FloodRecord } from './flood';
import type { ForkRecord, ExecRecord, ExitRecord, SignalRecord, OomRecord } from './lifecycle';
import type { BioSlowRecord } from './disk';
import type { TcpEventRecord } from './tcp';
import type { GcPauseRecord } from './pygc';
import type { UnknownRecord } from '../records';

/** Every decoded record, discriminated by `type`. Add each probe's records here. */
export type AnyRecord = RunqSlowRecord | FloodRecord | ForkRecord | ExecRecord | ExitRecord | SignalRecord | OomRecord | BioSlowRecord | TcpEventRecord | GcPauseRecord | UnknownRecord;
