/**
 * The executor: turns decisions into adapter calls, shared by the watchdog and the
 * agent (each passes its own ports). Schedules and events may be delivered twice and a
 * run may crash half-way, so every action follows a small idempotency protocol whose
 * state lives where the facts live (instance tags), not in an extra paid store:
 *
 *   1. save the episode record marked `pending` (in progress),
 *   2. carry out the action (an idempotent EC2 call),
 *   3. publish the event (its id is deterministic: subscribers deduplicate on it),
 *   4. save the record completed.
 *
 * A run that finds a `pending` record finishes it ({@link recoverPending}): if the
 * action's effect is visible it only republishes the event; if not, and the record is
 * recent (and no longer possibly in progress, {@link PENDING_SETTLE_MS}), the record is
 * reset to its warning so that the engine decides afresh in the same run: the same
 * action for the same episode (same event id) if it is still due, nothing if the
 * condition ended or an override arrived meanwhile; an expired one is abandoned and
 * announced. The engine treats a pending record as acted, so no second
 * decision is ever made for the same episode while one is in progress. Warnings are
 * published first and recorded after: a crash in between repeats the same event id,
 * never a second warning.
 */
import {
  defaultSeverity,
  eventId,
  eventTypeOfAction,
  EVENT_SCHEMA_VERSION,
  type ActionName,
  type EventSource,
  type EventType,
  type Severity,
  type SmvmEvent,
} from './contract/event-core';
import type { Checkpoint, EpisodeRecord } from './contract/state';
import type { Decision } from './engine/evaluate';
import type { InstanceState } from './rules/types';
import { formatDuration } from './policy/duration';

/** Actions that call the EC2 API. */
export type InstanceAction = Exclude<ActionName, 'notify'>;

export type ActionResult =
  | { readonly outcome: 'done' }
  /** Hibernation was refused; the instance was stopped instead. */
  | { readonly outcome: 'fallback'; readonly performed: InstanceAction; readonly reason: string }
  | {
      readonly outcome: 'skipped';
      readonly reason: 'termination-protection' | 'stop-protection' | 'not-applicable' | 'dry-run';
      readonly detail?: string;
    }
  | { readonly outcome: 'failed'; readonly error: string };

export interface ExecutorPorts {
  /** Carry out one action on several instances (batched); one result per instance id. */
  perform(action: InstanceAction, instanceIds: readonly string[]): Promise<Map<string, ActionResult>>;
  /** Persist the instance's state in one write: checkpoint (watchdog) and/or episode records. */
  saveState(instanceId: string, state: { checkpoint?: Checkpoint; episodes?: readonly EpisodeRecord[] }): Promise<void>;
  publish(event: SmvmEvent): Promise<void>;
}

export interface ExecutionContext {
  readonly source: EventSource;
  readonly policyId: string;
  /** Whether this host persists the checkpoint (the watchdog does; the agent cannot). */
  readonly writesCheckpoint: boolean;
  /** Management ids by instance id, for events. */
  readonly managementIds?: ReadonlyMap<string, string>;
}

export interface ExecutionReport {
  actions: Array<{ instanceId: string; action: ActionName; result: ActionResult['outcome'] }>;
  warnings: number;
  events: number;
  writes: number;
  errors: Array<{ instanceId: string; error: string }>;
}

/** How long an in-progress action may be finished by a later run. */
export const PENDING_EXPIRY_MS = 15 * 60_000;
/**
 * An action recorded pending less than this long ago may still be in progress (a
 * watchdog run lasts at most a minute, an agent's action seconds; the other guard or an
 * overlapping run may be carrying it out): until its effect shows, it is left alone.
 */
export const PENDING_SETTLE_MS = 60_000;

const EFFECT: Record<InstanceAction, readonly InstanceState[]> = {
  stop: ['stopping', 'stopped', 'shutting-down', 'terminated'],
  hibernate: ['stopping', 'stopped', 'shutting-down', 'terminated'],
  terminate: ['shutting-down', 'terminated'],
  reboot: [],
  start: ['pending', 'running'],
};

function trimSubject(s: string): string {
  return s.length <= 100 ? s : `${s.slice(0, 97)}...`;
}

/** Build an event in the contract's schema. */
export function buildEvent(
  ctx: ExecutionContext,
  fields: {
    type: EventType;
    time: number;
    instanceId?: string;
    subject: string;
    message: string;
    severity?: Severity;
    rule?: string;
    episode?: string;
    action?: ActionName;
    dueAt?: number;
    dryRun?: boolean;
    decision?: Decision;
    detail?: Record<string, unknown>;
    idParts?: Array<string | number | undefined>;
  },
): SmvmEvent {
  const managementId = fields.instanceId ? ctx.managementIds?.get(fields.instanceId) : undefined;
  return {
    schemaVersion: EVENT_SCHEMA_VERSION,
    id: eventId(...(fields.idParts ?? [fields.type, fields.instanceId, fields.rule, fields.episode])),
    type: fields.type,
    time: new Date(fields.time).toISOString(),
    source: ctx.source,
    severity: fields.severity ?? defaultSeverity(fields.type),
    policyId: ctx.policyId,
    ...(fields.instanceId ? { instanceId: fields.instanceId } : {}),
    ...(managementId ? { managementId } : {}),
    subject: trimSubject(fields.subject),
    message: fields.message,
    ...(fields.rule ? { rule: fields.rule } : {}),
    ...(fields.episode ? { episode: fields.episode } : {}),
    ...(fields.action ? { action: fields.action } : {}),
    ...(fields.dueAt !== undefined ? { dueAt: new Date(fields.dueAt).toISOString() } : {}),
    ...(fields.dryRun ? { dryRun: true } : {}),
    ...(fields.decision
      ? {
          accounting: {
            lifetimeMs: Math.round(fields.decision.accounting.lifetimeMs),
            runningMs: Math.round(fields.decision.accounting.runningMs),
            spendUsd: Math.round(fields.decision.accounting.spendUsd * 10000) / 10000,
            firstSeen: fields.decision.accounting.firstSeen,
          },
        }
      : {}),
    ...(fields.detail ? { detail: fields.detail } : {}),
  };
}

/** The event type announcing an action of a rule (notify has rule-specific types). */
function announcedType(action: ActionName, ruleType: string | undefined): EventType {
  if (action === 'notify' && ruleType === 'heartbeat-lost') return 'heartbeat-lost';
  if (action === 'notify' && ruleType === 'task-completion') return 'task-finished';
  return eventTypeOfAction(action);
}

function ruleTypeOf(d: Decision, rule: string): string | undefined {
  return d.rules.find((r) => r.rule === rule)?.type;
}

function completed(r: EpisodeRecord): EpisodeRecord {
  const { pending: _pending, ...rest } = r;
  return rest;
}

function markPending(records: readonly EpisodeRecord[], d: Decision, pending: boolean): EpisodeRecord[] {
  const acted = new Set((d.action?.rules ?? []).map((r) => `${r.rule}:${r.episode}`));
  return records.map((r) => {
    if (!acted.has(`${r.rule}:${r.episode}`)) return r;
    return pending ? { ...r, pending: true } : completed(r);
  });
}

/**
 * A pending record whose action is not known to have taken effect, back to what it was
 * before the decision (its warning, if any), so that the engine decides afresh.
 */
function undecided(r: EpisodeRecord): EpisodeRecord | undefined {
  if (r.warnedAt === undefined) return undefined;
  return { rule: r.rule, episode: r.episode, warnedAt: r.warnedAt, ...(r.action === undefined ? {} : { action: r.action }) };
}

/**
 * Finish actions a crashed run left `pending`. Returns the records to persist when
 * anything changed (else undefined) and the events to publish. A fresh record whose
 * effect is not visible is not carried out blindly (its condition may have ended, an
 * extension or a snooze may have arrived): it is reset to its warning, and the engine
 * decides again in the same run, for the same episode.
 */
export function recoverPending(
  ctx: ExecutionContext,
  instanceId: string,
  state: InstanceState,
  records: readonly EpisodeRecord[],
  now: number,
): { records?: EpisodeRecord[]; events: SmvmEvent[] } {
  const pending = records.filter((r) => r.pending && r.actedAt !== undefined);
  if (pending.length === 0) return { events: [] };
  const events: SmvmEvent[] = [];
  let out: Array<EpisodeRecord | undefined> = [...records];
  let changed = false;
  for (const r of pending) {
    const action = (r.action ?? 'notify') as ActionName;
    const visible = action === 'notify' || action === 'reboot' || EFFECT[action].includes(state);
    const fresh = now - r.actedAt! <= PENDING_EXPIRY_MS;
    if (!visible && now - r.actedAt! < PENDING_SETTLE_MS) continue; // may be in progress: acted, for now
    changed = true;
    if (!visible && fresh) {
      out = out.map((x) => (x === r ? undecided(x) : x));
      continue;
    }
    if (visible) {
      events.push(
        buildEvent(ctx, {
          type: eventTypeOfAction(action),
          time: r.actedAt!,
          instanceId,
          rule: r.rule,
          episode: r.episode,
          action,
          subject: `${instanceId} ${eventTypeOfAction(action)} (${r.rule})`,
          message: `${action} by rule '${r.rule}' completed (confirmed by a later run)`,
        }),
      );
      out = out.map((x) => (x === r ? completed(x) : x));
    } else {
      events.push(
        buildEvent(ctx, {
          type: 'error',
          time: now,
          instanceId,
          rule: r.rule,
          episode: r.episode,
          action,
          subject: `${instanceId}: ${action} abandoned (${r.rule})`,
          message: `the ${action} decided ${formatDuration(now - r.actedAt!)} ago by rule '${r.rule}' was never confirmed and is abandoned; the rule will be evaluated afresh`,
          idParts: ['abandoned', instanceId, r.rule, r.episode],
        }),
      );
      out = out.filter((x) => x !== r);
    }
  }
  if (!changed) return { events: [] };
  return { records: out.filter((x): x is EpisodeRecord => x !== undefined), events };
}

/**
 * Carry out decisions: warnings, then actions batched per action, with the protocol
 * above. One failing instance never blocks the rest: its error is published as an
 * `error` event and reported.
 */
export async function executeAll(decisions: readonly Decision[], ports: ExecutorPorts, ctx: ExecutionContext): Promise<ExecutionReport> {
  const report: ExecutionReport = { actions: [], warnings: 0, events: 0, writes: 0, errors: [] };
  const failed = new Set<string>();
  /** `episode`: the failure is about this action's episode; repeated, it keeps one event id. */
  const fail = async (instanceId: string, err: unknown, at: number, episode?: { rule: string; episode: string }) => {
    const message = err instanceof Error ? err.message : String(err);
    failed.add(instanceId);
    report.errors.push({ instanceId, error: message });
    try {
      await ports.publish(
        buildEvent(ctx, {
          type: 'error',
          time: at,
          instanceId,
          subject: `${instanceId}: error`,
          message,
          idParts: episode ? ['error', instanceId, episode.rule, episode.episode, message] : ['error', instanceId, at, message],
        }),
      );
      report.events++;
    } catch {
      /* reported in the run's summary */
    }
  };
  const publish = async (e: SmvmEvent) => {
    await ports.publish(e);
    report.events++;
  };
  const save = async (id: string, s: { checkpoint?: Checkpoint; episodes?: readonly EpisodeRecord[] }) => {
    await ports.saveState(id, s);
    report.writes++;
  };

  // Phase 1: warnings, and state writes of decisions without an action.
  for (const d of decisions) {
    try {
      for (const w of d.warnings) {
        await publish(
          buildEvent(ctx, {
            type: 'warning',
            time: d.at,
            instanceId: d.instanceId,
            rule: w.rule,
            episode: w.episode,
            action: w.action,
            dueAt: w.dueAt,
            dryRun: d.dryRun,
            decision: d,
            severity: 'warning',
            subject: `${d.instanceId} will ${w.action} in ${formatDuration(w.dueAt - d.at)} (${w.rule})`,
            message: `${w.reason}. The instance will ${w.action} at ${new Date(w.dueAt).toISOString()} unless this changes; snooze or extend with the smvm CLI.`,
          }),
        );
        report.warnings++;
      }
      if (!d.action && (d.episodesChanged || (ctx.writesCheckpoint && d.checkpointChanged))) {
        await save(d.instanceId, {
          ...(ctx.writesCheckpoint && d.checkpointChanged ? { checkpoint: d.checkpoint } : {}),
          ...(d.episodesChanged ? { episodes: d.episodes } : {}),
        });
      }
    } catch (e) {
      await fail(d.instanceId, e, d.at);
    }
  }

  // Phase 2: actions. Intent first, then the batched calls, then events, then completion.
  const withAction = decisions.filter((d) => d.action && !failed.has(d.instanceId));
  const intents: Decision[] = [];
  for (const d of withAction) {
    try {
      await save(d.instanceId, {
        ...(ctx.writesCheckpoint && d.checkpointChanged ? { checkpoint: d.checkpoint } : {}),
        episodes: markPending(d.episodes, d, true),
      });
      intents.push(d);
    } catch (e) {
      await fail(d.instanceId, e, d.at, d.action!);
    }
  }
  const byAction = new Map<InstanceAction, Decision[]>();
  const results = new Map<string, ActionResult>();
  for (const d of intents) {
    const a = d.action!.name;
    if (a === 'notify') results.set(d.instanceId, { outcome: 'done' });
    else if (d.dryRun) results.set(d.instanceId, { outcome: 'skipped', reason: 'dry-run' });
    else byAction.set(a, [...(byAction.get(a) ?? []), d]);
  }
  for (const [action, list] of byAction) {
    let res: Map<string, ActionResult>;
    try {
      res = await ports.perform(
        action,
        list.map((d) => d.instanceId),
      );
    } catch (e) {
      res = new Map(
        list.map((d) => [d.instanceId, { outcome: 'failed', error: e instanceof Error ? e.message : String(e) } as ActionResult]),
      );
    }
    for (const d of list) results.set(d.instanceId, res.get(d.instanceId) ?? { outcome: 'failed', error: 'no result for this instance' });
  }
  for (const d of intents) {
    const a = d.action!;
    const r = results.get(d.instanceId)!;
    report.actions.push({ instanceId: d.instanceId, action: a.name, result: r.outcome });
    try {
      if (r.outcome === 'failed') {
        // The record stays pending: the next run decides again while it is fresh. A failure
        // repeated for the same episode keeps its event id (subscribers deduplicate).
        await fail(d.instanceId, new Error(`${a.name} failed: ${r.error}`), d.at, a);
        continue;
      }
      const ruleType = ruleTypeOf(d, a.rule);
      const performed = r.outcome === 'fallback' ? r.performed : a.name;
      const type: EventType = r.outcome === 'skipped' ? 'skipped' : announcedType(performed, ruleType);
      const verb =
        r.outcome === 'skipped' ? `would ${a.name} but ${r.reason === 'dry-run' ? 'dry run' : r.reason.replace(/-/g, ' ')}` : type;
      await publish(
        buildEvent(ctx, {
          type,
          time: d.at,
          instanceId: d.instanceId,
          rule: a.rule,
          episode: a.episode,
          action: a.name,
          decision: d,
          dryRun: d.dryRun,
          ...(a.hard && type !== 'skipped' ? { severity: a.name === 'notify' ? 'warning' : 'critical' } : {}),
          subject: `${d.instanceId} ${verb}: ${a.rule}`,
          message: `${a.reason}.${r.outcome === 'fallback' ? ` Hibernation was not possible (${r.reason}); stopped instead.` : ''}${r.outcome === 'skipped' && r.detail ? ` ${r.detail}` : ''}`,
          idParts: [type, d.instanceId, a.rule, a.episode],
          detail: {
            rules: a.rules.map((x) => x.rule),
            ...(r.outcome === 'skipped' ? { skipped: r.reason } : {}),
            ...(r.outcome === 'fallback' ? { requested: a.name, performed: r.performed } : {}),
          },
        }),
      );
      await save(d.instanceId, { episodes: markPending(d.episodes, d, false) });
    } catch (e) {
      await fail(d.instanceId, e, d.at);
    }
  }
  return report;
}

/**
 * Finish the pending actions of several instances before a new evaluation: republish
 * confirmed ones, reset fresh unconfirmed ones for the engine to decide again, abandon
 * expired ones. Returns each instance's records as they stand afterwards (to feed into
 * `evaluate`); they are written at once, so a pending mark never outlives this run.
 */
export async function finishPending(
  items: ReadonlyArray<{ instanceId: string; state: InstanceState; records: readonly EpisodeRecord[] }>,
  ports: ExecutorPorts,
  ctx: ExecutionContext,
  now: number,
): Promise<Map<string, readonly EpisodeRecord[]>> {
  const out = new Map<string, readonly EpisodeRecord[]>();
  for (const item of items) {
    const rp = recoverPending(ctx, item.instanceId, item.state, item.records, now);
    if (!rp.records) continue;
    const records = rp.records;
    try {
      for (const e of rp.events) await ports.publish(e);
      await ports.saveState(item.instanceId, { episodes: records });
      out.set(item.instanceId, records);
    } catch {
      // Left pending; the next run tries again.
    }
  }
  return out;
}
