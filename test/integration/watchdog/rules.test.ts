/**
 * Every rule end to end through the watchdog against moto, with an injected clock:
 * hours and days pass in milliseconds. Accounting state is seeded in the instances'
 * tags where a test needs a known past (moto's LaunchTime is the real launch time).
 */
import { StartInstancesCommand, StopInstancesCommand } from '@aws-sdk/client-ec2';
import { DAY_NAMES } from '../../../lambda-agent/policy/windows';
import {
  decodeCheckpoint,
  decodeEpisodes,
  encodeCheckpoint,
  encodeExtensions,
  encodeHeartbeat,
  encodeSnooze,
  type Checkpoint,
} from '../../../lambda-agent/contract/state';
import { EPISODES_TAG, EXTEND_TAG, HEARTBEAT_TAG, SNOOZE_TAG, STATE_TAG } from '../../../lambda-agent/contract/tags';
import { describeAll, runFleet, stateOf, tagsOf } from '../../support/fleet';
import { useMoto } from '../../support/moto';
import { createHarness, cycleOf, DAY, HOUR, MIN, type Harness } from './harness';

const moto = useMoto();

function checkpoint(c: Partial<Checkpoint> & Pick<Checkpoint, 'since'>): string {
  return encodeCheckpoint({ state: 'running', firstSeen: c.since, runningMs: 0, spendUsd: 0, ...c });
}

async function instance(h: Harness, id: string) {
  return (await describeAll(h.ec2, [id])).get(id)!;
}

async function eventTypes(h: Harness) {
  return (await h.events()).map((e) => `${e.event.type}:${e.event.instanceId ?? ''}:${e.event.rule ?? ''}`);
}

const hhmm = (t: number) => new Date(t).toISOString().slice(11, 16);
const day = (t: number) => DAY_NAMES[new Date(t).getUTCDay()];

describe('watchdog rules end to end', () => {
  it('lifetime: warns once before the limit, then terminates at it', async () => {
    const h = await createHarness(moto, { policyId: 'ephemeral' });
    await h.putPolicy({ id: 'ephemeral', rules: [{ rule: 'lifetime', max: '8h', action: 'terminate', warnBefore: '1h' }] });
    const T0 = h.clock.now();
    const [id] = await runFleet(h.ec2, { count: 1, policyId: 'ephemeral', tags: { [STATE_TAG]: checkpoint({ since: T0 - 6 * HOUR }) } });

    cycleOf(await h.schedule()); // 6 h of 8: nothing to say
    expect(await eventTypes(h)).toEqual([]);

    h.clock.advance(65 * MIN); // 7 h 05 m: inside the warning hour
    const warned = cycleOf(await h.schedule());
    expect(warned.warnings).toBe(1);
    const [warning] = await h.events();
    expect(warning.event).toMatchObject({ type: 'warning', instanceId: id, rule: 'lifetime', action: 'terminate', severity: 'warning' });
    // the full hour of notice is given: the action moves to an hour after the warning
    expect(Date.parse(warning.event.dueAt!)).toBe(h.clock.now() + HOUR);
    expect(decodeEpisodes(tagsOf(await instance(h, id))[EPISODES_TAG])).toEqual([
      expect.objectContaining({ rule: 'lifetime', warnedAt: Math.floor(h.clock.now() / 1000) * 1000 }),
    ]);

    h.clock.advance(20 * MIN); // still before the limit: no second warning
    cycleOf(await h.schedule());
    expect(await eventTypes(h)).toEqual([]);

    h.clock.advance(36 * MIN); // past 8 h, but less than an hour since the warning
    expect(cycleOf(await h.schedule()).actions).toEqual([]);
    h.clock.advance(5 * MIN);
    const acted = cycleOf(await h.schedule());
    expect(acted.actions).toEqual([{ instanceId: id, action: 'terminate', result: 'done' }]);
    expect(stateOf(await instance(h, id))).toBe('terminated');
    const [terminated] = await h.events();
    expect(terminated.event).toMatchObject({ type: 'terminated', severity: 'critical', rule: 'lifetime', action: 'terminate' });
    expect(terminated.event.accounting!.lifetimeMs).toBeGreaterThanOrEqual(8 * HOUR);
  });

  it('running-time: sums running time over stop/start recorded from state-change events, then stops', async () => {
    const h = await createHarness(moto, { policyId: 'budget' });
    await h.putPolicy({ id: 'budget', rules: [{ rule: 'running-time', max: '5h', action: 'stop' }] });
    const T0 = h.clock.now();
    // 3 h run before, running again for 1 h now
    const [id] = await runFleet(h.ec2, {
      count: 1,
      policyId: 'budget',
      tags: { [STATE_TAG]: checkpoint({ since: T0 - HOUR, firstSeen: T0 - 10 * HOUR, runningMs: 3 * HOUR }) },
    });

    h.clock.advance(30 * MIN);
    await h.ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
    const stopped = cycleOf(await h.stateChange(id, 'stopped'));
    expect(stopped.transitions).toBe(1);
    const cp1 = decodeCheckpoint(tagsOf(await instance(h, id))[STATE_TAG]);
    expect(cp1).toMatchObject({ state: 'stopped', runningMs: 4.5 * HOUR, since: Math.floor(h.clock.now() / 1000) * 1000 });

    h.clock.advance(4 * HOUR); // stopped time does not count
    await h.ec2.send(new StartInstancesCommand({ InstanceIds: [id] }));
    cycleOf(await h.stateChange(id, 'running'));
    const cp2 = decodeCheckpoint(tagsOf(await instance(h, id))[STATE_TAG]);
    expect(cp2).toMatchObject({ state: 'running', runningMs: 4.5 * HOUR, firstSeen: T0 - 10 * HOUR });

    h.clock.advance(20 * MIN); // 4 h 50 m
    expect(cycleOf(await h.schedule()).actions).toEqual([]);
    h.clock.advance(11 * MIN); // 5 h 01 m
    const r = cycleOf(await h.schedule());
    expect(r.actions).toEqual([{ instanceId: id, action: 'stop', result: 'done' }]);
    expect(stateOf(await instance(h, id))).toBe('stopped');
    const types = await eventTypes(h);
    expect(types).toEqual([`state-changed:${id}:`, `state-changed:${id}:`, `stopped:${id}:running-time`]);
  });

  it('schedule: stops an instance still running after the window closed', async () => {
    const h = await createHarness(moto, { policyId: 'office' });
    const T0 = h.clock.now();
    const close = T0 - 10 * MIN - ((T0 - 10 * MIN) % MIN);
    const open = close - 2 * HOUR;
    await h.putPolicy({
      id: 'office',
      rules: [{ rule: 'schedule', timezone: 'UTC', windows: [{ days: [day(open)], start: hhmm(open), end: hhmm(close) }] }],
    });
    const [id] = await runFleet(h.ec2, { count: 1, policyId: 'office', tags: { [STATE_TAG]: checkpoint({ since: T0 - 3 * HOUR }) } });
    const r = cycleOf(await h.schedule());
    expect(r.actions).toEqual([{ instanceId: id, action: 'stop', result: 'done' }]);
    expect(stateOf(await instance(h, id))).toBe('stopped');
    expect(await eventTypes(h)).toEqual([`stopped:${id}:schedule`]);
  });

  it('schedule: starts a stopped instance when its window opens, and not twice', async () => {
    const h = await createHarness(moto, { policyId: 'office' });
    const T0 = h.clock.now();
    const open = T0 - 30 * MIN - ((T0 - 30 * MIN) % MIN);
    await h.putPolicy({
      id: 'office',
      rules: [{ rule: 'schedule', timezone: 'UTC', windows: [{ days: [day(open)], start: hhmm(open), end: hhmm(open + 3 * HOUR) }] }],
    });
    const [id] = await runFleet(h.ec2, {
      count: 1,
      policyId: 'office',
      tags: { [STATE_TAG]: checkpoint({ state: 'stopped', since: T0 - 5 * HOUR, firstSeen: T0 - DAY }) },
    });
    await h.ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
    const r = cycleOf(await h.schedule());
    expect(r.actions).toEqual([{ instanceId: id, action: 'start', result: 'done' }]);
    expect(stateOf(await instance(h, id))).toBe('running');
    expect(await eventTypes(h)).toEqual([`started:${id}:schedule`]);
    // stopped again by hand inside the window: the schedule respects it
    await h.ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
    h.clock.advance(5 * MIN);
    cycleOf(await h.stateChange(id, 'stopped'));
    h.clock.advance(5 * MIN);
    expect(cycleOf(await h.schedule()).actions).toEqual([]);
    expect(stateOf(await instance(h, id))).toBe('stopped');
  });

  it('heartbeat-lost: notifies when the agent has been silent for the window', async () => {
    const h = await createHarness(moto, { policyId: 'guarded' });
    await h.putPolicy({ id: 'guarded', agent: { heartbeatInterval: '1h' }, rules: [{ rule: 'heartbeat-lost', action: 'notify' }] });
    const T0 = h.clock.now();
    const [silent, alive] = await runFleet(h.ec2, {
      count: 2,
      policyId: 'guarded',
      tags: { [STATE_TAG]: checkpoint({ since: T0 - 6 * HOUR }) },
    });
    await h.ec2.send(
      new (await import('@aws-sdk/client-ec2')).CreateTagsCommand({
        Resources: [silent],
        Tags: [{ Key: HEARTBEAT_TAG, Value: encodeHeartbeat({ at: T0 - 3 * HOUR, conditions: {} }) }],
      }),
    );
    await h.ec2.send(
      new (await import('@aws-sdk/client-ec2')).CreateTagsCommand({
        Resources: [alive],
        Tags: [{ Key: HEARTBEAT_TAG, Value: encodeHeartbeat({ at: T0 - 20 * MIN, conditions: {} }) }],
      }),
    );
    const r = cycleOf(await h.schedule());
    expect(r.actions).toEqual([{ instanceId: silent, action: 'notify', result: 'done' }]);
    const [e] = await h.events();
    expect(e.event).toMatchObject({ type: 'heartbeat-lost', instanceId: silent, rule: 'heartbeat-lost', severity: 'critical' });
    expect(stateOf(await instance(h, silent))).toBe('running');
    // announced once per silence
    h.clock.advance(10 * MIN);
    cycleOf(await h.schedule());
    expect(await eventTypes(h)).toEqual([]);
  });

  it('task-completion: terminates when the agent reports its task finished', async () => {
    const h = await createHarness(moto, { policyId: 'batch' });
    await h.putPolicy({ id: 'batch', rules: [{ rule: 'task-completion', unit: 'job.service', after: '5m', action: 'terminate' }] });
    const T0 = h.clock.now();
    const [done, busy] = await runFleet(h.ec2, { count: 2, policyId: 'batch', tags: { [STATE_TAG]: checkpoint({ since: T0 - HOUR }) } });
    const { CreateTagsCommand } = await import('@aws-sdk/client-ec2');
    await h.ec2.send(
      new CreateTagsCommand({
        Resources: [done],
        Tags: [{ Key: HEARTBEAT_TAG, Value: encodeHeartbeat({ at: T0 - 2 * MIN, conditions: { 'task-completion': T0 - 8 * MIN } }) }],
      }),
    );
    await h.ec2.send(
      new CreateTagsCommand({
        Resources: [busy],
        Tags: [{ Key: HEARTBEAT_TAG, Value: encodeHeartbeat({ at: T0 - 2 * MIN, conditions: {} }) }],
      }),
    );
    const r = cycleOf(await h.schedule());
    expect(r.actions).toEqual([{ instanceId: done, action: 'terminate', result: 'done' }]);
    expect(stateOf(await instance(h, done))).toBe('terminated');
    expect(stateOf(await instance(h, busy))).toBe('running');
  });

  it('idle and over-use from a fresh agent report: acts without reading CloudWatch', async () => {
    const h = await createHarness(moto, { policyId: 'work' });
    await h.putPolicy({
      id: 'work',
      rules: [
        { rule: 'idle', window: '30m', action: 'stop' },
        { rule: 'over-use', window: '15m', cpuPercentAbove: 95, action: 'notify' },
      ],
    });
    const T0 = h.clock.now();
    h.clock.advance(10 * MIN - (T0 % (10 * MIN)) + 5 * 1000); // a metric slot start: reads would happen now
    const now = h.clock.now();
    const { CreateTagsCommand } = await import('@aws-sdk/client-ec2');
    const [idle, hot, busy] = await runFleet(h.ec2, {
      count: 3,
      policyId: 'work',
      tags: { [STATE_TAG]: checkpoint({ since: now - 3 * HOUR }) },
    });
    await h.ec2.send(
      new CreateTagsCommand({
        Resources: [idle],
        Tags: [{ Key: HEARTBEAT_TAG, Value: encodeHeartbeat({ at: now - MIN, conditions: { idle: now - 40 * MIN } }) }],
      }),
    );
    await h.ec2.send(
      new CreateTagsCommand({
        Resources: [hot],
        Tags: [{ Key: HEARTBEAT_TAG, Value: encodeHeartbeat({ at: now - MIN, conditions: { 'over-use': now - 20 * MIN } }) }],
      }),
    );
    await h.ec2.send(
      new CreateTagsCommand({
        Resources: [busy],
        Tags: [{ Key: HEARTBEAT_TAG, Value: encodeHeartbeat({ at: now - MIN, conditions: {} }) }],
      }),
    );
    h.calls.reset();
    const r = cycleOf(await h.schedule());
    expect(r.actions.sort((a, b) => a.action.localeCompare(b.action))).toEqual([
      { instanceId: hot, action: 'notify', result: 'done' },
      { instanceId: idle, action: 'stop', result: 'done' },
    ]);
    expect(h.calls.counts.GetMetricData).toBeUndefined();
    expect(stateOf(await instance(h, idle))).toBe('stopped');
    expect(stateOf(await instance(h, busy))).toBe('running');
    const types = (await eventTypes(h)).sort();
    expect(types).toEqual([`notified:${hot}:over-use`, `stopped:${idle}:idle`].sort());
  });

  it('snooze postpones soft rules until it ends; an extension moves a hard limit', async () => {
    const h = await createHarness(moto, { policyId: 'snoozy' });
    await h.putPolicy({
      id: 'snoozy',
      rules: [
        { rule: 'idle', window: '30m', action: 'stop' },
        { rule: 'lifetime', max: '10h', action: 'stop' },
      ],
    });
    const T0 = h.clock.now();
    const { CreateTagsCommand } = await import('@aws-sdk/client-ec2');
    const [snoozed, extended] = await runFleet(h.ec2, { count: 2, policyId: 'snoozy' });
    await h.ec2.send(
      new CreateTagsCommand({
        Resources: [snoozed],
        Tags: [
          { Key: STATE_TAG, Value: checkpoint({ since: T0 - 3 * HOUR }) },
          { Key: HEARTBEAT_TAG, Value: encodeHeartbeat({ at: T0 - MIN, conditions: { idle: T0 - 2 * HOUR } }) },
          { Key: SNOOZE_TAG, Value: encodeSnooze(T0 + HOUR, 'alice') },
        ],
      }),
    );
    await h.ec2.send(
      new CreateTagsCommand({
        Resources: [extended],
        Tags: [
          { Key: STATE_TAG, Value: checkpoint({ since: T0 - 11 * HOUR }) },
          { Key: EXTEND_TAG, Value: encodeExtensions({ lifetimeMs: 3 * HOUR }) },
        ],
      }),
    );
    expect(cycleOf(await h.schedule()).actions).toEqual([]);
    expect(await eventTypes(h)).toEqual([]);

    // the heartbeat stays fresh (the agent refreshes it) and still reports idle
    h.clock.advance(61 * MIN);
    await h.ec2.send(
      new CreateTagsCommand({
        Resources: [snoozed],
        Tags: [{ Key: HEARTBEAT_TAG, Value: encodeHeartbeat({ at: h.clock.now() - MIN, conditions: { idle: T0 - 2 * HOUR } }) }],
      }),
    );
    const r1 = cycleOf(await h.schedule());
    expect(r1.actions).toEqual([{ instanceId: snoozed, action: 'stop', result: 'done' }]);
    expect(stateOf(await instance(h, extended))).toBe('running');

    h.clock.advance(HOUR); // 13 h 01 m: past 10 h + 3 h extension
    const r2 = cycleOf(await h.schedule());
    expect(r2.actions).toEqual([{ instanceId: extended, action: 'stop', result: 'done' }]);
    expect(await eventTypes(h)).toEqual([`stopped:${snoozed}:idle`, `stopped:${extended}:lifetime`]);
  });
});
