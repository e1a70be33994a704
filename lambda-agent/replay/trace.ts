/**
 * Reading the VM usage traces the savings replay runs on (GWA-T-12 Bitbrains "Rnd",
 * see /work/shared/traces/README.md): one `<vm_id>.csv.gz` per VM, `;`-separated,
 * timestamps in Unix seconds, sampled every 300 s.
 *
 * The caveats of the trace are handled here, once, so the replay sees clean samples:
 * - rows with `CPU cores` = 0 are the VM powered off / not provisioned (VMs 20, 82, 265
 *   interleave them with duplicate timestamps; 122–127 start with them): dropped;
 * - rows are sorted by time and a timestamp seen twice keeps its first valid row;
 * - CPU % above 100 (up to 114 in the trace) is clipped to 100;
 * - gaps are kept as gaps (no sample is invented): the engine breaks idle windows at gaps
 *   longer than 1.5 periods, so missing data never counts as idle;
 * - network = (received + transmitted) KB/s × 1024 → bytes/s.
 */
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { gunzipSync } from 'node:zlib';

/** Sampling period of the trace. */
export const TRACE_PERIOD_MS = 300_000;

/** What parsing a VM's file found (for the caveat report). */
export interface ParseStats {
  /** Data rows in the file (header excluded). */
  readonly rows: number;
  /** Rows kept as samples. */
  readonly kept: number;
  /** Rows dropped because `CPU cores` was 0 (VM powered off / not provisioned). */
  readonly coresZero: number;
  /** Valid rows dropped because their timestamp was already seen. */
  readonly duplicates: number;
  /** Rows with too few fields or an unreadable timestamp. */
  readonly invalid: number;
  /** Rows whose CPU % was above 100 (clipped). */
  readonly clippedCpu: number;
  /** Whether the file's timestamps were out of order. */
  readonly unsorted: boolean;
  /** Gaps longer than 1.5 periods between kept samples, and the time they miss. */
  readonly gaps: number;
  readonly gapMs: number;
}

/** One VM's clean samples, column-wise. */
export interface VmTrace {
  readonly id: string;
  /** vCPUs provisioned (largest value among kept rows). */
  readonly cores: number;
  /** Memory provisioned, KB (largest value among kept rows). */
  readonly memoryKb: number;
  /** End of each sampled interval, epoch ms, strictly ascending. */
  readonly at: Float64Array;
  /** CPU utilisation, percent of all cores, clipped to [0, 100]; NaN = unknown. */
  readonly cpu: Float64Array;
  /** Network received + transmitted, bytes/s; NaN = unknown. */
  readonly net: Float64Array;
  readonly stats: ParseStats;
}

const SEMI = 0x3b;
const NL = 0x0a;

/** A decimal number in `buf[start, end)`, spaces/tabs trimmed; NaN when unreadable. */
function num(buf: Buffer, start: number, end: number): number {
  while (start < end && (buf[start] === 0x20 || buf[start] === 0x09)) start++;
  while (end > start && (buf[end - 1] === 0x20 || buf[end - 1] === 0x09 || buf[end - 1] === 0x0d)) end--;
  if (start >= end) return NaN;
  // Fast exact path: [-]digits[.digits] with at most 15 significant digits (the
  // mantissa is an exact integer, one division by an exact power of ten rounds once,
  // so the result equals Number(text)). Anything else goes through Number().
  let i = start;
  let neg = false;
  if (buf[i] === 0x2d) {
    neg = true;
    i++;
  }
  let mant = 0;
  let digits = 0;
  let scale = 0;
  let seenDot = false;
  let ok = i < end;
  for (; i < end; i++) {
    const c = buf[i];
    if (c >= 0x30 && c <= 0x39) {
      if (digits > 0 || c !== 0x30) digits++;
      mant = mant * 10 + (c - 0x30);
      if (seenDot) scale++;
    } else if (c === 0x2e && !seenDot) {
      seenDot = true;
    } else {
      ok = false;
      break;
    }
  }
  if (ok && digits <= 15 && scale <= 22) {
    const v = scale === 0 ? mant : mant / POW10[scale];
    return neg ? -v : v;
  }
  const v = Number(buf.toString('latin1', start, end));
  return Number.isFinite(v) ? v : NaN;
}

const POW10: number[] = Array.from({ length: 23 }, (_, k) => Number(`1e${k}`));

/**
 * Parse one VM's CSV (text or bytes, not gzipped). Never throws for bad rows: they are
 * counted in the stats.
 */
export function parseVmCsv(id: string, input: string | Uint8Array): VmTrace {
  const buf =
    typeof input === 'string'
      ? Buffer.from(input, 'utf8')
      : Buffer.isBuffer(input)
        ? input
        : Buffer.from(input.buffer, input.byteOffset, input.byteLength);
  const n = buf.length;
  const ts: number[] = [];
  const cores: number[] = [];
  const cpu: number[] = [];
  const mem: number[] = [];
  const net: number[] = [];
  let rows = 0;
  let invalid = 0;
  let coresZero = 0;
  let clippedCpu = 0;
  const bounds = new Int32Array(12);
  let pos = 0;
  let first = true;
  while (pos < n) {
    let eol = buf.indexOf(NL, pos);
    if (eol < 0) eol = n;
    const lineStart = pos;
    pos = eol + 1;
    if (first) {
      first = false;
      // The header starts with a letter; a file without one starts with a digit.
      const c = buf[lineStart];
      if (!(c >= 0x30 && c <= 0x39)) continue;
    }
    // Blank line?
    let k = lineStart;
    while (k < eol && (buf[k] === 0x20 || buf[k] === 0x09 || buf[k] === 0x0d)) k++;
    if (k === eol) continue;
    rows++;
    // Field boundaries: bounds[f] = start of field f, bounds[f + 1] - 1 = its ';'.
    let f = 0;
    bounds[0] = lineStart;
    for (let q = lineStart; q < eol && f < 11; q++) {
      if (buf[q] === SEMI) bounds[++f] = q + 1;
    }
    if (f < 10) {
      invalid++;
      continue;
    }
    const t = num(buf, bounds[0], bounds[1] - 1);
    if (!Number.isFinite(t) || t <= 0) {
      invalid++;
      continue;
    }
    const c = num(buf, bounds[1], bounds[2] - 1);
    if (!(c > 0)) {
      coresZero++;
      continue;
    }
    let p = num(buf, bounds[4], bounds[5] - 1);
    if (p > 100) {
      clippedCpu++;
      p = 100;
    } else if (p < 0) p = NaN;
    const rx = num(buf, bounds[9], bounds[10] - 1);
    const tx = num(buf, bounds[10], f > 10 ? bounds[11] - 1 : eol);
    const nb = rx >= 0 && tx >= 0 ? (rx + tx) * 1024 : NaN;
    ts.push(t * 1000);
    cores.push(c);
    cpu.push(p);
    mem.push(num(buf, bounds[5], bounds[6] - 1));
    net.push(nb);
  }

  // Order by time (stable), then keep the first row of each timestamp.
  let unsorted = false;
  for (let i = 1; i < ts.length; i++) {
    if (ts[i] < ts[i - 1]) {
      unsorted = true;
      break;
    }
  }
  let order: number[] | undefined;
  if (unsorted) {
    order = ts.map((_, i) => i);
    order.sort((a, b) => ts[a] - ts[b] || a - b);
  }
  const at: number[] = [];
  const outCpu: number[] = [];
  const outNet: number[] = [];
  let duplicates = 0;
  let maxCores = 0;
  let maxMem = 0;
  for (let r = 0; r < ts.length; r++) {
    const i = order ? order[r] : r;
    if (at.length > 0 && ts[i] === at[at.length - 1]) {
      duplicates++;
      continue;
    }
    at.push(ts[i]);
    outCpu.push(cpu[i]);
    outNet.push(net[i]);
    if (cores[i] > maxCores) maxCores = cores[i];
    if (mem[i] > maxMem) maxMem = mem[i];
  }
  let gaps = 0;
  let gapMs = 0;
  for (let i = 1; i < at.length; i++) {
    const d = at[i] - at[i - 1];
    if (d > 1.5 * TRACE_PERIOD_MS) {
      gaps++;
      gapMs += d - TRACE_PERIOD_MS;
    }
  }
  return {
    id,
    cores: maxCores,
    memoryKb: maxMem,
    at: Float64Array.from(at),
    cpu: Float64Array.from(outCpu),
    net: Float64Array.from(outNet),
    stats: { rows, kept: at.length, coresZero, duplicates, invalid, clippedCpu, unsorted, gaps, gapMs },
  };
}

/** Read and parse `<dir>/<id>.csv.gz` (or `<id>.csv`). */
export function loadVmFile(dir: string, id: string): VmTrace {
  const gz = join(dir, `${id}.csv.gz`);
  if (existsSync(gz)) return parseVmCsv(id, gunzipSync(readFileSync(gz)));
  return parseVmCsv(id, readFileSync(join(dir, `${id}.csv`)));
}

/** VM ids of a trace directory (files `<id>.csv.gz` or `<id>.csv`), numerically ordered. */
export function listTraceVms(dir: string): string[] {
  const ids = new Set<string>();
  for (const f of readdirSync(dir)) {
    const m = /^(.+)\.csv(\.gz)?$/.exec(f);
    if (m && m[1] !== 'vm_index') ids.add(m[1]);
  }
  return [...ids].sort((a, b) => Number(a) - Number(b) || (a < b ? -1 : a > b ? 1 : 0));
}

/** Whether `dir` holds a trace (at least one per-VM file). */
export function hasTrace(dir: string): boolean {
  try {
    return listTraceVms(dir).length > 0;
  } catch {
    return false;
  }
}

/** The repository root: the nearest directory above this file holding a package.json. */
export function repoRoot(from = __dirname): string {
  let d = resolve(from);
  for (;;) {
    if (existsSync(join(d, 'package.json'))) return d;
    const up = dirname(d);
    if (up === d) return resolve(from);
    d = up;
  }
}

/** The default trace: `../shared/traces/bitbrains-rnd-2013-08`, relative to the repository root. */
export function defaultTraceDir(): string {
  return resolve(repoRoot(), '..', 'shared', 'traces', 'bitbrains-rnd-2013-08');
}
