/**
 * Every registered rule is complete: name, strict schema, summary, actions, IAM
 * permissions and an example that parses and evaluates (custodian's PolicyMetaLint).
 */
import { allRules, evaluate, findRule, parsePolicy, ruleNames, type RuleDefinition } from '../../lambda-agent';
import { ACTION_NAMES } from '../../lambda-agent/contract';
import { FIXTURE_POLICIES, MIN, NOW, observation, policyDoc, series, IDLE, checkpoint } from '../fixtures/policies';

const RULES = allRules();
const table = RULES.map((r) => [r.name, r] as [string, RuleDefinition<unknown>]);

function exampleOf(def: RuleDefinition<unknown>) {
  const r = parsePolicy(policyDoc([def.example as never]));
  if (!r.ok) throw new Error(`example of ${def.name} does not parse:\n${r.errors.map((e) => `${e.path} ${e.message}`).join('\n')}`);
  return r.policy;
}

describe('rule registry', () => {
  it('lists all nine rules, sorted', () => {
    expect(ruleNames()).toEqual([
      'health',
      'heartbeat-lost',
      'idle',
      'lifetime',
      'over-use',
      'running-time',
      'schedule',
      'spend',
      'task-completion',
    ]);
    expect(RULES.map((r) => r.name)).toEqual(ruleNames());
  });

  it('has unique kebab-case names, each found by name', () => {
    expect(new Set(ruleNames()).size).toBe(ruleNames().length);
    for (const name of ruleNames()) {
      expect(name).toMatch(/^[a-z][a-z0-9]*(-[a-z0-9]+)*$/);
      expect(findRule(name)?.name).toBe(name);
    }
    expect(findRule('no-such-rule')).toBeUndefined();
  });

  describe.each(table)('%s', (name, def) => {
    it('has a one-line summary', () => {
      expect(def.summary).toMatch(/^[A-Z].{10,160}[.)]$/);
      expect(def.summary).not.toContain('\n');
    });

    it('declares its kind and hosts', () => {
      expect(['hard', 'soft']).toContain(def.kind);
      expect(def.hosts.length).toBeGreaterThan(0);
      for (const h of def.hosts) expect(['agent', 'watchdog']).toContain(h);
    });

    it('allows known actions only, without duplicates', () => {
      expect(def.actions.length).toBeGreaterThan(0);
      expect(new Set(def.actions).size).toBe(def.actions.length);
      for (const a of def.actions) expect(ACTION_NAMES).toContain(a);
      if (def.kind === 'hard') expect(def.actions).not.toContain('start');
    });

    it('has a strict schema: unknown keys are rejected', () => {
      expect(def.schema.safeParse({ ...def.example, unknownKey: 1 }).success).toBe(false);
      expect(def.schema.safeParse(def.example).success).toBe(true);
      expect(Object.keys(def.schema.def.shape)).toEqual(expect.arrayContaining(['rule', 'name', 'action', 'warnBefore']));
    });

    it('has an example that parses inside a minimal policy', () => {
      const policy = exampleOf(def);
      expect(policy.rules).toEqual([expect.objectContaining({ type: name, name })]);
    });

    it('needs only ec2:* and pricing:* permissions, for the example and for every allowed action', () => {
      const policy = exampleOf(def);
      const perms = [
        ...def.permissions(policy.rules[0]),
        ...def.actions.flatMap((action) => def.permissions({ ...policy.rules[0], action })),
      ];
      for (const p of perms) expect(p).toMatch(/^(ec2|pricing):[A-Z][A-Za-z]+$/);
      const acting = def.actions.filter((a) => a !== 'notify');
      for (const action of acting) expect(def.permissions({ ...policy.rules[0], action }).length).toBeGreaterThan(0);
    });

    it.each([
      ['running', {}],
      ['stopped', { state: 'stopped' as const, checkpoint: checkpoint({ state: 'stopped' }) }],
      ['terminated', { state: 'terminated' as const }],
      ['first seen, with usage samples', { checkpoint: undefined, samples: series({ count: 30, sample: IDLE }), samplePeriodMs: MIN }],
      ['seen by the agent', { host: 'agent' as const, tasks: {} }],
    ])('has an example that evaluates without throwing for an instance %s', (_label, extra) => {
      const d = evaluate(exampleOf(def), observation(extra), NOW);
      expect(d.rules).toEqual([expect.objectContaining({ rule: name, type: name })]);
      expect(['ok', 'pending', 'warning', 'due', 'acted', 'snoozed', 'blocked', 'unknown']).toContain(d.rules[0].status);
    });
  });

  it.each(Object.entries(FIXTURE_POLICIES))('the shared fixture policy %s parses', (_name, doc) => {
    expect(parsePolicy(doc)).toMatchObject({ ok: true });
  });
});
