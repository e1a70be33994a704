/**
 * The watchdog's triggers and outputs: state-change events, the steady state, bad
 * inputs (policy, tags, event shapes), SNS messages and subjects, the usage event, and
 * the fan-out to shards.
 */
import { CreateTagsCommand, StopInstancesCommand } from '@aws-sdk/client-ec2';
import { encodeCheckpoint, encodeHeartbeat } from '../../../lambda-agent/contract/state';
import { EPISODES_TAG, HEARTBEAT_TAG, STATE_TAG } from '../../../lambda-agent/contract/tags';
import { shardOf } from '../../../lambda-agent/watchdog/shard';
import { describeAll, readEnvelopes, runFleet, stateOf, tagsOf, writesIn } from '../../support/fleet';
import { useMoto } from '../../support/moto';
import { createHarness, cycleOf, HOUR, MIN, SEC, type Harness } from './harness';

const moto = useMoto();

const running = (since: number, firstSeen = since) => encodeCheckpoint({ state: 'running', since, firstSeen, runningMs: 0, spendUsd: 0 });

const LIFETIME = {
  id: 'dev',
  rules: [
    { rule: 'lifetime', max: '7d', action: 'stop', warnBefore: '1h' },
    { rule: 'spend', maxUsd: 100, hourlyUsd: 0.25 },
  ],
};

async function fleet(h: Harness, count: number) {
  return runFleet(h.ec2, { count, policyId: 'dev', tags: { [STATE_TAG]: running(h.clock.now() - 5 * HOUR) } });
}

describe('watchdog triggers and outputs', () => {
  it('records a transition the moment its state-change event arrives, and announces a stop made by hand', async () => {
    const h = await createHarness(moto, { policyId: 'dev' });
    await h.putPolicy(LIFETIME);
    const [id, other] = await fleet(h, 2);
    h.clock.advance(10 * MIN);
    await h.ec2.send(new StopInstancesCommand({ InstanceIds: [id] }));
    h.calls.reset();
    const r = cycleOf(await h.stateChange(id, 'stopping'));
    expect(r.instances).toBe(1);
    expect(r.transitions).toBe(1);
    // one describe of that instance only, with the policy filter and its id
    const describes = h.calls.calls.filter((c) => c.op === 'DescribeInstances');
    expect(describes).toHaveLength(1);
    expect(describes[0].input.Filters).toEqual(
      expect.arrayContaining([
        { Name: 'tag:smvm:policy', Values: ['dev'] },
        { Name: 'instance-id', Values: [id] },
      ]),
    );
    expect(writesIn(h.calls.counts)).toEqual({ CreateTags: 1, Publish: 1 });
    const cp = tagsOf((await describeAll(h.ec2, [id])).get(id))[STATE_TAG];
    expect(cp).toBe(
      encodeCheckpoint({
        state: 'stopped',
        since: h.clock.now(),
        firstSeen: h.clock.now() - 5 * HOUR - 10 * MIN,
        runningMs: 5 * HOUR + 10 * MIN,
        spendUsd: 0.25 * (5 + 10 / 60),
      }),
    );
    const [e] = await h.events();
    expect(e.event).toMatchObject({ type: 'state-changed', instanceId: id, severity: 'info', detail: { billing: 'stopped' } });
    expect(e.event.time).toBe(new Date(Math.floor(h.clock.now() / 1000) * 1000).toISOString());
    // the 'stopped' event that follows changes nothing more
    h.clock.advance(20 * SEC);
    h.calls.reset();
    cycleOf(await h.stateChange(id, 'stopped'));
    expect(writesIn(h.calls.counts)).toEqual({});
    expect(other).toBeDefined();
  });

  it('ignores state-change events of instances that are not its own or are gone', async () => {
    const h = await createHarness(moto, { policyId: 'dev' });
    await h.putPolicy(LIFETIME);
    const [foreign] = await runFleet(h.ec2, { count: 1, policyId: 'dev-2' });
    h.calls.reset();
    const r = cycleOf(await h.stateChange(foreign, 'running'));
    expect(r.instances).toBe(0);
    const r2 = cycleOf(await h.stateChange('i-0123456789abcdef0', 'terminated'));
    expect(r2.instances).toBe(0);
    expect(writesIn(h.calls.counts)).toEqual({});
    expect(tagsOf((await describeAll(h.ec2, [foreign])).get(foreign))[STATE_TAG]).toBeUndefined();
  });

  it('a steady-state cycle makes no write: only the describe pages and the policy read', async () => {
    const h = await createHarness(moto, { policyId: 'dev' });
    await h.putPolicy({
      ...LIFETIME,
      rules: [...LIFETIME.rules, { rule: 'idle', window: '30m' }, { rule: 'heartbeat-lost', action: 'notify' }],
    });
    const now = h.clock.now();
    const beat = { [HEARTBEAT_TAG]: encodeHeartbeat({ at: now - MIN, conditions: {} }) };
    await runFleet(h.ec2, { count: 5, policyId: 'dev', tags: beat }); // first seen by the watchdog
    await runFleet(h.ec2, { count: 5, policyId: 'dev', tags: { ...beat, [STATE_TAG]: running(now - 5 * HOUR) } });
    const first = cycleOf(await h.schedule());
    expect(first.writes).toBe(5); // the new instances' first checkpoints
    await h.events();
    for (let i = 0; i < 3; i++) {
      h.clock.advance(MIN);
      h.calls.reset();
      const r = cycleOf(await h.schedule());
      expect(r.writes).toBe(0);
      expect(h.calls.counts).toEqual({ GetParameter: 1, DescribeInstances: 1 });
    }
    expect(await h.events()).toEqual([]);
  });

  it('rejects a bad policy with an error event and takes no action', async () => {
    const h = await createHarness(moto, { policyId: 'dev' });
    const ids = await fleet(h, 2);
    await h.putPolicy({ id: 'dev', rules: [{ rule: 'lifetime', max: '1 fortnight', action: 'stop' }] });
    h.calls.reset();
    const r = await h.schedule();
    expect(r).toMatchObject({ outcome: 'policy-error' });
    expect(h.calls.counts.DescribeInstances).toBeUndefined();
    const [e] = await h.events();
    expect(e.event).toMatchObject({ type: 'error', severity: 'error', policyId: 'dev', subject: 'policy dev rejected; no action taken' });
    expect(e.event.message).toContain("policy:dev rule:lifetime: 'rules[0].max'");
    expect(h.logs.some((l) => l.level === 'ERROR' && l.message === 'policy rejected')).toBe(true);
    // announced once per container, logged every run
    h.clock.advance(MIN);
    await h.schedule();
    expect(await h.events()).toEqual([]);
    // a policy of another id in the parameter is refused too; not JSON as well
    await h.putPolicy({ id: 'prod', rules: [{ rule: 'lifetime', max: '1h' }] });
    expect(await h.schedule()).toMatchObject({ outcome: 'policy-error', error: expect.stringContaining("must be 'dev'") });
    await h.putPolicy('{"id": "dev", rules');
    expect(await h.schedule()).toMatchObject({ outcome: 'policy-error', error: expect.stringContaining('is not JSON') });
    expect((await h.events()).map((x) => x.event.type)).toEqual(['error', 'error']);
    const states = await describeAll(h.ec2, ids);
    expect(ids.map((id) => stateOf(states.get(id)))).toEqual(['running', 'running']);
  });

  it('a hand-edited tag that does not parse stops that instance only, with one error event', async () => {
    const h = await createHarness(moto, { policyId: 'dev' });
    await h.putPolicy({ id: 'dev', rules: [{ rule: 'lifetime', max: '1h', action: 'stop' }] });
    const ids = await fleet(h, 3);
    await h.ec2.send(new CreateTagsCommand({ Resources: [ids[1]], Tags: [{ Key: EPISODES_TAG, Value: 'lifetime:oops' }] }));
    const r = cycleOf(await h.schedule());
    expect(r.tagErrors).toBe(1);
    expect(r.actions.map((a) => a.instanceId).sort()).toEqual([ids[0], ids[2]].sort());
    const errors = (await h.events()).filter((e) => e.event.type === 'error');
    expect(errors).toHaveLength(1);
    expect(errors[0].event).toMatchObject({ instanceId: ids[1], detail: { tag: EPISODES_TAG, value: 'lifetime:oops' } });
    expect(errors[0].event.message).toMatch(/tag 'smvm:episodes': 'lifetime:oops' is not rule:episode:warned:acted:action/);
    h.clock.advance(MIN);
    cycleOf(await h.schedule());
    expect(await h.events()).toEqual([]);
    expect(stateOf((await describeAll(h.ec2, [ids[1]])).get(ids[1]))).toBe('running');
  });

  it('rejects events of the wrong shape with a logged error, without throwing or calling AWS', async () => {
    const h = await createHarness(moto, { policyId: 'dev' });
    await h.putPolicy(LIFETIME);
    const w = h.watchdog();
    h.calls.reset();
    const bad: unknown[] = [
      null,
      'tick',
      [],
      {},
      {
        'detail-type': 'EC2 Instance State-change Notification',
        source: 'aws.ec2',
        time: '2026-01-01T00:00:00Z',
        detail: { 'instance-id': 'vol-123', state: 'running' },
      },
      {
        'detail-type': 'EC2 Instance State-change Notification',
        source: 'aws.ec2',
        time: 'yesterday',
        detail: { 'instance-id': 'i-0123456789abcdef0', state: 'running' },
      },
      { 'detail-type': 'Scheduled Event', source: 'aws.ec2' },
      { smvmShard: { index: 3, count: 3 } },
      { smvmShard: { index: 0, count: 2, extra: true } },
    ];
    for (const e of bad) {
      const r = await w.handle(e);
      expect(r.outcome).toBe('rejected');
    }
    expect(h.calls.total()).toBe(0);
    const rejected = h.logs.filter((l) => l.message === 'event rejected');
    expect(rejected).toHaveLength(bad.length);
    expect(rejected[4].problems).toEqual(["state-change event: 'detail.instance-id' must be an instance id (i-…)"]);
    expect(rejected[5].problems).toEqual(["state-change event: 'time' must be an ISO 8601 time"]);
    expect(rejected[7].problems).toEqual(["shard event: 'smvmShard.index' must be below 'count' (3), got: 3"]);
    expect(rejected[0].level).toBe('ERROR');
  });

  it('publishes events whose email Subject is the event subject and whose body parses with the contract schema', async () => {
    const h = await createHarness(moto, { policyId: 'dev' });
    await h.putPolicy({ id: 'dev', rules: [{ rule: 'lifetime', max: '6h', action: 'stop', warnBefore: '2h' }] });
    const [id] = await fleet(h, 1);
    cycleOf(await h.schedule());
    const [warning] = await h.events();
    expect(warning.event.type).toBe('warning');
    const [envelope] = await readEnvelopes(h.sqs, h.queue);
    expect(envelope.Subject).toBe(warning.event.subject);
    expect(envelope.Subject).toBe(`${id} will stop in 2h (lifetime)`);
    expect(JSON.parse(envelope.Message)).toEqual(warning.event);
  });

  it('publishes one usage event in the first cycle of each hour, with per-instance limits left', async () => {
    const h = await createHarness(moto, { policyId: 'dev' });
    await h.putPolicy(LIFETIME);
    const ids = await fleet(h, 3);
    const T0 = h.clock.now();
    h.clock.advance(HOUR - (T0 % HOUR) + 20 * SEC); // first minute of the next hour
    cycleOf(await h.schedule());
    h.clock.advance(MIN);
    cycleOf(await h.schedule()); // second cycle of the hour: no usage event
    const events = await h.events();
    expect(events.map((e) => e.event.type)).toEqual(['usage']);
    const u = events[0].event;
    expect(events[0].attributes).toEqual({ eventType: 'usage', policyId: 'dev', severity: 'info' });
    const hoursEach = (h.clock.now() - MIN - (T0 - 5 * HOUR)) / HOUR;
    expect(u.detail).toMatchObject({ instances: 3, running: 3, stopped: 0, omitted: 0, actionsInPeriod: 0 });
    expect(u.detail!.runningHours).toBeCloseTo(3 * hoursEach, 1);
    expect(u.detail!.spendUsd).toBeCloseTo(3 * hoursEach * 0.25, 2);
    const listed = u.detail!.listed as Array<{ instanceId: string; left: Record<string, number> }>;
    expect(listed.map((l) => l.instanceId).sort()).toEqual([...ids].sort());
    expect(listed[0].left.lifetime).toBeCloseTo(7 * 24 - hoursEach, 1);
    expect(listed[0].left.spend).toBeCloseTo(100 - hoursEach * 0.25, 1);
    expect(u.subject).toBe(`dev: 3 instances, 3 running, $${(3 * hoursEach * 0.25).toFixed(2)} spent`);
  });

  it('fans a schedule run out to shards; every instance is evaluated in exactly one shard', async () => {
    const h = await createHarness(moto, { policyId: 'dev', env: { SMVM_SHARD_COUNT: '3', AWS_LAMBDA_FUNCTION_NAME: 'smvm-dev-watchdog' } });
    await h.putPolicy({ id: 'dev', rules: [{ rule: 'lifetime', max: '1h', action: 'stop' }] });
    const ids = await fleet(h, 24);
    const invoked: Array<{ FunctionName: string; InvocationType: string; payload: unknown }> = [];
    const lambda = {
      send: async (command: { input: { FunctionName: string; InvocationType: string; Payload: Uint8Array } }) => {
        invoked.push({
          FunctionName: command.input.FunctionName,
          InvocationType: command.input.InvocationType,
          payload: JSON.parse(Buffer.from(command.input.Payload).toString()),
        });
        return { StatusCode: 202 };
      },
    };
    const w = h.watchdog({ lambda });
    h.calls.reset();
    const parent = await h.schedule(w);
    expect(parent).toMatchObject({ outcome: 'fanned-out', shards: 3, failed: 0 });
    expect(h.calls.counts).toEqual({ GetParameter: 1 }); // the parent checks the policy, describes nothing
    expect(invoked).toEqual(
      [0, 1, 2].map((index) => ({
        FunctionName: 'smvm-dev-watchdog',
        InvocationType: 'Event',
        payload: { smvmShard: { index, count: 3 } },
      })),
    );

    const seen: string[] = [];
    for (const inv of invoked) {
      const r = cycleOf(await w.handle(inv.payload));
      const shard = (inv.payload as { smvmShard: { index: number } }).smvmShard.index;
      for (const a of r.actions) {
        expect(shardOf(a.instanceId, 3)).toBe(shard);
        seen.push(a.instanceId);
      }
    }
    expect(seen.sort()).toEqual([...ids].sort());
    expect(new Set(seen).size).toBe(ids.length);
  }, 30_000);
});
