/**
 * Policy validation and normalization: the one edge where loose input becomes a typed
 * {@link Policy}. Every problem of a document is collected and reported at once, each
 * scoped `policy:<id> rule:<name>` with the field, the value and what is allowed.
 */
import * as z from 'zod/mini';
import { ACTION_NAMES, type ActionName } from '../contract/event-core';
import { contentHash, POLICY_ID_PATTERN } from '../contract/ids';
import { findRule, ruleNames } from '../rules';
import { parseDuration } from './duration';
import type { Policy, PolicyDocument, RuleConfig } from './model';

export interface PolicyError {
  /** Scope: `policy:<id>` or `policy:<id> rule:<name>`. */
  readonly scope: string;
  /** Field path, e.g. `rules[2].window`. */
  readonly path: string;
  /** What is wrong, with the value and what is allowed. */
  readonly message: string;
}

export class PolicyValidationError extends Error {
  constructor(readonly errors: readonly PolicyError[]) {
    super(errors.map(formatPolicyError).join('\n'));
    this.name = 'PolicyValidationError';
  }
}

export function formatPolicyError(e: PolicyError): string {
  return `${e.scope}: '${e.path}' ${e.message}`;
}

export type ParseResult = { ok: true; policy: Policy } | { ok: false; errors: PolicyError[] };

const topSchema = z.strictObject({
  id: z.string(),
  description: z.optional(z.string()),
  dryRun: z.optional(z.boolean()),
  agent: z.optional(
    z.strictObject({
      sampleInterval: z.optional(z.string()),
      heartbeatInterval: z.optional(z.string()),
    }),
  ),
  rules: z.array(z.unknown()),
});

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v: unknown = root;
  for (const k of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<PropertyKey, unknown>)[k as string];
  }
  return v;
}

function show(v: unknown): string {
  if (v === undefined) return 'nothing';
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function pathText(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const k of path) out += typeof k === 'number' ? `[${k}]` : out ? `.${String(k)}` : String(k);
  return out || '(policy)';
}

/** The fields of the (strict) object schema at `path` below `shape`, through optionals and arrays. */
function shapeAt(shape: Record<string, unknown> | undefined, path: readonly PropertyKey[]): Record<string, unknown> | undefined {
  type Def = { def?: { type?: string; shape?: Record<string, unknown>; innerType?: unknown; element?: unknown } };
  let current: Record<string, unknown> | undefined = shape;
  let i = 0;
  while (current && i < path.length) {
    let s = current[path[i++] as string] as Def | undefined;
    for (;;) {
      if (s?.def?.type === 'optional') s = s.def.innerType as Def;
      else if (s?.def?.type === 'array' && typeof path[i] === 'number') {
        s = s.def.element as Def;
        i++;
      } else break;
    }
    current = s?.def?.shape;
  }
  return current;
}

/** Zod issues in the words of the policy's fields. */
function describeIssues(
  issues: readonly z.core.$ZodIssue[],
  root: unknown,
  prefix: string,
  scope: string,
  shape?: Record<string, unknown>,
): PolicyError[] {
  const out: PolicyError[] = [];
  for (const i of issues) {
    const got = show(valueAt(root, i.path));
    let message: string;
    switch (i.code) {
      case 'invalid_type':
        message =
          got === 'nothing'
            ? `is required (${i.expected})`
            : `must be ${i.expected === 'array' ? 'a list' : `${/^[aeiou]/.test(i.expected) ? 'an' : 'a'} ${i.expected}`}, got: ${got}`;
        break;
      case 'too_small':
        message = `must be ${i.inclusive ? '≥' : '>'} ${String(i.minimum)}, got: ${got}`;
        break;
      case 'too_big':
        message = `must be ${i.inclusive ? '≤' : '<'} ${String(i.maximum)}, got: ${got}`;
        break;
      case 'invalid_value':
        message = `must be ${i.values.length === 1 ? show(i.values[0]) : `one of ${i.values.map((v) => String(v)).join(', ')}`}, got: ${got}`;
        break;
      case 'unrecognized_keys': {
        const nested = shapeAt(shape, i.path);
        const allowed = nested ? Object.keys(nested).join(', ') : '';
        out.push(
          ...i.keys.map((k) => ({
            scope,
            path: pathText(prefix, [...i.path, k]),
            message: `is not a known field${allowed ? `; allowed: ${allowed}` : ''}`,
          })),
        );
        continue;
      }
      case 'invalid_format':
        message = `${i.message && i.message !== 'Invalid input' ? i.message : `has the wrong format`}, got: ${got}`;
        break;
      default:
        message = `${i.message && i.message !== 'Invalid input' ? i.message : 'is invalid'}, got: ${got}`;
    }
    out.push({ scope, path: pathText(prefix, i.path), message });
  }
  return out;
}

/** Validate and normalize a policy document. Never throws for bad input. */
export function parsePolicy(raw: unknown): ParseResult {
  const errors: PolicyError[] = [];
  const idGuess = raw && typeof raw === 'object' && typeof (raw as { id?: unknown }).id === 'string' ? (raw as { id: string }).id : '?';
  const scope = `policy:${idGuess}`;
  const top = topSchema.safeParse(raw);
  if (!top.success) {
    errors.push(...describeIssues(top.error.issues, raw, '', scope, topSchema.def.shape));
    if (!raw || typeof raw !== 'object' || !Array.isArray((raw as { rules?: unknown }).rules)) return { ok: false, errors };
  }
  const doc = raw as PolicyDocument;
  if (typeof doc.id === 'string' && !POLICY_ID_PATTERN.test(doc.id)) {
    errors.push({
      scope,
      path: 'id',
      message: `must be lower-case letters, digits and hyphens, starting with a letter, at most 40 characters, got: ${show(doc.id)}`,
    });
  }
  const durationOf = (path: string, value: unknown, fallback: string): number => {
    const r = parseDuration(value ?? fallback);
    if (!r.ok) {
      errors.push({ scope, path, message: `${r.problem}, got: ${show(value)}` });
      return parseDuration(fallback).ok ? (parseDuration(fallback) as { ms: number }).ms : 0;
    }
    if (r.ms <= 0) errors.push({ scope, path, message: `must be longer than zero, got: ${show(value)}` });
    return r.ms;
  };
  const sampleIntervalMs = durationOf('agent.sampleInterval', doc.agent?.sampleInterval, '10s');
  const heartbeatIntervalMs = durationOf('agent.heartbeatInterval', doc.agent?.heartbeatInterval, '1h');
  if (heartbeatIntervalMs > 0 && sampleIntervalMs > heartbeatIntervalMs) {
    errors.push({
      scope,
      path: 'agent.heartbeatInterval',
      message: `must not be shorter than agent.sampleInterval, got: ${show(doc.agent?.heartbeatInterval)}`,
    });
  }

  const rules: RuleConfig[] = [];
  const names = new Set<string>();
  const list = Array.isArray(doc.rules) ? doc.rules : [];
  if (Array.isArray(doc.rules) && list.length === 0) {
    errors.push({ scope, path: 'rules', message: 'is empty; a policy needs at least one rule' });
  }
  list.forEach((r, index) => {
    const at = `rules[${index}]`;
    if (!r || typeof r !== 'object' || Array.isArray(r)) {
      errors.push({ scope, path: at, message: `must be an object with a 'rule' field, got: ${show(r)}` });
      return;
    }
    const type = (r as { rule?: unknown }).rule;
    const def = typeof type === 'string' ? findRule(type) : undefined;
    if (!def) {
      errors.push({ scope, path: `${at}.rule`, message: `must be one of ${ruleNames().join(', ')}, got: ${show(type)}` });
      return;
    }
    const name = typeof r.name === 'string' ? r.name : def.name;
    const rscope = `${scope} rule:${name}`;
    if (names.has(name)) {
      errors.push({
        scope: rscope,
        path: `${at}.name`,
        message: `'${name}' is used by another rule; give each rule of the same type a distinct 'name'`,
      });
    }
    names.add(name);
    const parsed = def.schema.safeParse(r);
    if (!parsed.success) {
      errors.push(...describeIssues(parsed.error.issues, r, at, rscope, def.schema.def.shape));
      return;
    }
    const action: ActionName = (r.action as ActionName | undefined) ?? def.actions[0];
    if (!def.actions.includes(action)) {
      const hint = action === 'hibernate' ? ' (this rule cannot hibernate)' : '';
      errors.push({
        scope: rscope,
        path: `${at}.action`,
        message: `must be one of ${def.actions.join(', ')} for rule '${def.name}'${hint}, got: ${show(action)}`,
      });
    }
    for (const [p, m] of def.validate?.(parsed.data) ?? []) errors.push({ scope: rscope, path: `${at}.${p}`, message: m });
    let params: Record<string, unknown>;
    try {
      params = def.normalize(parsed.data);
    } catch (e) {
      errors.push({ scope: rscope, path: at, message: (e as Error).message });
      return;
    }
    const windowMs = params.windowMs as number | undefined;
    if (windowMs !== undefined && sampleIntervalMs > 0 && windowMs < 2 * sampleIntervalMs) {
      errors.push({
        scope: rscope,
        path: `${at}.window`,
        message: `must be at least twice agent.sampleInterval (${doc.agent?.sampleInterval ?? '10s'}), got: ${show(r.window)}`,
      });
    }
    let warnBeforeMs: number | undefined;
    if (r.warnBefore !== undefined) {
      warnBeforeMs = parseDuration(r.warnBefore).ok ? (parseDuration(r.warnBefore) as { ms: number }).ms : undefined;
      if (warnBeforeMs === 0)
        errors.push({ scope: rscope, path: `${at}.warnBefore`, message: `must be longer than zero, got: ${show(r.warnBefore)}` });
      if (action === 'notify')
        errors.push({
          scope: rscope,
          path: `${at}.warnBefore`,
          message: `has no use with action 'notify' (the notification is the warning); remove it`,
        });
    }
    rules.push({ type: def.name, name, action, ...(warnBeforeMs ? { warnBeforeMs } : {}), params });
  });
  if (errors.length > 0) return { ok: false, errors };
  const body = {
    id: doc.id,
    ...(doc.description ? { description: doc.description } : {}),
    dryRun: doc.dryRun ?? false,
    sampleIntervalMs,
    heartbeatIntervalMs,
    rules,
  };
  return { ok: true, policy: { ...body, hash: contentHash(JSON.stringify(body)) } };
}

/** {@link parsePolicy} that throws a {@link PolicyValidationError} listing every problem. */
export function loadPolicy(raw: unknown): Policy {
  const r = parsePolicy(raw);
  if (!r.ok) throw new PolicyValidationError(r.errors);
  return r.policy;
}

export { ACTION_NAMES };
