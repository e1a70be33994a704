/**
 * A fleet from a launch template: an existing stack's launch template and auto scaling
 * group, adopted with one line (`Aspects.of(this).add(policy.aspect())`). Every instance
 * the group launches carries the policy's tags, the agent's instance profile and the
 * agent bootstrap after the template's own user data.
 */
import { Construct } from 'constructs';
import { Aspects, Fn } from 'cdktf';
import { AutoscalingGroup } from '@cdktf/provider-aws/lib/autoscaling-group';
import { DataAwsAvailabilityZones } from '@cdktf/provider-aws/lib/data-aws-availability-zones';
import { LaunchTemplate } from '@cdktf/provider-aws/lib/launch-template';
import { SelfManagementPolicy } from '../constructs';
import { ExampleStack, type ExampleStackProps } from './common';

export interface FleetStackProps extends ExampleStackProps {
  /**
   * Size of the group.
   * @default 4
   */
  readonly size?: number;
}

export class FleetStack extends ExampleStack {
  readonly policy: SelfManagementPolicy;
  readonly template: LaunchTemplate;
  readonly group: AutoscalingGroup;

  constructor(scope: Construct, id: string, props: FleetStackProps = {}) {
    super(scope, id, props);

    // What the existing stack already had.
    const zones = new DataAwsAvailabilityZones(this, 'Zones', { state: 'available' });
    this.template = new LaunchTemplate(this, 'WorkerTemplate', {
      namePrefix: 'fleet-worker-',
      imageId: this.amazonLinux(),
      instanceType: 'm6i.large',
      userData: Fn.base64encode(['#!/bin/bash', 'dnf install -y nginx', 'systemctl enable --now nginx', ''].join('\n')),
      tagSpecifications: [{ resourceType: 'instance', tags: { Name: 'fleet-worker', Team: 'web' } }],
    });
    this.group = new AutoscalingGroup(this, 'Workers', {
      namePrefix: 'fleet-',
      minSize: props.size ?? 4,
      maxSize: props.size ?? 4,
      availabilityZones: zones.names,
      launchTemplate: { id: this.template.id, version: '$Latest' },
    });

    // The one line that adopts it: health and over-use guards, idle scale-in by termination.
    this.policy = new SelfManagementPolicy(this, 'Policy', {
      policy: {
        id: 'fleet',
        description: 'Web fleet: reboot unhealthy workers, then replace them; terminate idle ones',
        rules: [
          { rule: 'health', window: '5m', action: 'reboot', escalate: { action: 'terminate', within: '1h' } },
          { rule: 'over-use', window: '15m', cpuPercentAbove: 95, action: 'notify' },
          { rule: 'idle', window: '2h', action: 'terminate', warnBefore: '10m' },
          { rule: 'heartbeat-lost', action: 'notify' },
        ],
      },
    });
    Aspects.of(this).add(this.policy.aspect());
  }
}
