/**
 * spend: maximum accumulated cost in USD. Cost accrues from the hourly rate while
 * running (a different rate inside peak windows, time-zone aware), from storage while
 * stopped, and per GB of network out. The rate is the policy's explicit `hourlyUsd`,
 * else the price list's on-demand price for the instance type; without either the rule
 * is `unknown` (and the guards announce it), never a silent zero. A hard limit.
 */
import * as z from 'zod/mini';
import { registerRule } from './registry';
import { commonShape, positive, nonNegative, usd, sec, dur } from './common';
import { actionPermissions } from './permissions';
import { DAY_NAMES, windowProblems, type WindowSet } from '../policy/windows';
import { timeToAccrue, tariffOf } from '../policy/tariff';
import type { Outcome, RuleContext, RuleProblem } from './types';

const windowSchema = z.strictObject({
  days: z.array(z.enum(DAY_NAMES)),
  start: z.string(),
  end: z.string(),
});

const schema = z.strictObject({
  ...commonShape('spend'),
  /** Spend cap in USD. */
  maxUsd: positive,
  /** Compute USD per hour. @default - the on-demand price of the instance type */
  hourlyUsd: z.optional(nonNegative),
  /** A different compute rate inside these windows. */
  peak: z.optional(
    z.strictObject({
      hourlyUsd: nonNegative,
      timezone: z.string(),
      windows: z.array(windowSchema),
    }),
  ),
  /** USD per GB sent out. @default 0 */
  networkOutUsdPerGb: z.optional(nonNegative),
  /** Storage size charged while stopped, GB. @default 0 */
  storageGb: z.optional(nonNegative),
  /** USD per GB-month of storage. @default 0.08 (gp3) */
  storageUsdPerGbMonth: z.optional(nonNegative),
});
type Raw = z.infer<typeof schema>;

export const spend = registerRule<Raw>({
  name: 'spend',
  summary: 'Maximum accumulated cost in USD (peak/off-peak rates, storage while stopped, network out).',
  kind: 'hard',
  hosts: ['agent', 'watchdog'],
  actions: ['stop', 'hibernate', 'terminate', 'notify'],
  schema,
  validate(raw): RuleProblem[] {
    if (!raw.peak) return [];
    return windowProblems({ timezone: raw.peak.timezone, windows: raw.peak.windows }).map(([p, m]) => [`peak.${p}`, m] as const);
  },
  normalize: (raw) => ({
    maxUsd: raw.maxUsd,
    ...(raw.hourlyUsd === undefined ? {} : { hourlyUsd: raw.hourlyUsd }),
    ...(raw.peak
      ? { peak: { hourlyUsd: raw.peak.hourlyUsd, set: { timezone: raw.peak.timezone, windows: raw.peak.windows } as WindowSet } }
      : {}),
    networkOutUsdPerGb: raw.networkOutUsdPerGb ?? 0,
    storageGb: raw.storageGb ?? 0,
    storageUsdPerGbMonth: raw.storageUsdPerGbMonth ?? 0.08,
  }),
  evaluate(ctx: RuleContext): Outcome {
    const limit = (ctx.rule.params.maxUsd as number) + (ctx.overrides.spendUsd ?? 0);
    const spent = ctx.accounting.spendUsd;
    const figures = { value: spent, limit, unit: 'USD' };
    const ext = ctx.overrides.spendUsd ? ` (incl. extension ${usd(ctx.overrides.spendUsd)})` : '';
    if (ctx.hourlyUsd === undefined && ctx.rule.params.hourlyUsd === undefined) {
      return {
        status: 'unknown',
        reason: `no hourly price known for ${ctx.obs.instanceType ?? 'this instance type'}; set 'hourlyUsd' in the spend rule`,
        figures,
      };
    }
    if (ctx.billing === 'running') {
      // The engine's own tariff (same inputs, so memoized): the policy's rate wins over the observed one.
      const at = timeToAccrue(tariffOf(ctx.policy, ctx.obs.hourlyUsd), ctx.now, limit - spent);
      const dueAt = spent >= limit ? ctx.now : Math.ceil(at ?? Number.MAX_SAFE_INTEGER);
      return {
        status: spent >= limit ? 'due' : 'pending',
        dueAt,
        episode: `r${sec(ctx.checkpoint.since)}`,
        reason:
          spent >= limit
            ? `spend ${usd(spent)} reached the cap of ${usd(limit)}${ext}`
            : `spend ${usd(spent)} of ${usd(limit)}${ext}${at === undefined ? '' : `, cap in ${dur(at - ctx.now)}`}`,
        figures,
      };
    }
    if (ctx.billing === 'stopped' && spent >= limit && ctx.rule.action === 'terminate') {
      return {
        status: 'due',
        dueAt: ctx.now,
        episode: `s${sec(ctx.checkpoint.since)}`,
        reason: `spend ${usd(spent)} reached the cap of ${usd(limit)}${ext} (storage accrues while stopped)`,
        figures,
      };
    }
    return { status: 'ok', reason: `spend ${usd(spent)} of ${usd(limit)}${ext}; instance not running`, figures };
  },
  permissions: (rule) => [...actionPermissions(rule.action), ...(rule.params.hourlyUsd === undefined ? ['pricing:GetProducts'] : [])],
  example: {
    rule: 'spend',
    maxUsd: 25,
    hourlyUsd: 0.0416,
    peak: {
      hourlyUsd: 0.0416,
      timezone: 'Europe/Amsterdam',
      windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00', end: '19:00' }],
    },
    storageGb: 30,
    action: 'stop',
    warnBefore: '1h',
  },
});
