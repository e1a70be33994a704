/**
 * Runtime errors of the watchdog: one base class; subclasses set `name`, carry the
 * instance or policy they concern and chain `cause`.
 */
export class WatchdogError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WatchdogError';
  }
}

/** The policy parameter cannot be read or does not hold a valid policy for this watchdog. */
export class PolicyLoadError extends WatchdogError {
  constructor(
    readonly policyId: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'PolicyLoadError';
  }
}

/** The invocation's event is none of the shapes the watchdog handles. */
export class EventShapeError extends WatchdogError {
  constructor(readonly problems: readonly string[]) {
    super(
      `event: ${problems.join('; ')}. The watchdog handles an EventBridge 'Scheduled Event', an 'EC2 Instance State-change Notification' and its own {"smvmShard":{"index":i,"count":n}}.`,
    );
    this.name = 'EventShapeError';
  }
}

/** One instance could not be evaluated (its other instances proceed). */
export class InstanceError extends WatchdogError {
  constructor(
    readonly instanceId: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'InstanceError';
  }
}
