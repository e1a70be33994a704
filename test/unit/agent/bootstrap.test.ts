import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { BootstrapOptionError, renderBootstrap, renderUserData, type BootstrapOptions } from '../../../lambda-agent/contract/bootstrap';
import { agentArtifactParameterName, policyParameterName } from '../../../lambda-agent/contract/env';
import { loadPolicy } from '../../../lambda-agent/policy/parse';

const OPTS: BootstrapOptions = {
  policyId: 'dev-boxes',
  region: 'eu-west-1',
  topicArn: 'arn:aws:sns:eu-west-1:123456789012:smvm-dev-boxes-events',
  policyParameter: policyParameterName('dev-boxes'),
  artifactParameter: agentArtifactParameterName('dev-boxes'),
};

/** What a deployment of the policy consists of; only the identity goes into the user data. */
function deployment(doc: object, agentSha: string) {
  return { policyHash: loadPolicy(doc).hash, agentSha, userData: renderBootstrap(OPTS), gzipped: renderUserData(OPTS) };
}

describe('renderBootstrap', () => {
  test('the text is identical for two different policy documents and agent versions of the same policy', () => {
    const a = deployment({ id: 'dev-boxes', rules: [{ rule: 'lifetime', max: '7d' }] }, 'a'.repeat(64));
    const b = deployment(
      {
        id: 'dev-boxes',
        agent: { sampleInterval: '5s' },
        rules: [
          { rule: 'idle', window: '30m' },
          { rule: 'lifetime', max: '3d', action: 'terminate' },
        ],
      },
      'b'.repeat(64),
    );
    expect(a.policyHash).not.toBe(b.policyHash);
    expect(b.userData).toBe(a.userData);
    expect(b.gzipped.equals(a.gzipped)).toBe(true);
    for (const d of [a, b]) {
      expect(a.userData).not.toContain(d.policyHash);
      expect(a.userData).not.toContain(d.agentSha.slice(0, 12));
    }
  });

  test('the text follows the policy identity it is given', () => {
    const other = renderBootstrap({
      ...OPTS,
      policyId: 'ci-runners',
      policyParameter: policyParameterName('ci-runners'),
      artifactParameter: agentArtifactParameterName('ci-runners'),
    });
    expect(other).not.toBe(renderBootstrap(OPTS));
    expect(other).toContain('"policyId":"ci-runners"');
    expect(other).toContain('"artifactParameter":"/smvm/ci-runners/agent"');
  });

  test('is pinned: a change replaces the user data of every instance, so it must be deliberate', () => {
    // Update this digest only with a deliberate change of the bootstrap (and say so in the change log).
    expect(createHash('sha256').update(renderBootstrap(OPTS)).digest('hex').slice(0, 16)).toMatchInlineSnapshot(`"e36c5936f8362b8c"`);
  });

  test('fits the goals: ≤ 4 KB gzipped, far below EC2’s 16 KB of user data', () => {
    const text = renderBootstrap(OPTS);
    expect(gzipSync(text, { level: 9 }).length).toBeLessThanOrEqual(4096);
    expect(renderUserData(OPTS).length).toBeLessThanOrEqual(4096);
    expect(Buffer.byteLength(text)).toBeLessThan(16 * 1024);
  });

  test('holds no Terraform template sequences, so it passes through cdktf unchanged', () => {
    const text = renderBootstrap(OPTS);
    expect(text).not.toContain('${');
    expect(text).not.toContain('%{');
  });

  test('is valid sh, and its embedded installer is valid JavaScript', () => {
    const dir = mkdtempSync(join(tmpdir(), 'smvm-boot-'));
    const text = renderBootstrap(OPTS);
    writeFileSync(join(dir, 'bootstrap.sh'), text);
    expect(spawnSync('/bin/sh', ['-n', join(dir, 'bootstrap.sh')], { encoding: 'utf8' }).stderr).toBe('');
    const installer = /<<'N'\n([\s\S]*?)\nN\n/.exec(text)![1];
    writeFileSync(join(dir, 'install.js'), installer);
    const check = spawnSync(process.execPath, ['--check', join(dir, 'install.js')], { encoding: 'utf8' });
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
    const guard = /<<'G'\n([\s\S]*?)\nG\n/.exec(text)![1];
    expect(guard.startsWith('#!/bin/sh\n')).toBe(true);
  });

  test.each([
    ['policyId', 'dev; rm -rf /'],
    ['topicArn', 'arn:aws:sns:eu-west-1:1:$(reboot)'],
    ['policyParameter', '/smvm/x/policy\n'],
    ['region', ''],
  ])('fails on an unsafe %s', (field, value) => {
    expect(() => renderBootstrap({ ...OPTS, [field]: value })).toThrow(BootstrapOptionError);
    expect(() => renderBootstrap({ ...OPTS, [field]: value })).toThrow(`bootstrap: '${field}' may hold only letters`);
  });

  test('accepts an unresolved cdktf token (Terraform substitutes it at apply)', () => {
    expect(renderBootstrap({ ...OPTS, topicArn: '${TfToken[TOKEN.42]}' })).toContain('"topicArn":"${TfToken[TOKEN.42]}"');
  });
});
