/**
 * Test helpers for the synth tier: fixture entries (stand-ins for the watchdog and the
 * agent, so these tests do not depend on their code), a policy factory, and readers of
 * the synthesized JSON (resources by type, IAM statements by Sid, user data decoded).
 */
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import type { Construct } from 'constructs';
import { SelfManagementPolicy, type SelfManagementPolicyProps } from '../../../constructs';
import type { PolicyDocument } from '../../../lambda-agent/policy/model';
import { evaluate, type Resolver } from './terraform';

export const FIXTURES = path.join(__dirname, '..', 'fixtures');
export const WATCHDOG_FIXTURE = path.join(FIXTURES, 'watchdog-handler.ts');
export const AGENT_V1 = path.join(FIXTURES, 'agent-v1.ts');
export const AGENT_V2 = path.join(FIXTURES, 'agent-v2.ts');

export const ACCOUNT = '123456789012';
export const REGION = 'us-east-1';

/** Developer boxes: stop when idle, terminate after a week, a spend cap priced from the price list. */
export const DEV_POLICY: PolicyDocument = {
  id: 'dev',
  rules: [
    { rule: 'idle', window: '30m', action: 'stop' },
    { rule: 'lifetime', max: '7d', action: 'terminate' },
    { rule: 'spend', maxUsd: 25 },
  ],
};

/** A SelfManagementPolicy built from the fixture entries. */
export function testPolicy(scope: Construct, props: Partial<SelfManagementPolicyProps> = {}, id = 'Policy'): SelfManagementPolicy {
  return new SelfManagementPolicy(scope, id, {
    policy: DEV_POLICY,
    watchdogEntry: WATCHDOG_FIXTURE,
    agentEntry: AGENT_V1,
    ...props,
  });
}

export type Json = any;

export interface Synthesized {
  readonly resource: Record<string, Record<string, Json>>;
  readonly data: Record<string, Record<string, Json>>;
  readonly locals: Record<string, string>;
}

export function parse(json: string): Synthesized {
  const s = JSON.parse(json) as Partial<Synthesized>;
  return { resource: s.resource ?? {}, data: s.data ?? {}, locals: s.locals ?? {} };
}

/** Every resource of a type, by logical id. */
export function resourcesOf(s: Synthesized, type: string): Record<string, Json> {
  return s.resource[type] ?? {};
}

/** The only resource of a type whose logical id starts with `prefix`. */
export function one(s: Synthesized, type: string, prefix = ''): Json {
  const matches = Object.entries(s.resource[type] ?? {}).filter(([id]) => id.startsWith(prefix));
  if (matches.length !== 1) throw new Error(`expected one ${type} '${prefix}*', found ${matches.map(([id]) => id).join(', ') || 'none'}`);
  return matches[0][1];
}

export function logicalId(s: Synthesized, type: string, prefix: string): string {
  const ids = Object.keys(s.resource[type] ?? s.data[type] ?? {}).filter((id) => id.startsWith(prefix));
  if (ids.length !== 1) throw new Error(`expected one ${type} '${prefix}*', found ${ids.join(', ') || 'none'}`);
  return ids[0];
}

/** The statements of the aws_iam_policy_document whose logical id starts with `prefix`. */
export function statements(s: Synthesized, prefix: string): Json[] {
  const docs = Object.entries(s.data.aws_iam_policy_document ?? {}).filter(([id]) => id.startsWith(prefix));
  if (docs.length !== 1) throw new Error(`expected one policy document '${prefix}*', found ${docs.map(([id]) => id).join(', ') || 'none'}`);
  return docs[0][1].statement as Json[];
}

export function statement(s: Synthesized, prefix: string, sid: string): Json {
  const st = statements(s, prefix).filter((x) => x.sid === sid);
  if (st.length !== 1) throw new Error(`expected one statement '${sid}' in '${prefix}', found ${st.length}`);
  return st[0];
}

export function sids(s: Synthesized, prefix: string): string[] {
  return statements(s, prefix).map((x) => x.sid as string);
}

/**
 * Resolves references the way a deployment in account 123456789012, us-east-1 would,
 * with names taken from the synthesized configuration.
 */
export function resolver(s: Synthesized): Resolver {
  const resolve: Resolver = (ref) => {
    const parts = ref.split('.');
    if (parts[0] === 'local') {
      const value = s.locals[parts[1]];
      if (value === undefined) throw new Error(`unknown local ${parts[1]}`);
      return evaluate(value, resolve);
    }
    if (parts[0] === 'data') {
      const [, type, , attr] = parts;
      if (type === 'aws_partition' && attr === 'partition') return 'aws';
      if (type === 'aws_region' && (attr === 'region' || attr === 'name')) return REGION;
      if (type === 'aws_caller_identity' && attr === 'account_id') return ACCOUNT;
      if (type === 'aws_ssm_parameter' && attr === 'value') return 'ami-0123456789abcdef0';
      throw new Error(`cannot resolve ${ref}`);
    }
    const [type, name, attr] = parts;
    const config = s.resource[type]?.[name];
    if (!config) throw new Error(`unknown resource ${type}.${name}`);
    switch (`${type}.${attr}`) {
      case 'aws_sns_topic.arn':
        return `arn:aws:sns:${REGION}:${ACCOUNT}:${config.name}`;
      case 'aws_iam_role.arn':
        return `arn:aws:iam::${ACCOUNT}:role/${name}`;
      case 'aws_iam_role.id':
      case 'aws_iam_role.name':
        return name;
      case 'aws_iam_instance_profile.name':
        return name;
      case 'aws_iam_instance_profile.arn':
        return `arn:aws:iam::${ACCOUNT}:instance-profile/${name}`;
      case 'aws_ssm_parameter.arn':
        return `arn:aws:ssm:${REGION}:${ACCOUNT}:parameter${config.name}`;
      case 'aws_ssm_parameter.name':
        return config.name;
      case 'aws_s3_bucket.arn':
        return 'arn:aws:s3:::smvm-agent-test';
      case 'aws_s3_bucket.id':
      case 'aws_s3_bucket.bucket':
        return 'smvm-agent-test';
      case 'aws_s3_object.key':
        return config.key;
      case 'aws_cloudwatch_log_group.arn':
        return `arn:aws:logs:${REGION}:${ACCOUNT}:log-group:${config.name}`;
      case 'aws_lambda_function.arn':
        return `arn:aws:lambda:${REGION}:${ACCOUNT}:function:${config.function_name}`;
      default:
        throw new Error(`cannot resolve ${ref}`);
    }
  };
  return resolve;
}

/** Replaces every `${…}` reference in a JSON value with its resolved value, and `&{…}` with `${…}`. */
export function resolveAll<T>(value: T, resolve: Resolver): T {
  const walk = (v: unknown): unknown => {
    if (typeof v === 'string') return v.replace(/\$\{([^}]+)\}/g, (_, ref: string) => resolve(ref)).replace(/&\{/g, '${');
    if (Array.isArray(v)) return v.map(walk);
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x)]));
    return v;
  };
  return walk(value) as T;
}

/** An aws_iam_policy_document rendered as the IAM JSON policy the provider produces. */
export function policyJson(s: Synthesized, prefix: string): Json {
  const resolve = resolver(s);
  return {
    Version: '2012-10-17',
    Statement: statements(s, prefix).map((st) => {
      const out: Json = { Sid: st.sid, Effect: st.effect ?? 'Allow', Action: st.actions, Resource: st.resources };
      if (st.principals) {
        const p = st.principals[0];
        out.Principal = p.type === '*' ? '*' : { [p.type]: p.identifiers };
      }
      if (st.condition) {
        out.Condition = {};
        for (const c of st.condition) out.Condition[c.test] = { ...out.Condition[c.test], [c.variable]: c.values };
      }
      return resolveAll(out, resolve);
    }),
  };
}

/** The gzipped bytes an instance (or launch template) would receive as user data. */
export function userDataBytes(s: Synthesized, base64Attribute: string): Buffer {
  return Buffer.from(evaluate(base64Attribute, resolver(s)), 'base64');
}

export interface MimePart {
  readonly headers: Record<string, string>;
  readonly contentType: string;
  readonly filename?: string;
  readonly body: string;
}

/** A strict little MIME multipart reader (one level), for assertions. */
export function mimeParts(document: string): { headers: Record<string, string>; parts: MimePart[] } {
  const [head, ...rest] = document.split('\n\n');
  const headers = headerMap(head);
  const boundary = /boundary="([^"]+)"/.exec(headers['content-type'] ?? '')?.[1];
  if (!boundary) throw new Error('no multipart boundary');
  const body = rest.join('\n\n');
  const chunks = body.split(`--${boundary}`);
  if (chunks[0] !== '') throw new Error(`text before the first boundary: ${JSON.stringify(chunks[0].slice(0, 40))}`);
  if (!chunks[chunks.length - 1].startsWith('--')) throw new Error('missing closing boundary');
  const parts = chunks.slice(1, -1).map((chunk) => {
    if (!chunk.startsWith('\n') || !chunk.endsWith('\n')) throw new Error('part is not delimited by line breaks');
    const inner = chunk.slice(1, -1);
    const split = inner.indexOf('\n\n');
    const h = headerMap(inner.slice(0, split));
    const filename = /filename="([^"]+)"/.exec(h['content-disposition'] ?? '')?.[1];
    return {
      headers: h,
      contentType: (h['content-type'] ?? '').split(';')[0],
      ...(filename ? { filename } : {}),
      body: inner.slice(split + 2),
    };
  });
  return { headers, parts };
}

function headerMap(block: string): Record<string, string> {
  return Object.fromEntries(
    block.split('\n').map((line) => {
      const i = line.indexOf(':');
      if (i <= 0) throw new Error(`malformed header line ${JSON.stringify(line)}`);
      return [line.slice(0, i).toLowerCase(), line.slice(i + 1).trim()];
    }),
  );
}

export function gunzip(bytes: Buffer): string {
  return zlib.gunzipSync(bytes).toString('utf8');
}
