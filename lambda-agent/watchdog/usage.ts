/**
 * The periodic `usage` event of a policy (or of one shard of it): how many instances,
 * running hours and spend so far, actions taken in the last period, and per instance
 * what is left of each hard limit. The per-instance list keeps the instances closest to
 * a limit and is capped, so the message stays far below SNS's 256 KB.
 */
import type { Decision } from '../engine/evaluate';
import type { Shard } from './shard';

/** Instances listed in a usage event at most (about 150 bytes each). */
export const USAGE_LIST_MAX = 200;

export interface InstanceUsage {
  readonly instanceId: string;
  readonly managementId?: string;
  readonly state: string;
  readonly runningHours: number;
  readonly spendUsd: number;
  /** Per hard rule: what is left (hours for time limits, USD for spend). */
  readonly left: Record<string, number>;
  /** Smallest fraction left over all hard rules (0 = a limit is reached). */
  readonly minFractionLeft: number;
}

export interface UsageSummary {
  readonly instances: number;
  readonly running: number;
  readonly stopped: number;
  readonly runningHours: number;
  readonly spendUsd: number;
  readonly actionsInPeriod: number;
  readonly actionsByType: Record<string, number>;
  readonly periodMs: number;
  readonly listed: InstanceUsage[];
  readonly omitted: number;
  readonly shard?: Shard;
}

const HOUR = 3_600_000;
const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

export class UsageAccumulator {
  private instances = 0;
  private running = 0;
  private stopped = 0;
  private runningMs = 0;
  private spendUsd = 0;
  private actions = 0;
  private readonly byType: Record<string, number> = {};
  /** Sorted by minFractionLeft ascending, at most USAGE_LIST_MAX. */
  private readonly list: InstanceUsage[] = [];
  private omitted = 0;

  constructor(
    private readonly now: number,
    private readonly periodMs: number,
    private readonly max = USAGE_LIST_MAX,
  ) {}

  add(d: Decision, managementId?: string): void {
    this.instances++;
    if (d.billing === 'running') this.running++;
    else if (d.billing === 'stopped') this.stopped++;
    this.runningMs += d.accounting.runningMs;
    this.spendUsd += d.accounting.spendUsd;
    for (const r of d.episodes) {
      if (r.actedAt !== undefined && r.actedAt > this.now - this.periodMs && r.actedAt <= this.now) {
        this.actions++;
        const a = r.action ?? 'unknown';
        this.byType[a] = (this.byType[a] ?? 0) + 1;
      }
    }
    const left: Record<string, number> = {};
    let minFraction = 1;
    for (const r of d.rules) {
      const f = r.figures;
      if (!f || f.value === undefined || f.limit === undefined || f.limit <= 0) continue;
      if (r.type !== 'lifetime' && r.type !== 'running-time' && r.type !== 'spend') continue;
      const rest = Math.max(0, f.limit - f.value);
      left[r.rule] = f.unit === 'ms' ? round(rest / HOUR, 2) : round(rest, 2);
      minFraction = Math.min(minFraction, rest / f.limit);
    }
    const entry: InstanceUsage = {
      instanceId: d.instanceId,
      ...(managementId ? { managementId } : {}),
      state: d.billing,
      runningHours: round(d.accounting.runningMs / HOUR, 2),
      spendUsd: round(d.accounting.spendUsd, 4),
      left,
      minFractionLeft: round(minFraction, 4),
    };
    this.insert(entry);
  }

  private insert(e: InstanceUsage): void {
    const list = this.list;
    if (list.length >= this.max && e.minFractionLeft >= list[list.length - 1].minFractionLeft) {
      this.omitted++;
      return;
    }
    let lo = 0;
    let hi = list.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (list[mid].minFractionLeft <= e.minFractionLeft) lo = mid + 1;
      else hi = mid;
    }
    list.splice(lo, 0, e);
    if (list.length > this.max) {
      list.pop();
      this.omitted++;
    }
  }

  summary(shard?: Shard): UsageSummary {
    return {
      instances: this.instances,
      running: this.running,
      stopped: this.stopped,
      runningHours: round(this.runningMs / HOUR, 2),
      spendUsd: round(this.spendUsd, 4),
      actionsInPeriod: this.actions,
      actionsByType: { ...this.byType },
      periodMs: this.periodMs,
      listed: [...this.list],
      omitted: this.omitted,
      ...(shard && shard.count > 1 ? { shard } : {}),
    };
  }
}
