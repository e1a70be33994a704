/**
 * The spend rule with prices from the Price List API (served in AWS's documented
 * format by a loopback server: moto does not serve it), an explicit rate that
 * overrides it, and prices that are missing or malformed.
 */
import { encodeCheckpoint } from '../../../lambda-agent/contract/state';
import { STATE_TAG } from '../../../lambda-agent/contract/tags';
import { describeAll, runFleet, stateOf } from '../../support/fleet';
import { useMoto } from '../../support/moto';
import { startPricingServer, type PricingServer } from '../../support/pricing-server';
import { createHarness, cycleOf, HOUR, MIN } from './harness';

const moto = useMoto();
let prices: PricingServer;
beforeEach(async () => {
  prices = await startPricingServer({ prices: { 't3.micro': 0.5, 'm5.large': 'malformed', 'c5.xlarge': 'error' } });
});
afterEach(() => prices.close());

const running = (since: number) => encodeCheckpoint({ state: 'running', since, firstSeen: since, runningMs: 0, spendUsd: 0 });

describe('watchdog spend and prices', () => {
  it('stops at the spend cap using the on-demand price from the Price List API, asked once per instance type', async () => {
    const h = await createHarness(moto, { policyId: 'capped', pricingEndpoint: prices.endpoint });
    await h.putPolicy({ id: 'capped', rules: [{ rule: 'spend', maxUsd: 1, action: 'stop' }] });
    const T0 = h.clock.now();
    const ids = await runFleet(h.ec2, {
      count: 2,
      policyId: 'capped',
      instanceType: 't3.micro',
      tags: { [STATE_TAG]: running(T0 - HOUR) },
    });

    expect(cycleOf(await h.schedule()).actions).toEqual([]); // $0.50 of $1
    h.clock.advance(HOUR + MIN); // $1.01
    const r = cycleOf(await h.schedule());
    expect(r.actions.map((a) => a.action)).toEqual(['stop', 'stop']);
    const states = await describeAll(h.ec2, ids);
    expect(ids.map((id) => stateOf(states.get(id)))).toEqual(['stopped', 'stopped']);

    expect(prices.requests).toHaveLength(1); // cached for the container
    expect(prices.requests[0]).toEqual({
      serviceCode: 'AmazonEC2',
      filters: {
        instanceType: 't3.micro',
        regionCode: 'us-east-1',
        operatingSystem: 'Linux',
        tenancy: 'Shared',
        preInstalledSw: 'NA',
        capacitystatus: 'Used',
        licenseModel: 'No License required',
      },
    });
    const events = (await h.events()).filter((e) => e.event.type === 'stopped');
    expect(events).toHaveLength(2);
    expect(events[0].event.accounting!.spendUsd).toBeCloseTo(0.5 * (61 / 60) + 0.5, 2);
  });

  it('uses an explicit hourlyUsd and then never calls the Price List API', async () => {
    const h = await createHarness(moto, { policyId: 'capped', pricingEndpoint: prices.endpoint });
    await h.putPolicy({ id: 'capped', rules: [{ rule: 'spend', maxUsd: 1, hourlyUsd: 2, action: 'stop' }] });
    const T0 = h.clock.now();
    const [id] = await runFleet(h.ec2, { count: 1, policyId: 'capped', tags: { [STATE_TAG]: running(T0 - 31 * MIN) } });
    const r = cycleOf(await h.schedule());
    expect(r.actions).toEqual([{ instanceId: id, action: 'stop', result: 'done' }]);
    expect(prices.requests).toHaveLength(0);
  });

  it('announces a missing or malformed price once per instance type, never counts it as zero, and acts on the others', async () => {
    const h = await createHarness(moto, { policyId: 'capped', pricingEndpoint: prices.endpoint });
    await h.putPolicy({ id: 'capped', rules: [{ rule: 'spend', maxUsd: 1, action: 'stop' }] });
    const T0 = h.clock.now();
    const seed = { [STATE_TAG]: running(T0 - 3 * HOUR) };
    const malformed = await runFleet(h.ec2, { count: 2, policyId: 'capped', instanceType: 'm5.large', tags: seed });
    const missing = await runFleet(h.ec2, { count: 1, policyId: 'capped', instanceType: 'r5.large', tags: seed });
    const failing = await runFleet(h.ec2, { count: 1, policyId: 'capped', instanceType: 'c5.xlarge', tags: seed });
    const priced = await runFleet(h.ec2, { count: 1, policyId: 'capped', instanceType: 't3.micro', tags: seed });

    const r1 = cycleOf(await h.schedule());
    expect(r1.priceErrors.sort()).toEqual(['c5.xlarge', 'm5.large', 'r5.large']);
    expect(r1.actions).toEqual([{ instanceId: priced[0], action: 'stop', result: 'done' }]);
    const e1 = await h.events();
    const errors = e1.filter((e) => e.event.type === 'error');
    expect(errors.map((e) => e.event.detail!.instanceType).sort()).toEqual(['c5.xlarge', 'm5.large', 'r5.large']);
    for (const e of errors) {
      expect(e.event.severity).toBe('error');
      expect(e.event.subject).toBe(`price unknown for ${e.event.detail!.instanceType}`);
      expect(e.event.message).toContain(`'${e.event.detail!.instanceType}'`);
      expect(e.attributes.eventType).toBe('error');
    }
    expect(errors.find((e) => e.event.detail!.instanceType === 'm5.large')!.event.message).toMatch(/price "N\/A"/);

    h.clock.advance(5 * MIN);
    const r2 = cycleOf(await h.schedule());
    expect(r2.priceErrors).toHaveLength(3); // still unknown, and logged
    expect(await h.events()).toEqual([]); // but announced once
    expect(h.logs.filter((l) => l.message === 'price unknown')).toHaveLength(6);
    const states = await describeAll(h.ec2, [...malformed, ...missing, ...failing]);
    for (const id of [...malformed, ...missing, ...failing]) expect(stateOf(states.get(id))).toBe('running');
  });
});
