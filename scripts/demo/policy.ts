/**
 * The demo's policy: the same rules a real fleet would use, with thresholds in seconds so
 * that the whole story fits in about a minute.
 *
 * The idle window is the shortest the policy parser accepts: 20 s when short windows are
 * allowed (the limit is twice the agent's sampling interval), otherwise the first longer
 * candidate that validates — the demo then says so and takes longer.
 */
import { formatPolicyError, parsePolicy } from '../../lambda-agent/policy/parse';
import type { Policy, PolicyDocument } from '../../lambda-agent/policy/model';

export const DEMO_POLICY_ID = 'demo';

/** How long A stays busy before its load drops to idle, ms. */
export const BUSY_FOR_MS = 10_000;

/** Idle windows tried in order; the first one the parser accepts is used. */
export const IDLE_WINDOWS = ['20s', '1m'] as const;

export interface DemoPolicy {
  readonly document: PolicyDocument;
  readonly policy: Policy;
  /** The idle window in use. */
  readonly idleWindow: string;
  /** Set when the preferred idle window was refused: why, in the parser's words. */
  readonly fallback?: { readonly wanted: string; readonly refused: string };
}

/**
 * The demo policy. The idle rule's window (20 s) and warning (9 s before the stop) put
 * both the warning and the stop half-way between two of the agent's 2-second samples, so
 * the agent carries each out at its next sample, whatever its timer's jitter (see the
 * choreography in run.ts).
 */
export function demoDocument(idleWindow: string): PolicyDocument {
  return {
    id: DEMO_POLICY_ID,
    description: 'npm start: short thresholds so that the demo fits in about a minute',
    agent: { sampleInterval: '2s', heartbeatInterval: '10s' },
    rules: [
      { rule: 'idle', window: idleWindow, startGrace: '5s', warnBefore: '9s', action: 'stop' },
      { rule: 'lifetime', max: '45s', warnBefore: '10s', action: 'stop' },
      { rule: 'heartbeat-lost', window: '20s', startGrace: '5s', action: 'notify' },
    ],
  };
}

/** The demo policy with the shortest idle window that validates. */
export function chooseDemoPolicy(): DemoPolicy {
  let refused: string | undefined;
  for (const window of IDLE_WINDOWS) {
    const document = demoDocument(window);
    const parsed = parsePolicy(document);
    if (parsed.ok) {
      return {
        document,
        policy: parsed.policy,
        idleWindow: window,
        ...(refused ? { fallback: { wanted: IDLE_WINDOWS[0], refused } } : {}),
      };
    }
    refused ??= parsed.errors.map(formatPolicyError).join('; ');
  }
  throw new Error(`the demo policy does not validate with any idle window (${IDLE_WINDOWS.join(', ')}): ${refused}`);
}

/** Milliseconds of a rule's duration field in the normalized policy. */
export function ruleMs(policy: Policy, type: string, param: string): number {
  const rule = policy.rules.find((r) => r.type === type);
  const v = rule?.params[param];
  if (typeof v !== 'number') throw new Error(`demo policy: rule '${type}' has no ${param}`);
  return v;
}
