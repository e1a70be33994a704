/**
 * over-use: CPU above a threshold OR network above a threshold continuously for a
 * window (a runaway process, a miner, a loop).
 */
import * as z from 'zod/mini';
import { registerRule } from './registry';
import { commonShape, duration, ms, dur, percent, positive, rate, scanCondition, conditionOutcome, samplesSince, minOf } from './common';
import { actionPermissions } from './permissions';
import type { Outcome, RuleContext, RuleProblem, Sample } from './types';

const schema = z.strictObject({
  ...commonShape('over-use'),
  window: duration,
  /** CPU utilisation above which it is over-used, percent. */
  cpuPercentAbove: z.optional(percent),
  /** Network throughput above which it is over-used, bytes/s. */
  networkBytesPerSecAbove: z.optional(positive),
});
type Raw = z.infer<typeof schema>;

interface Params {
  windowMs: number;
  cpu?: number;
  net?: number;
}

export function isOverSample(p: Params, s: Sample): boolean | undefined {
  const cpuOver = p.cpu === undefined || s.cpuPercent === undefined ? undefined : s.cpuPercent > p.cpu;
  const netOver = p.net === undefined || s.netBytesPerSec === undefined ? undefined : s.netBytesPerSec > p.net;
  if (cpuOver || netOver) return true;
  if (cpuOver === undefined && netOver === undefined) return undefined;
  return false;
}

export const overUse = registerRule<Raw>({
  name: 'over-use',
  summary: 'CPU or network above thresholds continuously for a window.',
  kind: 'soft',
  hosts: ['agent', 'watchdog'],
  actions: ['notify', 'stop', 'reboot', 'hibernate', 'terminate'],
  schema,
  validate(raw): RuleProblem[] {
    const out: RuleProblem[] = [];
    if (raw.cpuPercentAbove === undefined && raw.networkBytesPerSecAbove === undefined) {
      out.push(['cpuPercentAbove', 'or networkBytesPerSecAbove is required; give at least one threshold']);
    }
    return out;
  },
  normalize: (raw) => ({
    windowMs: ms(raw.window),
    ...(raw.cpuPercentAbove === undefined ? {} : { cpu: raw.cpuPercentAbove }),
    ...(raw.networkBytesPerSecAbove === undefined ? {} : { net: raw.networkBytesPerSecAbove }),
  }),
  evaluate(ctx: RuleContext): Outcome {
    const p = ctx.rule.params as unknown as Params;
    if (ctx.billing !== 'running') return { status: 'ok', reason: 'not running' };
    const c = scanCondition(ctx, (s) => isOverSample(p, s), ctx.checkpoint.since);
    if (!c.known) return { status: 'unknown', reason: `usage unknown: ${c.why}` };
    if (c.since === undefined) return { status: 'ok', reason: 'within limits' };
    const run = samplesSince(ctx, c.since);
    const parts: string[] = [];
    const cpu = minOf(run, (s) => s.cpuPercent);
    const net = minOf(run, (s) => s.netBytesPerSec);
    if (p.cpu !== undefined && cpu !== undefined) parts.push(`CPU ≥ ${cpu.toFixed(1)}% (limit ${p.cpu}%)`);
    if (p.net !== undefined && net !== undefined) parts.push(`network ≥ ${rate(net)} (limit ${rate(p.net)})`);
    const figs = parts.length ? parts.join(', ') : 'as reported by the agent';
    return conditionOutcome(
      ctx,
      c.since,
      c.lastAt,
      p.windowMs,
      (held) => `over-used for ${dur(held)} (window ${dur(p.windowMs)}): ${figs}`,
      c.reported,
    );
  },
  permissions: (rule) => actionPermissions(rule.action),
  example: { rule: 'over-use', window: '15m', cpuPercentAbove: 95, action: 'notify' },
});
