/**
 * lifetime: maximum wall-clock time since the instance was first seen running. It
 * survives stop/start (the start of life is the checkpoint's first-seen time, never
 * EC2's LaunchTime, which resets on every start). A hard limit: snooze does not
 * postpone it; `smvm extend <id> lifetime <duration>` does, explicitly.
 */
import * as z from 'zod/mini';
import { registerRule } from './registry';
import { commonShape, duration, ms, dur, sec } from './common';
import { actionPermissions } from './permissions';
import type { Outcome, RuleContext, RuleProblem } from './types';

const schema = z.strictObject({
  ...commonShape('lifetime'),
  /** Maximum lifetime, e.g. `7d`. */
  max: duration,
});
type Raw = z.infer<typeof schema>;

export const lifetime = registerRule<Raw>({
  name: 'lifetime',
  summary: 'Maximum wall-clock time since the instance was first seen running (survives stop/start).',
  kind: 'hard',
  hosts: ['agent', 'watchdog'],
  actions: ['stop', 'hibernate', 'terminate', 'notify'],
  schema,
  validate: (raw): RuleProblem[] => (ms(raw.max) > 0 ? [] : [['max', `must be longer than zero, got: '${raw.max}'`]]),
  normalize: (raw) => ({ maxMs: ms(raw.max) }),
  evaluate(ctx: RuleContext): Outcome {
    const maxMs = ctx.rule.params.maxMs as number;
    const limit = maxMs + (ctx.overrides.lifetimeMs ?? 0);
    const { lifetimeMs, firstSeen } = ctx.accounting;
    const dueAt = firstSeen + limit;
    const figures = { value: lifetimeMs, limit, unit: 'ms' };
    const ext = ctx.overrides.lifetimeMs ? ` (incl. extension ${dur(ctx.overrides.lifetimeMs)})` : '';
    const applies = ctx.billing === 'running' || (ctx.billing === 'stopped' && ctx.rule.action === 'terminate');
    if (!applies) {
      return { status: 'ok', reason: `lifetime ${dur(lifetimeMs)} of ${dur(limit)}${ext}; instance not running`, figures };
    }
    const episode = `${sec(dueAt)}-${ctx.billing === 'running' ? 'r' : 's'}${sec(ctx.checkpoint.since)}`;
    const reason =
      dueAt <= ctx.now
        ? `lifetime ${dur(lifetimeMs)} reached the limit of ${dur(limit)}${ext}`
        : `lifetime ${dur(lifetimeMs)} of ${dur(limit)}${ext}, ${dur(dueAt - ctx.now)} left`;
    return { status: dueAt <= ctx.now ? 'due' : 'pending', dueAt, episode, reason, figures };
  },
  permissions: (rule) => actionPermissions(rule.action),
  example: { rule: 'lifetime', max: '7d', action: 'terminate', warnBefore: '1h' },
});
