/**
 * running-time: maximum accumulated running time across stop/start cycles. A hard
 * limit (extend it explicitly; snooze does not postpone it).
 */
import * as z from 'zod/mini';
import { registerRule } from './registry';
import { commonShape, duration, ms, dur, sec } from './common';
import { actionPermissions } from './permissions';
import type { Outcome, RuleContext, RuleProblem } from './types';

const schema = z.strictObject({
  ...commonShape('running-time'),
  /** Maximum accumulated running time, e.g. `40h`. */
  max: duration,
});
type Raw = z.infer<typeof schema>;

export const runningTime = registerRule<Raw>({
  name: 'running-time',
  summary: 'Maximum accumulated running time across stop/start cycles.',
  kind: 'hard',
  hosts: ['agent', 'watchdog'],
  actions: ['stop', 'hibernate', 'terminate', 'notify'],
  schema,
  validate: (raw): RuleProblem[] => (ms(raw.max) > 0 ? [] : [['max', `must be longer than zero, got: '${raw.max}'`]]),
  normalize: (raw) => ({ maxMs: ms(raw.max) }),
  evaluate(ctx: RuleContext): Outcome {
    const limit = (ctx.rule.params.maxMs as number) + (ctx.overrides.runningMs ?? 0);
    const used = ctx.accounting.runningMs;
    const figures = { value: used, limit, unit: 'ms' };
    const ext = ctx.overrides.runningMs ? ` (incl. extension ${dur(ctx.overrides.runningMs)})` : '';
    if (ctx.billing === 'running') {
      const dueAt = ctx.now + (limit - used);
      const reason =
        used >= limit
          ? `running time ${dur(used)} reached the budget of ${dur(limit)}${ext}`
          : `running time ${dur(used)} of ${dur(limit)}${ext}, ${dur(limit - used)} left`;
      return {
        status: used >= limit ? 'due' : 'pending',
        dueAt,
        episode: `r${sec(ctx.checkpoint.since)}`,
        reason,
        figures,
      };
    }
    if (ctx.billing === 'stopped' && used >= limit && ctx.rule.action === 'terminate') {
      return {
        status: 'due',
        dueAt: ctx.now,
        episode: `s${sec(ctx.checkpoint.since)}`,
        reason: `running time ${dur(used)} exhausted the budget of ${dur(limit)}${ext}`,
        figures,
      };
    }
    return { status: 'ok', reason: `running time ${dur(used)} of ${dur(limit)}${ext}; instance not running`, figures };
  },
  permissions: (rule) => actionPermissions(rule.action),
  example: { rule: 'running-time', max: '40h', action: 'stop', warnBefore: '30m' },
});
