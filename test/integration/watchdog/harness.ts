/**
 * Harness for the watchdog's integration tests: SDK clients against the file's moto,
 * a manual clock, the policy in SSM, an SNS topic read back through SQS, captured log
 * lines, and the trigger events in the shapes EventBridge documents (moto fires none).
 */
import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { EC2Client } from '@aws-sdk/client-ec2';
import { PricingClient } from '@aws-sdk/client-pricing';
import { SNSClient } from '@aws-sdk/client-sns';
import { SQSClient } from '@aws-sdk/client-sqs';
import { PutParameterCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { AwsClient } from '../../../lambda-agent/adapters/ec2';
import { POLICY_ID_ENV_VAR, POLICY_PARAMETER_ENV_VAR, TOPIC_ARN_ENV_VAR, policyParameterName } from '../../../lambda-agent/contract/env';
import { createLogger } from '../../../lambda-agent/log';
import type { PolicyDocument } from '../../../lambda-agent/policy/model';
import { createWatchdog, type Watchdog, type WatchdogDeps, type WatchdogResult } from '../../../lambda-agent/watchdog/watchdog';
import { countCalls, createEventQueue, readEvents, type CallCounts, type EventQueue, type ReceivedEvent } from '../../support/fleet';
import type { MotoServer } from '../../support/moto';

export const SEC = 1000;
export const MIN = 60 * SEC;
export const HOUR = 60 * MIN;
export const DAY = 24 * HOUR;

/**
 * A start time for the manual clock: after every launch in this run, and away from the
 * hour and 5/10-minute slot starts (so no usage event and no metric read happens
 * unless a test moves the clock there).
 */
export function clockStart(): number {
  const hour = Date.now() - (Date.now() % HOUR);
  return hour + 2 * HOUR + 23 * MIN + 17 * SEC;
}

export class ManualClock {
  constructor(public t: number) {}
  now(): number {
    return this.t;
  }
  advance(ms: number): number {
    this.t += ms;
    return this.t;
  }
}

import { scheduledEvent, stateChangeEvent } from '../../support/eventbridge';

export { scheduledEvent, stateChangeEvent };

export interface Harness {
  readonly ec2: EC2Client;
  readonly sns: SNSClient;
  readonly sqs: SQSClient;
  readonly ssm: SSMClient;
  readonly cloudwatch: CloudWatchClient;
  readonly pricing: PricingClient;
  readonly clock: ManualClock;
  readonly queue: EventQueue;
  /** Calls of the EC2, SNS, CloudWatch and SSM clients, counted by a middleware. */
  readonly calls: CallCounts;
  readonly logs: Array<Record<string, any>>;
  readonly env: Record<string, string>;
  putPolicy(doc: PolicyDocument | Record<string, unknown> | string, policyId?: string): Promise<void>;
  /** A watchdog over these clients (override any port). */
  watchdog(overrides?: Partial<WatchdogDeps>): Watchdog;
  /** A schedule run at the clock's time. */
  schedule(w?: Watchdog): Promise<WatchdogResult>;
  stateChange(instanceId: string, state: string, w?: Watchdog): Promise<WatchdogResult>;
  /** Events delivered since the last read. */
  events(): Promise<ReceivedEvent[]>;
}

export interface HarnessOptions {
  readonly policyId: string;
  /** Pricing endpoint (a loopback pricing server). */
  readonly pricingEndpoint?: string;
  readonly env?: Record<string, string>;
}

export async function createHarness(moto: MotoServer, opts: HarnessOptions): Promise<Harness> {
  const cfg = moto.sdkConfig();
  const ec2 = new EC2Client(cfg);
  const sns = new SNSClient(cfg);
  const sqs = new SQSClient(cfg);
  const ssm = new SSMClient(cfg);
  const cloudwatch = new CloudWatchClient(cfg);
  const pricing = new PricingClient({ ...cfg, endpoint: opts.pricingEndpoint ?? 'http://127.0.0.1:9' });
  const calls = countCalls(ec2, sns, cloudwatch, ssm);
  const queue = await createEventQueue(sns, sqs);
  const clock = new ManualClock(clockStart());
  const logs: Array<Record<string, any>> = [];
  const logger = createLogger({
    service: 'smvm-watchdog',
    level: 'debug',
    sink: (line) => logs.push(JSON.parse(line)),
    clock: () => clock.now(),
  });
  const env: Record<string, string> = {
    [POLICY_ID_ENV_VAR]: opts.policyId,
    [POLICY_PARAMETER_ENV_VAR]: policyParameterName(opts.policyId),
    [TOPIC_ARN_ENV_VAR]: queue.topicArn,
    AWS_REGION: moto.region,
    ...(opts.env ?? {}),
  };
  const base: WatchdogDeps = { ec2, sns, ssm, cloudwatch, pricing, clock, env, logger };
  let current: Watchdog | undefined;
  const harness: Harness = {
    ec2,
    sns,
    sqs,
    ssm,
    cloudwatch,
    pricing,
    clock,
    queue,
    calls,
    logs,
    env,
    async putPolicy(doc, policyId = opts.policyId) {
      await ssm.send(
        new PutParameterCommand({
          Name: policyParameterName(policyId),
          Value: typeof doc === 'string' ? doc : JSON.stringify(doc),
          Type: 'String',
          Overwrite: true,
        }),
      );
    },
    watchdog(overrides = {}) {
      return createWatchdog({ ...base, ...overrides });
    },
    schedule(w) {
      current ??= harness.watchdog();
      return (w ?? current).handle(scheduledEvent(clock.now()));
    },
    stateChange(instanceId, state, w) {
      current ??= harness.watchdog();
      return (w ?? current).handle(stateChangeEvent(instanceId, state, clock.now()));
    },
    events: () => readEvents(sqs, queue),
  };
  return harness;
}

/** The cycle report of a result (fails the test if the run was not a cycle). */
export function cycleOf(r: WatchdogResult) {
  if (r.outcome !== 'cycle') throw new Error(`expected a cycle, got: ${JSON.stringify(r)}`);
  return r.report;
}

export type { AwsClient };
