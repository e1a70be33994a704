/**
 * Observations from what DescribeInstances returns: the instance's state and times,
 * and the state the guards keep in its tags (the watchdog's checkpoint and episode
 * records, the agent's heartbeat and its own episode records, the operators' snooze
 * and extensions). Pure: no I/O, no clock.
 *
 * A hand-edited tag that does not parse makes the instance unobservable (an error for
 * that instance alone): acting on half its state could reset its lifetime or repeat
 * an action.
 */
import type { Instance } from '@aws-sdk/client-ec2';
import {
  AGENT_EPISODES_TAG,
  EPISODES_TAG,
  EXTEND_TAG,
  HEARTBEAT_TAG,
  MANAGEMENT_ID_TAG,
  POLICY_TAG,
  SNOOZE_TAG,
  STATE_TAG,
} from '../contract/tags';
import {
  decodeCheckpoint,
  decodeEpisodes,
  decodeExtensions,
  decodeHeartbeat,
  decodeSnooze,
  encodeEpisodes,
  TagValueError,
  type EpisodeRecord,
  type HeartbeatReport,
  type Overrides,
} from '../contract/state';
import type { Policy } from '../policy/model';
import type { InstanceState, Observation } from '../rules/types';

/** The raw values of the tags the watchdog writes, as last read or written. */
export interface WatchdogTagValues {
  state?: string;
  episodes?: string;
}

export interface ObservedInstance {
  readonly instanceId: string;
  readonly managementId?: string;
  readonly instanceType?: string;
  readonly state: InstanceState;
  /** The observation, without price and samples (added by the cycle). */
  readonly observation: Observation;
  /** The watchdog's own records (its tag) and the agent's (the agent's tag). */
  readonly ownEpisodes: readonly EpisodeRecord[];
  readonly agentEpisodes: readonly EpisodeRecord[];
  /** Raw values of the watchdog's tags, to skip writes that change nothing. */
  readonly written: WatchdogTagValues;
}

export type Observed =
  | { readonly kind: 'ok'; readonly value: ObservedInstance }
  | { readonly kind: 'error'; readonly instanceId: string; readonly managementId?: string; readonly error: TagValueError }
  /** Not this policy's, or not in a managed state: never touched. */
  | { readonly kind: 'ignored'; readonly instanceId: string; readonly why: string };

/** A transition reported by an EC2 state-change event: the exact time the state began. */
export interface StateHint {
  readonly state: InstanceState;
  readonly at: number;
}

const MANAGED = new Set<string>(['pending', 'running', 'stopping', 'stopped']);
const BILLING_RUNNING = new Set<string>(['pending', 'running']);

/** `User initiated (2026-11-26 20:37:44 GMT)` → epoch ms, or undefined. */
export function parseTransitionTime(reason: string | undefined): number | undefined {
  if (!reason) return undefined;
  const m = /\((\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) (?:GMT|UTC)\)/.exec(reason);
  if (!m) return undefined;
  const t = Date.parse(`${m[1]}T${m[2]}Z`);
  return Number.isFinite(t) ? t : undefined;
}

function toMs(d: Date | string | undefined): number | undefined {
  if (d === undefined) return undefined;
  const t = d instanceof Date ? d.getTime() : Date.parse(d);
  return Number.isFinite(t) ? t : undefined;
}

const isCompleted = (r: EpisodeRecord) => r.actedAt !== undefined && !r.pending;

/**
 * One list of episode records from both guards, so that neither repeats what the
 * other did: a record both hold is merged (earliest warning, earliest action; pending
 * while neither holds the action completed).
 */
export function mergeEpisodes(own: readonly EpisodeRecord[], agent: readonly EpisodeRecord[]): EpisodeRecord[] {
  if (agent.length === 0) return own as EpisodeRecord[];
  const out = [...own];
  for (const a of agent) {
    const i = out.findIndex((r) => r.rule === a.rule && r.episode === a.episode);
    if (i < 0) {
      // An agent's action left pending is finished by the watchdog like its own (the
      // agent may have stopped its own instance before recording completion).
      out.push(a);
      continue;
    }
    const w = out[i];
    const warnedAt = w.warnedAt === undefined ? a.warnedAt : a.warnedAt === undefined ? w.warnedAt : Math.min(w.warnedAt, a.warnedAt);
    const actedAt = w.actedAt === undefined ? a.actedAt : a.actedAt === undefined ? w.actedAt : Math.min(w.actedAt, a.actedAt);
    const action = w.actedAt !== undefined ? (w.action ?? a.action) : (a.action ?? w.action);
    out[i] = {
      rule: w.rule,
      episode: w.episode,
      ...(warnedAt === undefined ? {} : { warnedAt }),
      ...(actedAt === undefined ? {} : { actedAt }),
      ...(action === undefined ? {} : { action }),
      // In progress unless either guard holds the action completed: an agent's action left
      // pending is finished by the watchdog like its own, even when the watchdog had warned.
      ...(actedAt !== undefined && !isCompleted(w) && !isCompleted(a) ? { pending: true } : {}),
    };
  }
  return out;
}

function sameRecord(a: EpisodeRecord, b: EpisodeRecord): boolean {
  return a.warnedAt === b.warnedAt && a.actedAt === b.actedAt && (a.action ?? '') === (b.action ?? '') && !a.pending === !b.pending;
}

/**
 * The records the watchdog writes to its own tag: everything except records that are
 * the agent's unchanged (they stay in the agent's tag) and that the watchdog never held.
 */
export function recordsToWrite(
  records: readonly EpisodeRecord[],
  own: readonly EpisodeRecord[],
  agent: readonly EpisodeRecord[],
): EpisodeRecord[] {
  if (agent.length === 0) return records as EpisodeRecord[];
  return records.filter((r) => {
    if (own.some((o) => o.rule === r.rule && o.episode === r.episode)) return true;
    const a = agent.find((x) => x.rule === r.rule && x.episode === r.episode);
    return !a || !sameRecord(a, r);
  });
}

/**
 * Encodes records for the watchdog's tag, dropping the oldest completed records if
 * the value would exceed EC2's 256 characters (pending records are always kept).
 */
export function encodeOwnEpisodes(records: readonly EpisodeRecord[]): string {
  let list = [...records];
  for (;;) {
    try {
      return encodeEpisodes(list, EPISODES_TAG);
    } catch (e) {
      const i = list.findIndex((r) => !r.pending);
      if (i < 0 || list.length === 0) throw e;
      list = list.filter((_, k) => k !== i);
    }
  }
}

/** Same records, whatever their order. */
export function sameEncodedEpisodes(a: string | undefined, b: string | undefined): boolean {
  const norm = (v: string | undefined) => (v ?? '').split(/\s+/).filter(Boolean).sort().join(' ');
  return norm(a) === norm(b);
}

/** Whether the agent's report is fresh enough to stand for usage facts (as the rules judge it). */
export function isHeartbeatFresh(hb: HeartbeatReport | undefined, policy: Pick<Policy, 'heartbeatIntervalMs'>, now: number): boolean {
  return hb !== undefined && now - hb.at <= 2 * policy.heartbeatIntervalMs;
}

/**
 * The observation of one described instance for `policyId`. Instances of other
 * policies (the filter is checked again here) and unmanaged states are ignored.
 */
export function observeInstance(instance: Instance, policyId: string, hint?: StateHint): Observed {
  const instanceId = instance.InstanceId ?? '';
  let policy: string | undefined;
  let managementId: string | undefined;
  let stateTag: string | undefined;
  let episodesTag: string | undefined;
  let agentTag: string | undefined;
  let heartbeatTag: string | undefined;
  let snoozeTag: string | undefined;
  let extendTag: string | undefined;
  const tags = instance.Tags;
  if (tags) {
    for (let i = 0; i < tags.length; i++) {
      const k = tags[i].Key;
      if (k === undefined || k.charCodeAt(0) !== 115 /* s */ || !k.startsWith('smvm:')) continue;
      const v = tags[i].Value ?? '';
      switch (k) {
        case POLICY_TAG:
          policy = v;
          break;
        case MANAGEMENT_ID_TAG:
          managementId = v;
          break;
        case STATE_TAG:
          stateTag = v;
          break;
        case EPISODES_TAG:
          episodesTag = v;
          break;
        case AGENT_EPISODES_TAG:
          agentTag = v;
          break;
        case HEARTBEAT_TAG:
          heartbeatTag = v;
          break;
        case SNOOZE_TAG:
          snoozeTag = v;
          break;
        case EXTEND_TAG:
          extendTag = v;
          break;
      }
    }
  }
  if (!instanceId) return { kind: 'ignored', instanceId, why: 'no instance id' };
  if (policy !== policyId)
    return { kind: 'ignored', instanceId, why: `policy tag is ${JSON.stringify(policy ?? null)}, not '${policyId}'` };
  const state = instance.State?.Name as InstanceState | undefined;
  if (!state || !MANAGED.has(state)) return { kind: 'ignored', instanceId, why: `state ${state ?? 'unknown'}` };

  try {
    const checkpoint = stateTag === undefined ? undefined : decodeCheckpoint(stateTag, STATE_TAG);
    const ownEpisodes = episodesTag === undefined ? [] : decodeEpisodes(episodesTag, EPISODES_TAG);
    const agentEpisodes = agentTag === undefined ? [] : decodeEpisodes(agentTag, AGENT_EPISODES_TAG);
    const heartbeat = heartbeatTag === undefined ? undefined : decodeHeartbeat(heartbeatTag, HEARTBEAT_TAG);
    let overrides: Overrides | undefined;
    if (snoozeTag !== undefined || extendTag !== undefined) {
      const snooze = snoozeTag === undefined ? undefined : decodeSnooze(snoozeTag, SNOOZE_TAG);
      const ext = extendTag === undefined ? {} : decodeExtensions(extendTag, EXTEND_TAG);
      overrides = { ...ext, ...(snooze ? { snoozeUntil: snooze.until } : {}) };
    }
    const running = BILLING_RUNNING.has(state);
    let stateSince = running ? toMs(instance.LaunchTime) : parseTransitionTime(instance.StateTransitionReason);
    if (hint && BILLING_RUNNING.has(hint.state) === running) stateSince = hint.at;
    const episodes = mergeEpisodes(ownEpisodes, agentEpisodes);
    // Built by assignment (not spreads): this runs for every instance of every cycle.
    const observation: { -readonly [K in keyof Observation]: Observation[K] } = { instanceId, host: 'watchdog', state };
    if (stateSince !== undefined) observation.stateSince = stateSince;
    if (instance.InstanceType) observation.instanceType = instance.InstanceType;
    if (heartbeat?.netOutBytes !== undefined) observation.netOutBytes = heartbeat.netOutBytes;
    if (checkpoint) observation.checkpoint = checkpoint;
    if (episodes.length) observation.episodes = episodes;
    if (overrides) observation.overrides = overrides;
    if (heartbeat) observation.heartbeat = heartbeat;
    const written: WatchdogTagValues = {};
    if (stateTag !== undefined) written.state = stateTag;
    if (episodesTag !== undefined) written.episodes = episodesTag;
    const value: { -readonly [K in keyof ObservedInstance]: ObservedInstance[K] } = {
      instanceId,
      state,
      observation,
      ownEpisodes,
      agentEpisodes,
      written,
    };
    if (managementId) value.managementId = managementId;
    if (instance.InstanceType) value.instanceType = instance.InstanceType;
    return { kind: 'ok', value };
  } catch (e) {
    if (e instanceof TagValueError) return { kind: 'error', instanceId, ...(managementId ? { managementId } : {}), error: e };
    throw e;
  }
}
