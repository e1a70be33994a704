/**
 * Fixed: ISO 8601 durations with a negative component ('P-1D', 'PT-5M') were accepted
 * as negative milliseconds, so `warnBefore: 'PT-5M'` or a negative window passed
 * validation. Zero limits ('0s', 'PT0S') were accepted for lifetime and running time
 * (an instance that is stopped the moment it is seen).
 */
import { formatPolicyError, parseDuration, parsePolicy } from '../../../lambda-agent';
import { policyDoc } from '../../fixtures/policies';

describe('fixed: negative and zero durations', () => {
  it.each(['P-1D', 'PT-5M', 'P1DT-1H'])('parseDuration refuses %j', (text) => {
    expect(parseDuration(text)).toEqual({ ok: false, problem: 'must be positive' });
  });

  it('fails on a negative warning', () => {
    const r = parsePolicy(policyDoc([{ rule: 'lifetime', max: '1d', warnBefore: 'PT-5M' }]));
    expect(r.ok ? [] : r.errors.map(formatPolicyError)).toEqual([expect.stringContaining("'rules[0].warnBefore' must be a duration")]);
  });

  it.each(['lifetime', 'running-time'])('fails on a zero %s limit', (rule) => {
    const r = parsePolicy(policyDoc([{ rule, max: 'PT0S' }]));
    expect(r.ok ? [] : r.errors.map(formatPolicyError)).toEqual([
      `policy:test rule:${rule}: 'rules[0].max' must be longer than zero, got: 'PT0S'`,
    ]);
  });
});
