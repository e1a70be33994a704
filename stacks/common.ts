/**
 * What every example stack shares: the AWS provider, a local backend with a relative
 * state path (so cdk.tf.json holds no absolute path of the machine it was synthesized
 * on), and the AMI looked up from AWS's public parameter at plan time.
 */
import { Construct } from 'constructs';
import { LocalBackend, TerraformStack } from 'cdktf';
import { AwsProvider } from '@cdktf/provider-aws/lib/provider';
import { DataAwsSsmParameter } from '@cdktf/provider-aws/lib/data-aws-ssm-parameter';

export interface ExampleStackProps {
  /**
   * AWS region of the stack.
   * @default 'eu-west-1'
   */
  readonly region?: string;
}

export abstract class ExampleStack extends TerraformStack {
  constructor(scope: Construct, id: string, props: ExampleStackProps = {}) {
    super(scope, id);
    new AwsProvider(this, 'Aws', { region: props.region ?? 'eu-west-1' });
    new LocalBackend(this, { path: `terraform.${id}.tfstate` });
  }

  /** Amazon Linux 2023 (x86_64), resolved at plan time from AWS's public SSM parameter. */
  protected amazonLinux(id = 'AmazonLinux'): string {
    return new DataAwsSsmParameter(this, id, { name: '/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-x86_64' }).value;
  }
}
