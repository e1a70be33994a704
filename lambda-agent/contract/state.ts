/**
 * The persisted state of a managed instance and its tag encodings.
 *
 * Everything here is written to instance tags (free, returned by DescribeInstances and
 * by instance metadata) and changes only at transitions, warnings and actions. Values
 * are short `k=v;k=v` strings, readable in the console. Times are whole Unix seconds.
 */
import { MAX_TAG_VALUE_LENGTH } from './tags';

/** Whether the instance bills compute: `running` (pending/running) or `stopped`. */
export type BillingState = 'running' | 'stopped';

/**
 * Accounting checkpoint. Running time and spend *now* are derived from it (see
 * `engine/accounting.ts`), so it is rewritten only when the billing state changes.
 */
export interface Checkpoint {
  /** Billing state since {@link since}. */
  readonly state: BillingState;
  /** Epoch ms when {@link state} began. */
  readonly since: number;
  /** Epoch ms when the instance was first seen running (lifetime starts here). */
  readonly firstSeen: number;
  /** Running milliseconds accrued before {@link since}. */
  readonly runningMs: number;
  /** Spend in USD accrued before {@link since} (compute and storage). */
  readonly spendUsd: number;
}

/** What was done in one episode of one rule. */
export interface EpisodeRecord {
  /** Rule name (`idle`, `lifetime`, …). */
  readonly rule: string;
  /** Episode key: same key, same episode (e.g. the time the condition began). */
  readonly episode: string;
  /** Epoch ms of the warning, if one was issued. */
  readonly warnedAt?: number;
  /** Epoch ms of the action, if it was taken. */
  readonly actedAt?: number;
  /** The action taken. */
  readonly action?: string;
  /**
   * The action was decided and announced as in progress, but its completion (action
   * carried out, event published) is not yet confirmed: a crashed run left it. The next
   * run finishes it (see `executor.ts`).
   */
  readonly pending?: boolean;
}

/** Operator overrides, read from the snooze and extension tags. */
export interface Overrides {
  /** Soft rules are postponed until this epoch ms. */
  readonly snoozeUntil?: number;
  /** Extra lifetime in ms. */
  readonly lifetimeMs?: number;
  /** Extra running time in ms. */
  readonly runningMs?: number;
  /** Extra spend in USD. */
  readonly spendUsd?: number;
}

/** What the agent reports in its heartbeat tag. */
export interface HeartbeatReport {
  /** Epoch ms of the report. */
  readonly at: number;
  /** Last CPU utilisation sampled, percent. */
  readonly cpuPercent?: number;
  /** Last network throughput (in + out), bytes per second. */
  readonly netBytesPerSec?: number;
  /** Interactive login sessions. */
  readonly loginSessions?: number;
  /** Network bytes sent since the instance was first seen, for spend. */
  readonly netOutBytes?: number;
  /** Per rule: epoch ms since when its condition holds (idle, over-use, health, task-completion). */
  readonly conditions: Readonly<Record<string, number>>;
  /** Agent version. */
  readonly version?: string;
}

export class TagValueError extends Error {
  constructor(
    readonly key: string,
    readonly value: string,
    problem: string,
  ) {
    super(`tag '${key}': ${problem}, got: ${JSON.stringify(value)}. Fix or delete the tag.`);
    this.name = 'TagValueError';
  }
}

// ---------------------------------------------------------------- helpers

function sec(ms: number): string {
  return String(Math.floor(ms / 1000));
}

function fields(key: string, value: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of value.split(';')) {
    const p = part.trim();
    if (p === '') continue;
    const eq = p.indexOf('=');
    if (eq <= 0) throw new TagValueError(key, value, `'${p}' is not of the form name=value`);
    out.set(p.slice(0, eq).trim(), p.slice(eq + 1).trim());
  }
  return out;
}

function num(key: string, value: string, raw: string | undefined, what: string): number {
  if (raw === undefined) throw new TagValueError(key, value, `'${what}' is missing`);
  if (!/^-?\d+(\.\d+)?$/.test(raw)) throw new TagValueError(key, value, `'${what}' must be a number`);
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new TagValueError(key, value, `'${what}' must be a non-negative number`);
  return n;
}

function optNum(key: string, value: string, raw: string | undefined, what: string): number | undefined {
  return raw === undefined || raw === '' ? undefined : num(key, value, raw, what);
}

function fitted(value: string, key: string): string {
  if (value.length > MAX_TAG_VALUE_LENGTH) {
    throw new Error(`tag '${key}': encoded value is ${value.length} characters, over EC2's ${MAX_TAG_VALUE_LENGTH}`);
  }
  return value;
}

// ---------------------------------------------------------------- checkpoint

export function encodeCheckpoint(c: Checkpoint): string {
  return `v=1;s=${c.state};t=${sec(c.since)};f=${sec(c.firstSeen)};r=${Math.round(c.runningMs / 1000)};u=${c.spendUsd.toFixed(4)}`;
}

export function decodeCheckpoint(value: string, key = 'smvm:state'): Checkpoint {
  const f = fields(key, value);
  if (f.get('v') !== '1') throw new TagValueError(key, value, "'v' must be 1");
  const state = f.get('s');
  if (state !== 'running' && state !== 'stopped') {
    throw new TagValueError(key, value, "'s' must be running or stopped");
  }
  const since = num(key, value, f.get('t'), 't') * 1000;
  const firstSeen = num(key, value, f.get('f'), 'f') * 1000;
  if (firstSeen > since) throw new TagValueError(key, value, "'f' (first seen) is after 't' (since)");
  return {
    state,
    since,
    firstSeen,
    runningMs: num(key, value, f.get('r'), 'r') * 1000,
    spendUsd: num(key, value, f.get('u'), 'u'),
  };
}

// ---------------------------------------------------------------- episodes

const EPISODE_KEY = /^[A-Za-z0-9#.@+-]+$/;

/** `rule:episode:warnedSec:actedSec:action[!]`, records separated by spaces (`!`: pending). */
export function encodeEpisodes(records: readonly EpisodeRecord[], key = 'smvm:episodes'): string {
  const parts = records.map((r) => {
    if (!EPISODE_KEY.test(r.rule) || !EPISODE_KEY.test(r.episode)) {
      throw new Error(`episode record '${r.rule}:${r.episode}' has characters a tag value cannot carry`);
    }
    return [
      r.rule,
      r.episode,
      r.warnedAt === undefined ? '' : sec(r.warnedAt),
      r.actedAt === undefined ? '' : sec(r.actedAt),
      (r.action ?? '') + (r.pending ? '!' : ''),
    ].join(':');
  });
  return fitted(parts.join(' '), key);
}

export function decodeEpisodes(value: string, key = 'smvm:episodes'): EpisodeRecord[] {
  const out: EpisodeRecord[] = [];
  for (const item of value.split(/\s+/)) {
    if (item === '') continue;
    const p = item.split(':');
    if (p.length !== 5 || !EPISODE_KEY.test(p[0]) || !EPISODE_KEY.test(p[1])) {
      throw new TagValueError(key, value, `'${item}' is not rule:episode:warned:acted:action`);
    }
    const warned = optNum(key, value, p[2], 'warned');
    const acted = optNum(key, value, p[3], 'acted');
    out.push({
      rule: p[0],
      episode: p[1],
      ...(warned === undefined ? {} : { warnedAt: warned * 1000 }),
      ...(acted === undefined ? {} : { actedAt: acted * 1000 }),
      ...(p[4].replace(/!$/, '') ? { action: p[4].replace(/!$/, '') } : {}),
      ...(p[4].endsWith('!') ? { pending: true } : {}),
    });
  }
  return out;
}

// ---------------------------------------------------------------- overrides

/** `until=<epoch s>;by=<who>`. */
export function encodeSnooze(untilMs: number, by: string): string {
  return fitted(`until=${sec(untilMs)};by=${by.replace(/[;=]/g, '_').slice(0, 64)}`, 'smvm:snooze');
}

export function decodeSnooze(value: string, key = 'smvm:snooze'): { until: number; by?: string } {
  const f = fields(key, value);
  return { until: num(key, value, f.get('until'), 'until') * 1000, by: f.get('by') };
}

/** `lifetime=<s>;running=<s>;spend=<usd>`, cumulative totals of all extensions. */
export function encodeExtensions(o: Pick<Overrides, 'lifetimeMs' | 'runningMs' | 'spendUsd'>): string {
  const parts: string[] = [];
  if (o.lifetimeMs) parts.push(`lifetime=${Math.round(o.lifetimeMs / 1000)}`);
  if (o.runningMs) parts.push(`running=${Math.round(o.runningMs / 1000)}`);
  if (o.spendUsd) parts.push(`spend=${o.spendUsd.toFixed(2)}`);
  return fitted(parts.join(';'), 'smvm:extend');
}

export function decodeExtensions(value: string, key = 'smvm:extend'): Pick<Overrides, 'lifetimeMs' | 'runningMs' | 'spendUsd'> {
  const f = fields(key, value);
  for (const name of f.keys()) {
    if (!['lifetime', 'running', 'spend'].includes(name)) {
      throw new TagValueError(key, value, `'${name}' is not one of lifetime, running, spend`);
    }
  }
  const lifetime = optNum(key, value, f.get('lifetime'), 'lifetime');
  const running = optNum(key, value, f.get('running'), 'running');
  const spend = optNum(key, value, f.get('spend'), 'spend');
  return {
    ...(lifetime === undefined ? {} : { lifetimeMs: lifetime * 1000 }),
    ...(running === undefined ? {} : { runningMs: running * 1000 }),
    ...(spend === undefined ? {} : { spendUsd: spend }),
  };
}

// ---------------------------------------------------------------- heartbeat

/** `t=<s>;cpu=<%>;net=<B/s>;lg=<n>;nb=<bytes>;v=<ver>;c=<rule>@<s>,<rule>@<s>`. */
export function encodeHeartbeat(h: HeartbeatReport): string {
  const parts = [`t=${sec(h.at)}`];
  if (h.cpuPercent !== undefined) parts.push(`cpu=${h.cpuPercent.toFixed(1)}`);
  if (h.netBytesPerSec !== undefined) parts.push(`net=${Math.round(h.netBytesPerSec)}`);
  if (h.loginSessions !== undefined) parts.push(`lg=${h.loginSessions}`);
  if (h.netOutBytes !== undefined) parts.push(`nb=${Math.round(h.netOutBytes)}`);
  if (h.version !== undefined) parts.push(`v=${h.version.replace(/[;=]/g, '_')}`);
  const conds = Object.entries(h.conditions).map(([rule, since]) => `${rule}@${sec(since)}`);
  if (conds.length > 0) parts.push(`c=${conds.join(',')}`);
  return fitted(parts.join(';'), 'smvm:heartbeat');
}

export function decodeHeartbeat(value: string, key = 'smvm:heartbeat'): HeartbeatReport {
  const f = fields(key, value);
  const conditions: Record<string, number> = {};
  const c = f.get('c');
  if (c) {
    for (const item of c.split(',')) {
      const at = item.lastIndexOf('@');
      if (at <= 0) throw new TagValueError(key, value, `condition '${item}' is not rule@seconds`);
      conditions[item.slice(0, at)] = num(key, value, item.slice(at + 1), `c.${item.slice(0, at)}`) * 1000;
    }
  }
  const cpu = optNum(key, value, f.get('cpu'), 'cpu');
  const net = optNum(key, value, f.get('net'), 'net');
  const lg = optNum(key, value, f.get('lg'), 'lg');
  const nb = optNum(key, value, f.get('nb'), 'nb');
  return {
    at: num(key, value, f.get('t'), 't') * 1000,
    ...(cpu === undefined ? {} : { cpuPercent: cpu }),
    ...(net === undefined ? {} : { netBytesPerSec: net }),
    ...(lg === undefined ? {} : { loginSessions: lg }),
    ...(nb === undefined ? {} : { netOutBytes: nb }),
    ...(f.get('v') ? { version: f.get('v') } : {}),
    conditions,
  };
}
