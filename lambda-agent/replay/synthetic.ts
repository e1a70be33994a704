/**
 * Small synthetic traces with known answers: the unit tests pin their results, and the
 * replay runs on them when the real trace is absent. All dates are in August 2013, when
 * Europe/Amsterdam is UTC+2 (CEST): local time is UTC + 2 h throughout.
 */
import { TRACE_PERIOD_MS, type VmTrace } from './trace';

const HOUR = 3_600_000;
const LOCAL_OFFSET_MS = 2 * HOUR;

/** Monday 5 August 2013 00:00 in Amsterdam. */
export const SYNTHETIC_MONDAY = Date.UTC(2013, 7, 5) - LOCAL_OFFSET_MS;
/** Thursday 1 August 2013 00:00 in Amsterdam: where the real trace starts. */
export const TRACE_MONTH_START = Date.UTC(2013, 7, 1) - LOCAL_OFFSET_MS;

export interface Usage {
  readonly cpu: number;
  /** Network received + transmitted, KB/s. */
  readonly netKBps: number;
}

/** Local (Amsterdam, CEST) hour of day as a fraction, and day of week (0 = Sunday). */
export function localClock(t: number): { hour: number; weekday: number } {
  const d = new Date(t + LOCAL_OFFSET_MS);
  return { hour: d.getUTCHours() + d.getUTCMinutes() / 60, weekday: d.getUTCDay() };
}

/**
 * A VM sampled every 300 s from `start` (first sample one period later) for `days`,
 * with usage given per interval by `usage(end of interval)`.
 */
export function syntheticVm(
  id: string,
  start: number,
  days: number,
  usage: (t: number) => Usage,
  cores = 2,
  memoryKb = 8 * 1024 * 1024,
): VmTrace {
  const n = Math.round((days * 24 * HOUR) / TRACE_PERIOD_MS);
  const at = new Float64Array(n);
  const cpu = new Float64Array(n);
  const net = new Float64Array(n);
  for (let j = 0; j < n; j++) {
    const t = start + (j + 1) * TRACE_PERIOD_MS;
    const u = usage(t);
    at[j] = t;
    cpu[j] = u.cpu;
    net[j] = u.netKBps * 1024;
  }
  return {
    id,
    cores,
    memoryKb,
    at,
    cpu,
    net,
    stats: { rows: n, kept: n, coresZero: 0, duplicates: 0, invalid: 0, clippedCpu: 0, unsorted: false, gaps: 0, gapMs: 0 },
  };
}

const IDLE: Usage = { cpu: 1, netKBps: 1 };
const BUSY: Usage = { cpu: 40, netKBps: 200 };

/** The interval ending at `t` lies within [from, to) local hours. */
function within(t: number, from: number, to: number): boolean {
  const { hour } = localClock(t - TRACE_PERIOD_MS);
  return hour >= from && hour < to;
}

/** The synthetic fleet of the tests: one VM per behaviour. */
export function syntheticFleet(start = SYNTHETIC_MONDAY, days = 7): VmTrace[] {
  return [
    // Busy 09:00–17:00 on weekdays, idle otherwise.
    syntheticVm('office', start, days, (t) => {
      const { weekday } = localClock(t - TRACE_PERIOD_MS);
      return weekday >= 1 && weekday <= 5 && within(t, 9, 17) ? BUSY : IDLE;
    }),
    // Never does anything.
    syntheticVm('idle', start, days, () => IDLE),
    // A batch job every night 02:00–02:30, idle otherwise.
    syntheticVm('nightly', start, days, (t) => (within(t, 2, 2.5) ? { cpu: 60, netKBps: 50 } : IDLE)),
    // Serving traffic with little CPU: network 500 KB/s, CPU 2 %.
    syntheticVm('net-busy', start, days, () => ({ cpu: 2, netKBps: 500 })),
    // Powered off all along: no CPU at all.
    syntheticVm('off', start, days, () => ({ cpu: 0, netKBps: 0 })),
  ];
}
