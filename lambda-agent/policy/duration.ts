/**
 * Durations in policies: `90s`, `30m`, `8h`, `3d`, `1w` (and the long forms `ms`
 * accepts, e.g. `10 minutes`) or ISO 8601 (`PT8H`, `P3DT4H`). The short forms are
 * parsed by `ms` and ISO 8601 by `tinyduration`: both tiny, dependency-free and widely
 * used, so the agent bundle stays small and nobody maintains a duration grammar here.
 * Months and years are refused: their length depends on the calendar.
 */
import ms from 'ms';
import { parse as parseIso } from 'tinyduration';

export type DurationResult = { ok: true; ms: number } | { ok: false; problem: string };

const ALLOWED = "a duration such as '90s', '30m', '8h', '3d' or ISO 8601 'PT8H'";

export function parseDuration(input: unknown): DurationResult {
  if (typeof input !== 'string' || input.trim() === '') {
    return { ok: false, problem: `must be ${ALLOWED}` };
  }
  const text = input.trim();
  if (/^P/i.test(text)) {
    let d;
    try {
      d = parseIso(text.toUpperCase());
    } catch {
      return { ok: false, problem: `is not a valid ISO 8601 duration; use ${ALLOWED}` };
    }
    const parts = [d.weeks, d.days, d.hours, d.minutes, d.seconds];
    if (d.negative || parts.some((v) => v !== undefined && v < 0)) return { ok: false, problem: 'must be positive' };
    if (d.years || d.months) return { ok: false, problem: 'may not use years or months (their length varies); use days' };
    const total =
      (d.weeks ?? 0) * 604_800_000 +
      (d.days ?? 0) * 86_400_000 +
      (d.hours ?? 0) * 3_600_000 +
      (d.minutes ?? 0) * 60_000 +
      (d.seconds ?? 0) * 1000;
    return { ok: true, ms: Math.round(total) };
  }
  if (/^[+-]?\d+(\.\d+)?$/.test(text)) {
    return { ok: false, problem: `needs a unit; use ${ALLOWED}` };
  }
  if (/\b(y|yrs?|years?|mo|months?)\b/i.test(text) || /^\d+(\.\d+)?\s*y$/i.test(text)) {
    return { ok: false, problem: 'may not use years or months (their length varies); use days' };
  }
  let value: number | undefined;
  try {
    value = ms(text as ms.StringValue);
  } catch {
    value = undefined;
  }
  if (value === undefined || !Number.isFinite(value)) return { ok: false, problem: `must be ${ALLOWED}` };
  if (value < 0) return { ok: false, problem: 'must be positive' };
  return { ok: true, ms: Math.round(value) };
}

/** A compact human form: `1d 4h`, `34m`, `45s` (the two largest non-zero units). */
export function formatDuration(msValue: number): string {
  const sign = msValue < 0 ? '-' : '';
  let s = Math.round(Math.abs(msValue) / 1000);
  const d = Math.floor(s / 86400);
  s -= d * 86400;
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  // Same output as joining the first two of [d, h, m] that are non-zero, else seconds.
  if (d) return h ? `${sign}${d}d ${h}h` : m ? `${sign}${d}d ${m}m` : `${sign}${d}d`;
  if (h) return m ? `${sign}${h}h ${m}m` : `${sign}${h}h`;
  if (m) return `${sign}${m}m`;
  return `${sign}${s}s`;
}
