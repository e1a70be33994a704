/** EventBridge events of the documented shapes, for calling the watchdog's handler (moto fires none). */

/** The scheduled event EventBridge sends at `time`. */
export function scheduledEvent(time: number) {
  return {
    version: '0',
    id: `sched-${time}`,
    'detail-type': 'Scheduled Event',
    source: 'aws.events',
    account: '123456789012',
    time: new Date(time).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: 'us-east-1',
    resources: ['arn:aws:events:us-east-1:123456789012:rule/smvm-watchdog'],
    detail: {},
  };
}

/** EC2's state-change notification. */
export function stateChangeEvent(instanceId: string, state: string, time: number) {
  return {
    version: '0',
    id: `sc-${instanceId}-${state}-${time}`,
    'detail-type': 'EC2 Instance State-change Notification',
    source: 'aws.ec2',
    account: '123456789012',
    time: new Date(time).toISOString().replace(/\.\d{3}Z$/, 'Z'),
    region: 'us-east-1',
    resources: [`arn:aws:ec2:us-east-1:123456789012:instance/${instanceId}`],
    detail: { 'instance-id': instanceId, state },
  };
}
