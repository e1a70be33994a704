/**
 * The executor's ports for the watchdog: EC2 actions, the state write (one CreateTags
 * per instance carrying the checkpoint and the episode records), and SNS publishing.
 *
 * The state write is guarded: only instances described this cycle under this policy's
 * filter can be written to, only the watchdog's own tag keys are written, and a write
 * that would not change the tags' values is skipped.
 */
import { performAction, writeTags, type AwsClient } from '../adapters/ec2';
import { encodeOwnEpisodes, recordsToWrite, sameEncodedEpisodes, type ObservedInstance, type WatchdogTagValues } from '../adapters/observe';
import { publishEvent } from '../adapters/sns';
import { EPISODES_TAG, STATE_TAG, WATCHDOG_WRITABLE_TAGS } from '../contract/tags';
import { encodeCheckpoint, type Checkpoint, type EpisodeRecord } from '../contract/state';
import type { SmvmEvent } from '../contract/event-core';
import type { ExecutorPorts } from '../executor';
import type { Decision } from '../engine/evaluate';
import { InstanceError } from './errors';

export interface PortDeps {
  readonly ec2: AwsClient;
  readonly sns: AwsClient;
  readonly topicArn: string;
  /** The policy of the described instances: confirms an action whose answer was lost (see `performAction`). */
  readonly policyId?: string;
}

/** The tag values a state write would set (only those that change). */
export function tagsToWrite(
  o: ObservedInstance,
  state: { checkpoint?: Checkpoint; episodes?: readonly EpisodeRecord[] },
): Record<string, string> {
  const tags: Record<string, string> = {};
  if (state.checkpoint) {
    const v = encodeCheckpoint(state.checkpoint);
    if (v !== o.written.state) tags[STATE_TAG] = v;
  }
  if (state.episodes) {
    const v = encodeOwnEpisodes(recordsToWrite(state.episodes, o.ownEpisodes, o.agentEpisodes));
    if (!sameEncodedEpisodes(v, o.written.episodes)) tags[EPISODES_TAG] = v;
  }
  return tags;
}

/**
 * The decision with its change flags judged against what the watchdog's own tags hold
 * (the engine compares against both guards' merged records, whose pruning or the
 * agent's part may differ without anything for the watchdog to write).
 */
export function effectiveDecision(d: Decision, o: ObservedInstance): Decision {
  if (!d.checkpointChanged && !d.episodesChanged) return d;
  const tags = tagsToWrite(o, {
    ...(d.checkpointChanged ? { checkpoint: d.checkpoint } : {}),
    ...(d.episodesChanged ? { episodes: d.episodes } : {}),
  });
  const cp = STATE_TAG in tags;
  const ep = EPISODES_TAG in tags;
  return cp === d.checkpointChanged && ep === d.episodesChanged ? d : { ...d, checkpointChanged: cp, episodesChanged: ep };
}

export interface WatchdogPorts extends ExecutorPorts {
  /** CreateTags calls made. */
  readonly stats: { writes: number; skippedWrites: number; published: number };
}

export function createPorts(deps: PortDeps, observed: ReadonlyMap<string, ObservedInstance>): WatchdogPorts {
  const stats = { writes: 0, skippedWrites: 0, published: 0 };
  const writable = new Set<string>(WATCHDOG_WRITABLE_TAGS);
  return {
    stats,
    async perform(action, ids) {
      const unknown = ids.filter((id) => !observed.has(id));
      if (unknown.length)
        throw new InstanceError(unknown[0], `refusing to ${action} ${unknown.join(', ')}: not described under this policy in this run`);
      return performAction(deps.ec2, action, ids, deps.policyId !== undefined ? { policyId: deps.policyId } : {});
    },
    async saveState(instanceId, state) {
      const o = observed.get(instanceId);
      if (!o) throw new InstanceError(instanceId, `refusing to tag ${instanceId}: not described under this policy in this run`);
      const tags = tagsToWrite(o, state);
      for (const k of Object.keys(tags))
        if (!writable.has(k))
          throw new InstanceError(instanceId, `refusing to write tag '${k}': the watchdog writes only ${[...writable].join(', ')}`);
      if (Object.keys(tags).length === 0) {
        stats.skippedWrites++;
        return;
      }
      await writeTags(deps.ec2, instanceId, tags);
      stats.writes++;
      const w = o.written as WatchdogTagValues;
      if (tags[STATE_TAG] !== undefined) w.state = tags[STATE_TAG];
      if (tags[EPISODES_TAG] !== undefined) w.episodes = tags[EPISODES_TAG];
    },
    async publish(event: SmvmEvent) {
      await publishEvent(deps.sns, deps.topicArn, event);
      stats.published++;
    },
  };
}
