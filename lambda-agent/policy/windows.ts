/**
 * Weekly time windows in an IANA time zone (schedules, peak tariffs).
 *
 * Wall-clock to instant conversion is done by `@date-fns/tz` (`TZDateMini`, ~1.3 KB,
 * built on `Intl`), so daylight-saving changes in either hemisphere are the platform's
 * tz database, not arithmetic written here. Intervals are memoized per window set and
 * local day, because `Intl` calls are the slow part of an evaluation; the hot path
 * makes none once the cache is warm.
 */
import { TZDateMini } from '@date-fns/tz/date/mini';

export const DAY_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'] as const;
export type DayName = (typeof DAY_NAMES)[number];

/** One weekly window: on these days, from `start` to `end` local time (`end` may be past midnight). */
export interface Window {
  /** Days on which the window opens. */
  readonly days: readonly DayName[];
  /** Local opening time, `HH:MM`. */
  readonly start: string;
  /** Local closing time, `HH:MM` (`24:00` allowed; earlier than `start` means the next day). */
  readonly end: string;
}

export interface WindowSet {
  readonly windows: readonly Window[];
  /** IANA time zone, e.g. `Europe/Amsterdam`. */
  readonly timezone: string;
}

const TIME = /^([01]\d|2[0-3]):([0-5]\d)$|^24:00$/;

export function isTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

function minutes(hhmm: string): number {
  if (hhmm === '24:00') return 1440;
  return Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));
}

/** Problems of a window set, each as `[path, message]` relative to the set. */
export function windowProblems(set: WindowSet): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (!isTimeZone(set.timezone)) {
    out.push(['timezone', `is not an IANA time zone, got: ${JSON.stringify(set.timezone)}. Use e.g. 'Europe/Amsterdam'`]);
  }
  if (set.windows.length === 0) out.push(['windows', 'is empty; give at least one window']);
  const ranges: Array<[number, number, number]> = [];
  set.windows.forEach((w, i) => {
    const okStart = TIME.test(w.start) && w.start !== '24:00';
    const okEnd = TIME.test(w.end);
    if (!okStart) out.push([`windows[${i}].start`, `must be HH:MM (00:00–23:59), got: ${JSON.stringify(w.start)}`]);
    if (!okEnd) out.push([`windows[${i}].end`, `must be HH:MM (00:00–24:00), got: ${JSON.stringify(w.end)}`]);
    if (w.days.length === 0) out.push([`windows[${i}].days`, 'is empty; name at least one day (mon … sun)']);
    if (new Set(w.days).size !== w.days.length) out.push([`windows[${i}].days`, 'names a day twice']);
    if (!okStart || !okEnd) return;
    const s = minutes(w.start);
    let e = minutes(w.end);
    if (e === s) {
      out.push([`windows[${i}]`, `is empty: start and end are both ${w.start}`]);
      return;
    }
    if (e < s) e += 1440;
    for (const d of w.days) {
      const base = DAY_NAMES.indexOf(d) * 1440;
      ranges.push([base + s, base + e, i]);
    }
  });
  // Overlaps within the week (a window past Saturday midnight wraps to Sunday).
  const week = 7 * 1440;
  for (let a = 0; a < ranges.length; a++) {
    for (let b = a + 1; b < ranges.length; b++) {
      const [s1, e1, i1] = ranges[a];
      const [s2, e2, i2] = ranges[b];
      for (const shift of [-week, 0, week]) {
        if (s1 < e2 + shift && s2 + shift < e1) {
          const msg = i1 === i2 ? 'overlaps itself' : `overlaps windows[${Math.min(i1, i2)}]`;
          out.push([`windows[${Math.max(i1, i2)}]`, msg]);
          b = ranges.length;
          a = ranges.length;
          break;
        }
      }
    }
  }
  return out;
}

type Interval = readonly [number, number];

/**
 * Openings per window set and local day. Keyed by the set's content (time zone and
 * windows), not by object, so that every policy with the same windows, and every
 * re-parse of a policy (the watchdog parses it on each invocation), shares the entries.
 */
const cache = new Map<string, Map<number, Interval[]>>();
const keys = new WeakMap<WindowSet, string>();
/** Shortcut from a set object to its day map (still valid after the shared cache is cleared: entries depend on content only). */
const bySet = new WeakMap<WindowSet, Map<number, Interval[]>>();
/** Bounds of the cache: distinct window sets, and local days per set. */
const MAX_SETS = 256;
const MAX_DAYS = 512;

function cacheFor(set: WindowSet): Map<number, Interval[]> {
  const direct = bySet.get(set);
  if (direct) return direct;
  let key = keys.get(set);
  if (key === undefined) {
    key = `${set.timezone}|${JSON.stringify(set.windows)}`;
    keys.set(set, key);
  }
  let perSet = cache.get(key);
  if (!perSet) {
    if (cache.size >= MAX_SETS) cache.clear();
    perSet = new Map();
    cache.set(key, perSet);
  }
  bySet.set(set, perSet);
  return perSet;
}

/** UTC offsets of IANA zones lie within these bounds (UTC−12 … UTC+14). */
const MAX_OFFSET_MS = 14 * 3_600_000;

/**
 * A range of day indices (days since 1970-01-01) that contains the local calendar day
 * of every instant in [from, to] in any time zone: no `Intl` call needed. Days outside
 * the exact local range only contribute intervals that the caller filters out.
 */
function dayRange(from: number, to: number): [number, number] {
  return [Math.floor((from - MAX_OFFSET_MS) / 86_400_000), Math.floor((to + MAX_OFFSET_MS) / 86_400_000)];
}

/** Intervals of windows that open on one local day. */
function openingsOn(set: WindowSet, perSet: Map<number, Interval[]>, dayIndex: number): Interval[] {
  const hit = perSet.get(dayIndex);
  if (hit) return hit;
  const date = new Date(dayIndex * 86_400_000);
  const y = date.getUTCFullYear();
  const m = date.getUTCMonth();
  const d = date.getUTCDate();
  const weekday = DAY_NAMES[date.getUTCDay()];
  const out: Interval[] = [];
  for (const w of set.windows) {
    if (!w.days.includes(weekday)) continue;
    const s = minutes(w.start);
    let e = minutes(w.end);
    if (e <= s) e += 1440;
    const start = new TZDateMini(y, m, d, 0, s, 0, 0, set.timezone).getTime();
    const end = new TZDateMini(y, m, d, 0, e, 0, 0, set.timezone).getTime();
    if (end > start) out.push([start, end]);
  }
  out.sort((a, b) => a[0] - b[0]);
  if (perSet.size >= MAX_DAYS) perSet.clear();
  perSet.set(dayIndex, out);
  return out;
}

/** Merged, sorted intervals overlapping [from, to]. */
export function intervals(set: WindowSet, from: number, to: number): Interval[] {
  // A window opening on the day before `from`'s local day can still be open at `from`.
  const [first, last] = dayRange(from, to);
  const perSet = cacheFor(set);
  // Openings are cached sorted per day, and a day's openings never start before the
  // previous day's: merge in one pass, and sort only if that ever fails to hold.
  const merged: Array<[number, number]> = [];
  let lastStart = -Infinity;
  for (let day = first - 1; day <= last; day++) {
    for (const iv of openingsOn(set, perSet, day)) {
      if (iv[1] <= from || iv[0] >= to) continue;
      if (iv[0] < lastStart) return mergedSorted(set, perSet, from, to, first, last);
      lastStart = iv[0];
      const top = merged[merged.length - 1];
      if (top && iv[0] <= top[1]) top[1] = Math.max(top[1], iv[1]);
      else merged.push([iv[0], iv[1]]);
    }
  }
  return merged;
}

/** {@link intervals} for openings out of order: collect, sort, merge. */
function mergedSorted(set: WindowSet, perSet: Map<number, Interval[]>, from: number, to: number, first: number, last: number): Interval[] {
  const raw: Interval[] = [];
  for (let day = first - 1; day <= last; day++) {
    for (const iv of openingsOn(set, perSet, day)) if (iv[1] > from && iv[0] < to) raw.push(iv);
  }
  raw.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const [s, e] of raw) {
    const top = merged[merged.length - 1];
    if (top && s <= top[1]) top[1] = Math.max(top[1], e);
    else merged.push([s, e]);
  }
  return merged;
}

export interface WindowPosition {
  readonly inside: boolean;
  /** Start of the window containing `t`, or of the last window before it. */
  readonly lastOpen?: number;
  /** End of the last window that closed at or before `t`. */
  readonly lastClose?: number;
  /** Next opening after `t` (when outside). */
  readonly nextOpen?: number;
  /** End of the current window (inside) or of the next one (outside). */
  readonly nextClose?: number;
}

const SEARCH_MS = 8 * 86_400_000;

/** Where `t` stands relative to the windows (searches eight days either side). */
export function position(set: WindowSet, t: number): WindowPosition {
  const ivs = intervals(set, t - SEARCH_MS, t + SEARCH_MS);
  let lastOpen: number | undefined;
  let lastClose: number | undefined;
  // Built property by property (only the keys that are known): this is on the hot path.
  const out: { -readonly [K in keyof WindowPosition]: WindowPosition[K] } = { inside: false };
  for (const [s, e] of ivs) {
    if (s <= t && t < e) {
      out.inside = true;
      out.lastOpen = s;
      out.nextClose = e;
      if (lastClose !== undefined) out.lastClose = lastClose;
      return out;
    }
    if (e <= t) {
      lastOpen = s;
      lastClose = e;
      continue;
    }
    if (lastOpen !== undefined) out.lastOpen = lastOpen;
    if (lastClose !== undefined) out.lastClose = lastClose;
    out.nextOpen = s;
    out.nextClose = e;
    return out;
  }
  if (lastOpen !== undefined) out.lastOpen = lastOpen;
  if (lastClose !== undefined) out.lastClose = lastClose;
  return out;
}

/** Milliseconds of [from, to) that fall inside the windows. */
export function overlapMs(set: WindowSet, from: number, to: number): number {
  if (to <= from) return 0;
  // The length of the union, summed in one pass over the day-sorted openings (the same
  // integer as summing the merged intervals), without building them.
  const [first, last] = dayRange(from, to);
  const perSet = cacheFor(set);
  let total = 0;
  let covered = from;
  let lastStart = -Infinity;
  for (let day = first - 1; day <= last; day++) {
    for (const iv of openingsOn(set, perSet, day)) {
      if (iv[1] <= from || iv[0] >= to) continue;
      if (iv[0] < lastStart) return overlapOfMerged(set, from, to);
      lastStart = iv[0];
      const lo = Math.max(iv[0], covered);
      const hi = Math.min(iv[1], to);
      if (hi > lo) total += hi - lo;
      if (iv[1] > covered) covered = iv[1];
    }
  }
  return total;
}

function overlapOfMerged(set: WindowSet, from: number, to: number): number {
  let total = 0;
  for (const [s, e] of intervals(set, from, to)) total += Math.max(0, Math.min(e, to) - Math.max(s, from));
  return total;
}
