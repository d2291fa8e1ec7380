/**
 * Time as the agent reads it: kernel records carry CLOCK_BOOTTIME nanoseconds,
 * timelines use unix milliseconds cut into fixed intervals, and /proc start
 * times count clock ticks since boot.
 */
import { bootUnixMs, CLK_TCK } from '../procfs';

export interface Clock {
  readonly intervalMs: number;
  /** Unix ms the system booted (/proc/stat btime): start ticks become wall-clock times with it. */
  readonly bootMs: number;
  /** Re-reads the offset between the boot clock and the wall clock (NTP steps, suspend): every tick. */
  sync(): void;
  /** Unix ms of a record's CLOCK_BOOTTIME timestamp. */
  recMs(tsNs: number): number;
  /** Start of the interval that holds `tMs`. */
  intervalStart(tMs: number): number;
}

/** Nanoseconds per /proc clock tick: start ticks <-> the kernel's start_boottime. */
export const NS_PER_TICK = 1e9 / CLK_TCK;

/**
 * How far the wall clock must move against the boot clock before records are
 * placed by the new offset. Reading the two clocks is not atomic: followed at
 * every tick, the jitter of the reading would put a worker's exit a millisecond
 * before the signal that caused it.
 */
export const CLOCK_STEP_MS = 20;

export function createClock(intervalMs: number, bootTimeNs: () => number): Clock {
  let offsetMs = Number.NaN;
  const clock: Clock = {
    intervalMs,
    bootMs: bootUnixMs(),
    sync: () => {
      const now = Date.now() - bootTimeNs() / 1e6;
      if (!(Math.abs(now - offsetMs) < CLOCK_STEP_MS)) offsetMs = now;
    },
    recMs: (tsNs) => Math.round(tsNs / 1e6 + offsetMs),
    intervalStart: (tMs) => Math.floor(tMs / intervalMs) * intervalMs,
  };
  clock.sync();
  return clock;
}
