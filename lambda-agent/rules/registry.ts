/**
 * The rule registry: each rule file registers itself; nothing else lists rules.
 */
import type { RuleDefinition } from './types';

const registry = new Map<string, RuleDefinition<any>>();

export function registerRule<Raw>(def: RuleDefinition<Raw>): RuleDefinition<Raw> {
  if (registry.has(def.name)) throw new Error(`rule '${def.name}' is registered twice`);
  registry.set(def.name, def);
  return def;
}

/** The definition of a rule type, or undefined. */
export function findRule(name: string): RuleDefinition<any> | undefined {
  return registry.get(name);
}

/** Registered rule names, sorted. */
export function ruleNames(): string[] {
  return [...registry.keys()].sort();
}

/** All registered rules, sorted by name. */
export function allRules(): RuleDefinition<any>[] {
  return ruleNames().map((n) => registry.get(n)!);
}
