import { GetProductsCommand } from '@aws-sdk/client-pricing';
import { createPriceList, FAILURE_RETRY_MS, parseOnDemandPrice, PriceError } from '../../../lambda-agent/adapters/pricing';
import { priceListEntry } from '../../support/pricing-server';

describe('parseOnDemandPrice', () => {
  it('reads terms.OnDemand…priceDimensions…pricePerUnit.USD from the JSON strings of a PriceList', () => {
    expect(parseOnDemandPrice([priceListEntry('t3.micro', '0.0104000000')], 't3.micro', 'us-east-1')).toBe(0.0104);
  });

  it('takes the highest rate when several products match (a cap then trips early, not late)', () => {
    expect(parseOnDemandPrice([priceListEntry('t3.micro', '0.0104'), priceListEntry('t3.micro', '0.0120')], 't3.micro', 'us-east-1')).toBe(
      0.012,
    );
  });

  it.each([
    ['an empty list', [], /the price list has no matching product/],
    ['no list', undefined, /the price list has no matching product/],
    ['a price that is not a number', [priceListEntry('t3.micro', 'N/A')], /entry 0 has price "N\/A"/],
    ['a zero price', [priceListEntry('t3.micro', '0.0000000000')], /entry 0 has price "0.0000000000"/],
    ['an entry that is not JSON', ['{"product":'], /entry 0 is not JSON/],
    ['another instance type', [priceListEntry('m5.large', '0.096')], /entry 0 is for 'm5.large'/],
    [
      'no on-demand terms',
      [JSON.stringify({ product: { attributes: { instanceType: 't3.micro' } }, terms: {} })],
      /entry 0 has no terms.OnDemand/,
    ],
    ['a unit other than hours', [priceListEntry('t3.micro', '0.01').replace('"Hrs"', '"Quantity"')], /has unit 'Quantity', not Hrs/],
  ])('fails with a PriceError naming the type for %s', (_what, list, problem) => {
    let error: unknown;
    try {
      parseOnDemandPrice(list as string[] | undefined, 't3.micro', 'us-east-1');
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PriceError);
    expect((error as PriceError).instanceType).toBe('t3.micro');
    expect((error as Error).message).toMatch(/^price: no hourly on-demand price for 't3\.micro' in us-east-1: /);
    expect((error as Error).message).toMatch(problem);
    expect((error as Error).message).toMatch(/Set 'hourlyUsd' in the spend rule/);
  });
});

describe('createPriceList', () => {
  function fakePricing(answers: Record<string, () => unknown>) {
    const asked: string[] = [];
    return {
      asked,
      async send(command: GetProductsCommand) {
        const type = command.input.Filters!.find((f) => f.Field === 'instanceType')!.Value!;
        asked.push(type);
        return answers[type]();
      },
    };
  }

  it('asks once per instance type and region, and caches the price', async () => {
    const client = fakePricing({ 't3.micro': () => ({ PriceList: [priceListEntry('t3.micro', '0.0104')] }) });
    let now = 0;
    const list = createPriceList(client, { region: 'eu-west-1', now: () => now });
    expect(await list.lookup('t3.micro')).toEqual({ ok: true, hourlyUsd: 0.0104 });
    now += 3_600_000;
    expect(await list.lookup('t3.micro')).toEqual({ ok: true, hourlyUsd: 0.0104 });
    expect(client.asked).toEqual(['t3.micro']);
    // a second list on the same client shares the module-scope cache (one container)
    expect(await createPriceList(client, { region: 'eu-west-1', now: () => now }).lookup('t3.micro')).toMatchObject({ ok: true });
    expect(client.asked).toEqual(['t3.micro']);
  });

  it('reports a failure as first-report once, and asks again only after an hour', async () => {
    let calls = 0;
    const client = fakePricing({
      'x9.huge': () => {
        calls++;
        throw Object.assign(new Error('pricing is down'), { name: 'InternalErrorException' });
      },
    });
    let now = 1_000_000;
    const list = createPriceList(client, { region: 'us-east-1', now: () => now });
    const first = await list.lookup('x9.huge');
    expect(first).toMatchObject({ ok: false, firstReport: true });
    expect(!first.ok && first.error.message).toMatch(/GetProducts failed \(InternalErrorException: pricing is down\)/);
    expect(await list.lookup('x9.huge')).toMatchObject({ ok: false, firstReport: false });
    expect(calls).toBe(1);
    now += FAILURE_RETRY_MS;
    expect(await list.lookup('x9.huge')).toMatchObject({ ok: false, firstReport: false });
    expect(calls).toBe(2);
  });
});
