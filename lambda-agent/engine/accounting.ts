/**
 * Derived accounting: the persisted checkpoint changes only at transitions; lifetime,
 * running time and spend at any instant are computed from it. Replaying or retrying an
 * evaluation therefore cannot double-count, and a steady state writes nothing.
 */
import type { BillingState, Checkpoint } from '../contract/state';
import { accrue, type Tariff } from '../policy/tariff';
import type { Accounting, InstanceState } from '../rules/types';

export function billingOf(state: InstanceState): BillingState | 'terminated' {
  switch (state) {
    case 'pending':
    case 'running':
      return 'running';
    case 'stopping':
    case 'stopped':
      return 'stopped';
    default:
      return 'terminated';
  }
}

/** Move a checkpoint to a new billing state at `at`, accruing the segment it closes. */
export function transition(cp: Checkpoint, to: BillingState, at: number, tariff: Tariff): Checkpoint {
  const t = Math.max(cp.since, at);
  return {
    state: to,
    since: t,
    firstSeen: cp.firstSeen,
    runningMs: cp.runningMs + (cp.state === 'running' ? t - cp.since : 0),
    spendUsd: cp.spendUsd + accrue(tariff, cp.state, cp.since, t),
  };
}

/**
 * The checkpoint that matches what is observed now. When the observed billing state
 * differs from the stored one, the transition is placed at the observed state's start
 * (clamped between the stored `since` and `now`), else at `now`.
 */
export function reconcile(
  prev: Checkpoint | undefined,
  state: InstanceState,
  stateSince: number | undefined,
  now: number,
  tariff: Tariff,
): { checkpoint: Checkpoint; changed: boolean } {
  const billing = billingOf(state);
  const observed: BillingState = billing === 'running' ? 'running' : 'stopped';
  if (!prev) {
    const since = billing === 'running' && stateSince !== undefined && stateSince <= now ? stateSince : now;
    return { checkpoint: { state: observed, since, firstSeen: since, runningMs: 0, spendUsd: 0 }, changed: true };
  }
  if (prev.state === observed) return { checkpoint: prev, changed: false };
  const at = Math.min(now, Math.max(prev.since, stateSince ?? now));
  return { checkpoint: transition(prev, observed, at, tariff), changed: true };
}

/** Lifetime, running time and spend at `now`. */
export function accountingAt(cp: Checkpoint, now: number, tariff: Tariff, netOutBytes = 0): Accounting {
  const t = Math.max(now, cp.since);
  return {
    firstSeen: cp.firstSeen,
    lifetimeMs: t - cp.firstSeen,
    runningMs: cp.runningMs + (cp.state === 'running' ? t - cp.since : 0),
    spendUsd: cp.spendUsd + accrue(tariff, cp.state, cp.since, t) + (netOutBytes / 1e9) * tariff.netOutUsdPerGb,
  };
}
