/**
 * The deployed clients' retry policy, against a loopback server that answers like EC2:
 * throttling (RequestLimitExceeded) and 5xx are retried with backoff; attempts are bounded.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { writeTags } from '../../../lambda-agent/adapters/ec2';
import { createAwsClients, EC2_MAX_ATTEMPTS } from '../../../lambda-agent/watchdog/clients';

const THROTTLED = `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded.</Message></Error></Errors><RequestID>r1</RequestID></Response>`;
const UNAVAILABLE = `<?xml version="1.0" encoding="UTF-8"?>
<Response><Errors><Error><Code>Unavailable</Code><Message>The server is overloaded.</Message></Error></Errors><RequestID>r2</RequestID></Response>`;
const OK = `<?xml version="1.0" encoding="UTF-8"?>
<CreateTagsResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>r3</requestId><return>true</return></CreateTagsResponse>`;

async function withServer(answers: Array<[number, string]>, fn: (endpoint: string, times: number[]) => Promise<void>) {
  const times: number[] = [];
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      times.push(Date.now());
      const [status, body] = answers.length > 1 ? answers.shift()! : answers[0];
      res.writeHead(status, { 'content-type': 'text/xml' });
      res.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const saved = { ...process.env };
  Object.assign(process.env, {
    AWS_ENDPOINT_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    AWS_REGION: 'us-east-1',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
  });
  try {
    await fn(process.env.AWS_ENDPOINT_URL!, times);
  } finally {
    for (const k of ['AWS_ENDPOINT_URL', 'AWS_REGION', 'AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY']) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
    await new Promise((r) => server.close(r));
  }
}

describe('AWS clients of the deployed watchdog', () => {
  it('retries RequestLimitExceeded and 5xx with backoff, then succeeds', async () => {
    await withServer(
      [
        [503, THROTTLED],
        [503, UNAVAILABLE],
        [200, OK],
      ],
      async (_endpoint, times) => {
        const { ec2 } = createAwsClients({ pricingRegion: 'us-east-1' });
        await writeTags(ec2, 'i-0123456789abcdef0', { 'smvm:state': 'v=1' });
        expect(times).toHaveLength(3);
      },
    );
  }, 30_000);

  it(`gives up after ${EC2_MAX_ATTEMPTS} attempts`, async () => {
    await withServer([[500, UNAVAILABLE]], async (_endpoint, times) => {
      const { ec2 } = createAwsClients({ pricingRegion: 'us-east-1' });
      await expect(writeTags(ec2, 'i-0123456789abcdef0', { 'smvm:state': 'v=1' })).rejects.toMatchObject({ name: 'Unavailable' });
      expect(times).toHaveLength(EC2_MAX_ATTEMPTS);
      // exponential backoff with jitter: the waits grow (on average) and are never all zero
      const waits = times.slice(1).map((t, i) => t - times[i]);
      expect(waits.reduce((a, b) => a + b, 0)).toBeGreaterThan(100);
    });
  }, 60_000);

  it('points the Price List client at its region and optional endpoint', async () => {
    const { pricing } = createAwsClients({ pricingRegion: 'ap-south-1', pricingEndpoint: 'http://127.0.0.1:9' });
    expect(await pricing.config.region()).toBe('ap-south-1');
    const endpoint = await pricing.config.endpoint!();
    expect(`${endpoint.protocol}//${endpoint.hostname}:${endpoint.port}`).toBe('http://127.0.0.1:9');
  });
});
