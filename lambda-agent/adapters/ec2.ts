/**
 * EC2 adapter of the watchdog (AWS SDK v3): discovery of a policy's instances, the
 * state write (one CreateTags per instance), status checks, and the actions the
 * executor performs, batched per action.
 *
 * Every call goes through `client.send`, so the deployed client's retry strategy
 * (exponential backoff with jitter on throttling such as RequestLimitExceeded and on
 * 5xx, see `watchdog/clients.ts`) applies, and tests may inject a wrapped or fake client.
 */
import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  DescribeInstanceStatusCommand,
  RebootInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
  type DescribeInstancesCommandInput,
  type Instance,
} from '@aws-sdk/client-ec2';
import { POLICY_TAG } from '../contract/tags';
import type { ActionResult, InstanceAction } from '../executor';

/** Anything with the SDK v3 `send` method: a real client, a wrapped one or a fake. */
export interface AwsClient {
  send(command: any, options?: any): Promise<any>;
}

/** States the watchdog manages (discovers). Terminated and shutting-down instances are never touched; only an action's confirmation ({@link describeStates}) sees them. */
export const MANAGED_STATES = ['pending', 'running', 'stopping', 'stopped'] as const;

/** Instances per DescribeInstances page (the API's maximum). */
export const DESCRIBE_PAGE_SIZE = 1000;
/** Instance ids per action call. */
export const ACTION_BATCH_SIZE = 500;
/** Instance ids per DescribeInstanceStatus call (the API's maximum with explicit ids). */
export const STATUS_BATCH_SIZE = 100;

export interface DiscoverOptions {
  /** Only this instance (state-change events): added as an `instance-id` filter. */
  readonly instanceId?: string;
  /** Page size. @default 1000 */
  readonly pageSize?: number;
}

/**
 * The filters of every describe: the policy tag with the exact id (EC2 matches tag
 * values exactly, so `dev` never matches `dev-2`), the managed states, and optionally
 * one instance id. There is never an unfiltered describe.
 */
export function discoveryFilters(policyId: string, instanceId?: string): NonNullable<DescribeInstancesCommandInput['Filters']> {
  return [
    { Name: `tag:${POLICY_TAG}`, Values: [policyId] },
    { Name: 'instance-state-name', Values: [...MANAGED_STATES] },
    ...(instanceId ? [{ Name: 'instance-id', Values: [instanceId] }] : []),
  ];
}

/** The policy's instances, one page at a time. */
export async function* describePolicyInstances(ec2: AwsClient, policyId: string, opts: DiscoverOptions = {}): AsyncGenerator<Instance[]> {
  let token: string | undefined;
  do {
    const out = await ec2.send(
      new DescribeInstancesCommand({
        Filters: discoveryFilters(policyId, opts.instanceId),
        ...(opts.instanceId ? {} : { MaxResults: opts.pageSize ?? DESCRIBE_PAGE_SIZE }),
        ...(token ? { NextToken: token } : {}),
      }),
    );
    const page: Instance[] = [];
    for (const r of out.Reservations ?? []) for (const i of r.Instances ?? []) page.push(i);
    yield page;
    token = out.NextToken || undefined;
  } while (token);
}

/** Writes tags on one instance in one call. */
export async function writeTags(ec2: AwsClient, instanceId: string, tags: Readonly<Record<string, string>>): Promise<void> {
  const list = Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
  if (list.length === 0) return;
  await ec2.send(new CreateTagsCommand({ Resources: [instanceId], Tags: list }));
}

/** Result of the EC2 status checks of a running instance. */
export interface StatusCheck {
  /** Both checks pass (`true`), one is impaired (`false`), or not yet known (`undefined`). */
  readonly ok?: boolean;
  /** Epoch ms since when a failed check has been failing, when EC2 says. */
  readonly impairedSince?: number;
}

/** Status checks of running instances (DescribeInstanceStatus, 100 ids per call). */
export async function describeStatusChecks(ec2: AwsClient, instanceIds: readonly string[]): Promise<Map<string, StatusCheck>> {
  const out = new Map<string, StatusCheck>();
  for (let i = 0; i < instanceIds.length; i += STATUS_BATCH_SIZE) {
    const ids = instanceIds.slice(i, i + STATUS_BATCH_SIZE);
    let token: string | undefined;
    do {
      const res = await ec2.send(new DescribeInstanceStatusCommand({ InstanceIds: ids, ...(token ? { NextToken: token } : {}) }));
      for (const s of res.InstanceStatuses ?? []) {
        if (!s.InstanceId) continue;
        const summaries = [s.InstanceStatus, s.SystemStatus];
        const statuses = summaries.map((x) => x?.Status);
        let impairedSince: number | undefined;
        for (const sum of summaries) {
          for (const d of sum?.Details ?? []) {
            const t = d.ImpairedSince instanceof Date ? d.ImpairedSince.getTime() : undefined;
            if (d.Status === 'failed' && t !== undefined && (impairedSince === undefined || t < impairedSince)) impairedSince = t;
          }
        }
        const ok = statuses.includes('impaired') ? false : statuses.every((x) => x === 'ok') ? true : undefined;
        out.set(s.InstanceId, { ...(ok === undefined ? {} : { ok }), ...(impairedSince === undefined ? {} : { impairedSince }) });
      }
      token = res.NextToken || undefined;
    } while (token);
  }
  return out;
}

// ---------------------------------------------------------------- errors

function errorCode(e: unknown): string {
  const x = e as { name?: string; Code?: string; code?: string };
  return x?.Code ?? x?.name ?? x?.code ?? 'Error';
}

/** Throttling codes of the services the watchdog calls (the SDK's list, plus EC2's and SNS's own). */
const THROTTLING_CODES = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottledException',
  'TooManyRequestsException',
  'ProvisionedThroughputExceededException',
  'TransactionInProgressException',
  'RequestLimitExceeded',
  'BandwidthLimitExceeded',
  'LimitExceededException',
  'RequestThrottled',
  'SlowDown',
  'PriorRequestNotComplete',
  'EC2ThrottledException',
]);
/** Server-side and timeout codes. */
const TRANSIENT_CODES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'InternalFailure',
  'InternalServerError',
  'ServiceUnavailable',
  'Unavailable',
]);
/** Node's codes for a connection that broke or never came up. */
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'EPIPE', 'ETIMEDOUT', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED']);

/**
 * Whether an AWS call failed for a transient reason (after the client's own retries):
 * throttling, a 5xx, a timeout or a broken connection. Such a failure says nothing about
 * the request itself: the same call may succeed later, and a write may even have taken
 * effect (the error came after it, or an earlier attempt's answer was lost).
 */
export function isTransientError(e: unknown): boolean {
  if (e === null || typeof e !== 'object') return false;
  const x = e as {
    name?: string;
    code?: string;
    Code?: string;
    $fault?: string;
    $retryable?: unknown;
    $metadata?: { httpStatusCode?: number };
  };
  const status = x.$metadata?.httpStatusCode;
  if (x.$retryable || x.$fault === 'server' || (status !== undefined && (status >= 500 || status === 429))) return true;
  // The SDK wraps an error it does not recognise as one (e.g. from another realm, as under
  // a test runner's sandbox) as "AWS SDK error wrapper for <name>: <message>".
  const wrapped = /^AWS SDK error wrapper for (\w+)/.exec((e as { message?: unknown }).message?.toString() ?? '')?.[1];
  const codes = [x.Code, x.name, x.code, wrapped].filter((c): c is string => typeof c === 'string');
  return codes.some((c) => THROTTLING_CODES.has(c) || TRANSIENT_CODES.has(c) || NETWORK_CODES.has(c));
}

// ---------------------------------------------------------------- actions

function errorText(e: unknown): string {
  return `${errorCode(e)}: ${e instanceof Error ? e.message : String(e)}`;
}

/** Codes that concern single instances: a batch that fails with one is split up. */
const PER_INSTANCE_CODES = new Set([
  'OperationNotPermitted',
  'UnsupportedOperation',
  'UnsupportedHibernationConfiguration',
  'IncorrectInstanceState',
  'IncorrectState',
  'InvalidInstanceID.NotFound',
  'InvalidInstanceID.Malformed',
  'InsufficientInstanceCapacity',
  'InstanceLimitExceeded',
  'UnsupportedInstanceAttribute',
]);

/** Codes with which EC2 refuses to hibernate an instance: a plain stop is done instead. */
export const HIBERNATION_REFUSED_CODES = new Set(['UnsupportedHibernationConfiguration', 'UnsupportedOperation']);

async function call(ec2: AwsClient, action: InstanceAction, ids: string[], hibernate = action === 'hibernate'): Promise<void> {
  switch (action) {
    case 'stop':
    case 'hibernate':
      await ec2.send(new StopInstancesCommand({ InstanceIds: ids, ...(hibernate ? { Hibernate: true } : {}) }));
      return;
    case 'reboot':
      await ec2.send(new RebootInstancesCommand({ InstanceIds: ids }));
      return;
    case 'terminate':
      await ec2.send(new TerminateInstancesCommand({ InstanceIds: ids }));
      return;
    case 'start':
      await ec2.send(new StartInstancesCommand({ InstanceIds: ids }));
      return;
  }
}

/** The result for one instance whose single-instance call failed. */
async function classify(ec2: AwsClient, action: InstanceAction, id: string, e: unknown): Promise<ActionResult> {
  const code = errorCode(e);
  if (code === 'OperationNotPermitted' && action === 'terminate') {
    return {
      outcome: 'skipped',
      reason: 'termination-protection',
      detail: `termination protection (disableApiTermination) is on: ${errorText(e)}`,
    };
  }
  if (code === 'OperationNotPermitted' && (action === 'stop' || action === 'hibernate')) {
    return { outcome: 'skipped', reason: 'stop-protection', detail: `stop protection (disableApiStop) is on: ${errorText(e)}` };
  }
  if (action === 'hibernate' && HIBERNATION_REFUSED_CODES.has(code)) {
    try {
      await call(ec2, 'stop', [id], false);
      return { outcome: 'fallback', performed: 'stop', reason: errorText(e) };
    } catch (e2) {
      if (errorCode(e2) === 'OperationNotPermitted') {
        return { outcome: 'skipped', reason: 'stop-protection', detail: `hibernation refused (${errorText(e)}) and stop protection is on` };
      }
      return { outcome: 'failed', error: `hibernation refused (${errorText(e)}); stop failed: ${errorText(e2)}` };
    }
  }
  return { outcome: 'failed', error: errorText(e) };
}

/** States in which an action's effect is visible (as the executor judges a pending record); a reboot leaves none. */
export const ACTION_EFFECT: Readonly<Record<InstanceAction, readonly string[]>> = {
  stop: ['stopping', 'stopped', 'shutting-down', 'terminated'],
  hibernate: ['stopping', 'stopped', 'shutting-down', 'terminated'],
  terminate: ['shutting-down', 'terminated'],
  reboot: [],
  start: ['pending', 'running'],
};

/** Every instance state: a targeted describe that confirms an action sees terminated instances too. */
const ALL_STATES = [...MANAGED_STATES, 'shutting-down', 'terminated'];
/** Values of one `instance-id` filter per describe. */
const CONFIRM_BATCH_SIZE = 200;

/**
 * The current state of some of a policy's instances, whatever it is (terminated
 * included), by a describe filtered on the policy tag and the instance ids.
 */
export async function describeStates(ec2: AwsClient, policyId: string, instanceIds: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (let i = 0; i < instanceIds.length; i += CONFIRM_BATCH_SIZE) {
    const filters = [
      { Name: `tag:${POLICY_TAG}`, Values: [policyId] },
      { Name: 'instance-state-name', Values: ALL_STATES },
      { Name: 'instance-id', Values: instanceIds.slice(i, i + CONFIRM_BATCH_SIZE) },
    ];
    let token: string | undefined;
    do {
      const res = await ec2.send(new DescribeInstancesCommand({ Filters: filters, ...(token ? { NextToken: token } : {}) }));
      for (const r of res.Reservations ?? [])
        for (const x of r.Instances ?? []) if (x.InstanceId && x.State?.Name) out.set(x.InstanceId, x.State.Name);
      token = res.NextToken || undefined;
    } while (token);
  }
  return out;
}

export interface PerformOptions {
  /**
   * The policy of the instances: after a failure that may hide an effect (see
   * {@link isTransientError}), describe them under this policy and take an instance
   * whose state shows the action's effect as done. Without it, such failures stay failed.
   */
  readonly policyId?: string;
}

/**
 * Carries out one action on many instances: one call per {@link ACTION_BATCH_SIZE} ids.
 * When a batch fails for a reason that concerns single instances (protection, state,
 * hibernation support), it is split in halves and retried until the offending
 * instances stand alone, so one bad instance never blocks the rest (k bad instances
 * among n cost about 2·k·log2(n) calls, not n). Other errors (after the client's own
 * retries) fail the whole batch; when such an error may have come after the action took
 * effect (throttling, 5xx, timeout, dropped connection) and `opts.policyId` is given, the
 * instances are described at once and those showing the effect count as done (a
 * terminated instance is never discovered again, so no later run could confirm it).
 * Never throws.
 */
export async function performAction(
  ec2: AwsClient,
  action: InstanceAction,
  instanceIds: readonly string[],
  opts: PerformOptions = {},
): Promise<Map<string, ActionResult>> {
  const results = new Map<string, ActionResult>();
  /** Instances whose call failed in a way that may hide its effect. */
  const unsure: string[] = [];
  const attempt = async (ids: string[]): Promise<void> => {
    try {
      await call(ec2, action, ids);
      for (const id of ids) results.set(id, { outcome: 'done' });
    } catch (e) {
      if (ids.length === 1) {
        results.set(ids[0], await classify(ec2, action, ids[0], e));
      } else if (PER_INSTANCE_CODES.has(errorCode(e))) {
        const mid = Math.ceil(ids.length / 2);
        await attempt(ids.slice(0, mid));
        await attempt(ids.slice(mid));
      } else {
        for (const id of ids) results.set(id, { outcome: 'failed', error: errorText(e) });
      }
      if (isTransientError(e)) unsure.push(...ids.filter((id) => results.get(id)?.outcome === 'failed'));
    }
  };
  const unique = [...new Set(instanceIds)];
  for (let i = 0; i < unique.length; i += ACTION_BATCH_SIZE) await attempt(unique.slice(i, i + ACTION_BATCH_SIZE));
  if (opts.policyId !== undefined && unsure.length > 0 && ACTION_EFFECT[action].length > 0) {
    try {
      const states = await describeStates(ec2, opts.policyId, unsure);
      for (const id of unsure) if (ACTION_EFFECT[action].includes(states.get(id) ?? '')) results.set(id, { outcome: 'done' });
    } catch {
      // Unconfirmed: the results stay failed (the records stay pending for the next run).
    }
  }
  return results;
}
