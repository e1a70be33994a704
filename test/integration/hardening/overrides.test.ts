/**
 * What operators can and cannot change, against moto behind the fault proxy:
 *
 * - a dry-run policy is inert: hours of due actions for both guards, and not one EC2
 *   action call reaches the API (every decision is announced, marked dryRun);
 * - a snooze postpones soft rules only: a hard limit is still enforced on time;
 * - an extension of a hard limit moves it by exactly the extension, and is announced
 *   with who and why.
 */
import { EC2Client } from '@aws-sdk/client-ec2';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import { STSClient } from '@aws-sdk/client-sts';
import { extend, snooze } from '../../../lambda-agent/cli/commands';
import type { CliContext } from '../../../lambda-agent/cli/context';
import { topicParameterName } from '../../../lambda-agent/contract/env';
import { MIN } from '../../hardening/model';
import { MemoryStore, scheduledEvent, stateChangeEvent, World } from '../../hardening/world';
import { useMoto } from '../../support/moto';

const moto = useMoto();
jest.setTimeout(60_000);
let world: World | undefined;
afterEach(async () => {
  await world?.close();
  world = undefined;
});

const ACTIONS = /^(StopInstances|StartInstances|TerminateInstances|RebootInstances|ModifyInstanceAttribute)$/;

async function setUp(doc: object): Promise<World> {
  world = await World.create({ moto, seed: 9 });
  await world.setUp(doc as any);
  await new SSMClient(moto.sdkConfig()).send(
    new PutParameterCommand({
      Name: topicParameterName((doc as { id: string }).id),
      Value: world.topicArn,
      Type: 'String',
      Overwrite: true,
    }),
  );
  return world;
}

function cli(w: World): CliContext {
  const sdk = () => w.operatorSdk();
  return {
    clients: {
      ec2: new EC2Client(sdk()),
      ssm: new SSMClient(sdk()),
      sns: new SNSClient(sdk()),
      sqs: new SQSClient(sdk()),
      sts: new STSClient(sdk()),
    },
    now: () => w.now,
    out: () => undefined,
    err: () => undefined,
    progress: false,
  };
}

/** Runs the watchdog (and the given agents) every `stepMin` minutes until `untilMin`, delivering state-change events. */
async function run(
  w: World,
  t0: number,
  untilMin: number,
  stepMin: number,
  agents: Array<{ id: string; agent: import('../../../lambda-agent/agent/loop').Agent }> = [],
) {
  let seen = w.proxy.transitions.length;
  const wd = w.watchdog();
  while (w.now - t0 < untilMin * MIN) {
    w.clock.now += stepMin * MIN;
    const states = await w.snapshotTags();
    for (const a of agents) {
      if (states.get(a.id) !== 'running') continue;
      a.agent.sample(w.now);
      await a.agent.decide(w.now);
    }
    await wd.handle(scheduledEvent(w.now));
    for (const t of w.proxy.transitions.slice(seen)) await wd.handle(stateChangeEvent(t.instanceId, t.to, t.time));
    seen = w.proxy.transitions.length;
  }
  await w.drainEvents();
}

describe('a dry-run policy', () => {
  it('never reaches the EC2 API with an action, however many actions fall due, and announces each decision as dry run', async () => {
    const w = await setUp({
      id: 'dry',
      dryRun: true,
      agent: { sampleInterval: '5m', heartbeatInterval: '30m' },
      rules: [
        { rule: 'running-time', max: '1h', action: 'stop', warnBefore: '10m' },
        { rule: 'lifetime', max: '2h', action: 'terminate', warnBefore: '20m' },
        { rule: 'idle', window: '15m', action: 'stop', startGrace: '5m' },
      ],
    });
    const t0 = w.now;
    const fleet = await Promise.all([1, 2, 3].map(async (n) => (await w.launch('policy', 1, w.policyTags(w.policy, n)))[0]));
    const agents = fleet.slice(0, 2).map((f, i) => ({
      id: f.id,
      agent: w.agent({
        id: f.id,
        store: new MemoryStore(),
        bootTime: t0,
        usage: () => (i === 0 ? { cpuPercent: 1, netBytesPerSec: 100 } : { cpuPercent: 60, netBytesPerSec: 200_000 }),
        random: () => 0.5,
      }).agent,
    }));
    await run(w, t0, 180, 5, agents);
    const guardActions = w.proxy.calls.filter((c) => c.principal !== 'operator' && ACTIONS.test(c.action));
    expect(guardActions.map((c) => `${c.principal} ${c.action}`)).toEqual([]);
    const states = await w.snapshotTags();
    for (const f of fleet) expect(states.get(f.id)).toBe('running');
    const events = w.delivered.map((d) => d.event);
    expect(events.filter((e) => ['stopped', 'terminated', 'hibernated', 'rebooted', 'started'].includes(e.type))).toEqual([]);
    const decided = events.filter((e) => e.type === 'skipped' || e.type === 'warning');
    expect(new Set(decided.filter((e) => e.type === 'skipped').map((e) => e.rule))).toEqual(new Set(['running-time', 'lifetime', 'idle']));
    for (const e of decided) expect({ type: e.type, rule: e.rule, dryRun: e.dryRun }).toEqual({ type: e.type, rule: e.rule, dryRun: true });
  });
});

describe('a snooze', () => {
  it('does not postpone a hard limit: the running-time stop happens on time, announced, snooze or not', async () => {
    const w = await setUp({
      id: 'snz',
      rules: [
        { rule: 'running-time', max: '1h', action: 'stop', warnBefore: '10m' },
        { rule: 'idle', window: '30m', action: 'stop' },
      ],
    });
    const t0 = w.now;
    const [a] = await w.launch('policy', 1, w.policyTags(w.policy, 1));
    await w.watchdog().handle(scheduledEvent(w.now));
    w.clock.now = t0 + 20 * MIN;
    expect(await snooze(cli(w), { instanceId: a.id, duration: '8h', reason: 'overnight training run' })).toBe(0);
    await run(w, t0, 70, 1);
    const stop = w.proxy.transitions.find((t) => t.instanceId === a.id && t.to === 'stopped');
    expect(stop?.principal).toBe('watchdog');
    expect(stop!.time - t0).toBeGreaterThanOrEqual(60 * MIN);
    expect(stop!.time - t0).toBeLessThanOrEqual(61 * MIN);
    const events = w.delivered.map((d) => d.event);
    expect(events.some((e) => e.type === 'snoozed' && e.instanceId === a.id)).toBe(true);
    expect(events.some((e) => e.type === 'stopped' && e.instanceId === a.id && e.rule === 'running-time')).toBe(true);
  });
});

describe('an extension of a hard limit', () => {
  it('moves the limit by exactly the extension and is announced with who and why', async () => {
    const w = await setUp({ id: 'ext', rules: [{ rule: 'running-time', max: '1h', action: 'stop', warnBefore: '10m' }] });
    const t0 = w.now;
    const [a] = await w.launch('policy', 1, w.policyTags(w.policy, 1));
    await w.watchdog().handle(scheduledEvent(w.now));
    w.clock.now = t0 + 30 * MIN;
    expect(await extend(cli(w), { instanceId: a.id, limit: 'running', amount: '30m', reason: 'demo for the customer at 11:00' })).toBe(0);
    await run(w, t0, 95, 1);
    const stop = w.proxy.transitions.find((t) => t.instanceId === a.id && t.to === 'stopped');
    expect(stop).toBeDefined();
    expect(stop!.time - t0).toBeGreaterThanOrEqual(90 * MIN);
    expect(stop!.time - t0).toBeLessThanOrEqual(91 * MIN);
    const ext = w.delivered.map((d) => d.event).find((e) => e.type === 'extended' && e.instanceId === a.id);
    expect(ext?.detail).toMatchObject({ by: expect.stringMatching(/\S/), reason: 'demo for the customer at 11:00', limit: 'running' });
    expect(ext?.severity).toBe('warning');
  });
});
