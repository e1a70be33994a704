/**
 * What an instance costs per unit of time: the hourly compute rate (optionally higher
 * or lower inside peak windows), storage while stopped, and network out per GB.
 */
import type { BillingState } from '../contract/state';
import type { Policy } from './model';
import { overlapMs, intervals, type WindowSet } from './windows';

const HOUR = 3_600_000;
/** Hours in a billing month, as AWS prices GB-month. */
export const HOURS_PER_MONTH = 730;

export interface Tariff {
  /** Compute USD per hour outside peak windows; undefined = price unknown. */
  readonly hourlyUsd?: number;
  readonly peak?: { readonly hourlyUsd: number; readonly set: WindowSet };
  /** Storage USD per hour, charged while stopped (and running: it is part of the rate). */
  readonly storageHourlyUsd: number;
  readonly netOutUsdPerGb: number;
}

/** The last tariff built per policy (the engine and the spend rule ask for it on every evaluation). */
const memo = new WeakMap<Policy, { readonly observed: number | undefined; readonly tariff: Tariff }>();

/** The tariff from the policy's spend rule, falling back to the observed price. */
export function tariffOf(policy: Policy, observedHourlyUsd: number | undefined): Tariff {
  const hit = memo.get(policy);
  if (hit && hit.observed === observedHourlyUsd) return hit.tariff;
  const tariff = buildTariff(policy, observedHourlyUsd);
  memo.set(policy, { observed: observedHourlyUsd, tariff });
  return tariff;
}

function buildTariff(policy: Policy, observedHourlyUsd: number | undefined): Tariff {
  const spend = policy.rules.find((r) => r.type === 'spend');
  const p = (spend?.params ?? {}) as {
    hourlyUsd?: number;
    peak?: { hourlyUsd: number; set: WindowSet };
    storageGb?: number;
    storageUsdPerGbMonth?: number;
    networkOutUsdPerGb?: number;
  };
  const storage = (p.storageGb ?? 0) * (p.storageUsdPerGbMonth ?? 0);
  return {
    hourlyUsd: p.hourlyUsd ?? observedHourlyUsd,
    ...(p.peak ? { peak: p.peak } : {}),
    storageHourlyUsd: storage / HOURS_PER_MONTH,
    netOutUsdPerGb: p.networkOutUsdPerGb ?? 0,
  };
}

/** USD accrued over [from, to) in a billing state (compute is 0 when the price is unknown). */
export function accrue(t: Tariff, state: BillingState, from: number, to: number): number {
  if (to <= from) return 0;
  const hours = (to - from) / HOUR;
  let usd = t.storageHourlyUsd * hours;
  if (state === 'running') {
    const base = t.hourlyUsd ?? 0;
    usd += base * hours;
    if (t.peak) usd += ((t.peak.hourlyUsd - base) * overlapMs(t.peak.set, from, to)) / HOUR;
  }
  return usd;
}

/**
 * The instant at which running from `from` accrues `usd` more, or undefined when it
 * never does within `horizonMs` (e.g. a zero rate).
 */
export function timeToAccrue(t: Tariff, from: number, usd: number, horizonMs = 62 * 86_400_000): number | undefined {
  if (usd <= 0) return from;
  const base = (t.hourlyUsd ?? 0) + t.storageHourlyUsd;
  const segments: Array<[number, number, number]> = [];
  if (t.peak) {
    const peakRate = t.peak.hourlyUsd + t.storageHourlyUsd;
    let cursor = from;
    for (const [s, e] of intervals(t.peak.set, from, from + horizonMs)) {
      if (s > cursor) segments.push([cursor, s, base]);
      segments.push([Math.max(s, cursor), e, peakRate]);
      cursor = Math.max(cursor, e);
    }
    if (cursor < from + horizonMs) segments.push([cursor, from + horizonMs, base]);
  } else {
    segments.push([from, from + horizonMs, base]);
  }
  let left = usd;
  for (const [s, e, r] of segments) {
    if (e <= s || r <= 0) continue;
    const cost = (r * (e - s)) / HOUR;
    if (cost >= left) return s + (left / r) * HOUR;
    left -= cost;
  }
  return undefined;
}
