/**
 * Instance families that support EC2 hibernation (EC2 User Guide, "Prerequisites for
 * EC2 instance hibernation", supported instance families). Deliberately small: only
 * x86 families listed there for years; bare-metal sizes are excluded (they cannot
 * hibernate). A family missing here is refused at synth time rather than failing at
 * the first hibernate; add it when AWS documents it.
 */
export const HIBERNATION_FAMILIES: readonly string[] = [
  'c3',
  'c4',
  'c5',
  'c5d',
  'c6i',
  'c7i',
  'm3',
  'm4',
  'm5',
  'm5a',
  'm5ad',
  'm5d',
  'm6i',
  'm7i',
  'r3',
  'r4',
  'r5',
  'r5a',
  'r5ad',
  'r5d',
  'r6i',
  'r7i',
  't2',
  't3',
  't3a',
];

/** Whether an instance type (e.g. `t3.large`) can hibernate according to {@link HIBERNATION_FAMILIES}. */
export function canHibernate(instanceType: string): boolean {
  const [family, size] = instanceType.toLowerCase().split('.');
  if (!size || size.startsWith('metal')) return false;
  return HIBERNATION_FAMILIES.includes(family);
}
