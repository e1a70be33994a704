/**
 * One VM under one policy: the trace's samples are fed, on the trace's clock, through
 * the same `evaluate` the agent runs, and its decisions are carried out.
 *
 * The simulated agent keeps what the real one keeps: the instance state and since when,
 * the checkpoint and episode records returned by each decision, and the samples of the
 * current run (the last N, period 300 s). A stop (or hibernate, terminate) takes effect
 * at the evaluation that decides it; while stopped the engine sees no samples, but each
 * trace sample is checked for activity someone needed (definitions.ts) — such a sample
 * ends the stop as a DISRUPTION and the VM runs again from the start of that sample's
 * interval. A `start` decision (the schedule at its window's open) ends it too.
 *
 * Evaluation times. The agent would evaluate at every sample; `everySample` does exactly
 * that. The default evaluates only where a decision can differ from "nothing to do",
 * which gives the same decisions (the tests and `--every-sample` check it):
 * - carried state (checkpoint, episodes) changes only with a warning or an action;
 * - time-driven verdicts are announced by `decision.next`, except a schedule's window
 *   boundaries where an `ok` verdict turns into a pending one — those are added here;
 * - an idle rule that is `pending`/`warning` keeps its `next` while its run of idle
 *   samples continues: it is re-evaluated at `next`, or at the first idle sample that
 *   starts a new run (after a busy sample or a gap);
 * - an idle rule that is `ok`/`unknown` can only change at a sample its own predicate
 *   (`isIdleSample`, the function the rule uses) calls idle, after its start grace;
 * - any other state, or a rule type not listed in `EVENT_SAFE_RULES`, is evaluated at
 *   every sample.
 */
import { evaluate, loadPolicy, type Decision, type Observation, type Policy, type Sample } from '../index';
import type { Checkpoint, EpisodeRecord } from '../contract/state';
import { isIdleSample } from '../rules/idle';
import { intervals, type WindowSet } from '../policy/windows';
import { TRACE_PERIOD_MS, type VmTrace } from './trace';
import { neededMask, sampleIntervals, wasteMask } from './definitions';
import { priceFor, type InstancePrice } from './pricing';
import type { ReplayPolicy } from './policies';

/** Rule types whose verdicts the event-driven evaluation schedule is known to follow exactly. */
export const EVENT_SAFE_RULES: ReadonlySet<string> = new Set(['idle', 'schedule', 'lifetime', 'running-time', 'spend']);

const DAY = 86_400_000;

/** A VM's trace with everything the replay derives from it once, whatever the policy. */
export interface PreparedVm {
  readonly id: string;
  readonly trace: VmTrace;
  readonly price: InstancePrice & { readonly oversize: boolean };
  /** Samples as the engine reads them (unknown figures left out). */
  readonly samples: readonly Sample[];
  /** Time each sample stands for (ms). */
  readonly interval: Float64Array;
  readonly needed: Uint8Array;
  readonly waste: Uint8Array;
  /** Start of the VM's observed life in the trace (one interval before its first sample). */
  readonly startMs: number;
  /** Its last sample. */
  readonly endMs: number;
  readonly wasteMs: number;
  /** No CPU at all in any sample: it never ran (excluded from the figures). */
  readonly neverRuns: boolean;
}

export function prepareVm(trace: VmTrace): PreparedVm {
  const n = trace.at.length;
  const samples: Sample[] = new Array(n);
  let neverRuns = true;
  for (let j = 0; j < n; j++) {
    const c = trace.cpu[j];
    const b = trace.net[j];
    if (c > 0) neverRuns = false;
    samples[j] =
      Number.isNaN(c) && Number.isNaN(b)
        ? { at: trace.at[j] }
        : Number.isNaN(c)
          ? { at: trace.at[j], netBytesPerSec: b }
          : Number.isNaN(b)
            ? { at: trace.at[j], cpuPercent: c }
            : { at: trace.at[j], cpuPercent: c, netBytesPerSec: b };
  }
  const interval = sampleIntervals(trace.at);
  const waste = wasteMask(trace, interval);
  let wasteMs = 0;
  for (let j = 0; j < n; j++) if (waste[j]) wasteMs += interval[j];
  return {
    id: trace.id,
    trace,
    price: priceFor(trace.cores, trace.memoryKb),
    samples,
    interval,
    needed: neededMask(trace),
    waste,
    startMs: n > 0 ? trace.at[0] - interval[0] : 0,
    endMs: n > 0 ? trace.at[n - 1] : 0,
    wasteMs,
    neverRuns: n === 0 || neverRuns,
  };
}

/** Something that happened to the simulated VM. */
export interface ReplayEvent {
  readonly at: number;
  readonly kind: 'stop' | 'disruption' | 'start';
  /** The rule whose action it was (stop, start). */
  readonly rule?: string;
  readonly action?: string;
}

export interface VmPolicyResult {
  readonly policy: string;
  readonly runningMs: number;
  readonly spendUsd: number;
  readonly stops: number;
  readonly disruptions: number;
  /** Stops ended by a `start` decision (the schedule's open). */
  readonly scheduledStarts: number;
  /** Disruptions by the rule whose stop they ended. */
  readonly disruptionsByRule: Readonly<Record<string, number>>;
  /** Length of every stop, ms (a stop still open at the end of the trace ends there). */
  readonly stopDurationsMs: readonly number[];
  /** Waste time during which the VM was stopped. */
  readonly wasteRecoveredMs: number;
  /** Calls to `evaluate`. */
  readonly evaluations: number;
  readonly events?: readonly ReplayEvent[];
  /** State at the end (when events are recorded): for cross-checks with the engine's accounting. */
  readonly final?: {
    readonly state: 'running' | 'stopped';
    readonly since: number;
    readonly checkpoint?: Checkpoint;
    readonly episodes: readonly EpisodeRecord[];
  };
}

/** A replay policy compiled for one price: the parsed policy and what the scheduler needs from it. */
export interface CompiledPolicy {
  readonly key: string;
  readonly policy?: Policy;
  /** Samples passed to the engine: the last N of the current run. */
  readonly keep: number;
  readonly idleRules: ReadonlyArray<{
    readonly index: number;
    readonly params: { cpu: number; net: number; logins: boolean };
    readonly graceMs: number;
  }>;
  readonly schedules: readonly WindowSet[];
  /** All rule types are in EVENT_SAFE_RULES. */
  readonly eventSafe: boolean;
}

const compiled = new Map<string, CompiledPolicy>();

/** Parse (once per document) a replay policy for a VM at this hourly price. */
export function compilePolicy(rp: ReplayPolicy, hourlyUsd: number): CompiledPolicy {
  const doc = rp.document(hourlyUsd);
  const cacheKey = `${rp.key}|${JSON.stringify(doc ?? null)}`;
  const hit = compiled.get(cacheKey);
  if (hit) return hit;
  let out: CompiledPolicy;
  if (!doc) {
    out = { key: rp.key, keep: 0, idleRules: [], schedules: [], eventSafe: true };
  } else {
    const policy = loadPolicy(doc);
    let spanMs = 0;
    const idleRules: Array<CompiledPolicy['idleRules'][number]> = [];
    const schedules: WindowSet[] = [];
    policy.rules.forEach((r, index) => {
      const p = r.params as Record<string, unknown>;
      const windowMs = typeof p.windowMs === 'number' ? p.windowMs : 0;
      const graceMs = typeof p.graceMs === 'number' ? p.graceMs : 0;
      spanMs = Math.max(spanMs, windowMs + graceMs + (r.warnBeforeMs ?? 0));
      if (r.type === 'idle') idleRules.push({ index, params: p as unknown as { cpu: number; net: number; logins: boolean }, graceMs });
      if (r.type === 'schedule') schedules.push(p.set as WindowSet);
    });
    out = {
      key: rp.key,
      policy,
      keep: Math.ceil(spanMs / TRACE_PERIOD_MS) + 4,
      idleRules,
      schedules,
      eventSafe: policy.rules.every((r) => EVENT_SAFE_RULES.has(r.type)),
    };
  }
  compiled.set(cacheKey, out);
  return out;
}

const boundaryCache = new Map<string, Float64Array>();

/** Opening and closing instants of the schedules' windows over [from, to], sorted. */
function scheduleBoundaries(sets: readonly WindowSet[], from: number, to: number): Float64Array {
  const lo = Math.floor(from / DAY) * DAY - 8 * DAY;
  const hi = Math.ceil(to / DAY) * DAY + 8 * DAY;
  const key = `${JSON.stringify(sets)}|${lo}|${hi}`;
  const hit = boundaryCache.get(key);
  if (hit) return hit;
  const all: number[] = [];
  for (const set of sets) for (const [s, e] of intervals(set, lo, hi)) all.push(s, e);
  const out = Float64Array.from(all.sort((a, b) => a - b));
  boundaryCache.set(key, out);
  return out;
}

/** First value in sorted `xs` strictly greater than `t`. */
function firstAfter(xs: Float64Array, t: number): number {
  let lo = 0;
  let hi = xs.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (xs[mid] <= t) lo = mid + 1;
    else hi = mid;
  }
  return lo < xs.length ? xs[lo] : Infinity;
}

export interface SimulateOptions {
  /** Evaluate at every sample, as the agent would (slow; the default gives the same decisions). */
  readonly everySample?: boolean;
  /** Keep the list of events and the final state (tests). */
  readonly recordEvents?: boolean;
}

const WATCH = 0;
const HOLDING = 1;
const EVERY = 2;

const STOPS = new Set(['stop', 'hibernate', 'terminate']);

/** Replay one VM under one compiled policy. */
export function replayVm(vm: PreparedVm, cp: CompiledPolicy, opts: SimulateOptions = {}): VmPolicyResult {
  const hourlyUsd = vm.price.hourlyUsd;
  const n = vm.samples.length;
  if (!cp.policy || n === 0) {
    const runningMs = vm.endMs - vm.startMs;
    return {
      policy: cp.key,
      runningMs,
      spendUsd: (runningMs / 3_600_000) * hourlyUsd,
      stops: 0,
      disruptions: 0,
      scheduledStarts: 0,
      disruptionsByRule: {},
      stopDurationsMs: [],
      wasteRecoveredMs: 0,
      evaluations: 0,
      ...(opts.recordEvents ? { events: [], final: { state: 'running' as const, since: vm.startMs, episodes: [] } } : {}),
    };
  }
  const policy = cp.policy;
  const at = vm.trace.at;
  const { samples, interval, needed, waste } = vm;
  const every = opts.everySample === true || !cp.eventSafe;
  const boundaries = cp.schedules.length > 0 ? scheduleBoundaries(cp.schedules, vm.startMs, vm.endMs) : new Float64Array(0);
  const idleRules = cp.idleRules;
  const modes = new Uint8Array(idleRules.length);
  const events: ReplayEvent[] | undefined = opts.recordEvents ? [] : undefined;
  const instanceId = `vm-${vm.id}`;

  let running = true;
  let since = vm.startMs;
  let runStart = 0;
  let segStart = vm.startMs;
  let stoppedAt = 0;
  let stoppedBy = '';
  const disruptionsByRule: Record<string, number> = {};
  let checkpoint: Checkpoint | undefined;
  let episodes: readonly EpisodeRecord[] = [];
  let mustEval = true;
  let wakeAt = Infinity;
  let runningMs = 0;
  let stops = 0;
  let disruptions = 0;
  let scheduledStarts = 0;
  let evaluations = 0;
  let wasteRecoveredMs = 0;
  const stopDurationsMs: number[] = [];

  const wake = (d: Decision, t: number): number => Math.min(d.next?.at ?? Infinity, firstAfter(boundaries, t));
  const observeStopped = (t: number): Decision => {
    const obs: Observation = {
      instanceId,
      host: 'agent',
      state: 'stopped',
      stateSince: stoppedAt,
      hourlyUsd,
      ...(checkpoint ? { checkpoint } : {}),
      episodes,
      samplePeriodMs: TRACE_PERIOD_MS,
    };
    const d = evaluate(policy, obs, t);
    evaluations++;
    checkpoint = d.checkpoint;
    episodes = d.episodes;
    return d;
  };
  const startAt = (t: number, firstSample: number) => {
    stopDurationsMs.push(t - stoppedAt);
    running = true;
    since = t;
    segStart = t;
    runStart = firstSample;
    mustEval = true;
  };

  for (let j = 0; j < n; j++) {
    const t = at[j];
    if (!running) {
      if (needed[j]) {
        // Someone needed it: the stop was a disruption; it runs again from this interval.
        const st = Math.max(stoppedAt, t - interval[j]);
        disruptions++;
        disruptionsByRule[stoppedBy] = (disruptionsByRule[stoppedBy] ?? 0) + 1;
        events?.push({ at: st, kind: 'disruption' });
        startAt(st, j);
      } else {
        if (waste[j]) wasteRecoveredMs += interval[j];
        if (every || mustEval || t >= wakeAt) {
          const d = observeStopped(t);
          if (d.action?.name === 'start') {
            scheduledStarts++;
            events?.push({ at: t, kind: 'start', rule: d.action.rule, action: 'start' });
            startAt(t, j + 1);
          } else {
            mustEval = false;
            wakeAt = wake(d, t);
          }
        }
        continue;
      }
    }

    // Running: sample j belongs to the current run.
    let evalNow = every || mustEval || t >= wakeAt;
    if (!evalNow) {
      const contiguous = j > runStart && t - at[j - 1] <= 1.5 * TRACE_PERIOD_MS;
      for (let k = 0; k < idleRules.length; k++) {
        const mode = modes[k];
        if (mode === EVERY) {
          evalNow = true;
          break;
        }
        const idleNow = isIdleSample(idleRules[k].params, samples[j]) === true;
        if (mode === WATCH) {
          // Within the start grace the rule ignores the sample (its scan starts after it).
          if (idleNow && t > since + idleRules[k].graceMs) evalNow = true;
        } else if (!idleNow) {
          modes[k] = WATCH; // the run is broken: nothing can fall due until a new one starts
        } else if (!contiguous) {
          evalNow = true; // a new run starts after a gap
        }
      }
    }
    if (!evalNow) continue;

    const lo = Math.max(runStart, j + 1 - cp.keep);
    const obs: Observation = {
      instanceId,
      host: 'agent',
      state: 'running',
      stateSince: since,
      hourlyUsd,
      ...(checkpoint ? { checkpoint } : {}),
      episodes,
      samples: samples.slice(lo, j + 1),
      samplePeriodMs: TRACE_PERIOD_MS,
    };
    const d = evaluate(policy, obs, t);
    evaluations++;
    checkpoint = d.checkpoint;
    episodes = d.episodes;
    const action = d.action;
    if (action && STOPS.has(action.name)) {
      running = false;
      stoppedAt = t;
      stoppedBy = action.rule;
      runningMs += t - segStart;
      stops++;
      events?.push({ at: t, kind: 'stop', rule: action.rule, action: action.name });
      // What the guard sees next: the instance stopped (this also gives the next wake-up).
      const ds = observeStopped(t);
      if (ds.action?.name === 'start') {
        scheduledStarts++;
        events?.push({ at: t, kind: 'start', rule: ds.action.rule, action: 'start' });
        startAt(t, j + 1);
      } else {
        mustEval = false;
        wakeAt = wake(ds, t);
      }
      continue;
    }
    mustEval = false;
    wakeAt = wake(d, t);
    for (let k = 0; k < idleRules.length; k++) {
      const status = d.rules[idleRules[k].index].status;
      modes[k] = status === 'pending' || status === 'warning' ? HOLDING : status === 'ok' || status === 'unknown' ? WATCH : EVERY;
    }
  }

  const end = vm.endMs;
  if (running) runningMs += end - segStart;
  else stopDurationsMs.push(end - stoppedAt);
  return {
    policy: cp.key,
    runningMs,
    spendUsd: (runningMs / 3_600_000) * hourlyUsd,
    stops,
    disruptions,
    scheduledStarts,
    disruptionsByRule,
    stopDurationsMs,
    wasteRecoveredMs,
    evaluations,
    ...(events
      ? {
          events,
          final: {
            state: running ? ('running' as const) : ('stopped' as const),
            since: running ? since : stoppedAt,
            ...(checkpoint ? { checkpoint } : {}),
            episodes,
          },
        }
      : {}),
  };
}
