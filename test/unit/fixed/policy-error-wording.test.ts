/**
 * Fixed: two policy error messages said the wrong thing. An unknown field inside a
 * nested object (agent settings, a spend rule's peak) listed the allowed fields of the
 * top level or of the rule instead of the nested object's own, and a document that is
 * not an object was "must be a object".
 */
import { formatPolicyError, parsePolicy } from '../../../lambda-agent';

const errorsOf = (raw: unknown) => {
  const r = parsePolicy(raw);
  return r.ok ? [] : r.errors.map(formatPolicyError);
};

describe('fixed: policy error wording', () => {
  it('lists the fields of the nested object that has the unknown field', () => {
    expect(errorsOf({ id: 'p', agent: { sampleEvery: '5s' }, rules: [{ rule: 'health', escalate: { action: 'stop', after: '1h' } }] }))
      .toMatchInlineSnapshot(`
[
  "policy:p: 'agent.sampleEvery' is not a known field; allowed: sampleInterval, heartbeatInterval",
  "policy:p rule:health: 'rules[0].escalate.after' is not a known field; allowed: action, within",
]
`);
  });

  it('says "an object"', () => {
    expect(errorsOf(42)).toEqual(["policy:?: '(policy)' must be an object, got: 42"]);
  });
});
