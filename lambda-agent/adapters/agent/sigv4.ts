/**
 * AWS Signature Version 4 (header signing) with node:crypto only, for the agent's lean
 * client. Produces the same Authorization header as `@smithy/signature-v4` for the
 * requests the agent makes (checked byte for byte in the unit tests).
 */
import { createHash, createHmac } from 'node:crypto';

/** AWS credentials; `sessionToken` is set for role (instance profile) credentials. */
export interface Credentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
}

/** A request to sign. */
export interface SignRequest {
  readonly method: string;
  /** Absolute URL; its path must already be percent-encoded as it goes on the wire. */
  readonly url: string | URL;
  /** Headers to send and sign (names in any case; `host` is added from the URL). */
  readonly headers?: Readonly<Record<string, string>>;
  readonly body?: string | Uint8Array;
  /** Signing name of the service: `ec2`, `ssm`, `sns`, `s3`, … */
  readonly service: string;
  readonly region: string;
  readonly credentials: Credentials;
  /** Signing time. @default - now */
  readonly date?: Date;
  /**
   * Send `X-Amz-Content-Sha256`: `true` (the body's hash), `'UNSIGNED-PAYLOAD'`, or `false`.
   * S3 also signs the path as given instead of encoding it again.
   * @default - `true` for s3, `false` otherwise
   */
  readonly contentSha256?: boolean | 'UNSIGNED-PAYLOAD';
}

/** Header names never signed (they may change in transit). */
const UNSIGNABLE = /^(authorization|user-agent|connection|expect|transfer-encoding|x-amzn-trace-id)$/;

/** RFC 3986 encoding, as SigV4 wants it (encodeURIComponent leaves `!'()*`). */
export function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => '%' + c.charCodeAt(0).toString(16).toUpperCase());
}

const sha256Hex = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** Decodes a query component without throwing on a malformed escape. */
function decode(value: string): string {
  try {
    return decodeURIComponent(value);
  } catch {
    return value;
  }
}

/** The canonical query string: pairs decoded, re-encoded strictly, sorted by key then value. */
function canonicalQuery(search: string): string {
  const pairs: [string, string][] = [];
  for (const part of search.replace(/^\?/, '').split('&')) {
    if (!part) continue;
    const eq = part.indexOf('=');
    const key = eq < 0 ? part : part.slice(0, eq);
    const value = eq < 0 ? '' : part.slice(eq + 1);
    pairs.push([uriEncode(decode(key)), uriEncode(decode(value))]);
  }
  pairs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  return pairs.map(([k, v]) => `${k}=${v}`).join('&');
}

/** The canonical path: S3 signs it as sent; other services normalize and encode it again. */
function canonicalPath(path: string, s3: boolean): string {
  if (s3) return path || '/';
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized = (path.startsWith('/') ? '/' : '') + segments.join('/') + (segments.length > 0 && path.endsWith('/') ? '/' : '');
  return uriEncode(normalized).replace(/%2F/g, '/');
}

/**
 * Signs a request and returns every header to send (lower-case names): the caller's
 * headers plus `host`, `x-amz-date`, `x-amz-security-token`, `x-amz-content-sha256`
 * (when asked for) and `authorization`.
 */
export function signRequest(req: SignRequest): Record<string, string> {
  const url = typeof req.url === 'string' ? new URL(req.url) : req.url;
  const s3 = req.service === 's3';
  const iso = (req.date ?? new Date()).toISOString().replace(/[-:]|\.\d{3}/g, '');
  const day = iso.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(req.headers ?? {})) headers[name.toLowerCase()] = value;
  headers.host = url.host;
  headers['x-amz-date'] = iso;
  if (req.credentials.sessionToken) headers['x-amz-security-token'] = req.credentials.sessionToken;
  const checksum = req.contentSha256 ?? s3;
  if (checksum === 'UNSIGNED-PAYLOAD') headers['x-amz-content-sha256'] = checksum;
  const payloadHash = headers['x-amz-content-sha256'] ?? sha256Hex(req.body ?? '');
  if (checksum) headers['x-amz-content-sha256'] = payloadHash;

  const names = Object.keys(headers)
    .filter((n) => !UNSIGNABLE.test(n) && !/^(proxy|sec)-/.test(n))
    .sort();
  const signedHeaders = names.join(';');
  const canonicalRequest = [
    req.method.toUpperCase(),
    canonicalPath(url.pathname, s3),
    canonicalQuery(url.search),
    ...names.map(
      (n) =>
        `${n}:${headers[n]
          .replace(/[\r\n]/g, ' ')
          .replace(/[ \t]+/g, ' ')
          .replace(/^ | $/g, '')}`,
    ),
    '',
    signedHeaders,
    payloadHash,
  ].join('\n');
  const scope = `${day}/${req.region}/${req.service}/aws4_request`;
  const stringToSign = `AWS4-HMAC-SHA256\n${iso}\n${scope}\n${sha256Hex(canonicalRequest)}`;
  let key = hmac('AWS4' + req.credentials.secretAccessKey, day);
  for (const part of [req.region, req.service, 'aws4_request']) key = hmac(key, part);
  const signature = createHmac('sha256', key).update(stringToSign).digest('hex');
  headers.authorization =
    `AWS4-HMAC-SHA256 Credential=${req.credentials.accessKeyId}/${scope}, ` + `SignedHeaders=${signedHeaders}, Signature=${signature}`;
  return headers;
}
