/**
 * Bad input, fuzzed (see test/hardening/fuzz-targets.ts): the watchdog handler's events,
 * the agent's /proc files and instance metadata answers, and the Price List answers.
 * Seeds are fixed (FUZZ_SEED overrides, FUZZ_RUNS scales) and printed on failure.
 */
import {
  assertDetails,
  fakeWatchdog,
  FUZZ_SEED,
  imdsAnswers,
  priceListAnswers,
  procFiles,
  watchdogEvents,
  type FuzzTarget,
} from '../../hardening/fuzz-targets';

const scale = Number(process.env.FUZZ_RUNS_SCALE ?? 1);

describe.each<[string, FuzzTarget]>([
  ['the watchdog handler', watchdogEvents],
  ['the /proc sampler', procFiles],
  ['the IMDS client', imdsAnswers],
  ['the pricing adapter', priceListAnswers],
])('%s, fuzzed', (_name, target) => {
  it(`holds its property over ${target.runs} generated cases: ${target.name}`, async () => {
    const details = await target.run({ seed: FUZZ_SEED, numRuns: Math.max(1, Math.round(target.runs * scale)) });
    assertDetails(details);
    expect(details.numRuns).toBe(Math.max(1, Math.round(target.runs * scale)));
  }, 60_000);
});

describe('the watchdog handler, given an oversized event', () => {
  it('rejects it without any AWS call', async () => {
    const { wd, calls } = fakeWatchdog();
    const r = await wd.handle({ source: 'aws.events', 'detail-type': 'x'.repeat(200_000), detail: { y: 'z'.repeat(200_000) } });
    expect(r.outcome).toBe('rejected');
    expect(calls).toEqual([]);
  });

  // Fixed: lambda-agent/watchdog/trigger.ts (parseTrigger) put `got: ${JSON.stringify(detailType)}`
  // into the problem, whole: anyone allowed to invoke the function wrote arbitrarily long
  // lines into the log (and the result). Echoed values are now cut to about 80 characters.
  it('bounds what it echoes of an untrusted event in its rejection and log line', async () => {
    const { wd, lines } = fakeWatchdog();
    const r = await wd.handle({ source: 'aws.events', 'detail-type': 'x'.repeat(200_000) });
    expect(r.outcome).toBe('rejected');
    expect(Math.max(...(r.outcome === 'rejected' ? r.problems : []).map((p) => p.length))).toBeLessThan(1_000);
    expect(Math.max(...lines.map((l) => l.length))).toBeLessThan(4_000);
  });
});
