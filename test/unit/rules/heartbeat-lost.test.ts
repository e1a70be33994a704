import { evaluate } from '../../../lambda-agent';
import { checkpoint, HOUR, MIN, NOW, observation, policyOf, verdictOf } from '../../fixtures/policies';

// Window 30m after a 15m start grace; the instance has been running for 5h.
const lost = policyOf([{ rule: 'heartbeat-lost', window: '30m', startGrace: '15m', action: 'stop' }]);
const beatAt = (at: number) => ({ heartbeat: { at, conditions: {} } });

describe('heartbeat-lost', () => {
  it.each([
    ['ok (alive) when the last heartbeat is just under the window old', beatAt(NOW - 30 * MIN + 1), { status: 'ok' }],
    ['due when the last heartbeat is exactly the window old', beatAt(NOW - 30 * MIN), { status: 'due', dueAt: NOW }],
    ['due when the last heartbeat is just over the window old', beatAt(NOW - 30 * MIN - 1), { status: 'due', dueAt: NOW - 1 }],
    ['due when there was never a heartbeat this run', {}, { status: 'due', dueAt: NOW - 5 * HOUR + 45 * MIN }],
    ['due when the only heartbeat is from before this run', beatAt(NOW - 6 * HOUR), { status: 'due', dueAt: NOW - 5 * HOUR + 45 * MIN }],
  ])('is %s', (_label, extra, expected) => {
    const obs = observation({ checkpoint: checkpoint({ since: NOW - 5 * HOUR }), ...extra });
    expect(verdictOf(lost, obs)).toEqual(expected);
  });

  it.each([
    ['pending while the agent is still in its start grace', NOW - 10 * MIN, { status: 'pending', dueAt: NOW + 35 * MIN }],
    ['pending just before grace + window have passed', NOW - 45 * MIN + 1, { status: 'pending', dueAt: NOW + 1 }],
    ['due once grace + window have passed without a heartbeat', NOW - 45 * MIN, { status: 'due', dueAt: NOW }],
  ])('after a start with no heartbeat yet, is %s', (_label, since, expected) => {
    expect(verdictOf(lost, observation({ checkpoint: checkpoint({ since }) }))).toEqual(expected);
  });

  it('counts the window from the end of the start grace when the first heartbeat came during it', () => {
    const obs = observation({ checkpoint: checkpoint({ since: NOW - 50 * MIN }), ...beatAt(NOW - 49 * MIN) });
    expect(verdictOf(lost, obs)).toEqual({ status: 'due', dueAt: NOW - 50 * MIN + 15 * MIN + 30 * MIN });
  });

  it('defaults the window to 2.5 heartbeat intervals', () => {
    const policy = policyOf([{ rule: 'heartbeat-lost' }], { agent: { heartbeatInterval: '20m' } });
    const obs = observation({ checkpoint: checkpoint({ since: NOW - 5 * HOUR }), ...beatAt(NOW - 50 * MIN) });
    expect(verdictOf(policy, obs)).toEqual({ status: 'due', dueAt: NOW });
  });

  it('names the episode after the last heartbeat, so a recovered and lost-again agent is a new episode', () => {
    const first = evaluate(lost, observation({ ...beatAt(NOW - HOUR) }), NOW);
    const again = evaluate(lost, observation({ ...beatAt(NOW - 40 * MIN) }), NOW);
    expect(first.rules[0].episode).toBe(`h${(NOW - HOUR) / 1000}`);
    expect(again.rules[0].episode).toBe(`h${(NOW - 40 * MIN) / 1000}`);
  });

  it.each([
    ['the agent evaluates (only the watchdog can see the heartbeat is missing)', observation({ host: 'agent' })],
    ['the instance is stopped', observation({ state: 'stopped', checkpoint: checkpoint({ state: 'stopped', since: NOW - 5 * HOUR }) })],
  ])('is ok when %s', (_label, obs) => {
    expect(verdictOf(lost, obs)).toEqual({ status: 'ok' });
  });
});
