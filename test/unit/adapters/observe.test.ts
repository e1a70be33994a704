import type { Instance } from '@aws-sdk/client-ec2';
import {
  encodeOwnEpisodes,
  isHeartbeatFresh,
  mergeEpisodes,
  observeInstance,
  parseTransitionTime,
  recordsToWrite,
  sameEncodedEpisodes,
} from '../../../lambda-agent/adapters/observe';
import {
  encodeCheckpoint,
  encodeEpisodes,
  encodeExtensions,
  encodeHeartbeat,
  encodeSnooze,
  TagValueError,
  type EpisodeRecord,
} from '../../../lambda-agent/contract/state';
import {
  AGENT_EPISODES_TAG,
  EPISODES_TAG,
  EXTEND_TAG,
  HEARTBEAT_TAG,
  MANAGEMENT_ID_TAG,
  POLICY_TAG,
  SNOOZE_TAG,
  STATE_TAG,
} from '../../../lambda-agent/contract/tags';

const NOW = Date.parse('2026-03-04T12:00:00Z');
const H = 3_600_000;

function inst(tags: Record<string, string>, over: Partial<Instance> = {}): Instance {
  return {
    InstanceId: 'i-0123456789abcdef0',
    InstanceType: 't3.micro',
    State: { Name: 'running' },
    LaunchTime: new Date(NOW - 2 * H),
    Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
    ...over,
  } as Instance;
}

describe('observeInstance', () => {
  it('builds the observation from every tag the guards keep', () => {
    const cp = { state: 'running' as const, since: NOW - 2 * H, firstSeen: NOW - 30 * H, runningMs: 5 * H, spendUsd: 1.5 };
    const o = observeInstance(
      inst({
        [POLICY_TAG]: 'dev',
        [MANAGEMENT_ID_TAG]: 'smvm-dev-0123456789ab',
        [STATE_TAG]: encodeCheckpoint(cp),
        [EPISODES_TAG]: encodeEpisodes([{ rule: 'idle', episode: '100', warnedAt: NOW - H }]),
        [AGENT_EPISODES_TAG]: encodeEpisodes([{ rule: 'lifetime', episode: '200', actedAt: NOW - H, action: 'notify' }]),
        [HEARTBEAT_TAG]: encodeHeartbeat({ at: NOW - 60_000, cpuPercent: 3, netOutBytes: 2e9, conditions: { idle: NOW - H } }),
        [SNOOZE_TAG]: encodeSnooze(NOW + H, 'alice'),
        [EXTEND_TAG]: encodeExtensions({ lifetimeMs: 2 * H, spendUsd: 5 }),
        Name: 'box',
      }),
      'dev',
    );
    expect(o.kind).toBe('ok');
    if (o.kind !== 'ok') return;
    expect(o.value.managementId).toBe('smvm-dev-0123456789ab');
    expect(o.value.observation).toEqual({
      instanceId: 'i-0123456789abcdef0',
      host: 'watchdog',
      state: 'running',
      stateSince: NOW - 2 * H,
      instanceType: 't3.micro',
      netOutBytes: 2e9,
      checkpoint: cp,
      episodes: [
        { rule: 'idle', episode: '100', warnedAt: NOW - H },
        { rule: 'lifetime', episode: '200', actedAt: NOW - H, action: 'notify' },
      ],
      overrides: { snoozeUntil: NOW + H, lifetimeMs: 2 * H, spendUsd: 5 },
      heartbeat: expect.objectContaining({ at: NOW - 60_000, conditions: { idle: NOW - H } }),
    });
    expect(o.value.written).toEqual({ state: encodeCheckpoint(cp), episodes: expect.stringMatching(/^idle:100:\d+::$/) });
  });

  it.each([
    ['another policy', { [POLICY_TAG]: 'dev-2' }, {}],
    ['a prefix of the id', { [POLICY_TAG]: 'de' }, {}],
    ['a different case', { [POLICY_TAG]: 'DEV' }, {}],
    ['no policy tag', {}, {}],
    ['terminated', { [POLICY_TAG]: 'dev' }, { State: { Name: 'terminated' } }],
    ['shutting down', { [POLICY_TAG]: 'dev' }, { State: { Name: 'shutting-down' } }],
  ])('ignores an instance with %s', (_what, tags, over) => {
    expect(observeInstance(inst(tags as Record<string, string>, over as Partial<Instance>), 'dev').kind).toBe('ignored');
  });

  it.each([
    [STATE_TAG, 'v=1;s=running;t=abc;f=1;r=0;u=0'],
    [EPISODES_TAG, 'idle'],
    [AGENT_EPISODES_TAG, 'a:b:c:d'],
    [HEARTBEAT_TAG, 'cpu=3'],
    [SNOOZE_TAG, 'until=soon'],
    [EXTEND_TAG, 'forever=1'],
  ])('reports a bad %s value as an error for that instance', (key, value) => {
    const o = observeInstance(inst({ [POLICY_TAG]: 'dev', [key]: value }), 'dev');
    expect(o.kind).toBe('error');
    if (o.kind !== 'error') return;
    expect(o.error).toBeInstanceOf(TagValueError);
    expect(o.error.key).toBe(key);
    expect(o.error.message).toMatch(new RegExp(`^tag '${key}': .*, got: .*Fix or delete the tag\\.$`));
  });

  it('takes a stopped instance’s state time from the transition reason, and a state-change event’s time over both', () => {
    const stopped = inst(
      { [POLICY_TAG]: 'dev' },
      { State: { Name: 'stopped' }, StateTransitionReason: 'User initiated (2026-03-04 10:15:30 GMT)' },
    );
    const o = observeInstance(stopped, 'dev');
    expect(o.kind === 'ok' && o.value.observation.stateSince).toBe(Date.parse('2026-03-04T10:15:30Z'));
    const hinted = observeInstance(stopped, 'dev', { state: 'stopping', at: NOW - 1000 });
    expect(hinted.kind === 'ok' && hinted.value.observation.stateSince).toBe(NOW - 1000);
    const wrongHint = observeInstance(stopped, 'dev', { state: 'running', at: NOW - 1000 });
    expect(wrongHint.kind === 'ok' && wrongHint.value.observation.stateSince).toBe(Date.parse('2026-03-04T10:15:30Z'));
    const noReason = observeInstance(inst({ [POLICY_TAG]: 'dev' }, { State: { Name: 'stopped' }, StateTransitionReason: '' }), 'dev');
    expect(noReason.kind === 'ok' && noReason.value.observation.stateSince).toBeUndefined();
  });
});

describe('parseTransitionTime', () => {
  it.each([
    ['User initiated (2026-11-26 20:37:44 UTC)', Date.parse('2026-11-26T20:37:44Z')],
    ['Server.ScheduledStop (2026-01-02 03:04:05 GMT)', Date.parse('2026-01-02T03:04:05Z')],
    ['User initiated', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('%s → %s', (reason, expected) => {
    expect(parseTransitionTime(reason)).toBe(expected);
  });
});

describe('episode records of both guards', () => {
  const w: EpisodeRecord = { rule: 'idle', episode: '1', warnedAt: 5000 };
  const a: EpisodeRecord = { rule: 'idle', episode: '1', warnedAt: 3000, actedAt: 9000, action: 'stop' };
  const other: EpisodeRecord = { rule: 'lifetime', episode: '2', actedAt: 7000, action: 'terminate' };

  it('merges a record both hold into the earliest warning and action, so neither repeats the other', () => {
    expect(mergeEpisodes([w], [a, other])).toEqual([{ rule: 'idle', episode: '1', warnedAt: 3000, actedAt: 9000, action: 'stop' }, other]);
    expect(mergeEpisodes([w], [])).toEqual([w]);
  });

  it('keeps an agent’s pending record pending, so the watchdog finishes it', () => {
    expect(mergeEpisodes([], [{ ...other, pending: true }])).toEqual([{ ...other, pending: true }]);
  });

  it('keeps an action pending while neither guard holds it completed, also when the watchdog had only warned', () => {
    const pendingStop: EpisodeRecord = { ...a, pending: true };
    // the watchdog warned, the agent stopped and died before completing: still in progress
    expect(mergeEpisodes([w], [pendingStop])).toEqual([
      { rule: 'idle', episode: '1', warnedAt: 3000, actedAt: 9000, action: 'stop', pending: true },
    ]);
    // both in progress
    expect(mergeEpisodes([{ ...a, actedAt: 9500, pending: true }], [pendingStop])[0].pending).toBe(true);
    // completed by either guard: complete
    expect(mergeEpisodes([a], [pendingStop])[0].pending).toBeUndefined();
    expect(mergeEpisodes([{ ...a, pending: true }], [a])[0].pending).toBeUndefined();
    // a warning alone is never pending
    expect(mergeEpisodes([{ ...w, pending: true }], [w])[0].pending).toBeUndefined();
  });

  it('writes to its own tag everything but the agent’s unchanged records', () => {
    const merged = mergeEpisodes([], [other]);
    expect(recordsToWrite(merged, [], [other])).toEqual([]);
    expect(recordsToWrite([...merged, w], [], [other])).toEqual([w]);
    expect(recordsToWrite(merged, [other], [other])).toEqual([other]);
  });

  it('drops the oldest completed records to fit the 256-character tag, never a pending one', () => {
    const many: EpisodeRecord[] = Array.from({ length: 8 }, (_, i) => ({
      rule: `rule-number-${i}`,
      episode: `${1_700_000_000 + i}-r1700000000`,
      actedAt: (1_700_000_000 + i) * 1000,
      action: 'terminate',
    }));
    many[0] = { ...many[0], pending: true };
    const v = encodeOwnEpisodes(many);
    expect(v.length).toBeLessThanOrEqual(256);
    expect(v).toContain('rule-number-0');
    expect(v).toContain('terminate!');
  });

  it('compares encoded records regardless of order', () => {
    expect(sameEncodedEpisodes('a:1::5:stop b:2:3::', 'b:2:3:: a:1::5:stop')).toBe(true);
    expect(sameEncodedEpisodes('', undefined)).toBe(true);
    expect(sameEncodedEpisodes('a:1::5:stop', 'a:1::5:stop!')).toBe(false);
  });
});

describe('isHeartbeatFresh', () => {
  it.each([
    [NOW - 2 * H, true],
    [NOW - 2 * H - 1, false],
    [NOW, true],
  ])('a heartbeat at %s is fresh: %s (twice the 1 h interval)', (at, fresh) => {
    expect(isHeartbeatFresh({ at, conditions: {} }, { heartbeatIntervalMs: H }, NOW)).toBe(fresh);
  });
  it('no heartbeat is not fresh', () => {
    expect(isHeartbeatFresh(undefined, { heartbeatIntervalMs: H }, NOW)).toBe(false);
  });
});
