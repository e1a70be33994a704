/** IAM actions each action needs. */
import type { ActionName } from '../contract/event-core';

const BY_ACTION: Record<ActionName, string[]> = {
  notify: [],
  stop: ['ec2:StopInstances'],
  hibernate: ['ec2:StopInstances'],
  reboot: ['ec2:RebootInstances'],
  terminate: ['ec2:TerminateInstances'],
  start: ['ec2:StartInstances'],
};

export function actionPermissions(...actions: Array<ActionName | undefined>): string[] {
  const out = new Set<string>();
  for (const a of actions) if (a) for (const p of BY_ACTION[a]) out.add(p);
  return [...out].sort();
}
