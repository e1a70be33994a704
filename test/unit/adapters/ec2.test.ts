import {
  ACTION_BATCH_SIZE,
  describePolicyInstances,
  describeStatusChecks,
  discoveryFilters,
  performAction,
  writeTags,
} from '../../../lambda-agent/adapters/ec2';
import { awsError, opOf } from '../../support/fleet';

type Call = { op: string; input: any };

/** A fake EC2 whose action calls fail for the ids in `refuse` (whole batch, as EC2 does). */
function fakeEc2(refuse: Record<string, string> = {}, extra?: (c: Call) => unknown) {
  const calls: Call[] = [];
  return {
    calls,
    async send(command: any) {
      const call = { op: opOf(command), input: command.input };
      calls.push(call);
      const custom = extra?.(call);
      if (custom !== undefined) return custom;
      const bad = (call.input.InstanceIds ?? []).find((id: string) => refuse[id]);
      if (bad) throw awsError(refuse[bad], `The instance '${bad}' may not be changed.`);
      return {};
    },
  };
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `i-${String(i).padStart(17, '0')}`);

describe('performAction', () => {
  it('carries out an action on many instances in one call', async () => {
    const ec2 = fakeEc2();
    const r = await performAction(ec2, 'stop', ids(3));
    expect([...r.values()]).toEqual([{ outcome: 'done' }, { outcome: 'done' }, { outcome: 'done' }]);
    expect(ec2.calls).toEqual([{ op: 'StopInstances', input: { InstanceIds: ids(3) } }]);
  });

  it.each([
    ['stop', 'StopInstances', {}],
    ['hibernate', 'StopInstances', { Hibernate: true }],
    ['reboot', 'RebootInstances', {}],
    ['terminate', 'TerminateInstances', {}],
    ['start', 'StartInstances', {}],
  ] as const)('maps %s to %s', async (action, op, extra) => {
    const ec2 = fakeEc2();
    await performAction(ec2, action, ids(1));
    expect(ec2.calls).toEqual([{ op, input: { InstanceIds: ids(1), ...extra } }]);
  });

  it(`splits calls at ${ACTION_BATCH_SIZE} ids and never repeats an id`, async () => {
    const ec2 = fakeEc2();
    const list = ids(ACTION_BATCH_SIZE + 10);
    await performAction(ec2, 'terminate', [...list, list[0]]);
    expect(ec2.calls.map((c) => c.input.InstanceIds.length)).toEqual([ACTION_BATCH_SIZE, 10]);
  });

  it('skips a termination-protected instance and terminates the rest of the batch', async () => {
    const list = ids(16);
    const ec2 = fakeEc2({ [list[11]]: 'OperationNotPermitted' });
    const r = await performAction(ec2, 'terminate', list);
    expect(r.get(list[11])).toEqual({
      outcome: 'skipped',
      reason: 'termination-protection',
      detail: expect.stringMatching(/^termination protection \(disableApiTermination\) is on: OperationNotPermitted/),
    });
    expect(list.filter((id) => r.get(id)?.outcome === 'done')).toHaveLength(15);
    // bisection: about 2·log2(16) calls, not 16
    expect(ec2.calls.length).toBeLessThanOrEqual(9);
  });

  it('skips a stop-protected instance for stop and hibernate', async () => {
    const [a] = ids(1);
    for (const action of ['stop', 'hibernate'] as const) {
      const r = await performAction(fakeEc2({ [a]: 'OperationNotPermitted' }), action, [a]);
      expect(r.get(a)).toMatchObject({ outcome: 'skipped', reason: 'stop-protection' });
    }
  });

  it.each(['UnsupportedHibernationConfiguration', 'UnsupportedOperation'])(
    'falls back to a plain stop when hibernation is refused with %s',
    async (code) => {
      const [a, b] = ids(2);
      const ec2 = fakeEc2({}, (c) => {
        if (c.input.Hibernate && c.input.InstanceIds.includes(a)) throw awsError(code, 'not configured for hibernation');
        return undefined;
      });
      const r = await performAction(ec2, 'hibernate', [a, b]);
      expect(r.get(a)).toEqual({ outcome: 'fallback', performed: 'stop', reason: `${code}: not configured for hibernation` });
      expect(r.get(b)).toEqual({ outcome: 'done' });
      expect(ec2.calls).toContainEqual({ op: 'StopInstances', input: { InstanceIds: [a] } });
      expect(ec2.calls).not.toContainEqual({ op: 'StopInstances', input: { InstanceIds: [b] } });
    },
  );

  it('fails the whole batch at once for an error that does not concern single instances', async () => {
    const ec2 = fakeEc2({}, () => {
      throw awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.');
    });
    const r = await performAction(ec2, 'stop', ids(8));
    expect(ec2.calls).toHaveLength(1);
    expect(
      [...r.values()].every(
        (x) => x.outcome === 'failed' && x.error === 'UnauthorizedOperation: You are not authorized to perform this operation.',
      ),
    ).toBe(true);
  });

  it('reports an instance in the wrong state as failed (the pending record lets the next run retry)', async () => {
    const [a] = ids(1);
    const r = await performAction(fakeEc2({ [a]: 'IncorrectInstanceState' }), 'stop', [a]);
    expect(r.get(a)).toEqual({ outcome: 'failed', error: `IncorrectInstanceState: The instance '${a}' may not be changed.` });
  });
});

describe('discovery and state', () => {
  it('always describes with the exact policy tag and the managed states, page by page', async () => {
    const pages = [
      { Reservations: [{ Instances: [{ InstanceId: 'i-1' }] }], NextToken: 't2' },
      { Reservations: [{ Instances: [{ InstanceId: 'i-2' }, { InstanceId: 'i-3' }] }] },
    ];
    const ec2 = fakeEc2({}, () => pages.shift());
    const got: string[][] = [];
    for await (const page of describePolicyInstances(ec2, 'dev')) got.push(page.map((i) => i.InstanceId!));
    expect(got).toEqual([['i-1'], ['i-2', 'i-3']]);
    expect(ec2.calls.map((c) => c.input)).toEqual([
      { Filters: discoveryFilters('dev'), MaxResults: 1000 },
      { Filters: discoveryFilters('dev'), MaxResults: 1000, NextToken: 't2' },
    ]);
    expect(discoveryFilters('dev', 'i-9')).toEqual([
      { Name: 'tag:smvm:policy', Values: ['dev'] },
      { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
      { Name: 'instance-id', Values: ['i-9'] },
    ]);
  });

  it('writes the tags of one instance in one CreateTags call', async () => {
    const ec2 = fakeEc2();
    await writeTags(ec2, 'i-1', { 'smvm:state': 'a', 'smvm:episodes': 'b' });
    await writeTags(ec2, 'i-1', {});
    expect(ec2.calls).toEqual([
      {
        op: 'CreateTags',
        input: {
          Resources: ['i-1'],
          Tags: [
            { Key: 'smvm:state', Value: 'a' },
            { Key: 'smvm:episodes', Value: 'b' },
          ],
        },
      },
    ]);
  });

  it('reads status checks 100 ids per call, with the time a failed check began', async () => {
    const since = new Date('2026-03-04T11:00:00Z');
    const ec2 = fakeEc2({}, (c) => ({
      InstanceStatuses: c.input.InstanceIds.slice(0, 3).map((id: string, i: number) => ({
        InstanceId: id,
        InstanceStatus:
          i === 0
            ? { Status: 'impaired', Details: [{ Name: 'reachability', Status: 'failed', ImpairedSince: since }] }
            : { Status: i === 1 ? 'ok' : 'initializing' },
        SystemStatus: { Status: 'ok' },
      })),
    }));
    const list = ids(150);
    const r = await describeStatusChecks(ec2, list);
    expect(ec2.calls.map((c) => c.input.InstanceIds.length)).toEqual([100, 50]);
    expect(r.get(list[0])).toEqual({ ok: false, impairedSince: since.getTime() });
    expect(r.get(list[1])).toEqual({ ok: true });
    expect(r.get(list[2])).toEqual({});
  });
});
