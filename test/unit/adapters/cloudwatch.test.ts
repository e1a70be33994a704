import { fetchUsageSamples, MAX_QUERIES_PER_CALL, metricCount } from '../../../lambda-agent/adapters/cloudwatch';

const P = 300_000;
const T = Date.parse('2026-03-04T12:00:00Z');

describe('fetchUsageSamples', () => {
  it('asks for the metrics each instance needs, 500 queries per call, and turns them into samples', async () => {
    const batches: any[] = [];
    const cw = {
      async send(command: any) {
        const input = command.input;
        batches.push(input);
        return {
          MetricDataResults: input.MetricDataQueries.map((q: any) => ({
            Id: q.Id,
            Timestamps: [new Date(T - 2 * P), new Date(T - P)],
            Values: q.MetricStat.Metric.MetricName === 'CPUUtilization' ? [3, 4] : [15_000, 30_000],
          })),
        };
      },
    };
    const requests = Array.from({ length: 200 }, (_, i) => ({ instanceId: `i-${i}`, cpu: true, net: true }));
    const r = await fetchUsageSamples(cw, requests, { start: T - 40 * 60_000 + 1234, end: T });
    expect(batches.map((b) => b.MetricDataQueries.length)).toEqual([498, 102]);
    expect(batches.every((b) => b.MetricDataQueries.length <= MAX_QUERIES_PER_CALL)).toBe(true);
    expect(batches[0].StartTime).toEqual(new Date(T - 40 * 60_000)); // whole periods
    expect(batches[0].MetricDataQueries[0]).toEqual({
      Id: 'c0',
      MetricStat: {
        Metric: { Namespace: 'AWS/EC2', MetricName: 'CPUUtilization', Dimensions: [{ Name: 'InstanceId', Value: 'i-0' }] },
        Period: 300,
        Stat: 'Average',
      },
      ReturnData: true,
    });
    expect(r.calls).toBe(2);
    expect(r.metrics).toBe(600);
    expect(r.samples.get('i-199')).toEqual([
      { at: T - P, cpuPercent: 3, netBytesPerSec: 100 },
      { at: T, cpuPercent: 4, netBytesPerSec: 200 },
    ]);
  });

  it('leaves network unknown when one direction has no datapoint, follows NextToken, and asks only for what is needed', async () => {
    const pages = [
      {
        MetricDataResults: [
          { Id: 'c0', Timestamps: [new Date(T - P)], Values: [1] },
          { Id: 'i0', Timestamps: [new Date(T - P)], Values: [10] },
        ],
        NextToken: 'n',
      },
      { MetricDataResults: [{ Id: 'o0', Timestamps: [], Values: [] }] },
    ];
    const inputs: any[] = [];
    const cw = { send: async (c: any) => (inputs.push(c.input), pages.shift()) };
    const r = await fetchUsageSamples(
      cw,
      [
        { instanceId: 'i-a', cpu: true, net: true },
        { instanceId: 'i-b', cpu: false, net: false },
      ],
      { start: T - 3600_000, end: T },
    );
    expect(inputs[1].NextToken).toBe('n');
    expect(inputs[0].MetricDataQueries.map((q: any) => q.Id)).toEqual(['c0', 'i0', 'o0']);
    expect(r.samples.get('i-a')).toEqual([{ at: T, cpuPercent: 1 }]);
    expect(metricCount({ instanceId: 'x', cpu: true, net: false })).toBe(1);
  });
});
