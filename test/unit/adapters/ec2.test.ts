import {
  ACTION_BATCH_SIZE,
  describePolicyInstances,
  describeStatusChecks,
  discoveryFilters,
  isTransientError,
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

describe('performAction after a failure that may hide its effect', () => {
  /** A fake EC2 whose action calls fail with `error` and whose describe reports `states`. */
  function lostAnswer(error: unknown, states: Record<string, string>) {
    return fakeEc2({}, (c) => {
      if (c.op === 'DescribeInstances') {
        const wanted: string[] = c.input.Filters.find((f: any) => f.Name === 'instance-id').Values;
        return {
          Reservations: [{ Instances: wanted.filter((id) => states[id]).map((id) => ({ InstanceId: id, State: { Name: states[id] } })) }],
        };
      }
      throw error;
    });
  }

  it.each([
    ['a dropped connection', Object.assign(new Error('socket hang up'), { name: 'TimeoutError', code: 'ECONNRESET' })],
    ['a 5xx', awsError('Unavailable', 'The server is overloaded.', 503)],
    ['throttling (an earlier attempt may have taken effect)', awsError('RequestLimitExceeded', 'Request limit exceeded.', 503)],
    ['an error the SDK wrapped', new Error('AWS SDK error wrapper for TimeoutError: socket hang up')],
  ])('after %s, describes the instances under the policy and takes the visible effect as done', async (_what, error) => {
    const [a, b, c] = ids(3);
    const ec2 = lostAnswer(error, { [a]: 'terminated', [b]: 'shutting-down', [c]: 'running' });
    const r = await performAction(ec2, 'terminate', [a, b, c], { policyId: 'dev' });
    expect(r.get(a)).toEqual({ outcome: 'done' });
    expect(r.get(b)).toEqual({ outcome: 'done' });
    expect(r.get(c)).toMatchObject({ outcome: 'failed' });
    expect(ec2.calls.filter((x) => x.op === 'DescribeInstances').map((x) => x.input)).toEqual([
      {
        Filters: [
          { Name: 'tag:smvm:policy', Values: ['dev'] },
          { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated'] },
          { Name: 'instance-id', Values: [a, b, c] },
        ],
      },
    ]);
  });

  it('judges the effect by the action: a stop is done once stopping or stopped, a start once pending or running', async () => {
    const [a, b] = ids(2);
    const error = awsError('InternalError', 'An internal error has occurred.', 500);
    const stop = await performAction(lostAnswer(error, { [a]: 'stopping', [b]: 'running' }), 'stop', [a, b], { policyId: 'dev' });
    expect([stop.get(a)?.outcome, stop.get(b)?.outcome]).toEqual(['done', 'failed']);
    const start = await performAction(lostAnswer(error, { [a]: 'pending', [b]: 'stopped' }), 'start', [a, b], { policyId: 'dev' });
    expect([start.get(a)?.outcome, start.get(b)?.outcome]).toEqual(['done', 'failed']);
  });

  it('does not describe after a definite refusal, for a reboot (no visible effect) or without the policy', async () => {
    const [a] = ids(1);
    const refused = lostAnswer(awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.'), {
      [a]: 'terminated',
    });
    expect((await performAction(refused, 'terminate', [a], { policyId: 'dev' })).get(a)).toMatchObject({ outcome: 'failed' });
    const timeout = Object.assign(new Error('timed out'), { name: 'TimeoutError' });
    const reboot = lostAnswer(timeout, { [a]: 'running' });
    expect((await performAction(reboot, 'reboot', [a], { policyId: 'dev' })).get(a)).toMatchObject({ outcome: 'failed' });
    const anonymous = lostAnswer(timeout, { [a]: 'terminated' });
    expect((await performAction(anonymous, 'terminate', [a])).get(a)).toMatchObject({ outcome: 'failed' });
    for (const ec2 of [refused, reboot, anonymous]) expect(ec2.calls.some((x) => x.op === 'DescribeInstances')).toBe(false);
  });

  it('stays failed when the confirming describe fails too', async () => {
    const [a] = ids(1);
    const ec2 = fakeEc2({}, () => {
      throw awsError('Unavailable', 'The server is overloaded.', 503);
    });
    expect((await performAction(ec2, 'terminate', [a], { policyId: 'dev' })).get(a)).toEqual({
      outcome: 'failed',
      error: 'Unavailable: The server is overloaded.',
    });
  });
});

describe('isTransientError', () => {
  it.each([
    [awsError('RequestLimitExceeded', 'x', 503), true],
    [awsError('ThrottlingException', 'x', 400), true],
    [awsError('Throttling', 'x', 400), true],
    [awsError('InternalServerError', 'x', 500), true],
    [Object.assign(new Error('x'), { name: 'TimeoutError' }), true],
    [Object.assign(new Error('read ECONNRESET'), { code: 'ECONNRESET' }), true],
    [awsError('ParameterNotFound', 'x', 400), false],
    [awsError('AccessDeniedException', 'x', 400), false],
    [awsError('IncorrectInstanceState', 'x', 400), false],
    [new Error('boom'), false],
    ['boom', false],
  ])('%p → %p', (e, transient) => {
    expect(isTransientError(e)).toBe(transient);
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
