/**
 * Security facts of the synthesized stack (the one the IAM matrix evaluates): instance
 * metadata locked to IMDSv2 within the instance, no secret anywhere in the configuration
 * or user data, the topic encryptable with a key both guards may use, log retention set,
 * the agent artifact bucket private and TLS-only.
 */
import { synthesize, TOPIC_KEY } from '../../hardening/iam';

const s = synthesize();
const resources = (type: string): Array<[string, any]> => Object.entries<any>(s.json.resource?.[type] ?? {});

describe('the synthesized stack', () => {
  it('requires IMDSv2 with a hop limit of 1 (no container or proxy on the instance reaches the role) on every instance and template', () => {
    const all = [...resources('aws_instance'), ...resources('aws_launch_template')];
    expect(all.length).toBeGreaterThan(0);
    for (const [name, r] of all) {
      expect({ name, ...r.metadata_options }).toMatchObject({
        name,
        http_endpoint: 'enabled',
        http_tokens: 'required',
        http_put_response_hop_limit: 1,
      });
    }
  });

  it('holds no secret: no access key, secret key, session token, private key or password in the configuration or the user data', () => {
    const text = JSON.parse(JSON.stringify(JSON.stringify(s.json))) as string;
    expect(text).not.toMatch(/\b(AKIA|ASIA)[0-9A-Z]{16}\b/);
    expect(text).not.toMatch(/(secret_?access_?key|session_?token)\\*["']?\s*[=:]\s*\\*["']?[A-Za-z0-9/+]{16,}/i);
    expect(text).not.toMatch(/-----BEGIN [A-Z ]*PRIVATE KEY-----/);
    expect(text).not.toMatch(/password\\*["']?\s*[=:]/i);
    // The user data is the bootstrap, rendered into locals: the only credentials it uses are the instance role's, from IMDSv2.
    const bootstraps = Object.values<string>(s.json.locals ?? {});
    expect(bootstraps.length).toBe(2);
    for (const b of bootstraps) {
      expect(b).toMatch(/iam\/security-credentials\//);
      expect(b).toMatch(/x-aws-ec2-metadata-token/i);
    }
  });

  it('can encrypt the topic with a customer key that both guards may use, and only them', () => {
    const topics = resources('aws_sns_topic');
    const p = topics.find(([n]) => n.includes('PolicyP'))![1];
    const q = topics.find(([n]) => n.includes('PolicyQ'))![1];
    expect(p.kms_master_key_id).toBe(TOPIC_KEY);
    expect(q.kms_master_key_id).toBeUndefined();
    for (const role of [s.arns.pAgent, s.arns.pWatchdog]) {
      const statements = s.roles.get(role)!.flatMap((x) => x.policy.Statement);
      const kms = statements.filter((st: any) => (st.Resource as string[]).includes(TOPIC_KEY));
      expect(kms.flatMap((st: any) => st.Action).sort()).toEqual(['kms:Decrypt', 'kms:GenerateDataKey*']);
    }
    for (const role of [s.arns.qAgent, s.arns.qWatchdog]) expect(JSON.stringify(s.roles.get(role))).not.toContain('kms:');
  });

  it("sets a retention on the watchdog's log group, created before the function (which would otherwise create one that never expires)", () => {
    const groups = resources('aws_cloudwatch_log_group');
    expect(groups.length).toBe(2);
    for (const [, g] of groups) expect(g.retention_in_days).toBe(30);
    for (const [, f] of resources('aws_lambda_function')) expect(JSON.stringify(f.depends_on)).toMatch(/aws_cloudwatch_log_group\./);
  });

  it('keeps the agent artifact bucket private, encrypted and TLS-only', () => {
    for (const [, b] of resources('aws_s3_bucket_public_access_block')) {
      expect(b).toMatchObject({
        block_public_acls: true,
        block_public_policy: true,
        ignore_public_acls: true,
        restrict_public_buckets: true,
      });
    }
    expect(resources('aws_s3_bucket_server_side_encryption_configuration').length).toBe(resources('aws_s3_bucket').length);
    const policies = [...s.documents.entries()].filter(([n]) => /ArtifactBucketPolicy/.test(n)).map(([, d]) => d);
    expect(policies.length).toBe(2);
    for (const d of policies)
      expect(d.Statement).toEqual(
        expect.arrayContaining([expect.objectContaining({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': ['false'] } } })]),
      );
  });
});
