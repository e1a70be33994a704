/**
 * The demo's own stack: the demo policy and its three instances, declared with the
 * library's constructs exactly as a user would, and synthesized to Terraform JSON. The
 * demo then "applies" that JSON to the local cloud (apply.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { App, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import type { Construct } from 'constructs';
import { SelfManagedInstance, SelfManagementPolicy } from '../../constructs';
import type { PolicyDocument } from '../../lambda-agent/policy/model';

export const DEMO_STACK = 'demo';
/** An image id moto knows (moto accepts RunInstances only with one of its own AMIs). */
export const DEMO_AMI = 'ami-12c6146b';

/** The three demo instances, by construct id. */
export const DEMO_INSTANCES = {
  A: 'a developer box with a live agent',
  B: 'a box whose agent never started',
  C: 'a box without an agent, soft rules snoozed',
} as const;
export type InstanceLabel = keyof typeof DEMO_INSTANCES;

export interface DemoStackProps {
  readonly region: string;
  readonly policy: PolicyDocument;
  /** ARN of the SQS queue the demo reads events from (subscribed with raw delivery). */
  readonly queueArn: string;
}

export class DemoStack extends TerraformStack {
  readonly policy: SelfManagementPolicy;
  readonly instances: Record<InstanceLabel, SelfManagedInstance>;

  constructor(scope: Construct, id: string, props: DemoStackProps) {
    super(scope, id);
    new AwsProvider(this, 'Aws', { region: props.region });
    this.policy = new SelfManagementPolicy(this, 'Policy', {
      policy: props.policy,
      subscriptions: [{ protocol: 'sqs', endpoint: props.queueArn, rawMessageDelivery: true, id: 'DemoQueue' }],
    });
    const make = (label: InstanceLabel) =>
      new SelfManagedInstance(this, label, {
        policy: this.policy,
        ami: DEMO_AMI,
        instanceType: 't3.micro',
        tags: { Name: `demo-${label.toLowerCase()}` },
      });
    this.instances = { A: make('A'), B: make('B'), C: make('C') };
  }
}

/** A Terraform JSON resource block: type → name → config. */
export type TfResources = Record<string, Record<string, Record<string, unknown>>>;

export interface SynthesizedDemo {
  /** Directory of the stack (`cdk.tf.json` and its `assets/`). */
  readonly stackDir: string;
  readonly resources: TfResources;
  /** Construct path of each instance resource → its label. */
  readonly labels: Record<string, InstanceLabel>;
}

/** Synthesizes the demo stack into `outdir` and reads the Terraform JSON back. */
export function synthDemoStack(outdir: string, props: DemoStackProps): SynthesizedDemo {
  const app = new App({ outdir });
  const stack = new DemoStack(app, DEMO_STACK, props);
  app.synth();
  const stackDir = path.join(outdir, 'stacks', DEMO_STACK);
  const tf = JSON.parse(fs.readFileSync(path.join(stackDir, 'cdk.tf.json'), 'utf8')) as { resource?: TfResources };
  const labels: Record<string, InstanceLabel> = {};
  for (const label of Object.keys(stack.instances) as InstanceLabel[]) labels[`${DEMO_STACK}/${label}/Resource`] = label;
  return { stackDir, resources: tf.resource ?? {}, labels };
}
