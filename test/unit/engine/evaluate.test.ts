import { evaluate, type Decision, type Observation, type Policy } from '../../../lambda-agent';
import type { ActionName } from '../../../lambda-agent/contract';
import type { EpisodeRecord } from '../../../lambda-agent/contract';
import { BUSY, checkpoint, DAY, HOUR, IDLE, MIN, NOW, observation, policyOf, series } from '../../fixtures/policies';

/** Samples over-used (CPU 99%) for the last 20 minutes: due for a 15m over-use window. */
const HOT = series({ count: 30, sample: (i) => (i >= 10 ? { cpuPercent: 99, netBytesPerSec: 0, statusOk: true } : IDLE) });
const overUse = (name: string, action: ActionName) => ({ rule: 'over-use', name, window: '15m', cpuPercentAbove: 95, action });

/** Feed a decision's persisted state back, as the executor would. */
function carriedOver(obs: Observation, d: Decision, more: Partial<Observation> = {}): Observation {
  return { ...obs, checkpoint: d.checkpoint, episodes: d.episodes, ...more };
}

describe('evaluate', () => {
  describe('precedence: terminate > hibernate > stop > reboot > notify', () => {
    it.each<[ActionName[], ActionName]>([
      [['notify', 'reboot'], 'reboot'],
      [['reboot', 'stop'], 'stop'],
      [['stop', 'hibernate'], 'hibernate'],
      [['hibernate', 'terminate'], 'terminate'],
      [['terminate', 'notify'], 'terminate'],
      [['notify', 'stop', 'reboot'], 'stop'],
      [['notify', 'reboot', 'stop', 'hibernate', 'terminate'], 'terminate'],
      [['notify'], 'notify'],
    ])('when rules due at once want %j, takes %s', (actions, expected) => {
      // GIVEN one over-use rule per action, all due on the same samples
      const policy = policyOf(actions.map((a, i) => overUse(`r${i}-${a}`, a)));
      // WHEN
      const d = evaluate(policy, observation({ samples: HOT, samplePeriodMs: MIN }), NOW);
      // THEN the strongest wins, every due rule is listed and recorded as acted
      expect(d.action?.name).toBe(expected);
      expect(d.action?.rule).toBe(`r${actions.indexOf(expected)}-${expected}`);
      expect(d.action?.rules.map((r) => r.rule)).toEqual(actions.map((a, i) => `r${i}-${a}`));
      expect(d.episodes.filter((e) => e.actedAt === NOW)).toHaveLength(actions.length);
    });

    it('marks the action hard when a hard limit is among the reasons', () => {
      const policy = policyOf([overUse('hot', 'stop'), { rule: 'lifetime', max: '1h', action: 'notify' }]);
      const d = evaluate(policy, observation({ samples: HOT, samplePeriodMs: MIN }), NOW);
      expect(d.action).toMatchObject({ name: 'stop', rule: 'hot', hard: true });
      expect(d.reasons[0]).toContain('lifetime 2h reached the limit of 1h');
    });

    it('a start never overrides another action: terminate wins over start', () => {
      const policy = policyOf([
        { rule: 'schedule', timezone: 'UTC', windows: [{ days: ['wed'], start: '08:00', end: '18:00' }] },
        { rule: 'running-time', max: '10h', action: 'terminate' },
      ]);
      const obs = observation({ state: 'stopped', checkpoint: checkpoint({ state: 'stopped', since: NOW - DAY, runningMs: 11 * HOUR }) });
      const d = evaluate(policy, obs, NOW);
      expect(d.action).toMatchObject({ name: 'terminate', rule: 'running-time', rules: [{ rule: 'running-time' }] });
      expect(d.rules[0]).toMatchObject({ status: 'due', action: 'start' });
    });

    it.each([
      ['lifetime', { rule: 'lifetime', max: '20h' }],
      ['running-time', { rule: 'running-time', max: '5h' }],
      ['spend', { rule: 'spend', maxUsd: 5, hourlyUsd: 1 }],
    ])('a start is blocked when the %s limit is reached', (name, limitRule) => {
      const policy = policyOf([
        { rule: 'schedule', timezone: 'UTC', windows: [{ days: ['wed'], start: '08:00', end: '18:00' }] },
        limitRule,
      ]);
      const obs = observation({
        state: 'stopped',
        checkpoint: checkpoint({ state: 'stopped', since: NOW - DAY, firstSeen: NOW - 2 * DAY, runningMs: 6 * HOUR, spendUsd: 6 }),
      });
      const d = evaluate(policy, obs, NOW);
      expect(d.action).toBeUndefined();
      expect(d.rules[0]).toMatchObject({ status: 'blocked', reason: expect.stringContaining(`not started: ${name} limit reached`) });
    });

    it('a start goes ahead when the hard limits are not reached', () => {
      const policy = policyOf([
        { rule: 'schedule', timezone: 'UTC', windows: [{ days: ['wed'], start: '08:00', end: '18:00' }] },
        { rule: 'lifetime', max: '3d' },
      ]);
      const obs = observation({
        state: 'stopped',
        checkpoint: checkpoint({ state: 'stopped', since: NOW - DAY, firstSeen: NOW - 2 * DAY }),
      });
      expect(evaluate(policy, obs, NOW).action).toMatchObject({ name: 'start', rule: 'schedule' });
    });
  });

  describe('warning, then action', () => {
    // idle 30m with a 5m warning; idle since 10:00 → due 10:30, warn from 10:25.
    const policy = policyOf([{ rule: 'idle', window: '30m', warnBefore: '5m', startGrace: '0s' }]);
    const since = NOW - 2 * HOUR;
    const dueAt = since + 30 * MIN;
    const warnAt = dueAt - 5 * MIN;
    /** Idle samples on the minute from `since` up to `now`. */
    const idleUpTo = (now: number) => {
      const count = Math.floor((now - since) / MIN);
      return series({ end: since + count * MIN, count, sample: IDLE });
    };
    const at = (now: number, episodes: readonly EpisodeRecord[] = []): Decision =>
      evaluate(
        policy,
        observation({ checkpoint: checkpoint({ since: since - HOUR }), samples: idleUpTo(now), samplePeriodMs: MIN, episodes }),
        now,
      );

    it('is pending, with the warning as the next thing, before the warning time', () => {
      const d = at(warnAt - 1);
      expect(d.rules[0]).toMatchObject({ status: 'pending', dueAt, actAt: dueAt });
      expect(d.warnings).toEqual([]);
      expect(d.next).toEqual({ at: warnAt, rule: 'idle', kind: 'warning', action: 'stop' });
    });

    it('warns once at the warning time, and records the warning in the episode', () => {
      const d = at(warnAt);
      expect(d.warnings).toEqual([
        { rule: 'idle', episode: String(since / 1000), action: 'stop', dueAt, reason: expect.stringContaining('idle for 25m') },
      ]);
      expect(d.rules[0]).toMatchObject({ status: 'warning', actAt: dueAt });
      expect(d.episodes).toEqual([{ rule: 'idle', episode: String(since / 1000), warnedAt: warnAt, action: 'stop' }]);
      expect(d.episodesChanged).toBe(true);
      expect(d.action).toBeUndefined();
      expect(d.reasons).toEqual([expect.stringMatching(/^warning: idle for 25m/)]);
      // AND a second evaluation with the record does not warn again
      const again = at(warnAt + MIN, d.episodes);
      expect(again.warnings).toEqual([]);
      expect(again.rules[0]).toMatchObject({ status: 'pending', actAt: dueAt });
      expect(again.episodesChanged).toBe(false);
    });

    it('acts at the due time after the warning, recording the action in the same episode', () => {
      const warned = at(warnAt);
      const d = at(dueAt, warned.episodes);
      expect(d.action).toMatchObject({ name: 'stop', rule: 'idle', episode: String(since / 1000) });
      expect(d.episodes).toEqual([{ rule: 'idle', episode: String(since / 1000), warnedAt: warnAt, actedAt: dueAt, action: 'stop' }]);
    });

    it('when first seen already due, warns now and acts only warnBefore later', () => {
      const late = dueAt + 10 * MIN;
      const d = at(late);
      expect(d.warnings).toEqual([expect.objectContaining({ dueAt: late + 5 * MIN })]);
      expect(d.action).toBeUndefined();
      expect(at(late + 5 * MIN - 1, d.episodes).action).toBeUndefined();
      expect(at(late + 5 * MIN, d.episodes).action).toMatchObject({ name: 'stop' });
    });

    it("on the agent's report alone, warns but acts only once a report shows the whole window, however long after the warning", () => {
      // GIVEN no samples, only the agent's report taken at 10:20 (idle since 10:00): due 10:30 per the report's start
      const report = (at: number) => ({ heartbeat: { at, conditions: { idle: since } } });
      const byReport = (now: number, at: number, episodes: readonly EpisodeRecord[] = []) =>
        evaluate(policy, observation({ checkpoint: checkpoint({ since: since - HOUR }), episodes, ...report(at) }), now);
      const warned = byReport(warnAt, since + 20 * MIN);
      expect(warned.warnings).toEqual([expect.objectContaining({ dueAt })]);
      // WHEN the time comes, the report still from 10:20: not proven idle past 10:20, no action
      const later = byReport(dueAt + 10 * MIN, since + 20 * MIN, warned.episodes);
      expect(later.action).toBeUndefined();
      expect(later.rules[0]).toMatchObject({ status: 'pending', dueAt });
      // THEN a report taken at or after 10:30 that still says idle since 10:00 is enough
      expect(byReport(dueAt + 11 * MIN, dueAt, warned.episodes).action).toMatchObject({ name: 'stop', episode: String(since / 1000) });
    });

    it('does not act when the condition cleared after the warning, and warns again for a new episode', () => {
      const warned = at(warnAt);
      // GIVEN a busy minute after the warning: the condition cleared
      const busyNow = evaluate(
        policy,
        observation({
          checkpoint: checkpoint({ since: since - HOUR }),
          samples: [...series({ end: dueAt - MIN, count: 29, sample: IDLE }), { at: dueAt, ...BUSY }],
          samplePeriodMs: MIN,
          episodes: warned.episodes,
        }),
        dueAt,
      );
      expect(busyNow.rules[0].status).toBe('ok');
      expect(busyNow.action).toBeUndefined();
      // WHEN it is idle again from then on, 25 minutes later it is a new episode with its own warning
      const later = dueAt + 25 * MIN;
      const again = evaluate(
        policy,
        observation({
          checkpoint: checkpoint({ since: since - HOUR }),
          samples: series({ end: later, count: 25, sample: IDLE }),
          samplePeriodMs: MIN,
          episodes: busyNow.episodes,
        }),
        later,
      );
      expect(again.warnings).toEqual([expect.objectContaining({ episode: String(dueAt / 1000), dueAt: dueAt + 30 * MIN })]);
    });

    it('never warns for notify (the notification is the warning) and acts at the due time', () => {
      const notify = policyOf([{ rule: 'lifetime', max: '2h', action: 'notify' }]);
      const d = evaluate(notify, observation(), NOW);
      expect(d.warnings).toEqual([]);
      expect(d.action).toMatchObject({ name: 'notify', rule: 'lifetime' });
    });
  });

  describe('snooze and extensions', () => {
    const idleNow = { samples: series({ count: 40, sample: IDLE }), samplePeriodMs: MIN };
    const idle = { rule: 'idle', window: '30m' };

    it('postpones a soft rule until the snooze ends', () => {
      const d = evaluate(policyOf([idle]), observation({ ...idleNow, overrides: { snoozeUntil: NOW + HOUR } }), NOW);
      expect(d.rules[0]).toMatchObject({ status: 'snoozed', dueAt: NOW - 10 * MIN, actAt: NOW + HOUR });
      expect(d.action).toBeUndefined();
      expect(d.next).toEqual({ at: NOW + HOUR, rule: 'idle', kind: 'action', action: 'stop' });
    });

    it('acts on a soft rule once the snooze is over', () => {
      const d = evaluate(policyOf([idle]), observation({ ...idleNow, overrides: { snoozeUntil: NOW } }), NOW);
      expect(d.action).toMatchObject({ name: 'stop', rule: 'idle' });
    });

    it('warns after a snooze before acting, when the rule warns', () => {
      const d = evaluate(policyOf([{ ...idle, warnBefore: '5m' }]), observation({ ...idleNow, overrides: { snoozeUntil: NOW - 1 } }), NOW);
      expect(d.warnings).toEqual([expect.objectContaining({ rule: 'idle', dueAt: NOW + 5 * MIN })]);
      expect(d.action).toBeUndefined();
    });

    it.each([
      ['lifetime', { rule: 'lifetime', max: '1h' }],
      ['running-time', { rule: 'running-time', max: '1h' }],
      ['spend', { rule: 'spend', maxUsd: 1, hourlyUsd: 1 }],
    ])('never postpones the hard %s limit', (name, rule) => {
      const d = evaluate(policyOf([rule]), observation({ overrides: { snoozeUntil: NOW + DAY } }), NOW);
      expect(d.action).toMatchObject({ name: 'stop', rule: name, hard: true });
    });

    it.each([
      ['lifetime', { rule: 'lifetime', max: '1h' }, { lifetimeMs: 2 * HOUR }, NOW + HOUR],
      ['running-time', { rule: 'running-time', max: '1h' }, { runningMs: 2 * HOUR }, NOW + HOUR],
      ['spend', { rule: 'spend', maxUsd: 1, hourlyUsd: 1 }, { spendUsd: 2 }, NOW + HOUR],
    ])('an extension postpones the %s limit', (_name, rule, overrides, dueAt) => {
      const d = evaluate(policyOf([rule]), observation({ overrides }), NOW);
      expect(d.rules[0]).toMatchObject({ status: 'pending', dueAt });
      expect(d.action).toBeUndefined();
    });
  });

  describe('dry run', () => {
    it('carries the flag and otherwise decides exactly as for real', () => {
      const rules = [{ rule: 'lifetime', max: '1h' }];
      const real = evaluate(policyOf(rules), observation(), NOW);
      const dry = evaluate(policyOf(rules, { dryRun: true }), observation(), NOW);
      expect(dry.dryRun).toBe(true);
      expect(real.dryRun).toBe(false);
      expect(dry.action).toEqual(real.action);
      expect(dry.rules).toEqual(real.rules);
      expect(dry.policyHash).not.toBe(real.policyHash);
    });
  });

  describe('idempotency through episode records', () => {
    const notifyAt1h = policyOf([{ rule: 'lifetime', max: '1h', action: 'notify' }]);

    it('does not act again on an episode that was acted on', () => {
      const obs = observation();
      const first = evaluate(notifyAt1h, obs, NOW);
      expect(first.action).toMatchObject({ name: 'notify' });
      const second = evaluate(notifyAt1h, carriedOver(obs, first), NOW + MIN);
      expect(second.action).toBeUndefined();
      expect(second.rules[0]).toMatchObject({ status: 'acted', reason: expect.stringContaining('notify done for this episode') });
      expect(second.episodesChanged).toBe(false);
      expect(second.checkpointChanged).toBe(false);
    });

    it('acts again in a new run (a new episode)', () => {
      const obs = observation();
      const first = evaluate(notifyAt1h, obs, NOW);
      // GIVEN the instance was stopped and started again
      const stoppedObs = carriedOver(obs, first, { state: 'stopped', stateSince: NOW + MIN });
      const stopped = evaluate(notifyAt1h, stoppedObs, NOW + 2 * MIN);
      const restarted = evaluate(
        notifyAt1h,
        carriedOver(stoppedObs, stopped, { state: 'running', stateSince: NOW + 3 * MIN }),
        NOW + 4 * MIN,
      );
      expect(restarted.action).toMatchObject({ name: 'notify', episode: `${(NOW - HOUR) / 1000}-r${(NOW + 3 * MIN) / 1000}` });
    });

    it('evaluating the same input twice gives the same decision', () => {
      const policy = policyOf([
        { rule: 'idle', window: '30m', warnBefore: '5m' },
        { rule: 'lifetime', max: '1d' },
      ]);
      const obs = observation({ samples: series({ count: 40, sample: IDLE }), samplePeriodMs: MIN });
      expect(evaluate(policy, obs, NOW)).toStrictEqual(evaluate(policy, obs, NOW));
    });
  });

  describe('terminated instances', () => {
    it('reports every rule ok and proposes nothing', () => {
      const policy: Policy = policyOf([
        { rule: 'lifetime', max: '1h' },
        { rule: 'idle', window: '30m' },
      ]);
      const d = evaluate(policy, observation({ state: 'terminated' }), NOW);
      expect(d.billing).toBe('terminated');
      expect(d.rules.map((r) => r.status)).toEqual(['ok', 'ok']);
      expect(d.action).toBeUndefined();
    });
  });

  it('reports each rule condition start, for the agent to carry in its heartbeat', () => {
    const policy = policyOf([{ rule: 'idle', window: '30m' }, overUse('hot', 'notify')]);
    const d = evaluate(
      policy,
      observation({
        samples: series({ count: 40, sample: (i) => (i < 30 ? IDLE : { cpuPercent: 99, netBytesPerSec: 0 }) }),
        samplePeriodMs: MIN,
      }),
      NOW,
    );
    expect(d.conditions).toEqual({ hot: NOW - 10 * MIN });
  });

  it('returns a plain-JSON decision that survives a round trip', () => {
    const policy = policyOf([
      { rule: 'idle', window: '30m', warnBefore: '5m' },
      { rule: 'lifetime', max: '1h', action: 'notify' },
    ]);
    const d = evaluate(policy, observation({ samples: series({ count: 40, sample: IDLE }), samplePeriodMs: MIN }), NOW);
    expect(JSON.parse(JSON.stringify(d))).toStrictEqual(d);
  });
});
