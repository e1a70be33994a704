/**
 * An independent model of what the soak's policy should have done, written from the
 * policy's meaning (not by calling the engine), and the checks of what the hosts did
 * against it.
 *
 * The policy's meaning, as a user reads it:
 * - lifetime: an instance is terminated `lifetime` (+ extensions) after it was first
 *   launched, stop/start notwithstanding, announced `lifetimeWarn` before;
 * - running time: an instance is stopped once its running time, summed over its runs,
 *   reaches `running` (+ extensions), announced `runningWarn` before;
 * - idle: an instance whose CPU and network stayed below the thresholds, with no gap in
 *   the samples longer than 1.5 sampling periods, for `idleWindow` (not counting the
 *   first `idleGrace` of a run) is stopped, unless snoozed;
 * - nobody else's instance is ever touched; every action is announced (at least once);
 *   running time in the tags is what the instance really ran;
 * - faults may delay an action, never lose it: once the faults stop, every due action is
 *   taken within two cycles (after its warning period, when the warning was delayed too);
 * - no action before it is due, none repeated once it took effect.
 *
 * What happened comes from the fault proxy's log (every call that reached moto and the
 * transitions it carried out, on the test clock), the logical calls of the hosts, the
 * samples the agents took and the events that reached the queue.
 */
import { AGENT_WRITABLE_TAGS, POLICY_TAG, STATE_TAG, WATCHDOG_WRITABLE_TAGS } from '../../lambda-agent/contract/tags';
import { decodeCheckpoint } from '../../lambda-agent/contract/state';
import type { SmvmEvent } from '../../lambda-agent/contract/events';
import type { ProxyCall, Transition } from '../support/fault-proxy';
import type { FleetInstance, LogicalCall } from './world';

export const MIN = 60_000;
export const HOUR = 60 * MIN;

/** The soak policy's figures (the document is built from them). */
export interface ModelPolicy {
  readonly id: string;
  readonly lifetimeMs: number;
  readonly lifetimeWarnMs: number;
  readonly runningMs: number;
  readonly runningWarnMs: number;
  readonly idleWindowMs: number;
  readonly idleGraceMs: number;
  readonly idleCpuBelow: number;
  readonly idleNetBelow: number;
  readonly sampleMs: number;
  readonly heartbeatMs: number;
}

export function policyDocument(m: ModelPolicy) {
  const d = (ms: number) => `${Math.round(ms / MIN)}m`;
  return {
    id: m.id,
    agent: { sampleInterval: d(m.sampleMs), heartbeatInterval: d(m.heartbeatMs) },
    rules: [
      { rule: 'lifetime', max: d(m.lifetimeMs), action: 'terminate' as const, warnBefore: d(m.lifetimeWarnMs) },
      { rule: 'running-time', max: d(m.runningMs), action: 'stop' as const, warnBefore: d(m.runningWarnMs) },
      {
        rule: 'idle',
        window: d(m.idleWindowMs),
        action: 'stop' as const,
        startGrace: d(m.idleGraceMs),
        cpuPercentBelow: m.idleCpuBelow,
        networkBytesPerSecBelow: m.idleNetBelow,
      },
    ],
  };
}

/** One sample an agent took (the usage at that instant, by the test's script). */
export interface SampleTaken {
  readonly id: string;
  readonly at: number;
  readonly idle: boolean;
  /** Which life of the agent took it (a kill starts a new one). */
  readonly incarnation: number;
}

export interface History {
  readonly policy: ModelPolicy;
  readonly fleet: readonly FleetInstance[];
  readonly calls: readonly ProxyCall[];
  readonly transitions: readonly Transition[];
  readonly logical: readonly LogicalCall[];
  readonly samples: readonly SampleTaken[];
  readonly snoozes: ReadonlyArray<{ id: string; at: number; until: number }>;
  readonly extensions: ReadonlyArray<{ id: string; at: number; lifetimeMs: number }>;
  readonly delivered: ReadonlyArray<{ event: SmvmEvent }>;
  /** Tags at the end, by instance id. */
  readonly finalTags: ReadonlyMap<string, Record<string, string>>;
  /** Tags at launch, by instance id. */
  readonly initialTags: ReadonlyMap<string, Record<string, string>>;
  /** When random faults stopped (clean phase after). */
  readonly faultsEnd: number;
  /** Time of the last step. */
  readonly end: number;
  /** Times of the steps. */
  readonly steps: readonly number[];
}

export interface Violation {
  readonly check: string;
  readonly instanceId?: string;
  readonly at?: number;
  readonly detail: string;
}

export interface ModelReport {
  readonly violations: Violation[];
  readonly figures: {
    guardActions: number;
    guardActionsBy: Record<string, number>;
    personActions: number;
    expectedEvents: number;
    deliveredEvents: number;
    duplicateDeliveries: number;
    lostByType: Record<string, number>;
    obligationsChecked: number;
  };
}

const GUARD = /^(watchdog|agent-|os-)/;
const MUTATING = new Set([
  'StopInstances',
  'StartInstances',
  'TerminateInstances',
  'RebootInstances',
  'CreateTags',
  'DeleteTags',
  'ModifyInstanceAttribute',
  'RunInstances',
]);

/** Running intervals of an instance, from the transitions carried out. */
export function runsOf(
  id: string,
  transitions: readonly Transition[],
): Array<{ start: number; end?: number; endBy?: string; endTo?: string }> {
  const runs: Array<{ start: number; end?: number; endBy?: string; endTo?: string }> = [];
  for (const t of transitions) {
    if (t.instanceId !== id) continue;
    const open = runs.length > 0 && runs[runs.length - 1].end === undefined;
    if (t.to === 'running' && !open) runs.push({ start: t.time });
    else if ((t.to === 'stopped' || t.to === 'terminated') && open)
      Object.assign(runs[runs.length - 1], { end: t.time, endBy: t.principal, endTo: t.to });
  }
  return runs;
}

function runningUntil(runs: ReturnType<typeof runsOf>, at: number): number {
  let ms = 0;
  for (const r of runs) if (r.start < at) ms += Math.min(r.end ?? at, at) - r.start;
  return ms;
}

/** When an instance's summed running time reaches `limit` during one of its runs. */
function runningDue(runs: ReturnType<typeof runsOf>, limit: number): Array<{ run: number; at: number }> {
  const out: Array<{ run: number; at: number }> = [];
  let before = 0;
  runs.forEach((r, i) => {
    const at = r.start + Math.max(0, limit - before);
    if (r.end === undefined || at < r.end) out.push({ run: i, at });
    before += (r.end ?? Infinity) - r.start;
  });
  return out;
}

/**
 * Since when the instance has been idle at `at`, from the agent's samples up to `at`:
 * the streak of idle samples ending with the latest one, broken by a busy sample, a gap
 * over 1.5 periods, the run's start grace, and (if `byIncarnation`) an agent restart.
 */
function idleSince(h: History, id: string, at: number, runStart: number, byIncarnation: boolean): number | undefined {
  const p = h.policy;
  const notBefore = runStart + p.idleGraceMs;
  const list = h.samples.filter((s) => s.id === id && s.at <= at && s.at > notBefore);
  if (list.length === 0) return undefined;
  const last = list[list.length - 1];
  if (!last.idle) return undefined;
  let since = last.at - p.sampleMs;
  for (let i = list.length - 2; i >= 0; i--) {
    const s = list[i];
    const next = list[i + 1];
    if (next.at - s.at > 1.5 * p.sampleMs || !s.idle) break;
    if (byIncarnation && s.incarnation !== next.incarnation) break;
    since = s.at - p.sampleMs;
  }
  return Math.max(since, notBefore);
}

function snoozedUntil(h: History, id: string, at: number): number | undefined {
  const s = h.snoozes.filter((x) => x.id === id && x.at <= at).pop();
  return s && s.until > at ? s.until : undefined;
}

function lifetimeLimit(h: History, id: string, at: number): number {
  return h.policy.lifetimeMs + h.extensions.filter((e) => e.id === id && e.at <= at).reduce((a, e) => a + e.lifetimeMs, 0);
}

/** Runs every check; the history is what the soak recorded. */
export function checkHistory(h: History): ModelReport {
  const v: Violation[] = [];
  const p = h.policy;
  const TOL = 2_000;
  const ours = new Set(h.fleet.filter((f) => f.kind === 'policy').map((f) => f.id));
  const launched = new Map(h.fleet.map((f) => [f.id, f.launchedAt]));
  const watchdogKeys = new Set<string>(WATCHDOG_WRITABLE_TAGS);
  const agentKeys = new Set<string>(AGENT_WRITABLE_TAGS);
  const step = h.steps.length > 1 ? h.steps[1] - h.steps[0] : 5 * MIN;

  // ---------------------------------------------------------------- nobody else's instance
  for (const c of h.calls) {
    if (!c.principal || !GUARD.test(c.principal) || !MUTATING.has(c.action)) continue;
    const own = c.principal.startsWith('agent-') ? c.principal.slice(6) : c.principal.startsWith('os-') ? c.principal.slice(3) : undefined;
    for (const id of c.instanceIds) {
      const allowed = own ? id === own : ours.has(id);
      if (!allowed)
        v.push({
          check: 'wrong-instance',
          instanceId: id,
          at: c.time,
          detail: `${c.principal} called ${c.action} on ${id} (${h.fleet.find((f) => f.id === id)?.kind ?? 'unknown'})`,
        });
    }
    if (c.action === 'RunInstances' || c.action === 'ModifyInstanceAttribute' || (c.action === 'StartInstances' && own)) {
      v.push({ check: 'wrong-instance', at: c.time, detail: `${c.principal} called ${c.action}, which it never should` });
    }
    if (c.tags) {
      const keys = own && c.principal.startsWith('agent-') ? agentKeys : watchdogKeys;
      const bad = Object.keys(c.tags).filter((k) => !keys.has(k));
      if (bad.length)
        v.push({ check: 'wrong-tag', instanceId: c.instanceIds[0], at: c.time, detail: `${c.principal} wrote ${bad.join(', ')}` });
    }
  }
  for (const c of h.calls) {
    if (c.principal !== 'watchdog' || c.action !== 'DescribeInstances') continue;
    const f = c.params ?? {};
    const scoped = Object.keys(f).some(
      (k) => /^Filter\.\d+\.Name$/.test(k) && f[k] === `tag:${POLICY_TAG}` && f[k.replace('Name', 'Value.1')] === p.id,
    );
    if (!scoped)
      v.push({ check: 'unscoped-describe', at: c.time, detail: `DescribeInstances without the tag:${POLICY_TAG}=${p.id} filter` });
  }
  for (const f of h.fleet) {
    if (f.kind === 'policy') continue;
    const touched = h.transitions.filter((t) => t.instanceId === f.id && t.principal !== 'operator');
    if (touched.length)
      v.push({
        check: 'wrong-instance',
        instanceId: f.id,
        detail: `${f.kind} instance changed state by ${touched.map((t) => t.principal).join(', ')}`,
      });
    if (JSON.stringify(h.finalTags.get(f.id) ?? {}) !== JSON.stringify(h.initialTags.get(f.id) ?? {})) {
      v.push({
        check: 'wrong-instance',
        instanceId: f.id,
        detail: `${f.kind} instance's tags changed: ${JSON.stringify(h.finalTags.get(f.id))}`,
      });
    }
  }

  // ---------------------------------------------------------------- actions: justified, not repeated, not missed
  const guardActions = h.transitions.filter((t) => t.principal && GUARD.test(t.principal) && (t.to === 'stopped' || t.to === 'terminated'));
  const guardActionsBy: Record<string, number> = {};
  for (const t of guardActions) {
    const who = t.principal!.replace(/-i-[0-9a-f]+$/, '');
    guardActionsBy[`${t.to} by ${who}`] = (guardActionsBy[`${t.to} by ${who}`] ?? 0) + 1;
    const runs = runsOf(
      t.instanceId,
      h.transitions.filter((x) => x.seq < t.seq),
    );
    const run = runs[runs.length - 1];
    const firstSeen = launched.get(t.instanceId)!;
    const lifetimeDue = firstSeen + lifetimeLimit(h, t.instanceId, t.time);
    if (t.to === 'terminated') {
      if (t.time < lifetimeDue - TOL)
        v.push({
          check: 'premature',
          instanceId: t.instanceId,
          at: t.time,
          detail: `terminated by ${t.principal} ${((lifetimeDue - t.time) / MIN).toFixed(1)} min before the lifetime limit`,
        });
      continue;
    }
    const used = runningUntil(runs, t.time);
    const runningOk = used >= p.runningMs - TOL;
    const since = run && run.end === undefined ? idleSince(h, t.instanceId, t.time, run.start, false) : undefined;
    const snooze = snoozedUntil(h, t.instanceId, t.time);
    const idleOk = since !== undefined && since + p.idleWindowMs <= t.time + TOL && snooze === undefined;
    const lifetimeOk = t.time >= lifetimeDue - TOL; // a terminate that fell back to a stop
    if (!runningOk && !idleOk && !lifetimeOk) {
      const claimed = h.delivered.find(
        (d) => d.event.instanceId === t.instanceId && d.event.type === 'stopped' && Math.abs(Date.parse(d.event.time) - t.time) <= 20 * MIN,
      )?.event.rule;
      v.push({
        check: 'premature',
        instanceId: t.instanceId,
        at: t.time,
        detail: `stopped by ${t.principal} with running time ${(used / MIN).toFixed(1)} min of ${p.runningMs / MIN}, idle ${since === undefined ? 'no' : `since ${((t.time - since) / MIN).toFixed(1)} min`}${snooze ? ', snoozed' : ''}; announced as ${claimed ?? 'nothing'}`,
      });
    }
  }
  for (const c of h.logical) {
    if (!GUARD.test(c.principal) || !/^(StopInstances|TerminateInstances)$/.test(c.action)) continue;
    for (const id of c.instanceIds) {
      const before = h.transitions.filter((t) => t.instanceId === id && t.seq <= c.proxySeqBefore);
      const last = before[before.length - 1];
      const target = c.action === 'StopInstances' ? ['stopped', 'terminated'] : ['terminated'];
      if (last && target.includes(last.to) && last.principal && GUARD.test(last.principal)) {
        v.push({
          check: 'duplicate-action',
          instanceId: id,
          at: c.time,
          detail: `${c.principal} ${c.action} after ${last.principal} already made it ${last.to}`,
        });
      }
    }
  }
  let obligations = 0;
  const deadline = (due: number, warnMs: number) => Math.max(due, h.faultsEnd) + warnMs + 2 * step;
  for (const id of ours) {
    const runs = runsOf(id, h.transitions);
    const terminatedAt = h.transitions.find((t) => t.instanceId === id && t.to === 'terminated')?.time;
    const dueL = launched.get(id)! + lifetimeLimit(h, id, h.end);
    const dl = deadline(dueL, p.lifetimeWarnMs);
    if (dl <= h.end) {
      obligations++;
      if (terminatedAt === undefined || terminatedAt > dl) {
        v.push({
          check: 'missed',
          instanceId: id,
          at: dl,
          detail: `lifetime due at +${((dueL - launched.get(id)!) / HOUR).toFixed(2)} h, ${terminatedAt === undefined ? 'never terminated' : `terminated ${((terminatedAt - dl) / MIN).toFixed(0)} min after the deadline`}`,
        });
      }
    }
    for (const { run, at } of runningDue(runs, p.runningMs)) {
      const r = runs[run];
      const dr = deadline(at, p.runningWarnMs);
      if (dr > h.end || (terminatedAt !== undefined && terminatedAt <= dr)) continue;
      obligations++;
      if (r.end === undefined || r.end > dr)
        v.push({
          check: 'missed',
          instanceId: id,
          at: dr,
          detail: `running time reached at ${new Date(at).toISOString()}, run ${r.end === undefined ? 'never ended' : `ended ${((r.end - dr) / MIN).toFixed(0)} min after the deadline`}`,
        });
    }
    for (const r of runs) {
      // Idle: at each sample after the clean phase began, a streak already due must end the run within 2 steps (cycles).
      const ticks = h.samples.filter((s) => s.id === id && s.at >= r.start && (r.end === undefined || s.at <= r.end));
      for (const s of ticks) {
        const since = idleSince(h, id, s.at, r.start, true);
        if (since === undefined) continue;
        const due = Math.max(since + p.idleWindowMs, snoozedUntil(h, id, s.at) ?? 0);
        if (s.at < due || s.at < h.faultsEnd) continue;
        const until = s.at + 2 * step;
        if (until > h.end) break;
        const stillIdle = h.samples.filter((x) => x.id === id && x.at > s.at && x.at <= until);
        if (stillIdle.some((x) => !x.idle)) continue;
        obligations++;
        if (r.end === undefined || r.end > until)
          v.push({
            check: 'missed',
            instanceId: id,
            at: until,
            detail: `idle since ${new Date(since).toISOString()} (due ${new Date(due).toISOString()}), run not ended by ${new Date(until).toISOString()}`,
          });
        break;
      }
    }
  }

  // ---------------------------------------------------------------- events: at least once, announced, warned
  const deliveredIds = new Map<string, SmvmEvent>();
  for (const d of h.delivered) deliveredIds.set(d.event.id, d.event);
  const expected = new Map<string, SmvmEvent>();
  for (const c of h.logical)
    if (c.action === 'Publish' && c.event && GUARD.test(c.principal) && c.event.type !== 'error') expected.set(c.event.id, c.event);
  const lostByType: Record<string, number> = {};
  for (const [id, e] of expected) {
    if (deliveredIds.has(id)) continue;
    lostByType[e.type] = (lostByType[e.type] ?? 0) + 1;
    v.push({
      check: 'lost-event',
      ...(e.instanceId ? { instanceId: e.instanceId } : {}),
      at: Date.parse(e.time),
      detail: `${e.type} ${id} (${e.subject}) was published but never arrived`,
    });
  }
  const delivered = h.delivered.map((d) => d.event);
  for (const t of guardActions) {
    const ok = delivered.some(
      (e) =>
        e.instanceId === t.instanceId &&
        (e.type === t.to || (t.to === 'stopped' && e.type === 'hibernated')) &&
        Math.abs(Date.parse(e.time) - t.time) <= 20 * MIN,
    );
    if (!ok) {
      lostByType[`${t.to} (unannounced)`] = (lostByType[`${t.to} (unannounced)`] ?? 0) + 1;
      v.push({
        check: 'unannounced-action',
        instanceId: t.instanceId,
        at: t.time,
        detail: `${t.to} by ${t.principal} at ${new Date(t.time).toISOString()}: no ${t.to} event arrived`,
      });
    }
  }
  for (const e of delivered) {
    const warn = e.rule === 'running-time' ? p.runningWarnMs : e.rule === 'lifetime' ? p.lifetimeWarnMs : undefined;
    if (warn === undefined || !(e.type === 'stopped' || e.type === 'terminated')) continue;
    const warned = delivered.some(
      (w) =>
        w.type === 'warning' && w.instanceId === e.instanceId && w.rule === e.rule && Date.parse(w.time) <= Date.parse(e.time) - warn + TOL,
    );
    if (!warned)
      v.push({
        check: 'unwarned-hard-action',
        instanceId: e.instanceId,
        at: Date.parse(e.time),
        detail: `${e.type} by ${e.rule} (${e.source}) without a warning ${warn / MIN} min before`,
      });
  }
  for (const e of delivered.filter((x) => x.type === 'extended')) {
    if (!e.detail || typeof e.detail.by !== 'string' || typeof e.detail.reason !== 'string')
      v.push({ check: 'extension-unexplained', instanceId: e.instanceId, detail: 'extended event without who and why' });
  }
  for (const x of h.extensions) {
    if (!delivered.some((e) => e.type === 'extended' && e.instanceId === x.id))
      v.push({
        check: 'extension-unannounced',
        instanceId: x.id,
        at: x.at,
        detail: 'a lifetime extension took effect without an extended event',
      });
  }

  // ---------------------------------------------------------------- accounting from the tags
  for (const id of ours) {
    const tags = h.finalTags.get(id) ?? {};
    const runs = runsOf(id, h.transitions);
    // A terminated instance is no longer accounted for (the watchdog leaves it alone).
    if (h.transitions.some((t) => t.instanceId === id && t.to === 'terminated')) continue;
    const raw = tags[STATE_TAG];
    if (!raw) {
      v.push({ check: 'accounting', instanceId: id, detail: 'no checkpoint tag at the end' });
      continue;
    }
    const cp = decodeCheckpoint(raw);
    const fromTags = cp.runningMs + (cp.state === 'running' ? h.end - cp.since : 0);
    const model = runningUntil(runs, h.end);
    const transitions = runs.length * 2;
    if (Math.abs(fromTags - model) > TOL * transitions + 1000) {
      v.push({
        check: 'accounting',
        instanceId: id,
        detail: `running time from tags ${(fromTags / MIN).toFixed(2)} min, model ${(model / MIN).toFixed(2)} min (${runs.length} runs)`,
      });
    }
    if (Math.abs(cp.firstSeen - launched.get(id)!) > 1000) {
      v.push({
        check: 'accounting',
        instanceId: id,
        detail: `first seen ${new Date(cp.firstSeen).toISOString()} in tags, launched ${new Date(launched.get(id)!).toISOString()}`,
      });
    }
  }

  return {
    violations: v,
    figures: {
      guardActions: guardActions.length,
      guardActionsBy,
      personActions:
        h.transitions.filter((t) => t.principal === 'operator' && t.to !== 'running').length +
        h.transitions.filter((t) => t.principal === 'operator' && t.from === 'stopped').length,
      expectedEvents: expected.size,
      deliveredEvents: deliveredIds.size,
      duplicateDeliveries: h.delivered.length - deliveredIds.size,
      lostByType,
      obligationsChecked: obligations,
    },
  };
}
