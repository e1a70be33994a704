/**
 * Developer boxes: one instance per developer that stops after 30 minutes of idleness
 * and outside office hours (Mon–Fri 08:00–19:00 Europe/Amsterdam, started again at the
 * open), stops at a $25 spend cap, and is terminated 7 days after it was first started.
 */
import { Construct } from 'constructs';
import { SelfManagedInstance, SelfManagementPolicy } from '../constructs';
import { ExampleStack, type ExampleStackProps } from './common';

export interface DeveloperBoxesStackProps extends ExampleStackProps {
  /**
   * One box per developer name.
   * @default ['alice', 'bob', 'carol']
   */
  readonly developers?: readonly string[];
  /**
   * Where events go.
   * @default 'platform-team@example.com'
   */
  readonly notifyEmail?: string;
}

export class DeveloperBoxesStack extends ExampleStack {
  readonly policy: SelfManagementPolicy;
  readonly boxes: readonly SelfManagedInstance[];

  constructor(scope: Construct, id: string, props: DeveloperBoxesStackProps = {}) {
    super(scope, id, props);
    this.policy = new SelfManagementPolicy(this, 'Policy', {
      policy: {
        id: 'developer-boxes',
        description: 'Developer boxes: idle stop, office hours, $25 cap, one-week life',
        rules: [
          { rule: 'idle', window: '30m', action: 'stop', warnBefore: '5m' },
          { rule: 'lifetime', max: '7d', action: 'terminate', warnBefore: '1d' },
          { rule: 'spend', maxUsd: 25, action: 'stop', warnBefore: '1h' },
          {
            rule: 'schedule',
            timezone: 'Europe/Amsterdam',
            windows: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00', end: '19:00' }],
            action: 'stop',
            warnBefore: '15m',
          },
        ],
      },
      subscriptions: [{ protocol: 'email', endpoint: props.notifyEmail ?? 'platform-team@example.com' }],
    });
    const ami = this.amazonLinux();
    this.boxes = (props.developers ?? ['alice', 'bob', 'carol']).map(
      (name) =>
        new SelfManagedInstance(this, `Box-${name}`, {
          policy: this.policy,
          ami,
          instanceType: 't3.large',
          rootBlockDevice: { volumeSize: 50, volumeType: 'gp3', encrypted: true },
          tags: { Name: `dev-${name}`, Owner: name },
          userData: ['#cloud-config', 'packages:', '  - git', '  - tmux', `hostname: dev-${name}`, ''].join('\n'),
        }),
    );
  }
}
