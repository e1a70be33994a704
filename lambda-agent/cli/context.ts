/**
 * What every CLI command works with: AWS clients (standard credential chain, region,
 * profile, `AWS_ENDPOINT_URL`), the clock, output streams, and the look-ups shared by
 * the commands (a policy's document and topic, the managed instances and their
 * decisions).
 */
import { EC2Client, type Instance } from '@aws-sdk/client-ec2';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { SSMClient, GetParametersByPathCommand } from '@aws-sdk/client-ssm';
import { STSClient, GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { DescribeInstancesCommand } from '@aws-sdk/client-ec2';
import { POLICY_TAG } from '../contract/tags';
import { policyParameterName, topicParameterName } from '../contract/env';
import { loadPolicy, PolicyValidationError } from '../policy/parse';
import type { Policy } from '../policy/model';
import { evaluate, type Decision } from '../engine/evaluate';
import { describePolicyInstances, type AwsClient } from '../adapters/ec2';
import { observeInstance, type ObservedInstance } from '../adapters/observe';
import { readParameter } from '../adapters/ssm';

/** A failure the user can act on; `exitCode` says what kind. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number = EXIT.FAILURE,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export const EXIT = {
  OK: 0,
  /** AWS or runtime failure. */
  FAILURE: 1,
  /** Bad arguments. */
  USAGE: 2,
  /** The instance or policy was not found or is not managed. */
  NOT_FOUND: 3,
} as const;

export interface CliClients {
  ec2: AwsClient;
  ssm: AwsClient;
  sns: AwsClient;
  sqs: AwsClient;
  sts: AwsClient;
}

export interface CliContext {
  clients: CliClients;
  now: () => number;
  out: (text: string) => void;
  err: (text: string) => void;
  /** Whether to show progress (stderr is a terminal). */
  progress: boolean;
}

export function defaultClients(): CliClients {
  return { ec2: new EC2Client({}), ssm: new SSMClient({}), sns: new SNSClient({}), sqs: new SQSClient({}), sts: new STSClient({}) };
}

/** Policy ids that have a parameter under `/smvm/`. */
export async function listPolicyIds(ctx: CliContext): Promise<string[]> {
  const ids = new Set<string>();
  let token: string | undefined;
  do {
    const out = await ctx.clients.ssm.send(
      new GetParametersByPathCommand({ Path: '/smvm/', Recursive: true, ...(token ? { NextToken: token } : {}) }),
    );
    for (const p of out.Parameters ?? []) {
      const m = /^\/smvm\/([^/]+)\/policy$/.exec(p.Name ?? '');
      if (m) ids.add(m[1]);
    }
    token = out.NextToken;
  } while (token);
  return [...ids].sort();
}

export async function loadPolicyOf(ctx: CliContext, policyId: string): Promise<Policy> {
  let raw: string;
  try {
    raw = await readParameter(ctx.clients.ssm, policyParameterName(policyId));
  } catch {
    throw new CliError(
      `policy '${policyId}': its parameter ${policyParameterName(policyId)} cannot be read. Check the policy id (smvm status lists them) and your credentials.`,
      EXIT.NOT_FOUND,
    );
  }
  try {
    return loadPolicy(JSON.parse(raw));
  } catch (e) {
    const detail = e instanceof PolicyValidationError ? e.message : (e as Error).message;
    throw new CliError(`policy '${policyId}': the stored document is invalid:\n${detail}`);
  }
}

export async function topicOf(ctx: CliContext, policyId: string): Promise<string | undefined> {
  try {
    return await readParameter(ctx.clients.ssm, topicParameterName(policyId));
  } catch {
    return undefined;
  }
}

/** The caller's identity, for "who" in announcements. */
export async function whoAmI(ctx: CliContext): Promise<string> {
  try {
    const id = await ctx.clients.sts.send(new GetCallerIdentityCommand({}));
    return id.Arn ?? id.UserId ?? 'unknown';
  } catch {
    return process.env.USER ?? 'unknown';
  }
}

/** One managed instance, observed and evaluated now. */
export interface Evaluated {
  readonly policy: Policy;
  readonly observed: ObservedInstance;
  readonly decision: Decision;
}

/** The managed instance with this id, whatever its policy. */
export async function findManaged(ctx: CliContext, instanceId: string): Promise<{ instance: Instance; policyId: string }> {
  if (!/^i-[0-9a-f]{8,17}$/.test(instanceId)) {
    throw new CliError(`'${instanceId}' is not an instance id (i-0123456789abcdef0)`, EXIT.USAGE);
  }
  let out;
  try {
    out = await ctx.clients.ec2.send(new DescribeInstancesCommand({ InstanceIds: [instanceId] }));
  } catch (e) {
    const name = (e as { name?: string }).name ?? '';
    if (/NotFound|Malformed/.test(name))
      throw new CliError(`instance ${instanceId} does not exist in this account and region`, EXIT.NOT_FOUND);
    throw e;
  }
  const instance = out.Reservations?.[0]?.Instances?.[0];
  if (!instance) throw new CliError(`instance ${instanceId} does not exist in this account and region`, EXIT.NOT_FOUND);
  const policyId = instance.Tags?.find((t: { Key?: string }) => t.Key === POLICY_TAG)?.Value;
  if (!policyId) throw new CliError(`instance ${instanceId} has no ${POLICY_TAG} tag: it is not self-managed`, EXIT.NOT_FOUND);
  return { instance, policyId };
}

/** Observe and evaluate one described instance. Bad tags become a CliError naming the tag. */
export function evaluateInstance(instance: Instance, policy: Policy, now: number): Evaluated {
  const observed = observeInstance(instance, policy.id);
  if (observed.kind === 'error') throw new CliError(`${observed.instanceId}: ${observed.error.message}`);
  if (observed.kind === 'ignored') throw new CliError(`${observed.instanceId}: ${observed.why}`, EXIT.NOT_FOUND);
  return { policy, observed: observed.value, decision: evaluate(policy, observed.value.observation, now) };
}

/** Every instance of a policy, evaluated now; instances with bad tags are listed apart. */
export async function evaluatePolicy(
  ctx: CliContext,
  policy: Policy,
): Promise<{ rows: Evaluated[]; errors: Array<{ instanceId: string; error: string }> }> {
  const rows: Evaluated[] = [];
  const errors: Array<{ instanceId: string; error: string }> = [];
  let pages = 0;
  for await (const page of describePolicyInstances(ctx.clients.ec2, policy.id)) {
    pages++;
    if (ctx.progress) ctx.err(`\r${policy.id}: page ${pages}, ${rows.length + page.length} instances`);
    const now = ctx.now();
    for (const instance of page) {
      try {
        rows.push(evaluateInstance(instance, policy, now));
      } catch (e) {
        errors.push({ instanceId: instance.InstanceId ?? '?', error: (e as Error).message });
      }
    }
  }
  if (ctx.progress && pages > 0) ctx.err('\n');
  return { rows, errors };
}
