/**
 * The synthesized IAM policies, evaluated with their conditions by an independent IAM
 * simulator (@cloud-copilot/iam-simulate): the agent can act on its own instance only,
 * the watchdog on its policy's instances only, and only the guards can publish.
 */
import { Testing } from 'cdktf';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { AGENT_EPISODES_TAG, EPISODES_TAG, HEARTBEAT_TAG, MANAGEMENT_ID_TAG, POLICY_TAG, STATE_TAG } from '../../lambda-agent/contract';
import { ACCOUNT, REGION, one, parse, policyJson, resolver, testPolicy, type Json, type Synthesized } from './support/synth';

type Result = 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied';

const instanceArn = (id: string) => `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${id}`;

let s: Synthesized;
let agent: Json;
let watchdog: Json;
let topicPolicy: Json;

beforeAll(() => {
  // GIVEN the synthesized policies of a spend-capped, idle-stopping, lifetime-terminating policy
  s = parse(Testing.synthScope((scope) => testPolicy(scope)));
  agent = policyJson(s, 'Policy_AgentPolicyDocument');
  watchdog = policyJson(s, 'Policy_WatchdogPolicyDocument');
  topicPolicy = policyJson(s, 'Policy_TopicPolicyDocument');
});

interface Request {
  readonly principal: string;
  readonly action: string;
  readonly resource: string;
  readonly context?: Record<string, string | string[]>;
}

async function simulate(identityPolicy: Json, r: Request, resourcePolicy?: Json): Promise<Result> {
  const result = (await runSimulation(
    {
      request: {
        principal: r.principal,
        action: r.action,
        resource: { resource: r.resource, accountId: ACCOUNT },
        contextVariables: { 'aws:PrincipalArn': r.principal, ...r.context },
      },
      identityPolicies: [{ name: 'policy', policy: identityPolicy }],
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      ...(resourcePolicy ? { resourcePolicy } : {}),
    } as never,
    {},
  )) as { overallResult?: Result; errors?: unknown };
  if (!result.overallResult) throw new Error(`simulation failed: ${JSON.stringify(result).slice(0, 500)}`);
  return result.overallResult;
}

describe('agent role', () => {
  const AGENT = `arn:aws:iam::${ACCOUNT}:role/Policy_AgentRole_4507AA06`;
  const SELF = 'i-0aaaaaaaaaaaaaaaa';
  const OTHER = 'i-0bbbbbbbbbbbbbbbb';
  /** A request signed with the role credentials of instance SELF, about instance `target`. */
  const onInstance = (action: string, target: string, extra: Record<string, string | string[]> = {}, policyTag = 'dev'): Request => ({
    principal: AGENT,
    action,
    resource: instanceArn(target),
    context: {
      'ec2:SourceInstanceARN': instanceArn(SELF),
      'ec2:InstanceID': target,
      [`aws:ResourceTag/${POLICY_TAG}`]: policyTag,
      ...extra,
    },
  });

  it.each<[string, Request, Result]>([
    ['stops its own instance', onInstance('ec2:StopInstances', SELF), 'Allowed'],
    ['terminates its own instance', onInstance('ec2:TerminateInstances', SELF), 'Allowed'],
    ['cannot stop another instance of the same policy', onInstance('ec2:StopInstances', OTHER), 'ImplicitlyDenied'],
    ['cannot start even its own instance', onInstance('ec2:StartInstances', SELF), 'ImplicitlyDenied'],
    [
      'cannot act on its instance once the policy tag says another policy',
      onInstance('ec2:StopInstances', SELF, {}, 'prod'),
      'ImplicitlyDenied',
    ],
    [
      'cannot stop anything with credentials taken off the instance',
      {
        principal: AGENT,
        action: 'ec2:StopInstances',
        resource: instanceArn(SELF),
        context: { 'ec2:InstanceID': SELF, [`aws:ResourceTag/${POLICY_TAG}`]: 'dev' },
      },
      'ImplicitlyDenied',
    ],
    [
      'writes its heartbeat and episodes on its own instance',
      onInstance('ec2:CreateTags', SELF, { 'aws:TagKeys': [HEARTBEAT_TAG, AGENT_EPISODES_TAG] }),
      'Allowed',
    ],
    [
      'cannot write its heartbeat on another instance',
      onInstance('ec2:CreateTags', OTHER, { 'aws:TagKeys': [HEARTBEAT_TAG] }),
      'ImplicitlyDenied',
    ],
    ['cannot write the policy tag', onInstance('ec2:CreateTags', SELF, { 'aws:TagKeys': [POLICY_TAG] }), 'ImplicitlyDenied'],
    [
      "cannot write the watchdog's state",
      onInstance('ec2:CreateTags', SELF, { 'aws:TagKeys': [HEARTBEAT_TAG, STATE_TAG] }),
      'ImplicitlyDenied',
    ],
    ['cannot delete tags', onInstance('ec2:DeleteTags', SELF, { 'aws:TagKeys': [HEARTBEAT_TAG] }), 'ImplicitlyDenied'],
  ])('%s', async (_name, request, expected) => {
    expect(await simulate(agent, request)).toBe(expected);
  });

  it('publishes to its topic, reads its parameters and fetches its artifact, nothing else', async () => {
    const resolve = resolver(s);
    const key = one(s, 'aws_s3_object').key as string;
    const cases: Array<[string, string, Result]> = [
      ['sns:Publish', resolve('aws_sns_topic.Policy_Topic_ED7487E8.arn'), 'Allowed'],
      ['sns:Publish', `arn:aws:sns:${REGION}:${ACCOUNT}:someone-else`, 'ImplicitlyDenied'],
      ['ssm:GetParameter', `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/smvm/dev/policy`, 'Allowed'],
      ['ssm:GetParameter', `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/smvm/dev/agent`, 'Allowed'],
      ['ssm:GetParameter', `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/smvm/prod/policy`, 'ImplicitlyDenied'],
      ['s3:GetObject', `arn:aws:s3:::smvm-agent-test/${key}`, 'Allowed'],
      ['s3:GetObject', 'arn:aws:s3:::smvm-agent-test/agent/0000/agent.js', 'ImplicitlyDenied'],
    ];
    for (const [action, resource, expected] of cases) {
      expect([
        action,
        resource,
        await simulate(agent, { principal: AGENT, action, resource, context: { 'ec2:SourceInstanceARN': instanceArn(SELF) } }),
      ]).toEqual([action, resource, expected]);
    }
  });
});

describe('watchdog role', () => {
  const WATCHDOG = `arn:aws:iam::${ACCOUNT}:role/Policy_WatchdogRole_4B6BDC7B`;
  const on = (action: string, policyTag: string | undefined, extra: Record<string, string | string[]> = {}): Request => ({
    principal: WATCHDOG,
    action,
    resource: instanceArn('i-0ccccccccccccccccc'),
    context: { ...(policyTag ? { [`aws:ResourceTag/${POLICY_TAG}`]: policyTag } : {}), ...extra },
  });

  it.each<[string, Request, Result]>([
    ['describes instances', { principal: WATCHDOG, action: 'ec2:DescribeInstances', resource: '*' }, 'Allowed'],
    ['stops an instance of its policy', on('ec2:StopInstances', 'dev'), 'Allowed'],
    ['terminates an instance of its policy', on('ec2:TerminateInstances', 'dev'), 'Allowed'],
    ['cannot stop an instance of another policy', on('ec2:StopInstances', 'prod'), 'ImplicitlyDenied'],
    ['cannot stop an unmanaged instance', on('ec2:StopInstances', undefined), 'ImplicitlyDenied'],
    ['cannot start (no rule of this policy starts)', on('ec2:StartInstances', 'dev'), 'ImplicitlyDenied'],
    ['cannot reboot (no rule of this policy reboots)', on('ec2:RebootInstances', 'dev'), 'ImplicitlyDenied'],
    ['writes its state and episodes', on('ec2:CreateTags', 'dev', { 'aws:TagKeys': [STATE_TAG, EPISODES_TAG] }), 'Allowed'],
    ['deletes its own keys', on('ec2:DeleteTags', 'dev', { 'aws:TagKeys': [EPISODES_TAG] }), 'Allowed'],
    ["cannot write the agent's heartbeat", on('ec2:CreateTags', 'dev', { 'aws:TagKeys': [HEARTBEAT_TAG] }), 'ImplicitlyDenied'],
    ['is denied moving an instance to another policy', on('ec2:CreateTags', 'dev', { 'aws:TagKeys': [POLICY_TAG] }), 'ExplicitlyDenied'],
    [
      'is denied the policy tag in any case',
      on('ec2:CreateTags', 'dev', { 'aws:TagKeys': [STATE_TAG, 'SMVM:Policy'] }),
      'ExplicitlyDenied',
    ],
    ['is denied deleting the management id', on('ec2:DeleteTags', 'dev', { 'aws:TagKeys': [MANAGEMENT_ID_TAG] }), 'ExplicitlyDenied'],
    ['is denied deleting all tags at once (no tag keys)', on('ec2:DeleteTags', 'dev'), 'ExplicitlyDenied'],
    ['reads prices (a spend rule without hourlyUsd)', { principal: WATCHDOG, action: 'pricing:GetProducts', resource: '*' }, 'Allowed'],
    ['reads metrics', { principal: WATCHDOG, action: 'cloudwatch:GetMetricData', resource: '*' }, 'Allowed'],
    [
      'writes to its log group',
      {
        principal: WATCHDOG,
        action: 'logs:PutLogEvents',
        resource: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/aws/lambda/smvm-dev-watchdog:log-stream:2026/11/26`,
      },
      'Allowed',
    ],
    [
      'cannot write to other log groups',
      {
        principal: WATCHDOG,
        action: 'logs:PutLogEvents',
        resource: `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:/aws/lambda/other:log-stream:x`,
      },
      'ImplicitlyDenied',
    ],
    [
      'reads its policy parameter',
      { principal: WATCHDOG, action: 'ssm:GetParameter', resource: `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/smvm/dev/policy` },
      'Allowed',
    ],
    [
      'cannot read the agent pointer',
      { principal: WATCHDOG, action: 'ssm:GetParameter', resource: `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter/smvm/dev/agent` },
      'ImplicitlyDenied',
    ],
  ])('%s', async (_name, request, expected) => {
    expect(await simulate(watchdog, request)).toBe(expected);
  });
});

describe('topic policy', () => {
  const TOPIC = `arn:aws:sns:${REGION}:${ACCOUNT}:smvm-dev`;
  const PUBLISH_ANYTHING = { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sns:*', Resource: '*' }] };

  it.each<[string, string, Result]>([
    ['the watchdog', `arn:aws:iam::${ACCOUNT}:role/Policy_WatchdogRole_4B6BDC7B`, 'Allowed'],
    ['an agent', `arn:aws:iam::${ACCOUNT}:role/Policy_AgentRole_4507AA06`, 'Allowed'],
    ['an administrator of the account', `arn:aws:iam::${ACCOUNT}:role/Admin`, 'ExplicitlyDenied'],
  ])('decides a publish by %s (%s): %s', async (_who, principal, expected) => {
    expect(await simulate(PUBLISH_ANYTHING, { principal, action: 'sns:Publish', resource: TOPIC }, topicPolicy)).toBe(expected);
  });
});
