import { evaluate } from '../../../lambda-agent';
import { accountingAt, billingOf, reconcile, transition } from '../../../lambda-agent/engine';
import type { Tariff } from '../../../lambda-agent/policy/tariff';
import { checkpoint, DAY, HOUR, MIN, NOW, observation, policyOf } from '../../fixtures/policies';

const ONE_USD_AN_HOUR: Tariff = { hourlyUsd: 1, storageHourlyUsd: 0.25, netOutUsdPerGb: 0.09 };

describe('accounting', () => {
  it.each([
    ['pending', 'running'],
    ['running', 'running'],
    ['stopping', 'stopped'],
    ['stopped', 'stopped'],
    ['shutting-down', 'terminated'],
    ['terminated', 'terminated'],
  ] as const)('bills an instance that is %s as %s', (state, billing) => {
    expect(billingOf(state)).toBe(billing);
  });

  describe('reconcile', () => {
    it('creates the first checkpoint at LaunchTime for a running instance (first seen = launch)', () => {
      expect(reconcile(undefined, 'running', NOW - HOUR, NOW, ONE_USD_AN_HOUR)).toEqual({
        checkpoint: { state: 'running', since: NOW - HOUR, firstSeen: NOW - HOUR, runningMs: 0, spendUsd: 0 },
        changed: true,
      });
    });

    it('creates the first checkpoint now for a stopped instance, and never from a future LaunchTime', () => {
      expect(reconcile(undefined, 'stopped', NOW - HOUR, NOW, ONE_USD_AN_HOUR).checkpoint).toMatchObject({
        state: 'stopped',
        since: NOW,
        firstSeen: NOW,
      });
      expect(reconcile(undefined, 'running', NOW + HOUR, NOW, ONE_USD_AN_HOUR).checkpoint).toMatchObject({ since: NOW });
    });

    it('keeps the checkpoint while the billing state does not change (a steady state writes nothing)', () => {
      const cp = checkpoint();
      const r = reconcile(cp, 'running', NOW - 5 * MIN, NOW, ONE_USD_AN_HOUR);
      expect(r.changed).toBe(false);
      expect(r.checkpoint).toBe(cp);
    });

    it('closes the running segment at the stop time: running time and spend accrue up to it', () => {
      // GIVEN running since 2h ago with 1h and $3 accrued before; stopped 30 minutes ago
      const cp = checkpoint({ since: NOW - 2 * HOUR, runningMs: HOUR, spendUsd: 3 });
      const r = reconcile(cp, 'stopped', NOW - 30 * MIN, NOW, ONE_USD_AN_HOUR);
      expect(r.changed).toBe(true);
      expect(r.checkpoint).toEqual({
        state: 'stopped',
        since: NOW - 30 * MIN,
        firstSeen: cp.firstSeen,
        runningMs: HOUR + 90 * MIN,
        spendUsd: 3 + 1.5 * 1.25,
      });
    });

    it.each([
      ['before the stored since', NOW - 3 * HOUR, NOW - 2 * HOUR],
      ['in the future', NOW + HOUR, NOW],
      ['unknown', undefined, NOW],
    ])('places the transition within [since, now] when the observed state start is %s', (_label, stateSince, at) => {
      const cp = checkpoint({ since: NOW - 2 * HOUR });
      expect(reconcile(cp, 'stopped', stateSince, NOW, ONE_USD_AN_HOUR).checkpoint.since).toBe(at);
    });

    it('accrues only storage over a stopped segment', () => {
      const cp = checkpoint({ state: 'stopped', since: NOW - 4 * HOUR, runningMs: HOUR, spendUsd: 1 });
      expect(reconcile(cp, 'running', NOW - 2 * HOUR, NOW, ONE_USD_AN_HOUR).checkpoint).toEqual({
        state: 'running',
        since: NOW - 2 * HOUR,
        firstSeen: cp.firstSeen,
        runningMs: HOUR,
        spendUsd: 1 + 2 * 0.25,
      });
    });
  });

  it('sums running time across stop/start cycles while lifetime runs on from first seen', () => {
    // GIVEN three cycles: run 2h, stop 1h, run 3h, stop 5h, run 1h (now)
    const policy = policyOf([{ rule: 'running-time', max: '100h' }]);
    const t0 = NOW - 12 * HOUR;
    const steps: Array<['running' | 'stopped', number]> = [
      ['running', t0],
      ['stopped', t0 + 2 * HOUR],
      ['running', t0 + 3 * HOUR],
      ['stopped', t0 + 6 * HOUR],
      ['running', t0 + 11 * HOUR],
    ];
    let obs = observation({ checkpoint: undefined });
    let d = evaluate(policy, { ...obs, state: 'running', stateSince: t0 }, t0);
    for (const [state, at] of steps.slice(1)) {
      obs = { ...obs, state, stateSince: at, checkpoint: d.checkpoint };
      d = evaluate(policy, obs, at + MIN);
    }
    // WHEN evaluated an hour into the last run
    d = evaluate(policy, { ...obs, checkpoint: d.checkpoint }, NOW);
    // THEN
    expect(d.accounting).toEqual({ firstSeen: t0, lifetimeMs: 12 * HOUR, runningMs: 6 * HOUR, spendUsd: 0 });
  });

  it('derives figures from the checkpoint: replaying an evaluation cannot double-count', () => {
    const cp = checkpoint({ since: NOW - HOUR, firstSeen: NOW - DAY, runningMs: 5 * HOUR, spendUsd: 2 });
    const a = accountingAt(cp, NOW, ONE_USD_AN_HOUR, 2e9);
    expect(a).toEqual({ firstSeen: NOW - DAY, lifetimeMs: DAY, runningMs: 6 * HOUR, spendUsd: 2 + 1.25 + 2 * 0.09 });
    expect(accountingAt(cp, NOW, ONE_USD_AN_HOUR, 2e9)).toEqual(a);
  });

  it('never accrues backwards when now is before the checkpoint', () => {
    const cp = checkpoint({ since: NOW, runningMs: HOUR, spendUsd: 1 });
    expect(accountingAt(cp, NOW - HOUR, ONE_USD_AN_HOUR)).toMatchObject({ runningMs: HOUR, spendUsd: 1 });
    expect(transition(cp, 'stopped', NOW - HOUR, ONE_USD_AN_HOUR)).toMatchObject({ since: NOW, runningMs: HOUR, spendUsd: 1 });
  });
});
