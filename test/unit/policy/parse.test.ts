import { formatPolicyError, loadPolicy, parsePolicy, PolicyValidationError, ruleNames, type PolicyError } from '../../../lambda-agent';
import { FIXTURE_POLICIES, policyDoc } from '../../fixtures/policies';

/** The formatted errors of a document that must not parse. */
function errorsOf(raw: unknown): string[] {
  const r = parsePolicy(raw);
  if (r.ok) throw new Error(`expected errors, but the policy parsed: ${JSON.stringify(r.policy)}`);
  return r.errors.map(formatPolicyError);
}
const oneRule = (rule: Record<string, unknown>, extra = {}) => policyDoc([rule as never], extra);
const WEEKDAY_WINDOW = { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00', end: '19:00' };

describe('parsePolicy', () => {
  it.each(Object.entries(FIXTURE_POLICIES))('accepts the fixture policy %s', (_name, doc) => {
    expect(parsePolicy(doc)).toMatchObject({ ok: true });
  });

  it('normalizes durations to milliseconds, fills defaults and hashes the result', () => {
    const p = loadPolicy(oneRule({ rule: 'idle', window: '30m', warnBefore: 'PT5M' }));
    expect(p).toEqual({
      id: 'test',
      dryRun: false,
      sampleIntervalMs: 10_000,
      heartbeatIntervalMs: 3_600_000,
      rules: [
        {
          type: 'idle',
          name: 'idle',
          action: 'stop',
          warnBeforeMs: 300_000,
          params: { windowMs: 1_800_000, cpu: 5, net: 10_240, logins: true, graceMs: 900_000 },
        },
      ],
      hash: expect.stringMatching(/^[0-9a-f]{16}$/),
    });
  });

  it('gives the same hash to the same policy and a different one to a changed policy', () => {
    const a = loadPolicy(oneRule({ rule: 'lifetime', max: '7d' }));
    expect(loadPolicy(oneRule({ rule: 'lifetime', max: '7d' })).hash).toBe(a.hash);
    expect(loadPolicy(oneRule({ rule: 'lifetime', max: '168h' })).hash).toBe(a.hash); // same normalized policy
    expect(loadPolicy(oneRule({ rule: 'lifetime', max: '6d' })).hash).not.toBe(a.hash);
  });

  describe('durations', () => {
    it.each([
      ['90s', 90_000],
      ['90m', 5_400_000],
      ['8h', 28_800_000],
      ['3d', 259_200_000],
      ['PT8H', 28_800_000],
      ['P1DT2H', 93_600_000],
      ['1w', 604_800_000],
    ])('accepts %s', (max, ms) => {
      expect(loadPolicy(oneRule({ rule: 'lifetime', max })).rules[0].params).toEqual({ maxMs: ms });
    });

    it.each(['soon', '8', '', '1y', 'P1M', 'PT', '-1h', '8 parsecs'])('fails on the malformed duration %j', (max) => {
      expect(errorsOf(oneRule({ rule: 'lifetime', max }))).toEqual([
        expect.stringMatching(/^policy:test rule:lifetime: 'rules\[0\]\.max' must be a duration such as/),
      ]);
    });
  });

  describe('limits', () => {
    it.each([
      ['a zero lifetime', { rule: 'lifetime', max: '0s' }, "'rules[0].max' must be longer than zero"],
      ['a zero running time', { rule: 'running-time', max: 'PT0S' }, "'rules[0].max' must be longer than zero"],
      ['a negative lifetime', { rule: 'lifetime', max: '-2h' }, "'rules[0].max' must be a duration"],
      ['a zero spend cap', { rule: 'spend', maxUsd: 0, hourlyUsd: 1 }, "'rules[0].maxUsd' must be > 0, got: 0"],
      ['a negative spend cap', { rule: 'spend', maxUsd: -5, hourlyUsd: 1 }, "'rules[0].maxUsd' must be > 0, got: -5"],
      ['a negative hourly rate', { rule: 'spend', maxUsd: 5, hourlyUsd: -1 }, "'rules[0].hourlyUsd' must be ≥ 0, got: -1"],
      [
        'a CPU threshold over 100%',
        { rule: 'idle', window: '30m', cpuPercentBelow: 140 },
        "'rules[0].cpuPercentBelow' must be ≤ 100, got: 140",
      ],
      [
        'a zero network threshold for over-use',
        { rule: 'over-use', window: '30m', networkBytesPerSecAbove: 0 },
        "'rules[0].networkBytesPerSecAbove' must be > 0, got: 0",
      ],
      ['a zero warning', { rule: 'lifetime', max: '1d', warnBefore: '0s' }, "'rules[0].warnBefore' must be longer than zero"],
      [
        'an idle window shorter than two samples',
        { rule: 'idle', window: '15s' },
        "'rules[0].window' must be at least twice agent.sampleInterval (10s)",
      ],
      [
        'an over-use rule without a threshold',
        { rule: 'over-use', window: '30m' },
        "'rules[0].cpuPercentAbove' or networkBytesPerSecAbove is required",
      ],
      [
        'a task-completion rule naming both a unit and a process',
        { rule: 'task-completion', unit: 'a.service', process: 'a' },
        "'rules[0].unit' or process is required, and not both",
      ],
      ['a task-completion rule naming neither', { rule: 'task-completion' }, "'rules[0].unit' or process is required"],
    ])('fails on %s', (_label, rule, message) => {
      expect(errorsOf(oneRule(rule)).join('\n')).toContain(message);
    });

    it.each([
      ['idle', { rule: 'idle', window: '90s' }],
      ['health', { rule: 'health', window: '90s' }],
      ['over-use', { rule: 'over-use', window: '90s', cpuPercentAbove: 90 }],
    ])('fails when the %s window is shorter than twice the sampling interval', (name, rule) => {
      expect(errorsOf(oneRule(rule, { agent: { sampleInterval: '1m' } }))).toEqual([
        `policy:test rule:${name}: 'rules[0].window' must be at least twice agent.sampleInterval (1m), got: "90s"`,
      ]);
    });

    it('accepts a window of exactly twice the sampling interval', () => {
      expect(parsePolicy(oneRule({ rule: 'idle', window: '2m' }, { agent: { sampleInterval: '1m' } }))).toMatchObject({ ok: true });
    });

    it('fails on agent intervals that are zero or inconsistent', () => {
      expect(errorsOf(oneRule({ rule: 'lifetime', max: '1d' }, { agent: { sampleInterval: '0s', heartbeatInterval: 'often' } }))).toEqual([
        'policy:test: \'agent.sampleInterval\' must be longer than zero, got: "0s"',
        `policy:test: 'agent.heartbeatInterval' must be a duration such as '90s', '30m', '8h', '3d' or ISO 8601 'PT8H', got: "often"`,
      ]);
      expect(errorsOf(oneRule({ rule: 'lifetime', max: '1d' }, { agent: { sampleInterval: '2h', heartbeatInterval: '1h' } }))).toEqual([
        'policy:test: \'agent.heartbeatInterval\' must not be shorter than agent.sampleInterval, got: "1h"',
      ]);
    });
  });

  describe('actions', () => {
    it('fails on an unknown action, listing the actions', () => {
      expect(errorsOf(oneRule({ rule: 'idle', window: '30m', action: 'explode' }))).toMatchInlineSnapshot(`
[
  "policy:test rule:idle: 'rules[0].action' must be one of notify, stop, hibernate, reboot, terminate, start, got: "explode"",
]
`);
    });

    it.each(['health', 'heartbeat-lost'])('fails on hibernate for %s, which cannot hibernate', (rule) => {
      expect(errorsOf(oneRule({ rule, action: 'hibernate' }))).toEqual([
        expect.stringContaining(`for rule '${rule}' (this rule cannot hibernate), got: "hibernate"`),
      ]);
    });

    it.each([
      ['lifetime', { rule: 'lifetime', max: '1d', action: 'reboot' }],
      ['schedule', { rule: 'schedule', timezone: 'UTC', windows: [WEEKDAY_WINDOW], action: 'terminate' }],
      ['idle', { rule: 'idle', window: '30m', action: 'start' }],
    ])('fails on an action %s does not allow', (rule, doc) => {
      expect(errorsOf(oneRule(doc))).toEqual([
        expect.stringMatching(new RegExp(`'rules\\[0\\]\\.action' must be one of .* for rule '${rule}', got: `)),
      ]);
    });

    it('fails on a health escalation to start or hibernate', () => {
      expect(errorsOf(oneRule({ rule: 'health', escalate: { action: 'hibernate' } }))).toEqual([
        "policy:test rule:health: 'rules[0].escalate.action' must be one of notify, reboot, stop, terminate, got: 'hibernate'",
      ]);
    });

    it('fails on a warning for a notify action (the notification is the warning)', () => {
      expect(errorsOf(oneRule({ rule: 'lifetime', max: '1d', action: 'notify', warnBefore: '1h' }))).toMatchInlineSnapshot(`
[
  "policy:test rule:lifetime: 'rules[0].warnBefore' has no use with action 'notify' (the notification is the warning); remove it",
]
`);
    });
  });

  describe('time zones and windows', () => {
    const schedule = (extra: Record<string, unknown>) => ({
      rule: 'schedule',
      timezone: 'Europe/Amsterdam',
      windows: [WEEKDAY_WINDOW],
      ...extra,
    });

    it.each(['Mars/Olympus', 'CEST+2', 'europe amsterdam', ''])('fails on the time zone %j', (timezone) => {
      expect(errorsOf(oneRule(schedule({ timezone })))).toEqual([
        `policy:test rule:schedule: 'rules[0].timezone' is not an IANA time zone, got: ${JSON.stringify(timezone)}. Use e.g. 'Europe/Amsterdam'`,
      ]);
    });

    it('checks the peak windows of a spend rule too', () => {
      const peak = { hourlyUsd: 1, timezone: 'Nowhere/Special', windows: [{ days: ['mon'], start: '7:00', end: '09:00' }] };
      expect(errorsOf(oneRule({ rule: 'spend', maxUsd: 10, hourlyUsd: 1, peak }))).toEqual([
        "policy:test rule:spend: 'rules[0].peak.timezone' is not an IANA time zone, got: \"Nowhere/Special\". Use e.g. 'Europe/Amsterdam'",
        'policy:test rule:spend: \'rules[0].peak.windows[0].start\' must be HH:MM (00:00–23:59), got: "7:00"',
      ]);
    });

    it.each([
      ['no windows', [], "'rules[0].windows' is empty; give at least one window"],
      [
        'a malformed start',
        [{ days: ['mon'], start: '8am', end: '17:00' }],
        '\'rules[0].windows[0].start\' must be HH:MM (00:00–23:59), got: "8am"',
      ],
      [
        'a start of 24:00',
        [{ days: ['mon'], start: '24:00', end: '17:00' }],
        '\'rules[0].windows[0].start\' must be HH:MM (00:00–23:59), got: "24:00"',
      ],
      [
        'a malformed end',
        [{ days: ['mon'], start: '08:00', end: '25:00' }],
        '\'rules[0].windows[0].end\' must be HH:MM (00:00–24:00), got: "25:00"',
      ],
      [
        'an empty window',
        [{ days: ['mon'], start: '08:00', end: '08:00' }],
        "'rules[0].windows[0]' is empty: start and end are both 08:00",
      ],
      ['no days', [{ days: [], start: '08:00', end: '17:00' }], "'rules[0].windows[0].days' is empty; name at least one day (mon … sun)"],
      ['a day twice', [{ days: ['mon', 'mon'], start: '08:00', end: '17:00' }], "'rules[0].windows[0].days' names a day twice"],
      [
        'an unknown day',
        [{ days: ['monday'], start: '08:00', end: '17:00' }],
        '\'rules[0].windows[0].days[0]\' must be one of sun, mon, tue, wed, thu, fri, sat, got: "monday"',
      ],
      [
        'overlapping windows',
        [WEEKDAY_WINDOW, { days: ['wed'], start: '18:00', end: '20:00' }],
        "'rules[0].windows[1]' overlaps windows[0]",
      ],
      [
        'a Saturday night window overlapping Sunday morning',
        [
          { days: ['sat'], start: '22:00', end: '06:00' },
          { days: ['sun'], start: '05:00', end: '07:00' },
        ],
        "'rules[0].windows[1]' overlaps windows[0]",
      ],
    ])('fails on %s', (_label, windows, message) => {
      expect(errorsOf(oneRule(schedule({ windows }))).join('\n')).toContain(`policy:test rule:schedule: ${message}`);
    });

    it.each([
      [
        'adjacent windows',
        [
          { days: ['mon'], start: '08:00', end: '12:00' },
          { days: ['mon'], start: '12:00', end: '17:00' },
        ],
      ],
      ['a night window', [{ days: ['fri'], start: '22:00', end: '06:00' }]],
      ['a whole day', [{ days: ['sun'], start: '00:00', end: '24:00' }]],
    ])('accepts %s', (_label, windows) => {
      expect(parsePolicy(oneRule(schedule({ windows })))).toMatchObject({ ok: true });
    });
  });

  describe('fields and names', () => {
    it('fails on unknown fields at the top, in the agent settings and in a rule, listing the allowed ones', () => {
      expect(errorsOf({ id: 'test', colour: 'red', agent: { sampleRate: '1s' }, rules: [{ rule: 'lifetime', max: '1d', maxAge: '2d' }] }))
        .toMatchInlineSnapshot(`
[
  "policy:test: 'agent.sampleRate' is not a known field; allowed: sampleInterval, heartbeatInterval",
  "policy:test: 'colour' is not a known field; allowed: id, description, dryRun, agent, rules",
  "policy:test rule:lifetime: 'rules[0].maxAge' is not a known field; allowed: rule, name, action, warnBefore, max",
]
`);
    });

    it('lists the allowed fields of the nested object that has the unknown one', () => {
      const peak = { hourlyUsd: 1, timezone: 'UTC', windows: [{ days: ['mon'], start: '08:00', end: '09:00', until: '10:00' }], rate: 2 };
      expect(errorsOf(oneRule({ rule: 'spend', maxUsd: 10, hourlyUsd: 1, peak }))).toEqual([
        "policy:test rule:spend: 'rules[0].peak.windows[0].until' is not a known field; allowed: days, start, end",
        "policy:test rule:spend: 'rules[0].peak.rate' is not a known field; allowed: hourlyUsd, timezone, windows",
      ]);
    });

    it('fails on an unknown rule name, listing the valid names', () => {
      expect(errorsOf(oneRule({ rule: 'lifespan', max: '1d' }))).toEqual([
        `policy:test: 'rules[0].rule' must be one of ${ruleNames().join(', ')}, got: "lifespan"`,
      ]);
      expect(ruleNames()).toHaveLength(9);
    });

    it('fails on duplicate rule names, and accepts the same rule type under distinct names', () => {
      expect(
        errorsOf(
          policyDoc([
            { rule: 'idle', window: '30m' },
            { rule: 'idle', window: '2h', action: 'terminate' },
          ]),
        ),
      ).toMatchInlineSnapshot(`
[
  "policy:test rule:idle: 'rules[1].name' 'idle' is used by another rule; give each rule of the same type a distinct 'name'",
]
`);
      expect(
        parsePolicy(
          policyDoc([
            { rule: 'idle', window: '30m' },
            { rule: 'idle', name: 'idle-long', window: '2h', action: 'terminate' },
          ]),
        ),
      ).toMatchObject({ ok: true });
    });

    it.each([
      ['an upper-case rule name', 'Idle'],
      ['a rule name with spaces', 'my idle'],
    ])('fails on %s', (_label, name) => {
      expect(errorsOf(oneRule({ rule: 'idle', name, window: '30m' }))).toEqual([
        expect.stringContaining("'rules[0].name' must be kebab-case, 1–32 characters"),
      ]);
    });

    it.each([
      ['not an object', 'policy', 'policy:?: \'(policy)\' must be an object, got: "policy"'],
      ['null', null, "policy:?: '(policy)' must be an object, got: null"],
      ['without rules', { id: 'test' }, "policy:test: 'rules' is required (array)"],
      ['with rules that are not a list', { id: 'test', rules: {} }, "policy:test: 'rules' must be a list, got: {}"],
      ['with no rules', { id: 'test', rules: [] }, "policy:test: 'rules' is empty; a policy needs at least one rule"],
      [
        'with a rule that is not an object',
        { id: 'test', rules: ['idle'] },
        "policy:test: 'rules[0]' must be an object with a 'rule' field, got: \"idle\"",
      ],
      [
        'with a bad id',
        { id: 'My Policy', rules: [{ rule: 'lifetime', max: '1d' }] },
        'policy:My Policy: \'id\' must be lower-case letters, digits and hyphens, starting with a letter, at most 40 characters, got: "My Policy"',
      ],
      [
        'with a dryRun that is not a boolean',
        { id: 'test', dryRun: 'yes', rules: [{ rule: 'lifetime', max: '1d' }] },
        'policy:test: \'dryRun\' must be a boolean, got: "yes"',
      ],
    ])('fails on a document %s', (_label, raw, message) => {
      expect(errorsOf(raw)).toEqual([message]);
    });
  });

  it('reports all errors at once, each scoped to the policy and rule', () => {
    const raw = {
      id: 'team-a',
      bogus: 1,
      rules: [
        { rule: 'lifetime', max: 'forever', action: 'reboot' },
        { rule: 'idle', window: '30m', cpuPercentBelow: -1 },
        { rule: 'nap' },
        { rule: 'schedule', timezone: 'Nowhere', windows: [] },
        { rule: 'health', action: 'hibernate' },
      ],
    };
    const r = parsePolicy(raw);
    expect(r.ok).toBe(false);
    const errors = (r as { errors: PolicyError[] }).errors;
    expect(errors.map((e) => [e.scope, e.path])).toEqual([
      ['policy:team-a', 'bogus'],
      ['policy:team-a rule:lifetime', 'rules[0].max'],
      ['policy:team-a rule:idle', 'rules[1].cpuPercentBelow'],
      ['policy:team-a', 'rules[2].rule'],
      ['policy:team-a rule:schedule', 'rules[3].timezone'],
      ['policy:team-a rule:schedule', 'rules[3].windows'],
      ['policy:team-a rule:health', 'rules[4].action'],
    ]);
  });
});

describe('loadPolicy', () => {
  it('returns the policy when valid', () => {
    expect(loadPolicy(FIXTURE_POLICIES.ephemeral).rules).toHaveLength(1);
  });

  it('fails with a PolicyValidationError that lists every problem, one per line', () => {
    const attempt = () =>
      loadPolicy(
        policyDoc([
          { rule: 'lifetime', max: '0s' },
          { rule: 'spend', maxUsd: 0 },
        ]),
      );
    expect(attempt).toThrow(PolicyValidationError);
    expect(attempt).toThrowErrorMatchingInlineSnapshot(`
"policy:test rule:lifetime: 'rules[0].max' must be longer than zero, got: '0s'
policy:test rule:spend: 'rules[1].maxUsd' must be > 0, got: 0"
`);
  });
});
