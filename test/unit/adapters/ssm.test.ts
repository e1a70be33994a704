import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { ParameterReadError, readParameter } from '../../../lambda-agent/adapters/ssm';

describe('readParameter', () => {
  it('reads the policy parameter (decrypted, for SecureString parameters)', async () => {
    const inputs: unknown[] = [];
    const ssm = {
      send: async (c: GetParameterCommand) => {
        inputs.push(c.input);
        return { Parameter: { Value: '{"id":"dev"}' } };
      },
    };
    expect(await readParameter(ssm, '/smvm/dev/policy')).toBe('{"id":"dev"}');
    expect(inputs).toEqual([{ Name: '/smvm/dev/policy', WithDecryption: true }]);
  });

  it('explains a parameter that cannot be read, keeping the cause', async () => {
    const cause = Object.assign(new Error('Parameter /smvm/dev/policy not found.'), { name: 'ParameterNotFound' });
    const ssm = {
      send: async () => {
        throw cause;
      },
    };
    const e = await readParameter(ssm, '/smvm/dev/policy').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ParameterReadError);
    expect((e as Error).message).toBe(
      "policy: parameter '/smvm/dev/policy' cannot be read (ParameterNotFound: Parameter /smvm/dev/policy not found.). Check the parameter exists and the watchdog may ssm:GetParameter it.",
    );
    expect((e as Error).cause).toBe(cause);
  });

  it('marks a transient failure (throttling, 5xx, timeout) as such, and a missing parameter not', async () => {
    const fail = (e: Error) =>
      readParameter({ send: async () => Promise.reject(e) }, '/p').then(
        () => undefined,
        (x: ParameterReadError) => x,
      );
    const throttled = Object.assign(new Error('Rate exceeded'), { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } });
    const unavailable = Object.assign(new Error('down'), { name: 'InternalServerError', $fault: 'server' });
    const timeout = Object.assign(new Error('timed out'), { name: 'TimeoutError' });
    const missing = Object.assign(new Error('not found'), { name: 'ParameterNotFound', $metadata: { httpStatusCode: 400 } });
    expect(await Promise.all([throttled, unavailable, timeout, missing].map(async (e) => (await fail(e))?.transient))).toEqual([
      true,
      true,
      true,
      false,
    ]);
  });

  it('refuses an empty parameter', async () => {
    await expect(readParameter({ send: async () => ({ Parameter: { Value: '' } }) }, '/p')).rejects.toThrow(
      "policy: parameter '/p' is empty",
    );
  });
});
