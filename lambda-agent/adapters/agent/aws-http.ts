/**
 * A lean AWS client for the agent: node:http/node:https plus the hand-written SigV4
 * signer, covering only the calls the agent makes (EC2 Query API, SSM GetParameter,
 * SNS Publish, S3 GetObject). No AWS SDK, so it fits in user data.
 */
import * as http from 'node:http';
import * as https from 'node:https';
import { type Credentials, signRequest, uriEncode } from './sigv4';

/** One HTTP exchange, as the transport sees it. */
export interface HttpRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
  /** Abort the exchange (connect, send and read) after this many ms. */
  readonly timeoutMs: number;
}

/** An HTTP response with its whole body; header names are lower-case. */
export interface HttpResponse {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Buffer;
}

/** Sends one request; rejects on network errors and timeouts only (not on HTTP status). */
export type HttpTransport = (req: HttpRequest) => Promise<HttpResponse>;

/** Options of {@link createAwsClient}. */
export interface AwsClientOptions {
  readonly region: string;
  /** One endpoint for every service (e.g. `AWS_ENDPOINT_URL`). @default - https://<service>.<region>.amazonaws.com */
  readonly endpoint?: string;
  /** Called before every attempt, so refreshed credentials are picked up. */
  readonly credentials: () => Promise<Credentials>;
  /** The transport. @default - {@link nodeHttpTransport} */
  readonly fetchImpl?: HttpTransport;
  /** Attempts per call, the first included. @default 4 */
  readonly maxAttempts?: number;
  /** Timeout of each attempt in ms. @default 5000 */
  readonly timeoutMs?: number;
  /** Backoff base in ms: attempt n waits random() × min(maxDelayMs, baseDelayMs × 2^(n-1)). @default 100 */
  readonly baseDelayMs?: number;
  /** Backoff cap in ms. @default 5000 */
  readonly maxDelayMs?: number;
  /** @default Math.random */
  readonly random?: () => number;
  /** @default - setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
}

/** Query parameters of an EC2 action (`undefined` values are left out). */
export type QueryParams = Readonly<Record<string, string | number | boolean | undefined>>;

/** One instance's state change, as returned by StopInstances and TerminateInstances. */
export interface InstanceStateChange {
  readonly instanceId: string;
  readonly previousState?: string;
  readonly currentState?: string;
}

/** Input of {@link AwsClient.snsPublish}. */
export interface SnsPublishInput {
  readonly topicArn: string;
  readonly message: string;
  readonly subject?: string;
  /** Sent as String message attributes (usable in subscription filter policies). */
  readonly attributes?: Readonly<Record<string, string>>;
}

/** The agent's AWS calls. Helpers given no ids do nothing and make no call. */
export interface AwsClient {
  /** Calls an EC2 Query API action (Version 2016-11-15) and returns the response XML. */
  ec2(action: string, params?: QueryParams): Promise<string>;
  stopInstances(ids: readonly string[], opts?: { readonly hibernate?: boolean }): Promise<InstanceStateChange[]>;
  rebootInstances(ids: readonly string[]): Promise<void>;
  terminateInstances(ids: readonly string[]): Promise<InstanceStateChange[]>;
  createTags(ids: readonly string[], tags: Readonly<Record<string, string>>): Promise<void>;
  /** Returns the parameter's value (SecureString values decrypted). */
  ssmGetParameter(name: string): Promise<string>;
  /** Returns the MessageId. */
  snsPublish(input: SnsPublishInput): Promise<string>;
  /** Path-style GetObject; returns the object's bytes. */
  s3GetObject(bucket: string, key: string): Promise<Buffer>;
}

/** Error codes AWS uses for throttling and transient faults (retried). */
const RETRYABLE_CODES = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'BandwidthLimitExceeded',
  'SlowDown',
  'PriorRequestNotComplete',
  'EC2ThrottledException',
  'RequestTimeout',
  'RequestTimeoutException',
  'InternalError',
  'InternalFailure',
  'ServiceUnavailable',
  'TimeoutError',
  'NetworkingError',
]);

/** A failed AWS call: the service's error code and message, or a network failure (statusCode 0). */
export class AwsHttpError extends Error {
  /** Throttling, 5xx, 429, timeouts and network errors. */
  readonly retryable: boolean;
  constructor(
    /** `ec2 StopInstances`, `ssm GetParameter`, … */
    readonly operation: string,
    readonly code: string,
    readonly statusCode: number,
    detail: string,
    readonly requestId?: string,
    options?: { cause?: unknown },
  ) {
    super(`${operation}: ${code} (HTTP ${statusCode || 'none'}): ${detail}`, options);
    this.name = 'AwsHttpError';
    this.retryable = RETRYABLE_CODES.has(code) || statusCode >= 500 || statusCode === 429;
  }
  /** Attempts made before giving up (set by the client). */
  attempts = 1;
}

/** The default transport over node:http / node:https. */
export const nodeHttpTransport: HttpTransport = (req) =>
  new Promise((resolve, reject) => {
    const url = new URL(req.url);
    const headers: Record<string, string | number> = { ...req.headers };
    if (req.body !== undefined) headers['content-length'] = Buffer.byteLength(req.body);
    const client = url.protocol === 'https:' ? https : http;
    const request = client.request(url, { method: req.method, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', fail);
      res.on('end', () => {
        clearTimeout(timer);
        const out: Record<string, string> = {};
        for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) out[k] = String(v);
        resolve({ status: res.statusCode ?? 0, headers: out, body: Buffer.concat(chunks) });
      });
    });
    const timer = setTimeout(() => {
      const e = new Error(`no complete response from ${url.host} within ${req.timeoutMs} ms`);
      e.name = 'TimeoutError';
      request.destroy(e);
    }, req.timeoutMs);
    function fail(e: Error) {
      clearTimeout(timer);
      reject(e);
    }
    request.on('error', fail);
    request.end(req.body);
  });

const ENTITIES: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** The text of the first `<tag>` element in `xml`, entities decoded. */
export function xmlValue(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(xml);
  return m?.[1].replace(/&(#x[0-9a-f]{1,6}|#\d{1,7}|\w+);/gi, (all, e: string) => {
    if (e[0] !== '#') return ENTITIES[e] ?? all;
    const code = Number(e[1] === 'x' || e[1] === 'X' ? '0' + e.slice(1) : e.slice(1));
    return code <= 0x10ffff ? String.fromCodePoint(code) : all;
  });
}

/** Builds the error of a non-2xx response from its XML or JSON body. */
function responseError(operation: string, res: HttpResponse): AwsHttpError {
  const text = res.body.toString('utf8');
  let code: string | undefined;
  let message: string | undefined;
  if (text.trimStart().startsWith('{')) {
    try {
      const json = JSON.parse(text) as Record<string, unknown>;
      code = typeof json.__type === 'string' ? json.__type.split('#').pop() : undefined;
      message = String(json.message ?? json.Message ?? '');
    } catch {
      // not JSON after all: fall through
    }
  } else {
    code = xmlValue(text, 'Code');
    message = xmlValue(text, 'Message');
  }
  code ||= res.headers['x-amzn-errortype']?.split(':')[0] || (res.status === 429 ? 'TooManyRequestsException' : 'UnknownError');
  const requestId =
    xmlValue(text, 'RequestId') ?? xmlValue(text, 'RequestID') ?? res.headers['x-amzn-requestid'] ?? res.headers['x-amz-request-id'];
  return new AwsHttpError(operation, code, res.status, message || JSON.stringify(text.slice(0, 200)), requestId);
}

/**
 * Encodes parameters as an application/x-www-form-urlencoded body: RFC 3986 escapes, space as
 * `+` (what botocore sends; AWS hashes the raw body, moto hashes its re-encoding of the form).
 */
function formBody(params: QueryParams): string {
  return Object.entries(params)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${uriEncode(k)}=${uriEncode(String(v))}`.replace(/%20/g, '+'))
    .join('&');
}

function stateChanges(xml: string): InstanceStateChange[] {
  const out: InstanceStateChange[] = [];
  for (const item of xml.match(/<item>[\s\S]*?<\/previousState>[\s\S]*?<\/item>/g) ?? []) {
    const instanceId = xmlValue(item, 'instanceId');
    if (!instanceId) continue;
    const state = (tag: string) => /<name>([^<]*)<\/name>/.exec(new RegExp(`<${tag}>[\\s\\S]*?</${tag}>`).exec(item)?.[0] ?? '')?.[1];
    out.push({ instanceId, currentState: state('currentState'), previousState: state('previousState') });
  }
  return out;
}

const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Creates the agent's AWS client. */
export function createAwsClient(opts: AwsClientOptions): AwsClient {
  const transport = opts.fetchImpl ?? nodeHttpTransport;
  const maxAttempts = Math.max(1, opts.maxAttempts ?? 4);
  const timeoutMs = opts.timeoutMs ?? 5000;
  const baseDelayMs = opts.baseDelayMs ?? 100;
  const maxDelayMs = opts.maxDelayMs ?? 5000;
  const random = opts.random ?? Math.random;
  const sleep = opts.sleep ?? sleepMs;
  const suffix = opts.region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
  const base = (service: string) => (opts.endpoint ? opts.endpoint.replace(/\/+$/, '') : `https://${service}.${opts.region}.${suffix}`);

  /** Signs and sends one call with retries; resolves with the 2xx response. */
  async function call(
    service: string,
    operation: string,
    method: string,
    url: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<HttpResponse> {
    const name = `${service} ${operation}`;
    for (let attempt = 1; ; attempt++) {
      let error: AwsHttpError;
      const credentials = await opts.credentials();
      const signed = signRequest({ method, url, headers, body, service, region: opts.region, credentials });
      try {
        const res = await transport({ method, url, headers: signed, body, timeoutMs });
        if (res.status >= 200 && res.status < 300) return res;
        error = responseError(name, res);
      } catch (e) {
        const err = e as NodeJS.ErrnoException;
        const code = err.name === 'TimeoutError' ? 'TimeoutError' : 'NetworkingError';
        error = new AwsHttpError(name, code, 0, `${err.code ?? err.name}: ${err.message}`, undefined, { cause: e });
      }
      error.attempts = attempt;
      if (!error.retryable || attempt >= maxAttempts) throw error;
      await sleep(random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1)));
    }
  }

  async function query(service: string, version: string, action: string, params: QueryParams): Promise<string> {
    const body = formBody({ Action: action, Version: version, ...params });
    const headers = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' };
    const res = await call(service, action, 'POST', base(service) + '/', headers, body);
    return res.body.toString('utf8');
  }

  const ec2 = (action: string, params: QueryParams = {}) => query('ec2', '2016-11-15', action, params);
  const idParams = (ids: readonly string[]) => Object.fromEntries(ids.map((id, i) => [`InstanceId.${i + 1}`, id]));

  return {
    ec2,
    async stopInstances(ids, o = {}) {
      return ids.length ? stateChanges(await ec2('StopInstances', { ...idParams(ids), Hibernate: o.hibernate || undefined })) : [];
    },
    async rebootInstances(ids) {
      if (ids.length) await ec2('RebootInstances', idParams(ids));
    },
    async terminateInstances(ids) {
      return ids.length ? stateChanges(await ec2('TerminateInstances', idParams(ids))) : [];
    },
    async createTags(ids, tags) {
      const entries = Object.entries(tags);
      if (!ids.length || !entries.length) return;
      const params: Record<string, string> = {};
      ids.forEach((id, i) => (params[`ResourceId.${i + 1}`] = id));
      entries.forEach(([k, v], i) => {
        params[`Tag.${i + 1}.Key`] = k;
        params[`Tag.${i + 1}.Value`] = v;
      });
      await ec2('CreateTags', params);
    },
    async ssmGetParameter(name) {
      const headers = { 'content-type': 'application/x-amz-json-1.1', 'x-amz-target': 'AmazonSSM.GetParameter' };
      const body = JSON.stringify({ Name: name, WithDecryption: true });
      const res = await call('ssm', 'GetParameter', 'POST', base('ssm') + '/', headers, body);
      let value: unknown;
      try {
        value = (JSON.parse(res.body.toString('utf8')) as { Parameter?: { Value?: unknown } }).Parameter?.Value;
      } catch {
        // reported below
      }
      if (typeof value !== 'string') {
        throw new AwsHttpError('ssm GetParameter', 'InvalidResponse', res.status, `no Parameter.Value for '${name}'`);
      }
      return value;
    },
    async snsPublish({ topicArn, message, subject, attributes = {} }) {
      const params: Record<string, string | undefined> = { TopicArn: topicArn, Message: message, Subject: subject };
      Object.entries(attributes).forEach(([k, v], i) => {
        const p = `MessageAttributes.entry.${i + 1}.`;
        params[p + 'Name'] = k;
        params[p + 'Value.DataType'] = 'String';
        params[p + 'Value.StringValue'] = v;
      });
      const xml = await query('sns', '2010-03-31', 'Publish', params);
      return xmlValue(xml, 'MessageId') ?? '';
    },
    async s3GetObject(bucket, key) {
      const path = `/${uriEncode(bucket)}/${key.split('/').map(uriEncode).join('/')}`;
      const res = await call('s3', 'GetObject', 'GET', base('s3') + path, {});
      return res.body;
    },
  };
}
