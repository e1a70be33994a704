/**
 * The smvm CLI against moto: status (table and --json), explain, snooze, extend,
 * events and report, with real tags, SSM parameters and SNS → SQS delivery.
 */
import { EC2Client, RunInstancesCommand, DescribeInstancesCommand, CreateTagsCommand } from '@aws-sdk/client-ec2';
import { SNSClient, CreateTopicCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { SQSClient, CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { SSMClient, PutParameterCommand, DeleteParameterCommand } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import { useMoto } from '../support/moto';
import { run } from '../../lambda-agent/cli/main';
import type { CliContext } from '../../lambda-agent/cli/context';
import { EXTEND_TAG, POLICY_TAG, SNOOZE_TAG, STATE_TAG } from '../../lambda-agent/contract/tags';
import { policyParameterName, topicParameterName } from '../../lambda-agent/contract/env';
import { encodeCheckpoint } from '../../lambda-agent/contract/state';
import { parseEvent } from '../../lambda-agent/contract/events';

const moto = useMoto();
const HOUR = 3_600_000;

const POLICY = {
  id: 'dev-boxes',
  rules: [
    { rule: 'lifetime', max: '7d', action: 'terminate', warnBefore: '1h' },
    { rule: 'running-time', max: '40h' },
    { rule: 'spend', maxUsd: 25, hourlyUsd: 0.1 },
  ],
};

function clients() {
  const cfg = moto.sdkConfig();
  return { ec2: new EC2Client(cfg), ssm: new SSMClient(cfg), sns: new SNSClient(cfg), sqs: new SQSClient(cfg), sts: new STSClient(cfg) };
}

function context(now: number) {
  const out: string[] = [];
  const err: string[] = [];
  const ctx: CliContext = { clients: clients(), now: () => now, out: (t) => out.push(t), err: (t) => err.push(t), progress: false };
  return { ctx, out, err };
}

async function setup() {
  const c = clients();
  await c.ssm.send(new PutParameterCommand({ Name: policyParameterName('dev-boxes'), Value: JSON.stringify(POLICY), Type: 'String' }));
  const topic = (await c.sns.send(new CreateTopicCommand({ Name: 'smvm-dev-boxes' }))).TopicArn!;
  await c.ssm.send(new PutParameterCommand({ Name: topicParameterName('dev-boxes'), Value: topic, Type: 'String' }));
  const queueUrl = (await c.sqs.send(new CreateQueueCommand({ QueueName: 'audit' }))).QueueUrl!;
  const queueArn = (await c.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!
    .QueueArn!;
  await c.sns.send(
    new SubscribeCommand({ TopicArn: topic, Protocol: 'sqs', Endpoint: queueArn, Attributes: { RawMessageDelivery: 'true' } }),
  );
  const run1 = await c.ec2.send(
    new RunInstancesCommand({
      ImageId: 'ami-12c6146b',
      MinCount: 2,
      MaxCount: 2,
      InstanceType: 't3.micro',
      TagSpecifications: [{ ResourceType: 'instance', Tags: [{ Key: POLICY_TAG, Value: 'dev-boxes' }] }],
    }),
  );
  const ids = run1.Instances!.map((i) => i.InstanceId!);
  const other = (await c.ec2.send(new RunInstancesCommand({ ImageId: 'ami-12c6146b', MinCount: 1, MaxCount: 1 }))).Instances![0]
    .InstanceId!;
  const launched = (
    await c.ec2.send(new DescribeInstancesCommand({ InstanceIds: [ids[0]] }))
  ).Reservations![0].Instances![0].LaunchTime!.getTime();
  // The first instance has been running for 5 days and 10 hours of its 7-day life.
  const first = launched - 130 * HOUR;
  await c.ec2.send(
    new CreateTagsCommand({
      Resources: [ids[0]],
      Tags: [{ Key: STATE_TAG, Value: encodeCheckpoint({ state: 'running', since: first, firstSeen: first, runningMs: 0, spendUsd: 0 }) }],
    }),
  );
  return { ids, other, queueUrl, now: launched + 60_000, c };
}

async function drain(c: ReturnType<typeof clients>, queueUrl: string) {
  const out = await c.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
  return (out.Messages ?? []).map((m) => parseEvent(m.Body!));
}

describe('smvm CLI against moto', () => {
  it('status prints a table of the managed instances only, and --json the same rows', async () => {
    // GIVEN two managed instances and an unmanaged one
    const { ids, other, now } = await setup();
    // WHEN
    const table = context(now);
    const code = await run(['status', '--policy', 'dev-boxes'], table.ctx);
    const json = context(now);
    await run(['status', '--json'], json.ctx);
    // THEN
    expect(code).toBe(0);
    const text = table.out.join('\n');
    expect(text).toContain(ids[0]);
    expect(text).toContain(ids[1]);
    expect(text).not.toContain(other);
    expect(text).toMatch(/lifetime left/);
    const parsed = JSON.parse(json.out.join('\n'));
    const row = parsed.instances.find((r: { instanceId: string }) => r.instanceId === ids[0]);
    expect(row).toMatchObject({ policy: 'dev-boxes', state: 'running', lifetimeLeft: '1d 13h', spendCapUsd: 25 });
    expect(row.runningHours).toBeCloseTo(130, 0);
    expect(parsed.instances).toHaveLength(2);
  });

  it('explain gives every rule with its figures and what happens next', async () => {
    const { ids, now } = await setup();
    const { ctx, out } = context(now);
    expect(await run(['explain', ids[0]], ctx)).toBe(0);
    const text = out.join('\n');
    expect(text).toMatch(/lifetime \(hard limit, action terminate\): PENDING — lifetime 5d 10h of 7d/);
    expect(text).toMatch(/running-time \(hard limit, action stop\): DUE — running time 5d 10h reached the budget of 1d 16h/);
    expect(text).toMatch(/spend \(hard limit, action stop\): PENDING — spend \$13.00 of \$25.00/);
    expect(text).toMatch(/decision: stop now, because running time 5d 10h reached the budget/);
    expect(text).not.toMatch(/^next:/m);
  });

  it('snooze writes the tag and announces who and why; without a reason it refuses with exit 2', async () => {
    const { ids, now, queueUrl, c } = await setup();
    const bad = context(now);
    expect(await run(['snooze', ids[1], '2h'], bad.ctx)).toBe(2);
    expect(bad.err.join('\n')).toMatch(/--reason is required/);
    const { ctx, out } = context(now);
    expect(await run(['snooze', ids[1], '2h', '--reason', 'demo at 3pm'], ctx)).toBe(0);
    expect(out.join('\n')).toContain('snoozed until');
    const tags = (await c.ec2.send(new DescribeInstancesCommand({ InstanceIds: [ids[1]] }))).Reservations![0].Instances![0].Tags!;
    expect(tags.find((t) => t.Key === SNOOZE_TAG)?.Value).toMatch(new RegExp(`^until=${Math.floor((now + 2 * HOUR) / 1000)};by=`));
    const events = await drain(c, queueUrl);
    expect(events).toEqual([
      expect.objectContaining({
        type: 'snoozed',
        instanceId: ids[1],
        source: 'cli',
        detail: expect.objectContaining({ reason: 'demo at 3pm' }),
      }),
    ]);
  });

  it('extend adds to the existing extension and announces it; bad amounts are usage errors', async () => {
    const { ids, now, queueUrl, c } = await setup();
    const bad = context(now);
    expect(await run(['extend', ids[0], 'lifetime', 'soon', '--reason', 'x'], bad.ctx)).toBe(2);
    expect(bad.err.join('\n')).toMatch(/amount 'soon'/);
    expect(await run(['extend', ids[0], 'lifetime', '1d', '--reason', 'release week'], context(now).ctx)).toBe(0);
    expect(await run(['extend', ids[0], 'lifetime', '12h', '--reason', 'one more day'], context(now).ctx)).toBe(0);
    const tags = (await c.ec2.send(new DescribeInstancesCommand({ InstanceIds: [ids[0]] }))).Reservations![0].Instances![0].Tags!;
    expect(tags.find((t) => t.Key === EXTEND_TAG)?.Value).toBe(`lifetime=${36 * 3600}`);
    const events = await drain(c, queueUrl);
    expect(events.map((e) => e.type)).toEqual(['extended', 'extended']);
    expect(events[0].severity).toBe('warning');
    // The status now shows the extended limit.
    const json = context(now);
    await run(['status', '--policy', 'dev-boxes', '--json'], json.ctx);
    expect(JSON.parse(json.out.join('')).instances.find((r: { instanceId: string }) => r.instanceId === ids[0]).lifetimeLeft).toBe('3d 1h');
  });

  it('refuses to snooze or extend when the change cannot be announced, and changes nothing', async () => {
    const { ids, now, c } = await setup();
    await c.ssm.send(new DeleteParameterCommand({ Name: topicParameterName('dev-boxes') }));
    const { ctx, err } = context(now);
    expect(await run(['extend', ids[0], 'spend', '10', '--reason', 'budget approved'], ctx)).toBe(3);
    expect(err.join('\n')).toMatch(/could not be announced; nothing was changed/);
    const tags = (await c.ec2.send(new DescribeInstancesCommand({ InstanceIds: [ids[0]] }))).Reservations![0].Instances![0].Tags!;
    expect(tags.find((t) => t.Key === EXTEND_TAG)).toBeUndefined();
  });

  it('events prints the events of a queue subscribed to the topic, as JSON lines with --json', async () => {
    const { ids, now, queueUrl } = await setup();
    await run(['snooze', ids[1], '30m', '--reason', 'lunch'], context(now).ctx);
    const { ctx, out } = context(now);
    expect(await run(['events', '--queue-url', queueUrl, '--json', '--wait', '1s'], ctx)).toBe(0);
    expect(out.map((l) => JSON.parse(l).type)).toEqual(['snoozed']);
  });

  it('report sums running hours, spend and money saved per policy', async () => {
    const { now } = await setup();
    const { ctx, out } = context(now);
    expect(await run(['report', '--json'], ctx)).toBe(0);
    const r = JSON.parse(out.join('\n'));
    expect(r.policies).toEqual([expect.objectContaining({ policy: 'dev-boxes', instances: 2, actions: 0 })]);
    expect(r.policies[0].spendUsd).toBeCloseTo(13, 1);
  });

  it('unknown instances, unmanaged instances and unknown commands have distinct exit codes', async () => {
    const { other, now } = await setup();
    const a = context(now);
    expect(await run(['explain', other], a.ctx)).toBe(3);
    expect(a.err.join('')).toMatch(/not self-managed/);
    const b = context(now);
    expect(await run(['explain', 'not-an-id'], b.ctx)).toBe(2);
    const c2 = context(now);
    expect(await run(['frobnicate'], c2.ctx)).toBe(2);
  });
});
