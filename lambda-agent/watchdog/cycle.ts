/**
 * One watchdog cycle over described instances, page by page:
 *
 *   observe (tags → Observation) → price → usage facts (silent agents only, on the
 *   cadence) → finish pending actions → evaluate → execute what changes something.
 *
 * The schedule (whole fleet or one shard) and a state-change event (one instance) run
 * the same pipeline. Memory stays proportional to a page (1,000 instances), not to the
 * fleet: only the decisions that change something and a capped usage list are kept.
 * A steady-state cycle makes no write: no tag, no event, no action.
 */
import type { Instance } from '@aws-sdk/client-ec2';
import { describeStatusChecks, type AwsClient, type StatusCheck } from '../adapters/ec2';
import { fetchUsageSamples, type MetricRequest } from '../adapters/cloudwatch';
import { isHeartbeatFresh, observeInstance, type ObservedInstance } from '../adapters/observe';
import type { PriceList } from '../adapters/pricing';
import type { EventType, SmvmEvent } from '../contract/event-core';
import { evaluate } from '../engine/evaluate';
import type { Decision } from '../engine/evaluate';
import { buildEvent, executeAll, finishPending, type ExecutionContext, type ExecutionReport } from '../executor';
import type { Logger } from '../log';
import { serializeError } from '../log';
import type { Policy } from '../policy/model';
import { formatDuration } from '../policy/duration';
import type { InstanceState, Sample } from '../rules/types';
import { buildSamples, planMetrics, type MetricPlan } from './metrics';
import { createPorts, effectiveDecision, type WatchdogPorts } from './ports';
import { inShard, type Shard } from './shard';
import { UsageAccumulator, type UsageSummary } from './usage';

/** Decisions handed to the executor at once (its batches per action are this large at most). */
export const EXECUTE_CHUNK = 250;
/** Chunks executed concurrently. */
export const EXECUTE_CONCURRENCY = 4;

export interface CycleDeps {
  readonly ec2: AwsClient;
  readonly sns: AwsClient;
  readonly cloudwatch: AwsClient;
  readonly prices: PriceList;
  readonly topicArn: string;
  readonly logger: Logger;
  /** Facts already announced by this container (announced once, then only logged). */
  readonly announced: Set<string>;
}

export interface CycleOptions {
  readonly policy: Policy;
  readonly now: number;
  readonly pages: AsyncIterable<Instance[]>;
  readonly shard?: Shard;
  /** The transition a state-change event reported (its exact time). */
  readonly hint?: { readonly instanceId: string; readonly state: InstanceState; readonly at: number };
  /** Read usage facts for silent agents this cycle. */
  readonly readMetrics: boolean;
  /** Collect and publish the usage event this cycle. */
  readonly usagePeriodMs?: number;
  /** Milliseconds left before the cycle must end (undefined: no limit). */
  readonly timeLeft?: () => number;
}

export interface CycleReport {
  pages: number;
  /** Instances of this policy (and shard) in a managed state. */
  instances: number;
  /** Described but not ours (other policy, state) — never touched. */
  ignored: number;
  tagErrors: number;
  evaluateErrors: number;
  /** Decisions that changed something. */
  changed: number;
  actions: ExecutionReport['actions'];
  warnings: number;
  events: number;
  writes: number;
  skippedWrites: number;
  transitions: number;
  errors: ExecutionReport['errors'];
  /** Decisions left for the next cycle (time budget spent). */
  deferred: number;
  metrics: { instances: number; metrics: number; calls: number; statusChecked: number };
  priceErrors: string[];
  usage?: UsageSummary;
}

/** When the remaining time falls below these, plain state writes / everything are deferred. */
export const SOFT_MARGIN_MS = 15_000;
export const HARD_MARGIN_MS = 5_000;

function priority(d: Decision): number {
  if (d.action) return d.action.hard ? 0 : 1;
  if (d.warnings.length) return 2;
  return 3;
}

/**
 * Whether a recorded transition is the effect of an action a guard took during the
 * previous state (it was announced then: a `state-changed` event would only repeat it).
 */
function causedByGuard(d: Decision, previousSince: number): boolean {
  const effects: Record<string, string> = { stop: 'stopped', hibernate: 'stopped', terminate: 'stopped', start: 'running' };
  return d.episodes.some((r) => r.actedAt !== undefined && r.actedAt >= previousSince && effects[r.action ?? ''] === d.checkpoint.state);
}

async function pool<T>(items: readonly T[], concurrency: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
}

export function emptyReport(): CycleReport {
  return {
    pages: 0,
    instances: 0,
    ignored: 0,
    tagErrors: 0,
    evaluateErrors: 0,
    changed: 0,
    actions: [],
    warnings: 0,
    events: 0,
    writes: 0,
    skippedWrites: 0,
    transitions: 0,
    errors: [],
    deferred: 0,
    metrics: { instances: 0, metrics: 0, calls: 0, statusChecked: 0 },
    priceErrors: [],
  };
}

/** A compact form of a decision for the log line (the same data as the events carry). */
function logDecision(d: Decision) {
  return {
    at: d.at,
    policyHash: d.policyHash,
    billing: d.billing,
    dryRun: d.dryRun,
    ...(d.action ? { action: d.action } : {}),
    ...(d.warnings.length ? { warnings: d.warnings } : {}),
    reasons: d.reasons,
    rules: d.rules.map((r) => ({ rule: r.rule, status: r.status, reason: r.reason })),
    accounting: d.accounting,
    checkpointChanged: d.checkpointChanged,
    episodesChanged: d.episodesChanged,
    ...(d.notices.length ? { notices: d.notices } : {}),
  };
}

/** Runs one cycle. Never throws for one instance's problem; throws only if describing fails. */
export async function runCycle(deps: CycleDeps, opts: CycleOptions): Promise<CycleReport> {
  const { policy, now, logger } = { ...opts, logger: deps.logger };
  const report = emptyReport();
  const observed = new Map<string, ObservedInstance>();
  const managementIds = new Map<string, string>();
  const ctx: ExecutionContext = { source: 'watchdog', policyId: policy.id, writesCheckpoint: true, managementIds };
  const ports: WatchdogPorts = createPorts({ ec2: deps.ec2, sns: deps.sns, topicArn: deps.topicArn, policyId: policy.id }, observed);
  const spend = policy.rules.find((r) => r.type === 'spend');
  const needsPrice = spend !== undefined && spend.params.hourlyUsd === undefined;
  const plan: MetricPlan | undefined = opts.readMetrics ? planMetrics(policy) : undefined;
  const usage = opts.usagePeriodMs ? new UsageAccumulator(now, opts.usagePeriodMs) : undefined;

  const announceOnce = async (key: string, event: SmvmEvent) => {
    if (deps.announced.has(key)) return;
    try {
      await ports.publish(event);
      report.events++;
      deps.announced.add(key);
    } catch (e) {
      logger.error('event not published', { event_type: event.type, instance_id: event.instanceId, error: serializeError(e) });
    }
  };
  const errorEvent = (fields: {
    instanceId?: string;
    subject: string;
    message: string;
    idParts: Array<string | number | undefined>;
    detail?: Record<string, unknown>;
  }) => buildEvent(ctx, { type: 'error', time: now, ...fields });

  for await (const page of opts.pages) {
    report.pages++;
    // Memory is bounded by the page: what the ports need is kept for this page only.
    observed.clear();
    managementIds.clear();
    const items: ObservedInstance[] = [];
    for (const inst of page) {
      const id = inst.InstanceId ?? '';
      if (opts.shard && !inShard(id, opts.shard)) continue;
      const o = observeInstance(inst, policy.id, opts.hint && opts.hint.instanceId === id ? opts.hint : undefined);
      if (o.kind === 'ignored') {
        report.ignored++;
        continue;
      }
      if (o.kind === 'error') {
        report.tagErrors++;
        logger.error('instance state unreadable', { instance_id: o.instanceId, error: serializeError(o.error) });
        await announceOnce(
          `tag|${o.instanceId}|${o.error.key}|${o.error.value}`,
          errorEvent({
            instanceId: o.instanceId,
            subject: `${o.instanceId}: unreadable tag ${o.error.key}`,
            message: `${o.error.message} The watchdog leaves this instance alone until the tag is fixed.`,
            idParts: ['tag-error', o.instanceId, o.error.key, o.error.value],
            detail: { tag: o.error.key, value: o.error.value },
          }),
        );
        continue;
      }
      items.push(o.value);
      observed.set(id, o.value);
      if (o.value.managementId) managementIds.set(id, o.value.managementId);
    }
    report.instances += items.length;
    if (items.length === 0) continue;

    // Prices: one look-up per instance type (cached by the price list for the container).
    const prices = new Map<string, number>();
    if (needsPrice) {
      const types = [...new Set(items.map((i) => i.instanceType).filter((t): t is string => !!t))];
      await Promise.all(
        types.map(async (type) => {
          const r = await deps.prices.lookup(type);
          if (r.ok) {
            prices.set(type, r.hourlyUsd);
            return;
          }
          report.priceErrors.push(type);
          logger.error('price unknown', { instance_type: type, error: serializeError(r.error) });
          if (r.firstReport) {
            await announceOnce(
              `price|${type}|${r.error.region}`,
              errorEvent({
                subject: `price unknown for ${type}`,
                message: `${r.error.message} Until then the spend rule cannot judge instances of type ${type}.`,
                idParts: ['price-error', policy.id, type, r.error.region, now],
                detail: { instanceType: type, region: r.error.region },
              }),
            );
          }
        }),
      );
    }

    // Usage facts for running instances whose agent is silent.
    const samples = new Map<string, Sample[]>();
    if (plan) {
      const silent = items.filter(
        (i) => (i.state === 'running' || i.state === 'pending') && !isHeartbeatFresh(i.observation.heartbeat, policy, now),
      );
      if (silent.length) {
        try {
          const status = plan.status
            ? await describeStatusChecks(
                deps.ec2,
                silent.map((i) => i.instanceId),
              )
            : new Map<string, StatusCheck>();
          report.metrics.statusChecked += plan.status ? silent.length : 0;
          const requests: MetricRequest[] =
            plan.cpu || plan.net ? silent.map((i) => ({ instanceId: i.instanceId, cpu: plan.cpu, net: plan.net })) : [];
          const usageRead = requests.length
            ? await fetchUsageSamples(deps.cloudwatch, requests, { start: now - plan.lookbackMs, end: now, periodMs: plan.periodMs })
            : { samples: new Map<string, Sample[]>(), calls: 0, metrics: 0 };
          report.metrics.instances += requests.length;
          report.metrics.metrics += usageRead.metrics;
          report.metrics.calls += usageRead.calls;
          for (const i of silent) {
            const s = buildSamples(now, plan, usageRead.samples.get(i.instanceId), status.get(i.instanceId));
            if (s) samples.set(i.instanceId, s);
          }
        } catch (e) {
          // Without readings the usage rules are `unknown` this cycle: never a reason to act.
          logger.error('usage facts unavailable', { instances: silent.length, error: serializeError(e) });
        }
      }
    }

    // Finish what a crashed run left pending, before deciding anything new.
    const pending = items.filter((i) => i.observation.episodes?.some((r) => r.pending));
    const finished = pending.length
      ? await finishPending(
          pending.map((i) => ({ instanceId: i.instanceId, state: i.state, records: i.observation.episodes! })),
          ports,
          ctx,
          now,
        )
      : new Map();

    const run: Decision[] = [];
    const transitions = new Map<string, ObservedInstance>();
    for (const item of items) {
      let obs = item.observation;
      const price = item.instanceType ? prices.get(item.instanceType) : undefined;
      const s = samples.get(item.instanceId);
      const records = finished.get(item.instanceId);
      if (price !== undefined || s || records) {
        obs = {
          ...obs,
          ...(price !== undefined ? { hourlyUsd: price } : {}),
          ...(s ? { samples: s, samplePeriodMs: plan!.periodMs } : {}),
          ...(records ? { episodes: records } : {}),
        };
      }
      let d: Decision;
      try {
        d = effectiveDecision(evaluate(policy, obs, now), item);
      } catch (e) {
        report.evaluateErrors++;
        const message = e instanceof Error ? e.message : String(e);
        logger.error('evaluation failed', { instance_id: item.instanceId, error: serializeError(e) });
        await announceOnce(
          `evaluate|${item.instanceId}|${message}`,
          errorEvent({
            instanceId: item.instanceId,
            subject: `${item.instanceId}: evaluation failed`,
            message,
            idParts: ['evaluate-error', item.instanceId, message],
          }),
        );
        continue;
      }
      usage?.add(d, item.managementId);
      if (d.action || d.warnings.length || d.episodesChanged || d.checkpointChanged) {
        run.push(d);
        logger.info('decision made', { instance_id: d.instanceId, policy_hash: d.policyHash, decision: logDecision(d) });
        const prev = item.observation.checkpoint;
        if (d.checkpointChanged && prev && prev.state !== d.checkpoint.state && !causedByGuard(d, prev.since))
          transitions.set(d.instanceId, item);
      }
    }
    report.changed += run.length;

    // Announce a recorded transition before the checkpoint that records it is written:
    // a run that dies in between, or fails to publish, leaves the old checkpoint, so the
    // next run sees the same transition and announces it again (same event id, which
    // subscribers deduplicate). Returns false when it could not be published.
    const announceTransition = async (item: ObservedInstance, d: Decision): Promise<boolean> => {
      const to = d.checkpoint.state;
      const type: EventType = 'state-changed';
      try {
        await ports.publish(
          buildEvent(ctx, {
            type,
            time: d.checkpoint.since,
            instanceId: item.instanceId,
            decision: d,
            subject: `${item.instanceId} ${to === 'running' ? 'started' : 'stopped'}`,
            message: `${item.instanceId} is ${item.state} since ${new Date(d.checkpoint.since).toISOString()}; running time so far ${formatDuration(d.accounting.runningMs)}, lifetime ${formatDuration(d.accounting.lifetimeMs)}.`,
            idParts: [type, item.instanceId, to, Math.floor(d.checkpoint.since / 1000)],
            detail: { state: item.state, billing: to },
          }),
        );
        report.events++;
        report.transitions++;
        return true;
      } catch (e) {
        logger.error('event not published', { event_type: type, instance_id: item.instanceId, error: serializeError(e) });
        return false;
      }
    };

    // Execute: hard-limit actions first, then other actions, warnings, plain state writes.
    run.sort((a, b) => priority(a) - priority(b));
    const chunks: Decision[][] = [];
    for (let i = 0; i < run.length; i += EXECUTE_CHUNK) chunks.push(run.slice(i, i + EXECUTE_CHUNK));
    await pool(chunks, EXECUTE_CONCURRENCY, async (chunk) => {
      let list = chunk;
      const left = opts.timeLeft?.();
      if (left !== undefined && left < HARD_MARGIN_MS) list = [];
      else if (left !== undefined && left < SOFT_MARGIN_MS) list = chunk.filter((d) => priority(d) < 3);
      report.deferred += chunk.length - list.length;
      const ready: Decision[] = [];
      for (const d of list) {
        const item = transitions.get(d.instanceId);
        if (!item || (await announceTransition(item, d)) || d.action) ready.push(d);
        // Not announced: keep the old checkpoint (the next run sees the transition again
        // and announces it) and carry out the rest of the decision. A decision that acts
        // still records its checkpoint: the action is about to change the state again, and
        // accounting must not lose the run it closes.
        else if (d.warnings.length || d.episodesChanged) ready.push({ ...d, checkpointChanged: false });
      }
      if (ready.length === 0) return;
      const r = await executeAll(ready, ports, ctx);
      report.actions.push(...r.actions);
      report.warnings += r.warnings;
      report.events += r.events;
      report.errors.push(...r.errors);
    });
  }

  report.writes = ports.stats.writes;
  report.skippedWrites = ports.stats.skippedWrites;
  if (usage) report.usage = usage.summary(opts.shard);
  return report;
}

/** The `usage` event of a cycle's summary (one per policy, or per shard, per period). */
export function usageEvent(policy: Policy, now: number, summary: UsageSummary, periodStart: number): SmvmEvent {
  const shard = summary.shard ? ` shard ${summary.shard.index + 1}/${summary.shard.count}` : '';
  const ctx: ExecutionContext = { source: 'watchdog', policyId: policy.id, writesCheckpoint: true };
  return buildEvent(ctx, {
    type: 'usage',
    time: now,
    subject: `${policy.id}${shard}: ${summary.instances} instances, ${summary.running} running, $${summary.spendUsd.toFixed(2)} spent`,
    message:
      `${summary.instances} instances of policy '${policy.id}'${shard}: ${summary.running} running, ${summary.stopped} stopped; ` +
      `${summary.runningHours} running hours and $${summary.spendUsd.toFixed(2)} so far; ` +
      `${summary.actionsInPeriod} actions in the last ${formatDuration(summary.periodMs)}.` +
      (summary.omitted ? ` ${summary.listed.length} instances closest to a limit are listed, ${summary.omitted} more are not.` : ''),
    idParts: ['usage', policy.id, periodStart, summary.shard?.index, summary.shard?.count],
    detail: { ...summary },
  });
}
