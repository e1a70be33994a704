import { AwsHttpError } from '../../../lambda-agent/adapters/agent/aws-http';
import { ImdsError } from '../../../lambda-agent/adapters/agent/imds';
import type { Sample as ProcSample } from '../../../lambda-agent/adapters/agent/proc';
import type { AgentConfig } from '../../../lambda-agent/agent/config';
import {
  conditionSpacingMs,
  createAgent,
  isUnreachable,
  mergeEpisodes,
  nextHeartbeatSlot,
  parseBootTime,
  poweroffMayDo,
  sampleCapacity,
  seededFraction,
} from '../../../lambda-agent/agent/loop';
import { EMPTY_STATE, type AgentState, type StateStore } from '../../../lambda-agent/agent/state-file';
import type { TaskWatcher } from '../../../lambda-agent/agent/tasks';
import { parseEvent, type SmvmEvent } from '../../../lambda-agent/contract/events';
import {
  decodeEpisodes,
  decodeHeartbeat,
  encodeCheckpoint,
  encodeEpisodes,
  encodeSnooze,
  type EpisodeRecord,
} from '../../../lambda-agent/contract/state';
import {
  AGENT_EPISODES_TAG,
  EPISODES_TAG,
  HEARTBEAT_TAG,
  POLICY_VERSION_TAG,
  SHUTDOWN_BEHAVIOR_TAG,
  SNOOZE_TAG,
  STATE_TAG,
} from '../../../lambda-agent/contract/tags';
import type { Decision } from '../../../lambda-agent/engine/evaluate';
import { createLogger } from '../../../lambda-agent/log';
import type { PolicyDocument } from '../../../lambda-agent/policy/model';
import { loadPolicy } from '../../../lambda-agent/policy/parse';

const NOW = Date.UTC(2026, 10, 26, 12, 0, 0);
const HOUR = 3_600_000;
const ID = 'i-0123456789abcdef0';

describe('mergeEpisodes', () => {
  const r = (x: Partial<EpisodeRecord>): EpisodeRecord => ({ rule: 'idle', episode: '100', ...x });
  it.each<[string, EpisodeRecord[][], Partial<EpisodeRecord>]>([
    ['keeps a lone record', [[r({ warnedAt: 5 })]], { warnedAt: 5 }],
    [
      'takes the earliest warning and action',
      [[r({ warnedAt: 5, actedAt: 9, action: 'stop' })], [r({ warnedAt: 3, actedAt: 7, action: 'stop' })]],
      { warnedAt: 3, actedAt: 7 },
    ],
    [
      'is pending only while no source completed the action',
      [[r({ actedAt: 9, action: 'stop', pending: true })], [r({ actedAt: 9, action: 'stop' })]],
      { pending: undefined },
    ],
    [
      'stays pending when every source says so',
      [[r({ actedAt: 9, action: 'stop', pending: true })], [r({ warnedAt: 1 })]],
      { pending: true, warnedAt: 1 },
    ],
    [
      'keeps the action of the acted record',
      [[r({ warnedAt: 1, action: 'notify' })], [r({ actedAt: 9, action: 'terminate' })]],
      { action: 'terminate' },
    ],
  ])('%s', (_name, lists, expected) => {
    const out = mergeEpisodes(...lists);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject(expected);
    if ('pending' in expected && expected.pending === undefined) expect(out[0].pending).toBeUndefined();
  });

  it('keeps records of different rules or episodes apart', () => {
    expect(mergeEpisodes([r({}), r({ episode: '200' })], [r({ rule: 'lifetime' })])).toHaveLength(3);
  });
});

describe('heartbeat schedule', () => {
  it('places each instance at its own seeded phase of the interval', () => {
    const a = nextHeartbeatSlot(NOW, HOUR, ID);
    expect(a).toBeGreaterThan(NOW);
    expect(a).toBeLessThanOrEqual(NOW + HOUR);
    expect(nextHeartbeatSlot(NOW, HOUR, ID)).toBe(a); // deterministic
    expect(nextHeartbeatSlot(a, HOUR, ID)).toBe(a + HOUR);
    expect((a - seededFraction(ID) * HOUR) % HOUR).toBeCloseTo(0, 3);
  });

  it('spreads 10,000 instances evenly over the hour (no minute gets more than 2 × its share)', () => {
    const perMinute = new Array<number>(60).fill(0);
    for (let i = 0; i < 10_000; i++) perMinute[Math.floor(seededFraction(`i-${i.toString(16).padStart(17, '0')}`) * 60)]++;
    expect(Math.max(...perMinute)).toBeLessThan((2 * 10_000) / 60);
    expect(Math.min(...perMinute)).toBeGreaterThan(10_000 / 60 / 2);
  });

  it.each([
    [10_000, HOUR, 60_000],
    [1000, 60_000, 1000],
    [10_000, 24 * HOUR, 300_000],
    [60_000, HOUR, 60_000],
  ])('spaces condition-triggered writes (sample %i ms, heartbeat %i ms) by %i ms', (sampleIntervalMs, heartbeatIntervalMs, expected) => {
    expect(conditionSpacingMs({ sampleIntervalMs, heartbeatIntervalMs })).toBe(expected);
  });
});

describe('small helpers', () => {
  it('keeps samples for the longest window plus a margin', () => {
    const p = loadPolicy({
      id: 'p',
      rules: [
        { rule: 'idle', window: '30m' },
        { rule: 'over-use', window: '15m', cpuPercentAbove: 90 },
        { rule: 'lifetime', max: '7d' },
      ],
    });
    expect(sampleCapacity(p, 10_000)).toBe(184);
    expect(sampleCapacity(loadPolicy({ id: 'p', rules: [{ rule: 'lifetime', max: '7d' }] }), 10_000)).toBe(4);
  });

  it.each([
    ['cpu  1 2 3 4\nbtime 1764150000\nprocesses 4\n', 1_764_150_000_000],
    ['btime 1764150000', 1_764_150_000_000],
    ['btime soon\n', undefined],
    ['', undefined],
    ['cpu 1 2 3\n', undefined],
  ])('reads the boot time from %j', (text, expected) => {
    expect(parseBootTime(text)).toBe(expected);
  });

  it.each<[string, boolean, unknown]>([
    ['a network error', true, new AwsHttpError('ec2 StopInstances', 'NetworkingError', 0, 'ECONNREFUSED')],
    ['a 503', true, new AwsHttpError('ec2 StopInstances', 'ServiceUnavailable', 503, 'down')],
    ['missing credentials', true, new ImdsError('/latest/meta-data/iam/security-credentials/', 0, 'timeout')],
    ['access denied', false, new AwsHttpError('ec2 StopInstances', 'UnauthorizedOperation', 403, 'no')],
    ['throttling', false, new AwsHttpError('ec2 StopInstances', 'RequestLimitExceeded', 400, 'slow down')],
    ['any other error', false, new Error('boom')],
  ])('%s means the API is unreachable: %s', (_n, expected, e) => {
    expect(isUnreachable(e)).toBe(expected);
  });
});

// ---------------------------------------------------------------- the tick, with fake ports

interface Harness {
  tags: Record<string, string>;
  events: SmvmEvent[];
  calls: string[];
  lines: Array<Record<string, unknown>>;
  disk: AgentState;
  shutdowns: string[];
  cpu: number | undefined;
  fail?: (op: string) => Error | undefined;
  now: number;
  /** One sampling interval later: sample, decide. */
  tick(ms?: number): Promise<Decision | undefined>;
  setPolicy(doc: PolicyDocument): string;
}

function harness(
  doc: PolicyDocument,
  opts: { bootTime?: number; tags?: Record<string, string>; disk?: AgentState; lastAliveAt?: number } = {},
): Harness {
  const h: Harness = {
    tags: { ...opts.tags },
    events: [],
    calls: [],
    lines: [],
    disk: opts.disk ?? EMPTY_STATE,
    shutdowns: [],
    cpu: 50,
    now: NOW,
    tick: async () => undefined,
    setPolicy: (d) => {
      doc = d;
      return loadPolicy(d).hash;
    },
  };
  const op = async (name: string) => {
    h.calls.push(name);
    const e = h.fail?.(name);
    if (e) throw e;
  };
  const config: AgentConfig = {
    home: '/etc/smvm',
    policyId: doc.id,
    region: 'us-east-1',
    topicArn: 'arn:aws:sns:us-east-1:123456789012:t',
    policyParameter: `/smvm/${doc.id}/policy`,
    stateDir: '/var/lib/smvm',
    utmpPath: '/run/utmp',
    systemctl: 'systemctl',
    procRoot: '/proc',
    shutdownCommand: 'systemctl poweroff',
    logLevel: 'debug',
    managementId: `smvm-${doc.id}-0123456789ab`,
  };
  const store: StateStore = {
    path: 'memory',
    load: () => ({ state: h.disk }),
    save: (s) => {
      h.disk = JSON.parse(JSON.stringify(s)) as AgentState;
      return true;
    },
  };
  const tasks: TaskWatcher = { check: async () => ({ tasks: {}, memory: {}, changed: false }) };
  const agent = createAgent(
    { config, instanceId: ID, version: 'test', bootTime: opts.bootTime ?? NOW - 2 * HOUR, lastAliveAt: opts.lastAliveAt, now: () => h.now },
    {
      imds: { tags: async () => ({ tags: { ...h.tags }, enabled: true }) },
      aws: {
        stopInstances: async (_ids, o) => (await op(o?.hibernate ? 'hibernate' : 'stop'), []),
        rebootInstances: async () => op('reboot'),
        terminateInstances: async () => (await op('terminate'), []),
        createTags: async (_ids, t) => {
          await op(`tags ${Object.keys(t).sort().join(',')}`);
          Object.assign(h.tags, t);
        },
        ssmGetParameter: async () => (await op('ssm'), JSON.stringify(doc)),
        snsPublish: async (input) => {
          await op('publish');
          h.events.push(parseEvent(input.message));
          return 'm-1';
        },
      },
      sampler: { sample: (at): ProcSample => ({ at, cpuPercent: h.cpu, netBytesPerSec: 0, loginSessions: 0, netOutBytesTotal: 1000 }) },
      tasks,
      store,
      log: createLogger({
        service: 'test',
        level: 'debug',
        sink: (l) => h.lines.push(JSON.parse(l) as Record<string, unknown>),
        clock: () => h.now,
      }),
      shutdown: async (cmd) => void h.shutdowns.push(cmd),
      writeHeartbeatFile: () => undefined,
    },
  );
  agent.start();
  h.tick = async (ms = 1000) => {
    h.now += ms;
    agent.sample(h.now);
    return agent.decide(h.now);
  };
  return h;
}

const FAST = { sampleInterval: '1s', heartbeatInterval: '1h' };

describe('the tick', () => {
  it('writes the heartbeat at start, then only at its slot or soon after the conditions change', async () => {
    const doc: PolicyDocument = {
      id: 'p',
      agent: { sampleInterval: '10s', heartbeatInterval: '1h' },
      rules: [{ rule: 'idle', window: '30m', startGrace: '1m' }],
    };
    const h = harness(doc);
    await h.tick(10_000);
    expect(h.calls.filter((c) => c === `tags ${HEARTBEAT_TAG}`)).toHaveLength(1);
    expect(decodeHeartbeat(h.tags[HEARTBEAT_TAG])).toMatchObject({ at: h.now, cpuPercent: 50, conditions: {}, version: 'test' });
    for (let i = 0; i < 5; i++) await h.tick(10_000);
    expect(h.calls.filter((c) => c.startsWith('tags'))).toHaveLength(1); // nothing changed: no write
    const writes = () => h.calls.filter((c) => c.startsWith('tags')).length;
    expect(nextHeartbeatSlot(NOW + 10_000, HOUR, ID)).toBeGreaterThan(NOW + 15 * 60_000); // (this id's slot is later)
    h.cpu = 1; // idle from now on: the idle condition begins, a minute after the last write
    await h.tick(10_000);
    expect(writes()).toBe(2);
    expect(decodeHeartbeat(h.tags[HEARTBEAT_TAG]).conditions).toEqual({ idle: NOW + 60_000 });
    h.cpu = 50; // busy again 10 s later: reported, but not before a minute has passed since the last write
    for (let i = 0; i < 5; i++) await h.tick(10_000);
    expect(writes()).toBe(2);
    await h.tick(10_000);
    expect(writes()).toBe(3);
    expect(decodeHeartbeat(h.tags[HEARTBEAT_TAG]).conditions).toEqual({});
    // From then on: at the seeded slot, once per hour.
    for (let i = 0; i < 360; i++) await h.tick(10_000);
    expect(writes()).toBe(4);
  });

  it('backs off condition-triggered writes when CreateTags is throttled', async () => {
    const h = harness({
      id: 'p',
      agent: { sampleInterval: '10s', heartbeatInterval: '1h' },
      rules: [{ rule: 'idle', window: '30m', startGrace: '1m' }],
    });
    await h.tick(10_000);
    h.fail = (op) => (op.startsWith('tags') ? new AwsHttpError('ec2 CreateTags', 'RequestLimitExceeded', 400, 'slow down') : undefined);
    h.cpu = 1;
    const attempts = () => h.calls.filter((c) => c.startsWith('tags')).length;
    for (let i = 0; i < 60; i++) await h.tick(10_000); // 10 minutes
    // 1 + attempts after 1, 2, 4 minutes (doubling), not one per minute.
    expect(attempts()).toBe(4);
    expect(h.lines.filter((l) => l.message === 'heartbeat not written').map((l) => l.retryInMs)).toEqual([120_000, 240_000, 480_000]);
  });

  it('confirms with fresh tags before acting: a snooze that has just arrived prevents the action', async () => {
    const h = harness({ id: 'p', agent: FAST, rules: [{ rule: 'idle', window: '1m', startGrace: '1m', action: 'stop' }] });
    h.cpu = 1;
    for (let i = 0; i < 59; i++) await h.tick();
    expect(h.calls).not.toContain('stop');
    h.tags[SNOOZE_TAG] = encodeSnooze(h.now + HOUR, 'ops');
    const d = await h.tick(); // the tags were last read 2 ticks ago; the action is due now
    expect(d!.action).toBeUndefined();
    expect(d!.rules[0].status).toBe('snoozed');
    expect(h.calls).not.toContain('stop');
  });

  it('falls back to an OS shutdown only for a hard limit, only when the API is unreachable, once a minute', async () => {
    const h = harness(
      {
        id: 'p',
        agent: FAST,
        rules: [
          { rule: 'lifetime', max: '2h', action: 'stop' },
          { rule: 'idle', window: '1m', startGrace: '1m', action: 'stop' },
        ],
      },
      { bootTime: NOW - 2 * HOUR + 3000, tags: { [SHUTDOWN_BEHAVIOR_TAG]: 'stop' } },
    );
    h.fail = (op) => (op === 'ssm' ? undefined : new AwsHttpError('x', 'NetworkingError', 0, 'ECONNREFUSED'));
    await h.tick();
    await h.tick();
    expect(h.shutdowns).toEqual([]); // not crossed yet
    await h.tick();
    expect(h.shutdowns).toEqual(['systemctl poweroff']);
    expect(h.disk.episodes).toEqual([expect.objectContaining({ rule: 'lifetime', action: 'stop', pending: true })]);
    for (let i = 0; i < 30; i++) await h.tick();
    expect(h.shutdowns).toHaveLength(1);
    for (let i = 0; i < 31; i++) await h.tick();
    expect(h.shutdowns).toHaveLength(2); // still alive a minute later: asked again

    const soft = harness({ id: 'p', agent: FAST, rules: [{ rule: 'idle', window: '1m', startGrace: '1m', action: 'stop' }] });
    soft.cpu = 1;
    soft.fail = (op) => (op === 'ssm' ? undefined : new AwsHttpError('x', 'NetworkingError', 0, 'ECONNREFUSED'));
    for (let i = 0; i < 65; i++) await soft.tick();
    // A soft rule's intent could not be written to the tag: not even tried.
    expect(soft.calls).not.toContain('stop');
    expect(soft.calls).toContain(`tags ${AGENT_EPISODES_TAG}`);
    expect(soft.shutdowns).toEqual([]);

    const denied = harness({ id: 'p', agent: FAST, rules: [{ rule: 'lifetime', max: '1h', action: 'stop' }] });
    denied.fail = (op) => (op === 'stop' ? new AwsHttpError('ec2 StopInstances', 'UnauthorizedOperation', 403, 'no') : undefined);
    await denied.tick();
    expect(denied.shutdowns).toEqual([]);
    expect(denied.events.map((e) => e.type)).toEqual(['error']);
  });

  it.each([
    ['stop', 'stop', true],
    ['hibernate', 'stop', true],
    ['terminate', 'stop', true],
    ['stop', 'terminate', false],
    ['hibernate', 'terminate', false],
    ['terminate', 'terminate', true],
    ['stop', undefined, false],
    ['hibernate', undefined, false],
    ['terminate', undefined, true],
    ['reboot', 'stop', false],
    ['start', 'stop', false],
  ] as const)('powers the OS off for a %s when the shutdown behaviour is %s: %s', (action, behaviour, expected) => {
    expect(poweroffMayDo(action, behaviour)).toBe(expected);
  });

  it('never powers the OS off for a stop when that would terminate the instance, or when it cannot tell', async () => {
    const unreachable = (op: string) => (op === 'ssm' ? undefined : new AwsHttpError('x', 'NetworkingError', 0, 'ECONNREFUSED'));
    const stopDoc: PolicyDocument = { id: 'p', agent: FAST, rules: [{ rule: 'running-time', max: '1h', action: 'stop' }] };
    for (const tags of [{ [SHUTDOWN_BEHAVIOR_TAG]: 'terminate' }, {}] as Array<Record<string, string>>) {
      const h = harness(stopDoc, { bootTime: NOW - 2 * HOUR, tags });
      h.fail = unreachable;
      await h.tick();
      expect(h.calls).toContain('stop');
      expect(h.shutdowns).toEqual([]);
      expect(h.lines.find((l) => l.message === 'action failed')).toBeDefined();
    }
    const terminating = harness(
      { id: 'p', agent: FAST, rules: [{ rule: 'lifetime', max: '1h', action: 'terminate' }] },
      { bootTime: NOW - 2 * HOUR, tags: { [SHUTDOWN_BEHAVIOR_TAG]: 'terminate' } },
    );
    terminating.fail = unreachable;
    await terminating.tick();
    expect(terminating.shutdowns).toEqual(['systemctl poweroff']);
  });

  it('carries out a soft action only once its intent is in its tag; a hard limit whatever the tag', async () => {
    const throttled = (op: string) =>
      op.startsWith('tags') ? new AwsHttpError('ec2 CreateTags', 'RequestLimitExceeded', 400, 'slow down') : undefined;
    const soft = harness({ id: 'p', agent: FAST, rules: [{ rule: 'idle', window: '1m', startGrace: '1m', action: 'stop' }] });
    soft.cpu = 1;
    for (let i = 0; i < 59; i++) await soft.tick();
    soft.fail = throttled;
    await soft.tick();
    expect(soft.calls).not.toContain('stop');
    expect(soft.disk.episodes.some((r) => r.pending || r.actedAt !== undefined)).toBe(false); // the intent withdrawn
    soft.fail = undefined;
    await soft.tick(); // decided again, the intent written: carried out
    expect(soft.calls.filter((c) => c === 'stop')).toHaveLength(1);
    expect(soft.events.map((e) => e.type)).toEqual(['error', 'stopped']);

    const hard = harness({ id: 'p', agent: FAST, rules: [{ rule: 'lifetime', max: '1h', action: 'stop' }] }, { bootTime: NOW - 2 * HOUR });
    hard.fail = throttled;
    await hard.tick();
    expect(hard.calls).toContain('stop');
    expect(hard.events.map((e) => e.type)).toEqual(['stopped']);
  });

  it('hibernates, falling back to a stop when hibernation is refused', async () => {
    const h = harness({ id: 'p', agent: FAST, rules: [{ rule: 'lifetime', max: '1h', action: 'hibernate' }] });
    h.fail = (op) =>
      op === 'hibernate' ? new AwsHttpError('ec2 StopInstances', 'UnsupportedHibernationConfiguration', 400, 'not configured') : undefined;
    await h.tick();
    expect(h.calls.filter((c) => c === 'hibernate' || c === 'stop')).toEqual(['hibernate', 'stop']);
    expect(h.events.at(-1)).toMatchObject({ type: 'stopped', action: 'hibernate', detail: { requested: 'hibernate', performed: 'stop' } });
  });

  it('announces a skip when termination protection refuses the terminate', async () => {
    const h = harness({ id: 'p', agent: FAST, rules: [{ rule: 'lifetime', max: '1h', action: 'terminate' }] });
    h.fail = (op) =>
      op === 'terminate'
        ? new AwsHttpError('ec2 TerminateInstances', 'OperationNotPermitted', 400, "modify its 'disableApiTermination' attribute")
        : undefined;
    await h.tick();
    expect(h.events.at(-1)).toMatchObject({ type: 'skipped', detail: { skipped: 'termination-protection' } });
    await h.tick();
    expect(h.calls.filter((c) => c === 'terminate')).toHaveLength(1);
  });

  it("respects the watchdog's records without copying them into its own tag", async () => {
    const p = loadPolicy({
      id: 'p',
      agent: FAST,
      rules: [
        { rule: 'lifetime', max: '1h', action: 'stop' },
        { rule: 'idle', window: '1m', startGrace: '1m', action: 'stop' },
      ],
    });
    const lifetimeEpisode = `${Math.floor((NOW - 2 * HOUR + HOUR) / 1000)}-r${Math.floor((NOW - 2 * HOUR) / 1000)}`;
    const watchdog = encodeEpisodes([{ rule: 'lifetime', episode: lifetimeEpisode, actedAt: NOW - 1000, action: 'stop' }]);
    const h = harness(
      {
        id: 'p',
        agent: FAST,
        rules: [
          { rule: 'lifetime', max: '1h', action: 'stop' },
          { rule: 'idle', window: '1m', startGrace: '1m', action: 'stop' },
        ],
      },
      { tags: { [EPISODES_TAG]: watchdog, [POLICY_VERSION_TAG]: p.hash } },
    );
    const d = await h.tick();
    expect(d!.rules.find((r) => r.rule === 'lifetime')!.status).toBe('acted');
    expect(h.calls).not.toContain('stop');
    h.cpu = 1;
    for (let i = 0; i < 62; i++) await h.tick();
    expect(h.calls.filter((c) => c === 'stop')).toHaveLength(1); // the idle episode is the agent's own
    const own = decodeEpisodes(h.tags[AGENT_EPISODES_TAG]);
    expect(own.map((r) => r.rule)).toEqual(['idle']);
  });

  it('after a reboot, confirms a stop left pending by the previous boot instead of stopping again', async () => {
    const bootTime = NOW - 60_000;
    const pending: EpisodeRecord = { rule: 'lifetime', episode: 'e1', actedAt: NOW - 10 * 60_000, action: 'stop', pending: true };
    const h = harness(
      { id: 'p', agent: FAST, rules: [{ rule: 'lifetime', max: '30d', action: 'stop' }] },
      { bootTime, disk: { ...EMPTY_STATE, episodes: [pending] } },
    );
    await h.tick();
    expect(h.calls).not.toContain('stop');
    expect(h.events).toEqual([expect.objectContaining({ type: 'stopped', rule: 'lifetime', episode: 'e1' })]);
    expect(h.disk.episodes).toEqual([expect.not.objectContaining({ pending: true })]);
    // In the same boot, a pending stop (it may never have reached EC2) is decided again:
    // carried out for the same episode while it is still due...
    const episode = `${(NOW - 30 * 60_000) / 1000}-r${(NOW - HOUR) / 1000}`;
    const same = harness(
      { id: 'p', agent: FAST, rules: [{ rule: 'lifetime', max: '30m', action: 'stop' }] },
      { bootTime: NOW - HOUR, disk: { ...EMPTY_STATE, episodes: [{ ...pending, episode }] } },
    );
    await same.tick();
    expect(same.calls.filter((c) => c === 'stop')).toHaveLength(1);
    expect(same.events).toEqual([expect.objectContaining({ type: 'stopped', rule: 'lifetime', episode })]);
    expect(same.disk.episodes).toEqual([expect.objectContaining({ episode, action: 'stop' })]);
    expect(same.disk.episodes[0].pending).toBeUndefined();
    // ... and not at all once it is not (here: the limit is far away; e.g. an extension arrived).
    const gone = harness(
      { id: 'p', agent: FAST, rules: [{ rule: 'lifetime', max: '30d', action: 'stop' }] },
      { bootTime: NOW - HOUR, disk: { ...EMPTY_STATE, episodes: [{ ...pending, warnedAt: NOW - 20 * 60_000 }] } },
    );
    await gone.tick();
    expect(gone.calls).not.toContain('stop');
    expect(gone.events).toEqual([]);
    expect(gone.disk.episodes).toEqual([{ rule: 'lifetime', episode: 'e1', warnedAt: NOW - 20 * 60_000, action: 'stop' }]);
  });

  it('closes a local checkpoint left running by an earlier boot at the moment the agent was last alive', async () => {
    const bootTime = NOW - 60_000;
    const earlier = { state: 'running' as const, since: NOW - 10 * HOUR, firstSeen: NOW - 10 * HOUR, runningMs: 0, spendUsd: 0 };
    const h = harness(
      { id: 'p', agent: FAST, rules: [{ rule: 'running-time', max: '5h', action: 'stop' }] },
      { bootTime, lastAliveAt: NOW - 8 * HOUR, disk: { ...EMPTY_STATE, bootTime: NOW - 10 * HOUR, checkpoint: earlier } },
    );
    const d = await h.tick();
    // 2 h in the earlier run + 1 min in this one; the 8 h stopped in between do not count.
    expect(d!.accounting.runningMs).toBe(2 * HOUR + 61_000);
    expect(d!.action).toBeUndefined();
    expect(h.disk.checkpoint).toMatchObject({ state: 'running', since: bootTime, runningMs: 2 * HOUR });
  });

  it("uses the watchdog's checkpoint when it has written one", async () => {
    const cp = { state: 'running' as const, since: NOW - 2 * HOUR - 30_000, firstSeen: NOW - 50 * HOUR, runningMs: 40 * HOUR, spendUsd: 1 };
    const h = harness(
      { id: 'p', agent: FAST, rules: [{ rule: 'lifetime', max: '2d', action: 'stop' }] },
      { tags: { [STATE_TAG]: encodeCheckpoint(cp) } },
    );
    const d = await h.tick();
    expect(d!.accounting.lifetimeMs).toBe(50 * HOUR + 1000);
    expect(d!.action).toMatchObject({ name: 'stop', rule: 'lifetime', hard: true });
  });

  it('reads SSM only at start and when the policy-version tag changes', async () => {
    const doc: PolicyDocument = { id: 'p', agent: FAST, rules: [{ rule: 'lifetime', max: '7d' }] };
    const h = harness(doc, { tags: { [POLICY_VERSION_TAG]: loadPolicy(doc).hash } });
    for (let i = 0; i < 30; i++) await h.tick();
    expect(h.calls.filter((c) => c === 'ssm')).toHaveLength(1);
    h.tags[POLICY_VERSION_TAG] = h.setPolicy({ ...doc, rules: [{ rule: 'lifetime', max: '1h' }] });
    for (let i = 0; i < 6; i++) await h.tick(); // tags are read every 6 intervals
    expect(h.calls.filter((c) => c === 'ssm')).toHaveLength(2);
    expect(h.calls).toContain('stop');
    // A tag that SSM does not (yet) match: looked up again a few times, then accepted.
    h.tags[POLICY_VERSION_TAG] = 'ffffffffffffffff';
    for (let i = 0; i < 200; i++) await h.tick();
    expect(h.calls.filter((c) => c === 'ssm')).toHaveLength(5);
  });
});
