/**
 * The event every guard publishes to the policy's SNS topic: one versioned schema for
 * the agent, the watchdog and the CLI. Subscribers validate with {@link parseEvent}
 * (TypeScript) or with `contract/event.schema.json` (any language).
 */
import * as z from 'zod/mini';
import { contentHash } from './ids';

export const EVENT_SCHEMA_VERSION = 1;

export const EVENT_TYPES = [
  'warning',
  'stopped',
  'hibernated',
  'rebooted',
  'terminated',
  'started',
  'notified',
  'skipped',
  'state-changed',
  'heartbeat-lost',
  'task-finished',
  'snoozed',
  'extended',
  'usage',
  'error',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export const SEVERITIES = ['info', 'warning', 'critical', 'error'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const EVENT_SOURCES = ['agent', 'watchdog', 'cli'] as const;
export type EventSource = (typeof EVENT_SOURCES)[number];

export const ACTION_NAMES = ['notify', 'stop', 'hibernate', 'reboot', 'terminate', 'start'] as const;
export type ActionName = (typeof ACTION_NAMES)[number];

/** SNS message attributes set on every event, for subscription filter policies. */
export const MESSAGE_ATTRIBUTES = ['eventType', 'policyId', 'instanceId', 'severity'] as const;

const accountingSchema = z.strictObject({
  /** Wall-clock ms since the instance was first seen running. */
  lifetimeMs: z.number(),
  /** Accumulated running ms across stop/start. */
  runningMs: z.number(),
  /** Accumulated spend in USD. */
  spendUsd: z.number(),
  /** Epoch ms the instance was first seen running. */
  firstSeen: z.number(),
});

export const eventSchema = z.strictObject({
  schemaVersion: z.literal(EVENT_SCHEMA_VERSION),
  /** Deterministic id: the same fact published twice carries the same id (deduplicate on it). */
  id: z.string().check(z.minLength(8)),
  type: z.enum(EVENT_TYPES),
  /** ISO 8601 time of the fact. */
  time: z.string(),
  source: z.enum(EVENT_SOURCES),
  severity: z.enum(SEVERITIES),
  policyId: z.string(),
  instanceId: z.optional(z.string()),
  managementId: z.optional(z.string()),
  /** Short human line, also used as the email Subject. */
  subject: z.string().check(z.maxLength(100)),
  /** Full human-readable explanation with the figures. */
  message: z.string(),
  rule: z.optional(z.string()),
  episode: z.optional(z.string()),
  action: z.optional(z.enum(ACTION_NAMES)),
  /** When the announced action will happen (warnings), ISO 8601. */
  dueAt: z.optional(z.string()),
  dryRun: z.optional(z.boolean()),
  accounting: z.optional(accountingSchema),
  /** Type-specific figures (usage summaries, error codes, who/why of an extension). */
  detail: z.optional(z.record(z.string(), z.unknown())),
});

export type SmvmEvent = z.infer<typeof eventSchema>;

export class EventValidationError extends Error {
  constructor(readonly problems: string[]) {
    super(`event: ${problems.join('; ')}`);
    this.name = 'EventValidationError';
  }
}

/** Parse and validate an event (e.g. an SNS message body). Throws {@link EventValidationError}. */
export function parseEvent(input: unknown): SmvmEvent {
  const value = typeof input === 'string' ? safeJson(input) : input;
  const result = eventSchema.safeParse(value);
  if (result.success) return result.data;
  throw new EventValidationError(
    result.error.issues.map((i) => {
      const path = i.path.join('.') || '(root)';
      if (i.code === 'unrecognized_keys') return `${path}: unknown field(s) ${i.keys.join(', ')}`;
      return `'${path}' ${i.code.replace(/_/g, ' ')}`;
    }),
  );
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new EventValidationError(['message is not JSON']);
  }
}

/** Severity of an event type (warnings and actions of hard limits are raised by the caller). */
export function defaultSeverity(type: EventType): Severity {
  switch (type) {
    case 'warning':
    case 'skipped':
      return 'warning';
    case 'terminated':
    case 'heartbeat-lost':
      return 'critical';
    case 'error':
      return 'error';
    default:
      return 'info';
  }
}

/** Event type announcing that an action was carried out. */
export function eventTypeOfAction(action: ActionName): EventType {
  const map: Record<ActionName, EventType> = {
    notify: 'notified',
    stop: 'stopped',
    hibernate: 'hibernated',
    reboot: 'rebooted',
    terminate: 'terminated',
    start: 'started',
  };
  return map[action];
}

/** SNS message attributes for an event, as plain strings. */
export function messageAttributes(e: SmvmEvent): Record<string, string> {
  const out: Record<string, string> = { eventType: e.type, policyId: e.policyId, severity: e.severity };
  if (e.instanceId) out.instanceId = e.instanceId;
  return out;
}

/**
 * Deterministic event id from the parts that identify a fact (type, instance, rule,
 * episode). The agent and the watchdog announcing the same action produce the same id.
 */
export function eventId(...parts: Array<string | number | undefined>): string {
  return contentHash(parts.map((p) => (p === undefined ? '' : String(p))).join('|'));
}
