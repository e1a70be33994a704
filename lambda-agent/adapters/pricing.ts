/**
 * Pricing adapter of the watchdog: the hourly on-demand rate of an instance type in a
 * region (Linux, shared tenancy, no pre-installed software) from the AWS Price List
 * API (`pricing:GetProducts`, free; endpoints in us-east-1, eu-central-1, ap-south-1).
 *
 * Prices are cached at module scope (per client), so a warm container asks once per
 * instance type. A missing or malformed price is an error naming the instance type,
 * never a silent zero; failures are cached for {@link FAILURE_RETRY_MS} and announced
 * once per instance type per container.
 */
import { GetProductsCommand } from '@aws-sdk/client-pricing';
import type { AwsClient } from './ec2';

/** How long a failed look-up is remembered before the API is asked again. */
export const FAILURE_RETRY_MS = 3_600_000;
/** How long a price is kept (list prices change rarely; containers rarely live longer). */
export const PRICE_TTL_MS = 24 * 3_600_000;

export class PriceError extends Error {
  constructor(
    readonly instanceType: string,
    readonly region: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(
      `price: no hourly on-demand price for '${instanceType}' in ${region}: ${problem}. Set 'hourlyUsd' in the spend rule to use an explicit rate.`,
      options,
    );
    this.name = 'PriceError';
  }
}

export type PriceLookup =
  | { readonly ok: true; readonly hourlyUsd: number }
  | {
      readonly ok: false;
      readonly error: PriceError;
      /** True the first time this container reports the failure for this type. */
      readonly firstReport: boolean;
    };

interface Entry {
  readonly at: number;
  readonly value: Promise<number>;
  /** Set once the look-up has failed. */
  failed?: boolean;
  /** The failure was announced (once per instance type per container). */
  reported?: boolean;
}

/** Module-scope cache, per pricing client (tests with their own clients stay apart). */
const caches = new WeakMap<object, Map<string, Entry>>();

/** GetProducts filters for one instance type in one region. */
export function productFilters(instanceType: string, region: string) {
  const term = (Field: string, Value: string) => ({ Type: 'TERM_MATCH' as const, Field, Value });
  return [
    term('instanceType', instanceType),
    term('regionCode', region),
    term('operatingSystem', 'Linux'),
    term('tenancy', 'Shared'),
    term('preInstalledSw', 'NA'),
    term('capacitystatus', 'Used'),
    term('licenseModel', 'No License required'),
  ];
}

/**
 * The hourly USD rate from a GetProducts `PriceList` (each entry a JSON document:
 * `terms.OnDemand.<offer>.priceDimensions.<dim>.pricePerUnit.USD`, unit `Hrs`). When
 * several products match, the highest rate is used (a spend cap then trips early, not
 * late). Throws {@link PriceError}.
 */
export function parseOnDemandPrice(priceList: readonly unknown[] | undefined, instanceType: string, region: string): number {
  if (!priceList || priceList.length === 0) throw new PriceError(instanceType, region, 'the price list has no matching product');
  let best: number | undefined;
  const problems: string[] = [];
  priceList.forEach((raw, i) => {
    let doc: any;
    try {
      doc = typeof raw === 'string' ? JSON.parse(raw) : JSON.parse(String(raw));
    } catch {
      problems.push(`entry ${i} is not JSON`);
      return;
    }
    const type = doc?.product?.attributes?.instanceType;
    if (type !== undefined && type !== instanceType) {
      problems.push(`entry ${i} is for '${String(type)}'`);
      return;
    }
    const offers = doc?.terms?.OnDemand;
    if (!offers || typeof offers !== 'object') {
      problems.push(`entry ${i} has no terms.OnDemand`);
      return;
    }
    for (const offer of Object.values<any>(offers)) {
      for (const dim of Object.values<any>(offer?.priceDimensions ?? {})) {
        const unit = String(dim?.unit ?? '');
        const usd = dim?.pricePerUnit?.USD;
        const n = typeof usd === 'string' && /^\d+(\.\d+)?$/.test(usd.trim()) ? Number(usd) : NaN;
        if (!/^hrs?$/i.test(unit)) {
          problems.push(`entry ${i} has unit '${unit}', not Hrs`);
        } else if (!Number.isFinite(n) || n <= 0) {
          problems.push(`entry ${i} has price ${JSON.stringify(usd)}`);
        } else if (best === undefined || n > best) {
          best = n;
        }
      }
    }
  });
  if (best === undefined)
    throw new PriceError(instanceType, region, problems.length ? problems.join('; ') : 'no on-demand hourly price in the price list');
  return best;
}

export interface PriceListOptions {
  /** Region whose prices are asked for (the instances' region). */
  readonly region: string;
  /** Clock for the cache's expiry. */
  readonly now: () => number;
}

/** Looks up and caches hourly on-demand rates. */
export function createPriceList(pricing: AwsClient, opts: PriceListOptions) {
  let cache = caches.get(pricing);
  if (!cache) caches.set(pricing, (cache = new Map()));
  const store = cache;
  const fetch = async (instanceType: string): Promise<number> => {
    let out;
    try {
      out = await pricing.send(
        new GetProductsCommand({
          ServiceCode: 'AmazonEC2',
          FormatVersion: 'aws_v1',
          Filters: productFilters(instanceType, opts.region),
          MaxResults: 10,
        }),
      );
    } catch (e) {
      throw new PriceError(instanceType, opts.region, `GetProducts failed (${(e as Error).name}: ${(e as Error).message})`, { cause: e });
    }
    return parseOnDemandPrice(out.PriceList, instanceType, opts.region);
  };
  return {
    async lookup(instanceType: string): Promise<PriceLookup> {
      const key = `${opts.region}|${instanceType}`;
      const now = opts.now();
      let entry = store.get(key);
      const expired = entry !== undefined && (now < entry.at || now - entry.at >= (entry.failed ? FAILURE_RETRY_MS : PRICE_TTL_MS));
      if (!entry || expired) {
        const fresh: Entry = { at: now, value: fetch(instanceType), ...(entry?.reported ? { reported: true } : {}) };
        fresh.value.catch(() => (fresh.failed = true));
        store.set(key, (entry = fresh));
      }
      try {
        return { ok: true, hourlyUsd: await entry.value };
      } catch (e) {
        entry.failed = true;
        const error = e instanceof PriceError ? e : new PriceError(instanceType, opts.region, String(e));
        const firstReport = !entry.reported;
        entry.reported = true;
        return { ok: false, error, firstReport };
      }
    },
  };
}

export type PriceList = ReturnType<typeof createPriceList>;
