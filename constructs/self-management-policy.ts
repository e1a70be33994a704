/**
 * `SelfManagementPolicy`: one self-management policy, shared by any number of
 * instances. It validates the policy document at synth time and synthesizes everything
 * the two guards need: the events topic, the policy and agent-artifact parameters, the
 * watchdog (Lambda, log group, schedule and state-change rules) and the agent's role
 * and instance profile. IAM is derived from the rules the policy configures.
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Construct, type IConstruct } from 'constructs';
import { AssetType, Lazy, TerraformAsset, TerraformLocal, Token, type IAspect } from 'cdktf';
import { CloudwatchEventRule } from '@cdktf/provider-aws/lib/cloudwatch-event-rule';
import { CloudwatchEventTarget } from '@cdktf/provider-aws/lib/cloudwatch-event-target';
import { CloudwatchLogGroup } from '@cdktf/provider-aws/lib/cloudwatch-log-group';
import { DataAwsCallerIdentity } from '@cdktf/provider-aws/lib/data-aws-caller-identity';
import {
  DataAwsIamPolicyDocument,
  type DataAwsIamPolicyDocumentStatement,
  type DataAwsIamPolicyDocumentStatementCondition,
} from '@cdktf/provider-aws/lib/data-aws-iam-policy-document';
import { DataAwsPartition } from '@cdktf/provider-aws/lib/data-aws-partition';
import { DataAwsRegion } from '@cdktf/provider-aws/lib/data-aws-region';
import { IamInstanceProfile } from '@cdktf/provider-aws/lib/iam-instance-profile';
import { IamRole } from '@cdktf/provider-aws/lib/iam-role';
import { IamRolePolicy } from '@cdktf/provider-aws/lib/iam-role-policy';
import { Instance } from '@cdktf/provider-aws/lib/instance';
import { LambdaFunction } from '@cdktf/provider-aws/lib/lambda-function';
import { LambdaPermission } from '@cdktf/provider-aws/lib/lambda-permission';
import { LaunchTemplate } from '@cdktf/provider-aws/lib/launch-template';
import { S3Bucket } from '@cdktf/provider-aws/lib/s3-bucket';
import { S3BucketOwnershipControls } from '@cdktf/provider-aws/lib/s3-bucket-ownership-controls';
import { S3BucketPolicy } from '@cdktf/provider-aws/lib/s3-bucket-policy';
import { S3BucketPublicAccessBlock } from '@cdktf/provider-aws/lib/s3-bucket-public-access-block';
import { S3BucketServerSideEncryptionConfigurationA } from '@cdktf/provider-aws/lib/s3-bucket-server-side-encryption-configuration';
import { S3Object } from '@cdktf/provider-aws/lib/s3-object';
import { SnsTopic } from '@cdktf/provider-aws/lib/sns-topic';
import { SnsTopicPolicy } from '@cdktf/provider-aws/lib/sns-topic-policy';
import { SnsTopicSubscription } from '@cdktf/provider-aws/lib/sns-topic-subscription';
import { SsmParameter } from '@cdktf/provider-aws/lib/ssm-parameter';
import {
  AGENT_WRITABLE_TAGS,
  HARD_LIMIT_TAG,
  INFRASTRUCTURE_TAGS,
  SHUTDOWN_BEHAVIOR_TAG,
  MANAGEMENT_ID_TAG,
  POLICY_ID_ENV_VAR,
  POLICY_PARAMETER_ENV_VAR,
  POLICY_TAG,
  POLICY_VERSION_TAG,
  SCHEDULE_SECONDS_ENV_VAR,
  SHARD_COUNT_ENV_VAR,
  TOPIC_ARN_ENV_VAR,
  WATCHDOG_WRITABLE_TAGS,
  agentArtifactParameterName,
  formatManagementId,
  policyParameterName,
  topicParameterName,
} from '../lambda-agent/contract';
import { renderBootstrap } from '../lambda-agent/contract/bootstrap';
import type { Policy, PolicyDocument } from '../lambda-agent/policy/model';
import { parsePolicy } from '../lambda-agent/policy/parse';
import { findRule } from '../lambda-agent/rules';
import {
  PolicyDocumentError,
  ValidationError,
  bundleFailed,
  entryNotFound,
  invalidProp,
  invalidSchedule,
  invalidSubscription,
  policyParameterTooLarge,
  runtimeTooOld,
} from './errors';
import { adopt, isAdoptable } from './private/adopt';
import { BundleError, LIBRARY_ROOT, bundle, type ZippedBundle } from './private/bundle';
import { stringExpression } from './private/user-data';

/** Protocols a topic subscription can use. */
export type SubscriptionProtocol = 'email' | 'https' | 'sqs' | 'lambda';

/** A subscriber to the policy's events. */
export interface TopicSubscription {
  /** How events are delivered. */
  readonly protocol: SubscriptionProtocol;
  /**
   * Where: an e-mail address, an `https://` URL, an SQS queue ARN or a Lambda function ARN.
   * An SQS queue's policy must allow the topic to send to it (not managed here); a Lambda
   * function gets a permission for the topic.
   */
  readonly endpoint: string;
  /**
   * SNS filter policy on the message attributes every event carries
   * (`eventType`, `policyId`, `instanceId`, `severity`).
   * @default - every event
   */
  readonly filterPolicy?: Record<string, unknown>;
  /**
   * Deliver the event JSON without the SNS envelope (sqs and https only).
   * @default false
   */
  readonly rawMessageDelivery?: boolean;
  /**
   * Construct id of the subscription. Construct ids are API: keep it when you edit the endpoint's neighbours.
   * @default - derived from the protocol and the endpoint
   */
  readonly id?: string;
}

/** CPU architecture of the watchdog Lambda. */
export type WatchdogArchitecture = 'arm64' | 'x86_64';

export interface SelfManagementPolicyProps {
  /**
   * The policy document: its id and rules. Validated at synth time with `parsePolicy`;
   * every problem fails synthesis, each named with the field, the value and the fix.
   */
  readonly policy: PolicyDocument;
  /**
   * An existing topic to publish events to. Its topic policy is replaced by one that lets
   * only the watchdog, the agents and `grantPublish` grantees publish.
   * @default - a new topic named `smvm-<policy id>`
   */
  readonly topic?: SnsTopic;
  /**
   * Subscribers to the events.
   * @default - none
   */
  readonly subscriptions?: readonly TopicSubscription[];
  /**
   * KMS key (ARN) that encrypts the topic. A topic created here is encrypted with it; for
   * an existing `topic`, give the key it uses. Both guards may use it to publish; the key's
   * own policy must allow that too.
   * @default - no encryption at rest beyond SNS's default
   */
  readonly topicKmsKeyArn?: string;
  /**
   * How often the watchdog runs, as an EventBridge schedule expression. It also runs on
   * every EC2 instance state change.
   * @default 'rate(1 minute)'
   */
  readonly schedule?: string;
  /**
   * Retention of the watchdog's log group, in days (a CloudWatch Logs retention value).
   * @default 30
   */
  readonly logRetentionDays?: number;
  /**
   * CPU architecture of the watchdog Lambda.
   * @default 'arm64'
   */
  readonly architecture?: WatchdogArchitecture;
  /**
   * Lambda runtime of the watchdog: `nodejs22.x` or newer.
   * @default 'nodejs22.x'
   */
  readonly runtime?: string;
  /**
   * KMS keys (ARNs) that encrypt the volumes of managed instances. When the policy can
   * start instances (a schedule that starts them), the watchdog may create grants on these
   * keys for EC2 (`kms:CreateGrant` with `kms:GrantIsForAWSResource`): without that, an
   * instance with customer-managed encrypted volumes never starts.
   * @default - none (volumes unencrypted or encrypted with the AWS-managed key)
   */
  readonly volumeKmsKeyArns?: readonly string[];
  /**
   * Number of shards a scheduled watchdog run fans out to (each a Lambda invocation of
   * itself). Raise it for fleets of thousands of instances.
   * @default 1
   */
  readonly shardCount?: number;
  /**
   * Entry file of the watchdog, bundled with esbuild during synth.
   * @default - the library's `lambda-agent/watchdog/handler.ts`
   */
  readonly watchdogEntry?: string;
  /**
   * Entry file of the agent, bundled with esbuild during synth and uploaded to S3.
   * @default - the library's `lambda-agent/agent/main.ts`
   */
  readonly agentEntry?: string;
}

/** The result of {@link SelfManagementPolicy.grantPublish}. */
export interface PublishGrant {
  /** ARN of the principal allowed to publish. */
  readonly principalArn: string;
  /** The identity policy added to the grantee, when the grantee is a role. */
  readonly rolePolicy?: IamRolePolicy;
}

const DEFAULT_SCHEDULE = 'rate(1 minute)';
const DEFAULT_RUNTIME = 'nodejs22.x';
const LOG_RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];
const INSTANCE_ACTIONS = ['ec2:StartInstances', 'ec2:StopInstances', 'ec2:RebootInstances', 'ec2:TerminateInstances'];
const AGENT_INSTANCE_ACTIONS = ['ec2:StopInstances', 'ec2:RebootInstances', 'ec2:TerminateInstances'];
const STANDARD_PARAMETER_LIMIT = 4096;
const SCHEDULE_PATTERN = /^(rate\((1 (minute|hour|day)|([2-9]|[1-9]\d+) (minutes|hours|days))\)|cron\(\S+( \S+){5}\))$/;

const ASSUME_BY = (service: string): DataAwsIamPolicyDocumentStatement[] => [
  { effect: 'Allow', actions: ['sts:AssumeRole'], principals: [{ type: 'Service', identifiers: [service] }] },
];

function cond(test: string, variable: string, values: readonly string[]): DataAwsIamPolicyDocumentStatementCondition {
  return { test, variable, values: [...values] };
}

/** Deterministic JSON: keys sorted at every level, undefined dropped. */
function canonicalJson(value: unknown): string {
  const norm = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(norm);
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(v).sort()) {
        const x = (v as Record<string, unknown>)[k];
        if (x !== undefined) out[k] = norm(x);
      }
      return out;
    }
    return v;
  };
  return JSON.stringify(norm(value));
}

/** The library's version (package.json), built into the agent. */
function libraryVersion(): string {
  try {
    return (JSON.parse(fs.readFileSync(path.join(LIBRARY_ROOT, 'package.json'), 'utf8')) as { version?: string }).version ?? 'dev';
  } catch {
    return 'dev';
  }
}

/** Seconds between runs of a `rate(...)` schedule; undefined for cron(). */
function rateSeconds(schedule: string): number | undefined {
  const m = /^rate\((\d+) (minute|hour|day)s?\)$/.exec(schedule);
  if (!m) return undefined;
  return Number(m[1]) * { minute: 60, hour: 3600, day: 86400 }[m[2] as 'minute' | 'hour' | 'day'];
}

function shortHash(text: string, length = 8): string {
  return crypto.createHash('sha256').update(text).digest('hex').slice(0, length);
}

/**
 * A self-management policy: validated at synth time, enforced by an in-instance agent
 * and an external watchdog, reported to an SNS topic.
 *
 * ```ts
 * const policy = new SelfManagementPolicy(this, 'DevPolicy', { policy: { id: 'dev', rules: [...] } });
 * new SelfManagedInstance(this, 'Box', { policy, ami, instanceType: 't3.large' });
 * Aspects.of(this).add(policy.aspect()); // or adopt every aws_instance in the stack
 * ```
 */
export class SelfManagementPolicy extends Construct {
  /** The policy id (`smvm:policy` tag value, parameter names). */
  readonly policyId: string;
  /** The validated, normalized policy. */
  readonly policy: Policy;
  /** Hash of the normalized policy (the `smvm:policy-version` tag). */
  readonly hash: string;
  /** The topic the guards publish events to. */
  readonly topic: SnsTopic;
  /** The SSM parameter holding the topic's ARN (read by the CLI). */
  readonly topicParameter: SsmParameter;
  /** The SSM parameter holding the normalized policy document. */
  readonly policyParameter: SsmParameter;
  /** The SSM parameter holding `{bucket, key, sha256}` of the current agent bundle. */
  readonly agentArtifactParameter: SsmParameter;
  /** The bucket holding agent bundles. */
  readonly artifactBucket: S3Bucket;
  /** The watchdog Lambda function. */
  readonly watchdogFunction: LambdaFunction;
  /** The watchdog's execution role. */
  readonly watchdogRole: IamRole;
  /** The watchdog's log group. */
  readonly watchdogLogGroup: CloudwatchLogGroup;
  /** The agents' role, shared by every instance of this policy. */
  readonly agentRole: IamRole;
  /** The instance profile of `agentRole`, attached to every instance of this policy. */
  readonly instanceProfile: IamInstanceProfile;
  /** IAM actions on instances the watchdog is granted (derived from the rules). */
  readonly watchdogInstanceActions: readonly string[];
  /** IAM actions on its own instance the agent is granted (derived from the rules). */
  readonly agentInstanceActions: readonly string[];

  private readonly region: DataAwsRegion;
  private readonly publishers: string[] = [];
  private readonly topicKmsKeyArn?: string;
  private readonly watchdogBundle: ZippedBundle;
  private readonly agentBundle: ZippedBundle;
  private bootstrap?: string;
  private bootstrapLocal?: TerraformLocal;
  private profileName?: string;

  constructor(scope: Construct, id: string, props: SelfManagementPolicyProps) {
    super(scope, id);

    // ------------------------------------------------------------ validation first
    const parsed = parsePolicy(props.policy);
    if (!parsed.ok) throw new PolicyDocumentError(this, parsed.errors);
    const policy = parsed.policy;
    const schedule = props.schedule ?? DEFAULT_SCHEDULE;
    if (!Token.isUnresolved(schedule) && !SCHEDULE_PATTERN.test(schedule)) throw new ValidationError(invalidSchedule(schedule), this);
    const runtime = props.runtime ?? DEFAULT_RUNTIME;
    const node = /^nodejs(\d+)\.x$/.exec(runtime);
    if (!node || Number(node[1]) < 22) throw new ValidationError(runtimeTooOld(runtime), this);
    const logRetentionDays = props.logRetentionDays ?? 30;
    if (!LOG_RETENTION_DAYS.includes(logRetentionDays)) {
      throw new ValidationError(
        invalidProp(
          'logRetentionDays',
          'must be a CloudWatch Logs retention',
          logRetentionDays,
          `Use one of ${LOG_RETENTION_DAYS.join(', ')}.`,
        ),
        this,
      );
    }
    const architecture = props.architecture ?? 'arm64';
    if (architecture !== 'arm64' && architecture !== 'x86_64') {
      throw new ValidationError(
        invalidProp('architecture', "must be 'arm64' or 'x86_64'", architecture, "Use 'arm64' (the default, cheaper)."),
        this,
      );
    }
    const shardCount = props.shardCount ?? 1;
    if (!Number.isInteger(shardCount) || shardCount < 1 || shardCount > 100) {
      throw new ValidationError(
        invalidProp('shardCount', 'must be an integer from 1 to 100', shardCount, 'Use 1 unless a run has thousands of instances.'),
        this,
      );
    }
    const subscriptions = props.subscriptions ?? [];
    subscriptions.forEach((s, i) => this.validateSubscription(s, i));
    const document = canonicalJson(props.policy);
    if (Buffer.byteLength(document) > STANDARD_PARAMETER_LIMIT) {
      throw new ValidationError(policyParameterTooLarge(Buffer.byteLength(document)), this);
    }
    this.watchdogBundle = this.bundle(
      'watchdog',
      props.watchdogEntry ?? path.join(LIBRARY_ROOT, 'lambda-agent', 'watchdog', 'handler.ts'),
      'node22',
    );
    // The agent reports its version (the library's) in its heartbeat; the bundle changes with it, the user data never does.
    this.agentBundle = this.bundle('agent', props.agentEntry ?? path.join(LIBRARY_ROOT, 'lambda-agent', 'agent', 'main.ts'), 'node18', {
      __SMVM_AGENT_VERSION__: JSON.stringify(libraryVersion()),
    });

    this.policy = policy;
    this.policyId = policy.id;
    this.hash = policy.hash;
    this.topicKmsKeyArn = props.topicKmsKeyArn;

    // ------------------------------------------------------------ IAM derived from the rules
    const watchdogActions = new Set<string>();
    const agentActions = new Set<string>();
    const otherActions = new Set<string>();
    for (const rule of policy.rules) {
      const def = findRule(rule.type)!;
      for (const action of def.permissions(rule)) {
        if (INSTANCE_ACTIONS.includes(action)) {
          watchdogActions.add(action);
          if (def.hosts.includes('agent') && AGENT_INSTANCE_ACTIONS.includes(action)) agentActions.add(action);
        } else {
          otherActions.add(action);
        }
      }
    }
    this.watchdogInstanceActions = [...watchdogActions].sort();
    this.agentInstanceActions = [...agentActions].sort();
    const canStart = watchdogActions.has('ec2:StartInstances');

    const partition = new DataAwsPartition(this, 'Partition');
    this.region = new DataAwsRegion(this, 'Region');
    const account = new DataAwsCallerIdentity(this, 'Account');
    const arn = (service: string, resource: string) =>
      `arn:${partition.partition}:${service}:${this.region.region}:${account.accountId}:${resource}`;
    const instanceArns = arn('ec2', 'instance/*');
    const functionName = `smvm-${policy.id}-watchdog`;
    const functionArn = arn('lambda', `function:${functionName}`);

    // ------------------------------------------------------------ topic
    this.topic =
      props.topic ??
      new SnsTopic(this, 'Topic', {
        name: `smvm-${policy.id}`,
        ...(props.topicKmsKeyArn ? { kmsMasterKeyId: props.topicKmsKeyArn } : {}),
        tags: { [POLICY_TAG]: policy.id },
      });

    // ------------------------------------------------------------ parameters and agent artifact
    this.topicParameter = new SsmParameter(this, 'TopicParameter', {
      name: topicParameterName(policy.id),
      description: `Events topic of self-management policy '${policy.id}'`,
      type: 'String',
      tier: 'Standard',
      insecureValue: this.topic.arn,
      tags: { [POLICY_TAG]: policy.id },
    });
    this.policyParameter = new SsmParameter(this, 'PolicyParameter', {
      name: policyParameterName(policy.id),
      description: `Self-management policy '${policy.id}' (normalized document, version ${policy.hash})`,
      type: 'String',
      tier: 'Standard',
      insecureValue: document,
      tags: { [POLICY_TAG]: policy.id, [POLICY_VERSION_TAG]: policy.hash },
    });

    this.artifactBucket = new S3Bucket(this, 'ArtifactBucket', {
      bucketPrefix: 'smvm-agent-',
      forceDestroy: true,
      tags: { [POLICY_TAG]: policy.id },
    });
    new S3BucketPublicAccessBlock(this, 'ArtifactBucketPublicAccessBlock', {
      bucket: this.artifactBucket.id,
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    new S3BucketOwnershipControls(this, 'ArtifactBucketOwnership', {
      bucket: this.artifactBucket.id,
      rule: { objectOwnership: 'BucketOwnerEnforced' },
    });
    new S3BucketServerSideEncryptionConfigurationA(this, 'ArtifactBucketEncryption', {
      bucket: this.artifactBucket.id,
      rule: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: 'AES256' } }],
    });
    const bucketPolicy = new DataAwsIamPolicyDocument(this, 'ArtifactBucketPolicyDocument', {
      statement: [
        {
          sid: 'DenyInsecureTransport',
          effect: 'Deny',
          actions: ['s3:*'],
          resources: [this.artifactBucket.arn, `${this.artifactBucket.arn}/*`],
          principals: [{ type: '*', identifiers: ['*'] }],
          condition: [cond('Bool', 'aws:SecureTransport', ['false'])],
        },
      ],
    });
    new S3BucketPolicy(this, 'ArtifactBucketPolicy', { bucket: this.artifactBucket.id, policy: bucketPolicy.json });

    const agentKey = `agent/${this.agentBundle.sha256}/agent.js`;
    const agentCode = new TerraformAsset(this, 'AgentCode', {
      path: this.agentBundle.jsPath,
      type: AssetType.FILE,
      assetHash: this.agentBundle.sha256,
    });
    const agentArtifact = new S3Object(this, 'AgentArtifact', {
      bucket: this.artifactBucket.id,
      key: agentKey,
      source: agentCode.path,
      contentType: 'application/javascript',
      // The next version is uploaded before this one is deleted: the parameter never points at nothing.
      lifecycle: { createBeforeDestroy: true },
    });
    this.agentArtifactParameter = new SsmParameter(this, 'AgentArtifactParameter', {
      name: agentArtifactParameterName(policy.id),
      description: `Current agent bundle of self-management policy '${policy.id}'`,
      type: 'String',
      tier: 'Standard',
      insecureValue: JSON.stringify({ bucket: this.artifactBucket.bucket, key: agentArtifact.key, sha256: this.agentBundle.sha256 }),
      tags: { [POLICY_TAG]: policy.id },
    });

    // ------------------------------------------------------------ the agent's role
    const onOwnInstance = [
      // ec2:SourceInstanceARN is the full ARN of the instance whose role credentials sign the
      // request (IAM User Guide, "Request information that you can use for policy variables").
      // A policy variable may not stand for the part of a Resource ARN before its fifth colon,
      // so neither `"Resource": "${ec2:SourceInstanceARN}"` nor
      // `"arn:aws:ec2:*:*:instance/${ec2:SourceInstanceARN}"` (which expands to
      // `…instance/arn:aws:ec2:…`) can name the caller's own instance. Instead the condition
      // compares the caller's ARN with the *target's* id: ec2:InstanceID is the instance
      // resource's own condition key for StopInstances, RebootInstances, TerminateInstances
      // and CreateTags (Service Authorization Reference, Amazon EC2), and service keys may be
      // used as policy variables in string and ARN conditions. The statement only matches
      // when both name the same instance, and never when the credentials are used off the
      // instance (the key is then absent). `&{…}` is how aws_iam_policy_document spells `${…}`.
      // (The widely copied `"aws:ARN": "${ec2:SourceInstanceARN}"` relies on an undocumented key.)
      cond('ArnLike', 'ec2:SourceInstanceARN', [`arn:${partition.partition}:ec2:*:*:instance/&{ec2:InstanceID}`]),
      cond('StringEquals', `aws:ResourceTag/${POLICY_TAG}`, [policy.id]),
    ];
    const agentStatements: DataAwsIamPolicyDocumentStatement[] = [];
    if (this.agentInstanceActions.length > 0) {
      agentStatements.push({
        sid: 'ActOnOwnInstance',
        effect: 'Allow',
        actions: [...this.agentInstanceActions],
        resources: [instanceArns],
        condition: onOwnInstance,
      });
    }
    agentStatements.push(
      {
        sid: 'TagOwnInstance',
        effect: 'Allow',
        actions: ['ec2:CreateTags'],
        resources: [instanceArns],
        condition: [
          ...onOwnInstance,
          cond('ForAllValues:StringEquals', 'aws:TagKeys', AGENT_WRITABLE_TAGS),
          cond('Null', 'aws:TagKeys', ['false']),
        ],
      },
      { sid: 'PublishEvents', effect: 'Allow', actions: ['sns:Publish'], resources: [this.topic.arn] },
      ...this.topicKeyStatements(),
      {
        sid: 'ReadConfiguration',
        effect: 'Allow',
        actions: ['ssm:GetParameter'],
        resources: [this.policyParameter.arn, this.agentArtifactParameter.arn],
      },
      { sid: 'FetchAgent', effect: 'Allow', actions: ['s3:GetObject'], resources: [`${this.artifactBucket.arn}/${agentKey}`] },
    );
    const agentTrust = new DataAwsIamPolicyDocument(this, 'AgentAssumeRolePolicy', { statement: ASSUME_BY('ec2.amazonaws.com') });
    this.agentRole = new IamRole(this, 'AgentRole', {
      description: `Agent of self-managed instances of policy '${policy.id}'`,
      assumeRolePolicy: agentTrust.json,
      tags: { [POLICY_TAG]: policy.id },
    });
    const agentDocument = new DataAwsIamPolicyDocument(this, 'AgentPolicyDocument', { statement: agentStatements });
    new IamRolePolicy(this, 'AgentRolePolicy', { role: this.agentRole.id, name: 'smvm-agent', policy: agentDocument.json });
    this.instanceProfile = new IamInstanceProfile(this, 'InstanceProfile', {
      role: this.agentRole.name,
      tags: { [POLICY_TAG]: policy.id },
    });

    // ------------------------------------------------------------ the watchdog
    this.watchdogLogGroup = new CloudwatchLogGroup(this, 'WatchdogLogGroup', {
      name: `/aws/lambda/${functionName}`,
      retentionInDays: logRetentionDays,
      tags: { [POLICY_TAG]: policy.id },
    });
    const ofThisPolicy = cond('StringEquals', `aws:ResourceTag/${POLICY_TAG}`, [policy.id]);
    const watchdogStatements: DataAwsIamPolicyDocumentStatement[] = [
      // Describe* cannot be limited to resources (EC2 supports no resource-level permissions for it).
      { sid: 'DescribeInstances', effect: 'Allow', actions: ['ec2:Describe*'], resources: ['*'] },
      // GetMetricData supports no resource-level permissions either.
      { sid: 'ReadMetrics', effect: 'Allow', actions: ['cloudwatch:GetMetricData'], resources: ['*'] },
    ];
    if (this.watchdogInstanceActions.length > 0) {
      watchdogStatements.push({
        sid: 'ActOnPolicyInstances',
        effect: 'Allow',
        actions: [...this.watchdogInstanceActions],
        resources: [instanceArns],
        condition: [ofThisPolicy],
      });
    }
    watchdogStatements.push(
      {
        sid: 'WriteWatchdogTags',
        effect: 'Allow',
        actions: ['ec2:CreateTags', 'ec2:DeleteTags'],
        resources: [instanceArns],
        condition: [ofThisPolicy, cond('ForAllValues:StringEquals', 'aws:TagKeys', WATCHDOG_WRITABLE_TAGS)],
      },
      {
        // No moving instances between policies, no rewriting what the infrastructure code set.
        sid: 'DenyInfrastructureTags',
        effect: 'Deny',
        actions: ['ec2:CreateTags', 'ec2:DeleteTags'],
        resources: ['*'],
        condition: [cond('ForAnyValue:StringEqualsIgnoreCase', 'aws:TagKeys', INFRASTRUCTURE_TAGS)],
      },
      {
        // DeleteTags without tag keys deletes every tag, and ForAllValues is true on an absent key.
        sid: 'DenyDeleteAllTags',
        effect: 'Deny',
        actions: ['ec2:DeleteTags'],
        resources: ['*'],
        condition: [cond('Null', 'aws:TagKeys', ['true'])],
      },
      { sid: 'PublishEvents', effect: 'Allow', actions: ['sns:Publish'], resources: [this.topic.arn] },
      ...this.topicKeyStatements(),
      {
        sid: 'WriteLogs',
        effect: 'Allow',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [`${this.watchdogLogGroup.arn}:*`],
      },
      { sid: 'ReadPolicy', effect: 'Allow', actions: ['ssm:GetParameter'], resources: [this.policyParameter.arn] },
    );
    if (otherActions.size > 0) {
      // e.g. pricing:GetProducts for a spend rule without hourlyUsd; the Price List API has no resources.
      watchdogStatements.push({ sid: 'RuleServices', effect: 'Allow', actions: [...otherActions].sort(), resources: ['*'] });
    }
    const volumeKeys = props.volumeKmsKeyArns ?? [];
    if (canStart && volumeKeys.length > 0) {
      watchdogStatements.push({
        sid: 'StartEncryptedVolumes',
        effect: 'Allow',
        actions: ['kms:CreateGrant'],
        resources: [...volumeKeys],
        condition: [cond('Bool', 'kms:GrantIsForAWSResource', ['true'])],
      });
    }
    if (shardCount > 1) {
      watchdogStatements.push({ sid: 'FanOut', effect: 'Allow', actions: ['lambda:InvokeFunction'], resources: [functionArn] });
    }
    const watchdogTrust = new DataAwsIamPolicyDocument(this, 'WatchdogAssumeRolePolicy', { statement: ASSUME_BY('lambda.amazonaws.com') });
    this.watchdogRole = new IamRole(this, 'WatchdogRole', {
      description: `Watchdog of self-management policy '${policy.id}'`,
      assumeRolePolicy: watchdogTrust.json,
      tags: { [POLICY_TAG]: policy.id },
    });
    const watchdogDocument = new DataAwsIamPolicyDocument(this, 'WatchdogPolicyDocument', { statement: watchdogStatements });
    const watchdogRolePolicy = new IamRolePolicy(this, 'WatchdogRolePolicy', {
      role: this.watchdogRole.id,
      name: 'smvm-watchdog',
      policy: watchdogDocument.json,
    });

    const watchdogCode = new TerraformAsset(this, 'WatchdogCode', {
      path: this.watchdogBundle.zipPath,
      type: AssetType.FILE,
      assetHash: this.watchdogBundle.zipSha256,
    });
    this.watchdogFunction = new LambdaFunction(this, 'WatchdogFunction', {
      functionName,
      description: `Watchdog of self-management policy '${policy.id}'`,
      role: this.watchdogRole.arn,
      runtime,
      architectures: [architecture],
      handler: 'index.handler',
      filename: watchdogCode.path,
      sourceCodeHash: this.watchdogBundle.zipSha256Base64,
      memorySize: 256,
      timeout: 60,
      environment: {
        variables: {
          [POLICY_ID_ENV_VAR]: policy.id,
          [POLICY_PARAMETER_ENV_VAR]: policyParameterName(policy.id),
          [TOPIC_ARN_ENV_VAR]: this.topic.arn,
          [SHARD_COUNT_ENV_VAR]: String(shardCount),
          ...(rateSeconds(schedule) ? { [SCHEDULE_SECONDS_ENV_VAR]: String(rateSeconds(schedule)) } : {}),
        },
      },
      tags: { [POLICY_TAG]: policy.id },
      dependsOn: [this.watchdogLogGroup, watchdogRolePolicy],
    });

    const triggers: Array<[string, { scheduleExpression?: string; eventPattern?: string; description: string }]> = [
      ['Schedule', { scheduleExpression: schedule, description: `Runs the watchdog of policy '${policy.id}'` }],
      [
        'StateChange',
        {
          eventPattern: JSON.stringify({ source: ['aws.ec2'], 'detail-type': ['EC2 Instance State-change Notification'] }),
          description: `Runs the watchdog of policy '${policy.id}' on instance state changes`,
        },
      ],
    ];
    for (const [name, config] of triggers) {
      const rule = new CloudwatchEventRule(this, `${name}Rule`, {
        name: `smvm-${policy.id}-${name === 'Schedule' ? 'schedule' : 'state-change'}`,
        ...config,
        tags: { [POLICY_TAG]: policy.id },
      });
      new CloudwatchEventTarget(this, `${name}Target`, { rule: rule.name, arn: this.watchdogFunction.arn, targetId: 'watchdog' });
      new LambdaPermission(this, `${name}Permission`, {
        statementId: `smvm-${name === 'Schedule' ? 'schedule' : 'state-change'}`,
        action: 'lambda:InvokeFunction',
        functionName: this.watchdogFunction.functionName,
        principal: 'events.amazonaws.com',
        sourceArn: rule.arn,
      });
    }

    // ------------------------------------------------------------ topic policy and subscriptions
    this.publishers.push(this.watchdogRole.arn, this.agentRole.arn);
    const publishers = Lazy.listValue({ produce: () => [...this.publishers] });
    const topicPolicy = new DataAwsIamPolicyDocument(this, 'TopicPolicyDocument', {
      statement: [
        {
          sid: 'AllowGuardsToPublish',
          effect: 'Allow',
          actions: ['sns:Publish'],
          resources: [this.topic.arn],
          principals: [{ type: 'AWS', identifiers: publishers }],
        },
        {
          sid: 'DenyOtherPublishers',
          effect: 'Deny',
          actions: ['sns:Publish'],
          resources: [this.topic.arn],
          principals: [{ type: '*', identifiers: ['*'] }],
          condition: [cond('ArnNotEquals', 'aws:PrincipalArn', publishers)],
        },
      ],
    });
    new SnsTopicPolicy(this, 'TopicPolicy', { arn: this.topic.arn, policy: topicPolicy.json });
    subscriptions.forEach((s, i) => this.subscribe(s, i));

    // The bootstrap local is created now, not on first use: adoption runs inside an aspect,
    // which must not add constructs to the tree it is visiting.
    void this.bootstrapReference;
  }

  /**
   * Lets a principal publish to the topic (e.g. your own automation): adds it to the topic
   * policy's allow list and to the exceptions of its deny, and, for a role, an identity
   * policy that allows `sns:Publish` (and the topic key, if any).
   */
  grantPublish(grantee: IamRole | string): PublishGrant {
    const principalArn = typeof grantee === 'string' ? grantee : grantee.arn;
    this.publishers.push(principalArn);
    if (typeof grantee === 'string') return { principalArn };
    const doc = new DataAwsIamPolicyDocument(this, `PublishGrant${shortHash(grantee.node.path)}Document`, {
      statement: [
        { sid: 'PublishEvents', effect: 'Allow', actions: ['sns:Publish'], resources: [this.topic.arn] },
        ...this.topicKeyStatements(),
      ],
    });
    const rolePolicy = new IamRolePolicy(this, `PublishGrant${shortHash(grantee.node.path)}`, {
      role: grantee.id,
      name: `smvm-publish-${this.policyId}`,
      policy: doc.json,
    });
    return { principalArn, rolePolicy };
  }

  /**
   * Puts an existing `aws_instance` or `aws_launch_template` under this policy: tags
   * (a launch template's instance tag specifications), the agent's instance profile,
   * IMDSv2 metadata options, shutdown behaviour, hibernation, and the agent bootstrap
   * merged after the resource's own user data.
   */
  applyTo(target: Instance | LaunchTemplate): void {
    adopt(this, target);
  }

  /**
   * An aspect that applies this policy to every plain `aws_instance` and
   * `aws_launch_template` in the scope it is added to: `Aspects.of(stack).add(policy.aspect())`.
   * Instances that launch from a launch template and have no user data of their own are
   * left to their template.
   */
  aspect(): IAspect {
    return {
      visit: (node: IConstruct) => {
        if (isAdoptable(node)) adopt(this, node);
      },
    };
  }

  /** The tags every instance declared at `target`'s construct path carries. */
  managementTags(target: IConstruct): Record<string, string> {
    const hex = crypto.createHash('sha256').update(target.node.path).digest('hex');
    const tags: Record<string, string> = {
      [POLICY_TAG]: this.policyId,
      [MANAGEMENT_ID_TAG]: formatManagementId(this.policyId, hex),
      [POLICY_VERSION_TAG]: this.hash,
      // What an OS poweroff does: the agent's offline fallback never does more than a rule decided.
      [SHUTDOWN_BEHAVIOR_TAG]: this.shutdownBehavior,
    };
    const lifetimeSeconds = this.lifetimeSeconds();
    if (lifetimeSeconds !== undefined) tags[HARD_LIMIT_TAG] = String(lifetimeSeconds);
    return tags;
  }

  /**
   * The instance profile's name, as one token shared by every instance (cdktf records a
   * stack trace per token created; a thousand instances need not create a thousand).
   */
  get instanceProfileName(): string {
    if (this.profileName === undefined) this.profileName = this.instanceProfile.name;
    return this.profileName;
  }

  /** `terminate` when a hard-limit rule terminates (so an offline shutdown also ends the instance), else `stop`. */
  get shutdownBehavior(): 'stop' | 'terminate' {
    return this.policy.rules.some((r) => findRule(r.type)!.kind === 'hard' && r.action === 'terminate') ? 'terminate' : 'stop';
  }

  /** Whether a rule hibernates instances (they then need hibernation configured at launch). */
  get hibernates(): boolean {
    return this.policy.rules.some((r) => r.action === 'hibernate');
  }

  /**
   * The agent bootstrap part of the user data. It names the policy and its parameters but
   * never depends on the policy's rules or the agent's version, so editing either never
   * changes an instance's user data.
   */
  get bootstrapScript(): string {
    if (this.bootstrap === undefined) {
      this.bootstrap = renderBootstrap({
        policyId: this.policyId,
        region: this.region.region,
        topicArn: this.topic.arn,
        policyParameter: policyParameterName(this.policyId),
        artifactParameter: agentArtifactParameterName(this.policyId),
      });
    }
    return this.bootstrap;
  }

  /**
   * A reference to the bootstrap text, kept once per policy in a Terraform local
   * (`local.<Policy>_Bootstrap_…`) so that a thousand instances do not repeat it.
   */
  get bootstrapReference(): string {
    if (!this.bootstrapLocal) this.bootstrapLocal = new TerraformLocal(this, 'Bootstrap', stringExpression(this.bootstrapScript));
    return this.bootstrapLocal.asString;
  }

  /** sha256 of the watchdog zip and the agent bundle (for diagnostics and tests). */
  get artifacts(): {
    readonly watchdogZipSha256: string;
    readonly agentSha256: string;
    readonly agentBytes: number;
    readonly watchdogBytes: number;
  } {
    return {
      watchdogZipSha256: this.watchdogBundle.zipSha256,
      agentSha256: this.agentBundle.sha256,
      agentBytes: this.agentBundle.bytes,
      watchdogBytes: this.watchdogBundle.bytes,
    };
  }

  /**
   * The lifetime limit the dependency-free shutdown guard enforces when no agent runs:
   * the shortest lifetime rule whose action an OS poweroff does not exceed. A poweroff
   * does what the shutdown behaviour says, so a `terminate` rule always qualifies, a
   * `stop` or `hibernate` rule only when the behaviour is `stop`, and a `notify` rule
   * never (the guard would act where the rule only announces).
   */
  private lifetimeSeconds(): number | undefined {
    const behaviour = this.shutdownBehavior;
    const limits = this.policy.rules
      .filter(
        (r) =>
          r.type === 'lifetime' &&
          (r.action === 'terminate' || (behaviour === 'stop' && (r.action === 'stop' || r.action === 'hibernate'))),
      )
      .map((r) => Math.floor((r.params.maxMs as number) / 1000));
    return limits.length > 0 ? Math.min(...limits) : undefined;
  }

  private topicKeyStatements(): DataAwsIamPolicyDocumentStatement[] {
    if (!this.topicKmsKeyArn) return [];
    return [{ sid: 'UseTopicKey', effect: 'Allow', actions: ['kms:Decrypt', 'kms:GenerateDataKey*'], resources: [this.topicKmsKeyArn] }];
  }

  private bundle(what: 'watchdog' | 'agent', entry: string, target: string, define?: Record<string, string>): ZippedBundle {
    try {
      return bundle({ entry: path.resolve(entry), target, what, ...(define ? { define } : {}) });
    } catch (e) {
      if (e instanceof BundleError) {
        throw new ValidationError(
          e.missing ? entryNotFound(what, path.relative(LIBRARY_ROOT, path.resolve(entry))) : bundleFailed(what, entry, e.message),
          this,
        );
      }
      throw e;
    }
  }

  private validateSubscription(s: TopicSubscription, index: number): void {
    const expected: Record<SubscriptionProtocol, [RegExp, string]> = {
      email: [/^[^@\s]+@[^@\s]+\.[^@\s]+$/, 'an e-mail address'],
      https: [/^https:\/\/\S+$/, 'an https:// URL'],
      sqs: [/^arn:aws[a-z-]*:sqs:[a-z0-9-]+:\d{12}:\S+$/, 'an SQS queue ARN'],
      lambda: [/^arn:aws[a-z-]*:lambda:[a-z0-9-]+:\d{12}:function:\S+$/, 'a Lambda function ARN'],
    };
    const rule = expected[s.protocol];
    if (!rule) {
      throw new ValidationError(
        invalidProp(
          `subscriptions[${index}].protocol`,
          'must be one of email, https, sqs, lambda',
          s.protocol,
          'Choose a supported protocol.',
        ),
        this,
      );
    }
    if (!Token.isUnresolved(s.endpoint) && !rule[0].test(s.endpoint)) {
      throw new ValidationError(invalidSubscription(index, s.protocol, s.endpoint, rule[1]), this);
    }
    if (s.rawMessageDelivery && (s.protocol === 'email' || s.protocol === 'lambda')) {
      throw new ValidationError(
        invalidProp(
          `subscriptions[${index}].rawMessageDelivery`,
          `is not supported for protocol '${s.protocol}'`,
          true,
          'Remove it, or use sqs or https.',
        ),
        this,
      );
    }
  }

  private subscribe(s: TopicSubscription, index: number): void {
    const pascal = s.protocol[0].toUpperCase() + s.protocol.slice(1);
    const id = s.id ?? (Token.isUnresolved(s.endpoint) ? `Subscription${index}` : `${pascal}Subscription${shortHash(s.endpoint)}`);
    new SnsTopicSubscription(this, id, {
      topicArn: this.topic.arn,
      protocol: s.protocol,
      endpoint: s.endpoint,
      ...(s.filterPolicy ? { filterPolicy: JSON.stringify(s.filterPolicy) } : {}),
      ...(s.rawMessageDelivery ? { rawMessageDelivery: true } : {}),
    });
    if (s.protocol === 'lambda') {
      new LambdaPermission(this, `${id}Permission`, {
        action: 'lambda:InvokeFunction',
        functionName: s.endpoint,
        principal: 'sns.amazonaws.com',
        sourceArn: this.topic.arn,
      });
    }
  }
}
