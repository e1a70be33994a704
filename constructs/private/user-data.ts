/**
 * User data of a self-managed instance: a cloud-init MIME multipart document (the
 * user's part first, then the agent bootstrap part), gzipped by Terraform's
 * `base64gzip()` so that values only known at apply time (the topic ARN, the region,
 * a templatefile() the user passes) can be part of it, and escaped so that shell
 * `${VAR}` and `%{` in scripts reach the instance unchanged.
 */
import * as zlib from 'node:zlib';

/** EC2's limit on user data, in bytes before base64 (here: the gzipped document). */
export const USER_DATA_LIMIT_BYTES = 16 * 1024;

/** Separates the parts; a user script containing it is refused. */
export const MIME_BOUNDARY = '==smvm-user-data-boundary-5d2f0c==';

/** cloud-config parts are merged, not replaced: the user's runcmd and the bootstrap's both run. */
export const MERGE_TYPE = 'list(append)+dict(no_replace,recurse_list)+str()';

/** Matches cdktf's string token markers (`${TfToken[TOKEN.12]}`). */
const STRING_TOKEN = /\$\{TfToken\[[a-zA-Z0-9:._-]+\]\}/g;

/** What a token counts as when the size is estimated at synth time. */
const TOKEN_ESTIMATE = 'x'.repeat(128);

/** cloud-init's own first-line detection (`cloudinit/handlers/__init__.py` INCLUSION_TYPES_MAP). */
const STARTS_WITH: ReadonlyArray<readonly [string, string]> = [
  ['#include-once', 'text/x-include-once-url'],
  ['#include', 'text/x-include-url'],
  ['#!', 'text/x-shellscript'],
  ['#cloud-config-archive', 'text/cloud-config-archive'],
  ['#cloud-config', 'text/cloud-config'],
  ['#cloud-boothook', 'text/cloud-boothook'],
  ['#part-handler', 'text/part-handler'],
  ['## template: jinja', 'text/jinja2'],
];

export function hasTokens(text: string): boolean {
  STRING_TOKEN.lastIndex = 0;
  return STRING_TOKEN.test(text);
}

/** The part's MIME type from its first line; `undefined` when cloud-init would not recognize it. */
export function detectContentType(text: string): string | undefined {
  if (/^content-type:/i.test(text)) return 'mime';
  for (const [prefix, type] of STARTS_WITH) if (text.startsWith(prefix)) return type;
  // A part that starts with a value known only at apply time: cloud-init sniffs text/plain parts.
  if (/^\$\{TfToken\[/.test(text)) return 'text/plain';
  return undefined;
}

export interface UserDataPart {
  /** File name cloud-init gives the part (scripts run in the order of these names). */
  readonly filename: string;
  readonly content: string;
  /** @default - detected from the content's first line */
  readonly contentType?: string;
}

/**
 * The MIME multipart document, in order. A part that is itself a MIME document is
 * nested as is (cloud-init walks nested multiparts).
 */
export function mimeMultipart(parts: readonly UserDataPart[]): string {
  const out: string[] = [`Content-Type: multipart/mixed; boundary="${MIME_BOUNDARY}"`, 'MIME-Version: 1.0', ''];
  for (const part of parts) {
    const type = part.contentType ?? detectContentType(part.content) ?? 'text/plain';
    out.push(`--${MIME_BOUNDARY}`);
    if (type === 'mime') {
      out.push(part.content);
      continue;
    }
    out.push(`Content-Type: ${type}; charset="utf-8"`);
    out.push('MIME-Version: 1.0');
    out.push('Content-Transfer-Encoding: 8bit');
    out.push(`Content-Disposition: attachment; filename="${part.filename}"`);
    if (type === 'text/cloud-config' || type === 'text/jinja2' || type === 'text/plain') out.push(`Merge-Type: ${MERGE_TYPE}`);
    out.push('');
    out.push(part.content);
  }
  out.push(`--${MIME_BOUNDARY}--`, '');
  return out.join('\n');
}

/**
 * Escapes literal text for the inside of an HCL quoted string: `\`, `"` and control
 * characters as usual, and every brace as `\u007b` / `\u007d`. Without raw braces the
 * text can start no template sequence (`${`, `%{`), and cdktf, which tracks raw `${`
 * and `}` to decide how to render tokens, sees none of them either.
 */
export function escapeHclLiteral(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '\\') out += '\\\\';
    else if (c === '"') out += '\\"';
    else if (c === '\n') out += '\\n';
    else if (c === '\r') out += '\\r';
    else if (c === '\t') out += '\\t';
    else if (c === '{' || c === '}' || c < ' ' || c === '\u007f') out += `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
    else out += c;
  }
  return out;
}

/**
 * The inside of an HCL quoted template: literals escaped, each cdktf token wrapped in an
 * explicit interpolation (`${` token `}`), in which cdktf renders it as a bare expression
 * (`aws_sns_topic.x.arn`, `local.y`, `base64decode(…)`).
 */
export function hclTemplate(text: string): string {
  let out = '';
  let last = 0;
  STRING_TOKEN.lastIndex = 0;
  for (let m = STRING_TOKEN.exec(text); m; m = STRING_TOKEN.exec(text)) {
    out += `${escapeHclLiteral(text.slice(last, m.index))}\${${m[0]}}`;
    last = m.index + m[0].length;
  }
  return out + escapeHclLiteral(text.slice(last));
}

/** `${base64gzip("…")}`: gzip + base64 by Terraform, with apply-time values filled in. */
export function base64gzipExpression(document: string): string {
  return `\${base64gzip("${hclTemplate(document)}")}`;
}

/** `${"…"}`: the text as a Terraform string, with apply-time values filled in. */
export function stringExpression(text: string): string {
  return `\${"${hclTemplate(text)}"}`;
}

export interface UserDataSize {
  /** Bytes of the MIME document (tokens estimated). */
  readonly rawBytes: number;
  /** Bytes after gzip (what EC2 counts against its limit). */
  readonly gzippedBytes: number;
  /** Whether tokens were estimated. */
  readonly estimated: boolean;
}

export function userDataSize(document: string): UserDataSize {
  const estimated = hasTokens(document);
  const concrete = estimated ? document.replace(STRING_TOKEN, TOKEN_ESTIMATE) : document;
  const raw = Buffer.from(concrete, 'utf8');
  return { rawBytes: raw.length, gzippedBytes: zlib.gzipSync(raw, { level: 6 }).length, estimated };
}
