import * as fc from 'fast-check';
import { evaluate, type RuleDocument } from '../../../lambda-agent';
import { findReplayPolicy, REPLAY_POLICIES } from '../../../lambda-agent/replay/policies';
import { compilePolicy, prepareVm, replayVm, type PreparedVm, type VmPolicyResult } from '../../../lambda-agent/replay/simulate';
import { SYNTHETIC_MONDAY, syntheticFleet, syntheticVm } from '../../../lambda-agent/replay/synthetic';

const HOUR = 3_600_000;
const P = 300_000;
const fleet = new Map(syntheticFleet().map((t) => [t.id, prepareVm(t)]));

function vm(id: string): PreparedVm {
  const v = fleet.get(id);
  if (!v) throw new Error(id);
  return v;
}

function replay(v: PreparedVm, key: string, everySample = false): VmPolicyResult {
  const p = findReplayPolicy(key);
  if (!p) throw new Error(key);
  return replayVm(v, compilePolicy(p, v.price.hourlyUsd), { recordEvents: true, everySample });
}

/** Events in Amsterdam local time (CEST in August), e.g. `Tu 02:00 disruption`. */
function story(r: VmPolicyResult): string[] {
  return (r.events ?? []).map((e) => {
    const d = new Date(e.at + 2 * HOUR);
    const day = ['Su', 'Mo', 'Tu', 'We', 'Th', 'Fr', 'Sa'][d.getUTCDay()];
    return `${day} ${d.toISOString().slice(11, 16)} ${e.kind}${e.rule ? ` (${e.rule})` : ''}`;
  });
}

const WEEKDAYS = ['Mo', 'Tu', 'We', 'Th', 'Fr'];

describe('replay of the synthetic week (Mon 5 – Sun 11 August 2013, m5.large at $0.096/h)', () => {
  it('prepares each VM: price, span, waste', () => {
    expect(vm('idle').price).toMatchObject({ type: 'm5.large', hourlyUsd: 0.096 });
    expect(vm('idle').startMs).toBe(SYNTHETIC_MONDAY);
    expect(vm('idle').endMs - vm('idle').startMs).toBe(168 * HOUR);
    expect(vm('idle').wasteMs).toBe(168 * HOUR);
    expect(vm('net-busy').wasteMs).toBe(0);
    // Office: weekday nights 17:00–09:00 and the weekend are quiet (the first night starts Monday 00:00).
    expect(vm('office').wasteMs).toBe((168 - 5 * 8) * HOUR);
    // Nightly: quiet all the time but 02:00–02:30 every day.
    expect(vm('nightly').wasteMs).toBe((168 - 7 * 0.5) * HOUR);
    expect(vm('off').neverRuns).toBe(true);
    expect(vm('idle').neverRuns).toBe(false);
  });

  it('no policy: always on', () => {
    const r = replay(vm('office'), 'none');
    expect(r).toMatchObject({ stops: 0, disruptions: 0, runningMs: 168 * HOUR, evaluations: 0 });
    expect(r.spendUsd).toBeCloseTo(168 * 0.096, 10);
  });

  it('always idle: each idle policy stops it once, after its window (and grace); office hours start it every weekday', () => {
    expect(story(replay(vm('idle'), 'cpu-idle'))).toEqual(['Mo 00:30 stop (idle)']);
    expect(story(replay(vm('idle'), 'idle'))).toEqual(['Mo 00:45 stop (idle)']);
    const office = replay(vm('idle'), 'office-hours');
    // Running since before the first window when the policy starts: left running until its close.
    expect(story(office)).toEqual([
      'Mo 19:00 stop (schedule)',
      ...WEEKDAYS.slice(1).flatMap((d) => [`${d} 08:00 start (schedule)`, `${d} 19:00 stop (schedule)`]),
    ]);
    expect(office.spendUsd).toBeCloseTo((19 + 4 * 11) * 0.096, 10);
    const dev = replay(vm('idle'), 'dev-box');
    expect(story(dev)).toEqual([
      'Mo 00:45 stop (idle)',
      ...WEEKDAYS.flatMap((d) => [`${d} 08:00 start (schedule)`, `${d} 08:45 stop (idle)`]),
    ]);
    expect(dev).toMatchObject({ stops: 6, disruptions: 0, scheduledStarts: 5 });
    expect(dev.runningMs).toBe((0.75 + 5 * 0.75) * HOUR);
  });

  it('busy 09:00–17:00 on weekdays: an idle stop before 09:00 is a disruption at 09:00', () => {
    const ours = replay(vm('office'), 'idle');
    expect(story(ours)).toEqual(['Mo 00:45 stop (idle)', ...WEEKDAYS.flatMap((d) => [`${d} 09:00 disruption`, `${d} 17:30 stop (idle)`])]);
    expect(ours.spendUsd).toBeCloseTo((0.75 + 5 * 8.5) * 0.096, 10);
    expect(replay(vm('office'), 'office-hours')).toMatchObject({ stops: 5, disruptions: 0, scheduledStarts: 4 });
    // The developer box is started at 08:00, stopped idle at 08:45, needed at 09:00.
    const dev = replay(vm('office'), 'dev-box');
    expect(story(dev).slice(0, 5)).toEqual([
      'Mo 00:45 stop (idle)',
      'Mo 08:00 start (schedule)',
      'Mo 08:45 stop (idle)',
      'Mo 09:00 disruption',
      'Mo 17:30 stop (idle)',
    ]);
    expect(dev).toMatchObject({ stops: 11, disruptions: 5, scheduledStarts: 5, disruptionsByRule: { idle: 5 } });
  });

  it('nightly batch at 02:00: the idle stop before it is a disruption every night', () => {
    const ours = replay(vm('nightly'), 'idle');
    const nights = ['Mo', 'Tu', 'We', 'Th', 'Fr', 'Sa', 'Su'];
    expect(story(ours)).toEqual(['Mo 00:45 stop (idle)', ...nights.flatMap((d) => [`${d} 02:00 disruption`, `${d} 03:00 stop (idle)`])]);
    expect(ours).toMatchObject({ stops: 8, disruptions: 7 });
    expect(replay(vm('nightly'), 'cpu-idle')).toMatchObject({ stops: 8, disruptions: 7 });
    // Office hours: stopped at 19:00, disrupted at 02:00, then left running until the next close.
    const office = replay(vm('nightly'), 'office-hours');
    expect(story(office)).toEqual([
      'Mo 19:00 stop (schedule)',
      ...['Tu', 'We', 'Th', 'Fr'].flatMap((d) => [`${d} 02:00 disruption`, `${d} 19:00 stop (schedule)`]),
      'Sa 02:00 disruption',
    ]);
    expect(replay(vm('nightly'), 'dev-box')).toMatchObject({ stops: 13, disruptions: 7, scheduledStarts: 5 });
  });

  it('network busy, CPU idle: CPU-only idle stops it every 30 minutes and is disrupted each time; ours never stops it', () => {
    const cpu = replay(vm('net-busy'), 'cpu-idle');
    expect(cpu.stops).toBe(336);
    expect(cpu.disruptions).toBe(335);
    expect(story(cpu).slice(0, 4)).toEqual(['Mo 00:30 stop (idle)', 'Mo 00:30 disruption', 'Mo 01:00 stop (idle)', 'Mo 01:00 disruption']);
    expect(cpu.spendUsd).toBeCloseTo(168 * 0.096, 10); // every stop ends in the next sample: nothing saved
    expect(replay(vm('net-busy'), 'idle')).toMatchObject({ stops: 0, disruptions: 0 });
    // The schedule does stop it, and is disrupted every evening.
    expect(replay(vm('net-busy'), 'dev-box')).toMatchObject({ stops: 5, disruptions: 5, disruptionsByRule: { schedule: 5 } });
  });

  it('counts waste recovered only while stopped, and stop lengths up to the end of the trace', () => {
    const r = replay(vm('idle'), 'idle');
    expect(r.wasteRecoveredMs).toBe(168 * HOUR - 0.75 * HOUR);
    expect(r.stopDurationsMs).toEqual([168 * HOUR - 0.75 * HOUR]);
    expect(replay(vm('office'), 'idle').stopDurationsMs).toEqual([
      8.25 * HOUR,
      ...[1, 2, 3, 4].map(() => 15.5 * HOUR),
      (7 * 24 - 4 * 24 - 17.5) * HOUR,
    ]);
  });

  it("spends exactly what the engine's own accounting says", () => {
    for (const v of fleet.values()) {
      if (v.neverRuns) continue;
      for (const p of REPLAY_POLICIES.slice(1)) {
        const r = replay(v, p.key);
        const f = r.final;
        if (!f) throw new Error('no final state');
        const d = evaluate(
          compilePolicy(p, v.price.hourlyUsd).policy!,
          {
            instanceId: 'x',
            host: 'agent',
            state: f.state,
            stateSince: f.since,
            hourlyUsd: v.price.hourlyUsd,
            ...(f.checkpoint ? { checkpoint: f.checkpoint } : {}),
            episodes: f.episodes,
          },
          v.endMs,
        );
        expect(d.accounting.spendUsd).toBeCloseTo(r.spendUsd, 9);
        expect(d.accounting.runningMs).toBe(r.runningMs);
      }
    }
  });
});

describe('evaluation schedule', () => {
  const strip = (r: VmPolicyResult) => ({ ...r, evaluations: 0 });

  it('gives the same decisions as evaluating at every sample, with far fewer evaluations (synthetic week)', () => {
    let fast = 0;
    let every = 0;
    for (const v of fleet.values()) {
      for (const p of REPLAY_POLICIES) {
        const a = replay(v, p.key);
        const b = replay(v, p.key, true);
        expect(strip(a)).toEqual(strip(b));
        fast += a.evaluations;
        every += b.evaluations;
      }
    }
    expect(fast * 10).toBeLessThan(every);
  });

  it.each([
    ['a busy sample', [1, 70, 1, 1, 1, 1, 1, 1, 1, 1], []],
    ['a gap', [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], [1]],
  ])('re-evaluates a new idle run that starts after %s while a warning is pending (window 5m, warnBefore 20m)', (_what, cpu, missing) => {
    const start = SYNTHETIC_MONDAY + 5 * HOUR;
    const keep = cpu.map((_, i) => i).filter((i) => !(missing as number[]).includes(i));
    const base = syntheticVm('w', start, 0, () => ({ cpu: 0, netKBps: 0 }));
    const v = prepareVm({
      ...base,
      at: Float64Array.from(keep.map((i) => start + (i + 1) * P)),
      cpu: Float64Array.from(keep.map((i) => cpu[i])),
      net: new Float64Array(keep.length),
    });
    const cp = compilePolicy(
      {
        key: 'w',
        label: 'w',
        recipe: '',
        document: () => ({ id: 'w', rules: [{ rule: 'idle', window: '5m', startGrace: '0s', warnBefore: '20m' }] }),
      },
      0.1,
    );
    const a = replayVm(v, cp, { recordEvents: true });
    // Warned at 05:05 (act at 05:25); the new run (from 05:10) is warned at 05:15 and acted on at 05:35.
    expect(story(a)).toEqual(['Mo 05:35 stop (idle)']);
    expect(a.final?.episodes.map((e) => (e.warnedAt! - start) / 60_000)).toEqual([5, 15]);
    expect(strip(a)).toEqual(strip(replayVm(v, cp, { recordEvents: true, everySample: true })));
  });

  it('gives the same decisions as evaluating at every sample on random traces (bursts, gaps, odd spacing)', () => {
    const segment = fc.record({
      samples: fc.integer({ min: 1, max: 40 }),
      cpu: fc.constantFrom(0.5, 3, 4.99, 5, 7, 10, 10.5, 60),
      netKBps: fc.constantFrom(0, 5, 20, 49, 50, 99, 100, 101, 800),
      gapBefore: fc.constantFrom(0, 0, 0, 1, 7, 40),
      step: fc.constantFrom(P, P, P, 240_000),
    });
    fc.assert(
      fc.property(fc.array(segment, { minLength: 1, maxLength: 25 }), fc.integer({ min: 0, max: 6 }), (segs, startDay) => {
        const start = SYNTHETIC_MONDAY + startDay * 24 * HOUR + 7 * HOUR;
        const at: number[] = [];
        const cpu: number[] = [];
        const net: number[] = [];
        let t = start;
        for (const s of segs) {
          t += s.gapBefore * P;
          for (let i = 0; i < s.samples; i++) {
            t += s.step;
            at.push(t);
            cpu.push(s.cpu);
            net.push(s.netKBps * 1024);
          }
        }
        const base = syntheticVm('r', start, 0, () => ({ cpu: 0, netKBps: 0 }));
        const v = prepareVm({ ...base, at: Float64Array.from(at), cpu: Float64Array.from(cpu), net: Float64Array.from(net) });
        for (const p of REPLAY_POLICIES.slice(1)) expect(strip(replay(v, p.key))).toEqual(strip(replay(v, p.key, true)));
      }),
      { numRuns: 25 },
    );
  });

  it('gives the same decisions as evaluating at every sample for random policies of idle, schedule, lifetime, running-time and spend rules', () => {
    const idleRule = fc.record({
      rule: fc.constant('idle'),
      window: fc.constantFrom('5m', '10m', '15m', '30m'),
      cpuPercentBelow: fc.constantFrom(5, 10, 50),
      networkBytesPerSecBelow: fc.constantFrom(10_240, 102_400, 1e15),
      startGrace: fc.constantFrom('0s', '5m', '15m', '1h'),
      action: fc.constantFrom('stop', 'notify'),
    });
    const warn = fc.constantFrom(undefined, '5m', '10m', '20m');
    const policy = fc
      .record({
        idle: fc.option(idleRule, { nil: undefined }),
        idleWarn: warn,
        schedule: fc.option(
          fc.record({ start: fc.constantFrom('07:30', '08:00', '22:00'), end: fc.constantFrom('09:00', '19:00', '02:00'), warn }),
          { nil: undefined },
        ),
        lifetime: fc.option(fc.record({ max: fc.constantFrom('6h', '2d'), action: fc.constantFrom('stop', 'terminate') }), {
          nil: undefined,
        }),
        runningTime: fc.option(fc.constantFrom('3h', '20h'), { nil: undefined }),
        spendUsd: fc.option(fc.constantFrom(0.5, 2), { nil: undefined }),
      })
      .map((r) => {
        const rules: RuleDocument[] = [];
        if (r.idle) rules.push({ ...r.idle, ...(r.idleWarn && r.idle.action !== 'notify' ? { warnBefore: r.idleWarn } : {}) });
        if (r.schedule) {
          rules.push({
            rule: 'schedule',
            timezone: 'Europe/Amsterdam',
            windows: [{ days: ['mon', 'wed', 'thu'], start: r.schedule.start, end: r.schedule.end }],
            ...(r.schedule.warn ? { warnBefore: r.schedule.warn } : {}),
          });
        }
        if (r.lifetime) rules.push({ rule: 'lifetime', ...r.lifetime });
        if (r.runningTime) rules.push({ rule: 'running-time', max: r.runningTime });
        if (r.spendUsd) rules.push({ rule: 'spend', maxUsd: r.spendUsd });
        if (rules.length === 0) rules.push({ rule: 'lifetime', max: '1d' });
        return { id: 'random', rules };
      });
    const usage = fc.array(
      fc.record({
        samples: fc.oneof(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 30 })),
        cpu: fc.constantFrom(1, 7, 12, 70),
        netKBps: fc.constantFrom(0, 20, 150),
        gapBefore: fc.constantFrom(0, 0, 3),
      }),
      { minLength: 1, maxLength: 30 },
    );
    fc.assert(
      fc.property(policy, usage, (doc, segs) => {
        const start = SYNTHETIC_MONDAY + 5 * HOUR;
        const at: number[] = [];
        const cpu: number[] = [];
        const net: number[] = [];
        let t = start;
        for (const s of segs) {
          t += s.gapBefore * P;
          for (let i = 0; i < s.samples; i++) {
            t += P;
            at.push(t);
            cpu.push(s.cpu);
            net.push(s.netKBps * 1024);
          }
        }
        const base = syntheticVm('r', start, 0, () => ({ cpu: 0, netKBps: 0 }));
        const v = prepareVm({ ...base, at: Float64Array.from(at), cpu: Float64Array.from(cpu), net: Float64Array.from(net) });
        const cp = compilePolicy({ key: 'random', label: 'random', recipe: '', document: () => doc }, v.price.hourlyUsd);
        const a = replayVm(v, cp, { recordEvents: true });
        const b = replayVm(v, cp, { recordEvents: true, everySample: true });
        expect(strip(a)).toEqual(strip(b));
      }),
      { numRuns: 80 },
    );
  });
});
