/**
 * The clock the hosts read "now" from. The engine never reads a clock (time is an
 * argument); the watchdog reads it once per cycle through this port, so tests can let
 * hours or days pass in milliseconds.
 */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

/** The system clock (the deployed watchdog). */
export const systemClock: Clock = { now: () => Date.now() };

/**
 * Whether `now` falls in the first `intervalMs` of a slot of `slotMs` (slots aligned to
 * the Unix epoch, optionally shifted by `offsetMs`). With a schedule that runs every
 * `intervalMs`, exactly one cycle per slot answers true — computed from the clock alone,
 * with no state carried between invocations.
 */
export function isFirstCycleOfSlot(now: number, slotMs: number, intervalMs: number, offsetMs = 0): boolean {
  if (slotMs <= intervalMs) return true;
  const into = (((now - offsetMs) % slotMs) + slotMs) % slotMs;
  return into < intervalMs;
}

/** Start of the slot of `slotMs` containing `now` (epoch-aligned). */
export function slotStart(now: number, slotMs: number): number {
  return now - (((now % slotMs) + slotMs) % slotMs);
}
