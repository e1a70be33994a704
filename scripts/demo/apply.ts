/**
 * A tiny "terraform apply" of the synthesized demo stack onto the local cloud: the
 * resources the two guards use at run time are created from their synthesized
 * configuration, with Terraform's `${type.name.attribute}` references resolved. IAM,
 * EventBridge, the log group and the bucket's hardening settings have no part to play
 * on the emulator and are counted as skipped (the demo itself plays EventBridge).
 */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RunInstancesCommand, type EC2Client, type _InstanceType } from '@aws-sdk/client-ec2';
import { CreateBucketCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { CreateTopicCommand, SubscribeCommand, type SNSClient } from '@aws-sdk/client-sns';
import { PutParameterCommand, type SSMClient } from '@aws-sdk/client-ssm';
import type { InstanceLabel, SynthesizedDemo, TfResources } from './stack';

export interface Clients {
  readonly ec2: EC2Client;
  readonly s3: S3Client;
  readonly sns: SNSClient;
  readonly ssm: SSMClient;
}

/** The watchdog function as synthesized (what Lambda would run). */
export interface WatchdogFunction {
  readonly functionName: string;
  /** `index.handler` */
  readonly handler: string;
  /** Absolute path of the code package (the zip asset). */
  readonly zipPath: string;
  /** base64 sha256 of the zip, as Terraform gives it to Lambda. */
  readonly sourceCodeHash: string;
  /** Environment variables, references resolved. */
  readonly environment: Record<string, string>;
  readonly timeoutSeconds: number;
}

export interface DeployedPolicy {
  readonly topicArn: string;
  /** SSM parameters written: name → value. */
  readonly parameters: Record<string, string>;
  /** Objects uploaded: `s3://bucket/key`. */
  readonly objects: string[];
  readonly watchdog: WatchdogFunction;
  /** Resources created, as `type.name`. */
  readonly applied: string[];
  /** Resource types not applied on the emulator, with their counts. */
  readonly skipped: Record<string, number>;
}

export interface LaunchedInstance {
  readonly label: InstanceLabel;
  readonly instanceId: string;
  readonly tags: Record<string, string>;
  readonly instanceType: string;
  readonly launchedAt: number;
}

const REF = /\$\{([a-z0-9_]+)\.([A-Za-z0-9_-]+)\.([a-z_]+)\}/g;

class References {
  private readonly values = new Map<string, string>();
  set(type: string, name: string, attrs: Record<string, string>): void {
    for (const [attr, v] of Object.entries(attrs)) this.values.set(`${type}.${name}.${attr}`, v);
  }
  resolve(text: string, where: string): string {
    return text.replace(REF, (whole, type: string, name: string, attr: string) => {
      const v = this.values.get(`${type}.${name}.${attr}`);
      if (v === undefined) throw new Error(`apply: ${where} refers to ${whole}, which the demo does not create`);
      return v;
    });
  }
}

const str = (config: Record<string, unknown>, key: string, where: string): string => {
  const v = config[key];
  if (typeof v !== 'string') throw new Error(`apply: ${where} has no string '${key}'`);
  return v;
};

const tagList = (tags: unknown) => Object.entries((tags ?? {}) as Record<string, string>).map(([Key, Value]) => ({ Key, Value }));

/** Resource types that run nothing on the emulator. */
function skippedTypes(resources: TfResources, applied: ReadonlySet<string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [type, byName] of Object.entries(resources)) {
    if (applied.has(type)) continue;
    out[type] = Object.keys(byName).length;
  }
  return out;
}

const APPLIED_TYPES = new Set([
  'aws_sns_topic',
  'aws_s3_bucket',
  'aws_s3_object',
  'aws_ssm_parameter',
  'aws_sns_topic_subscription',
  'aws_lambda_function',
  'aws_instance',
]);

/** Creates the policy's run-time resources (everything but the instances). */
export async function deployPolicy(demo: SynthesizedDemo, clients: Clients): Promise<DeployedPolicy> {
  const r = demo.resources;
  const refs = new References();
  const applied: string[] = [];
  const each = (type: string) => Object.entries(r[type] ?? {});

  let topicArn: string | undefined;
  for (const [name, c] of each('aws_sns_topic')) {
    const arn = (await clients.sns.send(new CreateTopicCommand({ Name: str(c, 'name', name), Tags: tagList(c.tags) }))).TopicArn!;
    refs.set('aws_sns_topic', name, { arn, id: arn, name: str(c, 'name', name) });
    topicArn ??= arn;
    applied.push(`aws_sns_topic.${name}`);
  }
  if (!topicArn) throw new Error('apply: the synthesized stack has no aws_sns_topic');

  for (const [name, c] of each('aws_s3_bucket')) {
    // Terraform names a bucket_prefix bucket with a unique suffix.
    const bucket =
      typeof c.bucket === 'string'
        ? c.bucket
        : `${str(c, 'bucket_prefix', name)}${Date.now().toString(36)}${crypto.randomBytes(3).toString('hex')}`;
    await clients.s3.send(new CreateBucketCommand({ Bucket: bucket }));
    refs.set('aws_s3_bucket', name, { bucket, id: bucket, arn: `arn:aws:s3:::${bucket}` });
    applied.push(`aws_s3_bucket.${name}`);
  }

  const objects: string[] = [];
  for (const [name, c] of each('aws_s3_object')) {
    const bucket = refs.resolve(str(c, 'bucket', name), name);
    const key = refs.resolve(str(c, 'key', name), name);
    const body = fs.readFileSync(path.resolve(demo.stackDir, str(c, 'source', name)));
    await clients.s3.send(
      new PutObjectCommand({
        Bucket: bucket,
        Key: key,
        Body: body,
        ...(typeof c.content_type === 'string' ? { ContentType: c.content_type } : {}),
      }),
    );
    refs.set('aws_s3_object', name, { key, id: key, bucket });
    objects.push(`s3://${bucket}/${key}`);
    applied.push(`aws_s3_object.${name}`);
  }

  const parameters: Record<string, string> = {};
  for (const [name, c] of each('aws_ssm_parameter')) {
    const raw = typeof c.insecure_value === 'string' ? c.insecure_value : str(c, 'value', name);
    const value = refs.resolve(raw, name);
    const Name = str(c, 'name', name);
    await clients.ssm.send(new PutParameterCommand({ Name, Value: value, Type: 'String', Overwrite: true }));
    parameters[Name] = value;
    applied.push(`aws_ssm_parameter.${name}`);
  }

  for (const [name, c] of each('aws_sns_topic_subscription')) {
    const protocol = str(c, 'protocol', name);
    if (protocol !== 'sqs') throw new Error(`apply: subscription ${name} uses '${protocol}'; the demo delivers to SQS only`);
    await clients.sns.send(
      new SubscribeCommand({
        TopicArn: refs.resolve(str(c, 'topic_arn', name), name),
        Protocol: protocol,
        Endpoint: refs.resolve(str(c, 'endpoint', name), name),
        Attributes: {
          ...(c.raw_message_delivery === true ? { RawMessageDelivery: 'true' } : {}),
          ...(typeof c.filter_policy === 'string' ? { FilterPolicy: c.filter_policy } : {}),
        },
      }),
    );
    applied.push(`aws_sns_topic_subscription.${name}`);
  }

  const functions = each('aws_lambda_function');
  if (functions.length !== 1) throw new Error(`apply: expected one aws_lambda_function (the watchdog), found ${functions.length}`);
  const [fname, f] = functions[0];
  const variables = ((f.environment as { variables?: Record<string, string> } | undefined)?.variables ?? {}) as Record<string, string>;
  const environment: Record<string, string> = {};
  for (const [k, v] of Object.entries(variables)) environment[k] = refs.resolve(v, `${fname}.environment.${k}`);
  const watchdog: WatchdogFunction = {
    functionName: str(f, 'function_name', fname),
    handler: str(f, 'handler', fname),
    zipPath: path.resolve(demo.stackDir, str(f, 'filename', fname)),
    sourceCodeHash: str(f, 'source_code_hash', fname),
    environment,
    timeoutSeconds: typeof f.timeout === 'number' ? f.timeout : 3,
  };
  applied.push(`aws_lambda_function.${fname}`);

  return { topicArn, parameters, objects, watchdog, applied, skipped: skippedTypes(r, APPLIED_TYPES) };
}

/** Launches every synthesized aws_instance (tags, type, metadata options as configured). */
export async function launchInstances(demo: SynthesizedDemo, ec2: EC2Client, ami: string): Promise<LaunchedInstance[]> {
  const out: LaunchedInstance[] = [];
  for (const [name, c] of Object.entries(demo.resources.aws_instance ?? {})) {
    const meta = (c['//'] as { metadata?: { path?: string } } | undefined)?.metadata?.path ?? '';
    const label = demo.labels[meta];
    if (!label) throw new Error(`apply: aws_instance.${name} (${meta}) is not one of the demo's instances`);
    const tags = (c.tags ?? {}) as Record<string, string>;
    const instanceType = str(c, 'instance_type', name);
    const mo = (c.metadata_options ?? {}) as Record<string, unknown>;
    const launchedAt = Date.now();
    const res = await ec2.send(
      new RunInstancesCommand({
        ImageId: ami,
        MinCount: 1,
        MaxCount: 1,
        InstanceType: instanceType as _InstanceType,
        ...(typeof c.instance_initiated_shutdown_behavior === 'string'
          ? { InstanceInitiatedShutdownBehavior: c.instance_initiated_shutdown_behavior as 'stop' | 'terminate' }
          : {}),
        MetadataOptions: {
          ...(mo.http_tokens ? { HttpTokens: mo.http_tokens as 'required' } : {}),
          ...(mo.instance_metadata_tags ? { InstanceMetadataTags: mo.instance_metadata_tags as 'enabled' } : {}),
        },
        TagSpecifications: [{ ResourceType: 'instance', Tags: tagList(tags) }],
      }),
    );
    out.push({ label, instanceId: res.Instances![0].InstanceId!, tags, instanceType, launchedAt });
  }
  return out.sort((a, b) => a.label.localeCompare(b.label));
}
