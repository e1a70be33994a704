/**
 * Pieces shared by the rules: schema fragments, condition scanning over samples or the
 * agent's report, and formatting of figures for reasons.
 */
import * as z from 'zod/mini';
import { ACTION_NAMES } from '../contract/event-core';
import { parseDuration, formatDuration } from '../policy/duration';
import type { ConditionState, RuleContext, Sample } from './types';

/** A duration string (`30m`, `PT8H`). */
export const duration = z
  .string()
  .check(z.refine((v) => parseDuration(v).ok, { message: "must be a duration such as '90s', '30m', '8h', '3d' or 'PT8H'" }));

/** The fields every rule accepts besides its own. */
export function commonShape<N extends string>(name: N) {
  return {
    rule: z.literal(name),
    name: z.optional(z.string().check(z.regex(/^[a-z][a-z0-9-]{0,31}$/, { message: 'must be kebab-case, 1–32 characters' }))),
    action: z.optional(z.enum(ACTION_NAMES)),
    warnBefore: z.optional(duration),
  };
}

/** A duration field that is known valid (schema-checked) to milliseconds. */
export function ms(value: string): number {
  const r = parseDuration(value);
  if (!r.ok) throw new Error(`duration ${JSON.stringify(value)} ${r.problem}`);
  return r.ms;
}

export const percent = z.number().check(z.gte(0), z.lte(100));
export const positive = z.number().check(z.gt(0));
export const nonNegative = z.number().check(z.gte(0));

export function sec(msValue: number): string {
  return String(Math.floor(msValue / 1000));
}

export { formatDuration as dur };

export function usd(v: number): string {
  return `$${v.toFixed(2)}`;
}

export function rate(bytesPerSec: number): string {
  if (bytesPerSec >= 1024 * 1024) return `${(bytesPerSec / 1024 / 1024).toFixed(1)} MB/s`;
  return `${(bytesPerSec / 1024).toFixed(1)} KB/s`;
}

/** Start of the current run (epoch ms), when the instance is running. */
export function runSince(ctx: RuleContext): number | undefined {
  return ctx.billing === 'running' ? ctx.checkpoint.since : undefined;
}

/**
 * Since when a per-sample condition has held without a break, up to the latest sample.
 *
 * `test` says whether a sample meets the condition (`undefined` = unknown). Unknown
 * data, gaps longer than 1.5 sampling periods and samples before `notBefore` break
 * the run: missing data never extends a condition such as idleness. Without samples,
 * the agent's fresh heartbeat report for this rule is used instead.
 */
export function scanCondition(ctx: RuleContext, test: (s: Sample) => boolean | undefined, notBefore: number): ConditionState {
  const { obs, now } = ctx;
  const samples = obs.samples;
  const period = obs.samplePeriodMs;
  if (samples && samples.length > 0 && period && period > 0) {
    const last = samples[samples.length - 1];
    if (now - last.at > 2 * period + 1000) return { known: false, why: `no sample for ${formatDuration(now - last.at)}` };
    if (last.at <= notBefore) return { known: true, lastAt: last.at };
    const v = test(last);
    if (v === undefined) return { known: false, why: 'the latest sample lacks the figures this rule needs' };
    if (!v) return { known: true, lastAt: last.at };
    let since = last.at - period;
    for (let i = samples.length - 2; i >= 0; i--) {
      const s = samples[i];
      if (samples[i + 1].at - s.at > 1.5 * period) break;
      if (s.at <= notBefore || test(s) !== true) break;
      since = s.at - period;
    }
    return { known: true, since: Math.max(since, notBefore), lastAt: last.at };
  }
  return reportedCondition(ctx, notBefore);
}

/**
 * Since when the agent's fresh heartbeat report says this rule's condition holds (no
 * samples). The report proves the condition only up to its own time (`lastAt` = the
 * report's time, which may be minutes old): what happened since is not known.
 */
export function reportedCondition(ctx: RuleContext, notBefore: number): ConditionState {
  const hb = ctx.obs.heartbeat;
  if (hb && ctx.now - hb.at <= 2 * ctx.policy.heartbeatIntervalMs) {
    const since = hb.conditions[ctx.rule.name];
    const lastAt = Math.min(hb.at, ctx.now);
    return since === undefined ? { known: true, lastAt } : { known: true, since: Math.max(since, notBefore), lastAt, reported: true };
  }
  return { known: false, why: 'no usage samples and no fresh report from the agent' };
}

/** Samples in the current condition run (for figures in reasons). */
export function samplesSince(ctx: RuleContext, since: number): Sample[] {
  return (ctx.obs.samples ?? []).filter((s) => s.at > since);
}

export function maxOf(samples: readonly Sample[], pick: (s: Sample) => number | undefined): number | undefined {
  let m: number | undefined;
  for (const s of samples) {
    const v = pick(s);
    if (v !== undefined && (m === undefined || v > m)) m = v;
  }
  return m;
}

export function minOf(samples: readonly Sample[], pick: (s: Sample) => number | undefined): number | undefined {
  let m: number | undefined;
  for (const s of samples) {
    const v = pick(s);
    if (v !== undefined && (m === undefined || v < m)) m = v;
  }
  return m;
}

/**
 * Outcome of a condition that must hold for `windowMs`: pending until then, then due.
 * A condition known from the agent's report (`reported`) is due only when the report
 * itself shows it held for the whole window (`since + window ≤ lastAt`): a report taken
 * before the window ended says nothing of the time since (the machine may be busy now).
 */
export function conditionOutcome(
  ctx: RuleContext,
  since: number,
  lastAt: number,
  windowMs: number,
  describe: (heldMs: number) => string,
  reported = false,
) {
  const dueAt = since + windowMs;
  const held = Math.max(0, Math.min(ctx.now, lastAt) - since);
  return {
    status: dueAt <= (reported ? Math.min(ctx.now, lastAt) : ctx.now) ? ('due' as const) : ('pending' as const),
    dueAt,
    episode: sec(since),
    reason: describe(held),
    conditionSince: since,
  };
}
