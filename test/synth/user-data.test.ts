import 'cdktf/lib/testing/adapters/jest';
import { spawnSync } from 'node:child_process';
import * as crypto from 'node:crypto';
import { Testing } from 'cdktf';
import type { Construct } from 'constructs';
import { DataAwsSsmParameter } from '@cdktf/provider-aws/lib/data-aws-ssm-parameter';
import { SelfManagedInstance, ValidationError, type SelfManagementPolicy } from '../../constructs';
import { renderBootstrap } from '../../lambda-agent/contract/bootstrap';
import { agentArtifactParameterName, policyParameterName } from '../../lambda-agent/contract';
import { ACCOUNT, REGION, gunzip, mimeParts, one, parse, testPolicy, userDataBytes, type Synthesized } from './support/synth';

Testing.setupJest();

const SCRIPT = '#!/bin/bash\nset -eu\necho "hello ${USER:-nobody} from $(hostname)"\n';

function synth(
  userData: string | ((scope: Construct) => string) | undefined,
  extra?: (scope: Construct, policy: SelfManagementPolicy) => void,
): Synthesized {
  return parse(
    Testing.synthScope((scope) => {
      const policy = testPolicy(scope);
      new SelfManagedInstance(scope, 'Box', {
        policy,
        ami: 'ami-0123456789abcdef0',
        instanceType: 't3.large',
        ...(userData === undefined ? {} : { userData: typeof userData === 'function' ? userData(scope) : userData }),
      });
      extra?.(scope, policy);
    }),
  );
}

/** The MIME document the instance receives (Terraform's base64gzip evaluated, then gunzipped). */
function document(s: Synthesized): string {
  return gunzip(userDataBytes(s, one(s, 'aws_instance').user_data_base64));
}

const expectedBootstrap = () =>
  renderBootstrap({
    policyId: 'dev',
    region: REGION,
    topicArn: `arn:aws:sns:${REGION}:${ACCOUNT}:smvm-dev`,
    policyParameter: policyParameterName('dev'),
    artifactParameter: agentArtifactParameterName('dev'),
  });

describe('user data', () => {
  it('is gzipped MIME multipart: your part first, then the agent bootstrap', () => {
    // GIVEN an instance with a shell script of its own
    const s = synth(SCRIPT);
    // WHEN Terraform computes the user data
    const bytes = userDataBytes(s, one(s, 'aws_instance').user_data_base64);
    // THEN it is gzip, and inside, two well-formed parts in order
    expect(bytes.subarray(0, 2)).toEqual(Buffer.from([0x1f, 0x8b]));
    const { headers, parts } = mimeParts(gunzip(bytes));
    expect(headers['content-type']).toMatch(/^multipart\/mixed; boundary="[^"]+"$/);
    expect(headers['mime-version']).toBe('1.0');
    expect(parts.map((p) => [p.contentType, p.filename])).toEqual([
      ['text/x-shellscript', '10-user-data'],
      ['text/x-shellscript', '90-smvm-agent-bootstrap'],
    ]);
    expect(parts[0].body).toBe(SCRIPT);
    expect(parts[1].body).toBe(expectedBootstrap());
  });

  it('is read the same way by an independent MIME parser (Python email)', () => {
    const raw = document(synth(SCRIPT));
    const judge = spawnSync(
      'python3',
      [
        '-c',
        [
          'import email, json, sys',
          'from email import policy',
          'm = email.message_from_bytes(sys.stdin.buffer.read(), policy=policy.compat32)',
          'parts = [p for p in m.walk() if not p.is_multipart()]',
          'print(json.dumps({"multipart": m.is_multipart(), "type": m.get_content_type(), "defects": [str(d) for d in m.defects] + [str(d) for p in parts for d in p.defects],',
          '  "parts": [[p.get_content_type(), p.get_filename(), p.get_payload(decode=True).decode("utf-8")] for p in parts]}))',
        ].join('\n'),
      ],
      { input: Buffer.from(raw, 'utf8'), encoding: 'utf8' },
    );
    expect(judge.stderr).toBe('');
    expect(JSON.parse(judge.stdout)).toEqual({
      multipart: true,
      type: 'multipart/mixed',
      defects: [],
      parts: [
        ['text/x-shellscript', '10-user-data', SCRIPT],
        ['text/x-shellscript', '90-smvm-agent-bootstrap', expectedBootstrap()],
      ],
    });
  });

  it('reaches the instance byte for byte, whatever the script contains', () => {
    // Terraform template sequences, HCL escapes, quotes, braces, tabs, CR and non-ASCII text
    const tricky = '#!/bin/bash\necho "${HOME}" \'%{ if x }\' $${LIT} %%{y} \\n \\"q\\" {a} }{ \t tab\r\ncafé ☕ \u0001\n';
    const { parts } = mimeParts(document(synth(tricky)));
    expect(parts[0].body).toBe(tricky);
  });

  it('marks a #cloud-config part and merges it with the bootstrap instead of replacing', () => {
    const config = '#cloud-config\npackages:\n  - git\nruncmd:\n  - [echo, hi]\n';
    const { parts } = mimeParts(document(synth(config)));
    expect(parts[0]).toMatchObject({ contentType: 'text/cloud-config', body: config });
    expect(parts[0].headers['merge-type']).toBe('list(append)+dict(no_replace,recurse_list)+str()');
  });

  it('nests user data that is already MIME multipart', () => {
    const inner = [
      'Content-Type: multipart/mixed; boundary="inner"',
      'MIME-Version: 1.0',
      '',
      '--inner',
      'Content-Type: text/x-shellscript',
      '',
      '#!/bin/sh',
      'echo inner',
      '--inner--',
      '',
    ].join('\n');
    const { parts } = mimeParts(document(synth(inner)));
    expect(parts[0].contentType).toBe('multipart/mixed');
    expect(parts[0].body).toBe(['--inner', 'Content-Type: text/x-shellscript', '', '#!/bin/sh', 'echo inner', '--inner--', ''].join('\n'));
  });

  it('fills in values known only at apply time', () => {
    const s = synth((scope) => `#!/bin/bash\necho ${new DataAwsSsmParameter(scope, 'Greeting', { name: '/greeting' }).value}\n`);
    const { parts } = mimeParts(document(s));
    expect(parts[0].body).toBe('#!/bin/bash\necho ami-0123456789abcdef0\n');
  });

  it('holds only the bootstrap without user data of your own', () => {
    const { parts } = mimeParts(document(synth(undefined)));
    expect(parts.map((p) => p.filename)).toEqual(['90-smvm-agent-bootstrap']);
  });

  it('keeps the bootstrap once per policy, in a Terraform local every instance refers to', () => {
    const s = parse(
      Testing.synthScope((scope) => {
        const policy = testPolicy(scope);
        for (const id of ['A', 'B', 'C'])
          new SelfManagedInstance(scope, id, { policy, ami: 'ami-1', instanceType: 't3.micro', userData: SCRIPT });
      }),
    );
    expect(Object.keys(s.locals)).toEqual([expect.stringMatching(/^Policy_Bootstrap_/)]);
    const bootstrapRef = `\${local.${Object.keys(s.locals)[0]}}`;
    for (const i of Object.values(s.resource.aws_instance)) expect(i.user_data_base64).toContain(bootstrapRef);
    expect(one(s, 'aws_instance', 'A').user_data_base64).toBe(one(s, 'aws_instance', 'B').user_data_base64);
  });

  describe('validation', () => {
    const deterministicNoise = (bytes: number) => {
      let out = '';
      for (let i = 0; out.length < bytes; i++) out += crypto.createHash('sha512').update(String(i)).digest('base64');
      return out.slice(0, bytes);
    };

    it('fails when the gzipped user data exceeds 16 KB, naming both sizes', () => {
      const big = `#!/bin/bash\n: '${deterministicNoise(20_000)}'\n`;
      let error: unknown;
      try {
        synth(big);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ValidationError);
      const message = (error as Error).message;
      // The sizes depend on the bootstrap's length (owned by the agent); the wording is pinned without them.
      const [limit, raw, gzipped] = [...message.matchAll(/([\d,]+) bytes/g)].map((m) => Number(m[1].replace(/,/g, '')));
      expect(limit).toBe(16_384);
      expect(raw).toBeGreaterThan(20_000);
      expect(gzipped).toBeGreaterThan(16 * 1024);
      expect(message.replace(/[\d,]+(?= bytes)/g, 'N')).toMatchInlineSnapshot(
        `"stack/Box: 'userData' makes the instance's user data too large for EC2, which accepts at most N bytes (before base64), got: N bytes as MIME multipart, N bytes gzipped. Move large files to S3 (or an SSM parameter) and fetch them from your script."`,
      );
    });

    it('accepts large user data that compresses under the limit', () => {
      const { parts } = mimeParts(document(synth(`#!/bin/bash\n${'echo this line repeats\n'.repeat(2000)}`)));
      expect(parts[0].body.length).toBeGreaterThan(40_000);
    });

    it('fails on user data cloud-init would not recognize', () => {
      expect(() => synth('echo no shebang')).toThrowErrorMatchingInlineSnapshot(
        `"stack/Box: 'userData' must start with a line cloud-init recognizes: '#!' (script), '#cloud-config', '#include', '#cloud-boothook', '## template: jinja' or a MIME 'Content-Type:' header, got: "echo no shebang". Add the right first line, e.g. '#!/bin/bash'."`,
      );
    });

    it('fails on user data that contains the MIME boundary', () => {
      expect(() => synth('#!/bin/sh\necho ==smvm-user-data-boundary-5d2f0c==\n')).toThrowErrorMatchingInlineSnapshot(
        `"stack/Box: 'userData' contains the MIME boundary '==smvm-user-data-boundary-5d2f0c==' that separates it from the agent bootstrap, got: "==smvm-user-data-boundary-5d2f0c==". Remove that line from your user data."`,
      );
    });
  });
});
