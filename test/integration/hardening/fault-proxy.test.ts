/**
 * The fault proxy itself, against moto: each fault reaches the clients as the real
 * service's error would (judged by the AWS SDK's and the agent's own error parsing),
 * `after` faults take effect upstream, faults are reproducible from the seed, and the
 * EC2 fidelity corrections hold.
 */
import {
  CreateTagsCommand,
  DescribeInstancesCommand,
  EC2Client,
  RunInstancesCommand,
  StartInstancesCommand,
  StopInstancesCommand,
  TerminateInstancesCommand,
} from '@aws-sdk/client-ec2';
import { CreateTopicCommand, PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { GetParameterCommand, PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { AwsHttpError, createAwsClient } from '../../../lambda-agent/adapters/agent/aws-http';
import { startFaultProxy, type FaultProxy, type FaultRule } from '../../support/fault-proxy';
import { FAKE_CREDENTIALS, useMoto } from '../../support/moto';

const moto = useMoto();
let proxy: FaultProxy;
let now = Date.parse('2031-01-01T00:00:00Z');

beforeEach(async () => {
  now = Date.parse('2031-01-01T00:00:00Z');
  proxy = await startFaultProxy({ target: moto.endpoint, seed: 7, clock: () => now, ec2Fidelity: true, hangMs: 5_000 });
});
afterEach(() => proxy.close());

const config = (accessKeyId = 'test-caller', requestTimeout = 5_000) => ({
  region: moto.region,
  endpoint: proxy.endpoint,
  credentials: { accessKeyId, secretAccessKey: 'x' },
  maxAttempts: 1,
  requestHandler: { requestTimeout, throwOnRequestTimeout: true },
});
const direct = () => new EC2Client(moto.sdkConfig());

async function launch(n = 1, tags: Record<string, string> = { 'smvm:policy': 'p' }): Promise<string[]> {
  const out = await new EC2Client(config('operator')).send(
    new RunInstancesCommand({
      ImageId: 'ami-12c6146b',
      MinCount: n,
      MaxCount: n,
      TagSpecifications: [{ ResourceType: 'instance', Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })) }],
    }),
  );
  return out.Instances!.map((i) => i.InstanceId!);
}

async function stateOf(id: string): Promise<string | undefined> {
  const out = await direct().send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  return out.Reservations?.[0]?.Instances?.[0]?.State?.Name;
}

describe('fault formats, as the clients parse them', () => {
  it('answers EC2 throttling with HTTP 503 RequestLimitExceeded in EC2 XML', async () => {
    proxy.script({ service: 'ec2', action: 'DescribeInstances', kind: 'throttle' });
    const e = await new EC2Client(config()).send(new DescribeInstancesCommand({})).catch((x: unknown) => x);
    expect(e).toMatchObject({ name: 'RequestLimitExceeded', $metadata: { httpStatusCode: 503 } });
    const lean = createAwsClient({
      region: moto.region,
      endpoint: proxy.endpoint,
      credentials: async () => FAKE_CREDENTIALS,
      maxAttempts: 1,
    });
    proxy.script({ service: 'ec2', kind: 'throttle' });
    const e2 = await lean.ec2('DescribeInstances').catch((x: unknown) => x);
    expect(e2).toBeInstanceOf(AwsHttpError);
    expect(e2).toMatchObject({ code: 'RequestLimitExceeded', statusCode: 503, retryable: true });
  });

  it('answers SNS throttling with Throttling in the query API error format', async () => {
    const sns = new SNSClient(config());
    const { TopicArn } = await new SNSClient(moto.sdkConfig()).send(new CreateTopicCommand({ Name: 't' }));
    proxy.script({ service: 'sns', action: 'Publish', kind: 'throttle' });
    const e = await sns.send(new PublishCommand({ TopicArn, Message: '{}' })).catch((x: unknown) => x);
    expect(e).toMatchObject({ name: 'Throttling', $metadata: { httpStatusCode: 400 } });
    const lean = createAwsClient({
      region: moto.region,
      endpoint: proxy.endpoint,
      credentials: async () => FAKE_CREDENTIALS,
      maxAttempts: 1,
    });
    proxy.script({ service: 'sns', kind: 'throttle' });
    await expect(lean.snsPublish({ topicArn: TopicArn!, message: '{}' })).rejects.toMatchObject({ code: 'Throttling', retryable: true });
  });

  it('answers JSON-protocol throttling (SSM) with ThrottlingException', async () => {
    await new SSMClient(moto.sdkConfig()).send(new PutParameterCommand({ Name: '/p', Value: 'v', Type: 'String' }));
    proxy.script({ service: 'ssm', kind: 'throttle' });
    const e = await new SSMClient(config()).send(new GetParameterCommand({ Name: '/p' })).catch((x: unknown) => x);
    expect(e).toMatchObject({ name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
  });

  it.each([
    ['http500', 'InternalError', 500],
    ['http503', 'Unavailable', 503],
  ] as const)('answers %s in EC2 XML (%s)', async (kind, code, status) => {
    proxy.script({ service: 'ec2', kind });
    const e = await new EC2Client(config()).send(new DescribeInstancesCommand({})).catch((x: unknown) => x);
    expect(e).toMatchObject({ name: code, $metadata: { httpStatusCode: status } });
  });

  it('holds a timed-out request until the client gives up, and drops connections', async () => {
    proxy.script({ service: 'ec2', kind: 'timeout' });
    const started = Date.now();
    const e = await new EC2Client(config('test-caller', 400)).send(new DescribeInstancesCommand({})).catch((x: unknown) => x);
    expect(e).toMatchObject({ name: 'TimeoutError' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(350);
    proxy.script({ service: 'ec2', kind: 'drop' });
    const d = await new EC2Client(config()).send(new DescribeInstancesCommand({})).catch((x: unknown) => x);
    expect(d).toBeInstanceOf(Error);
    expect(String((d as NodeJS.ErrnoException).code ?? (d as Error).message)).toMatch(/ECONNRESET|socket hang up/);
    expect(proxy.faults).toMatchObject({ timeout: 1, drop: 1 });
  });

  it('delays slow answers and then answers normally', async () => {
    proxy.script({ service: 'ec2', kind: 'slow', delayMs: 300 });
    const started = Date.now();
    await new EC2Client(config()).send(new DescribeInstancesCommand({}));
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });
});

describe('faults before and after forwarding', () => {
  it('fails a stop before forwarding: the instance keeps running', async () => {
    const [id] = await launch();
    proxy.script({ service: 'ec2', action: 'StopInstances', kind: 'http500', phase: 'before' });
    await expect(new EC2Client(config('watchdog')).send(new StopInstancesCommand({ InstanceIds: [id] }))).rejects.toMatchObject({
      name: 'InternalError',
    });
    expect(await stateOf(id)).toBe('running');
    expect(proxy.calls.find((c) => c.action === 'StopInstances')).toMatchObject({
      forwarded: false,
      fault: 'http500',
      phase: 'before',
      instanceIds: [id],
    });
  });

  it('fails a stop after forwarding: the instance is stopped although the client saw an error', async () => {
    const [id] = await launch();
    proxy.script({ service: 'ec2', action: 'StopInstances', kind: 'throttle', phase: 'after' });
    await expect(new EC2Client(config('watchdog')).send(new StopInstancesCommand({ InstanceIds: [id] }))).rejects.toMatchObject({
      name: 'RequestLimitExceeded',
    });
    expect(await stateOf(id)).toBe('stopped');
    expect(proxy.calls.find((c) => c.action === 'StopInstances')).toMatchObject({
      forwarded: true,
      upstreamStatus: 200,
      status: 503,
      principal: 'watchdog',
    });
    expect(proxy.transitions.filter((t) => t.to === 'stopped')).toEqual([
      expect.objectContaining({ instanceId: id, principal: 'watchdog', time: now }),
    ]);
  });

  it('records tags, published events and callers', async () => {
    const [id] = await launch();
    await new EC2Client(config('agent-x')).send(
      new CreateTagsCommand({ Resources: [id], Tags: [{ Key: 'smvm:heartbeat', Value: 't=1' }] }),
    );
    const { TopicArn } = await new SNSClient(moto.sdkConfig()).send(new CreateTopicCommand({ Name: 't' }));
    await new SNSClient(config('agent-x')).send(
      new PublishCommand({ TopicArn, Message: JSON.stringify({ id: 'e1', type: 'stopped', instanceId: id }) }),
    );
    expect(proxy.calls.find((c) => c.action === 'CreateTags')).toMatchObject({
      service: 'ec2',
      principal: 'agent-x',
      instanceIds: [id],
      tags: { 'smvm:heartbeat': 't=1' },
    });
    expect(proxy.calls.find((c) => c.action === 'Publish')).toMatchObject({
      service: 'sns',
      event: { id: 'e1', type: 'stopped', instanceId: id },
    });
  });
});

describe('rates and seeds', () => {
  const rules: FaultRule[] = [
    { service: 'ec2', action: 'DescribeInstances', kind: 'throttle', rate: 0.3 },
    { service: 'ec2', kind: 'http500', rate: 0.2 },
  ];

  async function pattern(seed: number): Promise<string> {
    const p = await startFaultProxy({ target: moto.endpoint, seed, rules });
    try {
      const ec2 = new EC2Client({ ...config(), endpoint: p.endpoint });
      for (let i = 0; i < 40; i++) await ec2.send(new DescribeInstancesCommand({})).catch(() => undefined);
      return p.calls.map((c) => c.fault?.[0] ?? '.').join('');
    } finally {
      await p.close();
    }
  }

  it('injects at about the configured rates, reproducibly for a seed', async () => {
    const a = await pattern(11);
    expect(await pattern(11)).toBe(a);
    expect(await pattern(12)).not.toBe(a);
    const faulted = [...a].filter((c) => c !== '.').length;
    // 1 - 0.7 * 0.8 = 44 % expected; 40 draws.
    expect(faulted).toBeGreaterThan(6);
    expect(faulted).toBeLessThan(30);
  });

  it('faults only the principals a rule names', async () => {
    proxy.setRules([{ principal: /^agent-/, kind: 'http503', rate: 1 }]);
    await expect(new EC2Client(config('agent-1')).send(new DescribeInstancesCommand({}))).rejects.toMatchObject({ name: 'Unavailable' });
    await expect(new EC2Client(config('operator')).send(new DescribeInstancesCommand({}))).resolves.toBeDefined();
  });
});

describe('EC2 fidelity', () => {
  it("reports launch and stop times on the test's clock, and moves LaunchTime on a start", async () => {
    const [id] = await launch();
    now += 3_600_000;
    await new EC2Client(config('operator')).send(new StopInstancesCommand({ InstanceIds: [id] }));
    const ec2 = new EC2Client(config('operator'));
    const i = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0].Instances![0];
    expect(i.LaunchTime?.toISOString()).toBe('2031-01-01T00:00:00.000Z');
    expect(i.StateTransitionReason).toBe('User initiated (2031-01-01 01:00:00 GMT)');
    now += 3_600_000;
    await ec2.send(new StartInstancesCommand({ InstanceIds: [id] }));
    const j = (await ec2.send(new DescribeInstancesCommand({ InstanceIds: [id] }))).Reservations![0].Instances![0];
    expect(j.LaunchTime?.toISOString()).toBe('2031-01-01T02:00:00.000Z');
    expect(proxy.transitions.map((t) => [t.to, t.time - Date.parse('2031-01-01T00:00:00Z')])).toEqual([
      ['running', 0],
      ['stopped', 3_600_000],
      ['running', 7_200_000],
    ]);
  });

  it('refuses to stop a terminated instance, as EC2 does, where moto would revive it', async () => {
    const [id] = await launch();
    await new EC2Client(config('person')).send(new TerminateInstancesCommand({ InstanceIds: [id] }));
    await expect(new EC2Client(config('watchdog')).send(new StopInstancesCommand({ InstanceIds: [id] }))).rejects.toMatchObject({
      name: 'IncorrectInstanceState',
    });
    expect(await stateOf(id)).toBe('terminated');
    expect(proxy.transitions.map((t) => [t.to, t.principal])).toEqual([
      ['running', 'operator'],
      ['terminated', 'person'],
    ]);
  });
});
