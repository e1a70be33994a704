/**
 * Usage facts for instances whose agent is silent: what to read, how often, and how
 * the readings become samples the rules scan.
 *
 * The agent's heartbeat report covers idle, over-use and health while it is fresh, and
 * then the watchdog reads nothing. Otherwise, for the rules that need usage facts, it
 * reads CloudWatch (billed per metric requested) and the status checks (free, but
 * throttled), once per cadence slot of a third of the shortest window (at least the
 * 5-minute metric period). The slot is computed from the clock alone, so the cadence
 * needs no state between invocations: a window of 30 minutes is judged from readings
 * at most 10 minutes old, at a tenth of the cost of reading every minute.
 */
import { isFirstCycleOfSlot } from '../adapters/clock';
import { METRIC_PERIOD_MS } from '../adapters/cloudwatch';
import type { StatusCheck } from '../adapters/ec2';
import type { Policy } from '../policy/model';
import type { Sample } from '../rules/types';

export interface MetricPlan {
  /** Read CPUUtilization. */
  readonly cpu: boolean;
  /** Read NetworkIn and NetworkOut. */
  readonly net: boolean;
  /** Read the status checks. */
  readonly status: boolean;
  /** Cadence: one reading per slot. */
  readonly slotMs: number;
  /** How far back a reading looks (the longest window, plus two periods of lag). */
  readonly lookbackMs: number;
  readonly periodMs: number;
}

/** What the policy's usage rules need, or undefined when it has none. */
export function planMetrics(policy: Policy): MetricPlan | undefined {
  let cpu = false;
  let net = false;
  let status = false;
  const windows: number[] = [];
  for (const r of policy.rules) {
    const p = r.params as { windowMs?: number; cpu?: number; net?: number };
    if (r.type === 'idle') {
      cpu = net = true;
    } else if (r.type === 'over-use') {
      if (p.cpu !== undefined) cpu = true;
      if (p.net !== undefined) net = true;
    } else if (r.type === 'health') {
      status = true;
    } else {
      continue;
    }
    if (typeof p.windowMs === 'number') windows.push(p.windowMs);
  }
  if (!cpu && !net && !status) return undefined;
  const shortest = windows.length ? Math.min(...windows) : METRIC_PERIOD_MS;
  const longest = windows.length ? Math.max(...windows) : METRIC_PERIOD_MS;
  const slotMs = Math.max(METRIC_PERIOD_MS, Math.floor(shortest / 3 / 60_000) * 60_000);
  return { cpu, net, status, slotMs, lookbackMs: longest + 2 * METRIC_PERIOD_MS, periodMs: METRIC_PERIOD_MS };
}

/** Whether this cycle reads usage facts (the first cycle of each slot). */
export function isMetricsCycle(plan: MetricPlan, now: number, scheduleIntervalMs: number): boolean {
  return isFirstCycleOfSlot(now, plan.slotMs, scheduleIntervalMs);
}

function statusAt(status: StatusCheck | undefined, at: number, now: number, periodMs: number): boolean | undefined {
  if (!status || status.ok === undefined) return undefined;
  if (status.ok) return true;
  // Impaired now: since EC2's ImpairedSince, or (unknown) for the last period only.
  return at >= (status.impairedSince ?? now - periodMs) ? false : true;
}

/**
 * Samples for one instance from its CloudWatch readings and its status check. Without
 * readings, a status check alone yields samples on the period grid (so a failing check
 * can be held against a window from EC2's ImpairedSince).
 */
export function buildSamples(
  now: number,
  plan: MetricPlan,
  usage: readonly Sample[] | undefined,
  status: StatusCheck | undefined,
): Sample[] | undefined {
  const period = plan.periodMs;
  if (usage && usage.length > 0) {
    if (!status || status.ok === undefined) return usage as Sample[];
    return usage.map((s) => ({ ...s, statusOk: statusAt(status, s.at, now, period) }));
  }
  if (!status || status.ok === undefined) return undefined;
  const last = now - (now % period);
  const out: Sample[] = [];
  for (let at = last - Math.ceil(plan.lookbackMs / period) * period; at <= last; at += period) {
    out.push({ at, statusOk: statusAt(status, at, now, period) });
  }
  return out;
}
