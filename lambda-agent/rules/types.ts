/**
 * The shape every rule shares. A rule is one registered unit: its schema, its
 * cross-field validation, its pure evaluation, the IAM actions its actions need and a
 * runnable example. Adding a rule touches one file (plus its import in `index.ts`).
 */
import type * as z from 'zod/mini';
import type { ActionName } from '../contract/event-core';
import type { BillingState, Checkpoint, EpisodeRecord, HeartbeatReport, Overrides } from '../contract/state';
import type { Policy, RuleConfig } from '../policy/model';

/** Which guard can evaluate a rule from its own facts. */
export type Host = 'agent' | 'watchdog';

/** The instance lifecycle states EC2 reports. */
export type InstanceState = 'pending' | 'running' | 'stopping' | 'stopped' | 'shutting-down' | 'terminated';

/** One usage sample; a field left out is unknown (and never counts as idle). */
export interface Sample {
  /** Epoch ms at the end of the sampled interval. */
  readonly at: number;
  /** CPU utilisation over the interval, percent of all cores. */
  readonly cpuPercent?: number;
  /** Network throughput in + out, bytes per second. */
  readonly netBytesPerSec?: number;
  /** Interactive login sessions at the end of the interval. */
  readonly loginSessions?: number;
  /** EC2 status checks passed (watchdog) or the agent's self-check passed. */
  readonly statusOk?: boolean;
  /** Errors the agent counted during the interval. */
  readonly agentErrors?: number;
}

/** A named task the agent watches (systemd unit or process). */
export interface TaskStatus {
  readonly state: 'running' | 'exited' | 'unknown';
  /** Epoch ms the task was seen to finish. */
  readonly exitedAt?: number;
}

/** Everything a guard saw about one instance. Built by adapters; the engine trusts it. */
export interface Observation {
  readonly instanceId: string;
  /** Which guard observed: decides which rules can be evaluated from first-hand facts. */
  readonly host: Host;
  readonly state: InstanceState;
  /** Epoch ms the current state began, when known (LaunchTime for a running instance). */
  readonly stateSince?: number;
  readonly instanceType?: string;
  /** Hourly on-demand price from the price list; the policy's explicit rate wins. */
  readonly hourlyUsd?: number;
  /** Network bytes sent since first seen (reported by the agent), for the per-GB rate. */
  readonly netOutBytes?: number;
  readonly checkpoint?: Checkpoint;
  readonly episodes?: readonly EpisodeRecord[];
  readonly overrides?: Overrides;
  readonly heartbeat?: HeartbeatReport;
  /** Usage samples in ascending time order (agent: /proc; watchdog: CloudWatch). */
  readonly samples?: readonly Sample[];
  /** Length of the interval each sample covers. */
  readonly samplePeriodMs?: number;
  /** Tasks by rule name (agent). */
  readonly tasks?: Readonly<Record<string, TaskStatus>>;
}

/** Accounting figures at `now`, derived from the checkpoint. */
export interface Accounting {
  readonly firstSeen: number;
  readonly lifetimeMs: number;
  readonly runningMs: number;
  readonly spendUsd: number;
}

/** What a rule sees: the observation plus what the engine derived from it. */
export interface RuleContext {
  readonly now: number;
  readonly policy: Policy;
  readonly rule: RuleConfig;
  readonly obs: Observation;
  /** Billing state now, or `terminated`. */
  readonly billing: BillingState | 'terminated';
  /** The reconciled checkpoint (already includes a transition observed now). */
  readonly checkpoint: Checkpoint;
  readonly accounting: Accounting;
  readonly overrides: Overrides;
  /** Records of this rule's episodes (warnings, actions), newest last. */
  readonly records: readonly EpisodeRecord[];
  /** Hourly compute rate in force, or undefined when no price is known. */
  readonly hourlyUsd?: number;
}

/** Result of a condition scan over samples or an agent report. */
export type ConditionState =
  /** `reported`: known from the agent's heartbeat report (true only up to `lastAt`), not from samples. */
  | { readonly known: true; readonly since?: number; readonly lastAt: number; readonly reported?: boolean }
  | { readonly known: false; readonly why: string };

/**
 * A rule's verdict:
 * - `ok`: nothing to do (with an optional future time for displays);
 * - `pending`: will be due at `dueAt` unless things change (warnings start from here);
 * - `due`: the action is due now (`dueAt` ≤ now);
 * - `unknown`: the facts needed are missing; never treated as a reason to act.
 */
export type Outcome =
  | { readonly status: 'ok'; readonly reason: string; readonly figures?: Figures; readonly conditionSince?: number }
  | {
      readonly status: 'pending' | 'due';
      readonly reason: string;
      readonly dueAt: number;
      readonly episode: string;
      /** Overrides the configured action (schedule start, health escalation). */
      readonly action?: ActionName;
      readonly figures?: Figures;
      readonly conditionSince?: number;
    }
  | { readonly status: 'unknown'; readonly reason: string; readonly figures?: Figures };

/** Figures a rule reports for displays: current value against its limit. */
export interface Figures {
  readonly value?: number;
  readonly limit?: number;
  readonly unit?: string;
}

/** Result of cross-field validation: `[path relative to the rule, message]`. */
export type RuleProblem = readonly [string, string];

export interface RuleDefinition<Raw = unknown> {
  /** Kebab-case name, the value of `rule` in a policy. */
  readonly name: string;
  /** One-line summary for the rule reference. */
  readonly summary: string;
  /** Hard limits can only be extended, never snoozed. */
  readonly kind: 'hard' | 'soft';
  /** Hosts that can evaluate it from first-hand facts (others rely on the agent's report). */
  readonly hosts: readonly Host[];
  /** Actions it may be configured with; the first is its default. */
  readonly actions: readonly ActionName[];
  /** Strict schema of the rule's own fields (`rule`, `name`, `action`, `warnBefore` are common). */
  readonly schema: z.ZodMiniObject;
  /** Cross-field checks on the raw (schema-valid) rule. */
  validate?(raw: Raw): RuleProblem[];
  /** Turns the raw rule into normalized parameters (durations in ms). */
  normalize(raw: Raw): Record<string, unknown>;
  /** The decision, from facts and time only. */
  evaluate(ctx: RuleContext): Outcome;
  /** IAM actions the configured rule needs. */
  permissions(rule: RuleConfig): string[];
  /** A runnable example, as it is written in a policy. */
  readonly example: Record<string, unknown>;
}
