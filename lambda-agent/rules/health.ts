/**
 * health: failed status checks (watchdog: DescribeInstanceStatus) or errors the agent
 * reports, continuously for a window. Escalates: if the configured action (by default
 * a reboot) was already taken within `escalate.within` and the instance is unhealthy
 * again, the escalation action (e.g. stop) is taken instead.
 */
import * as z from 'zod/mini';
import { ACTION_NAMES } from '../contract/event-core';
import { registerRule } from './registry';
import { commonShape, duration, ms, dur, scanCondition, conditionOutcome } from './common';
import { actionPermissions } from './permissions';
import type { Outcome, RuleContext, RuleProblem, Sample } from './types';

const schema = z.strictObject({
  ...commonShape('health'),
  /** How long checks must fail before acting. @default '5m' */
  window: z.optional(duration),
  /** What to do when unhealthy again after the action. */
  escalate: z.optional(
    z.strictObject({
      action: z.enum(ACTION_NAMES),
      /** How recent the previous action must be to escalate. @default '1h' */
      within: z.optional(duration),
    }),
  ),
});
type Raw = z.infer<typeof schema>;

interface Params {
  windowMs: number;
  escalate?: { action: (typeof ACTION_NAMES)[number]; withinMs: number };
}

export function isUnhealthySample(s: Sample): boolean | undefined {
  if (s.statusOk === false || (s.agentErrors !== undefined && s.agentErrors > 0)) return true;
  if (s.statusOk === true || s.agentErrors === 0) return false;
  return undefined;
}

export const health = registerRule<Raw>({
  name: 'health',
  summary: 'Failed status checks or agent-reported errors for a window, with escalation (reboot, then stop).',
  kind: 'soft',
  hosts: ['agent', 'watchdog'],
  actions: ['reboot', 'stop', 'notify', 'terminate'],
  schema,
  validate(raw): RuleProblem[] {
    const out: RuleProblem[] = [];
    if (raw.escalate?.action === 'start' || raw.escalate?.action === 'hibernate') {
      out.push(['escalate.action', `must be one of notify, reboot, stop, terminate, got: '${raw.escalate.action}'`]);
    }
    return out;
  },
  normalize: (raw) => ({
    windowMs: ms(raw.window ?? '5m'),
    ...(raw.escalate ? { escalate: { action: raw.escalate.action, withinMs: ms(raw.escalate.within ?? '1h') } } : {}),
  }),
  evaluate(ctx: RuleContext): Outcome {
    const p = ctx.rule.params as unknown as Params;
    if (ctx.billing !== 'running') return { status: 'ok', reason: 'not running' };
    // With escalation, the condition is judged anew after each action of this rule: an
    // instance that stays unhealthy for a window after the reboot escalates (without
    // this, a continuously failing check would keep the rebooted episode forever).
    let notBefore = ctx.checkpoint.since;
    if (p.escalate) for (const r of ctx.records) if (r.actedAt !== undefined && r.actedAt > notBefore) notBefore = r.actedAt;
    const c = scanCondition(ctx, isUnhealthySample, notBefore);
    if (!c.known) return { status: 'unknown', reason: `health unknown: ${c.why}` };
    if (c.since === undefined) return { status: 'ok', reason: 'healthy' };
    const out = conditionOutcome(
      ctx,
      c.since,
      c.lastAt,
      p.windowMs,
      (held) => `unhealthy for ${dur(held)} (window ${dur(p.windowMs)})`,
      c.reported,
    );
    if (p.escalate) {
      const previous = [...ctx.records]
        .reverse()
        .find((r) => r.actedAt !== undefined && r.episode !== out.episode && r.action === ctx.rule.action);
      if (previous && previous.actedAt! >= c.since - p.escalate.withinMs) {
        return {
          ...out,
          action: p.escalate.action,
          reason: `${out.reason}; still unhealthy after the ${previous.action} ${dur(ctx.now - previous.actedAt!)} ago: escalating`,
        };
      }
    }
    return out;
  },
  permissions: (rule) =>
    actionPermissions(rule.action, (rule.params.escalate as { action?: (typeof ACTION_NAMES)[number] } | undefined)?.action),
  example: { rule: 'health', window: '5m', action: 'reboot', escalate: { action: 'stop', within: '1h' } },
});
