/**
 * The event every guard publishes to the policy's SNS topic: one versioned schema for
 * the agent, the watchdog and the CLI. Subscribers validate with {@link parseEvent}
 * (TypeScript) or with `contract/event.schema.json` (any language). The vocabulary
 * (types, severities, ids) is in `event-core.ts` and re-exported here.
 */
import * as z from 'zod/mini';
import { ACTION_NAMES, EVENT_SCHEMA_VERSION, EVENT_SOURCES, EVENT_TYPES, SEVERITIES } from './event-core';

export * from './event-core';

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
