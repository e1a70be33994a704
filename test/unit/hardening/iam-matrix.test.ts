/**
 * Least privilege, evaluated (see test/hardening/iam.ts): the synthesized IAM policies
 * of the agent, the watchdog and the topic, evaluated with @cloud-copilot/iam-simulate
 * over a matrix of requests. docs/iam-matrix.md is printed from this evaluation: with
 * SMVM_WRITE_DOCS=1 the test writes it, otherwise it asserts the committed file matches.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluateMatrix, renderMatrix, synthesize, type MatrixResult } from '../../hardening/iam';

const DOC = join(__dirname, '..', '..', '..', 'docs', 'iam-matrix.md');
let results: MatrixResult[];

beforeAll(async () => {
  results = await evaluateMatrix(synthesize());
}, 120_000);

describe('the synthesized IAM policies, evaluated', () => {
  it('evaluate every case of the matrix as the security model expects', () => {
    const differs = results
      .filter((r) => !r.ok)
      .map((r) => ({
        who: r.who,
        action: r.action,
        target: r.target,
        detail: r.detail,
        expected: r.expected,
        evaluated: r.evaluated,
        ignoredContextKeys: r.ignoredContextKeys,
      }));
    expect(differs).toEqual([]);
    expect(results.length).toBeGreaterThanOrEqual(60);
  });

  it('were evaluated with every context key the conditions need (none dropped by the simulator)', () => {
    const dropped = results.filter((r) =>
      r.ignoredContextKeys.some((k) => /^(aws:PrincipalArn|ec2:SourceInstanceARN|ec2:InstanceID|aws:TagKeys|aws:ResourceTag\/)/.test(k)),
    );
    expect(dropped.map((r) => `${r.action} ${r.target}: ${r.ignoredContextKeys.join(', ')}`)).toEqual([]);
  });

  it('use the documented self-condition (ec2:SourceInstanceARN), never the undocumented aws:ARN key', () => {
    const s = synthesize();
    const all = JSON.stringify([...s.documents.values()]);
    expect(all).not.toMatch(/"aws:ARN"/i);
    const agent = s.roles.get(s.arns.pAgent)!.flatMap((p) => p.policy.Statement);
    const onOwn = agent.filter((st: any) =>
      (st.Action as string[]).some((a) => /^ec2:(Stop|Terminate|Reboot)Instances$|^ec2:CreateTags$/.test(a)),
    );
    expect(onOwn.length).toBeGreaterThan(0);
    for (const st of onOwn)
      expect(st.Condition?.ArnLike?.['ec2:SourceInstanceARN']).toEqual(['arn:aws:ec2:*:*:instance/${ec2:InstanceID}']);
  });

  it('fails a case whose expectation is wrong (the matrix can fail)', async () => {
    const s = synthesize();
    const { matrixCases } = await import('../../hardening/iam');
    const flipped = matrixCases(s).find((c) => c.action === 'ec2:StopInstances' && c.who === 'agent of A' && c.expected === 'Denied')!;
    const { runSimulation } = await import('@cloud-copilot/iam-simulate');
    const r = flipped.request();
    const sim = await runSimulation(
      {
        request: {
          principal: r.principal,
          action: flipped.action,
          resource: { resource: r.resource, accountId: '123456789012' },
          contextVariables: { 'aws:PrincipalArn': r.principalArn, ...r.context },
        },
        identityPolicies: r.identity,
        serviceControlPolicies: [],
        resourceControlPolicies: [],
      },
      {},
    );
    expect(sim.resultType !== 'error' && sim.overallResult).not.toBe('Allowed');
  });

  it('are documented in docs/iam-matrix.md exactly as evaluated', () => {
    const text = renderMatrix(results);
    if (process.env.SMVM_WRITE_DOCS === '1') writeFileSync(DOC, text);
    let committed = '';
    try {
      committed = readFileSync(DOC, 'utf8');
    } catch {
      committed = '(docs/iam-matrix.md is missing: run SMVM_WRITE_DOCS=1 npx jest test/unit/hardening/iam-matrix.test.ts)';
    }
    expect(committed).toBe(text);
  });
});
