/**
 * A 1,000-instance fleet in moto: one cycle acts on the instances over their limit in
 * one batched call and leaves the rest untouched; the next cycle records the
 * transitions and writes nothing else (the steady state at small scale is in
 * events.test.ts).
 */
import { encodeCheckpoint } from '../../../lambda-agent/contract/state';
import { STATE_TAG } from '../../../lambda-agent/contract/tags';
import { runFleet } from '../../support/fleet';
import { useMoto } from '../../support/moto';
import { createHarness, cycleOf, DAY, HOUR, MIN } from './harness';

const moto = useMoto();

describe('watchdog at 1,000 instances', () => {
  it('runs a cycle over 1,000 instances: one describe page, one stop call for the 100 over the limit, no write for the others', async () => {
    const h = await createHarness(moto, { policyId: 'fleet' });
    await h.putPolicy({
      id: 'fleet',
      rules: [
        { rule: 'lifetime', max: '2d', action: 'stop' },
        { rule: 'running-time', max: '40h', action: 'stop' },
      ],
    });
    const now = h.clock.now();
    const young = encodeCheckpoint({ state: 'running', since: now - 5 * HOUR, firstSeen: now - 5 * HOUR, runningMs: 0, spendUsd: 0 });
    const old = encodeCheckpoint({ state: 'running', since: now - 5 * HOUR, firstSeen: now - 3 * DAY, runningMs: 10 * HOUR, spendUsd: 0 });
    const ok = await runFleet(h.ec2, { count: 900, policyId: 'fleet', tags: { [STATE_TAG]: young } });
    const over = await runFleet(h.ec2, { count: 100, policyId: 'fleet', tags: { [STATE_TAG]: old } });
    h.calls.reset();

    const started = Date.now();
    const r = cycleOf(await h.schedule());
    const ms = Date.now() - started;
    expect(r.instances).toBe(1000);
    expect(r.pages).toBe(1);
    expect(r.actions).toHaveLength(100);
    expect(new Set(r.actions.map((a) => a.instanceId))).toEqual(new Set(over));
    expect(h.calls.counts).toEqual({ GetParameter: 1, DescribeInstances: 1, StopInstances: 1, CreateTags: 200, Publish: 100 });
    expect(ms).toBeLessThan(30_000);

    h.clock.advance(MIN);
    h.calls.reset();
    const r2 = cycleOf(await h.schedule()); // records the 100 transitions to stopped, nothing else
    expect(r2.instances).toBe(1000);
    expect(r2.transitions).toBe(0); // caused by the watchdog's own stop: already announced
    expect(h.calls.counts).toEqual({ GetParameter: 1, DescribeInstances: 1, CreateTags: 100 });
    expect(ok).toHaveLength(900);
  }, 90_000);
});
