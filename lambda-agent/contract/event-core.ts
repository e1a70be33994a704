/**
 * The event vocabulary shared by every guard: types, severities, actions, message
 * attributes and the deterministic event id. Kept free of the schema library so the
 * agent's bundle carries none of it; the schema and its validator are in `events.ts`.
 */
import { contentHash } from './ids';
import type { SmvmEvent } from './events';

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

export type { SmvmEvent };

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
