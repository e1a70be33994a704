import * as http from 'node:http';
import { createImdsClient, type ImdsClientOptions, ImdsError } from '../../../../lambda-agent/adapters/agent/imds';
import { type FakeImds, type FakeImdsOptions, type FakeRoleCredentials, startFakeImds } from '../../../support/fake-imds';

const INSTANCE_ID = 'i-0123456789abcdef0';
const NOW = Date.parse('2026-11-26T12:00:00Z');
const MIN = 60_000;

let fake: FakeImds | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

async function setup(fakeOpts: Partial<FakeImdsOptions> = {}, clientOpts: ImdsClientOptions = {}) {
  fake = await startFakeImds({ instanceId: INSTANCE_ID, region: 'eu-north-1', ...fakeOpts });
  const client = createImdsClient({ endpoint: fake.endpoint, retryDelayMs: 1, ...clientOpts });
  return { fake, client };
}

function raw(url: string, method: string, headers: Record<string, string> = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

const creds = (n: number, expiration: number): FakeRoleCredentials => ({
  accessKeyId: `ASIA${n}`,
  secretAccessKey: `secret-${n}`,
  sessionToken: `token-${n}`,
  expiration: new Date(expiration),
});

describe('fake IMDS', () => {
  it('refuses GETs without a token and token PUTs without a valid TTL header', async () => {
    const { fake } = await setup();
    expect((await raw(`${fake.endpoint}/latest/meta-data/instance-id`, 'GET')).status).toBe(401);
    expect((await raw(`${fake.endpoint}/latest/api/token`, 'PUT')).status).toBe(400);
    expect((await raw(`${fake.endpoint}/latest/api/token`, 'PUT', { 'x-aws-ec2-metadata-token-ttl-seconds': '21601' })).status).toBe(400);
    const token = await raw(`${fake.endpoint}/latest/api/token`, 'PUT', { 'x-aws-ec2-metadata-token-ttl-seconds': '60' });
    expect(token.status).toBe(200);
    const id = await raw(`${fake.endpoint}/latest/meta-data/instance-id`, 'GET', { 'x-aws-ec2-metadata-token': token.body });
    expect(id).toEqual({ status: 200, body: INSTANCE_ID });
    expect((await raw(`${fake.endpoint}/latest/meta-data/instance-id`, 'GET', { 'x-aws-ec2-metadata-token': 'forged' })).status).toBe(401);
  });
});

describe('createImdsClient', () => {
  it('gets a token with the TTL header once, then reads identity with it', async () => {
    const { fake, client } = await setup({}, { tokenTtlSeconds: 900 });
    expect(await client.instanceId()).toBe(INSTANCE_ID);
    expect(await client.region()).toBe('eu-north-1');
    expect(await client.get('/latest/meta-data/instance-type')).toBe('t3.micro');
    expect(fake.tokensIssued).toBe(1);
    expect(fake.requests.map((r) => `${r.method} ${r.path} ${r.authorized}`)).toEqual([
      'PUT /latest/api/token false',
      `GET /latest/meta-data/instance-id true`,
      `GET /latest/meta-data/placement/region true`,
      `GET /latest/meta-data/instance-type true`,
    ]);
  });

  it('fetches a new token once after a 401 and retries the request', async () => {
    const { fake, client } = await setup();
    await client.get('/latest/meta-data/instance-type');
    fake.revokeTokens();
    expect(await client.get('/latest/meta-data/placement/availability-zone')).toBe('eu-north-1a');
    expect(fake.tokensIssued).toBe(2);
    expect(fake.requests.slice(-3).map((r) => `${r.method} ${r.authorized}`)).toEqual(['GET false', 'PUT false', 'GET true']);
  });

  it('renews the token a minute before its TTL runs out', async () => {
    let now = NOW;
    const { fake, client } = await setup({}, { tokenTtlSeconds: 120, now: () => now });
    await client.get('/latest/meta-data/instance-type');
    now += 59_000;
    await client.get('/latest/meta-data/instance-type');
    expect(fake.tokensIssued).toBe(1);
    now += 2_000;
    await client.get('/latest/meta-data/instance-type');
    expect(fake.tokensIssued).toBe(2);
  });

  it('returns the role credentials and caches them until 5 minutes before they expire', async () => {
    let now = NOW;
    let served = creds(1, NOW + 20 * MIN);
    const { fake, client } = await setup({ roleName: 'smvm-agent-role', credentials: () => served }, { now: () => now });
    expect(await client.credentials()).toEqual({
      accessKeyId: 'ASIA1',
      secretAccessKey: 'secret-1',
      sessionToken: 'token-1',
      expiration: new Date(NOW + 20 * MIN),
    });
    served = creds(2, NOW + 80 * MIN);
    now = NOW + 14 * MIN;
    expect((await client.credentials()).accessKeyId).toBe('ASIA1');
    now = NOW + 15 * MIN + 1;
    expect((await client.credentials()).accessKeyId).toBe('ASIA2');
    const credentialGets = fake.requests.filter((r) => r.path === '/latest/meta-data/iam/security-credentials/smvm-agent-role');
    expect(credentialGets).toHaveLength(2);
    // The role name is listed once.
    expect(fake.requests.filter((r) => r.path === '/latest/meta-data/iam/security-credentials/')).toHaveLength(1);
  });

  it('shares one fetch between concurrent callers', async () => {
    const { fake, client } = await setup({ credentials: () => creds(1, Date.now() + 60 * MIN) });
    const all = await Promise.all([client.credentials(), client.credentials(), client.credentials()]);
    expect(new Set(all.map((c) => c.accessKeyId))).toEqual(new Set(['ASIA1']));
    expect(fake.requests.filter((r) => r.path.endsWith('/smvm-agent'))).toHaveLength(1);
  });

  it('keeps using unexpired credentials while a refresh fails, and fails once they expire', async () => {
    let now = NOW;
    const { fake, client } = await setup({ credentials: () => creds(1, NOW + 10 * MIN) }, { now: () => now, retries: 0 });
    await client.credentials();
    fake.setFault(({ path }) => (path.includes('security-credentials') ? { status: 500 } : undefined));
    now = NOW + 9 * MIN;
    expect((await client.credentials()).accessKeyId).toBe('ASIA1');
    now = NOW + 10 * MIN;
    const error = await client.credentials().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImdsError);
    expect(error).toMatchObject({ statusCode: 500, path: '/latest/meta-data/iam/security-credentials/smvm-agent' });
  });

  it('fails with ImdsError when no role is attached', async () => {
    const { client } = await setup({ credentials: () => undefined });
    await expect(client.credentials()).rejects.toThrow(ImdsError);
    await expect(client.credentials()).rejects.toMatchObject({ statusCode: 404 });
  });

  it('fails with ImdsError on credentials that are not usable', async () => {
    const { client } = await setup({ credentials: () => ({ ...creds(1, NOW), sessionToken: undefined }) });
    await expect(client.credentials()).rejects.toThrow(/lack AccessKeyId, SecretAccessKey, Token or Expiration/);
  });

  it('reads the instance tags live, listing then each key', async () => {
    let tags: Record<string, string> = { Name: 'build box', 'smvm:policy': 'ci-runners', 'a=b@c': 'x\ny' };
    const { fake, client } = await setup({ tags: async () => tags });
    expect(await client.tags()).toEqual({ tags, enabled: true });
    tags = { Name: 'renamed' };
    expect(await client.tags()).toEqual({ tags: { Name: 'renamed' }, enabled: true });
    expect(fake.requests.filter((r) => r.path.startsWith('/latest/meta-data/tags/instance'))).toHaveLength(4 + 2);
  });

  it('returns no tags and enabled false when tags in metadata are disabled', async () => {
    const { client } = await setup({ tags: () => undefined });
    expect(await client.tags()).toEqual({ tags: {}, enabled: false });
  });

  it('skips a tag deleted between the listing and the read', async () => {
    const { client } = await setup({
      tags: () => ({ keep: '1', gone: '2' }),
      fault: ({ path }) => (path.endsWith('/gone') ? { status: 404 } : undefined),
    });
    expect(await client.tags()).toEqual({ tags: { keep: '1' }, enabled: true });
  });

  it('retries 5xx answers and slow answers within its budget', async () => {
    let failures = 2;
    const { fake, client } = await setup({}, { retries: 2, timeoutMs: 200 });
    fake.setFault(({ method }) => (method === 'GET' && failures-- > 0 ? { status: 503 } : undefined));
    expect(await client.instanceId()).toBe(INSTANCE_ID);
    fake.setFault(() => ({ delayMs: 50 }));
    expect(await client.region()).toBe('eu-north-1');
  });

  it('gives up after its retries on errors and on hangs', async () => {
    const { fake, client } = await setup({}, { retries: 2, timeoutMs: 100 });
    fake.setFault(({ method }) => (method === 'GET' ? { status: 500 } : undefined));
    await expect(client.instanceId()).rejects.toThrow('imds: /latest/meta-data/instance-id: HTTP 500 (after 3 attempts)');
    fake.setFault(() => ({ hang: true }));
    const started = Date.now();
    const error = await client.region().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImdsError);
    expect(error).toMatchObject({ statusCode: 0, message: expect.stringMatching(/no response within 100 ms \(after 3 attempts\)/) });
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('fails with ImdsError when the token is refused', async () => {
    const { client } = await setup({ fault: ({ method }) => (method === 'PUT' ? { status: 403 } : undefined) });
    await expect(client.instanceId()).rejects.toThrow('imds: /latest/api/token: token refused: HTTP 403');
  });
});
