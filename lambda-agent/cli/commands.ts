/**
 * The CLI's commands. Each takes parsed options and a {@link CliContext}, prints
 * through it and returns an exit code; errors the user can act on are CliErrors.
 */
import Table from 'cli-table3';
import {
  ReceiveMessageCommand,
  DeleteMessageBatchCommand,
  CreateQueueCommand,
  GetQueueAttributesCommand,
  SetQueueAttributesCommand,
  DeleteQueueCommand,
} from '@aws-sdk/client-sqs';
import { SubscribeCommand, UnsubscribeCommand } from '@aws-sdk/client-sns';
import { EXTEND_TAG, SNOOZE_TAG } from '../contract/tags';
import { decodeExtensions, encodeExtensions, encodeSnooze } from '../contract/state';
import { parseEvent, type SmvmEvent } from '../contract/events';
import { parseDuration, formatDuration } from '../policy/duration';
import { findRule } from '../rules';
import type { Decision } from '../engine/evaluate';
import { writeTags } from '../adapters/ec2';
import { publishEvent } from '../adapters/sns';
import { buildEvent } from '../executor';
import {
  CliError,
  EXIT,
  evaluateInstance,
  evaluatePolicy,
  findManaged,
  listPolicyIds,
  loadPolicyOf,
  topicOf,
  whoAmI,
  type CliContext,
  type Evaluated,
} from './context';

const ago = (ms: number) => `${formatDuration(ms)} ago`;
const money = (v: number) => `$${v.toFixed(2)}`;

function limitOf(d: Decision, type: string): { value?: number; limit?: number } | undefined {
  return d.rules.find((r) => r.type === type)?.figures;
}

function left(d: Decision, type: string, unit: 'ms' | 'usd'): string {
  const f = limitOf(d, type);
  if (!f || f.limit === undefined || f.value === undefined) return '-';
  const rest = f.limit - f.value;
  return unit === 'ms' ? (rest <= 0 ? 'exceeded' : formatDuration(rest)) : rest <= 0 ? 'exceeded' : money(rest);
}

function nextText(d: Decision, now: number): string {
  if (d.action) return `${d.action.name} now (${d.action.rule})`;
  if (!d.next) return '-';
  const when = d.next.at - now <= 0 ? 'now' : `in ${formatDuration(d.next.at - now)}`;
  return `${d.next.kind === 'warning' ? `warn of ${d.next.action}` : d.next.action} ${when} (${d.next.rule})`;
}

function statusRow(e: Evaluated, now: number) {
  const d = e.decision;
  const hb = e.observed.observation.heartbeat;
  const inFlight = (e.observed.observation.episodes ?? [])
    .filter((r) => r.warnedAt !== undefined && r.actedAt === undefined)
    .map((r) => r.rule);
  return {
    policy: e.policy.id,
    instanceId: e.observed.instanceId,
    state: e.observed.state,
    heartbeatAgeMs: hb ? now - hb.at : null,
    lifetimeLeft: left(d, 'lifetime', 'ms'),
    runningHours: Math.round((d.accounting.runningMs / 3_600_000) * 10) / 10,
    runningLeft: left(d, 'running-time', 'ms'),
    spendUsd: Math.round(d.accounting.spendUsd * 100) / 100,
    spendCapUsd: limitOf(d, 'spend')?.limit ?? null,
    next: nextText(d, now),
    nextAt: d.action ? now : (d.next?.at ?? null),
    warnings: inFlight,
  };
}

async function policiesFor(ctx: CliContext, policy?: string): Promise<string[]> {
  if (policy) return [policy];
  const ids = await listPolicyIds(ctx);
  if (ids.length === 0)
    throw new CliError(
      'no policies found (no SSM parameters under /smvm/); deploy a SelfManagementPolicy first or pass --policy',
      EXIT.NOT_FOUND,
    );
  return ids;
}

export async function status(ctx: CliContext, opts: { policy?: string; json?: boolean }): Promise<number> {
  const now = ctx.now();
  const rows: ReturnType<typeof statusRow>[] = [];
  const errors: Array<{ instanceId: string; error: string }> = [];
  for (const id of await policiesFor(ctx, opts.policy)) {
    const policy = await loadPolicyOf(ctx, id);
    const r = await evaluatePolicy(ctx, policy);
    rows.push(...r.rows.map((e) => statusRow(e, now)));
    errors.push(...r.errors);
  }
  if (opts.json) {
    ctx.out(JSON.stringify({ at: new Date(now).toISOString(), instances: rows, errors }, null, 2));
    return errors.length ? EXIT.FAILURE : EXIT.OK;
  }
  const t = new Table({
    head: ['policy', 'instance', 'state', 'heartbeat', 'lifetime left', 'running h', 'running left', 'spend / cap', 'next', 'warnings'],
    style: { head: [], border: [] },
  });
  for (const r of rows) {
    t.push([
      r.policy,
      r.instanceId,
      r.state,
      r.heartbeatAgeMs === null ? 'none' : ago(r.heartbeatAgeMs),
      r.lifetimeLeft,
      r.runningHours.toFixed(1),
      r.runningLeft,
      `${money(r.spendUsd)} / ${r.spendCapUsd === null ? '-' : money(r.spendCapUsd)}`,
      r.next,
      r.warnings.join(', ') || '-',
    ]);
  }
  ctx.out(rows.length ? t.toString() : 'no managed instances');
  for (const e of errors) ctx.err(`error: ${e.instanceId}: ${e.error}`);
  return errors.length ? EXIT.FAILURE : EXIT.OK;
}

export async function explain(ctx: CliContext, opts: { instanceId: string; json?: boolean }): Promise<number> {
  const { instance, policyId } = await findManaged(ctx, opts.instanceId);
  const policy = await loadPolicyOf(ctx, policyId);
  const now = ctx.now();
  const e = evaluateInstance(instance, policy, now);
  const d = e.decision;
  if (opts.json) {
    ctx.out(JSON.stringify(d, null, 2));
    return EXIT.OK;
  }
  const lines: string[] = [];
  lines.push(
    `${d.instanceId} under policy '${policy.id}' (version ${policy.hash})${policy.dryRun ? ' — DRY RUN: decides and announces, never acts' : ''}`,
  );
  lines.push(
    `state: ${e.observed.state}; first seen ${ago(now - d.accounting.firstSeen)}; running ${formatDuration(d.accounting.runningMs)} in all; spend ${money(d.accounting.spendUsd)}`,
  );
  const hb = e.observed.observation.heartbeat;
  lines.push(
    hb ? `agent: last heartbeat ${ago(now - hb.at)}${hb.version ? ` (agent ${hb.version})` : ''}` : 'agent: no heartbeat recorded',
  );
  const ov = e.observed.observation.overrides;
  if (ov?.snoozeUntil && ov.snoozeUntil > now) lines.push(`snoozed until ${new Date(ov.snoozeUntil).toISOString()} (soft rules only)`);
  if (ov?.lifetimeMs || ov?.runningMs || ov?.spendUsd) {
    lines.push(
      `extensions: ${[ov.lifetimeMs ? `lifetime +${formatDuration(ov.lifetimeMs)}` : '', ov.runningMs ? `running +${formatDuration(ov.runningMs)}` : '', ov.spendUsd ? `spend +${money(ov.spendUsd)}` : ''].filter(Boolean).join(', ')}`,
    );
  }
  lines.push('', 'rules:');
  for (const r of d.rules) {
    const kind = findRule(r.type)?.kind === 'hard' ? 'hard limit' : 'soft';
    const when = r.actAt !== undefined && r.actAt > now ? `; ${r.action} in ${formatDuration(r.actAt - now)}` : '';
    lines.push(`  ${r.rule} (${kind}, action ${r.action}): ${r.status.toUpperCase()} — ${r.reason}${when}`);
  }
  lines.push('');
  if (d.action) lines.push(`decision: ${d.action.name} now, because ${d.action.reason}`);
  else if (d.warnings.length)
    lines.push(`decision: warn now — ${d.warnings.map((w) => `${w.action} at ${new Date(w.dueAt).toISOString()} (${w.rule})`).join('; ')}`);
  else lines.push('decision: nothing to do now');
  if (d.next && !d.action) lines.push(`next: ${nextText(d, now)}, at ${new Date(d.next.at).toISOString()}`);
  for (const n of d.notices) lines.push(`notice: ${n}`);
  ctx.out(lines.join('\n'));
  return EXIT.OK;
}

/** The policy's topic ARN, or a CliError saying how to fix it. */
async function requireTopic(ctx: CliContext, policyId: string): Promise<string> {
  const topic = await topicOf(ctx, policyId);
  if (!topic) {
    throw new CliError(
      `the topic of policy '${policyId}' is unknown (no /smvm/${policyId}/topic parameter), so the change could not be announced; nothing was changed. Redeploy the policy or check your region.`,
      EXIT.NOT_FOUND,
    );
  }
  return topic;
}

/**
 * Announce, then write: the event is published first (its id is deterministic, so a
 * retry is deduplicated by subscribers) and the tag is written only once it is, so an
 * override never takes effect unannounced. A failed tag write after the announcement
 * is reported as an error; running the command again is safe.
 */
async function announceThenWrite(
  ctx: CliContext,
  policyId: string,
  event: SmvmEvent,
  instanceId: string,
  tags: Record<string, string>,
): Promise<void> {
  const topic = await requireTopic(ctx, policyId);
  try {
    await publishEvent(ctx.clients.sns, topic, event);
  } catch (e) {
    throw new CliError(
      `could not announce the change on ${topic} (${(e as Error).name}: ${(e as Error).message}); nothing was changed. Try again.`,
    );
  }
  try {
    await writeTags(ctx.clients.ec2, instanceId, tags);
  } catch (e) {
    throw new CliError(
      `announced, but writing the tag on ${instanceId} failed (${(e as Error).name}: ${(e as Error).message}); run the same command again.`,
    );
  }
}

export async function snooze(
  ctx: CliContext,
  opts: { instanceId: string; duration: string; reason?: string; json?: boolean },
): Promise<number> {
  const d = parseDuration(opts.duration);
  if (!d.ok) throw new CliError(`duration '${opts.duration}' ${d.problem}`, EXIT.USAGE);
  if (d.ms > 30 * 86_400_000)
    throw new CliError(`duration '${opts.duration}' is longer than 30 days; snooze at most 30d at a time`, EXIT.USAGE);
  if (!opts.reason) throw new CliError('--reason is required: say why the rules are snoozed (it is announced)', EXIT.USAGE);
  const { policyId } = await findManaged(ctx, opts.instanceId);
  const now = ctx.now();
  const until = now + d.ms;
  const by = await whoAmI(ctx);
  const event = buildEvent(
    { source: 'cli', policyId, writesCheckpoint: false },
    {
      type: 'snoozed',
      time: now,
      instanceId: opts.instanceId,
      subject: `${opts.instanceId} snoozed for ${formatDuration(d.ms)}`,
      message: `soft rules of ${opts.instanceId} snoozed until ${new Date(until).toISOString()} by ${by}: ${opts.reason}. Hard limits (lifetime, running time, spend) still apply.`,
      detail: { by, reason: opts.reason, until: new Date(until).toISOString() },
      idParts: ['snoozed', opts.instanceId, until],
    },
  );
  await announceThenWrite(ctx, policyId, event, opts.instanceId, { [SNOOZE_TAG]: encodeSnooze(until, by) });
  ctx.out(
    opts.json
      ? JSON.stringify({ instanceId: opts.instanceId, snoozedUntil: new Date(until).toISOString(), by, announced: true })
      : `${opts.instanceId}: soft rules snoozed until ${new Date(until).toISOString()} (announced)`,
  );
  return EXIT.OK;
}

const LIMITS = ['lifetime', 'running', 'spend'] as const;

export async function extend(
  ctx: CliContext,
  opts: { instanceId: string; limit: string; amount: string; reason?: string; json?: boolean },
): Promise<number> {
  if (!LIMITS.includes(opts.limit as (typeof LIMITS)[number]))
    throw new CliError(`limit '${opts.limit}' must be one of ${LIMITS.join(', ')}`, EXIT.USAGE);
  if (!opts.reason) throw new CliError('--reason is required: extending a hard limit is announced with who and why', EXIT.USAGE);
  let add: { lifetimeMs?: number; runningMs?: number; spendUsd?: number };
  let amountText: string;
  if (opts.limit === 'spend') {
    const usd = Number(opts.amount.replace(/^\$/, ''));
    if (!Number.isFinite(usd) || usd <= 0 || usd > 100_000)
      throw new CliError(`amount '${opts.amount}' must be a positive number of USD (e.g. 10 or $10)`, EXIT.USAGE);
    add = { spendUsd: usd };
    amountText = money(usd);
  } else {
    const d = parseDuration(opts.amount);
    if (!d.ok || d.ms <= 0) throw new CliError(`amount '${opts.amount}' ${d.ok ? 'must be longer than zero' : d.problem}`, EXIT.USAGE);
    add = opts.limit === 'lifetime' ? { lifetimeMs: d.ms } : { runningMs: d.ms };
    amountText = formatDuration(d.ms);
  }
  const { instance, policyId } = await findManaged(ctx, opts.instanceId);
  const current = instance.Tags?.find((t) => t.Key === EXTEND_TAG)?.Value;
  let prev: ReturnType<typeof decodeExtensions> = {};
  if (current) {
    try {
      prev = decodeExtensions(current, EXTEND_TAG);
    } catch (e) {
      throw new CliError(`${opts.instanceId}: ${(e as Error).message}`);
    }
  }
  const total = {
    lifetimeMs: (prev.lifetimeMs ?? 0) + (add.lifetimeMs ?? 0),
    runningMs: (prev.runningMs ?? 0) + (add.runningMs ?? 0),
    spendUsd: (prev.spendUsd ?? 0) + (add.spendUsd ?? 0),
  };
  const by = await whoAmI(ctx);
  const now = ctx.now();
  const event = buildEvent(
    { source: 'cli', policyId, writesCheckpoint: false },
    {
      type: 'extended',
      time: now,
      instanceId: opts.instanceId,
      severity: 'warning',
      subject: `${opts.instanceId}: ${opts.limit} limit extended by ${amountText}`,
      message: `${by} extended the ${opts.limit} limit of ${opts.instanceId} by ${amountText}: ${opts.reason}`,
      detail: { by, reason: opts.reason, limit: opts.limit, amount: opts.amount, totals: total },
      idParts: ['extended', opts.instanceId, opts.limit, now],
    },
  );
  await announceThenWrite(ctx, policyId, event, opts.instanceId, { [EXTEND_TAG]: encodeExtensions(total) });
  ctx.out(
    opts.json
      ? JSON.stringify({ instanceId: opts.instanceId, limit: opts.limit, added: opts.amount, totals: total, by, announced: true })
      : `${opts.instanceId}: ${opts.limit} limit extended by ${amountText} (announced)`,
  );
  return EXIT.OK;
}

function prettyEvent(e: SmvmEvent): string {
  const who = e.instanceId ? ` ${e.instanceId}` : '';
  return `${e.time} ${e.severity.toUpperCase().padEnd(8)} ${e.type.padEnd(14)}${who} [${e.policyId}${e.rule ? `/${e.rule}` : ''}] ${e.message}`;
}

/** Reads events from an SQS queue subscribed to the policy's topic (a temporary one unless --queue-url). */
export async function events(
  ctx: CliContext,
  opts: { policy?: string; queueUrl?: string; follow?: boolean; json?: boolean; waitSeconds?: number; signal?: AbortSignal },
): Promise<number> {
  const sqs = ctx.clients.sqs;
  let queueUrl = opts.queueUrl;
  let cleanup: (() => Promise<void>) | undefined;
  if (!queueUrl) {
    if (!opts.policy)
      throw new CliError('give --queue-url of a queue subscribed to the topic, or --policy to subscribe a temporary queue', EXIT.USAGE);
    const topic = await topicOf(ctx, opts.policy);
    if (!topic)
      throw new CliError(`the topic of policy '${opts.policy}' is unknown (no /smvm/${opts.policy}/topic parameter)`, EXIT.NOT_FOUND);
    const name = `smvm-events-${opts.policy}-${ctx.now().toString(36)}`;
    queueUrl = (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
    const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
    await sqs.send(
      new SetQueueAttributesCommand({
        QueueUrl: queueUrl,
        Attributes: {
          Policy: JSON.stringify({
            Version: '2012-10-17',
            Statement: [
              {
                Effect: 'Allow',
                Principal: { Service: 'sns.amazonaws.com' },
                Action: 'sqs:SendMessage',
                Resource: arn,
                Condition: { ArnEquals: { 'aws:SourceArn': topic } },
              },
            ],
          }),
        },
      }),
    );
    const sub = await ctx.clients.sns.send(
      new SubscribeCommand({
        TopicArn: topic,
        Protocol: 'sqs',
        Endpoint: arn,
        Attributes: { RawMessageDelivery: 'true' },
        ReturnSubscriptionArn: true,
      }),
    );
    cleanup = async () => {
      await ctx.clients.sns.send(new UnsubscribeCommand({ SubscriptionArn: sub.SubscriptionArn })).catch(() => undefined);
      await sqs.send(new DeleteQueueCommand({ QueueUrl: queueUrl })).catch(() => undefined);
    };
    if (!opts.json) ctx.err(`listening on a temporary queue subscribed to ${topic}${opts.follow ? ' (Ctrl-C to stop)' : ''}`);
  }
  // Waiting is measured on the wall clock (ctx.now may be a fixed test clock).
  const deadline = Date.now() + (opts.waitSeconds ?? 5) * 1000;
  let count = 0;
  try {
    for (;;) {
      if (opts.signal?.aborted) break;
      const out = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: opts.follow ? 10 : 1 }),
      );
      const msgs: Array<{ Body?: string; ReceiptHandle?: string }> = out.Messages ?? [];
      for (const m of msgs) {
        let body = m.Body ?? '';
        try {
          const outer = JSON.parse(body);
          if (outer && typeof outer === 'object' && outer.Type === 'Notification' && typeof outer.Message === 'string')
            body = outer.Message;
        } catch {
          /* not JSON: reported below */
        }
        try {
          const e = parseEvent(body);
          ctx.out(opts.json ? JSON.stringify(e) : prettyEvent(e));
          count++;
        } catch (err) {
          ctx.err(`skipped a message that is not an smvm event: ${(err as Error).message}`);
        }
      }
      if (msgs.length) {
        await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: queueUrl,
            Entries: msgs.map((m: { ReceiptHandle?: string }, i: number) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
          }),
        );
      }
      if (!opts.follow && msgs.length === 0 && Date.now() >= deadline) break;
    }
  } finally {
    await cleanup?.();
  }
  if (!opts.json && count === 0 && !opts.follow) ctx.err('no events');
  return EXIT.OK;
}

export async function report(ctx: CliContext, opts: { policy?: string; since?: string; json?: boolean }): Promise<number> {
  let sinceMs: number | undefined;
  if (opts.since) {
    const d = parseDuration(opts.since);
    const t = Date.parse(opts.since);
    if (d.ok) sinceMs = ctx.now() - d.ms;
    else if (Number.isFinite(t)) sinceMs = t;
    else throw new CliError(`--since '${opts.since}' must be a duration (7d) or a date (2026-11-01)`, EXIT.USAGE);
  }
  const now = ctx.now();
  const policies: Array<{
    policy: string;
    instances: number;
    runningHours: number;
    spendUsd: number;
    savedUsd: number | null;
    actions: number;
  }> = [];
  const instances: Array<{
    policy: string;
    instanceId: string;
    state: string;
    runningHours: number;
    lifetimeHours: number;
    spendUsd: number;
    savedUsd: number | null;
    actions: number;
  }> = [];
  for (const id of await policiesFor(ctx, opts.policy)) {
    const policy = await loadPolicyOf(ctx, id);
    const { rows } = await evaluatePolicy(ctx, policy);
    const sum = { policy: id, instances: 0, runningHours: 0, spendUsd: 0, savedUsd: 0 as number | null, actions: 0 };
    for (const e of rows) {
      const a = e.decision.accounting;
      if (sinceMs !== undefined && a.firstSeen < sinceMs) continue;
      const rate = (e.policy.rules.find((r) => r.type === 'spend')?.params.hourlyUsd as number | undefined) ?? undefined;
      // Saved: what the instance would have cost running all its life, minus what it cost.
      const saved = rate === undefined ? null : Math.max(0, (a.lifetimeMs / 3_600_000) * rate - a.spendUsd);
      const actions = (e.observed.observation.episodes ?? []).filter((r) => r.actedAt !== undefined).length;
      instances.push({
        policy: id,
        instanceId: e.observed.instanceId,
        state: e.observed.state,
        runningHours: a.runningMs / 3_600_000,
        lifetimeHours: a.lifetimeMs / 3_600_000,
        spendUsd: a.spendUsd,
        savedUsd: saved,
        actions,
      });
      sum.instances++;
      sum.runningHours += a.runningMs / 3_600_000;
      sum.spendUsd += a.spendUsd;
      sum.savedUsd = saved === null || sum.savedUsd === null ? null : sum.savedUsd + saved;
      sum.actions += actions;
    }
    policies.push(sum);
  }
  if (opts.json) {
    ctx.out(
      JSON.stringify(
        { at: new Date(now).toISOString(), since: sinceMs === undefined ? null : new Date(sinceMs).toISOString(), policies, instances },
        null,
        2,
      ),
    );
    return EXIT.OK;
  }
  const t = new Table({ head: ['policy', 'instances', 'running h', 'spend', 'saved', 'actions'], style: { head: [], border: [] } });
  for (const p of policies)
    t.push([
      p.policy,
      String(p.instances),
      p.runningHours.toFixed(1),
      money(p.spendUsd),
      p.savedUsd === null ? 'n/a (no hourlyUsd)' : money(p.savedUsd),
      String(p.actions),
    ]);
  const u = new Table({
    head: ['policy', 'instance', 'state', 'running h', 'lifetime h', 'spend', 'saved', 'actions'],
    style: { head: [], border: [] },
  });
  for (const i of instances)
    u.push([
      i.policy,
      i.instanceId,
      i.state,
      i.runningHours.toFixed(1),
      i.lifetimeHours.toFixed(1),
      money(i.spendUsd),
      i.savedUsd === null ? 'n/a' : money(i.savedUsd),
      String(i.actions),
    ]);
  ctx.out(
    `${t.toString()}\n\n${instances.length ? u.toString() : 'no managed instances'}\n\nsaved = the instance's lifetime at its hourly rate, minus its spend (what running without the policy would have cost more).`,
  );
  return EXIT.OK;
}
