/**
 * Test helper: a loopback server that answers the AWS Price List API's GetProducts
 * (JSON 1.1 protocol, `X-Amz-Target: AWSPriceListService.GetProducts`) the way AWS
 * documents it: `PriceList` is an array of JSON *strings*, each a product with
 * `terms.OnDemand.<offer>.priceDimensions.<dimension>.pricePerUnit.USD`. moto does not
 * serve this API.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the server returns for an instance type. */
export type PriceBehaviour =
  /** A well-formed product with this hourly USD price. */
  | number
  /** No product matches (empty PriceList). */
  | 'missing'
  /** A product whose price is not a number. */
  | 'malformed'
  /** An HTTP 500 / InternalErrorException. */
  | 'error';

export interface PricingServerOptions {
  /** By instance type; types not listed get 'missing'. */
  readonly prices?: Record<string, PriceBehaviour>;
}

export interface PricingRequest {
  readonly serviceCode?: string;
  readonly filters: Record<string, string>;
}

/**
 * One PriceList entry as AWS returns it (a JSON string), for an on-demand Linux
 * instance type in a region.
 */
export function priceListEntry(instanceType: string, usd: string, regionCode = 'us-east-1'): string {
  const sku = `SKU${instanceType.replace(/[^a-z0-9]/gi, '').toUpperCase()}`;
  const offer = `${sku}.JRTCKXETXF`;
  const dim = `${offer}.6YS6EN2CT7`;
  return JSON.stringify({
    product: {
      productFamily: 'Compute Instance',
      attributes: {
        instanceType,
        regionCode,
        location: 'US East (N. Virginia)',
        operatingSystem: 'Linux',
        tenancy: 'Shared',
        preInstalledSw: 'NA',
        capacitystatus: 'Used',
        licenseModel: 'No License required',
        servicecode: 'AmazonEC2',
      },
      sku,
    },
    serviceCode: 'AmazonEC2',
    terms: {
      OnDemand: {
        [offer]: {
          priceDimensions: {
            [dim]: {
              unit: 'Hrs',
              endRange: 'Inf',
              description: `$${usd} per On Demand Linux ${instanceType} Instance Hour`,
              appliesTo: [],
              rateCode: dim,
              beginRange: '0',
              pricePerUnit: { USD: usd },
            },
          },
          sku,
          effectiveDate: '2026-11-01T00:00:00Z',
          offerTermCode: 'JRTCKXETXF',
          termAttributes: {},
        },
      },
    },
    version: '20261101000000',
    publicationDate: '2026-11-01T00:00:00Z',
  });
}

export interface PricingServer {
  readonly endpoint: string;
  readonly requests: PricingRequest[];
  setPrice(instanceType: string, behaviour: PriceBehaviour): void;
  close(): Promise<void>;
}

export async function startPricingServer(opts: PricingServerOptions = {}): Promise<PricingServer> {
  const prices: Record<string, PriceBehaviour> = { ...(opts.prices ?? {}) };
  const requests: PricingRequest[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      const reply = (status: number, payload: unknown) => {
        res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-requestid': `req-${requests.length}` });
        res.end(JSON.stringify(payload));
      };
      const target = String(req.headers['x-amz-target'] ?? '');
      if (target !== 'AWSPriceListService.GetProducts') {
        reply(400, { __type: 'UnknownOperationException', message: `unknown target ${target}` });
        return;
      }
      let input: { ServiceCode?: string; Filters?: Array<{ Field: string; Value: string }> };
      try {
        input = JSON.parse(body);
      } catch {
        reply(400, { __type: 'SerializationException', message: 'body is not JSON' });
        return;
      }
      const filters = Object.fromEntries((input.Filters ?? []).map((f) => [f.Field, f.Value]));
      requests.push({ ...(input.ServiceCode ? { serviceCode: input.ServiceCode } : {}), filters });
      const type = filters.instanceType ?? '';
      const b = prices[type] ?? 'missing';
      if (b === 'error') {
        reply(500, { __type: 'InternalErrorException', message: 'pricing is down' });
        return;
      }
      const list =
        b === 'missing'
          ? []
          : b === 'malformed'
            ? [priceListEntry(type, 'N/A', filters.regionCode)]
            : [priceListEntry(type, b.toFixed(10), filters.regionCode)];
      reply(200, { FormatVersion: 'aws_v1', PriceList: list });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    requests,
    setPrice: (t, b) => void (prices[t] = b),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
