/**
 * Test helpers for fleets in moto: run N tagged instances, read them back, count the
 * SDK calls a client makes (a middleware, independent of the code under test), wrap a
 * client to inject faults, and read the SNS events a topic delivered to an SQS queue
 * (raw delivery, so message attributes arrive as SQS attributes).
 */
import {
  DescribeInstancesCommand,
  EC2Client,
  ModifyInstanceAttributeCommand,
  RunInstancesCommand,
  type Instance,
} from '@aws-sdk/client-ec2';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { parseEvent, type SmvmEvent } from '../../lambda-agent/contract/events';
import { POLICY_TAG } from '../../lambda-agent/contract/tags';
import { WRITE_OPERATIONS } from '../../lambda-agent/watchdog/api-calls';

/** An image id moto knows. */
export const TEST_AMI = 'ami-12c6146b';

export interface FleetOptions {
  readonly count: number;
  /** Value of the policy tag; `null` for unmanaged instances. */
  readonly policyId: string | null;
  readonly instanceType?: string;
  /** More tags on every instance. */
  readonly tags?: Readonly<Record<string, string>>;
  /** Launch with hibernation configured. */
  readonly hibernation?: boolean;
}

/** Runs instances (in calls of at most 500) and returns their ids in launch order. */
export async function runFleet(ec2: EC2Client, opts: FleetOptions): Promise<string[]> {
  const tags = { ...(opts.policyId === null ? {} : { [POLICY_TAG]: opts.policyId }), ...(opts.tags ?? {}) };
  const list = Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
  const ids: string[] = [];
  for (let left = opts.count; left > 0; left -= 500) {
    const n = Math.min(500, left);
    const out = await ec2.send(
      new RunInstancesCommand({
        ImageId: TEST_AMI,
        MinCount: n,
        MaxCount: n,
        InstanceType: (opts.instanceType ?? 't3.micro') as never,
        ...(list.length ? { TagSpecifications: [{ ResourceType: 'instance', Tags: list }] } : {}),
        ...(opts.hibernation ? { HibernationOptions: { Configured: true } } : {}),
      }),
    );
    ids.push(...(out.Instances ?? []).map((i) => i.InstanceId!));
  }
  return ids;
}

/** Turns on termination protection (moto ignores DisableApiTermination on RunInstances). */
export async function protectFromTermination(ec2: EC2Client, instanceId: string): Promise<void> {
  await ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: instanceId, DisableApiTermination: { Value: true } }));
}

/** Turns on stop protection. */
export async function protectFromStop(ec2: EC2Client, instanceId: string): Promise<void> {
  await ec2.send(new ModifyInstanceAttributeCommand({ InstanceId: instanceId, DisableApiStop: { Value: true } }));
}

/** The instances by id (any state). */
export async function describeAll(ec2: EC2Client, ids: readonly string[]): Promise<Map<string, Instance>> {
  const out = new Map<string, Instance>();
  for (let i = 0; i < ids.length; i += 200) {
    let token: string | undefined;
    do {
      const res = await ec2.send(
        new DescribeInstancesCommand({ InstanceIds: ids.slice(i, i + 200), ...(token ? { NextToken: token } : {}) }),
      );
      for (const r of res.Reservations ?? []) for (const x of r.Instances ?? []) out.set(x.InstanceId!, x);
      token = res.NextToken;
    } while (token);
  }
  return out;
}

export function tagsOf(instance: Instance | undefined): Record<string, string> {
  return Object.fromEntries((instance?.Tags ?? []).map((t) => [t.Key!, t.Value ?? '']));
}

export function stateOf(instance: Instance | undefined): string | undefined {
  return instance?.State?.Name;
}

// ---------------------------------------------------------------- call counting

export interface CallCounts {
  /** Calls by operation name since the last reset. */
  readonly counts: Record<string, number>;
  /** Input of every call since the last reset, in order. */
  readonly calls: Array<{ op: string; input: any }>;
  reset(): void;
  total(): number;
}

/**
 * Counts the calls a real SDK client makes, by operation (a middleware at the
 * initialize step: one count per call, retries included once).
 */
export function countCalls(...clients: Array<{ middlewareStack: { add: (...a: any[]) => void } }>): CallCounts {
  const state: CallCounts = {
    counts: {},
    calls: [],
    reset() {
      for (const k of Object.keys(this.counts)) delete this.counts[k];
      this.calls.length = 0;
    },
    total() {
      return Object.values(this.counts).reduce((a, b) => a + b, 0);
    },
  };
  for (const client of clients) {
    client.middlewareStack.add(
      (next: (args: any) => Promise<any>, context: { commandName?: string }) => async (args: { input: unknown }) => {
        const op = (context.commandName ?? 'Unknown').replace(/Command$/, '');
        state.counts[op] = (state.counts[op] ?? 0) + 1;
        state.calls.push({ op, input: args.input });
        return next(args);
      },
      { step: 'initialize', name: 'testCallCounter', override: true },
    );
  }
  return state;
}

export function writesIn(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([op]) => WRITE_OPERATIONS.has(op)));
}

// ---------------------------------------------------------------- fault injection

/** The name of an SDK v3 command (`DescribeInstances`). */
export function opOf(command: unknown): string {
  const c = command as { schema?: unknown; constructor: { name: string } };
  if (Array.isArray(c.schema) && typeof c.schema[2] === 'string') return c.schema[2];
  return c.constructor.name.replace(/Command$/, '');
}

/**
 * A client whose calls go through `intercept(op, command, send)`: return `send()` to
 * pass through, or throw / return something else to inject a fault.
 */
export function interceptClient<C extends { send: (...a: any[]) => Promise<any> }>(
  client: C,
  intercept: (op: string, command: any, send: () => Promise<any>) => Promise<any>,
): { send: (command: any) => Promise<any> } {
  return { send: (command: any) => intercept(opOf(command), command, () => client.send(command)) };
}

/** An AWS service error as the SDK raises it. */
export function awsError(code: string, message: string, status = 400): Error {
  const e = new Error(message) as Error & { Code: string; $metadata: { httpStatusCode: number }; $fault: string };
  e.name = code;
  e.Code = code;
  e.$metadata = { httpStatusCode: status };
  e.$fault = status >= 500 ? 'server' : 'client';
  return e;
}

// ---------------------------------------------------------------- SNS → SQS

export interface EventQueue {
  readonly topicArn: string;
  /** Raw delivery: the body is the event; attributes are SQS message attributes. */
  readonly queueUrl: string;
  /** Envelope delivery (not raw): the body is SNS's JSON with `Subject`. */
  readonly envelopeQueueUrl: string;
}

async function queueWithSubscription(sns: SNSClient, sqs: SQSClient, topicArn: string, name: string, raw: boolean): Promise<string> {
  const q = await sqs.send(new CreateQueueCommand({ QueueName: name }));
  const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: q.QueueUrl!, AttributeNames: ['QueueArn'] }));
  await sns.send(
    new SubscribeCommand({
      TopicArn: topicArn,
      Protocol: 'sqs',
      Endpoint: attrs.Attributes!.QueueArn!,
      ...(raw ? { Attributes: { RawMessageDelivery: 'true' } } : {}),
    }),
  );
  return q.QueueUrl!;
}

/** A topic with two SQS subscriptions: raw delivery and envelope delivery. */
export async function createEventQueue(sns: SNSClient, sqs: SQSClient, name = 'smvm-events'): Promise<EventQueue> {
  const topic = await sns.send(new CreateTopicCommand({ Name: name }));
  const topicArn = topic.TopicArn!;
  return {
    topicArn,
    queueUrl: await queueWithSubscription(sns, sqs, topicArn, `${name}-raw`, true),
    envelopeQueueUrl: await queueWithSubscription(sns, sqs, topicArn, `${name}-envelope`, false),
  };
}

export interface ReceivedEvent {
  readonly event: SmvmEvent;
  /** SNS message attributes (String values). */
  readonly attributes: Record<string, string>;
  readonly body: string;
}

async function drain(sqs: SQSClient, queueUrl: string): Promise<Array<{ body: string; attributes: Record<string, string> }>> {
  const out: Array<{ body: string; attributes: Record<string, string> }> = [];
  for (;;) {
    const res = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, MessageAttributeNames: ['All'], WaitTimeSeconds: 0 }),
    );
    const msgs = res.Messages ?? [];
    if (msgs.length === 0) return out;
    for (const m of msgs) {
      out.push({
        body: m.Body ?? '',
        attributes: Object.fromEntries(Object.entries(m.MessageAttributes ?? {}).map(([k, v]) => [k, v.StringValue ?? ''])),
      });
    }
    await sqs.send(
      new DeleteMessageBatchCommand({
        QueueUrl: queueUrl,
        Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })),
      }),
    );
  }
}

/** Every event delivered so far (removed from the queue), each validated with `parseEvent`. */
export async function readEvents(sqs: SQSClient, q: EventQueue): Promise<ReceivedEvent[]> {
  return (await drain(sqs, q.queueUrl)).map((m) => ({ event: parseEvent(m.body), attributes: m.attributes, body: m.body }));
}

/** Envelopes delivered so far (for the Subject), removed from the queue. */
export async function readEnvelopes(sqs: SQSClient, q: EventQueue): Promise<Array<{ Subject?: string; Message: string }>> {
  return (await drain(sqs, q.envelopeQueueUrl)).map((m) => JSON.parse(m.body));
}

// ---------------------------------------------------------------- in-process fake EC2

export interface FakeEc2Options {
  /** Instances returned by DescribeInstances (already filtered: the fake trusts the caller's filter). */
  readonly instances: Instance[];
  readonly pageSize?: number;
}

/**
 * An in-process EC2 for fleets too large for moto (no HTTP, no XML): answers
 * DescribeInstances in pages from a prepared list, and records every other call.
 * It checks that every describe carries the policy filter.
 */
export function createFakeEc2(opts: FakeEc2Options) {
  const calls: Record<string, number> = {};
  const inputs: Array<{ op: string; input: any }> = [];
  const size = opts.pageSize ?? 1000;
  return {
    calls,
    inputs,
    async send(command: any): Promise<any> {
      const op = opOf(command);
      calls[op] = (calls[op] ?? 0) + 1;
      if (op !== 'DescribeInstances') inputs.push({ op, input: command.input });
      switch (op) {
        case 'DescribeInstances': {
          const filters = (command.input.Filters ?? []) as Array<{ Name: string }>;
          if (!filters.some((f) => f.Name === `tag:${POLICY_TAG}`)) throw new Error('fake EC2: unfiltered describe');
          const start = command.input.NextToken ? Number(command.input.NextToken) : 0;
          const page = opts.instances.slice(start, start + size);
          const next = start + size < opts.instances.length ? String(start + size) : undefined;
          return { Reservations: [{ Instances: page }], ...(next ? { NextToken: next } : {}) };
        }
        case 'StopInstances':
        case 'StartInstances':
        case 'TerminateInstances':
        case 'RebootInstances':
        case 'CreateTags':
        case 'DescribeInstanceStatus':
          return {};
        default:
          throw new Error(`fake EC2: ${op} is not implemented`);
      }
    },
  };
}

/** Instances as DescribeInstances returns them (for the fake), with the given tags. */
export function fakeInstances(
  count: number,
  policyId: string,
  tags: (index: number) => Record<string, string> = () => ({}),
  launchTime = new Date('2026-01-01T00:00:00Z'),
): Instance[] {
  const out: Instance[] = [];
  for (let i = 0; i < count; i++) {
    const id = `i-${(0x1000000000000 + i).toString(16).padStart(17, '0')}`;
    out.push({
      InstanceId: id,
      InstanceType: 't3.micro',
      LaunchTime: launchTime,
      State: { Code: 16, Name: 'running' },
      StateTransitionReason: '',
      Tags: [{ Key: POLICY_TAG, Value: policyId }, ...Object.entries(tags(i)).map(([Key, Value]) => ({ Key, Value }))],
    } as Instance);
  }
  return out;
}
