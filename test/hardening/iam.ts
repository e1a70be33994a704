/**
 * Least privilege, evaluated: synthesize a stack with two policies and their instances,
 * take the IAM documents from the synthesized JSON (`data.aws_iam_policy_document`, the
 * role policies and the topic policy that use them), resolve the Terraform references
 * to concrete ARNs, and evaluate requests with @cloud-copilot/iam-simulate, supplying
 * every context key AWS would (aws:PrincipalArn, ec2:SourceInstanceARN, ec2:InstanceID,
 * aws:ResourceTag/<key>, aws:TagKeys, aws:RequestTag/<key>).
 *
 * The expected outcome of each case is the security model, written here by hand; the
 * evaluated one comes from the synthesized policies. `docs/iam-matrix.md` is generated
 * from the same cases (test/unit/hardening/iam-matrix.test.ts).
 */
import { Testing, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { runSimulation } from '@cloud-copilot/iam-simulate';
import { SelfManagedInstance, SelfManagementPolicy } from '../../constructs';
import { AGENT_WRITABLE_TAGS, POLICY_TAG, WATCHDOG_WRITABLE_TAGS } from '../../lambda-agent/contract/tags';

export const ACCOUNT = '123456789012';
export const REGION = 'eu-west-1';
export const TOPIC_KEY = `arn:aws:kms:${REGION}:${ACCOUNT}:key/11111111-2222-3333-4444-555555555555`;

/** Policy P (the one under test) and Q, whose id shares P's prefix. */
export const P = {
  id: 'dev',
  rules: [
    { rule: 'idle', window: '30m', action: 'stop' },
    { rule: 'lifetime', max: '7d', action: 'terminate', warnBefore: '1h' },
    {
      rule: 'schedule',
      timezone: 'Europe/Amsterdam',
      windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00', end: '19:00' }],
      action: 'stop',
      startAtOpen: true,
    },
  ],
};
export const Q = { id: 'dev-2', rules: [{ rule: 'running-time', max: '40h', action: 'stop' }] };

type Json = any;

export interface Synthesized {
  readonly json: Json;
  /** IAM JSON documents by the Terraform name of their `aws_iam_policy_document`. */
  readonly documents: Map<string, Json>;
  /** Identity policies by role ARN. */
  readonly roles: Map<string, Array<{ name: string; policy: Json }>>;
  /** Resource policy by topic ARN. */
  readonly topicPolicies: Map<string, Json>;
  /** Role and topic ARNs of P and Q. */
  readonly arns: {
    pAgent: string;
    pWatchdog: string;
    qAgent: string;
    qWatchdog: string;
    pTopic: string;
    qTopic: string;
    pParameter: string;
    qParameter: string;
  };
  readonly shutdownBehavior: string;
}

/** Terraform name of a resource's construct: `<type>.<name>` keys of the synthesized JSON. */
function findName(json: Json, type: string, idPart: string): string {
  const names = Object.keys(json.resource?.[type] ?? {}).filter((n) => n.includes(idPart));
  if (names.length !== 1) throw new Error(`iam harness: expected one ${type} named *${idPart}*, found ${names.join(', ') || 'none'}`);
  return names[0];
}

/**
 * Replaces the Terraform references of the synthesized JSON with concrete values, as a
 * deployment to account 123456789012 in eu-west-1 would. An unknown reference throws:
 * a policy evaluated with a placeholder would prove nothing.
 */
export function resolveReferences(json: Json): (value: string) => string {
  const attr = (type: string, name: string, key: string): unknown => json.resource?.[type]?.[name]?.[key];
  const resolve = (value: string): string =>
    value.replace(/\$\{([^}]+)\}/g, (whole, expr: string) => {
      const m = /^(data\.)?([a-z0-9_]+)\.([A-Za-z0-9_]+)\.([a-z_]+)$/.exec(expr.trim());
      if (!m) throw new Error(`iam harness: cannot resolve ${whole}`);
      const [, data, type, name, key] = m;
      const named = (k: string) => resolve(String(attr(type, name, k) ?? name));
      if (data) {
        if (type === 'aws_partition' && key === 'partition') return 'aws';
        if (type === 'aws_region' && (key === 'region' || key === 'name' || key === 'id')) return REGION;
        if (type === 'aws_caller_identity' && key === 'account_id') return ACCOUNT;
        if (type === 'aws_iam_policy_document' && key === 'json') return whole; // resolved by the caller
        throw new Error(`iam harness: cannot resolve ${whole}`);
      }
      switch (`${type}.${key}`) {
        case 'aws_sns_topic.arn':
          return `arn:aws:sns:${REGION}:${ACCOUNT}:${named('name')}`;
        case 'aws_iam_role.arn':
          return `arn:aws:iam::${ACCOUNT}:role/${named('name')}`;
        case 'aws_iam_role.name':
        case 'aws_iam_role.id':
          return named('name');
        case 'aws_ssm_parameter.arn':
          return `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter${named('name')}`;
        case 'aws_s3_bucket.arn':
          return `arn:aws:s3:::${named('bucket')}`;
        case 'aws_s3_bucket.bucket':
        case 'aws_s3_bucket.id':
          return named('bucket');
        case 'aws_cloudwatch_log_group.arn':
          return `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${named('name')}`;
        case 'aws_lambda_function.arn':
          return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${named('function_name')}`;
        case 'aws_s3_object.key':
          return named('key');
        default:
          throw new Error(`iam harness: cannot resolve ${whole}`);
      }
    });
  return resolve;
}

/** `aws_iam_policy_document` statements → an IAM JSON document. */
export function toIamJson(doc: Json, resolve: (v: string) => string): Json {
  const list = (v: unknown): string[] =>
    (Array.isArray(v) ? v : v === undefined ? [] : [v]).map((x) => resolve(String(x)).replace(/&\{/g, '${'));
  return {
    Version: '2012-10-17',
    Statement: (doc.statement ?? []).map((s: Json) => {
      const out: Json = { Effect: s.effect ?? 'Allow' };
      if (s.sid) out.Sid = s.sid;
      if (s.actions) out.Action = list(s.actions);
      if (s.not_actions) out.NotAction = list(s.not_actions);
      if (s.resources) out.Resource = list(s.resources);
      if (s.not_resources) out.NotResource = list(s.not_resources);
      if (s.principals) {
        const p: Json = {};
        for (const pr of s.principals) {
          if (pr.type === '*') p['*'] = true;
          else p[pr.type] = [...(p[pr.type] ?? []), ...list(pr.identifiers)];
        }
        out.Principal = p['*'] ? '*' : p;
      }
      if (s.condition) {
        const c: Json = {};
        for (const cond of s.condition) {
          c[cond.test] ??= {};
          if (c[cond.test][cond.variable]) throw new Error(`iam harness: two ${cond.test} conditions on ${cond.variable} in one statement`);
          c[cond.test][cond.variable] = list(cond.values);
        }
        out.Condition = c;
      }
      return out;
    }),
  };
}

let cached: Synthesized | undefined;

/** Synthesizes the test stack once (P with an encrypted topic, Q sharing P's prefix, an instance each). */
export function synthesize(): Synthesized {
  if (cached) return cached;
  const app = Testing.app();
  const stack = new TerraformStack(app, 'iam');
  new AwsProvider(stack, 'Aws', { region: REGION });
  const p = new SelfManagementPolicy(stack, 'PolicyP', { policy: P as any, topicKmsKeyArn: TOPIC_KEY });
  const q = new SelfManagementPolicy(stack, 'PolicyQ', { policy: Q as any });
  new SelfManagedInstance(stack, 'BoxP', { policy: p, ami: 'ami-12345678', instanceType: 't3.micro' });
  new SelfManagedInstance(stack, 'BoxQ', { policy: q, ami: 'ami-12345678', instanceType: 't3.micro' });
  const json = JSON.parse(Testing.synth(stack));
  // Roles have no name in the stack (Terraform generates one): give each its construct name.
  for (const [name, role] of Object.entries<Json>(json.resource.aws_iam_role ?? {})) role.name ??= name;
  for (const [name, bucket] of Object.entries<Json>(json.resource.aws_s3_bucket ?? {}))
    bucket.bucket ??= `${bucket.bucket_prefix ?? ''}${name.toLowerCase()}`;
  const resolve = resolveReferences(json);
  const documents = new Map<string, Json>();
  for (const [name, doc] of Object.entries<Json>(json.data?.aws_iam_policy_document ?? {})) documents.set(name, toIamJson(doc, resolve));
  const docOf = (ref: string): Json => {
    const m = /^\$\{data\.aws_iam_policy_document\.([A-Za-z0-9_]+)\.json\}$/.exec(ref);
    if (m) return documents.get(m[1]);
    return JSON.parse(ref); // an inline JSON policy
  };
  const roles = new Map<string, Array<{ name: string; policy: Json }>>();
  for (const [name, rp] of Object.entries<Json>(json.resource.aws_iam_role_policy ?? {})) {
    const role = `arn:aws:iam::${ACCOUNT}:role/${resolve(String(rp.role))}`;
    roles.set(role, [...(roles.get(role) ?? []), { name, policy: docOf(rp.policy) }]);
  }
  for (const [name, att] of Object.entries<Json>(json.resource.aws_iam_role_policy_attachment ?? {})) {
    const role = `arn:aws:iam::${ACCOUNT}:role/${resolve(String(att.role))}`;
    const m = /^\$\{aws_iam_policy\.([A-Za-z0-9_]+)\.arn\}$/.exec(att.policy_arn);
    if (!m) throw new Error(`iam harness: cannot follow policy attachment ${name} (${att.policy_arn})`);
    roles.set(role, [...(roles.get(role) ?? []), { name, policy: docOf(json.resource.aws_iam_policy[m[1]].policy) }]);
  }
  const topicPolicies = new Map<string, Json>();
  for (const tp of Object.values<Json>(json.resource.aws_sns_topic_policy ?? {})) topicPolicies.set(resolve(tp.arn), docOf(tp.policy));
  const roleArn = (part: string) => `arn:aws:iam::${ACCOUNT}:role/${findName(json, 'aws_iam_role', part)}`;
  const topicArn = (part: string) => resolve(`\${aws_sns_topic.${findName(json, 'aws_sns_topic', part)}.arn}`);
  const paramArn = (part: string) => resolve(`\${aws_ssm_parameter.${findName(json, 'aws_ssm_parameter', part)}.arn}`);
  cached = {
    json,
    documents,
    roles,
    topicPolicies,
    arns: {
      pAgent: roleArn('PolicyP_AgentRole'),
      pWatchdog: roleArn('PolicyP_WatchdogRole'),
      qAgent: roleArn('PolicyQ_AgentRole'),
      qWatchdog: roleArn('PolicyQ_WatchdogRole'),
      pTopic: topicArn('PolicyP_Topic'),
      qTopic: topicArn('PolicyQ_Topic'),
      pParameter: paramArn('PolicyP_PolicyParameter'),
      qParameter: paramArn('PolicyQ_PolicyParameter'),
    },
    shutdownBehavior: p.shutdownBehavior,
  };
  return cached;
}

// ---------------------------------------------------------------- the matrix

export type Outcome = 'Allowed' | 'ImplicitlyDenied' | 'ExplicitlyDenied';

/** An instance as the cases see it: its id and its tags. */
interface Target {
  readonly label: string;
  readonly id?: string;
  readonly tags?: Record<string, string>;
}

const inst = (id: string) => `arn:aws:ec2:${REGION}:${ACCOUNT}:instance/${id}`;
export const A: Target = { label: "P's instance A (the agent's own)", id: 'i-0aaaaaaaaaaaaaaaa', tags: { [POLICY_TAG]: 'dev' } };
export const B: Target = { label: "P's instance B", id: 'i-0bbbbbbbbbbbbbbbb', tags: { [POLICY_TAG]: 'dev' } };
export const QI: Target = {
  label: "Q's instance (policy dev-2, sharing P's prefix)",
  id: 'i-0cccccccccccccccc',
  tags: { [POLICY_TAG]: 'dev-2' },
};
export const OTHER: Target = { label: 'an instance of another policy (other)', id: 'i-0dddddddddddddddd', tags: { [POLICY_TAG]: 'other' } };
export const UNTAGGED: Target = { label: 'an untagged instance', id: 'i-0eeeeeeeeeeeeeeee', tags: {} };
export const CASED: Target = {
  label: "an instance tagged SMVM:Policy=dev (P's key, other case)",
  id: 'i-0ffffffffffffffff',
  tags: { 'SMVM:Policy': 'dev' },
};

export interface MatrixCase {
  readonly group: string;
  readonly who:
    | 'agent of A'
    | 'watchdog of P'
    | 'watchdog of Q'
    | 'agent of A, credentials used off the instance'
    | 'another role with sns:*'
    | 'another account with sns:*';
  readonly action: string;
  readonly target: string;
  /** What the case varies (tag keys, …), in words. */
  readonly detail: string;
  readonly expected: Outcome | 'Denied';
  /** Why, when the expectation needs saying. */
  readonly note?: string;
  readonly request: () => {
    principal: string;
    principalArn: string;
    resource: string;
    context: Record<string, string | string[]>;
    identity: Array<{ name: string; policy: Json }>;
    resourcePolicy?: Json;
  };
}

export interface MatrixResult extends MatrixCase {
  readonly evaluated: Outcome | 'Error';
  readonly ignoredContextKeys: readonly string[];
  readonly ok: boolean;
}

function agentRequest(s: Synthesized, action: string, t: Target, extra: Record<string, string | string[]> = {}, onInstance = true) {
  return () => ({
    principal: `arn:aws:sts::${ACCOUNT}:assumed-role/${s.arns.pAgent.split('/').pop()}/${A.id}`,
    principalArn: s.arns.pAgent,
    resource: inst(t.id!),
    context: {
      ...(onInstance ? { 'ec2:SourceInstanceARN': inst(A.id!) } : {}),
      'ec2:InstanceID': t.id!,
      ...Object.fromEntries(Object.entries(t.tags ?? {}).map(([k, v]) => [`aws:ResourceTag/${k}`, v])),
      ...extra,
    },
    identity: s.roles.get(s.arns.pAgent) ?? [],
  });
}

function watchdogRequest(s: Synthesized, role: string, action: string, t: Target, extra: Record<string, string | string[]> = {}) {
  return () => ({
    principal: `arn:aws:sts::${ACCOUNT}:assumed-role/${role.split('/').pop()}/smvm-watchdog`,
    principalArn: role,
    resource: inst(t.id!),
    context: {
      'ec2:InstanceID': t.id!,
      ...Object.fromEntries(Object.entries(t.tags ?? {}).map(([k, v]) => [`aws:ResourceTag/${k}`, v])),
      ...extra,
    },
    identity: s.roles.get(role) ?? [],
  });
}

const tagKeys = (...keys: string[]) => ({ 'aws:TagKeys': keys, ...Object.fromEntries(keys.map((k) => [`aws:RequestTag/${k}`, 'x'])) });

/** The cases: the security model, by hand. */
export function matrixCases(s: Synthesized): MatrixCase[] {
  const cases: MatrixCase[] = [];
  const add = (c: MatrixCase) => cases.push(c);
  const agent = 'agent of A' as const;
  const wd = 'watchdog of P' as const;
  const [heartbeat, agentEpisodes] = AGENT_WRITABLE_TAGS;
  const [state, episodes] = WATCHDOG_WRITABLE_TAGS;

  // ---------------------------------------------------------- the agent of A
  const g1 = 'The agent acts on its own instance only';
  for (const [action, t, expected] of [
    ['ec2:StopInstances', A, 'Allowed'],
    ['ec2:TerminateInstances', A, 'Allowed'],
    ['ec2:StopInstances', B, 'Denied'],
    ['ec2:TerminateInstances', B, 'Denied'],
    ['ec2:StopInstances', QI, 'Denied'],
    ['ec2:StopInstances', UNTAGGED, 'Denied'],
    ['ec2:StartInstances', A, 'Denied'],
    ['ec2:RebootInstances', A, 'Denied'],
    ['ec2:ModifyInstanceAttribute', A, 'Denied'],
  ] as const) {
    add({
      group: g1,
      who: agent,
      action,
      target: t.label,
      detail: '',
      expected,
      ...(action === 'ec2:RebootInstances' ? { note: 'no rule of P reboots' } : {}),
      request: agentRequest(s, action, t),
    });
  }
  add({
    group: g1,
    who: 'agent of A, credentials used off the instance',
    action: 'ec2:StopInstances',
    target: A.label,
    detail: 'no ec2:SourceInstanceARN',
    expected: 'Denied',
    request: agentRequest(s, 'ec2:StopInstances', A, {}, false),
  });

  const g2 = 'The agent writes its heartbeat and its own records, nothing else';
  for (const [keys, expected, note] of [
    [[heartbeat], 'Allowed'],
    [[agentEpisodes], 'Allowed'],
    [[heartbeat, agentEpisodes], 'Allowed'],
    [['smvm:policy'], 'Denied', 'no moving itself to another policy'],
    [['SMVM:Policy'], 'Denied', 'a differently-cased key is another key to StringEquals: denied, not matched by mistake'],
    [['smvm:hard-limit'], 'Denied', 'the shutdown guard reads it'],
    [['smvm:snooze'], 'Denied', 'operators only'],
    [['smvm:extend'], 'Denied', 'operators only'],
    [[state], 'Denied', "the watchdog's checkpoint"],
    [[episodes], 'Denied', "the watchdog's records"],
    [[heartbeat, 'smvm:policy'], 'Denied', 'one forbidden key in the request is enough'],
    [['SMVM:HEARTBEAT'], 'Denied', 'keys match case-sensitively'],
  ] as const) {
    add({
      group: g2,
      who: agent,
      action: 'ec2:CreateTags',
      target: A.label,
      detail: `keys ${keys.join(', ')}`,
      expected,
      ...(note ? { note } : {}),
      request: agentRequest(s, 'ec2:CreateTags', A, tagKeys(...keys)),
    });
  }
  add({
    group: g2,
    who: agent,
    action: 'ec2:CreateTags',
    target: A.label,
    detail: 'no aws:TagKeys in the request',
    expected: 'Denied',
    note: 'ForAllValues is true on an absent key: the Null check denies it',
    request: agentRequest(s, 'ec2:CreateTags', A),
  });
  add({
    group: g2,
    who: agent,
    action: 'ec2:CreateTags',
    target: B.label,
    detail: `keys ${heartbeat}`,
    expected: 'Denied',
    request: agentRequest(s, 'ec2:CreateTags', B, tagKeys(heartbeat)),
  });
  add({
    group: g2,
    who: agent,
    action: 'ec2:DeleteTags',
    target: A.label,
    detail: `keys ${heartbeat}`,
    expected: 'Denied',
    request: agentRequest(s, 'ec2:DeleteTags', A, tagKeys(heartbeat)),
  });
  add({
    group: g2,
    who: agent,
    action: 'ec2:DeleteTags',
    target: A.label,
    detail: 'no tag list (deletes every tag)',
    expected: 'Denied',
    request: agentRequest(s, 'ec2:DeleteTags', A),
  });

  // ---------------------------------------------------------- the watchdog of P
  const g3 = "The watchdog acts on its policy's instances only";
  for (const [action, t, expected, note] of [
    ['ec2:StopInstances', A, 'Allowed'],
    ['ec2:TerminateInstances', B, 'Allowed'],
    ['ec2:StartInstances', B, 'Allowed', 'P starts instances at the schedule'],
    ['ec2:StopInstances', QI, 'Denied', 'tag values match exactly: dev does not match dev-2'],
    ['ec2:TerminateInstances', OTHER, 'Denied'],
    ['ec2:StopInstances', UNTAGGED, 'Denied'],
    ['ec2:RebootInstances', A, 'Denied', 'no rule of P reboots'],
    ['ec2:ModifyInstanceAttribute', A, 'Denied'],
    ['ec2:RunInstances', A, 'Denied'],
    [
      'ec2:StopInstances',
      CASED,
      'Allowed',
      "IAM condition key names are case-insensitive, EC2 tag keys are not: IAM lets it through, but discovery filters on tag:smvm:policy exactly, so the watchdog never selects it (the soak's case-variant instances are never touched)",
    ],
  ] as const) {
    add({
      group: g3,
      who: wd,
      action,
      target: t.label,
      detail: '',
      expected,
      ...(note ? { note } : {}),
      request: watchdogRequest(s, s.arns.pWatchdog, action, t),
    });
  }
  add({
    group: g3,
    who: wd,
    action: 'ec2:DescribeInstances',
    target: 'every instance',
    detail: '',
    expected: 'Allowed',
    note: 'Describe* has no resource-level permissions',
    request: () => ({ ...watchdogRequest(s, s.arns.pWatchdog, 'ec2:DescribeInstances', A)(), resource: '*', context: {} }),
  });
  add({
    group: g3,
    who: 'watchdog of Q',
    action: 'ec2:StopInstances',
    target: A.label,
    detail: '',
    expected: 'Denied',
    request: watchdogRequest(s, s.arns.qWatchdog, 'ec2:StopInstances', A),
  });

  const g4 = 'The watchdog writes its checkpoint and records, never the policy tag';
  for (const [action, t, keys, expected, note] of [
    ['ec2:CreateTags', A, [state], 'Allowed'],
    ['ec2:CreateTags', A, [episodes], 'Allowed'],
    ['ec2:CreateTags', A, [state, episodes], 'Allowed'],
    ['ec2:CreateTags', A, ['smvm:policy'], 'ExplicitlyDenied', 'no moving instances between policies'],
    ['ec2:CreateTags', A, ['SMVM:POLICY'], 'ExplicitlyDenied', 'the deny matches keys ignoring case'],
    ['ec2:CreateTags', A, ['smvm:management-id'], 'ExplicitlyDenied'],
    ['ec2:CreateTags', A, ['smvm:policy-version'], 'ExplicitlyDenied'],
    ['ec2:CreateTags', A, ['smvm:hard-limit'], 'ExplicitlyDenied'],
    ['ec2:CreateTags', A, [state, 'smvm:policy'], 'ExplicitlyDenied'],
    ['ec2:CreateTags', A, [heartbeat], 'Denied', "the agent's"],
    ['ec2:CreateTags', A, ['smvm:snooze'], 'Denied', 'operators only'],
    ['ec2:CreateTags', A, ['smvm:extend'], 'Denied', 'operators only'],
    ['ec2:CreateTags', QI, [state], 'Denied'],
    ['ec2:CreateTags', UNTAGGED, [state], 'Denied'],
    ['ec2:DeleteTags', A, [state], 'Allowed'],
    ['ec2:DeleteTags', A, ['smvm:policy'], 'ExplicitlyDenied'],
  ] as const) {
    add({
      group: g4,
      who: wd,
      action,
      target: t.label,
      detail: `keys ${keys.join(', ')}`,
      expected,
      ...(note ? { note } : {}),
      request: watchdogRequest(s, s.arns.pWatchdog, action, t, tagKeys(...keys)),
    });
  }
  add({
    group: g4,
    who: wd,
    action: 'ec2:DeleteTags',
    target: A.label,
    detail: 'no tag list (deletes every tag)',
    expected: 'ExplicitlyDenied',
    note: 'DeleteTags without keys deletes all tags; ForAllValues would be true on the absent key',
    request: watchdogRequest(s, s.arns.pWatchdog, 'ec2:DeleteTags', A),
  });

  // ---------------------------------------------------------- configuration and the topic
  const g5 = 'Each guard reads its own policy and publishes to its own topic only';
  const ssm = (
    who: 'agent of A' | 'watchdog of P',
    role: string,
    param: string,
    expected: Outcome | 'Denied',
    label: string,
  ): MatrixCase => ({
    group: g5,
    who,
    action: 'ssm:GetParameter',
    target: label,
    detail: '',
    expected,
    request: () => ({
      principal: `arn:aws:sts::${ACCOUNT}:assumed-role/${role.split('/').pop()}/s`,
      principalArn: role,
      resource: param,
      context: {},
      identity: s.roles.get(role) ?? [],
    }),
  });
  add(ssm(agent, s.arns.pAgent, s.arns.pParameter, 'Allowed', "P's policy parameter"));
  add(ssm(agent, s.arns.pAgent, s.arns.qParameter, 'Denied', "Q's policy parameter"));
  add(ssm(wd, s.arns.pWatchdog, s.arns.pParameter, 'Allowed', "P's policy parameter"));
  add(ssm(wd, s.arns.pWatchdog, s.arns.qParameter, 'Denied', "Q's policy parameter"));

  const publish = (
    who: MatrixCase['who'],
    principalArn: string,
    identity: Array<{ name: string; policy: Json }>,
    topic: string,
    label: string,
    expected: Outcome | 'Denied',
    note?: string,
    account = ACCOUNT,
  ): MatrixCase => ({
    group: 'Only the two guards (and explicit grantees) publish to the topic',
    who,
    action: 'sns:Publish',
    target: label,
    detail: '',
    expected,
    ...(note ? { note } : {}),
    request: () => ({
      principal: principalArn.replace(/^arn:aws:iam::(\d+):role\/(.+)$/, 'arn:aws:sts::$1:assumed-role/$2/s'),
      principalArn,
      resource: topic,
      context: (account === ACCOUNT ? {} : { 'aws:PrincipalAccount': account }) as Record<string, string>,
      identity,
      resourcePolicy: s.topicPolicies.get(topic),
    }),
  });
  const snsAll = [
    { name: 'sns-admin', policy: { Version: '2012-10-17', Statement: [{ Effect: 'Allow', Action: 'sns:*', Resource: '*' }] } },
  ];
  add(publish(agent, s.arns.pAgent, s.roles.get(s.arns.pAgent) ?? [], s.arns.pTopic, "P's topic", 'Allowed'));
  add(publish(wd, s.arns.pWatchdog, s.roles.get(s.arns.pWatchdog) ?? [], s.arns.pTopic, "P's topic", 'Allowed'));
  add(publish(agent, s.arns.pAgent, s.roles.get(s.arns.pAgent) ?? [], s.arns.qTopic, "Q's topic", 'Denied'));
  add(publish('watchdog of Q', s.arns.qWatchdog, s.roles.get(s.arns.qWatchdog) ?? [], s.arns.pTopic, "P's topic", 'Denied'));
  add(
    publish(
      'another role with sns:*',
      `arn:aws:iam::${ACCOUNT}:role/ops-admin`,
      snsAll,
      s.arns.pTopic,
      "P's topic",
      'ExplicitlyDenied',
      "the topic policy's explicit deny beats the role's own sns:*",
    ),
  );
  add(
    publish(
      'another account with sns:*',
      'arn:aws:iam::210987654321:role/intruder',
      snsAll,
      s.arns.pTopic,
      "P's topic",
      'Denied',
      undefined,
      '210987654321',
    ),
  );
  return cases;
}

/** Context keys each instance action's conditions rely on: the simulator must not drop them. */
const MUST_KEEP = ['aws:PrincipalArn', 'ec2:SourceInstanceARN', 'ec2:InstanceID', 'aws:TagKeys'];

export async function evaluateMatrix(s: Synthesized): Promise<MatrixResult[]> {
  const out: MatrixResult[] = [];
  for (const c of matrixCases(s)) {
    const r = c.request();
    const sim = await runSimulation(
      {
        request: {
          principal: r.principal,
          action: c.action,
          resource: { resource: r.resource, accountId: ACCOUNT },
          contextVariables: { 'aws:PrincipalArn': r.principalArn, ...r.context },
        },
        identityPolicies: r.identity,
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        ...(r.resourcePolicy ? { resourcePolicy: r.resourcePolicy } : {}),
      },
      {},
    );
    const evaluated: Outcome | 'Error' = sim.resultType === 'error' ? 'Error' : (sim.overallResult as Outcome);
    const ignored =
      sim.resultType === 'single'
        ? (sim.result.ignoredContextKeys ?? [])
        : sim.resultType === 'wildcard'
          ? sim.results.flatMap((x) => x.ignoredContextKeys ?? [])
          : [];
    const expectedOk =
      c.expected === 'Denied' ? evaluated === 'ImplicitlyDenied' || evaluated === 'ExplicitlyDenied' : evaluated === c.expected;
    const keysOk = !ignored.some((k) => MUST_KEEP.includes(k) && k in r.context);
    out.push({ ...c, evaluated, ignoredContextKeys: ignored, ok: expectedOk && keysOk });
  }
  return out;
}

/** docs/iam-matrix.md, from the evaluated cases. */
export function renderMatrix(results: readonly MatrixResult[]): string {
  const lines = [
    '# IAM matrix: what each principal may do, as evaluated',
    '',
    'Generated by `test/unit/hardening/iam-matrix.test.ts` (`SMVM_WRITE_DOCS=1 npx jest test/unit/hardening/iam-matrix.test.ts`); the test fails when this file and the evaluation differ.',
    '',
    'How: a stack with two policies is synthesized with cdktf (`P` = `dev`: idle stop, lifetime terminate, office-hours schedule that starts instances, an encrypted topic; `Q` = `dev-2`, whose id shares P\'s prefix), the IAM documents are taken from the synthesized `data.aws_iam_policy_document` blocks (with the role policies and the topic policy that use them), Terraform references are resolved for account 123456789012 in eu-west-1, and every request below is evaluated by [@cloud-copilot/iam-simulate](https://github.com/cloud-copilot/iam-simulate) with the context AWS supplies: `aws:PrincipalArn`, `ec2:SourceInstanceARN` (instance role credentials), `ec2:InstanceID`, `aws:ResourceTag/<key>`, `aws:TagKeys` and `aws:RequestTag/<key>`. "Expected" is the security model, written by hand in `test/hardening/iam.ts`; "Evaluated" is what the synthesized policies say. *Denied* means implicitly or explicitly.',
    '',
    "The agent's self-condition is the documented form: `ec2:SourceInstanceARN` (set on instance role credentials) compared with `ArnLike` to `arn:aws:ec2:*:*:instance/${ec2:InstanceID}`, the target's own condition key; no statement uses the community pattern on the undocumented `aws:ARN` key.",
    '',
  ];
  let group = '';
  for (const r of results) {
    if (r.group !== group) {
      if (group) lines.push('');
      group = r.group;
      lines.push(`## ${group}`, '', '| Who | Action | Target | Request | Expected | Evaluated | Note |', '|---|---|---|---|---|---|---|');
    }
    const esc = (t: string) => t.replace(/\|/g, '\\|');
    lines.push(
      `| ${esc(r.who)} | \`${r.action}\` | ${esc(r.target)} | ${esc(r.detail) || '-'} | ${r.expected} | ${r.ok ? '' : '**'}${r.evaluated}${r.ok ? '' : '** (differs)'} | ${esc(r.note ?? '')} |`,
    );
  }
  lines.push('', `${results.length} cases, ${results.filter((r) => r.ok).length} as expected.`, '');
  return lines.join('\n');
}
