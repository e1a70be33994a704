/**
 * The policy model: what the user writes (a {@link PolicyDocument}, JSON) and what the
 * runtime works with (a {@link Policy}, normalized once by `parsePolicy`).
 */
import type { ActionName } from '../contract/event-core';

/** A rule as written in a policy document. */
export interface RuleDocument {
  /** Rule type: `lifetime`, `running-time`, `spend`, `idle`, `over-use`, `health`, `heartbeat-lost`, `schedule`, `task-completion`. */
  readonly rule: string;
  /** Unique name within the policy. @default - the rule type */
  readonly name?: string;
  /** What to do when the rule fires. @default - the rule's first allowed action (`stop` for most) */
  readonly action?: ActionName;
  /** Announce the action this long before it happens (a `warning` event). @default - no warning */
  readonly warnBefore?: string;
  readonly [field: string]: unknown;
}

/** Agent settings carried by the policy (so both guards agree on freshness). */
export interface AgentSettings {
  /** Sampling interval. @default '10s' */
  readonly sampleInterval?: string;
  /** How often the agent refreshes its heartbeat tag when nothing changes. @default '1h' */
  readonly heartbeatInterval?: string;
}

/** A self-management policy as written by the user and stored in its SSM parameter. */
export interface PolicyDocument {
  /** Policy id: lower-case letters, digits, hyphens. */
  readonly id: string;
  readonly description?: string;
  /** Decide and announce, never act. @default false */
  readonly dryRun?: boolean;
  readonly agent?: AgentSettings;
  readonly rules: readonly RuleDocument[];
}

/** A rule after validation and normalization. */
export interface RuleConfig {
  readonly type: string;
  readonly name: string;
  readonly action: ActionName;
  readonly warnBeforeMs?: number;
  /** Rule-specific parameters, durations in ms (see each rule's `normalize`). */
  readonly params: Readonly<Record<string, unknown>>;
}

/** A validated, normalized policy. Plain JSON: it can be hashed, stored and sent. */
export interface Policy {
  readonly id: string;
  readonly description?: string;
  readonly dryRun: boolean;
  readonly sampleIntervalMs: number;
  readonly heartbeatIntervalMs: number;
  readonly rules: readonly RuleConfig[];
  /** Short content hash of the normalized policy (the policy-version tag). */
  readonly hash: string;
}

/** Strength of actions when several rules fire: the strongest wins. */
export const ACTION_STRENGTH: Record<ActionName, number> = {
  terminate: 5,
  hibernate: 4,
  stop: 3,
  reboot: 2,
  notify: 1,
  start: 0,
};
