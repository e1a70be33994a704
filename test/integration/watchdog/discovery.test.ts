/**
 * Discovery: the watchdog acts only on instances tagged with its own policy id, in a
 * managed state, and every describe it makes carries the policy filter.
 */
import { TerminateInstancesCommand } from '@aws-sdk/client-ec2';
import { MESSAGE_ATTRIBUTES } from '../../../lambda-agent/contract/events';
import { POLICY_TAG, STATE_TAG } from '../../../lambda-agent/contract/tags';
import { describeAll, runFleet, stateOf, tagsOf } from '../../support/fleet';
import { useMoto } from '../../support/moto';
import { createHarness, cycleOf } from './harness';

const moto = useMoto();

describe('watchdog discovery', () => {
  it('acts on its own policy only: not on a prefix-sharing id, another policy, unmanaged or terminated instances', async () => {
    // GIVEN a mixed fleet and a policy 'dev' whose lifetime limit all its instances exceed
    const h = await createHarness(moto, { policyId: 'dev' });
    await h.putPolicy({ id: 'dev', rules: [{ rule: 'lifetime', max: '1h', action: 'stop' }] });
    const dev = await runFleet(h.ec2, { count: 3, policyId: 'dev' });
    const dev2 = await runFleet(h.ec2, { count: 2, policyId: 'dev-2' });
    const devPrefix = await runFleet(h.ec2, { count: 1, policyId: 'de' });
    const upper = await runFleet(h.ec2, { count: 1, policyId: 'DEV' });
    const other = await runFleet(h.ec2, { count: 2, policyId: 'other' });
    const unmanaged = await runFleet(h.ec2, { count: 2, policyId: null, tags: { Name: 'dev' } });
    const gone = await runFleet(h.ec2, { count: 1, policyId: 'dev' });
    await h.ec2.send(new TerminateInstancesCommand({ InstanceIds: gone }));
    h.calls.reset();

    // WHEN one schedule run happens
    const report = cycleOf(await h.schedule());
    const cycleCalls = [...h.calls.calls];
    const cycleCounts = { ...h.calls.counts };

    // THEN exactly the three 'dev' instances are stopped and tagged
    expect(report.instances).toBe(3);
    expect(report.actions.map((a) => a.instanceId).sort()).toEqual([...dev].sort());
    const all = await describeAll(h.ec2, [...dev, ...dev2, ...devPrefix, ...upper, ...other, ...unmanaged, ...gone]);
    for (const id of dev) {
      expect(stateOf(all.get(id))).toBe('stopped');
      expect(tagsOf(all.get(id))[STATE_TAG]).toMatch(/^v=1;s=running;/);
    }
    for (const id of [...dev2, ...devPrefix, ...upper, ...other, ...unmanaged]) {
      expect(stateOf(all.get(id))).toBe('running');
      expect(Object.keys(tagsOf(all.get(id))).filter((k) => k !== POLICY_TAG && k.startsWith('smvm:'))).toEqual([]);
    }
    expect(stateOf(all.get(gone[0]))).toBe('terminated');
    expect(tagsOf(all.get(gone[0]))[STATE_TAG]).toBeUndefined();

    // AND every describe was filtered on the exact policy id and the managed states
    const describes = cycleCalls.filter((c) => c.op === 'DescribeInstances');
    expect(describes.length).toBeGreaterThan(0);
    for (const d of describes) {
      expect(d.input.Filters).toEqual(
        expect.arrayContaining([
          { Name: 'tag:smvm:policy', Values: ['dev'] },
          { Name: 'instance-state-name', Values: ['pending', 'running', 'stopping', 'stopped'] },
        ]),
      );
    }
    // AND the actions were batched: one StopInstances call for the three
    expect(cycleCounts.StopInstances).toBe(1);
    expect(cycleCalls.find((c) => c.op === 'StopInstances')!.input.InstanceIds.sort()).toEqual([...dev].sort());

    // AND each stop was announced once, with the message attributes for filter policies
    const events = await h.events();
    const stopped = events.filter((e) => e.event.type === 'stopped');
    expect(stopped.map((e) => e.event.instanceId).sort()).toEqual([...dev].sort());
    for (const e of stopped) {
      expect(e.event.policyId).toBe('dev');
      expect(e.event.source).toBe('watchdog');
      expect(e.event.severity).toBe('critical');
      expect(Object.keys(e.attributes).sort()).toEqual([...MESSAGE_ATTRIBUTES].sort());
      expect(e.attributes).toEqual({ eventType: 'stopped', policyId: 'dev', instanceId: e.event.instanceId, severity: 'critical' });
    }
  });

  it('ignores an instance whose policy tag differs even when it is described (the tag is checked again in code)', async () => {
    const { observeInstance } = await import('../../../lambda-agent/adapters/observe');
    const h = await createHarness(moto, { policyId: 'dev' });
    const [id] = await runFleet(h.ec2, { count: 1, policyId: 'dev-2' });
    const inst = (await describeAll(h.ec2, [id])).get(id)!;
    const o = observeInstance(inst, 'dev');
    expect(o.kind).toBe('ignored');
    expect(observeInstance(inst, 'dev-2').kind).toBe('ok');
  });
});
