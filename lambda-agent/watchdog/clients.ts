/**
 * The deployed watchdog's AWS clients: the SDK's standard configuration (region and
 * credentials from the Lambda environment; `AWS_ENDPOINT_URL` honoured), with bounded
 * retries. The SDK retries throttling errors (RequestLimitExceeded, Throttling, …),
 * 5xx and timeouts with exponential backoff and full jitter (base 100 ms, 500 ms for
 * throttling, capped at 20 s); `adaptive` mode also paces the client's own sending rate
 * after throttling, which matters for CreateTags (10 per second refill, shared with
 * the agents of the account and region).
 *
 * Every call has a deadline ({@link REQUEST_HANDLER}): without one the SDK waits on a
 * hung connection until Lambda's own timeout kills the run; with it a hung call fails
 * with a TimeoutError, which the retry strategy retries like a 5xx.
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { EC2Client } from '@aws-sdk/client-ec2';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { PricingClient } from '@aws-sdk/client-pricing';
import { SNSClient } from '@aws-sdk/client-sns';
import { SSMClient } from '@aws-sdk/client-ssm';
import type { WatchdogConfig } from './config';

/** Attempts per EC2 call (the first included). */
export const EC2_MAX_ATTEMPTS = 8;
/** Attempts per call of the other services. */
export const MAX_ATTEMPTS = 4;

/**
 * Deadlines of one attempt (ms): to connect, and for the whole request and response.
 * `throwOnRequestTimeout` makes a breached request timeout an error (the handler only
 * warns otherwise). Each client builds its own handler from these options.
 */
export const REQUEST_HANDLER = { connectionTimeout: 2_000, requestTimeout: 5_000, throwOnRequestTimeout: true } as const;

export function createAwsClients(config: Pick<WatchdogConfig, 'pricingRegion' | 'pricingEndpoint'>) {
  return {
    ec2: new EC2Client({ maxAttempts: EC2_MAX_ATTEMPTS, retryMode: 'adaptive', requestHandler: { ...REQUEST_HANDLER } }),
    sns: new SNSClient({ maxAttempts: MAX_ATTEMPTS, requestHandler: { ...REQUEST_HANDLER } }),
    ssm: new SSMClient({ maxAttempts: MAX_ATTEMPTS, requestHandler: { ...REQUEST_HANDLER } }),
    cloudwatch: new CloudWatchClient({ maxAttempts: MAX_ATTEMPTS, requestHandler: { ...REQUEST_HANDLER } }),
    pricing: new PricingClient({
      region: config.pricingRegion,
      maxAttempts: MAX_ATTEMPTS,
      requestHandler: { ...REQUEST_HANDLER },
      ...(config.pricingEndpoint ? { endpoint: config.pricingEndpoint } : {}),
    }),
    lambda: new LambdaClient({ maxAttempts: MAX_ATTEMPTS, requestHandler: { ...REQUEST_HANDLER } }),
  };
}
