import fc from 'fast-check';
import {
  decodeCheckpoint,
  decodeEpisodes,
  decodeExtensions,
  decodeHeartbeat,
  decodeSnooze,
  encodeCheckpoint,
  encodeEpisodes,
  encodeExtensions,
  encodeHeartbeat,
  encodeSnooze,
  MAX_TAG_VALUE_LENGTH,
  TagValueError,
  type Checkpoint,
  type EpisodeRecord,
  type HeartbeatReport,
} from '../../../lambda-agent/contract';

const SEED = 20250604;
const secMs = fc.integer({ min: 0, max: 4_000_000_000 }).map((s) => s * 1000);

/** Assert that decoding throws a TagValueError naming the tag key. */
function expectTagError(decode: () => unknown, key: string): void {
  let error: unknown;
  try {
    decode();
  } catch (e) {
    error = e;
  }
  expect(error).toBeInstanceOf(TagValueError);
  expect((error as TagValueError).key).toBe(key);
  expect((error as Error).message).toMatch(new RegExp(`^tag '${key}': .*Fix or delete the tag\\.$`));
}

describe('tag codecs', () => {
  describe('checkpoint', () => {
    it('round-trips a checkpoint in whole seconds', () => {
      const cp: Checkpoint = {
        state: 'running',
        since: 1_749_038_400_000,
        firstSeen: 1_748_000_000_000,
        runningMs: 7_200_000,
        spendUsd: 12.3456,
      };
      expect(encodeCheckpoint(cp)).toBe('v=1;s=running;t=1749038400;f=1748000000;r=7200;u=12.3456');
      expect(decodeCheckpoint(encodeCheckpoint(cp))).toEqual(cp);
    });

    it('round-trips any checkpoint (seconds, 4-decimal USD)', () => {
      const arb = fc
        .record({
          state: fc.constantFrom('running' as const, 'stopped' as const),
          firstSeen: secMs,
          gap: secMs,
          runningS: fc.integer({ min: 0, max: 1e9 }),
          cents: fc.integer({ min: 0, max: 1e8 }),
        })
        .map(({ state, firstSeen, gap, runningS, cents }) => ({
          state,
          firstSeen,
          since: firstSeen + gap,
          runningMs: runningS * 1000,
          spendUsd: cents / 10_000,
        }));
      fc.assert(
        fc.property(arb, (cp) => {
          const back = decodeCheckpoint(encodeCheckpoint(cp));
          expect(back).toEqual({ ...cp, spendUsd: expect.closeTo(cp.spendUsd, 4) });
          expect(encodeCheckpoint(cp).length).toBeLessThanOrEqual(MAX_TAG_VALUE_LENGTH);
        }),
        { seed: SEED, verbose: true },
      );
    });

    it.each([
      ['an empty value', ''],
      ['another version', 'v=2;s=running;t=1;f=1;r=0;u=0'],
      ['an unknown state', 'v=1;s=sleeping;t=1;f=1;r=0;u=0'],
      ['a missing field', 'v=1;s=running;t=1;f=1;r=0'],
      ['a non-number', 'v=1;s=running;t=yesterday;f=1;r=0;u=0'],
      ['a negative number', 'v=1;s=running;t=5;f=1;r=-3;u=0'],
      ['first seen after since', 'v=1;s=running;t=5;f=9;r=0;u=0'],
      ['a part without =', 'v=1;s=running;garbage;t=1;f=1;r=0;u=0'],
    ])('rejects %s with a TagValueError naming the key', (_label, value) => {
      expectTagError(() => decodeCheckpoint(value), 'smvm:state');
    });

    it('pins the wording of a checkpoint error', () => {
      expect(() => decodeCheckpoint('v=1;s=running;t=5;f=9;r=0;u=0')).toThrowErrorMatchingInlineSnapshot(
        `"tag 'smvm:state': 'f' (first seen) is after 't' (since), got: "v=1;s=running;t=5;f=9;r=0;u=0". Fix or delete the tag."`,
      );
    });
  });

  describe('episodes', () => {
    const records: EpisodeRecord[] = [
      { rule: 'idle', episode: '1749030000', warnedAt: 1_749_031_500_000, action: 'stop' },
      { rule: 'lifetime', episode: '1749600000-r1749030000', warnedAt: 1_749_000_000_000, actedAt: 1_749_003_600_000, action: 'terminate' },
      { rule: 'schedule', episode: 'o1749016800', actedAt: 1_749_016_800_000 },
    ];

    it('round-trips episode records', () => {
      expect(encodeEpisodes(records)).toBe(
        'idle:1749030000:1749031500::stop lifetime:1749600000-r1749030000:1749000000:1749003600:terminate schedule:o1749016800::1749016800:',
      );
      expect(decodeEpisodes(encodeEpisodes(records))).toEqual(records);
      expect(decodeEpisodes('')).toEqual([]);
    });

    it('round-trips any records made of tag-safe names', () => {
      const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,11}$/);
      const rec = fc.record(
        {
          rule: name,
          episode: fc.stringMatching(/^[A-Za-z0-9#.@+-]{1,12}$/),
          warnedAt: secMs,
          actedAt: secMs,
          action: fc.constantFrom('stop', 'terminate', 'notify'),
        },
        { requiredKeys: ['rule', 'episode'] },
      );
      fc.assert(
        fc.property(fc.array(rec, { maxLength: 4 }), (rs) => {
          expect(decodeEpisodes(encodeEpisodes(rs))).toEqual(rs);
        }),
        { seed: SEED, verbose: true },
      );
    });

    it('refuses to encode names a tag value cannot carry, or more than fits', () => {
      expect(() => encodeEpisodes([{ rule: 'idle', episode: 'a b' }])).toThrow(/characters a tag value cannot carry/);
      const many = Array.from({ length: 20 }, (_, i) => ({
        rule: `rule-${i}`,
        episode: '1749030000',
        warnedAt: 1_749_031_500_000,
        action: 'stop',
      }));
      expect(() => encodeEpisodes(many)).toThrow(`over EC2's ${MAX_TAG_VALUE_LENGTH}`);
    });

    it.each([
      ['too few parts', 'idle:1:2:3'],
      ['too many parts', 'idle:1:2:3:stop:extra'],
      ['a non-number time', 'idle:1:soon::stop'],
      ['a bad rule name', 'id/le:1:::stop'],
    ])('rejects %s with a TagValueError naming the key', (_label, value) => {
      expectTagError(() => decodeEpisodes(value), 'smvm:episodes');
      expectTagError(() => decodeEpisodes(value, 'smvm:agent-episodes'), 'smvm:agent-episodes');
    });
  });

  describe('snooze', () => {
    it('round-trips the end and who snoozed, sanitizing separators', () => {
      expect(encodeSnooze(1_749_042_000_000, 'ana;x=1')).toBe('until=1749042000;by=ana_x_1');
      expect(decodeSnooze(encodeSnooze(1_749_042_000_000, 'ana'))).toEqual({ until: 1_749_042_000_000, by: 'ana' });
    });

    it.each(['', 'until=tomorrow', 'by=ana', 'until'])('rejects %j with a TagValueError naming the key', (value) => {
      expectTagError(() => decodeSnooze(value), 'smvm:snooze');
    });
  });

  describe('extensions', () => {
    it('round-trips lifetime, running time and spend extensions', () => {
      const ext = { lifetimeMs: 7_200_000, runningMs: 1_800_000, spendUsd: 12.5 };
      expect(encodeExtensions(ext)).toBe('lifetime=7200;running=1800;spend=12.50');
      expect(decodeExtensions(encodeExtensions(ext))).toEqual(ext);
      expect(decodeExtensions(encodeExtensions({}))).toEqual({});
    });

    it.each(['lifetime=2h', 'running=-5', 'spend=lots', 'credit=5', 'lifetime'])(
      'rejects %j with a TagValueError naming the key',
      (value) => {
        expectTagError(() => decodeExtensions(value), 'smvm:extend');
      },
    );
  });

  describe('heartbeat', () => {
    const report: HeartbeatReport = {
      at: 1_749_038_100_000,
      cpuPercent: 3.2,
      netBytesPerSec: 812,
      loginSessions: 0,
      netOutBytes: 123_456_789,
      conditions: { idle: 1_749_036_000_000, 'task-completion': 1_749_037_000_000 },
      version: '1.2.3',
    };

    it('round-trips a report with its conditions', () => {
      expect(encodeHeartbeat(report)).toBe(
        't=1749038100;cpu=3.2;net=812;lg=0;nb=123456789;v=1.2.3;c=idle@1749036000,task-completion@1749037000',
      );
      expect(decodeHeartbeat(encodeHeartbeat(report))).toEqual(report);
      expect(decodeHeartbeat('t=1749038100')).toEqual({ at: 1_749_038_100_000, conditions: {} });
    });

    it.each([
      ['no time', 'cpu=3'],
      ['a bad condition', 't=1;c=idle'],
      ['a bad condition time', 't=1;c=idle@soon'],
      ['a negative figure', 't=1;cpu=-3'],
    ])('rejects %s with a TagValueError naming the key', (_label, value) => {
      expectTagError(() => decodeHeartbeat(value), 'smvm:heartbeat');
    });
  });
});
