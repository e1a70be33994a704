import { evaluate } from '../../../lambda-agent';
import { checkpoint, HOUR, NOW, observation, policyOf, verdictOf, titled } from '../../fixtures/policies';

// $1/h, cap $10; the instance has been running for 2h (accruing $2 so far in this run).
const capped = policyOf([{ rule: 'spend', maxUsd: 10, hourlyUsd: 1, storageUsdPerGbMonth: 0 }]);
const terminating = policyOf([{ rule: 'spend', maxUsd: 10, hourlyUsd: 1, storageGb: 730, storageUsdPerGbMonth: 1, action: 'terminate' }]);
const priced = policyOf([{ rule: 'spend', maxUsd: 10 }]);

function runningWith(spendUsd: number, extra: Parameters<typeof observation>[0] = {}) {
  return observation({ checkpoint: checkpoint({ since: NOW - 2 * HOUR, spendUsd }), ...extra });
}

describe('spend', () => {
  it.each(
    titled([
      ['just below the cap', 7.999, { status: 'pending', dueAt: NOW + 3600 }],
      ['exactly at the cap', 8, { status: 'due', dueAt: NOW }],
      ['just above the cap', 8.001, { status: 'due', dueAt: NOW }],
      ['well below the cap', 0, { status: 'pending', dueAt: NOW + 8 * HOUR }],
    ]),
  )('is %s', (_label, before, expected) => {
    expect(verdictOf(capped, runningWith(before))).toEqual(expected);
  });

  it('counts network out per GB', () => {
    // GIVEN $7 before the run + $2 compute + 1 GB out at $1.5/GB = $10.5
    const policy = policyOf([{ rule: 'spend', maxUsd: 10, hourlyUsd: 1, networkOutUsdPerGb: 1.5, storageUsdPerGbMonth: 0 }]);
    const d = evaluate(policy, runningWith(7, { netOutBytes: 1e9 }), NOW);
    expect(d.accounting.spendUsd).toBeCloseTo(10.5, 9);
    expect(d.rules[0]).toMatchObject({ status: 'due', dueAt: NOW });
  });

  it('takes the price list rate when the policy names no hourly rate', () => {
    expect(verdictOf(priced, runningWith(0, { hourlyUsd: 2 }))).toEqual({ status: 'pending', dueAt: NOW + 3 * HOUR });
  });

  it('is unknown, with a notice, when no hourly price is known at all (never a silent zero)', () => {
    const d = evaluate(priced, runningWith(0, { instanceType: 'x9.huge' }), NOW);
    expect(d.rules[0].status).toBe('unknown');
    expect(d.notices).toEqual([expect.stringContaining('x9.huge')]);
    expect(d.action).toBeUndefined();
  });

  it.each(
    titled([
      ['stop, over the cap', capped, 20, { status: 'ok' }],
      ['terminate, under the cap', terminating, 9.5, { status: 'ok' }],
      ['terminate, at the cap', terminating, 10, { status: 'due', dueAt: NOW }],
    ]),
  )('a stopped instance, with action %s', (_action, policy, spent, expected) => {
    const obs = observation({ state: 'stopped', checkpoint: checkpoint({ state: 'stopped', since: NOW, spendUsd: spent }) });
    expect(verdictOf(policy, obs)).toEqual(expected);
  });

  it('accrues storage while stopped, so a terminate cap is reached without running', () => {
    // GIVEN 730 GB at $1/GB-month = $1/h of storage, stopped 30 minutes ago at $9.6
    const obs = observation({ state: 'stopped', checkpoint: checkpoint({ state: 'stopped', since: NOW - 30 * 60_000, spendUsd: 9.6 }) });
    const d = evaluate(terminating, obs, NOW);
    expect(d.accounting.spendUsd).toBeCloseTo(10.1, 9);
    expect(d.rules[0]).toMatchObject({ status: 'due', dueAt: NOW });
    expect(d.action).toMatchObject({ name: 'terminate', hard: true });
  });

  describe('with a peak rate (Amsterdam weekdays 08:00–19:00, $3/h; $1/h off-peak)', () => {
    // NOW is Wednesday 14:00 local (12:00Z); the peak window closes at 17:00Z.
    const peak = policyOf([
      {
        rule: 'spend',
        maxUsd: 100,
        hourlyUsd: 1,
        storageUsdPerGbMonth: 0,
        peak: {
          hourlyUsd: 3,
          timezone: 'Europe/Amsterdam',
          windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00', end: '19:00' }],
        },
      },
    ]);
    // The run began at 11:00Z (13:00 local, inside the peak): $3 accrued in this run so far.
    const ran = (before: number) => observation({ checkpoint: checkpoint({ since: NOW - HOUR, spendUsd: before }) });
    it.each(
      titled([
        ['pending while $6 are left: 2 peak hours', 100 - 3 - 6, { status: 'pending', dueAt: NOW + 2 * HOUR }],
        [
          'pending while $16 are left: 5 peak hours ($15), then 1 off-peak hour',
          100 - 3 - 16,
          { status: 'pending', dueAt: NOW + 6 * HOUR },
        ],
        ['due when the peak hour this run reaches the cap', 97, { status: 'due', dueAt: NOW }],
      ]),
    )('is %s', (_label, before, expected) => {
      expect(verdictOf(peak, ran(before))).toEqual(expected);
    });
  });

  it('an extension of $5 moves the cap', () => {
    expect(verdictOf(capped, runningWith(8, { overrides: { spendUsd: 5 } }))).toEqual({ status: 'pending', dueAt: NOW + 5 * HOUR });
  });
});
