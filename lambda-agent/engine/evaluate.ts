/**
 * The decision engine: `evaluate(policy, observation, now) → Decision`.
 *
 * Pure and deterministic: no I/O, no clock, no randomness, no logging. Time is an
 * argument and the decision is plain data (it survives a JSON round trip); the agent,
 * the watchdog, the CLI and the savings replay all execute or display the same value.
 */
import type { ActionName } from '../contract/event-core';
import type { Checkpoint, EpisodeRecord, Overrides } from '../contract/state';
import { ACTION_STRENGTH, type Policy, type RuleConfig } from '../policy/model';
import { tariffOf } from '../policy/tariff';
import { findRule } from '../rules';
import type { Accounting, Figures, Observation, Outcome, RuleContext } from '../rules/types';
import { accountingAt, billingOf, reconcile } from './accounting';

/** A rule's status in a decision. */
export type RuleStatus = 'ok' | 'pending' | 'warning' | 'due' | 'acted' | 'snoozed' | 'blocked' | 'unknown';

export interface RuleReport {
  readonly rule: string;
  readonly type: string;
  readonly status: RuleStatus;
  readonly reason: string;
  readonly action: ActionName;
  readonly episode?: string;
  /** When the rule's action falls due (now or later). */
  readonly dueAt?: number;
  /** When the action will actually be taken (after the warning period). */
  readonly actAt?: number;
  readonly figures?: Figures;
}

export interface WarningNotice {
  readonly rule: string;
  readonly episode: string;
  readonly action: ActionName;
  /** When the action will be taken if nothing changes. */
  readonly dueAt: number;
  readonly reason: string;
}

export interface PlannedAction {
  readonly name: ActionName;
  /** The rule whose action was chosen (the strongest). */
  readonly rule: string;
  readonly episode: string;
  /** Every rule that was due in this decision. */
  readonly rules: readonly { readonly rule: string; readonly episode: string; readonly reason: string }[];
  readonly reason: string;
  /** A hard limit (lifetime, running time, spend) is among the reasons. */
  readonly hard: boolean;
}

export interface Decision {
  readonly instanceId: string;
  readonly policyId: string;
  readonly policyHash: string;
  /** Epoch ms of the evaluation. */
  readonly at: number;
  readonly dryRun: boolean;
  readonly billing: 'running' | 'stopped' | 'terminated';
  /** The action to take now, if any. */
  readonly action?: PlannedAction;
  /** Warnings to issue now (each once per episode). */
  readonly warnings: readonly WarningNotice[];
  /** Every rule's verdict. */
  readonly rules: readonly RuleReport[];
  /** Reasons of the action and warnings, in words with the figures. */
  readonly reasons: readonly string[];
  /** The next thing that will happen if nothing changes. */
  readonly next?: { readonly at: number; readonly rule: string; readonly kind: 'warning' | 'action'; readonly action: ActionName };
  readonly accounting: Accounting;
  readonly checkpoint: Checkpoint;
  readonly checkpointChanged: boolean;
  /** Episode records after this decision is carried out (persist when changed). */
  readonly episodes: readonly EpisodeRecord[];
  readonly episodesChanged: boolean;
  /** Per rule: since when its condition holds (the agent reports these). */
  readonly conditions: Readonly<Record<string, number>>;
  /** Problems that are not a rule's verdict (e.g. no price known). */
  readonly notices: readonly string[];
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

const NO_RECORDS: readonly EpisodeRecord[] = Object.freeze([]);
const NO_OVERRIDES: Overrides = Object.freeze({});

/** Records kept per rule: the current episode and the one before (for escalation). */
const RECORDS_PER_RULE = 2;
/** Records kept in all (they must fit one 256-character tag). */
const RECORDS_MAX = 6;

/** The earlier of the current "next thing" and this one. */
function earliest(next: Decision['next'], at: number, rule: string, kind: 'warning' | 'action', action: ActionName): Decision['next'] {
  return !next || at < next.at ? { at, rule, kind, action } : next;
}

function latest(r: EpisodeRecord): number {
  return Math.max(r.warnedAt ?? 0, r.actedAt ?? 0);
}

function upsert(records: EpisodeRecord[], rec: EpisodeRecord): void {
  const i = records.findIndex((r) => r.rule === rec.rule && r.episode === rec.episode);
  if (i >= 0) records[i] = { ...records[i], ...rec };
  else records.push(rec);
}

/**
 * Keep the records that fit one tag: per rule the newest two, in all the newest six.
 * Records of episodes that are current in this decision go first, so an acted episode
 * that is still going on is never forgotten (and acted on again) for older ones.
 */
function prune(records: EpisodeRecord[], current: ReadonlyMap<string, string>): EpisodeRecord[] {
  if (records.length <= 1) return records.slice();
  if (records.length <= RECORDS_MAX && sortedAndFew(records)) return records.slice();
  type Item = { readonly r: EpisodeRecord; readonly cur: number; readonly t: number };
  const order = (a: Item, b: Item) => a.cur - b.cur || a.t - b.t;
  const byRule = new Map<string, Item[]>();
  for (const r of records) {
    const item: Item = { r, cur: current.get(r.rule) === r.episode ? 1 : 0, t: latest(r) };
    const list = byRule.get(r.rule);
    if (list) list.push(item);
    else byRule.set(r.rule, [item]);
  }
  const kept: Item[] = [];
  for (const list of byRule.values()) kept.push(...list.sort(order).slice(-RECORDS_PER_RULE));
  return kept
    .sort(order)
    .slice(-RECORDS_MAX)
    .sort((a, b) => a.t - b.t)
    .map((i) => i.r);
}

/** Strictly ordered by time, at most two per rule: prune keeps them all, in this order. */
function sortedAndFew(records: readonly EpisodeRecord[]): boolean {
  for (let i = 1; i < records.length; i++) {
    if (latest(records[i - 1]) >= latest(records[i])) return false;
    let same = 0;
    for (let j = 0; j < i; j++) if (records[j].rule === records[i].rule) same++;
    if (same >= RECORDS_PER_RULE) return false;
  }
  return true;
}

function sameRecords(a: readonly EpisodeRecord[], b: readonly EpisodeRecord[]): boolean {
  if (a.length !== b.length) return false;
  // Unchanged records are the very same objects (upsert replaces what it changes).
  if (b.every((r) => a.includes(r))) return true;
  const key = (r: EpisodeRecord) => `${r.rule}:${r.episode}:${r.warnedAt ?? ''}:${r.actedAt ?? ''}:${r.action ?? ''}`;
  const set = new Set(a.map(key));
  return b.every((r) => set.has(key(r)));
}

/**
 * The report of a pending or due rule. Built property by property, in a fixed key
 * order: object spread of objects with optional keys is V8's slow cloning path, and
 * this runs for every rule of every evaluation.
 */
function reportOf(
  rule: RuleConfig,
  out: Extract<Outcome, { status: 'pending' | 'due' }>,
  action: ActionName,
  status: RuleStatus,
  actAt?: number,
  reason = out.reason,
): RuleReport {
  const r = { rule: rule.name, type: rule.type, reason, action, episode: out.episode, dueAt: out.dueAt } as Mutable<RuleReport>;
  if (out.figures) r.figures = out.figures;
  r.status = status;
  if (actAt !== undefined) r.actAt = actAt;
  return r;
}

export function evaluate(policy: Policy, obs: Observation, now: number): Decision {
  const billing = billingOf(obs.state);
  const tariff = tariffOf(policy, obs.hourlyUsd);
  const { checkpoint, changed } = reconcile(obs.checkpoint, obs.state, obs.stateSince, now, tariff);
  const accounting = accountingAt(checkpoint, now, tariff, obs.netOutBytes);
  const overrides = obs.overrides ?? NO_OVERRIDES;
  const snoozedUntil = overrides.snoozeUntil !== undefined && overrides.snoozeUntil > now ? overrides.snoozeUntil : undefined;
  let snoozedIso: string | undefined;
  const prior = obs.episodes ?? [];
  const records = prior.slice();
  const hourlyUsd = tariff.hourlyUsd;

  const reports: RuleReport[] = [];
  const warnings: WarningNotice[] = [];
  const due: Array<{ rule: RuleConfig; action: ActionName; episode: string; reason: string; hard: boolean }> = [];
  const conditions: Record<string, number> = {};
  const notices: string[] = [];
  /** Rule name → the episode going on now (pending or due); one per rule. */
  const current = new Map<string, string>();
  let next: Decision['next'];
  let hardLimitReached: string | undefined;

  for (const rule of policy.rules) {
    const def = findRule(rule.type);
    if (!def) throw new Error(`rule type '${rule.type}' is not registered`);
    if (billing === 'terminated') {
      reports.push({ rule: rule.name, type: rule.type, status: 'ok', reason: 'terminated', action: rule.action });
      continue;
    }
    const ctx: Mutable<RuleContext> = {
      now,
      policy,
      rule,
      obs,
      billing,
      checkpoint,
      accounting,
      overrides,
      records: records.length === 0 ? NO_RECORDS : records.filter((r) => r.rule === rule.name),
    };
    if (hourlyUsd !== undefined) ctx.hourlyUsd = hourlyUsd;
    const out: Outcome = def.evaluate(ctx);
    if (
      out.figures &&
      def.kind === 'hard' &&
      out.figures.value !== undefined &&
      out.figures.limit !== undefined &&
      out.figures.value >= out.figures.limit
    ) {
      hardLimitReached ??= `${rule.name} limit reached`;
    }
    if (out.status === 'unknown' && rule.type === 'spend') notices.push(out.reason);
    if (out.status === 'ok' || out.status === 'unknown') {
      if (out.status === 'ok' && out.conditionSince !== undefined) conditions[rule.name] = out.conditionSince;
      const r: Mutable<RuleReport> = { rule: rule.name, type: rule.type, status: out.status, reason: out.reason, action: rule.action };
      if (out.figures) r.figures = out.figures;
      reports.push(r);
      continue;
    }
    if (out.conditionSince !== undefined) conditions[rule.name] = out.conditionSince;
    current.set(rule.name, out.episode);
    const action = out.action ?? rule.action;
    const rec = records.find((r) => r.rule === rule.name && r.episode === out.episode);
    if (rec?.actedAt !== undefined) {
      reports.push(reportOf(rule, out, action, 'acted', undefined, `${out.reason}; ${rec.action ?? action} done for this episode`));
      continue;
    }
    if (snoozedUntil !== undefined && def.kind === 'soft') {
      reports.push(
        reportOf(
          rule,
          out,
          action,
          'snoozed',
          Math.max(out.dueAt, snoozedUntil),
          `${out.reason}; snoozed until ${(snoozedIso ??= new Date(snoozedUntil).toISOString())}`,
        ),
      );
      next = earliest(next, Math.max(out.dueAt, snoozedUntil), rule.name, 'action', action);
      continue;
    }
    const warnBefore = action === 'notify' || action === 'start' ? undefined : rule.warnBeforeMs;
    if (warnBefore !== undefined) {
      const warnAt = out.dueAt - warnBefore;
      if (rec?.warnedAt === undefined) {
        if (now >= warnAt) {
          const actAt = Math.max(out.dueAt, now + warnBefore);
          warnings.push({ rule: rule.name, episode: out.episode, action, dueAt: actAt, reason: out.reason });
          upsert(records, { rule: rule.name, episode: out.episode, warnedAt: now, action });
          reports.push(reportOf(rule, out, action, 'warning', actAt));
          next = earliest(next, actAt, rule.name, 'action', action);
        } else {
          reports.push(reportOf(rule, out, action, 'pending', out.dueAt));
          next = earliest(next, warnAt, rule.name, 'warning', action);
        }
        continue;
      }
      const actAt = Math.max(out.dueAt, rec.warnedAt + warnBefore);
      // A rule that says pending is never acted on, even past its due time (a condition
      // reported by the agent is due only once a report shows it held for its window).
      if (now < actAt || out.status === 'pending') {
        reports.push(reportOf(rule, out, action, 'pending', actAt));
        next = earliest(next, actAt, rule.name, 'action', action);
        continue;
      }
      due.push({ rule, action, episode: out.episode, reason: out.reason, hard: def.kind === 'hard' });
      reports.push(reportOf(rule, out, action, 'due', actAt));
      continue;
    }
    if (out.status === 'pending') {
      reports.push(reportOf(rule, out, action, 'pending', out.dueAt));
      next = earliest(next, out.dueAt, rule.name, 'action', action);
      continue;
    }
    due.push({ rule, action, episode: out.episode, reason: out.reason, hard: def.kind === 'hard' });
    reports.push(reportOf(rule, out, action, 'due', out.dueAt));
  }

  // A start never overrides anything else, and never revives an instance over a hard limit.
  let candidates = due;
  if (due.some((d) => d.action !== 'start')) candidates = due.filter((d) => d.action !== 'start');
  else if (due.length > 0 && hardLimitReached) {
    for (const d of due) {
      const i = reports.findIndex((r) => r.rule === d.rule.name);
      reports[i] = { ...reports[i], status: 'blocked', reason: `${reports[i].reason}; not started: ${hardLimitReached}` };
    }
    candidates = [];
  }

  let action: PlannedAction | undefined;
  if (candidates.length > 0) {
    const strongest = candidates.reduce((a, b) => (ACTION_STRENGTH[b.action] > ACTION_STRENGTH[a.action] ? b : a));
    action = {
      name: strongest.action,
      rule: strongest.rule.name,
      episode: strongest.episode,
      rules: candidates.map((d) => ({ rule: d.rule.name, episode: d.episode, reason: d.reason })),
      reason: candidates.map((d) => d.reason).join('; '),
      hard: candidates.some((d) => d.hard),
    };
    for (const d of candidates) upsert(records, { rule: d.rule.name, episode: d.episode, actedAt: now, action: strongest.action });
  }

  const episodes = prune(records, current);
  // Built in this key order, optional keys only when set (plain JSON, no undefined).
  const decision: Mutable<Decision> = {
    instanceId: obs.instanceId,
    policyId: policy.id,
    policyHash: policy.hash,
    at: now,
    dryRun: policy.dryRun,
    billing,
  } as Mutable<Decision>;
  if (action) decision.action = action;
  decision.warnings = warnings;
  decision.rules = reports;
  const reasons = action ? [action.reason] : [];
  for (const w of warnings) reasons.push(`warning: ${w.reason}`);
  decision.reasons = reasons;
  if (next) decision.next = next;
  decision.accounting = accounting;
  decision.checkpoint = checkpoint;
  decision.checkpointChanged = changed;
  decision.episodes = episodes;
  decision.episodesChanged = !sameRecords(prior, episodes);
  decision.conditions = conditions;
  decision.notices = notices;
  return decision;
}
