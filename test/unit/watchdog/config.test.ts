import { readConfig } from '../../../lambda-agent/watchdog/config';

const base = { SMVM_POLICY_ID: 'dev', SMVM_TOPIC_ARN: 'arn:aws:sns:eu-west-1:1:t', AWS_REGION: 'eu-west-1' };

describe('readConfig', () => {
  it('reads the settings with their defaults', () => {
    expect(readConfig(base)).toEqual({
      policyId: 'dev',
      policyParameter: '/smvm/dev/policy',
      topicArn: 'arn:aws:sns:eu-west-1:1:t',
      shardCount: 1,
      region: 'eu-west-1',
      pricingRegion: 'us-east-1',
      scheduleIntervalMs: 60_000,
      logLevel: 'info',
    });
  });

  it.each([
    [{ SMVM_POLICY_ID: undefined }, 'Environment variable SMVM_POLICY_ID is required'],
    [{ SMVM_TOPIC_ARN: '' }, 'Environment variable SMVM_TOPIC_ARN is required'],
    [
      { SMVM_POLICY_ID: 'Dev Box' },
      'Environment variable SMVM_POLICY_ID must be a policy id (lower-case letters, digits, hyphens), got: "Dev Box"',
    ],
    [{ SMVM_SHARD_COUNT: '2.5' }, 'Environment variable SMVM_SHARD_COUNT must be an integer from 1 to 1000, got: "2.5"'],
    [{ SMVM_SHARD_COUNT: '4' }, 'Environment variable AWS_LAMBDA_FUNCTION_NAME is required when SMVM_SHARD_COUNT > 1'],
    [
      { SMVM_PRICING_REGION: 'eu-west-1' },
      'Environment variable SMVM_PRICING_REGION must be one of us-east-1, eu-central-1, ap-south-1, got: "eu-west-1"',
    ],
    [{ SMVM_SCHEDULE_SECONDS: 'often' }, 'Environment variable SMVM_SCHEDULE_SECONDS must be a number, got: "often"'],
  ])('fails for %j', (override, message) => {
    expect(() => readConfig({ ...base, ...override })).toThrow(message);
  });

  it('takes the shard count, function name, pricing endpoint and schedule interval', () => {
    expect(
      readConfig({
        ...base,
        SMVM_SHARD_COUNT: '4',
        AWS_LAMBDA_FUNCTION_NAME: 'wd',
        SMVM_PRICING_ENDPOINT: 'http://127.0.0.1:1',
        SMVM_SCHEDULE_SECONDS: '300',
        SMVM_LOG_LEVEL: 'DEBUG',
      }),
    ).toMatchObject({
      shardCount: 4,
      functionName: 'wd',
      pricingEndpoint: 'http://127.0.0.1:1',
      scheduleIntervalMs: 300_000,
      logLevel: 'debug',
    });
  });
});
