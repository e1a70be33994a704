import { AgentConfigError, loadAgentConfig } from '../../../lambda-agent/agent/config';

const DOC = {
  policyId: 'p',
  region: 'us-east-1',
  topicArn: 'arn:aws:sns:us-east-1:1:t',
  policyParameter: '/smvm/p/policy',
  artifactParameter: '/smvm/p/agent',
};

function reader(files: Record<string, string>) {
  return (path: string) => {
    if (!(path in files)) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
    return files[path];
  };
}

describe('loadAgentConfig', () => {
  it('reads agent.json and the management id from /etc/smvm, with production defaults', () => {
    const c = loadAgentConfig(
      {},
      reader({ '/etc/smvm/agent.json': JSON.stringify(DOC), '/etc/smvm/management-id': 'smvm-p-0123456789ab\n' }),
    );
    expect(c).toEqual({
      home: '/etc/smvm',
      ...DOC,
      stateDir: '/var/lib/smvm',
      utmpPath: '/run/utmp',
      systemctl: 'systemctl',
      procRoot: '/proc',
      imdsEndpoint: undefined,
      awsEndpoint: undefined,
      shutdownCommand: 'systemctl poweroff',
      sampleIntervalMs: undefined,
      logLevel: 'info',
      managementId: 'smvm-p-0123456789ab',
    });
  });

  it('honours the environment overrides', () => {
    const c = loadAgentConfig(
      {
        SMVM_HOME: '/tmp/h',
        SMVM_PROC_ROOT: '/tmp/proc',
        SMVM_IMDS_ENDPOINT: 'http://127.0.0.1:1',
        AWS_ENDPOINT_URL: 'http://127.0.0.1:2',
        SMVM_SHUTDOWN_COMMAND: 'touch /tmp/off',
        SMVM_SAMPLE_SECONDS: '2.5',
        SMVM_LOG_LEVEL: 'debug',
      },
      reader({ '/tmp/h/agent.json': JSON.stringify({ ...DOC, stateDir: '/tmp/s' }) }),
    );
    expect(c).toMatchObject({
      home: '/tmp/h',
      stateDir: '/tmp/s',
      procRoot: '/tmp/proc',
      imdsEndpoint: 'http://127.0.0.1:1',
      awsEndpoint: 'http://127.0.0.1:2',
      shutdownCommand: 'touch /tmp/off',
      sampleIntervalMs: 2500,
      logLevel: 'debug',
      managementId: undefined,
    });
  });

  it.each([
    ['a missing file', {}],
    ['a file that is not JSON', { '/etc/smvm/agent.json': '{' }],
    ['a missing field', { '/etc/smvm/agent.json': JSON.stringify({ ...DOC, topicArn: undefined }) }],
  ])('fails with a fix for %s', (_n, files) => {
    expect(() => loadAgentConfig({}, reader(files))).toThrow(AgentConfigError);
    expect(() => loadAgentConfig({}, reader(files))).toThrow(
      'agent: /etc/smvm/agent.json must hold policyId, region, topicArn and policyParameter; rerun the bootstrap',
    );
  });

  it('fails on a sampling interval that is not a number', () => {
    expect(() => loadAgentConfig({ SMVM_SAMPLE_SECONDS: 'often' }, reader({ '/etc/smvm/agent.json': JSON.stringify(DOC) }))).toThrow(
      'agent: SMVM_SAMPLE_SECONDS must be a number of seconds, got: often',
    );
  });
});
