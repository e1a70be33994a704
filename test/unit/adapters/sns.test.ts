import { publishEvent, publishInput, snsSubject } from '../../../lambda-agent/adapters/sns';
import { parseEvent, type SmvmEvent } from '../../../lambda-agent/contract/events';

const event: SmvmEvent = {
  schemaVersion: 1,
  id: '0123456789abcdef',
  type: 'stopped',
  time: '2026-03-04T12:00:00.000Z',
  source: 'watchdog',
  severity: 'critical',
  policyId: 'dev',
  instanceId: 'i-0123456789abcdef0',
  subject: 'i-0123456789abcdef0 stopped: idle',
  message: 'idle for 35m',
};

describe('SNS publishing', () => {
  it('sends the event as the message, its subject as Subject and the four String attributes', () => {
    const input = publishInput('arn:aws:sns:us-east-1:123456789012:t', event);
    expect(parseEvent(input.Message)).toEqual(event);
    expect(input.Subject).toBe(event.subject);
    expect(input.MessageAttributes).toEqual({
      eventType: { DataType: 'String', StringValue: 'stopped' },
      policyId: { DataType: 'String', StringValue: 'dev' },
      instanceId: { DataType: 'String', StringValue: 'i-0123456789abcdef0' },
      severity: { DataType: 'String', StringValue: 'critical' },
    });
  });

  it('leaves out instanceId for a policy-wide event', () => {
    const { instanceId: _id, ...usage } = event;
    expect(Object.keys(publishInput('arn', { ...usage, type: 'usage' }).MessageAttributes).sort()).toEqual([
      'eventType',
      'policyId',
      'severity',
    ]);
  });

  it.each([
    ['CPU ≤ 5% — idle', 'CPU ? 5% ? idle'],
    ['café stopped', 'cafe stopped'],
    ['line one\nline two\r\n', 'line one line two'],
    ['', 'smvm event'],
    ['x'.repeat(120), `${'x'.repeat(97)}...`],
  ])('makes %j an SNS subject: printable ASCII, one line, at most 100 characters', (input, expected) => {
    expect(snsSubject(input)).toBe(expected);
    expect(snsSubject(input)).toMatch(/^[\x20-\x7e]{1,100}$/);
  });

  it('publishes through the client', async () => {
    const sent: unknown[] = [];
    await publishEvent({ send: async (c: { input: unknown }) => void sent.push(c.input) }, 'arn:t', event);
    expect(sent).toEqual([publishInput('arn:t', event)]);
  });
});
