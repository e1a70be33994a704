/**
 * Editing a policy or upgrading the library (a new agent bundle) must never change an
 * instance's user data: EC2 instances are replaced (or stopped) when theirs changes.
 */
import { Testing } from 'cdktf';
import { SelfManagedInstance, SelfManagementPolicy } from '../../constructs';
import { POLICY_VERSION_TAG } from '../../lambda-agent/contract';
import type { PolicyDocument } from '../../lambda-agent/policy/model';
import { AGENT_V1, AGENT_V2, WATCHDOG_FIXTURE, one, parse, type Json } from './support/synth';

const POLICY_A: PolicyDocument = {
  id: 'dev',
  rules: [
    { rule: 'idle', window: '30m', action: 'stop' },
    { rule: 'lifetime', max: '7d', action: 'terminate' },
  ],
};
const POLICY_B: PolicyDocument = {
  id: 'dev',
  description: 'tightened after the cost review',
  rules: [
    { rule: 'idle', window: '15m', action: 'stop', warnBefore: '5m' },
    { rule: 'lifetime', max: '3d', action: 'terminate' },
    { rule: 'spend', maxUsd: 10, hourlyUsd: 0.0832 },
    {
      rule: 'schedule',
      timezone: 'Europe/Amsterdam',
      windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00', end: '19:00' }],
    },
  ],
};

/** The same stack, with a given policy document and agent version. */
function deploy(policy: PolicyDocument, agentEntry: string) {
  const s = parse(
    Testing.synthScope((scope) => {
      const p = new SelfManagementPolicy(scope, 'Policy', { policy, watchdogEntry: WATCHDOG_FIXTURE, agentEntry });
      new SelfManagedInstance(scope, 'Box', {
        policy: p,
        ami: 'ami-0123456789abcdef0',
        instanceType: 't3.large',
        tags: { Name: 'dev-alice' },
        userData: '#!/bin/bash\necho hello\n',
      });
    }),
  );
  const { tags, ...instance } = one(s, 'aws_instance') as Json;
  return {
    s,
    instance,
    tags,
    locals: s.locals,
    pointer: one(s, 'aws_ssm_parameter', 'Policy_AgentArtifactParameter').insecure_value as string,
  };
}

describe('user data stability', () => {
  it('leaves the aws_instance unchanged apart from tags across two policies and two agent versions', () => {
    // GIVEN the same stack deployed four ways
    const variants = [deploy(POLICY_A, AGENT_V1), deploy(POLICY_A, AGENT_V2), deploy(POLICY_B, AGENT_V1), deploy(POLICY_B, AGENT_V2)];
    // THEN the instance (without its tags) and the bootstrap it refers to are identical
    for (const v of variants.slice(1)) {
      expect(v.instance).toEqual(variants[0].instance);
      expect(v.locals).toEqual(variants[0].locals);
    }
    // AND what did change went elsewhere: the version tag, the policy parameter, the agent pointer
    expect(variants[0].tags[POLICY_VERSION_TAG]).not.toBe(variants[2].tags[POLICY_VERSION_TAG]);
    expect(variants[0].pointer).not.toBe(variants[1].pointer);
    expect(one(variants[0].s, 'aws_ssm_parameter', 'Policy_PolicyParameter').insecure_value).not.toBe(
      one(variants[2].s, 'aws_ssm_parameter', 'Policy_PolicyParameter').insecure_value,
    );
  });

  it('keeps the user data even when an edit changes the shutdown behaviour', () => {
    const soft: PolicyDocument = { id: 'dev', rules: [{ rule: 'idle', window: '30m', action: 'stop' }] };
    const a = deploy(POLICY_A, AGENT_V1);
    const b = deploy(soft, AGENT_V2);
    expect(b.instance.user_data_base64).toBe(a.instance.user_data_base64);
    expect(b.locals).toEqual(a.locals);
    // the only other difference is an in-place attribute
    const { instance_initiated_shutdown_behavior: before, ...restA } = a.instance;
    const { instance_initiated_shutdown_behavior: after, ...restB } = b.instance;
    expect([before, after]).toEqual(['terminate', 'stop']);
    expect(restB).toEqual(restA);
  });
});
