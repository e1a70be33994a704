/**
 * The events that invoke the watchdog, validated at the edge:
 *
 * - the EventBridge schedule rule's `Scheduled Event` → a cycle over the fleet (or the
 *   fan-out to shards);
 * - `EC2 Instance State-change Notification` → the transition of one instance,
 *   recorded when it happens;
 * - `{"smvmShard":{"index":i,"count":n}}`, which the watchdog sends itself → a cycle
 *   over one shard.
 *
 * Anything else is rejected with the problems listed (never thrown back to Lambda,
 * whose retries of an asynchronous invocation would only repeat the rejection).
 */
import * as z from 'zod/mini';
import type { InstanceState } from '../rules/types';
import { EventShapeError } from './errors';
import type { Shard } from './shard';

export const SCHEDULED_DETAIL_TYPE = 'Scheduled Event';
export const STATE_CHANGE_DETAIL_TYPE = 'EC2 Instance State-change Notification';

export type Trigger =
  | { readonly kind: 'schedule'; readonly time?: number }
  | { readonly kind: 'shard'; readonly shard: Shard }
  | { readonly kind: 'state-change'; readonly instanceId: string; readonly state: InstanceState; readonly time: number };

const INSTANCE_STATES = ['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated'] as const;
const isoTime = z.string().check(z.refine((v) => Number.isFinite(Date.parse(v)), { message: 'must be an ISO 8601 time' }));

const scheduledSchema = z.looseObject({
  source: z.literal('aws.events'),
  'detail-type': z.literal(SCHEDULED_DETAIL_TYPE),
  time: z.optional(isoTime),
});

const stateChangeSchema = z.looseObject({
  source: z.literal('aws.ec2'),
  'detail-type': z.literal(STATE_CHANGE_DETAIL_TYPE),
  time: isoTime,
  detail: z.looseObject({
    'instance-id': z.string().check(z.regex(/^i-[0-9a-f]{8,17}$/, { message: 'must be an instance id (i-…)' })),
    state: z.enum(INSTANCE_STATES),
  }),
});

const shardSchema = z.strictObject({
  smvmShard: z.strictObject({
    index: z.number().check(z.int(), z.gte(0)),
    count: z.number().check(z.int(), z.gte(1), z.lte(1000)),
  }),
});

/** Characters of an untrusted value echoed in a problem (the event may be huge). */
export const ECHO_MAX = 80;

/** An untrusted value as echoed in a problem: cut to {@link ECHO_MAX} characters. */
export function clip(s: string, max = ECHO_MAX): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…(${s.length} chars)`;
}

function problems(error: z.core.$ZodError, prefix: string): string[] {
  return error.issues.slice(0, 10).map((i) => `${prefix}'${clip(i.path.join('.') || '(root)')}' ${clip(i.message, 2 * ECHO_MAX)}`);
}

/** The trigger an event stands for; throws {@link EventShapeError}. */
export function parseTrigger(event: unknown): Trigger {
  if (event === null || typeof event !== 'object' || Array.isArray(event)) {
    throw new EventShapeError([
      `must be a JSON object, got: ${event === null ? 'null' : Array.isArray(event) ? 'an array' : typeof event}`,
    ]);
  }
  const e = event as Record<string, unknown>;
  if ('smvmShard' in e) {
    const r = shardSchema.safeParse(e);
    if (!r.success) throw new EventShapeError(problems(r.error, 'shard event: '));
    const { index, count } = r.data.smvmShard;
    if (index >= count) throw new EventShapeError([`shard event: 'smvmShard.index' must be below 'count' (${count}), got: ${index}`]);
    return { kind: 'shard', shard: { index, count } };
  }
  const detailType = e['detail-type'];
  if (detailType === STATE_CHANGE_DETAIL_TYPE) {
    const r = stateChangeSchema.safeParse(e);
    if (!r.success) throw new EventShapeError(problems(r.error, 'state-change event: '));
    return { kind: 'state-change', instanceId: r.data.detail['instance-id'], state: r.data.detail.state, time: Date.parse(r.data.time) };
  }
  if (detailType === SCHEDULED_DETAIL_TYPE) {
    const r = scheduledSchema.safeParse(e);
    if (!r.success) throw new EventShapeError(problems(r.error, 'scheduled event: '));
    return { kind: 'schedule', ...(r.data.time ? { time: Date.parse(r.data.time) } : {}) };
  }
  throw new EventShapeError([
    `'detail-type' must be '${SCHEDULED_DETAIL_TYPE}' or '${STATE_CHANGE_DETAIL_TYPE}', got: ${clip(JSON.stringify(detailType ?? null) ?? typeof detailType)} (keys: ${clip(
      Object.keys(e)
        .slice(0, 10)
        .map((k) => clip(k, 20))
        .join(', ') || 'none',
      2 * ECHO_MAX,
    )})`,
  ]);
}
