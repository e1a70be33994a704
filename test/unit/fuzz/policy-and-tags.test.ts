/**
 * Bad input, fuzzed: policy documents and hand-edited tag values. Validation only ever
 * reports validation errors that name a field; nothing else throws. Seeds are fixed
 * (override with FUZZ_SEED) and printed on failure by fast-check.
 */
import fc from 'fast-check';
import { parsePolicy } from '../../../lambda-agent';
import { ruleNames, findRule } from '../../../lambda-agent/rules';
import {
  decodeCheckpoint,
  decodeEpisodes,
  decodeExtensions,
  decodeHeartbeat,
  decodeSnooze,
  TagValueError,
} from '../../../lambda-agent/contract/state';

const SEED = Number(process.env.FUZZ_SEED ?? 20261126);
export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 400);

/** Values a person might type in a policy: right types, wrong types, odd strings. */
const scalar = fc.oneof(
  fc.constantFrom(
    '30m',
    '8h',
    '3d',
    'PT8H',
    '90s',
    '0s',
    '-5m',
    '1y',
    'P1M',
    'soon',
    '',
    '  ',
    'Europe/Amsterdam',
    'Mars/Base',
    '08:00',
    '25:00',
    '24:00',
  ),
  fc.integer({ min: -1000, max: 100000 }),
  fc.double({ noNaN: false }),
  fc.boolean(),
  fc.constant(null),
  fc.string({ maxLength: 12 }),
);
const value: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  v: fc.oneof(
    { depthSize: 'small' },
    scalar,
    fc.array(tie('v'), { maxLength: 3 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie('v'), { maxKeys: 3 }),
  ),
})).v;

/** A rule built from a real rule's fields with fuzzed values, plus stray keys. */
const rule = fc
  .record({
    type: fc.constantFrom(...ruleNames(), 'nope', ''),
    fields: fc.dictionary(fc.string({ maxLength: 8 }), value, { maxKeys: 2 }),
    known: fc.array(fc.tuple(fc.nat(), value), { maxLength: 5 }),
    action: fc.option(fc.constantFrom('stop', 'hibernate', 'terminate', 'reboot', 'notify', 'start', 'explode'), { nil: undefined }),
  })
  .map(({ type, fields, known, action }) => {
    const def = findRule(type);
    const keys = def ? Object.keys(def.schema.def.shape) : [];
    const out: Record<string, unknown> = { rule: type, ...fields };
    for (const [i, v] of known) if (keys.length) out[keys[i % keys.length]] = v;
    out.rule = type;
    if (action) out.action = action;
    return out;
  });

const policy = fc.oneof(
  fc.record({
    id: fc.oneof(fc.constantFrom('dev-boxes', 'X', '', 'a'.repeat(50)), fc.string()),
    rules: fc.array(rule, { maxLength: 4 }),
    dryRun: fc.option(value, { nil: undefined }),
  }),
  value,
);

describe('policy validation under fuzzed input', () => {
  it('never throws and names a field in every error', () => {
    fc.assert(
      fc.property(policy, (raw) => {
        const r = parsePolicy(raw);
        if (r.ok) {
          expect(r.policy.rules.length).toBeGreaterThan(0);
          return;
        }
        expect(r.errors.length).toBeGreaterThan(0);
        for (const e of r.errors) {
          expect(e.scope).toMatch(/^policy:/);
          expect(e.path).not.toBe('');
          expect(e.message.length).toBeGreaterThan(5);
        }
      }),
      { seed: SEED, numRuns: FUZZ_RUNS },
    );
  });

  it('accepts every registered rule example and rejects the same rule with a stray field', () => {
    for (const name of ruleNames()) {
      const example = findRule(name)!.example;
      expect(parsePolicy({ id: 'p', rules: [example] }).ok).toBe(true);
      const bad = parsePolicy({ id: 'p', rules: [{ ...example, maxLifetme: '3d' }] });
      expect(bad.ok).toBe(false);
      if (!bad.ok) expect(bad.errors.map((e) => e.path)).toContain('rules[0].maxLifetme');
    }
  });
});

describe('hand-edited tag values', () => {
  const decoders: Array<[string, (v: string) => unknown]> = [
    ['smvm:state', (v) => decodeCheckpoint(v)],
    ['smvm:episodes', (v) => decodeEpisodes(v)],
    ['smvm:snooze', (v) => decodeSnooze(v)],
    ['smvm:extend', (v) => decodeExtensions(v)],
    ['smvm:heartbeat', (v) => decodeHeartbeat(v)],
  ];
  const tagValue = fc.oneof(
    fc.string({ maxLength: 256 }),
    fc.constantFrom(
      'v=1;s=running;t=100;f=50;r=10;u=0.5',
      'v=1;s=running;t=1;f=50;r=0;u=0',
      'until=abc',
      'lifetime=-5',
      'idle:1:2:3:stop extra',
      't=1;c=idle',
      'u=1e999',
    ),
  );

  it.each(decoders)('%s: a bad value raises TagValueError naming the key, never anything else', (key, decode) => {
    fc.assert(
      fc.property(tagValue, (v) => {
        try {
          decode(v);
        } catch (e) {
          expect(e).toBeInstanceOf(TagValueError);
          expect((e as TagValueError).key).toBe(key);
          expect((e as Error).message).toContain(`tag '${key}'`);
        }
      }),
      { seed: SEED, numRuns: FUZZ_RUNS },
    );
  });
});
