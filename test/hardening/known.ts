/**
 * Violations of the soak's model that are known bugs in the hosts, each pinned by a
 * `.failing` test (which fails once the bug is fixed: then delete the entry here too).
 * The soak reports them but does not fail on them; `scripts/soak.ts --strict` does.
 */
import type { Violation } from './model';

export interface KnownIssue {
  /** The `.failing` test that pins it. */
  readonly test: string;
  readonly matches: (v: Violation) => boolean;
}

export const KNOWN_ISSUES: readonly KnownIssue[] = [];

export const isKnown = (v: Violation): boolean => KNOWN_ISSUES.some((k) => k.matches(v));
