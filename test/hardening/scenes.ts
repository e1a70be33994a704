/**
 * Small, fixed scenes for the crash and race tests: a few instances of one policy whose
 * due actions, warnings and transitions all fall in one watchdog cycle, and the checks
 * that say a scene ended consistent (state in moto, tags, events).
 */
import { decodeCheckpoint, decodeEpisodes } from '../../lambda-agent/contract/state';
import { AGENT_EPISODES_TAG, EPISODES_TAG, POLICY_TAG, STATE_TAG } from '../../lambda-agent/contract/tags';
import type { SmvmEvent } from '../../lambda-agent/contract/events';
import { MIN } from './model';
import { scheduledEvent, stateChangeEvent, World } from './world';
import type { MotoServer } from '../support/moto';

/** running-time 1 h (stop, warned 10 min before); lifetime 3 h (terminate, warned 20 min before). */
export const SCENE_POLICY = {
  id: 'crash',
  agent: { sampleInterval: '1m', heartbeatInterval: '1h' },
  rules: [
    { rule: 'running-time', max: '1h', action: 'stop' as const, warnBefore: '10m' },
    { rule: 'lifetime', max: '3h', action: 'terminate' as const, warnBefore: '20m' },
  ],
};

export interface Scene {
  readonly world: World;
  readonly t0: number;
  /** Running since t0: its running time is due at 60 min, warned at 55 min (W1): stopped in W2. */
  readonly a: string;
  /** Running since t0 + 15 min: warned in W2 (51 min). */
  readonly b: string;
  /** Running from t0 + 20 min, stopped by a person at t0 + 60 min: W2 records the transition. */
  readonly c: string;
  /** Another policy's and an unmanaged instance: never touched. */
  readonly others: readonly string[];
  /** Transitions already notified (see {@link notifyTransitions}). */
  readonly seen: { n: number };
}

/**
 * Builds the scene up to just before the cycle under test (W2, at t0 + 66 min): W1 ran
 * at t0 + 55 min; C was stopped by a person at t0 + 60 min.
 */
export async function buildScene(moto: MotoServer, seed = 1): Promise<Scene> {
  const world = await World.create({ moto, seed });
  await world.setUp(SCENE_POLICY);
  const t0 = world.now;
  const tags = (n: number) => world.policyTags(world.policy, n);
  const [a] = await world.launch('policy', 1, tags(1));
  const others = [
    ...(await world.launch('other-policy', 1, { [POLICY_TAG]: 'other' })),
    ...(await world.launch('prefix-sharing', 1, { [POLICY_TAG]: `${SCENE_POLICY.id}-2` })),
    ...(await world.launch('unmanaged', 1, {})),
  ].map((i) => i.id);
  world.clock.now = t0 + 15 * MIN;
  const [b] = await world.launch('policy', 1, tags(2));
  world.clock.now = t0 + 20 * MIN;
  const [c] = await world.launch('policy', 1, tags(3));
  world.clock.now = t0 + 55 * MIN;
  await world.watchdog().handle(scheduledEvent(world.now));
  world.clock.now = t0 + 60 * MIN;
  await world.personStop(c.id);
  world.clock.now = t0 + 66 * MIN;
  await world.snapshotTags();
  // EventBridge's notification of C's stop is delivered late (after the cycle under test), when the scene settles.
  const seen = { n: world.proxy.transitions.findIndex((t) => t.instanceId === c.id && t.to === 'stopped') };
  return { world, t0, a: a.id, b: b.id, c: c.id, others, seen };
}

/**
 * EventBridge for a scene: one state-change run per transition carried out since the
 * last call (as EC2 notifies within seconds), in a fresh container each.
 */
export async function notifyTransitions(world: World, seen: { n: number }): Promise<void> {
  const fresh = world.proxy.transitions.slice(seen.n);
  seen.n = world.proxy.transitions.length;
  for (const t of fresh) {
    if (!world.fleet.some((f) => f.id === t.instanceId && f.kind === 'policy')) continue;
    await world.watchdog().handle(stateChangeEvent(t.instanceId, t.to, t.time));
  }
}

export interface Consistency {
  readonly problems: string[];
  /** Distinct ids per (type, instance). */
  readonly ids: Map<string, Set<string>>;
}

/** Events delivered so far, by type and instance. */
export function eventsBy(world: World): Map<string, SmvmEvent[]> {
  const m = new Map<string, SmvmEvent[]>();
  for (const { event } of world.delivered) {
    const k = `${event.type} ${event.instanceId ?? ''}`;
    m.set(k, [...(m.get(k) ?? []), event]);
  }
  return m;
}

/**
 * What a consistent end of the scene's cycle looks like, after the cycle under test and
 * one clean run: A stopped once and announced once (one event id), its record completed;
 * B running and warned once; C stopped and its checkpoint closed at the person's stop;
 * nothing pending in any tag; the other instances untouched.
 */
export async function checkScene(s: Scene, opts: { cStateChanged: boolean; concurrentRepeats?: boolean }): Promise<Consistency> {
  const { world } = s;
  const problems: string[] = [];
  const states = await world.snapshotTags();
  await world.drainEvents();
  const expectState = (id: string, want: string, name: string) => {
    if (states.get(id) !== want) problems.push(`${name} is ${states.get(id)}, expected ${want}`);
  };
  expectState(s.a, 'stopped', 'A');
  expectState(s.b, 'running', 'B');
  expectState(s.c, 'stopped', 'C');
  for (const o of s.others) expectState(o, 'running', `other ${o}`);

  for (const [id, name] of [
    [s.a, 'A'],
    [s.b, 'B'],
    [s.c, 'C'],
  ] as const) {
    const t = world.tags.get(id) ?? {};
    for (const key of [EPISODES_TAG, AGENT_EPISODES_TAG]) {
      if (t[key] && decodeEpisodes(t[key]).some((r) => r.pending))
        problems.push(`${name}'s ${key} still holds a pending record: ${t[key]}`);
    }
    if (!t[STATE_TAG]) problems.push(`${name} has no checkpoint`);
  }
  const cpA = world.tags.get(s.a)?.[STATE_TAG];
  if (cpA) {
    const cp = decodeCheckpoint(cpA);
    const stopAt = world.proxy.transitions.find((t) => t.instanceId === s.a && t.to === 'stopped')?.time;
    if (
      cp.state !== 'stopped' ||
      stopAt === undefined ||
      Math.abs(cp.since - stopAt) > 1000 ||
      Math.abs(cp.runningMs - (stopAt - s.t0)) > 2000
    ) {
      problems.push(
        `A's checkpoint ${cpA} does not close its run at the stop (${stopAt === undefined ? 'none' : new Date(stopAt).toISOString()})`,
      );
    }
  }
  const cpC = world.tags.get(s.c)?.[STATE_TAG];
  if (cpC) {
    const cp = decodeCheckpoint(cpC);
    if (cp.state !== 'stopped' || Math.abs(cp.since - (s.t0 + 60 * MIN)) > 1000 || Math.abs(cp.runningMs - 40 * MIN) > 2000)
      problems.push(`C's checkpoint ${cpC} is not stopped at +60 min after 40 min of running`);
  }
  const aEpisodes = world.tags.get(s.a)?.[EPISODES_TAG] ?? '';
  const aAgent = world.tags.get(s.a)?.[AGENT_EPISODES_TAG] ?? '';
  if (![...decodeEpisodes(aEpisodes), ...decodeEpisodes(aAgent)].some((r) => r.rule === 'running-time' && r.actedAt !== undefined))
    problems.push(`A's records do not say it was stopped: ${aEpisodes} / ${aAgent}`);

  const stops = world.proxy.transitions.filter((t) => t.instanceId === s.a && t.to === 'stopped');
  if (stops.length !== 1) problems.push(`A was stopped ${stops.length} times`);
  const afterStop = world.logical.filter(
    (c) => c.action === 'StopInstances' && c.instanceIds.includes(s.a) && stops[0] && c.proxySeqBefore >= stops[0].seq,
  );
  if (afterStop.length && !opts.concurrentRepeats)
    problems.push(`A was asked to stop again after it had stopped (${afterStop.map((c) => c.principal).join(', ')})`);
  for (const o of s.others) {
    const touched = world.proxy.calls.filter(
      (c) => c.principal !== 'operator' && c.instanceIds.includes(o) && c.action !== 'DescribeInstances',
    );
    if (touched.length) problems.push(`other instance ${o} was touched: ${touched.map((c) => `${c.principal} ${c.action}`).join(', ')}`);
  }

  const ev = eventsBy(world);
  const ids = new Map<string, Set<string>>();
  for (const [k, list] of ev) ids.set(k, new Set(list.map((e) => e.id)));
  const one = (key: string, what: string) => {
    const n = ids.get(key)?.size ?? 0;
    if (n !== 1) problems.push(`${what}: ${n} distinct event ids (${key})`);
  };
  one(`stopped ${s.a}`, 'A announced as stopped');
  one(`warning ${s.a}`, 'A warned');
  one(`warning ${s.b}`, 'B warned');
  if (opts.cStateChanged && !ev.get(`state-changed ${s.c}`)?.some((e) => e.detail?.billing === 'stopped'))
    problems.push(`C's stop was never announced (state-changed)`);
  if ((ids.get(`stopped ${s.b}`)?.size ?? 0) + (ids.get(`stopped ${s.c}`)?.size ?? 0) > 0)
    problems.push('B or C announced as stopped by a guard');
  return { problems, ids };
}
