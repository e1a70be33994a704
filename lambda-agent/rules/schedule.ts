/**
 * schedule: the instance runs inside weekly windows (days + times + IANA time zone).
 * An instance still running from before a window closed is stopped (or hibernated)
 * at the close; an instance stopped since before a window opened is started at the
 * open (re-activation). Starting or stopping it by hand in between is respected: the
 * schedule acts only on instances that crossed a boundary in the state it changes.
 */
import * as z from 'zod/mini';
import { registerRule } from './registry';
import { commonShape, dur, sec } from './common';
import { actionPermissions } from './permissions';
import { DAY_NAMES, position, windowProblems, type WindowSet } from '../policy/windows';
import type { Outcome, RuleContext, RuleProblem } from './types';

const schema = z.strictObject({
  ...commonShape('schedule'),
  /** IANA time zone of the windows, e.g. `Europe/Amsterdam`. */
  timezone: z.string(),
  /** Weekly windows in which the instance should run. */
  windows: z.array(z.strictObject({ days: z.array(z.enum(DAY_NAMES)), start: z.string(), end: z.string() })),
  /** Start the instance when a window opens. @default true */
  startAtOpen: z.optional(z.boolean()),
});
type Raw = z.infer<typeof schema>;

export const schedule = registerRule<Raw>({
  name: 'schedule',
  summary: 'Run inside weekly windows in a time zone: stop (or hibernate) at the close, start again at the open.',
  kind: 'soft',
  hosts: ['agent', 'watchdog'],
  actions: ['stop', 'hibernate'],
  schema,
  validate: (raw): RuleProblem[] => windowProblems({ timezone: raw.timezone, windows: raw.windows }),
  normalize: (raw) => ({ set: { timezone: raw.timezone, windows: raw.windows } as WindowSet, startAtOpen: raw.startAtOpen ?? true }),
  evaluate(ctx: RuleContext): Outcome {
    const set = ctx.rule.params.set as WindowSet;
    const pos = position(set, ctx.now);
    const since = ctx.checkpoint.since;
    if (ctx.billing === 'running') {
      if (!pos.inside && pos.lastClose !== undefined && since < pos.lastClose) {
        return {
          status: 'due',
          dueAt: pos.lastClose,
          episode: `c${sec(pos.lastClose)}`,
          reason: `outside the schedule: the window closed ${dur(ctx.now - pos.lastClose)} ago (${set.timezone})`,
        };
      }
      if (pos.inside && pos.nextClose !== undefined) {
        return {
          status: 'pending',
          dueAt: pos.nextClose,
          episode: `c${sec(pos.nextClose)}`,
          reason: `inside the schedule; the window closes in ${dur(pos.nextClose - ctx.now)} (${set.timezone})`,
        };
      }
      return { status: 'ok', reason: 'started by hand outside the schedule; left running' };
    }
    if (ctx.billing === 'stopped' && ctx.rule.params.startAtOpen) {
      if (pos.inside && pos.lastOpen !== undefined && since <= pos.lastOpen) {
        // EC2 refuses to start an instance that is still stopping; start it once stopped.
        if (ctx.obs.state !== 'stopped') return { status: 'ok', reason: `the window is open but the instance is still ${ctx.obs.state}` };
        return {
          status: 'due',
          dueAt: pos.lastOpen,
          episode: `o${sec(pos.lastOpen)}`,
          action: 'start',
          reason: `the schedule's window opened ${dur(ctx.now - pos.lastOpen)} ago (${set.timezone})`,
        };
      }
      if (!pos.inside && pos.nextOpen !== undefined) {
        return {
          status: 'pending',
          dueAt: pos.nextOpen,
          episode: `o${sec(pos.nextOpen)}`,
          action: 'start',
          reason: `the next window opens in ${dur(pos.nextOpen - ctx.now)} (${set.timezone})`,
        };
      }
    }
    return { status: 'ok', reason: 'not running' };
  },
  permissions: (rule) => actionPermissions(rule.action, rule.params.startAtOpen ? 'start' : undefined),
  example: {
    rule: 'schedule',
    timezone: 'Europe/Amsterdam',
    windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00', end: '19:00' }],
    action: 'stop',
    warnBefore: '15m',
  },
});
