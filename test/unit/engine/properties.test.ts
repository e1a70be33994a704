/**
 * Properties of the decision engine, checked with fast-check on generated policies and
 * observations. Seeded (override with FC_SEED=<n>); a failure prints the seed and the
 * counterexample path for replay.
 */
import fc from 'fast-check';
import {
  evaluate,
  loadPolicy,
  type InstanceState,
  type Observation,
  type Policy,
  type RuleDocument,
  type Sample,
} from '../../../lambda-agent';
import type { ActionName } from '../../../lambda-agent/contract';
import type { Checkpoint, EpisodeRecord } from '../../../lambda-agent/contract';
import { accountingAt, reconcile, transition } from '../../../lambda-agent/engine';
import { accrue, tariffOf, type Tariff } from '../../../lambda-agent/policy/tariff';
import { DAY, HOUR, INSTANCE_ID, MIN, NOW, policyOf } from '../../fixtures/policies';

const SEED = Number(process.env.FC_SEED ?? 20250604);
const RUNS = { seed: SEED, verbose: fc.VerbosityLevel.None, numRuns: 300 } as const;

const TIME_ZONES = ['UTC', 'Europe/Amsterdam', 'Australia/Sydney', 'America/New_York', 'Asia/Kolkata'];
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri'];

// ------------------------------------------------------------------ generators

const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const warn = (action: string) => (action === 'notify' ? fc.constant(undefined) : maybe(fc.constantFrom('5m', '15m', '1h')));
const withWarn = (rule: Record<string, unknown>, w: string | undefined) => (w === undefined ? rule : { ...rule, warnBefore: w });

const lifetimeArb = fc
  .record({ max: fc.constantFrom('1h', '8h', '2d'), action: fc.constantFrom('stop', 'hibernate', 'terminate', 'notify') })
  .chain((r) => warn(r.action).map((w) => withWarn({ rule: 'lifetime', ...r }, w)));
const runningArb = fc
  .record({ max: fc.constantFrom('1h', '10h', '40h'), action: fc.constantFrom('stop', 'hibernate', 'terminate', 'notify') })
  .chain((r) => warn(r.action).map((w) => withWarn({ rule: 'running-time', ...r }, w)));
const peakArb = fc
  .record({ hourlyUsd: fc.constantFrom(0, 0.2, 3), timezone: fc.constantFrom(...TIME_ZONES) })
  .map((p) => ({ ...p, windows: [{ days: WEEKDAYS, start: '08:00', end: '19:00' }] }));
const spendArb = fc
  .record({
    maxUsd: fc.constantFrom(0.5, 5, 50),
    hourlyUsd: maybe(fc.constantFrom(0, 0.1, 2)),
    peak: maybe(peakArb),
    storageGb: maybe(fc.constantFrom(8, 500)),
    action: fc.constantFrom('stop', 'hibernate', 'terminate', 'notify'),
  })
  .map(({ hourlyUsd, peak, storageGb, ...r }) => ({
    rule: 'spend',
    ...r,
    ...(hourlyUsd === undefined ? {} : { hourlyUsd }),
    ...(peak ? { peak } : {}),
    ...(storageGb ? { storageGb } : {}),
  }));
const idleArb = fc
  .record({
    window: fc.constantFrom('5m', '30m'),
    startGrace: fc.constantFrom('0s', '15m'),
    action: fc.constantFrom('stop', 'hibernate', 'terminate', 'notify'),
  })
  .chain((r) => warn(r.action).map((w) => withWarn({ rule: 'idle', ...r }, w)));
const overUseArb = fc
  .record({
    window: fc.constantFrom('5m', '15m'),
    cpuPercentAbove: fc.constantFrom(50, 90),
    action: fc.constantFrom('notify', 'stop', 'reboot', 'hibernate', 'terminate'),
  })
  .map((r) => ({ rule: 'over-use', ...r }));
const healthArb = fc
  .record({ action: fc.constantFrom('reboot', 'stop', 'notify', 'terminate'), escalate: fc.boolean() })
  .map(({ escalate, ...r }) => ({
    rule: 'health',
    window: '5m',
    ...r,
    ...(escalate ? { escalate: { action: 'stop', within: '1h' } } : {}),
  }));
const heartbeatArb = fc
  .record({ action: fc.constantFrom('notify', 'stop', 'reboot', 'terminate') })
  .map((r) => ({ rule: 'heartbeat-lost', window: '30m', ...r }));
const scheduleArb = fc
  .record({
    timezone: fc.constantFrom(...TIME_ZONES),
    night: fc.boolean(),
    action: fc.constantFrom('stop', 'hibernate'),
    startAtOpen: fc.boolean(),
  })
  .chain(({ night, ...r }) =>
    warn(r.action).map((w) =>
      withWarn(
        {
          rule: 'schedule',
          ...r,
          windows: [
            night ? { days: ['mon', 'wed', 'fri'], start: '22:00', end: '06:00' } : { days: WEEKDAYS, start: '08:00', end: '19:00' },
          ],
        },
        w,
      ),
    ),
  );
const taskArb = fc
  .record({ action: fc.constantFrom('stop', 'terminate', 'hibernate', 'notify') })
  .map((r) => ({ rule: 'task-completion', unit: 'job.service', after: '2m', ...r }));

const RULE_ARBS = [lifetimeArb, runningArb, spendArb, idleArb, overUseArb, healthArb, heartbeatArb, scheduleArb, taskArb];
const RULE_NAMES = ['lifetime', 'running-time', 'spend', 'idle', 'over-use', 'health', 'heartbeat-lost', 'schedule', 'task-completion'];

/** A valid policy with 1–9 distinct rule types. */
const policyArb: fc.Arbitrary<Policy> = fc
  .tuple(fc.subarray([0, 1, 2, 3, 4, 5, 6, 7, 8], { minLength: 1 }), fc.boolean())
  .chain(([indices, dryRun]) =>
    fc.tuple(...indices.map((i) => RULE_ARBS[i])).map((rules) => loadPolicy({ id: 'prop', dryRun, rules: rules as RuleDocument[] })),
  );

const sampleArb: fc.Arbitrary<Omit<Sample, 'at'>> = fc.record(
  {
    cpuPercent: fc.oneof(fc.double({ min: 0, max: 8, noNaN: true }), fc.double({ min: 0, max: 100, noNaN: true })),
    netBytesPerSec: fc.oneof(fc.integer({ min: 0, max: 20_000 }), fc.integer({ min: 0, max: 100_000_000 })),
    loginSessions: fc.constantFrom(0, 0, 0, 1),
    statusOk: fc.constantFrom(true, true, false),
    agentErrors: fc.constantFrom(0, 0, 2),
  },
  { requiredKeys: [] },
);

/** 30 samples a minute apart, the last `lag` ms before now (sometimes stale), with an occasional gap. */
const samplesArb = (now: number) =>
  fc
    .tuple(
      fc.array(sampleArb, { minLength: 30, maxLength: 30 }),
      fc.constantFrom(0, 10_000, 3 * MIN),
      fc.option(fc.integer({ min: 1, max: 28 }), { nil: undefined }),
    )
    .map(([figs, lag, gapAt]) =>
      figs.map((f, i) => ({ at: now - lag - (29 - i) * MIN - (gapAt !== undefined && i < gapAt ? 5 * MIN : 0), ...f })),
    );

const STATES: InstanceState[] = ['pending', 'running', 'stopping', 'stopped', 'shutting-down', 'terminated'];

const checkpointArb: fc.Arbitrary<Checkpoint> = fc
  .record({
    state: fc.constantFrom('running' as const, 'stopped' as const),
    since: fc.integer({ min: NOW - 3 * DAY, max: NOW }),
    age: fc.integer({ min: 0, max: 5 * DAY }),
    runningMs: fc.integer({ min: 0, max: 50 * HOUR }),
    spendUsd: fc.double({ min: 0, max: 60, noNaN: true }),
  })
  .map(({ age, ...c }) => ({ ...c, firstSeen: c.since - age }));

const episodeArb: fc.Arbitrary<EpisodeRecord> = fc.record(
  {
    rule: fc.constantFrom(...RULE_NAMES),
    episode: fc.constantFrom('1749030000', 'r1749031200', 'c1749056400', 'o1748930400', 'h1749036600', 't1749037000'),
    warnedAt: fc.integer({ min: NOW - DAY, max: NOW }),
    actedAt: fc.integer({ min: NOW - DAY, max: NOW }),
    action: fc.constantFrom('stop', 'reboot', 'notify', 'terminate'),
  },
  { requiredKeys: ['rule', 'episode'] },
);

const observationArb: fc.Arbitrary<Observation> = fc
  .record({
    host: fc.constantFrom('agent' as const, 'watchdog' as const),
    state: fc.constantFrom(...STATES),
    stateSince: maybe(fc.integer({ min: NOW - 2 * DAY, max: NOW })),
    hourlyUsd: maybe(fc.constantFrom(0.0416, 1.2)),
    netOutBytes: maybe(fc.integer({ min: 0, max: 50e9 })),
    checkpoint: maybe(checkpointArb),
    episodes: maybe(fc.array(episodeArb, { maxLength: 4 })),
    overrides: maybe(
      fc.record(
        {
          snoozeUntil: fc.integer({ min: NOW - HOUR, max: NOW + HOUR }),
          lifetimeMs: fc.constantFrom(HOUR, DAY),
          runningMs: fc.constantFrom(HOUR),
          spendUsd: fc.constantFrom(1, 10),
        },
        { requiredKeys: [] },
      ),
    ),
    heartbeat: maybe(
      fc.record({
        at: fc.integer({ min: NOW - 3 * HOUR, max: NOW }),
        conditions: fc.dictionary(fc.constantFrom(...RULE_NAMES), fc.integer({ min: NOW - DAY, max: NOW }), { maxKeys: 3 }),
      }),
    ),
    samples: maybe(samplesArb(NOW)),
    tasks: maybe(
      fc.record({
        'task-completion': fc.oneof(
          fc.constant({ state: 'running' as const }),
          fc.constant({ state: 'unknown' as const }),
          fc.integer({ min: NOW - HOUR, max: NOW }).map((exitedAt) => ({ state: 'exited' as const, exitedAt })),
        ),
      }),
    ),
  })
  .map((o) => {
    // Plain JSON objects (fast-check builds records without a prototype), as adapters would.
    return JSON.parse(JSON.stringify({ instanceId: INSTANCE_ID, samplePeriodMs: MIN, ...o })) as Observation;
  });

/** Evaluation instants: NOW, or up to two days later (crossing schedule boundaries). */
const nowArb = fc.oneof(fc.constant(NOW), fc.integer({ min: NOW, max: NOW + 2 * DAY }));

// ------------------------------------------------------------------ properties

/** Actions EC2 accepts in each state (a pending instance is treated as running). */
const POSSIBLE: Record<InstanceState, readonly ActionName[]> = {
  pending: ['stop', 'hibernate', 'reboot', 'terminate', 'notify'],
  running: ['stop', 'hibernate', 'reboot', 'terminate', 'notify'],
  stopping: ['terminate', 'notify'],
  stopped: ['start', 'terminate', 'notify'],
  'shutting-down': [],
  terminated: [],
};

describe('engine properties', () => {
  it('is deterministic and its decision survives a JSON round trip', () => {
    fc.assert(
      fc.property(policyArb, observationArb, nowArb, (policy, obs, now) => {
        const d = evaluate(policy, obs, now);
        expect(evaluate(policy, obs, now)).toStrictEqual(d);
        expect(JSON.parse(JSON.stringify(d))).toStrictEqual(d);
      }),
      RUNS,
    );
  });

  it('is idempotent: carrying the decision over and evaluating again at the same instant acts and warns no more', () => {
    fc.assert(
      fc.property(policyArb, observationArb, nowArb, (policy, obs, now) => {
        const first = evaluate(policy, obs, now);
        const again = evaluate(policy, { ...obs, checkpoint: first.checkpoint, episodes: first.episodes }, now);
        expect(again.action).toBeUndefined();
        expect(again.warnings).toEqual([]);
        expect(again.checkpointChanged).toBe(false);
        expect(again.episodesChanged).toBe(false);
        expect(again.accounting).toEqual(first.accounting);
      }),
      RUNS,
    );
  });

  it('never proposes an action the instance state cannot take', () => {
    fc.assert(
      fc.property(policyArb, observationArb, nowArb, (policy, obs, now) => {
        const d = evaluate(policy, obs, now);
        if (d.action) expect(POSSIBLE[obs.state]).toContain(d.action.name);
        for (const w of d.warnings) expect(POSSIBLE[obs.state]).toContain(w.action);
      }),
      RUNS,
    );
  });

  describe('more usage never brings an action forward', () => {
    const bumpArb = fc.record({
      cpu: fc.double({ min: 0, max: 50, noNaN: true }),
      net: fc.integer({ min: 0, max: 50_000 }),
      logins: fc.constantFrom(0, 0, 1),
    });
    /** Samples and a busier copy: every known figure is the same or higher. */
    const pairArb = fc.tuple(samplesArb(NOW), fc.array(bumpArb, { minLength: 30, maxLength: 30 })).map(([samples, bumps]) => {
      const busier = samples.map((s, i) => ({
        ...s,
        ...(s.cpuPercent === undefined ? {} : { cpuPercent: s.cpuPercent + bumps[i].cpu }),
        ...(s.netBytesPerSec === undefined ? {} : { netBytesPerSec: s.netBytesPerSec + bumps[i].net }),
        ...(s.loginSessions === undefined ? {} : { loginSessions: s.loginSessions + bumps[i].logins }),
      }));
      return [samples, busier] as const;
    });
    const sinceArb = fc.integer({ min: NOW - 2 * HOUR, max: NOW });
    const obsOf = (samples: readonly Sample[], since: number): Observation => ({
      instanceId: INSTANCE_ID,
      host: 'agent',
      state: 'running',
      checkpoint: { state: 'running', since, firstSeen: since, runningMs: 0, spendUsd: 0 },
      samples,
      samplePeriodMs: MIN,
    });
    const idle = policyOf([{ rule: 'idle', window: '10m', startGrace: '5m' }]);
    const overUse = policyOf([{ rule: 'over-use', window: '10m', cpuPercentAbove: 50, networkBytesPerSecAbove: 30_000 }]);

    it('idle: busier samples never make idle fire earlier', () => {
      fc.assert(
        fc.property(pairArb, sinceArb, ([samples, busier], since) => {
          const quiet = evaluate(idle, obsOf(samples, since), NOW).rules[0];
          const busy = evaluate(idle, obsOf(busier, since), NOW).rules[0];
          if (busy.status === 'due') expect(quiet.status).toBe('due');
          if (busy.dueAt !== undefined) expect(quiet.dueAt).toBeLessThanOrEqual(busy.dueAt);
        }),
        RUNS,
      );
    });

    it('over-use: more usage never delays the action', () => {
      fc.assert(
        fc.property(pairArb, sinceArb, ([samples, busier], since) => {
          const quiet = evaluate(overUse, obsOf(samples, since), NOW).rules[0];
          const busy = evaluate(overUse, obsOf(busier, since), NOW).rules[0];
          if (quiet.status === 'due') expect(busy.status).toBe('due');
          if (quiet.dueAt !== undefined) expect(busy.dueAt).toBeLessThanOrEqual(quiet.dueAt);
        }),
        RUNS,
      );
    });
  });

  describe('accounting is additive over split intervals', () => {
    const tariffArb: fc.Arbitrary<Tariff> = fc
      .record({
        hourlyUsd: fc.constantFrom(0.0416, 1, 3.06),
        peak: maybe(fc.record({ hourlyUsd: fc.constantFrom(0, 0.1, 5), timezone: fc.constantFrom(...TIME_ZONES), night: fc.boolean() })),
        storageGb: fc.constantFrom(0, 30, 1000),
      })
      .map(({ hourlyUsd, peak, storageGb }) =>
        tariffOf(
          policyOf([
            {
              rule: 'spend',
              maxUsd: 100,
              hourlyUsd,
              storageGb,
              ...(peak
                ? {
                    peak: {
                      hourlyUsd: peak.hourlyUsd,
                      timezone: peak.timezone,
                      windows: [
                        peak.night
                          ? { days: ['sat', 'sun'], start: '20:00', end: '07:00' }
                          : { days: WEEKDAYS, start: '08:00', end: '19:00' },
                      ],
                    },
                  }
                : {}),
            },
          ]),
          undefined,
        ),
      );
    // Instants spread over a year, so that DST changes in both hemispheres are crossed.
    const t0Arb = fc.integer({ min: Date.parse('2025-01-01T00:00:00Z'), max: Date.parse('2026-01-01T00:00:00Z') });
    const spanArb = fc.integer({ min: 0, max: 10 * DAY });

    it('a transition to the same state at an intermediate instant changes neither running time nor spend', () => {
      fc.assert(
        fc.property(
          tariffArb,
          t0Arb,
          spanArb,
          fc.double({ min: 0, max: 1, noNaN: true }),
          fc.constantFrom('running' as const, 'stopped' as const),
          (tariff, since, span, f, state) => {
            const cp: Checkpoint = { state, since, firstSeen: since - DAY, runningMs: 5 * HOUR, spendUsd: 1.5 };
            const to = since + span;
            const mid = since + Math.floor(f * span);
            const whole = accountingAt(cp, to, tariff);
            const split = accountingAt(transition(cp, state, mid, tariff), to, tariff);
            expect(split.runningMs).toBe(whole.runningMs);
            expect(split.lifetimeMs).toBe(whole.lifetimeMs);
            expect(split.spendUsd).toBeCloseTo(whole.spendUsd, 9);
          },
        ),
        RUNS,
      );
    });

    it('stop and start reconciled on the way add up to the running segments plus storage in between', () => {
      fc.assert(
        fc.property(tariffArb, t0Arb, fc.tuple(spanArb, spanArb, spanArb), (tariff, since, [run1, stop, run2]) => {
          const cp: Checkpoint = { state: 'running', since, firstSeen: since, runningMs: 0, spendUsd: 0 };
          const stopAt = since + run1;
          const startAt = stopAt + stop;
          const now = startAt + run2;
          const stopped = reconcile(cp, 'stopped', stopAt, stopAt + MIN, tariff).checkpoint;
          const restarted = reconcile(stopped, 'running', startAt, startAt + MIN, tariff).checkpoint;
          const a = accountingAt(restarted, now, tariff);
          expect(a.runningMs).toBe(run1 + run2);
          expect(a.lifetimeMs).toBe(now - since);
          const expected =
            accrue(tariff, 'running', since, stopAt) + accrue(tariff, 'stopped', stopAt, startAt) + accrue(tariff, 'running', startAt, now);
          expect(a.spendUsd).toBeCloseTo(expected, 9);
          // and equals one running interval minus the compute of the stopped stretch
          const oneInterval =
            accrue(tariff, 'running', since, now) - accrue(tariff, 'running', stopAt, startAt) + accrue(tariff, 'stopped', stopAt, startAt);
          expect(a.spendUsd).toBeCloseTo(oneInterval, 6);
        }),
        RUNS,
      );
    });
  });
});
