/**
 * task-completion (agent): act when a named task has finished: a systemd unit that
 * became inactive, or a process that exited. The watchdog knows of it from the agent's
 * report. Useful for batch workers: terminate when the job is done.
 */
import * as z from 'zod/mini';
import { registerRule } from './registry';
import { commonShape, duration, ms, dur, sec, reportedCondition } from './common';
import { actionPermissions } from './permissions';
import type { Outcome, RuleContext, RuleProblem } from './types';

const schema = z.strictObject({
  ...commonShape('task-completion'),
  /** systemd unit to watch, e.g. `batch.service`. */
  unit: z.optional(
    z
      .string()
      .check(z.regex(/^[A-Za-z0-9:_.@-]+\.(service|scope|target)$/, { message: "must be a systemd unit name such as 'job.service'" })),
  ),
  /** Process name to watch (as in /proc/<pid>/comm). */
  process: z.optional(
    z.string().check(z.regex(/^[^/\s]{1,15}$/, { message: 'must be a process name of 1–15 characters, no slashes or spaces' })),
  ),
  /** Wait this long after the task finished before acting. @default '0s' */
  after: z.optional(duration),
});
type Raw = z.infer<typeof schema>;

export const taskCompletion = registerRule<Raw>({
  name: 'task-completion',
  summary: 'Act when a named task (systemd unit or process) has finished (seen by the agent).',
  kind: 'soft',
  hosts: ['agent'],
  actions: ['stop', 'terminate', 'hibernate', 'notify'],
  schema,
  validate(raw): RuleProblem[] {
    if ((raw.unit === undefined) === (raw.process === undefined)) {
      return [['unit', 'or process is required, and not both; name the systemd unit or the process to watch']];
    }
    return [];
  },
  normalize: (raw) => ({
    ...(raw.unit ? { unit: raw.unit } : {}),
    ...(raw.process ? { process: raw.process } : {}),
    afterMs: ms(raw.after ?? '0s'),
  }),
  evaluate(ctx: RuleContext): Outcome {
    if (ctx.billing !== 'running') return { status: 'ok', reason: 'not running' };
    const what = (ctx.rule.params.unit ?? ctx.rule.params.process) as string;
    const after = ctx.rule.params.afterMs as number;
    let exitedAt: number | undefined;
    const task = ctx.obs.tasks?.[ctx.rule.name];
    if (task) {
      if (task.state === 'unknown') return { status: 'unknown', reason: `state of ${what} unknown` };
      if (task.state === 'running') return { status: 'ok', reason: `${what} is running` };
      exitedAt = task.exitedAt ?? ctx.now;
    } else {
      const c = reportedCondition(ctx, 0);
      if (!c.known) return { status: 'unknown', reason: `state of ${what} unknown: ${c.why}` };
      if (c.since === undefined) return { status: 'ok', reason: `${what} is running (agent report)` };
      exitedAt = c.since;
    }
    const dueAt = exitedAt + after;
    return {
      status: dueAt <= ctx.now ? 'due' : 'pending',
      dueAt,
      episode: `t${sec(exitedAt)}`,
      reason: `${what} finished ${dur(ctx.now - exitedAt)} ago`,
      conditionSince: exitedAt,
    };
  },
  permissions: (rule) => actionPermissions(rule.action),
  example: { rule: 'task-completion', unit: 'batch.service', after: '2m', action: 'terminate' },
});
