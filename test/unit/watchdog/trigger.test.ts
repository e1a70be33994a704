import { EventShapeError } from '../../../lambda-agent/watchdog/errors';
import { parseTrigger } from '../../../lambda-agent/watchdog/trigger';

const scheduled = {
  version: '0',
  id: '53dc4d37-cffa-4f76-80c9-8b7d4a4d2eaa',
  'detail-type': 'Scheduled Event',
  source: 'aws.events',
  account: '123456789012',
  time: '2026-03-04T12:00:00Z',
  region: 'us-east-1',
  resources: ['arn:aws:events:us-east-1:123456789012:rule/smvm-dev-watchdog'],
  detail: {},
};
const stateChange = {
  version: '0',
  id: '7bf73129-1428-4cd3-a780-95db273d1602',
  'detail-type': 'EC2 Instance State-change Notification',
  source: 'aws.ec2',
  account: '123456789012',
  time: '2026-03-04T12:01:02Z',
  region: 'us-east-1',
  resources: ['arn:aws:ec2:us-east-1:123456789012:instance/i-0abcd1111abcd1111'],
  detail: { 'instance-id': 'i-0abcd1111abcd1111', state: 'stopping' },
};

describe('parseTrigger', () => {
  it('reads the EventBridge schedule event', () => {
    expect(parseTrigger(scheduled)).toEqual({ kind: 'schedule', time: Date.parse('2026-03-04T12:00:00Z') });
  });

  it('reads an EC2 state-change notification', () => {
    expect(parseTrigger(stateChange)).toEqual({
      kind: 'state-change',
      instanceId: 'i-0abcd1111abcd1111',
      state: 'stopping',
      time: Date.parse('2026-03-04T12:01:02Z'),
    });
  });

  it('reads the shard event the watchdog sends itself', () => {
    expect(parseTrigger({ smvmShard: { index: 2, count: 5 } })).toEqual({ kind: 'shard', shard: { index: 2, count: 5 } });
  });

  it.each([
    [null, /must be a JSON object, got: null/],
    [[], /must be a JSON object, got: an array/],
    ['x', /must be a JSON object, got: string/],
    [{ foo: 1 }, /'detail-type' must be 'Scheduled Event' or 'EC2 Instance State-change Notification', got: null \(keys: foo\)/],
    [{ ...scheduled, source: 'aws.ec2' }, /scheduled event: 'source'/],
    [{ ...stateChange, detail: { 'instance-id': 'i-0abcd1111abcd1111', state: 'rebooting' } }, /state-change event: 'detail.state'/],
    [{ ...stateChange, detail: {} }, /state-change event: 'detail.instance-id'/],
    [{ smvmShard: { index: 1.5, count: 2 } }, /shard event: 'smvmShard.index'/],
    [{ smvmShard: { index: 0, count: 0 } }, /shard event: 'smvmShard.count'/],
    [{ smvmShard: { index: 0, count: 2 }, extra: 1 }, /shard event: '\(root\)'/],
  ])('rejects %j with the problem named', (event, problem) => {
    let error: unknown;
    try {
      parseTrigger(event);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(EventShapeError);
    expect((error as Error).message).toMatch(problem);
    expect((error as Error).message).toMatch(/The watchdog handles an EventBridge 'Scheduled Event'/);
  });

  it('cuts what it echoes of an untrusted event to about 80 characters', () => {
    const long = 'x'.repeat(100_000);
    for (const event of [{ 'detail-type': long }, { [long]: 1, 'detail-type': 1 }, { smvmShard: { index: 0, count: 2 }, [long]: 1 }]) {
      let error: unknown;
      try {
        parseTrigger(event);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(EventShapeError);
      for (const p of (error as EventShapeError).problems) expect(p.length).toBeLessThan(400);
    }
  });
});
