import { evaluate } from '../../../lambda-agent';
import { checkpoint, HOUR, MIN, NOW, observation, policyOf, verdictOf, titled } from '../../fixtures/policies';

const BUDGET = 40 * HOUR;
const stopAt40h = policyOf([{ rule: 'running-time', max: '40h' }]);
const terminateAt40h = policyOf([{ rule: 'running-time', max: '40h', action: 'terminate' }]);

describe('running-time', () => {
  // The current run began 2h ago; `before` is the running time accrued in earlier runs.
  it.each(
    titled([
      ['just below the budget', BUDGET - 2 * HOUR - 1, { status: 'pending', dueAt: NOW + 1 }],
      ['exactly at the budget', BUDGET - 2 * HOUR, { status: 'due', dueAt: NOW }],
      ['just above the budget', BUDGET - 2 * HOUR + 1, { status: 'due', dueAt: NOW - 1 }],
      ['well within the budget', 0, { status: 'pending', dueAt: NOW + 38 * HOUR }],
    ]),
  )('is %s', (_label, before, expected) => {
    const obs = observation({ checkpoint: checkpoint({ since: NOW - 2 * HOUR, firstSeen: NOW - 10 * 24 * HOUR, runningMs: before }) });
    expect(verdictOf(stopAt40h, obs)).toEqual(expected);
  });

  it('sums running time across stop/start cycles and ignores stopped time', () => {
    // GIVEN a checkpoint stopped for 30 days with 39h already run; the instance is seen running since 30 minutes ago
    const obs = observation({
      stateSince: NOW - 30 * MIN,
      checkpoint: checkpoint({ state: 'stopped', since: NOW - 30 * 24 * HOUR, firstSeen: NOW - 40 * 24 * HOUR, runningMs: 39 * HOUR }),
    });
    // WHEN
    const d = evaluate(stopAt40h, obs, NOW);
    // THEN the checkpoint is reconciled at the start and 39.5h are counted
    expect(d.checkpointChanged).toBe(true);
    expect(d.checkpoint).toMatchObject({ state: 'running', since: NOW - 30 * MIN, runningMs: 39 * HOUR });
    expect(d.accounting.runningMs).toBe(39 * HOUR + 30 * MIN);
    expect(d.rules[0]).toMatchObject({ status: 'pending', dueAt: NOW + 30 * MIN });
  });

  it.each(
    titled([
      ['stop, budget used up', stopAt40h, BUDGET, { status: 'ok' }],
      ['terminate, budget used up', terminateAt40h, BUDGET, { status: 'due', dueAt: NOW }],
      ['terminate, 1ms of budget left', terminateAt40h, BUDGET - 1, { status: 'ok' }],
    ]),
  )('a stopped instance, with action %s', (_action, policy, runningMs, expected) => {
    const obs = observation({
      state: 'stopped',
      checkpoint: checkpoint({ state: 'stopped', since: NOW - HOUR, firstSeen: NOW - 100 * HOUR, runningMs }),
    });
    expect(verdictOf(policy, obs)).toEqual(expected);
  });

  it.each(
    titled([
      ['just below the extended budget', BUDGET + HOUR - 2 * HOUR - 1, { status: 'pending', dueAt: NOW + 1 }],
      ['exactly at the extended budget', BUDGET + HOUR - 2 * HOUR, { status: 'due', dueAt: NOW }],
    ]),
  )('an extension of 1h moves the budget: %s', (_label, before, expected) => {
    const obs = observation({ checkpoint: checkpoint({ since: NOW - 2 * HOUR, runningMs: before }), overrides: { runningMs: HOUR } });
    expect(verdictOf(stopAt40h, obs)).toEqual(expected);
  });
});
