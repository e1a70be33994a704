/**
 * IMDSv2 client for the agent: session token, instance identity, role credentials
 * (cached, refreshed before they expire) and instance tags. node:http only.
 */
import * as http from 'node:http';
import type { Credentials } from './sigv4';

/** Options of {@link createImdsClient}. */
export interface ImdsClientOptions {
  /** @default 'http://169.254.169.254' */
  readonly endpoint?: string;
  /** Lifetime asked for the session token, in seconds. @default 21600 */
  readonly tokenTtlSeconds?: number;
  /** Timeout of each request in ms. @default 2000 */
  readonly timeoutMs?: number;
  /** Retries after a timeout, network error or 5xx. @default 2 */
  readonly retries?: number;
  /** Delay before a retry in ms. @default 200 */
  readonly retryDelayMs?: number;
  /** Credentials are refreshed this long before they expire, in ms. @default 300000 */
  readonly refreshBeforeMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/** Role credentials from instance metadata. */
export interface ImdsCredentials extends Credentials {
  readonly sessionToken: string;
  readonly expiration: Date;
}

/** Instance tags from metadata. */
export interface InstanceTags {
  readonly tags: Record<string, string>;
  /** False when the instance does not expose tags in metadata (`InstanceMetadataTags` disabled): `tags` is then `{}`. */
  readonly enabled: boolean;
}

/** The agent's view of instance metadata. */
export interface ImdsClient {
  instanceId(): Promise<string>;
  region(): Promise<string>;
  /** The instance profile's credentials, cached until `refreshBeforeMs` before they expire. */
  credentials(): Promise<ImdsCredentials>;
  tags(): Promise<InstanceTags>;
  /** GETs any metadata path (e.g. `/latest/meta-data/instance-type`) and returns its text. */
  get(path: string): Promise<string>;
}

/** A failed metadata request; `statusCode` is 0 for timeouts and network errors. */
export class ImdsError extends Error {
  constructor(
    readonly path: string,
    readonly statusCode: number,
    detail: string,
    options?: { cause?: unknown },
  ) {
    super(`imds: ${path}: ${detail}`, options);
    this.name = 'ImdsError';
  }
}

interface Res {
  status: number;
  body: string;
}

function send(url: string, method: string, headers: Record<string, string>, timeoutMs: number): Promise<Res> {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('error', fail);
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, body });
      });
    });
    const timer = setTimeout(() => req.destroy(new Error(`no response within ${timeoutMs} ms`)), timeoutMs);
    function fail(e: Error) {
      clearTimeout(timer);
      reject(e);
    }
    req.on('error', fail);
    req.end();
  });
}

/** Creates an IMDSv2 client. */
export function createImdsClient(opts: ImdsClientOptions = {}): ImdsClient {
  const endpoint = (opts.endpoint ?? 'http://169.254.169.254').replace(/\/+$/, '');
  const ttl = opts.tokenTtlSeconds ?? 21600;
  const timeoutMs = opts.timeoutMs ?? 2000;
  const retries = opts.retries ?? 2;
  const retryDelayMs = opts.retryDelayMs ?? 200;
  const refreshBeforeMs = opts.refreshBeforeMs ?? 300_000;
  const now = opts.now ?? Date.now;

  let token: { value: string; expires: number } | undefined;
  let role: string | undefined;
  let cached: ImdsCredentials | undefined;
  let refreshing: Promise<ImdsCredentials> | undefined;
  const memo: Record<string, string> = {};

  /** Sends with retries on timeouts, network errors and 5xx. */
  async function attempt(path: string, method: string, headers: Record<string, string>): Promise<Res> {
    for (let i = 0; ; i++) {
      let detail: string;
      let cause: unknown;
      let status = 0;
      try {
        const res = await send(endpoint + path, method, headers, timeoutMs);
        if (res.status < 500) return res;
        status = res.status;
        detail = `HTTP ${res.status}`;
      } catch (e) {
        cause = e;
        detail = (e as Error).message;
      }
      if (i >= retries) throw new ImdsError(path, status, `${detail} (after ${i + 1} attempts)`, { cause });
      await new Promise((r) => setTimeout(r, retryDelayMs));
    }
  }

  async function getToken(): Promise<string> {
    if (token && now() < token.expires) return token.value;
    const path = '/latest/api/token';
    const res = await attempt(path, 'PUT', { 'x-aws-ec2-metadata-token-ttl-seconds': String(ttl) });
    if (res.status !== 200 || !res.body) throw new ImdsError(path, res.status, `token refused: HTTP ${res.status}`);
    // Renew a minute early so a token never expires between check and use.
    token = { value: res.body, expires: now() + Math.max(0, ttl - 60) * 1000 };
    return token.value;
  }

  /** GET with the session token; a 401 fetches a new token once. Resolves with status and body. */
  async function getRaw(path: string): Promise<Res> {
    let res = await attempt(path, 'GET', { 'x-aws-ec2-metadata-token': await getToken() });
    if (res.status === 401) {
      token = undefined;
      res = await attempt(path, 'GET', { 'x-aws-ec2-metadata-token': await getToken() });
    }
    return res;
  }

  async function get(path: string): Promise<string> {
    const res = await getRaw(path);
    if (res.status !== 200) throw new ImdsError(path, res.status, `HTTP ${res.status}`);
    return res.body;
  }

  async function once(path: string): Promise<string> {
    return (memo[path] ??= (await get(path)).trim());
  }

  async function fetchCredentials(): Promise<ImdsCredentials> {
    const base = '/latest/meta-data/iam/security-credentials/';
    role ??= (await get(base)).split('\n')[0]?.trim();
    if (!role) throw new ImdsError(base, 200, 'no instance profile role is attached');
    const path = base + encodeURIComponent(role);
    const res = await getRaw(path);
    if (res.status === 404) role = undefined; // the role was replaced: list again next time
    if (res.status !== 200) throw new ImdsError(path, res.status, `HTTP ${res.status}`);
    let doc: Record<string, unknown>;
    try {
      doc = JSON.parse(res.body) as Record<string, unknown>;
    } catch {
      throw new ImdsError(path, 200, `credentials are not JSON, got: ${JSON.stringify(res.body.slice(0, 80))}`);
    }
    const text = (v: unknown) => (typeof v === 'string' && v !== '' ? v : undefined);
    const [accessKeyId, secretAccessKey, sessionToken] = [text(doc.AccessKeyId), text(doc.SecretAccessKey), text(doc.Token)];
    const expiration = new Date(String(doc.Expiration));
    if (!accessKeyId || !secretAccessKey || !sessionToken || isNaN(+expiration)) {
      throw new ImdsError(path, 200, `credentials lack AccessKeyId, SecretAccessKey, Token or Expiration (Code: ${String(doc.Code)})`);
    }
    return { accessKeyId, secretAccessKey, sessionToken, expiration };
  }

  return {
    get,
    instanceId: () => once('/latest/meta-data/instance-id'),
    region: () => once('/latest/meta-data/placement/region'),
    async credentials() {
      if (cached && now() < cached.expiration.getTime() - refreshBeforeMs) return cached;
      refreshing ??= fetchCredentials().finally(() => (refreshing = undefined));
      try {
        return (cached = await refreshing);
      } catch (e) {
        // Keep using credentials that are still valid while IMDS is unavailable.
        if (cached && now() < cached.expiration.getTime()) return cached;
        throw e;
      }
    },
    async tags() {
      const base = '/latest/meta-data/tags/instance';
      const res = await getRaw(base);
      if (res.status === 404) return { tags: {}, enabled: false };
      if (res.status !== 200) throw new ImdsError(base, res.status, `HTTP ${res.status}`);
      const keys = res.body.split('\n').filter((k) => k !== '');
      const values = await Promise.all(
        keys.map(async (key) => {
          const path = `${base}/${encodeURIComponent(key)}`;
          const value = await getRaw(path);
          if (value.status === 200) return value.body;
          if (value.status === 404) return undefined; // deleted since it was listed
          throw new ImdsError(path, value.status, `HTTP ${value.status}`);
        }),
      );
      const tags: Record<string, string> = {};
      keys.forEach((key, i) => values[i] !== undefined && (tags[key] = values[i]));
      return { tags, enabled: true };
    },
  };
}
