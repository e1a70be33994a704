/**
 * Test helper: a loopback instance metadata service (IMDSv2) for one instance.
 *
 * Tokens: PUT /latest/api/token needs `X-aws-ec2-metadata-token-ttl-seconds` (1–21600);
 * every GET needs a valid, unexpired `X-aws-ec2-metadata-token` (401 otherwise). Tags
 * and credentials are read live from callbacks on every request, so a test can point
 * tags at moto (DescribeInstances) and rotate or expire credentials. Faults (status
 * codes, delays, hangs) are injected per request with {@link FakeImds.setFault}.
 */
import { randomBytes } from 'node:crypto';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** Credentials served for the instance profile role. */
export interface FakeRoleCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  readonly expiration: Date;
}

/** What to do with one request instead of (or before) answering it normally. */
export interface FakeImdsFault {
  /** Wait this long before answering. */
  readonly delayMs?: number;
  /** Answer with this status and an empty body. */
  readonly status?: number;
  /** Never answer (the client must time out). */
  readonly hang?: boolean;
}

/** A request the fake received. */
export interface FakeImdsRequest {
  readonly method: string;
  readonly path: string;
  /** Whether a GET carried a valid token (PUTs: false). */
  readonly authorized: boolean;
}

/** Options of {@link startFakeImds}. */
export interface FakeImdsOptions {
  readonly instanceId: string;
  /** @default 'us-east-1' */
  readonly region?: string;
  /** @default 't3.micro' */
  readonly instanceType?: string;
  /** Instance profile role name; `undefined` in `credentials` means no role. @default 'smvm-agent' */
  readonly roleName?: string;
  /** Called on every credentials request. @default - fixed fake keys expiring 6 hours from now */
  readonly credentials?: () => FakeRoleCredentials | undefined;
  /** Called on every tags request; `undefined` = tags in metadata disabled (404). @default - no tags, enabled */
  readonly tags?: () => Promise<Record<string, string> | undefined> | Record<string, string> | undefined;
  /** Called for every request; return a fault to inject. */
  readonly fault?: (req: { method: string; path: string }) => FakeImdsFault | undefined;
}

/** A running fake IMDS. */
export interface FakeImds {
  /** `http://127.0.0.1:<port>` */
  readonly endpoint: string;
  /** Every request received, in order. */
  readonly requests: FakeImdsRequest[];
  /** Tokens issued so far. */
  readonly tokensIssued: number;
  /** Invalidates every token issued so far (GETs with them get 401). */
  revokeTokens(): void;
  /** Replaces the fault injector (`undefined` clears it). */
  setFault(fault: FakeImdsOptions['fault']): void;
  close(): Promise<void>;
}

const MAX_TTL = 21600;

/** Starts the fake on a free loopback port. */
export async function startFakeImds(opts: FakeImdsOptions): Promise<FakeImds> {
  const region = opts.region ?? 'us-east-1';
  const roleName = opts.roleName ?? 'smvm-agent';
  const fixed: FakeRoleCredentials = {
    accessKeyId: 'ASIAFAKEIMDS',
    secretAccessKey: 'fake-imds-secret',
    sessionToken: 'fake-imds-token',
    expiration: new Date(Date.now() + 6 * 3600_000),
  };
  const credentials = opts.credentials ?? (() => fixed);
  const tags = opts.tags ?? (() => ({}));
  const tokens = new Map<string, number>(); // token → expiry (epoch ms)
  const requests: FakeImdsRequest[] = [];
  let fault = opts.fault;
  let tokensIssued = 0;
  const hung = new Set<http.ServerResponse>();

  async function answer(req: http.IncomingMessage, path: string): Promise<[number, string]> {
    if (req.method === 'PUT' && path === '/latest/api/token') {
      const raw = req.headers['x-aws-ec2-metadata-token-ttl-seconds'];
      const ttl = Number(raw);
      if (typeof raw !== 'string' || !/^\d+$/.test(raw) || ttl < 1 || ttl > MAX_TTL) return [400, ''];
      const token = randomBytes(24).toString('base64');
      tokens.set(token, Date.now() + ttl * 1000);
      tokensIssued++;
      return [200, token];
    }
    if (req.method !== 'GET') return [405, ''];
    const meta = '/latest/meta-data/';
    if (!path.startsWith(meta)) return [404, ''];
    const rest = path.slice(meta.length);
    switch (rest) {
      case 'instance-id':
        return [200, opts.instanceId];
      case 'instance-type':
        return [200, opts.instanceType ?? 't3.micro'];
      case 'placement/region':
        return [200, region];
      case 'placement/availability-zone':
        return [200, `${region}a`];
    }
    if (rest === 'iam/security-credentials' || rest === 'iam/security-credentials/') {
      return credentials() ? [200, roleName] : [404, ''];
    }
    if (rest.startsWith('iam/security-credentials/')) {
      const c = credentials();
      if (!c || decodeURIComponent(rest.slice('iam/security-credentials/'.length)) !== roleName) return [404, ''];
      const doc = {
        Code: 'Success',
        LastUpdated: new Date().toISOString().replace(/\.\d{3}Z$/, 'Z'),
        Type: 'AWS-HMAC',
        AccessKeyId: c.accessKeyId,
        SecretAccessKey: c.secretAccessKey,
        Token: c.sessionToken ?? '',
        Expiration: c.expiration.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      };
      return [200, JSON.stringify(doc, null, 2)];
    }
    if (rest === 'tags/instance' || rest.startsWith('tags/instance/')) {
      const current: Record<string, string> | undefined = await tags();
      if (!current) return [404, ''];
      if (rest === 'tags/instance') return [200, Object.keys(current).join('\n')];
      const key = decodeURIComponent(rest.slice('tags/instance/'.length));
      return Object.prototype.hasOwnProperty.call(current, key) ? [200, current[key]] : [404, ''];
    }
    return [404, ''];
  }

  const server = http.createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const method = req.method ?? 'GET';
    const token = req.headers['x-aws-ec2-metadata-token'];
    const expiry = typeof token === 'string' ? tokens.get(token) : undefined;
    const authorized = method === 'GET' && expiry !== undefined && Date.now() < expiry;
    requests.push({ method, path, authorized });
    req.resume();
    const f = fault?.({ method, path });
    const send = async () => {
      if (f?.hang) return void hung.add(res);
      let status: number;
      let body = '';
      if (f?.status) status = f.status;
      else if (method === 'GET' && !authorized) status = 401;
      else {
        try {
          [status, body] = await answer(req, path);
        } catch (e) {
          [status, body] = [500, String(e)];
        }
      }
      res.writeHead(status, { 'content-type': 'text/plain', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (f?.delayMs) setTimeout(() => void send(), f.delayMs);
    else void send();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    get tokensIssued() {
      return tokensIssued;
    },
    revokeTokens: () => tokens.clear(),
    setFault: (next) => (fault = next),
    close: () =>
      new Promise<void>((resolve) => {
        hung.forEach((r) => r.destroy());
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
