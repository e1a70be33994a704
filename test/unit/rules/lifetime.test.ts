import { evaluate } from '../../../lambda-agent';
import { checkpoint, DAY, HOUR, NOW, observation, policyOf, verdictOf, titled } from '../../fixtures/policies';

const MAX = 8 * HOUR;
const stopAt8h = policyOf([{ rule: 'lifetime', max: '8h' }]);
const terminateAt8h = policyOf([{ rule: 'lifetime', max: '8h', action: 'terminate' }]);

describe('lifetime', () => {
  it.each(
    titled([
      ['just below the limit', NOW - MAX + 1, { status: 'pending', dueAt: NOW + 1 }],
      ['exactly at the limit', NOW - MAX, { status: 'due', dueAt: NOW }],
      ['just above the limit', NOW - MAX - 1, { status: 'due', dueAt: NOW - 1 }],
      ['far below the limit', NOW - HOUR, { status: 'pending', dueAt: NOW + 7 * HOUR }],
    ]),
  )('a running instance is %s', (_label, firstSeen, expected) => {
    // GIVEN an instance running since one hour ago, first seen at `firstSeen`
    const obs = observation({ checkpoint: checkpoint({ since: Math.max(firstSeen, NOW - HOUR), firstSeen }) });
    // WHEN / THEN
    expect(verdictOf(stopAt8h, obs)).toEqual(expected);
  });

  it('counts lifetime from the first-seen time of the checkpoint, not from EC2 LaunchTime (which resets on start)', () => {
    // GIVEN an instance first seen 9h ago, restarted 10 minutes ago (LaunchTime = stateSince)
    const obs = observation({
      stateSince: NOW - 10 * 60_000,
      checkpoint: checkpoint({ since: NOW - 10 * 60_000, firstSeen: NOW - 9 * HOUR, runningMs: 3 * HOUR }),
    });
    // WHEN
    const d = evaluate(stopAt8h, obs, NOW);
    // THEN the limit is past, measured from first seen
    expect(d.rules[0]).toMatchObject({ status: 'due', dueAt: NOW - HOUR });
    expect(d.accounting.lifetimeMs).toBe(9 * HOUR);
    expect(d.action).toMatchObject({ name: 'stop', rule: 'lifetime', hard: true });
  });

  it('starts counting at LaunchTime when there is no checkpoint yet (first time seen)', () => {
    const obs = observation({ checkpoint: undefined, stateSince: NOW - 3 * HOUR });
    expect(verdictOf(stopAt8h, obs)).toEqual({ status: 'pending', dueAt: NOW + 5 * HOUR });
  });

  it.each(
    titled([
      ['stop', stopAt8h, { status: 'ok' }],
      ['terminate', terminateAt8h, { status: 'due', dueAt: NOW - DAY + MAX }],
    ]),
  )('a stopped instance over its lifetime, with action %s', (_action, policy, expected) => {
    // GIVEN an instance first seen a day ago and stopped since 20 hours ago
    const obs = observation({
      state: 'stopped',
      checkpoint: checkpoint({ state: 'stopped', since: NOW - 20 * HOUR, firstSeen: NOW - DAY, runningMs: 4 * HOUR }),
    });
    expect(verdictOf(policy, obs)).toEqual(expected);
  });

  it.each(
    titled([
      ['just below the extended limit', NOW - MAX - HOUR + 1, { status: 'pending', dueAt: NOW + 1 }],
      ['exactly at the extended limit', NOW - MAX - HOUR, { status: 'due', dueAt: NOW }],
    ]),
  )('an extension of 1h moves the limit: %s', (_label, firstSeen, expected) => {
    const obs = observation({ checkpoint: checkpoint({ since: NOW - HOUR, firstSeen }), overrides: { lifetimeMs: HOUR } });
    expect(verdictOf(stopAt8h, obs)).toEqual(expected);
  });

  it('reports its figures against the limit', () => {
    const obs = observation({ checkpoint: checkpoint({ since: NOW - HOUR, firstSeen: NOW - 2 * HOUR }) });
    expect(evaluate(stopAt8h, obs, NOW).rules[0].figures).toEqual({ value: 2 * HOUR, limit: MAX, unit: 'ms' });
  });
});
