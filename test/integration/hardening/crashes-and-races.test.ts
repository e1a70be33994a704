/**
 * Crashes and races, against moto behind the fault proxy:
 *
 * - the watchdog killed at every call of a cycle (before it is sent, and after it took
 *   effect), then run again in a fresh container;
 * - the agent killed at every call of an action, then restarted with the same disk (or,
 *   when its instance is already off, the watchdog finishing what it left);
 * - two overlapping schedule runs and a state-change run, concurrently;
 * - the agent and the watchdog deciding the same stop at the same moment;
 * - a person stopping or terminating an instance in the middle of a cycle.
 *
 * Each scene must end consistent: state in moto, tags (no pending record, checkpoints
 * that close runs where they ended), events (one id per fact, delivered at least once).
 */
import { mergeEpisodes } from '../../../lambda-agent/adapters/observe';
import { decodeEpisodes } from '../../../lambda-agent/contract/state';
import { AGENT_EPISODES_TAG, EPISODES_TAG } from '../../../lambda-agent/contract/tags';
import { useMoto } from '../../support/moto';
import { MIN } from '../../hardening/model';
import { buildScene, checkScene, eventsBy, notifyTransitions, type Scene } from '../../hardening/scenes';
import { MemoryStore, newCrasher, scheduledEvent, stateChangeEvent, type Crasher } from '../../hardening/world';

const moto = useMoto();
jest.setTimeout(60_000);

/** Calls of the cycle under test, counted by a clean run (the matrix below must cover them all). */
const MAX_CALLS = 10;
/**
 * Crash points where the state-changed event of C was lost: the checkpoint recording the
 * transition was written, the event was not, and no later run announces it again.
 */
const lostStateChanges: string[] = [];

let scene: Scene | undefined;
afterEach(async () => {
  await scene?.world.close();
  scene = undefined;
});

/** A clean schedule run in a fresh container, then EventBridge's notifications of what changed since the last one. */
async function rerun(s: Scene, minutes = 1): Promise<void> {
  s.world.clock.now += minutes * MIN;
  await s.world.watchdog().handle(scheduledEvent(s.world.now));
  await notifyTransitions(s.world, s.seen);
}

/** After consistency: one more run changes nothing (no tag write, no event, no action). */
async function expectSteady(s: Scene): Promise<void> {
  const before = s.world.proxy.calls.length;
  await rerun(s);
  const writes = s.world.proxy.calls
    .slice(before)
    .filter((c) => c.principal === 'watchdog' && !/^(DescribeInstances|GetParameter)$/.test(c.action));
  expect(writes.map((c) => `${c.action} ${c.instanceIds.join(',')} ${JSON.stringify(c.tags ?? c.event ?? {})}`)).toEqual([]);
}

describe('the watchdog killed at every call of a cycle', () => {
  it('makes at most MAX_CALLS calls in the cycle under test (so the matrix covers every one)', async () => {
    scene = await buildScene(moto);
    const crasher = newCrasher();
    await scene.world.watchdog({ crasher }).handle(scheduledEvent(scene.world.now));
    expect(crasher.calls).toBeGreaterThanOrEqual(6);
    expect(crasher.calls).toBeLessThanOrEqual(MAX_CALLS);
    await notifyTransitions(scene.world, scene.seen);
    const r = await checkScene(scene, { cStateChanged: true });
    expect(r.problems).toEqual([]);
  });

  const points = Array.from({ length: MAX_CALLS }, (_, k) => k).flatMap((k) => [
    [k, 'before'],
    [k, 'after'],
  ]) as Array<[number, 'before' | 'after']>;

  it.each(points)('ends consistent when killed at call %i (%s it), after one clean run', async (k, phase) => {
    scene = await buildScene(moto, 100 + k);
    const crasher: Crasher = newCrasher(k, phase);
    const crashed = scene.world.watchdog({ crasher });
    await crashed.handle(scheduledEvent(scene.world.now)).catch(() => undefined);
    const killedAt = scene.world.logical.filter((c) => c.principal === 'watchdog' && c.error === 'CrashError')[0];
    await rerun(scene);
    const r = await checkScene(scene, { cStateChanged: false });
    expect(r.problems).toEqual([]);
    const ev = eventsBy(scene.world);
    if (!ev.get(`state-changed ${scene.c}`))
      lostStateChanges.push(
        `killed ${phase} call ${k} (${killedAt?.action ?? 'none'} ${JSON.stringify(killedAt?.tags ?? killedAt?.event?.type ?? '')})`,
      );
    await expectSteady(scene);
  });

  // Fixed: lambda-agent/watchdog/cycle.ts announced a transition once, after the checkpoint
  // that records it was written; if the run died (or SNS failed) in between, the next run saw
  // no transition and the state-changed event was never published. It is now published
  // first (a repeat carries the same id).
  it('announces every recorded transition at least once, whatever call the run was killed at', () => {
    expect(lostStateChanges).toEqual([]);
  });
});

/**
 * Agent crash points after which the agent's stop stayed pending (in both guards' records
 * as the watchdog merges them) or was never announced.
 */
const agentLeftovers: string[] = [];

/**
 * Whether both guards' records of an instance, merged as the watchdog reads them, hold
 * nothing pending. Only the agent writes its own tag: when it died after stopping its
 * instance, its tag keeps the pending mark until it runs again, but the watchdog's tag
 * holds the record completed, and a record completed by either guard is complete.
 */
function nothingPendingMerged(s: Scene, id: string): boolean {
  const t = s.world.tags.get(id) ?? {};
  return !mergeEpisodes(decodeEpisodes(t[EPISODES_TAG] ?? ''), decodeEpisodes(t[AGENT_EPISODES_TAG] ?? '')).some((r) => r.pending);
}

describe('the agent killed at every call of an action', () => {
  /** A's agent warns at 55 min (with the watchdog's first-seen checkpoint), then is armed for the stop at 66 min. */
  async function agentScene(k: number, phase: 'before' | 'after') {
    scene = await buildScene(moto, 200 + k);
    const w = scene.world;
    const store = new MemoryStore();
    const usage = () => ({ cpuPercent: 50, netBytesPerSec: 100_000 });
    const random = () => 0.5;
    const crasher = newCrasher();
    const first = w.agent({ id: scene.a, store, bootTime: scene.t0, usage, crasher, random });
    w.clock.now = scene.t0 + 56 * MIN;
    first.agent.sample(w.now);
    await first.agent.decide(w.now);
    w.clock.now = scene.t0 + 66 * MIN;
    await w.snapshotTags();
    first.agent.sample(w.now);
    crasher.at = crasher.calls + k;
    crasher.phase = phase;
    await first.agent.decide(w.now).catch(() => undefined);
    return { store, usage, random, crasher };
  }

  it.each(Array.from({ length: 6 }, (_, k) => k).flatMap((k) => [[k, 'before'] as const, [k, 'after'] as const]))(
    'ends consistent when killed at call %i of the stop (%s it)',
    async (k, phase) => {
      const { store, usage, random } = await agentScene(k, phase);
      const s = scene!;
      const w = s.world;
      w.clock.now += MIN;
      const states = await w.snapshotTags();
      if (states.get(s.a) === 'running') {
        // The process died, the machine did not: systemd restarts the agent with the same disk.
        const second = w.agent({ id: s.a, store, bootTime: s.t0, usage, random, lastAliveAt: w.now - MIN });
        second.agent.sample(w.now);
        await second.agent.decide(w.now);
      }
      // The watchdog's next cycles (C's transition, and whatever the agent left pending).
      await rerun(s, 0);
      await rerun(s);
      const r = await checkScene(s, { cStateChanged: false });
      const agentTagOnly = nothingPendingMerged(s, s.a) && (await s.world.snapshotTags()).get(s.a) === 'stopped';
      const problems = r.problems.filter((p) => !(agentTagOnly && /^A's smvm:agent-episodes still holds a pending record/.test(p)));
      const known = /smvm:agent-episodes still holds a pending record|A announced as stopped: 0 distinct/;
      expect(problems.filter((p) => !known.test(p))).toEqual([]);
      if (problems.some((p) => known.test(p))) agentLeftovers.push(`killed ${phase} call ${k}: ${problems.join('; ')}`);
    },
  );

  // Fixed: lambda-agent/adapters/observe.ts mergeEpisodes kept `pending` only from the
  // watchdog's own record, so an agent's action left pending (the agent died after stopping
  // its instance, before announcing or completing it) was taken as done and never announced.
  it("finishes and announces an agent's stop that the agent left pending, whatever call it was killed at", () => {
    expect(agentLeftovers).toEqual([]);
  });
});

describe('races', () => {
  it('ends consistent when two schedule runs overlap with a state-change run', async () => {
    scene = await buildScene(moto, 300);
    const w = scene.world;
    const results = await Promise.allSettled([
      w.watchdog().handle(scheduledEvent(w.now)),
      w.watchdog().handle(scheduledEvent(w.now)),
      w.watchdog().handle(stateChangeEvent(scene.c, 'stopped', scene.t0 + 60 * MIN)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'fulfilled']);
    await rerun(scene);
    // Runs that overlap both decide from the same observation: a second StopInstances is
    // allowed (EC2 makes it a no-op), a second stop or a second fact is not.
    const r = await checkScene(scene, { cStateChanged: true, concurrentRepeats: true });
    expect(r.problems).toEqual([]);
    await expectSteady(scene);
  });

  it('ends consistent when the agent and the watchdog decide the same stop at the same moment', async () => {
    scene = await buildScene(moto, 301);
    const w = scene.world;
    const store = new MemoryStore();
    const { agent } = w.agent({
      id: scene.a,
      store,
      bootTime: scene.t0,
      usage: () => ({ cpuPercent: 50, netBytesPerSec: 100_000 }),
      random: () => 0.5,
    });
    agent.sample(w.now);
    const [fromAgent, fromWatchdog] = await Promise.allSettled([agent.decide(w.now), w.watchdog().handle(scheduledEvent(w.now))]);
    expect([fromAgent.status, fromWatchdog.status]).toEqual(['fulfilled', 'fulfilled']);
    await rerun(scene);
    const r = await checkScene(scene, { cStateChanged: true });
    expect(r.problems).toEqual([]);
    // Both may have called StopInstances (idempotent); both announced the same fact under one id.
    const stopped = eventsBy(w).get(`stopped ${scene.a}`) ?? [];
    expect(new Set(stopped.map((e) => e.id)).size).toBe(1);
    await expectSteady(scene);
  });
});

describe('a person acting in the middle of a cycle', () => {
  /** Runs the cycle under test with a person's action right after its DescribeInstances was answered. */
  async function midCycle(act: (s: Scene) => Promise<void>) {
    scene = await buildScene(moto, 400);
    const s = scene;
    let done = false;
    s.world.proxy.setOnForwarded(async (call) => {
      if (done || call.principal !== 'watchdog' || call.action !== 'DescribeInstances') return;
      done = true;
      await act(s);
    });
    const result = await s.world.watchdog().handle(scheduledEvent(s.world.now));
    s.world.proxy.setOnForwarded(undefined);
    expect(done).toBe(true);
    return result;
  }

  it('ends consistent when a person stops the instance the watchdog is stopping', async () => {
    await midCycle((s) => s.world.personStop(s.a));
    await rerun(scene!);
    const w = scene!.world;
    const states = await w.snapshotTags();
    expect(states.get(scene!.a)).toBe('stopped');
    await w.drainEvents();
    // One stop took effect (the person's); the watchdog's record is completed, nothing is pending.
    expect(w.proxy.transitions.filter((t) => t.instanceId === scene!.a && t.to === 'stopped')).toHaveLength(1);
    for (const id of [scene!.a, scene!.b, scene!.c]) expect(w.tags.get(id)?.['smvm:episodes'] ?? '').not.toContain('!');
    await expectSteady(scene!);
  });

  it('ends consistent when a person terminates the instance the watchdog is stopping', async () => {
    const result = await midCycle((s) => s.world.personTerminate(s.a));
    expect(result.outcome).toBe('cycle');
    await rerun(scene!);
    const w = scene!.world;
    const states = await w.snapshotTags();
    expect(states.get(scene!.a)).toBe('terminated');
    await w.drainEvents();
    const ev = eventsBy(w);
    // The stop failed (EC2 refuses to stop a terminated instance): no false "stopped", an error event instead.
    expect(ev.get(`stopped ${scene!.a}`) ?? []).toEqual([]);
    expect((ev.get(`error ${scene!.a}`) ?? []).length).toBeGreaterThanOrEqual(1);
    // The other instances' work of that cycle was done all the same.
    expect(ev.get(`warning ${scene!.b}`)?.length).toBeGreaterThanOrEqual(1);
    expect(decodeState(w.tags.get(scene!.c)?.['smvm:state'])).toBe('stopped');
    await expectSteady(scene!);
  });

  it('ends consistent when a person stops an instance the watchdog is only warning', async () => {
    await midCycle((s) => s.world.personStop(s.b));
    await rerun(scene!);
    const w = scene!.world;
    const states = await w.snapshotTags();
    expect(states.get(scene!.b)).toBe('stopped');
    expect(decodeState(w.tags.get(scene!.b)?.['smvm:state'])).toBe('stopped');
    await w.drainEvents();
    expect(eventsBy(w).get(`stopped ${scene!.b}`) ?? []).toEqual([]);
    await expectSteady(scene!);
  });
});

function decodeState(v: string | undefined): string | undefined {
  return v ? /s=(\w+)/.exec(v)?.[1] : undefined;
}
