/**
 * The measuring sticks of the savings replay, fixed once and shared by every policy
 * (see docs/savings.md for the reasoning):
 *
 * - a sample is NEEDED when CPU > 10 % or network > 100 KB/s: while a policy has the VM
 *   stopped, such a sample means someone (a person or their job) needed it — the stop
 *   was a DISRUPTION, and the VM is started again;
 * - a sample is QUIET when CPU < 5 % and network < 100 KB/s (both known);
 * - WASTE is the running time covered by quiet samples that lie in a maximal quiet run
 *   of at least one hour (a run is broken by any other sample and by a gap longer than
 *   1.5 periods: missing data is never idle). It does not depend on any policy.
 */
import { TRACE_PERIOD_MS, type VmTrace } from './trace';

export const DISRUPTION = {
  /** A sample above this CPU % while stopped is activity someone needed. */
  cpuPercentAbove: 10,
  /** A sample above this network throughput (in + out, bytes/s) while stopped is activity someone needed. */
  networkBytesPerSecAbove: 100 * 1024,
} as const;

export const WASTE = {
  cpuPercentBelow: 5,
  networkBytesPerSecBelow: 100 * 1024,
  /** Quiet runs shorter than this are not waste (not worth a stop/start cycle). */
  minRunMs: 3_600_000,
} as const;

/** Activity someone needed (unknown figures are no evidence of need). */
export function isNeeded(cpuPercent: number, netBytesPerSec: number): boolean {
  return cpuPercent > DISRUPTION.cpuPercentAbove || netBytesPerSec > DISRUPTION.networkBytesPerSecAbove;
}

/** Clearly idle (both figures known and low). */
export function isQuiet(cpuPercent: number, netBytesPerSec: number): boolean {
  return cpuPercent < WASTE.cpuPercentBelow && netBytesPerSec < WASTE.networkBytesPerSecBelow;
}

/**
 * The time each sample stands for: the interval since the previous sample, at most one
 * period (the first sample stands for one period; the rest of a longer gap is unobserved).
 */
export function sampleIntervals(at: Float64Array, periodMs = TRACE_PERIOD_MS): Float64Array {
  const out = new Float64Array(at.length);
  for (let j = 0; j < at.length; j++) out[j] = j === 0 ? periodMs : Math.min(periodMs, at[j] - at[j - 1]);
  return out;
}

/** Per sample: 1 when the trace shows activity someone needed. */
export function neededMask(trace: VmTrace): Uint8Array {
  const out = new Uint8Array(trace.at.length);
  for (let j = 0; j < out.length; j++) out[j] = isNeeded(trace.cpu[j], trace.net[j]) ? 1 : 0;
  return out;
}

/** Per sample: 1 when the sample is waste (quiet, in a quiet run of at least `WASTE.minRunMs`). */
export function wasteMask(trace: VmTrace, intervals = sampleIntervals(trace.at), periodMs = TRACE_PERIOD_MS): Uint8Array {
  const n = trace.at.length;
  const out = new Uint8Array(n);
  let runStart = -1;
  let runMs = 0;
  const close = (end: number) => {
    if (runStart >= 0 && runMs >= WASTE.minRunMs) out.fill(1, runStart, end);
    runStart = -1;
    runMs = 0;
  };
  for (let j = 0; j < n; j++) {
    const quiet = isQuiet(trace.cpu[j], trace.net[j]);
    const contiguous = j > 0 && trace.at[j] - trace.at[j - 1] <= 1.5 * periodMs;
    if (!quiet || !contiguous) close(j);
    if (quiet) {
      if (runStart < 0) runStart = j;
      runMs += intervals[j];
    }
  }
  close(n);
  return out;
}
