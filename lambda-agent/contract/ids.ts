/**
 * Identifier formats: policy ids and per-instance management ids.
 */

/** A policy id: lower-case letters, digits and hyphens, starting with a letter, 1–40 characters. */
export const POLICY_ID_PATTERN = /^[a-z][a-z0-9-]{0,39}$/;

export function isPolicyId(value: string): boolean {
  return POLICY_ID_PATTERN.test(value);
}

/**
 * A management id names one declared, self-managed machine: `smvm-<policyId>-<12 hex>`.
 * The constructs derive the hex part from the construct path, so it is stable across
 * deployments; instances launched from one launch template share it, and the runtime
 * tells them apart by instance id.
 */
export const MANAGEMENT_ID_PATTERN = /^smvm-([a-z][a-z0-9-]{0,39})-([0-9a-f]{12})$/;

export function formatManagementId(policyId: string, hex: string): string {
  const id = `smvm-${policyId}-${hex.slice(0, 12).toLowerCase()}`;
  if (!MANAGEMENT_ID_PATTERN.test(id)) {
    throw new Error(`management id: cannot build one from policy '${policyId}' and '${hex}'`);
  }
  return id;
}

export function parseManagementId(value: string): { policyId: string; hex: string } | undefined {
  const m = MANAGEMENT_ID_PATTERN.exec(value);
  return m ? { policyId: m[1], hex: m[2] } : undefined;
}

/**
 * A short, deterministic, dependency-free content hash (16 hex digits: FNV-1a and a
 * murmur-style lane). Identifies policy versions and events; not for security.
 */
export function contentHash(text: string): string {
  let h1 = 0x811c9dc5;
  let h2 = 0x01000193 ^ text.length;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    h1 = Math.imul(h1 ^ c, 0x01000193) >>> 0;
    h2 = Math.imul(h2 ^ c, 0x5bd1e995) >>> 0;
    h2 ^= h2 >>> 15;
  }
  return h1.toString(16).padStart(8, '0') + (h2 >>> 0).toString(16).padStart(8, '0');
}
