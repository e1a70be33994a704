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

/** States the watchdog manages. Terminated and shutting-down instances are never touched. */
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

// ---------------------------------------------------------------- actions

function errorCode(e: unknown): string {
  const x = e as { name?: string; Code?: string; code?: string };
  return x?.Code ?? x?.name ?? x?.code ?? 'Error';
}

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

/**
 * Carries out one action on many instances: one call per {@link ACTION_BATCH_SIZE} ids.
 * When a batch fails for a reason that concerns single instances (protection, state,
 * hibernation support), it is split in halves and retried until the offending
 * instances stand alone, so one bad instance never blocks the rest (k bad instances
 * among n cost about 2·k·log2(n) calls, not n). Other errors (after the client's own
 * retries) fail the whole batch. Never throws.
 */
export async function performAction(
  ec2: AwsClient,
  action: InstanceAction,
  instanceIds: readonly string[],
): Promise<Map<string, ActionResult>> {
  const results = new Map<string, ActionResult>();
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
    }
  };
  const unique = [...new Set(instanceIds)];
  for (let i = 0; i < unique.length; i += ACTION_BATCH_SIZE) await attempt(unique.slice(i, i + ACTION_BATCH_SIZE));
  return results;
}
