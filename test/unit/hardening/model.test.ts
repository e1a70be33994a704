/**
 * The soak's model can fail: each check flags a history built to break it, and passes
 * the same history without the fault.
 */
import { encodeCheckpoint } from '../../../lambda-agent/contract/state';
import { eventId, type SmvmEvent } from '../../../lambda-agent/contract/events';
import { checkHistory, HOUR, MIN, type History, type ModelPolicy } from '../../hardening/model';
import type { ProxyCall, Transition } from '../../support/fault-proxy';
import type { LogicalCall } from '../../hardening/world';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const P: ModelPolicy = {
  id: 'soak',
  lifetimeMs: 7 * HOUR,
  lifetimeWarnMs: 30 * MIN,
  runningMs: 2 * HOUR,
  runningWarnMs: 15 * MIN,
  idleWindowMs: 30 * MIN,
  idleGraceMs: 10 * MIN,
  idleCpuBelow: 5,
  idleNetBelow: 10240,
  sampleMs: 5 * MIN,
  heartbeatMs: 30 * MIN,
};
const A = 'i-0000000000000000a';
const Q = 'i-0000000000000000b';
let seq = 0;

function call(c: Partial<ProxyCall> & Pick<ProxyCall, 'action'>): ProxyCall {
  return { seq: ++seq, service: 'ec2', instanceIds: [], time: T0, wallTime: 0, forwarded: true, status: 200, ...c };
}
function tr(instanceId: string, to: string, time: number, principal: string): Transition {
  return { instanceId, to, time, principal, seq: ++seq };
}
function event(type: SmvmEvent['type'], time: number, extra: Partial<SmvmEvent> = {}): SmvmEvent {
  return {
    schemaVersion: 1,
    id: eventId(type, A, extra.rule, time),
    type,
    time: new Date(time).toISOString(),
    source: 'watchdog',
    severity: 'info',
    policyId: 'soak',
    instanceId: A,
    subject: type,
    message: type,
    ...extra,
  };
}

/** A clean history: A runs 2 h, is warned at 1 h 45, stopped by the watchdog at 2 h; Q is another policy's. */
function clean(): { -readonly [K in keyof History]: History[K] } {
  seq = 0;
  const stopAt = T0 + 2 * HOUR;
  const warning = event('warning', stopAt - 15 * MIN, { rule: 'running-time' });
  const stopped = event('stopped', stopAt, { rule: 'running-time' });
  const transitions = [tr(A, 'running', T0, 'operator'), tr(Q, 'running', T0, 'operator'), tr(A, 'stopped', stopAt, 'watchdog')];
  const logical: LogicalCall[] = [
    {
      principal: 'watchdog',
      service: 'sns',
      action: 'Publish',
      instanceIds: [],
      event: warning,
      time: warning.time ? Date.parse(warning.time) : 0,
      proxySeqBefore: 0,
    },
    { principal: 'watchdog', service: 'ec2', action: 'StopInstances', instanceIds: [A], time: stopAt, proxySeqBefore: 2 },
    { principal: 'watchdog', service: 'sns', action: 'Publish', instanceIds: [], event: stopped, time: stopAt, proxySeqBefore: 3 },
  ];
  return {
    policy: P,
    fleet: [
      { id: A, kind: 'policy', tags: { 'smvm:policy': 'soak' }, launchedAt: T0 },
      { id: Q, kind: 'other-policy', tags: { 'smvm:policy': 'other' }, launchedAt: T0 },
    ],
    calls: [
      call({
        principal: 'watchdog',
        action: 'DescribeInstances',
        params: { Action: 'DescribeInstances', 'Filter.1.Name': 'tag:smvm:policy', 'Filter.1.Value.1': 'soak' },
      }),
      call({ principal: 'watchdog', action: 'StopInstances', instanceIds: [A], time: stopAt }),
      call({ principal: 'watchdog', action: 'CreateTags', instanceIds: [A], tags: { 'smvm:state': 'x' } }),
    ],
    transitions,
    logical,
    samples: [],
    snoozes: [],
    extensions: [],
    delivered: [{ event: warning }, { event: stopped }],
    finalTags: new Map<string, Record<string, string>>([
      [
        A,
        {
          'smvm:policy': 'soak',
          'smvm:state': encodeCheckpoint({ state: 'stopped', since: stopAt, firstSeen: T0, runningMs: 2 * HOUR, spendUsd: 0 }),
        },
      ],
      [Q, { 'smvm:policy': 'other' }],
    ]),
    initialTags: new Map([[Q, { 'smvm:policy': 'other' }]]),
    faultsEnd: T0,
    end: T0 + 3 * HOUR,
    steps: [T0, T0 + 5 * MIN],
  };
}

const checks = (h: History) => checkHistory(h).violations.map((v) => v.check);

describe('checkHistory', () => {
  it('passes a clean history', () => {
    expect(checkHistory(clean()).violations).toEqual([]);
  });

  it("fails when the watchdog touches another policy's instance", () => {
    const h = clean();
    h.calls = [...h.calls, call({ principal: 'watchdog', action: 'CreateTags', instanceIds: [Q], tags: { 'smvm:state': 'x' } })];
    expect(checks(h)).toContain('wrong-instance');
  });

  it('fails when an agent writes a key it does not own, or tags another instance', () => {
    const h = clean();
    h.calls = [
      ...h.calls,
      call({ principal: `agent-${A}`, action: 'CreateTags', instanceIds: [A], tags: { 'smvm:policy': 'x' } }),
      call({ principal: `agent-${A}`, action: 'StopInstances', instanceIds: [Q] }),
    ];
    expect(checks(h)).toEqual(expect.arrayContaining(['wrong-tag', 'wrong-instance']));
  });

  it('fails on a describe without the policy filter', () => {
    const h = clean();
    h.calls = [...h.calls, call({ principal: 'watchdog', action: 'DescribeInstances', params: { Action: 'DescribeInstances' } })];
    expect(checks(h)).toContain('unscoped-describe');
  });

  it('fails on a stop before the running time is used up (and nothing else justifies it)', () => {
    const h = clean();
    h.transitions = [tr(A, 'running', T0, 'operator'), tr(A, 'stopped', T0 + HOUR, 'watchdog')];
    expect(checks(h)).toContain('premature');
  });

  it('accepts a stop justified by an idle streak of the window, and fails it when snoozed', () => {
    const h = clean();
    const stopAt = T0 + HOUR;
    h.transitions = [tr(A, 'running', T0, 'operator'), tr(A, 'stopped', stopAt, `agent-${A}`)];
    h.samples = Array.from({ length: 12 }, (_, i) => ({ id: A, at: T0 + (i + 1) * 5 * MIN, idle: i >= 4, incarnation: 1 }));
    const stopped = event('stopped', stopAt, { rule: 'idle', source: 'agent' });
    h.delivered = [{ event: stopped }];
    h.logical = [];
    h.finalTags = new Map([
      ...h.finalTags,
      [A, { 'smvm:state': encodeCheckpoint({ state: 'stopped', since: stopAt, firstSeen: T0, runningMs: HOUR, spendUsd: 0 }) }],
    ]);
    expect(checkHistory(h).violations).toEqual([]);
    h.snoozes = [{ id: A, at: T0, until: T0 + 2 * HOUR }];
    expect(checks(h)).toContain('premature');
  });

  it('fails on a second stop after a guard already stopped the instance', () => {
    const h = clean();
    h.logical = [
      ...h.logical,
      { principal: `agent-${A}`, service: 'ec2', action: 'StopInstances', instanceIds: [A], time: T0 + 2 * HOUR, proxySeqBefore: 99 },
    ];
    expect(checks(h)).toContain('duplicate-action');
  });

  it('fails when a due action is not taken by its deadline', () => {
    const h = clean();
    h.transitions = [tr(A, 'running', T0, 'operator')];
    h.end = T0 + 10 * HOUR;
    h.finalTags = new Map([
      ...h.finalTags,
      [A, { 'smvm:state': encodeCheckpoint({ state: 'running', since: T0, firstSeen: T0, runningMs: 0, spendUsd: 0 }) }],
    ]);
    expect(checks(h).filter((c) => c === 'missed').length).toBeGreaterThanOrEqual(2); // running time and lifetime
  });

  it('fails when a published event never arrives, or an action is unannounced', () => {
    const h = clean();
    h.delivered = h.delivered.filter((d) => d.event.type !== 'stopped');
    expect(checks(h)).toEqual(expect.arrayContaining(['lost-event', 'unannounced-action']));
  });

  it('fails on a hard action without its warning', () => {
    const h = clean();
    h.delivered = h.delivered.filter((d) => d.event.type !== 'warning');
    expect(checks(h)).toContain('unwarned-hard-action');
  });

  it('fails on an extension that took effect unannounced', () => {
    const h = clean();
    h.extensions = [{ id: A, at: T0, lifetimeMs: HOUR }];
    expect(checks(h)).toContain('extension-unannounced');
  });

  it('fails when running time in the tags differs from what the instance ran', () => {
    const h = clean();
    h.finalTags = new Map([
      ...h.finalTags,
      [A, { 'smvm:state': encodeCheckpoint({ state: 'stopped', since: T0 + 2 * HOUR, firstSeen: T0, runningMs: 3 * HOUR, spendUsd: 0 }) }],
    ]);
    expect(checks(h)).toContain('accounting');
  });
});
