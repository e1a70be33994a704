/**
 * Batch workers: each worker runs one job (`batch.service`) and is terminated two
 * minutes after the job finishes, or 12 hours after it was first started, whichever
 * comes first.
 */
import { Construct } from 'constructs';
import { SelfManagedInstance, SelfManagementPolicy } from '../constructs';
import { ExampleStack, type ExampleStackProps } from './common';

export interface BatchWorkersStackProps extends ExampleStackProps {
  /**
   * Number of workers.
   * @default 3
   */
  readonly workers?: number;
}

const JOB_UNIT = [
  '#cloud-config',
  'write_files:',
  '  - path: /etc/systemd/system/batch.service',
  '    content: |',
  '      [Unit]',
  '      Description=The batch job of this worker',
  '      [Service]',
  '      Type=oneshot',
  '      ExecStart=/usr/local/bin/run-batch-job',
  'runcmd:',
  '  - [systemctl, daemon-reload]',
  '  - [systemctl, start, --no-block, batch.service]',
  '',
].join('\n');

export class BatchWorkersStack extends ExampleStack {
  readonly policy: SelfManagementPolicy;
  readonly workers: readonly SelfManagedInstance[];

  constructor(scope: Construct, id: string, props: BatchWorkersStackProps = {}) {
    super(scope, id, props);
    this.policy = new SelfManagementPolicy(this, 'Policy', {
      policy: {
        id: 'batch-workers',
        description: 'Batch workers: terminate when the job is done, or after 12 hours',
        rules: [
          { rule: 'task-completion', unit: 'batch.service', after: '2m', action: 'terminate' },
          { rule: 'lifetime', max: '12h', action: 'terminate', warnBefore: '30m' },
          { rule: 'heartbeat-lost', action: 'terminate' },
        ],
      },
    });
    const ami = this.amazonLinux();
    this.workers = Array.from(
      { length: props.workers ?? 3 },
      (_, i) =>
        new SelfManagedInstance(this, `Worker${i + 1}`, {
          policy: this.policy,
          ami,
          instanceType: 'c6i.xlarge',
          tags: { Name: `batch-worker-${i + 1}` },
          userData: JOB_UNIT,
        }),
    );
  }
}
