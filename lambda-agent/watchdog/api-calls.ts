/**
 * Counts the AWS API calls the watchdog makes, by operation, for the cycle summary
 * (what the control plane costs and which throttling buckets it draws on). Wraps any
 * client with `send`, real or fake; SDK retries of one call count once.
 */
import type { AwsClient } from '../adapters/ec2';

export function operationName(command: unknown): string {
  const c = command as { schema?: unknown; constructor?: { name?: string } };
  if (Array.isArray(c?.schema) && typeof c.schema[2] === 'string') return c.schema[2];
  const name = c?.constructor?.name ?? 'Unknown';
  return name.endsWith('Command') ? name.slice(0, -'Command'.length) : name;
}

export class ApiCallCounter {
  private readonly counts = new Map<string, number>();

  /** A client whose calls are counted. */
  wrap(client: AwsClient): AwsClient {
    return {
      send: (command: unknown, options?: unknown) => {
        const op = operationName(command);
        this.counts.set(op, (this.counts.get(op) ?? 0) + 1);
        return client.send(command, options);
      },
    };
  }

  snapshot(): Record<string, number> {
    return Object.fromEntries([...this.counts].sort(([a], [b]) => a.localeCompare(b)));
  }

  /** Calls since `before` (a snapshot). */
  since(before: Record<string, number>): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [op, n] of this.counts) if (n - (before[op] ?? 0) > 0) out[op] = n - (before[op] ?? 0);
    return out;
  }
}

/** Operations that change something (for the "a steady cycle writes nothing" check). */
export const WRITE_OPERATIONS = new Set([
  'CreateTags',
  'DeleteTags',
  'StopInstances',
  'StartInstances',
  'RebootInstances',
  'TerminateInstances',
  'Publish',
  'PublishBatch',
  'Invoke',
]);
