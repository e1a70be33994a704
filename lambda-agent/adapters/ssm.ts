/**
 * SSM adapter of the watchdog: reads the policy document from its parameter (once per
 * invocation; a new policy version is picked up by the next cycle).
 */
import { GetParameterCommand } from '@aws-sdk/client-ssm';
import { isTransientError, type AwsClient } from './ec2';

export class ParameterReadError extends Error {
  constructor(
    readonly parameter: string,
    message: string,
    options?: { cause?: unknown },
    /** The read failed for a transient reason (throttling, 5xx, timeout, network): retry it, the parameter is not at fault. */
    readonly transient = false,
  ) {
    super(message, options);
    this.name = 'ParameterReadError';
  }
}

/**
 * The parameter's value; throws {@link ParameterReadError} when it cannot be read, with
 * `transient` set when the failure is not the parameter's (throttling, 5xx, timeout).
 */
export async function readParameter(ssm: AwsClient, name: string): Promise<string> {
  let out;
  try {
    out = await ssm.send(new GetParameterCommand({ Name: name, WithDecryption: true }));
  } catch (e) {
    const code = (e as { name?: string }).name ?? 'Error';
    if (isTransientError(e)) {
      throw new ParameterReadError(
        name,
        `policy: parameter '${name}' cannot be read for now (${code}: ${(e as Error).message})`,
        { cause: e },
        true,
      );
    }
    throw new ParameterReadError(
      name,
      `policy: parameter '${name}' cannot be read (${code}: ${(e as Error).message}). Check the parameter exists and the watchdog may ssm:GetParameter it.`,
      { cause: e },
    );
  }
  const value = out.Parameter?.Value;
  if (typeof value !== 'string' || value === '') throw new ParameterReadError(name, `policy: parameter '${name}' is empty`);
  return value;
}
