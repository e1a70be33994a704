/**
 * idle: CPU below a threshold AND network below a threshold (AND no interactive login
 * sessions, where the agent can see them) continuously for a window. Unknown or
 * missing data breaks the window, and so does the start grace after every start: boot
 * and setup are not idleness.
 */
import * as z from 'zod/mini';
import { registerRule } from './registry';
import { commonShape, duration, ms, dur, percent, nonNegative, rate, scanCondition, conditionOutcome, samplesSince, maxOf } from './common';
import { actionPermissions } from './permissions';
import type { Outcome, RuleContext, Sample } from './types';

const schema = z.strictObject({
  ...commonShape('idle'),
  /** How long the instance must stay idle. */
  window: duration,
  /** CPU utilisation below which it may be idle, percent. @default 5 */
  cpuPercentBelow: z.optional(percent),
  /** Network throughput (in + out) below which it may be idle, bytes/s. @default 10240 */
  networkBytesPerSecBelow: z.optional(nonNegative),
  /** Open interactive login sessions keep it busy (agent only). @default true */
  loginsKeepBusy: z.optional(z.boolean()),
  /** Time after every start that never counts as idle. @default '15m' */
  startGrace: z.optional(duration),
});
type Raw = z.infer<typeof schema>;

interface Params {
  windowMs: number;
  cpu: number;
  net: number;
  logins: boolean;
  graceMs: number;
}

export function isIdleSample(p: Pick<Params, 'cpu' | 'net' | 'logins'>, s: Sample): boolean | undefined {
  if (s.cpuPercent === undefined || s.netBytesPerSec === undefined) return undefined;
  if (p.logins && s.loginSessions !== undefined && s.loginSessions > 0) return false;
  return s.cpuPercent < p.cpu && s.netBytesPerSec < p.net;
}

export const idle = registerRule<Raw>({
  name: 'idle',
  summary: 'CPU and network below thresholds (and nobody logged in) continuously for a window, after a start grace.',
  kind: 'soft',
  hosts: ['agent', 'watchdog'],
  actions: ['stop', 'hibernate', 'terminate', 'notify'],
  schema,
  normalize: (raw): Record<string, unknown> => ({
    windowMs: ms(raw.window),
    cpu: raw.cpuPercentBelow ?? 5,
    net: raw.networkBytesPerSecBelow ?? 10240,
    logins: raw.loginsKeepBusy ?? true,
    graceMs: ms(raw.startGrace ?? '15m'),
  }),
  evaluate(ctx: RuleContext): Outcome {
    const p = ctx.rule.params as unknown as Params;
    if (ctx.billing !== 'running') return { status: 'ok', reason: 'not running' };
    const notBefore = ctx.checkpoint.since + p.graceMs;
    const c = scanCondition(ctx, (s) => isIdleSample(p, s), notBefore);
    if (!c.known) return { status: 'unknown', reason: `idleness unknown: ${c.why}` };
    if (c.since === undefined) {
      if (ctx.now < notBefore) return { status: 'ok', reason: `start grace until ${dur(notBefore - ctx.now)} from now` };
      const last = ctx.obs.samples?.[ctx.obs.samples.length - 1];
      const fig = last
        ? ` (CPU ${last.cpuPercent?.toFixed(1) ?? '?'}%, network ${last.netBytesPerSec === undefined ? '?' : rate(last.netBytesPerSec)}${last.loginSessions ? `, ${last.loginSessions} login(s)` : ''})`
        : '';
      return { status: 'ok', reason: `busy${fig}` };
    }
    const run = samplesSince(ctx, c.since);
    const cpu = maxOf(run, (s) => s.cpuPercent);
    const net = maxOf(run, (s) => s.netBytesPerSec);
    const figs =
      cpu === undefined || net === undefined
        ? 'as reported by the agent'
        : `CPU ≤ ${cpu.toFixed(1)}% < ${p.cpu}%, network ≤ ${rate(net)} < ${rate(p.net)}`;
    return conditionOutcome(
      ctx,
      c.since,
      c.lastAt,
      p.windowMs,
      (held) => `idle for ${dur(held)} (window ${dur(p.windowMs)}): ${figs}`,
      c.reported,
    );
  },
  permissions: (rule) => actionPermissions(rule.action),
  example: {
    rule: 'idle',
    window: '30m',
    cpuPercentBelow: 5,
    networkBytesPerSecBelow: 10240,
    startGrace: '15m',
    action: 'stop',
    warnBefore: '5m',
  },
});
