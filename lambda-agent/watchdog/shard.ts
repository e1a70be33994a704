/**
 * Shards of a fleet: an instance belongs to shard `hash(instanceId) % count`. The hash
 * is a pure function of the id, so every invocation with the same count puts each
 * instance in exactly one shard, and the shards together cover the fleet.
 */
import { contentHash } from '../contract/ids';

export interface Shard {
  readonly index: number;
  readonly count: number;
}

/** Shard index of an instance (stable across runs, containers and versions). */
export function shardOf(instanceId: string, count: number): number {
  if (count <= 1) return 0;
  return parseInt(contentHash(instanceId).slice(0, 8), 16) % count;
}

export function inShard(instanceId: string, shard: Shard | undefined): boolean {
  return !shard || shard.count <= 1 || shardOf(instanceId, shard.count) === shard.index;
}
