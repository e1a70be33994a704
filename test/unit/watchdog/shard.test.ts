import { inShard, shardOf } from '../../../lambda-agent/watchdog/shard';

const ids = Array.from({ length: 10_000 }, (_, i) => `i-${(0x0abc0000000000 + i * 7919).toString(16).padStart(17, '0')}`);

describe('shards', () => {
  it.each([2, 3, 7, 16])('puts every instance in exactly one of %i shards, spread evenly', (count) => {
    const sizes = new Array(count).fill(0);
    const notExactlyOne: string[] = [];
    for (const id of ids) {
      let owners = 0;
      for (let index = 0; index < count; index++) if (inShard(id, { index, count })) owners++;
      if (owners !== 1) notExactlyOne.push(id);
      sizes[shardOf(id, count)]++;
    }
    expect(notExactlyOne).toEqual([]);
    const expected = ids.length / count;
    for (const s of sizes) expect(Math.abs(s - expected) / expected).toBeLessThan(0.1);
  });

  it('is stable: a pure function of the id', () => {
    expect(shardOf('i-0123456789abcdef0', 10)).toBe(shardOf('i-0123456789abcdef0', 10));
    expect(shardOf('i-0123456789abcdef0', 1)).toBe(0);
    expect(inShard('i-0123456789abcdef0', undefined)).toBe(true);
  });
});
