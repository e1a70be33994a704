/**
 * The agent's lean AWS client against moto with authentication ON: every call below is
 * signature-checked by moto, an independent SigV4 implementation (botocore's).
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { DescribeInstancesCommand, EC2Client, RunInstancesCommand } from '@aws-sdk/client-ec2';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import {
  type AwsClientOptions,
  AwsHttpError,
  createAwsClient,
  type HttpRequest,
  type HttpResponse,
  type HttpTransport,
  nodeHttpTransport,
} from '../../lambda-agent/adapters/agent/aws-http';
import type { Credentials } from '../../lambda-agent/adapters/agent/sigv4';
import { createImdsClient } from '../../lambda-agent/adapters/agent/imds';
import { startFakeImds } from '../support/fake-imds';
import { useMoto } from '../support/moto';

const moto = useMoto({ auth: true });

const sdk = () => moto.sdkConfig();

function agentClient(over: Partial<AwsClientOptions> = {}) {
  return createAwsClient({ region: moto.region, endpoint: moto.endpoint, credentials: async () => moto.credentials, ...over });
}

async function runInstances(count: number): Promise<string[]> {
  const ec2 = new EC2Client(sdk());
  const out = await ec2.send(
    new RunInstancesCommand({ ImageId: 'ami-12c6146b', InstanceType: 't3.micro', MinCount: count, MaxCount: count }),
  );
  return out.Instances!.map((i) => i.InstanceId!);
}

async function describe1(id: string) {
  const out = await new EC2Client(sdk()).send(new DescribeInstancesCommand({ InstanceIds: [id] }));
  return out.Reservations![0].Instances![0];
}

const xmlError = (code: string, status = 400): HttpResponse => ({
  status,
  headers: {},
  body: Buffer.from(
    `<?xml version="1.0"?><Response><Errors><Error><Code>${code}</Code><Message>slow down</Message></Error></Errors><RequestID>r-1</RequestID></Response>`,
  ),
});

describe('signing, judged by moto with authentication on', () => {
  it('succeeds with the right secret, for user and role-session credentials', async () => {
    const [id] = await runInstances(1);
    expect(await agentClient().ec2('DescribeInstances', { 'InstanceId.1': id })).toContain(`<instanceId>${id}</instanceId>`);
    const session = agentClient({ credentials: async () => moto.sessionCredentials });
    expect(moto.sessionCredentials.sessionToken).toBeTruthy();
    expect(await session.ec2('DescribeInstances', { 'InstanceId.1': id })).toContain(`<instanceId>${id}</instanceId>`);
  });

  it.each<[string, () => Credentials, string]>([
    ['a wrong secret', () => ({ ...moto.credentials, secretAccessKey: moto.credentials.secretAccessKey + 'x' }), 'AuthFailure'],
    ['an unknown access key', () => ({ ...moto.credentials, accessKeyId: 'AKIAUNKNOWN000000000' }), 'AuthFailure'],
    ['a wrong session token', () => ({ ...moto.sessionCredentials, sessionToken: 'forged' }), 'AuthFailure'],
  ])('fails when signed with %s, without retrying', async (_name, credentials, code) => {
    let calls = 0;
    const client = agentClient({ credentials: async () => (calls++, credentials()), sleep: async () => {} });
    const error = await client.ec2('DescribeInstances').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsHttpError);
    expect(error).toMatchObject({ name: 'AwsHttpError', code, retryable: false, attempts: 1 });
    expect((error as AwsHttpError).statusCode).toBeGreaterThanOrEqual(400);
    expect(calls).toBe(1);
  });

  it('fails with SignatureDoesNotMatch on SNS, SSM and S3 when the secret is wrong', async () => {
    const client = agentClient({ credentials: async () => ({ ...moto.credentials, secretAccessKey: 'wrong' }) });
    await expect(client.snsPublish({ topicArn: `arn:aws:sns:us-east-1:${moto.accountId}:t`, message: 'm' })).rejects.toMatchObject({
      code: 'SignatureDoesNotMatch',
    });
    await expect(client.ssmGetParameter('/p')).rejects.toMatchObject({ code: 'SignatureDoesNotMatch', statusCode: 403 });
    await expect(client.s3GetObject('b', 'k')).rejects.toMatchObject({ code: 'SignatureDoesNotMatch', statusCode: 403 });
  });
});

describe('ec2', () => {
  it('starts each test from an empty account with fresh credentials', async () => {
    const before = moto.credentials.accessKeyId;
    await runInstances(1);
    await moto.reset();
    expect(moto.credentials.accessKeyId).not.toBe(before);
    expect(await agentClient().ec2('DescribeInstances')).not.toContain('<instanceId>');
  });

  it('stops, tags, reboots and terminates instances created by the SDK', async () => {
    const ids = await runInstances(2);
    const client = agentClient();

    const stopped = await client.stopInstances(ids, { hibernate: false });
    expect(stopped.map((s) => s.instanceId).sort()).toEqual([...ids].sort());
    expect(stopped[0]).toMatchObject({ previousState: 'running', currentState: expect.stringMatching(/stopping|stopped/) });
    expect((await describe1(ids[0])).State?.Name).toBe('stopped');

    await client.createTags(ids, { 'smvm:state': 'st=stopped;since=1764150000', Name: 'café & <b> "x"', empty: '' });
    const tags = Object.fromEntries((await describe1(ids[1])).Tags!.map((t) => [t.Key, t.Value]));
    expect(tags).toEqual({ 'smvm:state': 'st=stopped;since=1764150000', Name: 'café & <b> "x"', empty: '' });

    await expect(client.rebootInstances([ids[0]])).resolves.toBeUndefined();

    const terminated = await client.terminateInstances([ids[1]]);
    expect(terminated).toEqual([
      { instanceId: ids[1], previousState: 'stopped', currentState: expect.stringMatching(/shutting-down|terminated/) },
    ]);
    expect((await describe1(ids[1])).State?.Name).toBe('terminated');
  });

  it('hibernates when asked', async () => {
    const [id] = await runInstances(1);
    let body = '';
    const spy: HttpTransport = (req) => ((body = req.body ?? ''), nodeHttpTransport(req));
    await agentClient({ fetchImpl: spy }).stopInstances([id], { hibernate: true });
    expect(body).toBe(`Action=StopInstances&Version=2016-11-15&InstanceId.1=${id}&Hibernate=true`);
    expect((await describe1(id)).State?.Name).toBe('stopped');
  });

  it('makes no call for an empty id list', async () => {
    const fetchImpl = jest.fn<Promise<HttpResponse>, [HttpRequest]>();
    const client = agentClient({ fetchImpl });
    expect(await client.stopInstances([])).toEqual([]);
    expect(await client.terminateInstances([])).toEqual([]);
    await client.rebootInstances([]);
    await client.createTags([], { a: 'b' });
    await client.createTags(['i-1'], {});
    expect(fetchImpl).not.toHaveBeenCalled();
  });

  it('fails with the EC2 error code and message for an unknown instance', async () => {
    const error = await agentClient()
      .stopInstances(['i-0000000000000dead'])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsHttpError);
    expect(error).toMatchObject({ code: 'InvalidInstanceID.NotFound', statusCode: 400, retryable: false, operation: 'ec2 StopInstances' });
    expect((error as Error).message).toMatch(/^ec2 StopInstances: InvalidInstanceID\.NotFound \(HTTP 400\): .*i-0000000000000dead/);
  });
});

describe('ssm', () => {
  it('returns the value of String and SecureString parameters', async () => {
    const ssm = new SSMClient(sdk());
    const value = JSON.stringify({ rules: [{ name: 'idle', idleCpuPercent: 5 }], note: 'é 😀 <&>' });
    await ssm.send(new PutParameterCommand({ Name: '/smvm/demo/policy', Value: value, Type: 'String' }));
    await ssm.send(new PutParameterCommand({ Name: '/smvm/demo/secret', Value: 's3cr3t', Type: 'SecureString' }));
    const client = agentClient();
    expect(await client.ssmGetParameter('/smvm/demo/policy')).toBe(value);
    expect(await client.ssmGetParameter('/smvm/demo/secret')).toBe('s3cr3t');
  });

  it('fails with ParameterNotFound for a missing parameter', async () => {
    await expect(agentClient().ssmGetParameter('/smvm/none')).rejects.toMatchObject({
      name: 'AwsHttpError',
      code: 'ParameterNotFound',
      statusCode: 400,
      retryable: false,
    });
  });
});

describe('sns', () => {
  async function topicWithQueue(filterPolicy?: object) {
    const sns = new SNSClient(sdk());
    const sqs = new SQSClient(sdk());
    const { TopicArn } = await sns.send(new CreateTopicCommand({ Name: 'smvm-events' }));
    const { QueueUrl } = await sqs.send(new CreateQueueCommand({ QueueName: `smvm-events-${Date.now()}` }));
    const attrs = await sqs.send(new GetQueueAttributesCommand({ QueueUrl, AttributeNames: ['QueueArn'] }));
    await sns.send(
      new SubscribeCommand({
        TopicArn,
        Protocol: 'sqs',
        Endpoint: attrs.Attributes!.QueueArn,
        Attributes: { RawMessageDelivery: 'true', ...(filterPolicy ? { FilterPolicy: JSON.stringify(filterPolicy) } : {}) },
      }),
    );
    const receive = async () =>
      (await sqs.send(new ReceiveMessageCommand({ QueueUrl, MessageAttributeNames: ['All'], MaxNumberOfMessages: 10, WaitTimeSeconds: 0 })))
        .Messages ?? [];
    return { topicArn: TopicArn!, receive };
  }

  it('publishes a message with String attributes that a raw SQS subscriber receives', async () => {
    const { topicArn, receive } = await topicWithQueue();
    const message = JSON.stringify({ type: 'decision.made', schemaVersion: 1, note: 'é & <x> = +%' });
    const messageId = await agentClient().snsPublish({
      topicArn,
      message,
      subject: 'smvm: decision made',
      attributes: { type: 'decision.made', instance_id: 'i-0123456789abcdef0', 'policy-hash': 'a+b=c' },
    });
    expect(messageId).toMatch(/^[0-9a-f-]{36}$/);
    const [received] = await receive();
    expect(received.Body).toBe(message);
    expect(received.MessageAttributes).toEqual({
      type: { DataType: 'String', StringValue: 'decision.made' },
      instance_id: { DataType: 'String', StringValue: 'i-0123456789abcdef0' },
      'policy-hash': { DataType: 'String', StringValue: 'a+b=c' },
    });
  });

  it('sends attributes that subscription filter policies match', async () => {
    const { topicArn, receive } = await topicWithQueue({ type: ['action.taken'] });
    const client = agentClient();
    await client.snsPublish({ topicArn, message: 'dropped', attributes: { type: 'decision.made' } });
    await client.snsPublish({ topicArn, message: 'kept', attributes: { type: 'action.taken' } });
    expect((await receive()).map((m) => m.Body)).toEqual(['kept']);
  });

  it('fails with NotFound for an unknown topic', async () => {
    await expect(
      agentClient().snsPublish({ topicArn: `arn:aws:sns:us-east-1:${moto.accountId}:nope`, message: 'm' }),
    ).rejects.toMatchObject({
      code: 'NotFound',
      statusCode: 404,
    });
  });
});

describe('s3', () => {
  it('gets an object byte for byte, with a key that needs encoding', async () => {
    const s3 = new S3Client({ ...sdk(), forcePathStyle: true });
    await s3.send(new CreateBucketCommand({ Bucket: 'smvm-artifacts' }));
    const bytes = Buffer.from(Array.from({ length: 70_000 }, (_, i) => (i * 7) % 256));
    // moto's S3 signature check mishandles most escaped characters in keys (it refuses the
    // official SDK too); the signer's encoding of those is pinned against @smithy/signature-v4
    // in the unit tests.
    const key = 'agent/v1.2/a b~c.js';
    await s3.send(new PutObjectCommand({ Bucket: 'smvm-artifacts', Key: key, Body: bytes }));
    const got = await agentClient().s3GetObject('smvm-artifacts', key);
    expect(Buffer.isBuffer(got)).toBe(true);
    expect(got.equals(bytes)).toBe(true);
  });

  it('fails with NoSuchKey for a missing object', async () => {
    await new S3Client({ ...sdk(), forcePathStyle: true }).send(new CreateBucketCommand({ Bucket: 'smvm-artifacts' }));
    await expect(agentClient().s3GetObject('smvm-artifacts', 'missing.js')).rejects.toMatchObject({ code: 'NoSuchKey', statusCode: 404 });
  });
});

describe('with instance metadata', () => {
  it('signs with role credentials from IMDS and sees its own tags through IMDS', async () => {
    const [id] = await runInstances(1);
    const fake = await startFakeImds({
      instanceId: id,
      credentials: () => ({
        ...moto.sessionCredentials,
        sessionToken: moto.sessionCredentials.sessionToken!,
        expiration: new Date(Date.now() + 3600_000),
      }),
      tags: async () => Object.fromEntries(((await describe1(id)).Tags ?? []).map((t) => [t.Key!, t.Value!])),
    });
    try {
      const imds = createImdsClient({ endpoint: fake.endpoint });
      const client = createAwsClient({ region: await imds.region(), endpoint: moto.endpoint, credentials: () => imds.credentials() });
      expect(await imds.tags()).toEqual({ tags: {}, enabled: true });
      await client.createTags([await imds.instanceId()], { 'smvm:heartbeat': 'at=1764150000', Name: 'agent box' });
      expect(await imds.tags()).toEqual({ tags: { 'smvm:heartbeat': 'at=1764150000', Name: 'agent box' }, enabled: true });
      expect(fake.tokensIssued).toBe(1);
    } finally {
      await fake.close();
    }
  });
});

describe('retries', () => {
  /** A transport that answers the first `n` calls with `fail` and then goes to moto. */
  function flaky(n: number, fail: () => HttpResponse | Promise<HttpResponse>) {
    const calls: HttpRequest[] = [];
    const fetchImpl: HttpTransport = async (req) => (calls.push(req), calls.length <= n ? fail() : nodeHttpTransport(req));
    return { calls, fetchImpl };
  }

  it('retries throttling with exponential backoff and full jitter, re-signing each attempt', async () => {
    const [id] = await runInstances(1);
    const { calls, fetchImpl } = flaky(3, () => xmlError('RequestLimitExceeded', 503));
    const sleeps: number[] = [];
    let credentialCalls = 0;
    const client = agentClient({
      fetchImpl,
      random: () => 0.5,
      sleep: async (ms) => void sleeps.push(ms),
      credentials: async () => (credentialCalls++, moto.credentials),
    });
    await client.createTags([id], { retried: 'yes' });
    expect(calls).toHaveLength(4);
    expect(sleeps).toEqual([50, 100, 200]);
    expect(credentialCalls).toBe(4);
    expect(Object.fromEntries((await describe1(id)).Tags!.map((t) => [t.Key, t.Value]))).toEqual({ retried: 'yes' });
  });

  it.each([
    ['RequestLimitExceeded', 400, true],
    ['Throttling', 400, true],
    ['ThrottlingException', 400, true],
    ['SlowDown', 503, true],
    ['InternalError', 500, true],
    ['Whatever', 502, true],
    ['TooManyRequestsException', 429, true],
    ['UnauthorizedOperation', 403, false],
    ['InvalidParameterValue', 400, false],
  ])('treats %s (HTTP %i) as retryable: %s', async (code, status, retryable) => {
    const { calls, fetchImpl } = flaky(99, () => xmlError(code, status));
    const client = agentClient({ fetchImpl, sleep: async () => {} });
    const error = await client.ec2('DescribeInstances').catch((e: unknown) => e);
    expect(error).toMatchObject({ code, statusCode: status, retryable, attempts: retryable ? 4 : 1, requestId: 'r-1' });
    expect(calls).toHaveLength(retryable ? 4 : 1);
  });

  it('caps the backoff and honours maxAttempts', async () => {
    const { calls, fetchImpl } = flaky(99, () => xmlError('Throttling'));
    const sleeps: number[] = [];
    const client = agentClient({
      fetchImpl,
      maxAttempts: 6,
      baseDelayMs: 1000,
      maxDelayMs: 3000,
      random: () => 1,
      sleep: async (ms) => void sleeps.push(ms),
    });
    await expect(client.ec2('DescribeInstances')).rejects.toMatchObject({ attempts: 6 });
    expect(calls).toHaveLength(6);
    expect(sleeps).toEqual([1000, 2000, 3000, 3000, 3000]);
  });

  it('parses JSON errors (SSM throttling) and retries them', async () => {
    await new SSMClient(sdk()).send(new PutParameterCommand({ Name: '/p', Value: 'v', Type: 'String' }));
    const { calls, fetchImpl } = flaky(1, () => ({
      status: 400,
      headers: { 'x-amzn-requestid': 'req-9' },
      body: Buffer.from(JSON.stringify({ __type: 'com.amazonaws.ssm#ThrottlingException', message: 'Rate exceeded' })),
    }));
    expect(await agentClient({ fetchImpl, sleep: async () => {} }).ssmGetParameter('/p')).toBe('v');
    expect(calls).toHaveLength(2);
    expect(calls[1].headers['x-amz-target']).toBe('AmazonSSM.GetParameter');
  });

  it('retries network errors and reports them with status 0', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r));
    const client = agentClient({ endpoint: `http://127.0.0.1:${port}`, sleep: async () => {} });
    const error = await client.ec2('DescribeInstances').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'NetworkingError', statusCode: 0, retryable: true, attempts: 4 });
    expect((error as Error).message).toMatch(/ECONNREFUSED/);
  });

  it('times out a request that gets no answer', async () => {
    const hanging = http.createServer(() => {});
    await new Promise<void>((r) => hanging.listen(0, '127.0.0.1', r));
    try {
      const client = agentClient({
        endpoint: `http://127.0.0.1:${(hanging.address() as AddressInfo).port}`,
        timeoutMs: 100,
        maxAttempts: 2,
        sleep: async () => {},
      });
      const started = Date.now();
      const error = await client.ec2('DescribeInstances').catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'TimeoutError', statusCode: 0, attempts: 2 });
      expect(Date.now() - started).toBeLessThan(2000);
    } finally {
      hanging.closeAllConnections();
      await new Promise((r) => hanging.close(r));
    }
  });
});

describe('requests', () => {
  function capture() {
    const calls: HttpRequest[] = [];
    const fetchImpl: HttpTransport = async (req) => {
      calls.push(req);
      const body = req.headers['x-amz-target'] ? '{"Parameter":{"Value":"v"}}' : '<R><MessageId>m-1</MessageId></R>';
      return { status: 200, headers: {}, body: Buffer.from(body) };
    };
    const client = createAwsClient({
      region: 'eu-west-3',
      credentials: async () => ({ accessKeyId: 'AK', secretAccessKey: 'SK', sessionToken: 'ST' }),
      fetchImpl,
    });
    return { calls, client };
  }

  it('goes to the regional endpoints by default, S3 path-style', async () => {
    const { calls, client } = capture();
    await client.ec2('DescribeInstances');
    await client.ssmGetParameter('/x');
    await client.snsPublish({ topicArn: 'arn', message: 'm' });
    await client.s3GetObject('bucket', 'dir/a b.js');
    expect(calls.map((c) => `${c.method} ${c.url}`)).toEqual([
      'POST https://ec2.eu-west-3.amazonaws.com/',
      'POST https://ssm.eu-west-3.amazonaws.com/',
      'POST https://sns.eu-west-3.amazonaws.com/',
      'GET https://s3.eu-west-3.amazonaws.com/bucket/dir/a%20b.js',
    ]);
    expect(calls.every((c) => c.headers['x-amz-security-token'] === 'ST' && c.timeoutMs === 5000)).toBe(true);
    expect(calls[0].headers.authorization).toContain('/eu-west-3/ec2/aws4_request');
    expect(calls[3].headers['x-amz-content-sha256']).toMatch(/^[0-9a-f]{64}$/);
    expect(calls[0].headers['x-amz-content-sha256']).toBeUndefined();
  });

  it('encodes Query API bodies strictly and numbers repeated parameters from 1', async () => {
    const { calls, client } = capture();
    await client.createTags(['i-1', 'i-2'], { 'k 1': 'v&1', k2: 'é*' });
    expect(calls[0].body).toBe(
      'Action=CreateTags&Version=2016-11-15&ResourceId.1=i-1&ResourceId.2=i-2&Tag.1.Key=k+1&Tag.1.Value=v%261&Tag.2.Key=k2&Tag.2.Value=%C3%A9%2A',
    );
    await client.snsPublish({ topicArn: 'arn:t', message: 'hi there', subject: 's', attributes: { a: '1' } });
    expect(calls[1].body).toBe(
      'Action=Publish&Version=2010-03-31&TopicArn=arn%3At&Message=hi+there&Subject=s' +
        '&MessageAttributes.entry.1.Name=a&MessageAttributes.entry.1.Value.DataType=String&MessageAttributes.entry.1.Value.StringValue=1',
    );
  });

  it.each<[string, HttpResponse, object, RegExp]>([
    [
      'an XML error with entities',
      {
        status: 400,
        headers: {},
        body: Buffer.from(
          '<Response><Errors><Error><Code>Bad</Code><Message>&lt;x&gt; &amp; &#233;&#x1F600; &#99999999; &nope;</Message></Error></Errors></Response>',
        ),
      },
      { code: 'Bad', retryable: false },
      /: Bad \(HTTP 400\): <x> & é😀 &#99999999; &nope;$/,
    ],
    [
      'an HTML gateway error',
      { status: 502, headers: {}, body: Buffer.from('<html><body>Bad Gateway</body></html>') },
      { code: 'UnknownError', retryable: true, attempts: 4 },
      /UnknownError \(HTTP 502\): "<html><body>Bad Gateway/,
    ],
    [
      'a JSON error named only in x-amzn-ErrorType',
      {
        status: 400,
        headers: { 'x-amzn-errortype': 'AccessDeniedException:http://internal.amazon.com/' },
        body: Buffer.from('{"message":"no"}'),
      },
      { code: 'AccessDeniedException', retryable: false, attempts: 1 },
      /AccessDeniedException \(HTTP 400\): no$/,
    ],
    [
      'a bare 429',
      { status: 429, headers: {}, body: Buffer.alloc(0) },
      { code: 'TooManyRequestsException', retryable: true },
      /TooManyRequestsException \(HTTP 429\): ""$/,
    ],
  ])('reads the code and message of %s', async (_name, response, expected, message) => {
    const client = createAwsClient({
      region: 'eu-west-3',
      credentials: async () => ({ accessKeyId: 'AK', secretAccessKey: 'SK' }),
      fetchImpl: async () => response,
      sleep: async () => {},
    });
    const error = await client.ssmGetParameter('/x').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AwsHttpError);
    expect(error).toMatchObject(expected);
    expect((error as Error).message).toMatch(message);
  });

  it('fails with InvalidResponse when SSM answers without a value', async () => {
    const client = createAwsClient({
      region: 'eu-west-3',
      credentials: async () => ({ accessKeyId: 'AK', secretAccessKey: 'SK' }),
      fetchImpl: async () => ({ status: 200, headers: {}, body: Buffer.from('{}') }),
    });
    await expect(client.ssmGetParameter('/x')).rejects.toThrow("ssm GetParameter: InvalidResponse (HTTP 200): no Parameter.Value for '/x'");
  });
});
