/**
 * How premortem writes numbers in sentences (verdict summaries, markers, the
 * CLI): whole MiB for memory, UTC clock times to the millisecond. Shared by the
 * agent and the viewer, so a summary reads the same wherever it is shown. (The
 * viewer's chart axes use finer formats of their own: viewer/src/format.ts.)
 */

export function formatBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(1)} GiB`;
  if (n >= 1 << 20) return `${Math.round(n / (1 << 20))} MiB`;
  if (n >= 1 << 10) return `${Math.round(n / (1 << 10))} KiB`;
  return `${n} B`;
}

/** "12:03:07.412" (UTC): the time of day in summaries. */
export function formatTime(tMs: number): string {
  return new Date(tMs).toISOString().slice(11, 23);
}
