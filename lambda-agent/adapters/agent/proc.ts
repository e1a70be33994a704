/**
 * Samples the machine's activity from /proc (and utmp) for the agent's idle and
 * over-use rules. A field the sampler cannot read or trust is left undefined
 * ("unknown"), never 0, so missing data can never look idle.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** One sample. Rates are averages since the previous sample of the same source. */
export interface Sample {
  /** Epoch ms of the sample (the `nowMs` passed in). */
  readonly at: number;
  /** CPU busy time (all but idle and iowait) over all CPUs, 0–100. */
  readonly cpuPercent?: number;
  /** Network bytes per second, received + sent, all interfaces but loopback. */
  readonly netBytesPerSec?: number;
  readonly netInBytesPerSec?: number;
  readonly netOutBytesPerSec?: number;
  /** Bytes sent since boot, all interfaces but loopback. */
  readonly netOutBytesTotal?: number;
  /** (MemTotal − MemAvailable) / MemTotal, 0–100. */
  readonly memUsedPercent?: number;
  /** Bytes read + written per second on whole disks. */
  readonly diskBytesPerSec?: number;
  /** One-minute load average. */
  readonly load1?: number;
  /** Interactive login sessions (utmp USER_PROCESS records); undefined if utmp is missing. */
  readonly loginSessions?: number;
}

/** Options of {@link createProcSampler}. */
export interface ProcSamplerOptions {
  /** @default '/proc' */
  readonly procRoot?: string;
  /** @default '/run/utmp' */
  readonly utmpPath?: string;
  /** Network interfaces left out. @default /^lo$/ */
  readonly excludeInterfaces?: RegExp;
}

/** Samples /proc; keeps the previous counters to compute rates. */
export interface ProcSampler {
  sample(nowMs: number): Sample;
}

/** utmp record size on x86_64 and aarch64 glibc, and the USER_PROCESS type. */
export const UTMP_RECORD_SIZE = 384;
export const UTMP_USER_PROCESS = 7;

/** Block devices that are not disks, or that stack on disks (counted there already). */
const NOT_A_DISK = /^(loop|ram|zram|dm-|md|sr|fd|nbd)/;

/** A counter: digits only, bounded, parsed exactly. Throws on anything else. */
function counter(text: string | undefined): bigint {
  if (text === undefined || !/^\d{1,40}$/.test(text)) throw new Error(`not a counter: ${text}`);
  return BigInt(text);
}

function num(text: string | undefined): number {
  if (text === undefined || !/^\d{1,20}(\.\d{1,20})?$/.test(text)) throw new Error(`not a number: ${text}`);
  return Number(text);
}

/** Runs a parser; any read or parse error gives undefined. */
function attempt<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch {
    return undefined;
  }
}

/** [busy, total] jiffies from the aggregate `cpu` line. */
function parseStat(text: string): bigint[] {
  const line = text.split('\n').find((l) => l.startsWith('cpu '));
  const f = (line ?? '').trim().split(/\s+/).slice(1, 9).map(counter);
  if (f.length < 4) throw new Error('short cpu line');
  const total = f.reduce((a, b) => a + b, 0n);
  const idle = f[3] + (f[4] ?? 0n);
  return [total - idle, total];
}

/** Per interface: [received, sent] bytes. */
function parseNetDev(text: string, exclude: RegExp): Map<string, bigint[]> {
  const out = new Map<string, bigint[]>();
  const lines = text.split('\n');
  if (!/\|bytes/.test(lines[1] ?? '')) throw new Error('no header');
  for (const line of lines.slice(2)) {
    if (!line.trim()) continue;
    const colon = line.indexOf(':');
    if (colon < 0) throw new Error('no interface name');
    const name = line.slice(0, colon).trim();
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/);
    if (f.length < 16) throw new Error('short line');
    if (!exclude.test(name)) out.set(name, [counter(f[0]), counter(f[8])]);
  }
  return out;
}

/** Per whole disk: [sectors read + written]. */
function parseDiskstats(text: string): Map<string, bigint[]> {
  const rows = new Map<string, bigint[]>();
  for (const line of text.split('\n')) {
    if (!line.trim()) continue;
    const f = line.trim().split(/\s+/);
    if (f.length < 14) throw new Error('short line');
    rows.set(f[2], [counter(f[5]) + counter(f[9])]);
  }
  // A partition is a listed disk's name plus digits (sda1, xvda15), or `p` and digits (nvme0n1p1).
  const isPartition = (name: string) => {
    for (let i = name.length - 1; i > 0; i--) if (/^p?\d+$/.test(name.slice(i)) && rows.has(name.slice(0, i))) return true;
    return false;
  };
  const out = new Map<string, bigint[]>();
  for (const [name, v] of rows) if (!NOT_A_DISK.test(name) && !isPartition(name)) out.set(name, v);
  return out;
}

function parseMeminfo(text: string): number {
  const kb = (key: string) => num(new RegExp(`^${key}:\\s*(\\S+)`, 'm').exec(text)?.[1]);
  const total = kb('MemTotal');
  const available = kb('MemAvailable');
  if (total <= 0 || available > total) throw new Error('inconsistent meminfo');
  return ((total - available) / total) * 100;
}

function countSessions(buf: Buffer): number {
  let n = 0;
  for (let off = 0; off + UTMP_RECORD_SIZE <= buf.length; off += UTMP_RECORD_SIZE) {
    // ut_type (int16 at 0), ut_user (char[32] at 44).
    if (buf.readInt16LE(off) === UTMP_USER_PROCESS && buf[off + 44] !== 0) n++;
  }
  return n;
}

interface Previous {
  at: number;
  values: Map<string, bigint[]>;
}

/**
 * Deltas of each counter between two readings of the same keys, divided by seconds.
 * Undefined when there is no previous reading, no time passed, or a counter went back.
 */
function rates(prev: Previous | undefined, at: number, values: Map<string, bigint[]>): number[] | undefined {
  if (!prev || at <= prev.at) return undefined;
  const seconds = (at - prev.at) / 1000;
  const sums: bigint[] = [];
  for (const [key, now] of values) {
    const before = prev.values.get(key);
    if (!before) continue; // appeared since: no delta yet
    for (let i = 0; i < now.length; i++) {
      const d = now[i] - before[i];
      if (d < 0n) return undefined;
      sums[i] = (sums[i] ?? 0n) + d;
    }
  }
  return sums.length ? sums.map((s) => Number(s) / seconds) : values.size ? undefined : [];
}

/** Creates a sampler over `procRoot` and `utmpPath`. */
export function createProcSampler(opts: ProcSamplerOptions = {}): ProcSampler {
  const root = opts.procRoot ?? '/proc';
  const utmpPath = opts.utmpPath ?? '/run/utmp';
  const exclude = opts.excludeInterfaces ?? /^lo$/;
  const read = (name: string) => readFileSync(join(root, name), 'utf8');
  const prev: Record<'cpu' | 'net' | 'disk', Previous | undefined> = { cpu: undefined, net: undefined, disk: undefined };

  /** Reads one counter source, returns its rates and remembers it (forgets it on error). */
  function track(source: 'cpu' | 'net' | 'disk', at: number, parse: () => Map<string, bigint[]>) {
    const values = attempt(parse);
    const before = prev[source];
    prev[source] = values && { at, values };
    return values && { values, rates: rates(before, at, values), before };
  }

  return {
    sample(at) {
      const cpu = track('cpu', at, () => new Map([['cpu', parseStat(read('stat'))]]));
      let cpuPercent: number | undefined;
      const before = cpu?.before?.values.get('cpu');
      const now = cpu?.values.get('cpu');
      if (cpu?.rates && before && now) {
        const busy = now[0] - before[0];
        const total = now[1] - before[1];
        cpuPercent = total > 0n && busy <= total ? (Number(busy) / Number(total)) * 100 : undefined;
      }

      const net = track('net', at, () => parseNetDev(read('net/dev'), exclude));
      const netRates = net?.rates;
      let netOutBytesTotal: number | undefined;
      if (net) {
        netOutBytesTotal = 0;
        for (const [, v] of net.values) netOutBytesTotal += Number(v[1]);
      }

      const disk = track('disk', at, () => parseDiskstats(read('diskstats')));
      const diskRate = disk?.rates && (disk.rates[0] ?? 0) * 512;

      let loginSessions: number | undefined;
      try {
        loginSessions = countSessions(readFileSync(utmpPath));
      } catch {
        loginSessions = undefined;
      }

      return {
        at,
        cpuPercent,
        netInBytesPerSec: netRates && (netRates[0] ?? 0),
        netOutBytesPerSec: netRates && (netRates[1] ?? 0),
        netBytesPerSec: netRates && (netRates[0] ?? 0) + (netRates[1] ?? 0),
        netOutBytesTotal,
        memUsedPercent: attempt(() => parseMeminfo(read('meminfo'))),
        diskBytesPerSec: diskRate,
        load1: attempt(() => num(read('loadavg').trim().split(/\s+/)[0])),
        loginSessions,
      };
    },
  };
}
