import { createHash, createHmac, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import fc from 'fast-check';
import { type Credentials, signRequest, type SignRequest, uriEncode } from '../../../../lambda-agent/adapters/agent/sigv4';

/** The Checksum constructor @smithy/signature-v4 wants, over node:crypto (as @smithy/hash-node does). */
type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: SourceData) =>
  typeof d === 'string' ? d : d instanceof ArrayBuffer ? new Uint8Array(d) : new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
class NodeSha256 {
  private readonly hash: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.hash = secret === undefined ? createHash('sha256') : createHmac('sha256', bytes(secret));
  }
  update(data: SourceData): void {
    this.hash.update(bytes(data));
  }
  async digest(): Promise<Uint8Array> {
    return new Uint8Array(this.hash.digest());
  }
  reset(): void {}
}

const DATE = new Date('2026-11-26T10:20:30.456Z');
const CREDS: Credentials = { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY' };
const SESSION: Credentials = { ...CREDS, accessKeyId: 'ASIAEXAMPLE', sessionToken: 'IQoJb3JpZ2luX2VjE//+token=' };

interface Case {
  readonly method: string;
  readonly host: string;
  /** Wire path (already encoded). */
  readonly path: string;
  /** Decoded query, as the SDK's HttpRequest carries it. */
  readonly query?: Record<string, string | string[]>;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly service: string;
  readonly credentials?: Credentials;
  readonly unsigned?: boolean;
}

/** Builds the URL the way a browser would (encodeURIComponent leaves !'()* alone). */
function urlOf(c: Case): string {
  const parts: string[] = [];
  for (const [k, v] of Object.entries(c.query ?? {})) {
    for (const value of Array.isArray(v) ? v : [v]) parts.push(`${encodeURIComponent(k)}=${encodeURIComponent(value)}`);
  }
  return `https://${c.host}${c.path}${parts.length ? '?' + parts.join('&') : ''}`;
}

async function official(c: Case): Promise<Record<string, string>> {
  const s3 = c.service === 's3';
  const signer = new SignatureV4({
    service: c.service,
    region: 'eu-west-3',
    credentials: c.credentials ?? CREDS,
    sha256: NodeSha256,
    uriEscapePath: !s3,
    applyChecksum: s3,
  });
  const headers: Record<string, string> = { host: c.host, ...c.headers };
  if (c.unsigned) headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
  const [hostname, port] = c.host.split(':');
  const signed = await signer.sign(
    {
      method: c.method,
      protocol: 'https:',
      hostname,
      port: port ? Number(port) : undefined,
      path: c.path,
      query: c.query ?? {},
      headers,
      body: c.body,
    },
    { signingDate: DATE },
  );
  return Object.fromEntries(Object.entries(signed.headers).map(([k, v]) => [k.toLowerCase(), String(v)]));
}

function ours(c: Case): Record<string, string> {
  const req: SignRequest = {
    method: c.method,
    url: urlOf(c),
    headers: c.headers,
    body: c.body,
    service: c.service,
    region: 'eu-west-3',
    credentials: c.credentials ?? CREDS,
    date: DATE,
    contentSha256: c.unsigned ? 'UNSIGNED-PAYLOAD' : undefined,
  };
  return signRequest(req);
}

const CASES: [string, Case][] = [
  ['a plain GET', { method: 'GET', host: 'ec2.eu-west-3.amazonaws.com', path: '/', service: 'ec2' }],
  [
    'a GET whose query has reserved, unicode, empty, repeated and mixed-case keys',
    {
      method: 'GET',
      host: 'sns.eu-west-3.amazonaws.com',
      path: '/',
      service: 'sns',
      query: {
        b: 'hello world',
        a: ['2', '10', '1'],
        A: 'upper',
        'a-b': 'prefix of a',
        'key with space': "x*y!z'(t)~",
        slash: 'a/b?c#d&e=f+g%h',
        empty: '',
        unicode: 'é中😀',
      },
    },
  ],
  [
    'an EC2 Query API POST',
    {
      method: 'POST',
      host: 'ec2.eu-west-3.amazonaws.com',
      path: '/',
      service: 'ec2',
      headers: { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' },
      body: 'Action=StopInstances&Version=2016-11-15&InstanceId.1=i-0123456789abcdef0&Hibernate=true',
    },
  ],
  [
    'a JSON 1.1 POST with a session token',
    {
      method: 'POST',
      host: 'ssm.eu-west-3.amazonaws.com',
      path: '/',
      service: 'ssm',
      credentials: SESSION,
      headers: { 'Content-Type': 'application/x-amz-json-1.1', 'X-Amz-Target': 'AmazonSSM.GetParameter' },
      body: JSON.stringify({ Name: '/smvm/p/policy', WithDecryption: true }),
    },
  ],
  [
    'header values with runs of spaces, tabs and line breaks, and a host with a port',
    {
      method: 'POST',
      host: '127.0.0.1:4566',
      path: '/',
      service: 'sns',
      headers: { 'X-Custom': '  a   b\t\tc  ', 'x-multi': 'one\ntwo\r\nthree', 'content-type': 'text/plain' },
      body: 'é',
    },
  ],
  [
    'a path that non-S3 services encode twice',
    {
      method: 'POST',
      host: 'lambda.eu-west-3.amazonaws.com',
      path: '/2015-03-31/functions/a%3Ab%20c/./x/../invocations',
      service: 'lambda',
      body: '{}',
    },
  ],
  [
    'an S3 GET with a signed (empty) payload',
    { method: 'GET', host: 's3.eu-west-3.amazonaws.com', path: '/my-bucket/dir/a%20b%2Bc%21.txt', service: 's3' },
  ],
  [
    'an S3 GET with a session token and a query',
    {
      method: 'GET',
      host: 's3.eu-west-3.amazonaws.com',
      path: '/my-bucket/agent.js',
      service: 's3',
      credentials: SESSION,
      query: { versionId: 'v1+/=' },
    },
  ],
  [
    'an S3 PUT with UNSIGNED-PAYLOAD',
    { method: 'PUT', host: 's3.eu-west-3.amazonaws.com', path: '/my-bucket/k', service: 's3', body: 'not hashed', unsigned: true },
  ],
];

describe('signRequest', () => {
  it.each(CASES)('signs %s exactly as @smithy/signature-v4 does', async (_name, c) => {
    const expected = await official(c);
    const actual = ours(c);
    expect(actual.authorization).toBe(expected.authorization);
    expect(actual).toEqual(expected);
  });

  it('adds the session token, content hash and date headers only when they apply', () => {
    const plain = ours(CASES[2][1]);
    expect(Object.keys(plain).sort()).toEqual(['authorization', 'content-type', 'host', 'x-amz-date']);
    expect(plain['x-amz-date']).toBe('20261126T102030Z');

    const s3 = ours({ ...CASES[7][1] });
    expect(s3['x-amz-security-token']).toBe(SESSION.sessionToken);
    expect(s3['x-amz-content-sha256']).toBe(createHash('sha256').update('').digest('hex'));
    expect(s3.authorization).toContain('SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-security-token,');
  });

  it('matches the get-vanilla vector of the AWS SigV4 test suite', () => {
    const headers = signRequest({
      method: 'GET',
      url: 'https://example.amazonaws.com/',
      service: 'service',
      region: 'us-east-1',
      credentials: CREDS,
      date: new Date('2015-08-30T12:36:00Z'),
    });
    expect(headers.authorization).toBe(
      'AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, ' +
        'Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31',
    );
  });

  it('changes the signature when the secret, body, region or date changes', () => {
    const base = ours(CASES[2][1]).authorization;
    const variants = [
      signRequest({
        method: 'POST',
        url: urlOf(CASES[2][1]),
        headers: CASES[2][1].headers,
        body: CASES[2][1].body,
        service: 'ec2',
        region: 'eu-west-3',
        credentials: { ...CREDS, secretAccessKey: 'wrong' },
        date: DATE,
      }),
      signRequest({
        method: 'POST',
        url: urlOf(CASES[2][1]),
        headers: CASES[2][1].headers,
        body: CASES[2][1].body + 'x',
        service: 'ec2',
        region: 'eu-west-3',
        credentials: CREDS,
        date: DATE,
      }),
      signRequest({
        method: 'POST',
        url: urlOf(CASES[2][1]),
        headers: CASES[2][1].headers,
        body: CASES[2][1].body,
        service: 'ec2',
        region: 'eu-west-1',
        credentials: CREDS,
        date: DATE,
      }),
      signRequest({
        method: 'POST',
        url: urlOf(CASES[2][1]),
        headers: CASES[2][1].headers,
        body: CASES[2][1].body,
        service: 'ec2',
        region: 'eu-west-3',
        credentials: CREDS,
        date: new Date(+DATE + 1000),
      }),
    ].map((h) => h.authorization);
    expect(new Set([base, ...variants]).size).toBe(5);
  });

  it('encodes like RFC 3986 (unreserved characters only left as they are)', () => {
    expect(uriEncode("AZaz09-_.~ !'()*/+=&%é")).toBe('AZaz09-_.~%20%21%27%28%29%2A%2F%2B%3D%26%25%C3%A9');
  });

  it('agrees with @smithy/signature-v4 on random queries, header values, bodies and secrets', async () => {
    const text = fc.string({ unit: 'grapheme', maxLength: 12 });
    const headerValue = fc.string({ unit: fc.constantFrom(...'ab Z9\t-_=;,:/'.split('')), maxLength: 16 });
    await fc.assert(
      fc.asyncProperty(
        fc.dictionary(fc.string({ unit: 'grapheme', minLength: 1, maxLength: 8 }), text, { maxKeys: 5 }),
        fc.dictionary(fc.stringMatching(/^x-[a-z]{1,6}$/), headerValue, { maxKeys: 3 }),
        text,
        fc.string({ minLength: 1, maxLength: 40 }),
        fc.constantFrom('ec2', 's3', 'sns'),
        async (query, headers, body, secret, service) => {
          const c: Case = {
            method: 'POST',
            host: 'h.example.com',
            path: '/',
            service,
            query,
            headers,
            body,
            credentials: { accessKeyId: 'AK', secretAccessKey: secret },
          };
          expect(ours(c).authorization).toBe((await official(c)).authorization);
        },
      ),
      { numRuns: 300 },
    );
  });
});
