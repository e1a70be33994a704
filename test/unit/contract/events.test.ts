import {
  defaultSeverity,
  EVENT_SCHEMA_VERSION,
  EVENT_TYPES,
  eventId,
  EventValidationError,
  eventTypeOfAction,
  messageAttributes,
  parseEvent,
  type SmvmEvent,
} from '../../../lambda-agent/contract';

const valid: SmvmEvent = {
  schemaVersion: EVENT_SCHEMA_VERSION,
  id: eventId('stopped', 'i-0123456789abcdef0', 'idle', '1749030000'),
  type: 'stopped',
  time: '2025-06-04T12:00:00.000Z',
  source: 'watchdog',
  severity: 'info',
  policyId: 'dev-box',
  instanceId: 'i-0123456789abcdef0',
  subject: 'Stopped i-0123456789abcdef0: idle for 30m',
  message: 'idle for 30m (window 30m): CPU ≤ 1.0% < 5%',
  rule: 'idle',
  episode: '1749030000',
  action: 'stop',
  accounting: { lifetimeMs: 7_200_000, runningMs: 7_200_000, spendUsd: 0.08, firstSeen: 1_749_031_200_000 },
  detail: { cpuPercent: 1 },
};

function problemsOf(input: unknown): string[] {
  try {
    parseEvent(input);
  } catch (e) {
    expect(e).toBeInstanceOf(EventValidationError);
    return (e as EventValidationError).problems;
  }
  throw new Error('expected the event to be rejected');
}

describe('event schema', () => {
  it('accepts a valid event, as an object or as an SNS message body', () => {
    expect(parseEvent(valid)).toEqual(valid);
    expect(parseEvent(JSON.stringify(valid))).toEqual(valid);
  });

  it.each([
    ['another schema version', { ...valid, schemaVersion: 2 }, ["'schemaVersion' invalid value"]],
    ['an unknown type', { ...valid, type: 'exploded' }, ["'type' invalid value"]],
    ['an unknown action', { ...valid, action: 'nap' }, ["'action' invalid value"]],
    ['a missing policy id', (({ policyId: _p, ...rest }) => rest)(valid), ["'policyId' invalid type"]],
    ['an unknown field', { ...valid, colour: 'red' }, ['(root): unknown field(s) colour']],
    ['a subject over 100 characters', { ...valid, subject: 'x'.repeat(101) }, ["'subject' too big"]],
    ['a short id', { ...valid, id: 'abc' }, ["'id' too small"]],
    ['unknown accounting fields', { ...valid, accounting: { ...valid.accounting, extra: 1 } }, ['accounting: unknown field(s) extra']],
  ])('rejects an event with %s', (_label, input, problems) => {
    expect(problemsOf(input)).toEqual(problems);
  });

  it('rejects a message body that is not JSON', () => {
    expect(problemsOf('{not json')).toEqual(['message is not JSON']);
    expect(() => parseEvent('{not json')).toThrow('event: message is not JSON');
  });

  it('gives the same id to the same fact, and different ids to different facts', () => {
    expect(eventId('stopped', 'i-1', 'idle', '100')).toBe(eventId('stopped', 'i-1', 'idle', '100'));
    expect(eventId('stopped', 'i-1', 'idle', '100')).toMatch(/^[0-9a-f]{16}$/);
    expect(eventId('stopped', 'i-1', 'idle', '101')).not.toBe(eventId('stopped', 'i-1', 'idle', '100'));
    expect(eventId('stopped', 'i-1', undefined, '100')).toBe(eventId('stopped', 'i-1', '', '100'));
    expect(eventId('stopped', 'i-1', 'idle', 100)).toBe(eventId('stopped', 'i-1', 'idle', '100'));
    expect(eventId('ab', 'c')).not.toBe(eventId('a', 'bc'));
  });

  it('pins the id of a known fact (ids must not change between releases)', () => {
    expect(eventId('stopped', 'i-0123456789abcdef0', 'idle', '1749030000')).toMatchInlineSnapshot(`"127d939059c03ac1"`);
  });

  it.each([
    ['warning', 'warning'],
    ['terminated', 'critical'],
    ['heartbeat-lost', 'critical'],
    ['error', 'error'],
    ['stopped', 'info'],
  ] as const)('gives %s events the default severity %s', (type, severity) => {
    expect(defaultSeverity(type)).toBe(severity);
  });

  it('has an event type for every action', () => {
    expect(['notify', 'stop', 'hibernate', 'reboot', 'terminate', 'start'].map((a) => eventTypeOfAction(a as never))).toEqual([
      'notified',
      'stopped',
      'hibernated',
      'rebooted',
      'terminated',
      'started',
    ]);
    for (const a of ['notify', 'stop', 'hibernate', 'reboot', 'terminate', 'start'] as const)
      expect(EVENT_TYPES).toContain(eventTypeOfAction(a));
  });

  it('sets the SNS message attributes used by subscription filters', () => {
    expect(messageAttributes(valid)).toEqual({
      eventType: 'stopped',
      policyId: 'dev-box',
      severity: 'info',
      instanceId: 'i-0123456789abcdef0',
    });
  });
});
