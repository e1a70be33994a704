/**
 * The policies the savings replay compares, as policy documents (exactly what a user
 * would write in the policy's SSM parameter). Each is parsed by `loadPolicy` and
 * evaluated by the same `evaluate` the agent and the watchdog run.
 */
import type { PolicyDocument } from '../policy/model';

/** Weekdays 08:00–19:00 in Amsterdam: the scheduler recipe's office hours. */
export const OFFICE_HOURS = {
  timezone: 'Europe/Amsterdam',
  windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00', end: '19:00' }],
} as const;

/** Our idle rule's parameters, shared by the idle policy and the developer-box policy. */
export const OUR_IDLE = {
  rule: 'idle',
  window: '30m',
  cpuPercentBelow: 5,
  networkBytesPerSecBelow: 50 * 1024,
  startGrace: '15m',
  action: 'stop',
  warnBefore: '5m',
} as const;

/** The developer box's spend cap, in hours of its hourly price: one always-on month over its 90-day life. */
export const DEV_BOX_CAP_HOURS = 730;

export interface ReplayPolicy {
  /** Short key (CLI, JSON). */
  readonly key: string;
  /** Name in the table. */
  readonly label: string;
  /** What it stands for, in one line. */
  readonly recipe: string;
  /** The document for a VM at this hourly price; undefined = no policy (always on). */
  document(hourlyUsd: number): PolicyDocument | undefined;
}

export const NO_POLICY: ReplayPolicy = {
  key: 'none',
  label: 'no policy (baseline)',
  recipe: 'always on: what the VMs cost as the trace ran them',
  document: () => undefined,
};

export const OFFICE_HOURS_POLICY: ReplayPolicy = {
  key: 'office-hours',
  label: 'office hours only',
  recipe: 'scheduler recipe: run Mon–Fri 08:00–19:00 Europe/Amsterdam, stop at the close, start at the open',
  document: () => ({
    id: 'office-hours',
    description: 'Scheduler recipe: weekdays 08:00-19:00 Amsterdam.',
    rules: [{ rule: 'schedule', ...OFFICE_HOURS, windows: OFFICE_HOURS.windows.map((w) => ({ ...w, days: [...w.days] })), action: 'stop' }],
  }),
};

export const CPU_IDLE_POLICY: ReplayPolicy = {
  key: 'cpu-idle',
  label: 'CPU-only idle',
  recipe: 'CloudWatch-alarm recipe: average CPU < 5 % for 30 min → stop (network ignored, no start grace)',
  document: () => ({
    id: 'cpu-only-idle',
    description: 'CloudWatch-alarm recipe expressed with the idle rule: network threshold too high to matter, no start grace.',
    rules: [
      {
        rule: 'idle',
        window: '30m',
        cpuPercentBelow: 5,
        // 1 PB/s: no network rate reaches it, so only CPU decides.
        networkBytesPerSecBelow: 1e15,
        loginsKeepBusy: false,
        startGrace: '0s',
        action: 'stop',
      },
    ],
  }),
};

export const IDLE_POLICY: ReplayPolicy = {
  key: 'idle',
  label: 'our idle rule',
  recipe: `idle rule: CPU < ${OUR_IDLE.cpuPercentBelow} % and network < ${OUR_IDLE.networkBytesPerSecBelow / 1024} KB/s for ${OUR_IDLE.window}, ${OUR_IDLE.startGrace} start grace → stop`,
  document: () => ({ id: 'idle', description: 'Our idle rule.', rules: [{ ...OUR_IDLE }] }),
};

export const DEV_BOX_POLICY: ReplayPolicy = {
  key: 'dev-box',
  label: 'developer box',
  recipe: `our idle rule + office hours (15 min warning) + lifetime 90d + spend cap of ${DEV_BOX_CAP_HOURS} h of its price`,
  document: (hourlyUsd) => ({
    id: 'developer-box',
    description: 'Developer box: office hours, stop when idle, at most 90 days, spend capped.',
    rules: [
      { ...OUR_IDLE },
      {
        rule: 'schedule',
        ...OFFICE_HOURS,
        windows: OFFICE_HOURS.windows.map((w) => ({ ...w, days: [...w.days] })),
        action: 'stop',
        warnBefore: '15m',
      },
      { rule: 'lifetime', max: '90d', action: 'terminate', warnBefore: '1d' },
      { rule: 'spend', maxUsd: Math.max(0.01, Math.round(hourlyUsd * DEV_BOX_CAP_HOURS * 100) / 100), action: 'stop', warnBefore: '1h' },
    ],
  }),
};

/** Every policy of the comparison, baseline first. */
export const REPLAY_POLICIES: readonly ReplayPolicy[] = [NO_POLICY, OFFICE_HOURS_POLICY, CPU_IDLE_POLICY, IDLE_POLICY, DEV_BOX_POLICY];

export function findReplayPolicy(key: string): ReplayPolicy | undefined {
  return REPLAY_POLICIES.find((p) => p.key === key);
}
