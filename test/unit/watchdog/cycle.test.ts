/**
 * The cycle against an in-process fake EC2: paging, shards, the time budget, and the
 * decisions it logs.
 */
import { describePolicyInstances } from '../../../lambda-agent/adapters/ec2';
import { createPriceList } from '../../../lambda-agent/adapters/pricing';
import { encodeCheckpoint } from '../../../lambda-agent/contract/state';
import { STATE_TAG } from '../../../lambda-agent/contract/tags';
import { createLogger } from '../../../lambda-agent/log';
import { loadPolicy } from '../../../lambda-agent/policy/parse';
import { runCycle, type CycleOptions } from '../../../lambda-agent/watchdog/cycle';
import { shardOf } from '../../../lambda-agent/watchdog/shard';
import { createFakeEc2, fakeInstances } from '../../support/fleet';

const NOW = Date.parse('2026-03-04T12:23:17Z');
const H = 3_600_000;
const policy = loadPolicy({ id: 'dev', rules: [{ rule: 'lifetime', max: '2d', action: 'stop' }] });

/** 250 instances: every 10th over its lifetime, every 5th (not 10th) never seen before, the rest steady. */
function setup(pageSize = 100) {
  const instances = fakeInstances(
    250,
    'dev',
    (i): Record<string, string> => {
      if (i % 10 === 0)
        return {
          [STATE_TAG]: encodeCheckpoint({ state: 'running', since: NOW - H, firstSeen: NOW - 3 * 24 * H, runningMs: 0, spendUsd: 0 }),
        };
      if (i % 5 === 0) return {};
      return { [STATE_TAG]: encodeCheckpoint({ state: 'running', since: NOW - H, firstSeen: NOW - H, runningMs: 0, spendUsd: 0 }) };
    },
    new Date(NOW - H),
  );
  const ec2 = createFakeEc2({ instances, pageSize });
  const published: any[] = [];
  const logs: any[] = [];
  const deps = {
    ec2,
    sns: { send: async (c: any) => void published.push(JSON.parse(c.input.Message)) },
    cloudwatch: { send: async () => ({}) },
    prices: createPriceList({ send: async () => ({}) }, { region: 'us-east-1', now: () => NOW }),
    topicArn: 'arn:t',
    logger: createLogger({ service: 't', sink: (l) => logs.push(JSON.parse(l)) }),
    announced: new Set<string>(),
  };
  const opts = (over: Partial<CycleOptions> = {}): CycleOptions => ({
    policy,
    now: NOW,
    pages: describePolicyInstances(ec2, 'dev', { pageSize }),
    readMetrics: false,
    ...over,
  });
  return { instances, ec2, deps, opts, published, logs };
}

describe('runCycle', () => {
  it('streams the fleet page by page and executes what changes something', async () => {
    const { ec2, deps, opts, published, logs } = setup();
    const r = await runCycle(deps, opts());
    expect(r).toMatchObject({ pages: 3, instances: 250, changed: 50, deferred: 0, writes: 25 + 25 * 2 });
    expect(r.actions).toHaveLength(25);
    expect(ec2.calls).toEqual({ DescribeInstances: 3, StopInstances: 3, CreateTags: 75 });
    expect(published.filter((e) => e.type === 'stopped')).toHaveLength(25);
    expect(logs.filter((l) => l.message === 'decision made')).toHaveLength(50);
  });

  it('evaluates only its shard', async () => {
    const { instances, deps, opts } = setup();
    const r = await runCycle(deps, opts({ shard: { index: 1, count: 4 } }));
    const mine = instances.filter((i) => shardOf(i.InstanceId!, 4) === 1);
    expect(r.instances).toBe(mine.length);
    for (const a of r.actions) expect(shardOf(a.instanceId, 4)).toBe(1);
  });

  it('near the end of its time defers plain state writes but still acts; at the very end it defers everything', async () => {
    const soft = setup();
    const r1 = await runCycle(soft.deps, soft.opts({ timeLeft: () => 10_000 }));
    expect(r1.actions).toHaveLength(25);
    expect(r1.deferred).toBe(25);
    expect(soft.ec2.calls.CreateTags).toBe(50);

    const hard = setup();
    const r2 = await runCycle(hard.deps, hard.opts({ timeLeft: () => 1_000 }));
    expect(r2.actions).toHaveLength(0);
    expect(r2.deferred).toBe(50);
    expect(hard.ec2.calls.CreateTags).toBeUndefined();
  });
});

describe('runCycle, announcing a transition', () => {
  /** One instance whose checkpoint says running, described stopped since 12:00:00. */
  function stoppedScene(publish: (event: any) => void) {
    const [inst] = fakeInstances(
      1,
      'dev',
      () => ({ [STATE_TAG]: encodeCheckpoint({ state: 'running', since: NOW - H, firstSeen: NOW - H, runningMs: 0, spendUsd: 0 }) }),
      new Date(NOW - H),
    );
    inst.State = { Code: 80, Name: 'stopped' };
    inst.StateTransitionReason = 'User initiated (2026-03-04 12:00:00 GMT)';
    const order: string[] = [];
    const fake = createFakeEc2({ instances: [inst] });
    const ec2 = {
      send: async (c: any) => {
        const op = c.constructor.name.replace(/Command$/, '');
        if (op !== 'DescribeInstances') order.push(op);
        return fake.send(c);
      },
    };
    const deps = {
      ec2,
      sns: {
        send: async (c: any) => {
          const e = JSON.parse(c.input.Message);
          order.push(`Publish ${e.type}`);
          publish(e);
        },
      },
      cloudwatch: { send: async () => ({}) },
      prices: createPriceList({ send: async () => ({}) }, { region: 'us-east-1', now: () => NOW }),
      topicArn: 'arn:t',
      logger: createLogger({ service: 't', sink: () => undefined }),
      announced: new Set<string>(),
    };
    const run = () => runCycle(deps, { policy, now: NOW, pages: describePolicyInstances(ec2, 'dev'), readMetrics: false });
    return { order, run, fake };
  }

  it('publishes the state-changed event before writing the checkpoint that records it', async () => {
    const events: any[] = [];
    const s = stoppedScene((e) => events.push(e));
    const r = await s.run();
    expect(s.order).toEqual(['Publish state-changed', 'CreateTags']);
    expect(r.transitions).toBe(1);
    expect(events[0]).toMatchObject({ type: 'state-changed', time: '2026-03-04T12:00:00.000Z' });
  });

  it('keeps the old checkpoint when the event cannot be published, so the next run announces it (same id)', async () => {
    let fail = true;
    const events: any[] = [];
    const tried: string[] = [];
    const s = stoppedScene((e) => {
      tried.push(e.id);
      if (fail) throw Object.assign(new Error('Rate exceeded'), { name: 'Throttling' });
      events.push(e);
    });
    const r1 = await s.run();
    expect(r1.transitions).toBe(0);
    expect(s.order).toEqual(['Publish state-changed']);
    fail = false;
    const r2 = await s.run();
    expect(r2.transitions).toBe(1);
    expect(s.order.slice(1)).toEqual(['Publish state-changed', 'CreateTags']);
    expect(events.map((e) => e.type)).toEqual(['state-changed']);
    expect(new Set(tried).size).toBe(1);
  });
});
