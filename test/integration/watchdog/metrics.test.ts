/**
 * Usage facts of silent agents: CloudWatch (GetMetricData, batched, on the cadence)
 * and the status checks (DescribeInstanceStatus). moto answers status checks with
 * `ok` only, so the impaired case is injected through a wrapped EC2 client.
 */
import { PutMetricDataCommand, type MetricDatum } from '@aws-sdk/client-cloudwatch';
import { CreateTagsCommand, DescribeInstanceStatusCommand } from '@aws-sdk/client-ec2';
import { MAX_QUERIES_PER_CALL } from '../../../lambda-agent/adapters/cloudwatch';
import { encodeCheckpoint, encodeHeartbeat } from '../../../lambda-agent/contract/state';
import { HEARTBEAT_TAG, STATE_TAG } from '../../../lambda-agent/contract/tags';
import { describeAll, interceptClient, runFleet, stateOf } from '../../support/fleet';
import { useMoto } from '../../support/moto';
import { createHarness, cycleOf, HOUR, MIN, type Harness } from './harness';

const moto = useMoto();
const PERIOD = 5 * MIN;

const running = (since: number) => encodeCheckpoint({ state: 'running', since, firstSeen: since, runningMs: 0, spendUsd: 0 });

/** Basic-monitoring datapoints for the last `periods` periods before `now`. */
async function putUsage(h: Harness, instanceId: string, now: number, periods: number, cpu: number, netBytesPer5Min: number) {
  const base = now - (now % PERIOD) - PERIOD;
  const data: MetricDatum[] = [];
  for (let k = 0; k < periods; k++) {
    const Timestamp = new Date(base - k * PERIOD);
    const Dimensions = [{ Name: 'InstanceId', Value: instanceId }];
    data.push(
      { MetricName: 'CPUUtilization', Dimensions, Timestamp, Value: cpu, Unit: 'Percent' },
      { MetricName: 'NetworkIn', Dimensions, Timestamp, Value: netBytesPer5Min / 2, Unit: 'Bytes' },
      { MetricName: 'NetworkOut', Dimensions, Timestamp, Value: netBytesPer5Min / 2, Unit: 'Bytes' },
    );
  }
  for (let i = 0; i < data.length; i += 500)
    await h.cloudwatch.send(new PutMetricDataCommand({ Namespace: 'AWS/EC2', MetricData: data.slice(i, i + 500) }));
}

/** Moves the clock to just after the start of the next slot of `slotMs`. */
function toSlotStart(h: Harness, slotMs: number) {
  const t = h.clock.now();
  h.clock.advance(slotMs - (t % slotMs) + 5_000);
  return h.clock.now();
}

describe('watchdog usage facts for silent agents', () => {
  it('stops an idle instance without an agent from CloudWatch metrics, reading only silent instances and only on the cadence', async () => {
    const h = await createHarness(moto, { policyId: 'lab' });
    await h.putPolicy({
      id: 'lab',
      rules: [{ rule: 'idle', window: '30m', cpuPercentBelow: 5, networkBytesPerSecBelow: 10240, action: 'stop' }],
    });
    const now = toSlotStart(h, 10 * MIN); // idle window 30 m → one reading per 10-minute slot
    const [idle, busy, withAgent] = await runFleet(h.ec2, { count: 3, policyId: 'lab', tags: { [STATE_TAG]: running(now - 3 * HOUR) } });
    await h.ec2.send(
      new CreateTagsCommand({
        Resources: [withAgent],
        Tags: [{ Key: HEARTBEAT_TAG, Value: encodeHeartbeat({ at: now - MIN, conditions: {} }) }],
      }),
    );
    await putUsage(h, idle, now, 9, 1.5, 300 * 1000); // 1 KB/s
    await putUsage(h, busy, now, 9, 55, 300 * 1000);
    await putUsage(h, withAgent, now, 9, 0.5, 0);
    h.calls.reset();

    const r = cycleOf(await h.schedule());
    expect(r.actions).toEqual([{ instanceId: idle, action: 'stop', result: 'done' }]);
    const states = await describeAll(h.ec2, [idle, busy, withAgent]);
    expect([idle, busy, withAgent].map((id) => stateOf(states.get(id)))).toEqual(['stopped', 'running', 'running']);
    // one GetMetricData call with CPU + network in + network out for the two silent instances only
    const reads = h.calls.calls.filter((c) => c.op === 'GetMetricData');
    expect(reads).toHaveLength(1);
    const queried = reads[0].input.MetricDataQueries.map(
      (q: any) => `${q.MetricStat.Metric.Dimensions[0].Value}/${q.MetricStat.Metric.MetricName}/${q.MetricStat.Period}`,
    );
    expect(queried.sort()).toEqual(
      [busy, idle].flatMap((id) => [`${id}/CPUUtilization/300`, `${id}/NetworkIn/300`, `${id}/NetworkOut/300`]).sort(),
    );
    expect(r.metrics).toEqual({ instances: 2, metrics: 6, calls: 1, statusChecked: 0 });
    const [stopped] = await h.events();
    expect(stopped.event.message).toMatch(/idle for .* CPU ≤ 1\.5% < 5%/);

    // the next minutes of the slot read nothing
    for (let i = 0; i < 3; i++) {
      h.clock.advance(MIN);
      h.calls.reset();
      cycleOf(await h.schedule());
      expect(h.calls.counts.GetMetricData).toBeUndefined();
    }
  });

  it('never counts missing metrics as idle', async () => {
    const h = await createHarness(moto, { policyId: 'lab' });
    await h.putPolicy({ id: 'lab', rules: [{ rule: 'idle', window: '30m', action: 'stop' }] });
    const now = toSlotStart(h, 10 * MIN);
    const [id] = await runFleet(h.ec2, { count: 1, policyId: 'lab', tags: { [STATE_TAG]: running(now - 3 * HOUR) } });
    const r = cycleOf(await h.schedule());
    expect(r.metrics.calls).toBe(1);
    expect(r.actions).toEqual([]);
    expect(stateOf((await describeAll(h.ec2, [id])).get(id))).toBe('running');
  });

  it('packs metric queries 500 per GetMetricData call', async () => {
    const h = await createHarness(moto, { policyId: 'lab' });
    await h.putPolicy({ id: 'lab', rules: [{ rule: 'idle', window: '30m', action: 'stop' }] });
    const now = toSlotStart(h, 10 * MIN);
    await runFleet(h.ec2, { count: 200, policyId: 'lab', tags: { [STATE_TAG]: running(now - 3 * HOUR) } });
    h.calls.reset();
    const r = cycleOf(await h.schedule());
    const reads = h.calls.calls.filter((c) => c.op === 'GetMetricData');
    expect(reads.map((c) => c.input.MetricDataQueries.length)).toEqual([498, 102]);
    expect(Math.max(...reads.map((c) => c.input.MetricDataQueries.length))).toBeLessThanOrEqual(MAX_QUERIES_PER_CALL);
    expect(r.metrics).toMatchObject({ instances: 200, metrics: 600, calls: 2 });
  });

  it('reboots an instance whose status checks fail for the window (impaired status injected: moto reports only ok)', async () => {
    const h = await createHarness(moto, { policyId: 'web' });
    await h.putPolicy({ id: 'web', rules: [{ rule: 'health', window: '10m', action: 'reboot' }] });
    const now = toSlotStart(h, 5 * MIN);
    const [sick, well] = await runFleet(h.ec2, { count: 2, policyId: 'web', tags: { [STATE_TAG]: running(now - 3 * HOUR) } });
    const ec2 = interceptClient(h.ec2, async (op, command, send) => {
      const out = await send();
      if (op !== 'DescribeInstanceStatus') return out;
      expect(command).toBeInstanceOf(DescribeInstanceStatusCommand);
      for (const s of out.InstanceStatuses ?? []) {
        if (s.InstanceId !== sick) continue;
        s.InstanceStatus = {
          Status: 'impaired',
          Details: [{ Name: 'reachability', Status: 'failed', ImpairedSince: new Date(now - 20 * MIN) }],
        };
      }
      return out;
    });
    const w = h.watchdog({ ec2 });
    h.calls.reset();
    const r = cycleOf(await h.schedule(w));
    expect(r.metrics.statusChecked).toBe(2);
    expect(r.actions).toEqual([{ instanceId: sick, action: 'reboot', result: 'done' }]);
    expect(h.calls.counts.GetMetricData).toBeUndefined(); // health needs no metrics
    const events = await h.events();
    expect(events.map((e) => `${e.event.type}:${e.event.instanceId}`)).toEqual([`rebooted:${sick}`]);
    expect(events[0].event.message).toMatch(/unhealthy for/);
    expect(well).toBeDefined();
  });
});
