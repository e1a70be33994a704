/**
 * CloudWatch adapter of the watchdog: usage samples of instances whose agent is silent,
 * from the basic-monitoring EC2 metrics (5-minute period, free to publish).
 *
 * Reading is what costs: GetMetricData is billed $0.01 per 1,000 metrics requested, so
 * the watchdog asks only for the metrics the policy's rules need (CPUUtilization for a
 * CPU threshold; NetworkIn + NetworkOut for a network threshold), only for instances
 * without a fresh agent report, and only once per cadence slot (see `watchdog/metrics.ts`).
 * Queries are packed 500 per call (the API's maximum).
 */
import { GetMetricDataCommand, type MetricDataQuery } from '@aws-sdk/client-cloudwatch';
import type { Sample } from '../rules/types';
import type { AwsClient } from './ec2';

/** The API's maximum number of queries per GetMetricData call. */
export const MAX_QUERIES_PER_CALL = 500;
/** Basic monitoring's period. */
export const METRIC_PERIOD_MS = 300_000;

export interface MetricRequest {
  readonly instanceId: string;
  readonly cpu: boolean;
  readonly net: boolean;
}

export interface MetricWindow {
  /** Epoch ms; rounded down to the period. */
  readonly start: number;
  /** Epoch ms. */
  readonly end: number;
  readonly periodMs?: number;
}

interface Point {
  cpu?: number;
  netIn?: number;
  netOut?: number;
}

/** Number of metrics a request asks for (what GetMetricData bills). */
export function metricCount(r: MetricRequest): number {
  return (r.cpu ? 1 : 0) + (r.net ? 2 : 0);
}

function queries(r: MetricRequest, index: number, periodSec: number): MetricDataQuery[] {
  const metric = (id: string, name: string, stat: string): MetricDataQuery => ({
    Id: `${id}${index}`,
    MetricStat: {
      Metric: { Namespace: 'AWS/EC2', MetricName: name, Dimensions: [{ Name: 'InstanceId', Value: r.instanceId }] },
      Period: periodSec,
      Stat: stat,
    },
    ReturnData: true,
  });
  const out: MetricDataQuery[] = [];
  if (r.cpu) out.push(metric('c', 'CPUUtilization', 'Average'));
  if (r.net) out.push(metric('i', 'NetworkIn', 'Sum'), metric('o', 'NetworkOut', 'Sum'));
  return out;
}

/**
 * Usage samples per instance, ascending in time. A sample's `at` is the end of its
 * period; network is (in + out) / period in bytes per second and is left out unless
 * both directions have a datapoint (missing data is unknown, never idle).
 */
export async function fetchUsageSamples(
  cw: AwsClient,
  requests: readonly MetricRequest[],
  window: MetricWindow,
): Promise<{ samples: Map<string, Sample[]>; calls: number; metrics: number }> {
  const periodMs = window.periodMs ?? METRIC_PERIOD_MS;
  const periodSec = Math.round(periodMs / 1000);
  const start = Math.floor(window.start / periodMs) * periodMs;
  const points = new Map<string, Map<number, Point>>();
  const byIndex = requests.filter((r) => metricCount(r) > 0);
  let calls = 0;
  let metrics = 0;
  let batch: MetricDataQuery[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    let token: string | undefined;
    do {
      const out = await cw.send(
        new GetMetricDataCommand({
          MetricDataQueries: batch,
          StartTime: new Date(start),
          EndTime: new Date(window.end),
          ScanBy: 'TimestampAscending',
          ...(token ? { NextToken: token } : {}),
        }),
      );
      calls++;
      for (const res of out.MetricDataResults ?? []) {
        const id = res.Id ?? '';
        const kind = id[0];
        const r = byIndex[Number(id.slice(1))];
        if (!r) continue;
        let series = points.get(r.instanceId);
        if (!series) points.set(r.instanceId, (series = new Map()));
        const ts = res.Timestamps ?? [];
        const vs = res.Values ?? [];
        for (let k = 0; k < ts.length && k < vs.length; k++) {
          const t = new Date(ts[k]).getTime();
          let p = series.get(t);
          if (!p) series.set(t, (p = {}));
          if (kind === 'c') p.cpu = vs[k];
          else if (kind === 'i') p.netIn = vs[k];
          else if (kind === 'o') p.netOut = vs[k];
        }
      }
      token = out.NextToken || undefined;
    } while (token);
    metrics += batch.length;
    batch = [];
  };
  for (let i = 0; i < byIndex.length; i++) {
    const q = queries(byIndex[i], i, periodSec);
    if (batch.length + q.length > MAX_QUERIES_PER_CALL) await flush();
    batch.push(...q);
  }
  await flush();

  const samples = new Map<string, Sample[]>();
  for (const [id, series] of points) {
    const list: Sample[] = [];
    for (const t of [...series.keys()].sort((a, b) => a - b)) {
      const p = series.get(t)!;
      const at = t + periodMs;
      if (at > window.end + periodMs) continue;
      const net = p.netIn !== undefined && p.netOut !== undefined ? (p.netIn + p.netOut) / periodSec : undefined;
      list.push({ at, ...(p.cpu === undefined ? {} : { cpuPercent: p.cpu }), ...(net === undefined ? {} : { netBytesPerSec: net }) });
    }
    samples.set(id, list);
  }
  return { samples, calls, metrics };
}
