/**
 * Actions through the shared executor with the EC2 ports: batching, protections, the
 * hibernate fallback, dry run, and a crash between acting and recording.
 */
import { decodeCheckpoint, decodeEpisodes, encodeCheckpoint } from '../../../lambda-agent/contract/state';
import { EPISODES_TAG, STATE_TAG } from '../../../lambda-agent/contract/tags';
import {
  awsError,
  describeAll,
  interceptClient,
  protectFromStop,
  protectFromTermination,
  runFleet,
  stateOf,
  tagsOf,
  writesIn,
} from '../../support/fleet';
import { useMoto } from '../../support/moto';
import { createHarness, cycleOf, HOUR, MIN, type Harness } from './harness';

const moto = useMoto();

const running = (since: number) => encodeCheckpoint({ state: 'running', since, firstSeen: since, runningMs: 0, spendUsd: 0 });

async function overLimitFleet(h: Harness, policy: string, action: string, count: number, extra: Record<string, unknown> = {}) {
  await h.putPolicy({ id: policy, ...extra, rules: [{ rule: 'lifetime', max: '1h', action }] });
  return runFleet(h.ec2, { count, policyId: policy, tags: { [STATE_TAG]: running(h.clock.now() - 2 * HOUR) } });
}

describe('watchdog actions', () => {
  it('dry run: decides and announces, acts on nothing, and does not announce again', async () => {
    const h = await createHarness(moto, { policyId: 'trial' });
    const ids = await overLimitFleet(h, 'trial', 'terminate', 2, { dryRun: true });
    h.calls.reset();
    const r = cycleOf(await h.schedule());
    expect(r.actions.map((a) => a.result)).toEqual(['skipped', 'skipped']);
    expect(writesIn(h.calls.counts)).toEqual({ CreateTags: 4, Publish: 2 }); // pending + completed records, two events
    const states = await describeAll(h.ec2, ids);
    expect(ids.map((id) => stateOf(states.get(id)))).toEqual(['running', 'running']);
    const events = await h.events();
    expect(events.map((e) => e.event.type)).toEqual(['skipped', 'skipped']);
    for (const e of events) {
      expect(e.event).toMatchObject({ dryRun: true, action: 'terminate', detail: { skipped: 'dry-run' } });
      expect(e.event.subject).toMatch(/would terminate but dry run/);
    }
    h.clock.advance(5 * MIN);
    h.calls.reset();
    cycleOf(await h.schedule());
    expect(writesIn(h.calls.counts)).toEqual({});
  });

  it('termination protection: the protected instance is skipped and reported, the rest of the batch is terminated', async () => {
    const h = await createHarness(moto, { policyId: 'ttl' });
    const ids = await overLimitFleet(h, 'ttl', 'terminate', 4);
    await protectFromTermination(h.ec2, ids[2]);
    h.calls.reset();
    const r = cycleOf(await h.schedule());
    const byId = Object.fromEntries(r.actions.map((a) => [a.instanceId, a.result]));
    expect(byId).toEqual({ [ids[0]]: 'done', [ids[1]]: 'done', [ids[2]]: 'skipped', [ids[3]]: 'done' });
    const states = await describeAll(h.ec2, ids);
    expect(ids.map((id) => stateOf(states.get(id)))).toEqual(['terminated', 'terminated', 'running', 'terminated']);
    // one batch call refused as a whole, then split until the protected instance stood alone
    const sizes = h.calls.calls.filter((c) => c.op === 'TerminateInstances').map((c) => c.input.InstanceIds.length);
    expect(sizes[0]).toBe(4);
    expect([...sizes].sort()).toEqual([1, 1, 2, 2, 4]);
    const events = await h.events();
    const skipped = events.find((e) => e.event.type === 'skipped')!;
    expect(skipped.event).toMatchObject({
      instanceId: ids[2],
      action: 'terminate',
      severity: 'warning',
      detail: { skipped: 'termination-protection' },
    });
    expect(skipped.event.message).toMatch(/termination protection/);
    expect(events.filter((e) => e.event.type === 'terminated')).toHaveLength(3);
    // not retried: the episode is recorded as handled
    h.clock.advance(5 * MIN);
    h.calls.reset();
    cycleOf(await h.schedule());
    expect(h.calls.counts.TerminateInstances).toBeUndefined();
  });

  it('stop protection: the protected instance is skipped and reported', async () => {
    const h = await createHarness(moto, { policyId: 'ttl' });
    const ids = await overLimitFleet(h, 'ttl', 'stop', 2);
    await protectFromStop(h.ec2, ids[0]);
    const r = cycleOf(await h.schedule());
    expect(Object.fromEntries(r.actions.map((a) => [a.instanceId, a.result]))).toEqual({ [ids[0]]: 'skipped', [ids[1]]: 'done' });
    const skipped = (await h.events()).find((e) => e.event.type === 'skipped')!;
    expect(skipped.event).toMatchObject({ instanceId: ids[0], detail: { skipped: 'stop-protection' } });
  });

  it('hibernate: falls back to a plain stop where EC2 refuses hibernation (refusal injected: moto hibernates anything)', async () => {
    const h = await createHarness(moto, { policyId: 'sleepy' });
    const ids = await overLimitFleet(h, 'sleepy', 'hibernate', 3);
    const refused = ids[1];
    const stopCalls: Array<{ ids: string[]; hibernate: boolean }> = [];
    const ec2 = interceptClient(h.ec2, async (op, command, send) => {
      if (op === 'StopInstances') {
        const input = command.input as { InstanceIds: string[]; Hibernate?: boolean };
        stopCalls.push({ ids: [...input.InstanceIds], hibernate: !!input.Hibernate });
        if (input.Hibernate && input.InstanceIds.includes(refused)) {
          throw awsError(
            'UnsupportedHibernationConfiguration',
            `For hibernation, the instance ${refused} must be configured for hibernation`,
          );
        }
      }
      return send();
    });
    const r = cycleOf(await h.schedule(h.watchdog({ ec2 })));
    expect(Object.fromEntries(r.actions.map((a) => [a.instanceId, a.result]))).toEqual({
      [ids[0]]: 'done',
      [refused]: 'fallback',
      [ids[2]]: 'done',
    });
    expect(stopCalls).toContainEqual({ ids: [refused], hibernate: false });
    const states = await describeAll(h.ec2, ids);
    expect(ids.map((id) => stateOf(states.get(id)))).toEqual(['stopped', 'stopped', 'stopped']);
    const events = await h.events();
    const fallback = events.find((e) => e.event.instanceId === refused)!;
    expect(fallback.event).toMatchObject({ type: 'stopped', action: 'hibernate', detail: { requested: 'hibernate', performed: 'stop' } });
    expect(fallback.event.message).toMatch(/Hibernation was not possible \(UnsupportedHibernationConfiguration/);
    expect(
      events
        .filter((e) => e.event.type === 'hibernated')
        .map((e) => e.event.instanceId)
        .sort(),
    ).toEqual([ids[0], ids[2]].sort());
  });

  it('reports an instance whose action fails without blocking the others, and the next run finishes it', async () => {
    const h = await createHarness(moto, { policyId: 'ttl' });
    const ids = await overLimitFleet(h, 'ttl', 'stop', 3);
    const broken = ids[0];
    const ec2 = interceptClient(h.ec2, async (op, command, send) => {
      if (op === 'StopInstances' && command.input.InstanceIds.includes(broken))
        throw awsError('IncorrectInstanceState', `The instance '${broken}' is not in a state from which it can be stopped.`);
      return send();
    });
    const r = cycleOf(await h.schedule(h.watchdog({ ec2 })));
    expect(Object.fromEntries(r.actions.map((a) => [a.instanceId, a.result]))).toEqual({
      [ids[0]]: 'failed',
      [ids[1]]: 'done',
      [ids[2]]: 'done',
    });
    expect(r.errors.map((e) => e.instanceId)).toEqual([broken]);
    const events = await h.events();
    expect(events.find((e) => e.event.type === 'error')!.event).toMatchObject({ instanceId: broken, severity: 'error' });
    // the record stays pending: the next run (with the fault gone) decides the stop again
    // (same episode, same event id) and carries it out
    expect(decodeEpisodes(tagsOf((await describeAll(h.ec2, [broken])).get(broken))[EPISODES_TAG])[0].pending).toBe(true);
    h.clock.advance(MIN);
    const r2 = cycleOf(await h.schedule());
    expect(r2.actions).toEqual([{ instanceId: broken, action: 'stop', result: 'done' }]);
    expect(stateOf((await describeAll(h.ec2, [broken])).get(broken))).toBe('stopped');
    expect((await h.events()).map((e) => `${e.event.type}:${e.event.instanceId}`)).toEqual([`stopped:${broken}`]);
  });

  it('a crash between acting and recording: the re-run neither acts again nor counts twice, and each event id is delivered once', async () => {
    const h = await createHarness(moto, { policyId: 'ttl' });
    const T0 = h.clock.now();
    const ids = await overLimitFleet(h, 'ttl', 'stop', 2);
    // The first run stops both instances, then "dies" (its Lambda times out) while publishing.
    const hang = interceptClient(h.sns, (op, _command, send) => (op === 'Publish' ? new Promise(() => undefined) : send()));
    const crashed = h.watchdog({ sns: hang }).handle((await import('./harness')).scheduledEvent(T0));
    const outcome = await Promise.race([crashed.then(() => 'finished'), new Promise((r) => setTimeout(() => r('crashed'), 1500))]);
    expect(outcome).toBe('crashed');
    expect(h.calls.counts.StopInstances).toBe(1);
    const afterCrash = await describeAll(h.ec2, ids);
    for (const id of ids) {
      expect(stateOf(afterCrash.get(id))).toBe('stopped');
      expect(decodeEpisodes(tagsOf(afterCrash.get(id))[EPISODES_TAG])).toEqual([
        expect.objectContaining({ rule: 'lifetime', action: 'stop', pending: true }),
      ]);
    }

    // A new container finishes the work: EventBridge delivers the first instance's
    // state change 30 s later; the next schedule run finds the second one.
    h.clock.advance(30 * 1000);
    h.calls.reset();
    const next = h.watchdog();
    const sc = cycleOf(await h.stateChange(ids[0], 'stopped', next));
    expect(sc.actions).toEqual([]);
    h.clock.advance(30 * 1000);
    const r = cycleOf(await h.schedule(next));
    expect(r.actions).toEqual([]);
    expect(h.calls.counts.StopInstances).toBeUndefined();
    const after = await describeAll(h.ec2, ids);
    for (const id of ids) {
      const records = decodeEpisodes(tagsOf(after.get(id))[EPISODES_TAG]);
      expect(records).toEqual([expect.objectContaining({ rule: 'lifetime', action: 'stop' })]);
      expect(records[0].pending).toBeUndefined();
      expect(tagsOf(after.get(id))[STATE_TAG]).toMatch(/;s=stopped;/);
    }
    // the stop was recorded at the moment of the event: one run of 2 h 30 s, counted once
    expect(decodeCheckpoint(tagsOf(after.get(ids[0]))[STATE_TAG]).runningMs).toBe(2 * HOUR + 30 * 1000);
    const events = await h.events();
    expect(events.map((e) => e.event.type)).toEqual(['stopped', 'stopped']);
    expect(events.map((e) => e.event.instanceId).sort()).toEqual([...ids].sort());
    expect(new Set(events.map((e) => e.event.id)).size).toBe(2);

    // Later runs change nothing.
    h.clock.advance(MIN);
    h.calls.reset();
    cycleOf(await h.schedule(next));
    expect(writesIn(h.calls.counts)).toEqual({});
    expect(decodeCheckpoint(tagsOf((await describeAll(h.ec2, [ids[0]])).get(ids[0]))[STATE_TAG]).runningMs).toBe(2 * HOUR + 30 * 1000);
  });
});
