/**
 * The watchdog, assembled from injected ports: AWS clients (real, wrapped or fake), a
 * clock, the environment and a logger. `handle(event)` serves the three triggers (see
 * `trigger.ts`); the deployed handler builds one watchdog per container with the system
 * clock and the SDK's standard configuration (`handler.ts`).
 */
import { InvokeCommand } from '@aws-sdk/client-lambda';
import { isFirstCycleOfSlot, slotStart, type Clock } from '../adapters/clock';
import { describePolicyInstances, type AwsClient } from '../adapters/ec2';
import { createPriceList, type PriceList } from '../adapters/pricing';
import { publishEvent } from '../adapters/sns';
import { ParameterReadError, readParameter } from '../adapters/ssm';
import { contentHash } from '../contract/ids';
import { buildEvent } from '../executor';
import type { Logger } from '../log';
import { serializeError } from '../log';
import type { Policy } from '../policy/model';
import { loadPolicy, PolicyValidationError } from '../policy/parse';
import { ApiCallCounter, WRITE_OPERATIONS } from './api-calls';
import { readConfig, type WatchdogConfig } from './config';
import { runCycle, usageEvent, type CycleReport } from './cycle';
import { EventShapeError, PolicyLoadError } from './errors';
import { isMetricsCycle, planMetrics } from './metrics';
import type { Shard } from './shard';
import { parseTrigger, type Trigger } from './trigger';

/** Period of the `usage` event. */
export const USAGE_PERIOD_MS = 3_600_000;

export interface WatchdogDeps {
  readonly ec2: AwsClient;
  readonly sns: AwsClient;
  readonly ssm: AwsClient;
  readonly cloudwatch: AwsClient;
  readonly pricing: AwsClient;
  /** Needed only when SMVM_SHARD_COUNT > 1 (the schedule run invokes itself per shard). */
  readonly lambda?: AwsClient;
  readonly clock: Clock;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly logger: Logger;
  /**
   * Milliseconds a cycle may take when no Lambda context says how long is left.
   * @default - no limit
   */
  readonly budgetMs?: number;
}

/** The part of the Lambda context the watchdog reads. */
export interface InvocationContext {
  getRemainingTimeInMillis?(): number;
  readonly awsRequestId?: string;
}

export type WatchdogResult =
  | { readonly outcome: 'rejected'; readonly problems: readonly string[] }
  | { readonly outcome: 'policy-error'; readonly error: string }
  | { readonly outcome: 'fanned-out'; readonly shards: number; readonly failed: number; readonly apiCalls: Record<string, number> }
  | {
      readonly outcome: 'cycle';
      readonly trigger: Trigger['kind'];
      readonly policyId: string;
      readonly report: CycleReport;
      readonly apiCalls: Record<string, number>;
      readonly durationMs: number;
    };

export interface Watchdog {
  readonly config: WatchdogConfig;
  /** Handles one invocation. Throws only when AWS cannot be reached (Lambda retries then). */
  handle(event: unknown, context?: InvocationContext): Promise<WatchdogResult>;
}

export function createWatchdog(deps: WatchdogDeps): Watchdog {
  const config = readConfig(deps.env);
  const calls = new ApiCallCounter();
  const ec2 = calls.wrap(deps.ec2);
  const sns = calls.wrap(deps.sns);
  const ssm = calls.wrap(deps.ssm);
  const cloudwatch = calls.wrap(deps.cloudwatch);
  const lambda = deps.lambda ? calls.wrap(deps.lambda) : undefined;
  const prices: PriceList = createPriceList(calls.wrap(deps.pricing), { region: config.region, now: () => deps.clock.now() });
  /** What this container already announced (errors are announced once, then logged). */
  const announced = new Set<string>();
  const base = deps.logger.child({ component: 'watchdog', policy_id: config.policyId });

  async function loadPolicyOnce(log: Logger): Promise<Policy> {
    let raw: string;
    try {
      raw = await readParameter(ssm, config.policyParameter);
    } catch (e) {
      // A transient failure (throttling, 5xx, timeout) is not the policy's: it is thrown
      // as is, so the invocation fails and Lambda retries it; nothing is announced.
      if (e instanceof ParameterReadError && e.transient) throw e;
      throw new PolicyLoadError(config.policyId, (e as Error).message, { cause: e });
    }
    let doc: unknown;
    try {
      doc = JSON.parse(raw);
    } catch (e) {
      throw new PolicyLoadError(
        config.policyId,
        `policy:${config.policyId}: parameter '${config.policyParameter}' is not JSON (${(e as Error).message})`,
        { cause: raw },
      );
    }
    let policy: Policy;
    try {
      policy = loadPolicy(doc);
    } catch (e) {
      if (e instanceof PolicyValidationError) throw new PolicyLoadError(config.policyId, e.message, { cause: raw });
      throw e;
    }
    if (policy.id !== config.policyId) {
      throw new PolicyLoadError(
        config.policyId,
        `policy:${config.policyId}: 'id' in parameter '${config.policyParameter}' must be '${config.policyId}' (this watchdog's policy), got: '${policy.id}'`,
        { cause: raw },
      );
    }
    log.debug('policy loaded', { policy_hash: policy.hash, rules: policy.rules.length });
    return policy;
  }

  async function reportPolicyError(e: PolicyLoadError, log: Logger): Promise<WatchdogResult> {
    log.error('policy rejected', { error: serializeError(e) });
    const raw = typeof e.cause === 'string' ? e.cause : e.message;
    const key = `policy|${contentHash(raw)}`;
    if (!announced.has(key)) {
      const event = buildEvent(
        { source: 'watchdog', policyId: config.policyId, writesCheckpoint: true },
        {
          type: 'error',
          time: deps.clock.now(),
          subject: `policy ${config.policyId} rejected; no action taken`,
          message: `${e.message}\nThe watchdog takes no action until the policy in '${config.policyParameter}' is fixed.`,
          idParts: ['policy-error', config.policyId, contentHash(raw)],
          detail: { parameter: config.policyParameter },
        },
      );
      try {
        await publishEvent(sns, config.topicArn, event);
        announced.add(key);
      } catch (pe) {
        log.error('event not published', { event_type: 'error', error: serializeError(pe) });
      }
    }
    return { outcome: 'policy-error', error: e.message };
  }

  async function fanOut(log: Logger, before: Record<string, number>): Promise<WatchdogResult> {
    if (!lambda || !config.functionName) throw new Error(`fan-out needs a Lambda client and ${'AWS_LAMBDA_FUNCTION_NAME'}`);
    const count = config.shardCount;
    const results = await Promise.allSettled(
      Array.from({ length: count }, (_, index) =>
        lambda.send(
          new InvokeCommand({
            FunctionName: config.functionName,
            InvocationType: 'Event',
            Payload: Buffer.from(JSON.stringify({ smvmShard: { index, count } satisfies Shard })),
          }),
        ),
      ),
    );
    const failed = results.filter((r) => r.status === 'rejected');
    for (const f of failed) log.error('shard not invoked', { error: serializeError((f as PromiseRejectedResult).reason) });
    log.info('fanned out', { shards: count, failed: failed.length });
    return { outcome: 'fanned-out', shards: count, failed: failed.length, apiCalls: calls.since(before) };
  }

  return {
    config,
    async handle(event, context) {
      const started = performance.now();
      const before = calls.snapshot();
      let trigger: Trigger;
      try {
        trigger = parseTrigger(event);
      } catch (e) {
        if (!(e instanceof EventShapeError)) throw e;
        base.error('event rejected', { error: serializeError(e), problems: e.problems });
        return { outcome: 'rejected', problems: e.problems };
      }
      const log = base.child({
        trigger: trigger.kind,
        ...(context?.awsRequestId ? { request_id: context.awsRequestId } : {}),
        ...(trigger.kind === 'shard' ? { shard: trigger.shard } : {}),
        ...(trigger.kind === 'state-change' ? { instance_id: trigger.instanceId } : {}),
      });

      let policy: Policy;
      try {
        policy = await loadPolicyOnce(log);
      } catch (e) {
        if (e instanceof PolicyLoadError) return reportPolicyError(e, log);
        log.error('policy unreadable for now; the invocation fails for a retry', { error: serializeError(e) });
        throw e;
      }
      if (trigger.kind === 'schedule' && config.shardCount > 1) return fanOut(log, before);

      const now = deps.clock.now();
      const interval = config.scheduleIntervalMs;
      const periodic = trigger.kind !== 'state-change';
      const plan = periodic ? planMetrics(policy) : undefined;
      const usageDue = periodic && isFirstCycleOfSlot(now, USAGE_PERIOD_MS, interval);
      // Time budget: what Lambda says is left, and for periodic runs no more than the
      // schedule's interval, so that runs do not pile up behind a throttled one.
      const elapsed = () => performance.now() - started;
      const limits: Array<() => number> = [];
      if (context?.getRemainingTimeInMillis) limits.push(() => context.getRemainingTimeInMillis!());
      else if (deps.budgetMs !== undefined) limits.push(() => deps.budgetMs! - elapsed());
      if (periodic && limits.length > 0) limits.push(() => interval - elapsed());
      const timeLeft = limits.length > 0 ? () => Math.min(...limits.map((f) => f())) : undefined;

      let report: CycleReport;
      try {
        report = await runCycle(
          { ec2, sns, cloudwatch, prices, topicArn: config.topicArn, logger: log.child({ policy_hash: policy.hash }), announced },
          {
            policy,
            now,
            pages: describePolicyInstances(ec2, policy.id, trigger.kind === 'state-change' ? { instanceId: trigger.instanceId } : {}),
            ...(trigger.kind === 'shard' ? { shard: trigger.shard } : {}),
            ...(trigger.kind === 'state-change'
              ? { hint: { instanceId: trigger.instanceId, state: trigger.state, at: trigger.time } }
              : {}),
            readMetrics: plan !== undefined && isMetricsCycle(plan, now, interval),
            ...(usageDue ? { usagePeriodMs: USAGE_PERIOD_MS } : {}),
            ...(timeLeft ? { timeLeft } : {}),
          },
        );
      } catch (e) {
        log.error('cycle failed', { error: serializeError(e), api_calls: calls.since(before) });
        throw e;
      }
      if (report.usage) {
        try {
          await publishEvent(sns, config.topicArn, usageEvent(policy, now, report.usage, slotStart(now, USAGE_PERIOD_MS)));
          report.events++;
        } catch (e) {
          log.error('event not published', { event_type: 'usage', error: serializeError(e) });
        }
      }
      const durationMs = Math.round(performance.now() - started);
      const apiCalls = calls.since(before);
      const { usage: _usage, actions, errors, ...counts } = report;
      log.info('cycle finished', {
        policy_hash: policy.hash,
        ...counts,
        actions: actions.length,
        action_results: actions.slice(0, 20),
        errors: errors.length,
        error_samples: errors.slice(0, 5),
        api_calls: apiCalls,
        write_calls: Object.entries(apiCalls).reduce((n, [op, c]) => n + (WRITE_OPERATIONS.has(op) ? c : 0), 0),
        duration_ms: durationMs,
      });
      return { outcome: 'cycle', trigger: trigger.kind, policyId: policy.id, report, apiCalls, durationMs };
    },
  };
}
