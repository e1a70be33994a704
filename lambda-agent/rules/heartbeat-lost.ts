/**
 * heartbeat-lost (watchdog): the agent has not reported for a window after its start
 * grace. The agent and the watchdog cover each other: this is how the watchdog knows
 * an instance is no longer guarded from inside.
 */
import * as z from 'zod/mini';
import { registerRule } from './registry';
import { commonShape, duration, ms, dur, sec } from './common';
import { actionPermissions } from './permissions';
import type { Outcome, RuleContext } from './types';

const schema = z.strictObject({
  ...commonShape('heartbeat-lost'),
  /** Silence that counts as lost. @default - 2.5 × the agent's heartbeat interval */
  window: z.optional(duration),
  /** Time after every start for the agent to come up. @default '15m' */
  startGrace: z.optional(duration),
});
type Raw = z.infer<typeof schema>;

export const heartbeatLost = registerRule<Raw>({
  name: 'heartbeat-lost',
  summary: 'The agent has not reported for a window after its start grace (evaluated by the watchdog).',
  kind: 'soft',
  hosts: ['watchdog'],
  actions: ['notify', 'stop', 'reboot', 'terminate'],
  schema,
  normalize: (raw) => ({
    ...(raw.window ? { windowMs: ms(raw.window) } : {}),
    graceMs: ms(raw.startGrace ?? '15m'),
  }),
  evaluate(ctx: RuleContext): Outcome {
    if (ctx.obs.host !== 'watchdog') return { status: 'ok', reason: 'evaluated by the watchdog' };
    if (ctx.billing !== 'running') return { status: 'ok', reason: 'not running' };
    const windowMs = (ctx.rule.params.windowMs as number | undefined) ?? 2.5 * ctx.policy.heartbeatIntervalMs;
    const grace = ctx.rule.params.graceMs as number;
    const runStart = ctx.checkpoint.since;
    const beat = ctx.obs.heartbeat?.at;
    const from = Math.max(beat ?? 0, runStart + grace);
    const dueAt = from + windowMs;
    const silent =
      beat === undefined || beat < runStart
        ? `no heartbeat since the start ${dur(ctx.now - runStart)} ago`
        : `last heartbeat ${dur(ctx.now - beat)} ago`;
    if (dueAt > ctx.now && beat !== undefined && beat >= runStart) return { status: 'ok', reason: `agent alive: ${silent}` };
    return {
      status: dueAt <= ctx.now ? 'due' : 'pending',
      dueAt,
      episode: beat !== undefined && beat >= runStart ? `h${sec(beat)}` : `r${sec(runStart)}`,
      reason: `agent heartbeat lost: ${silent} (window ${dur(windowMs)})`,
    };
  },
  permissions: (rule) => actionPermissions(rule.action),
  example: { rule: 'heartbeat-lost', window: '150m', startGrace: '15m', action: 'notify' },
});
