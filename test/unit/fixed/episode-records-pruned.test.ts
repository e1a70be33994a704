/**
 * Fixed: the episode records (one 256-character tag) are pruned to six, newest first.
 * A record of an episode that is still going on (e.g. "lifetime exceeded, notified"
 * three days ago, same run) was dropped in favour of newer records of episodes that
 * were long over, and the next evaluation notified again. Records of current episodes
 * are now kept first.
 */
import { evaluate } from '../../../lambda-agent';
import type { EpisodeRecord } from '../../../lambda-agent/contract';
import { checkpoint, DAY, HOUR, IDLE, MIN, NOW, observation, policyOf, series } from '../../fixtures/policies';

const policy = policyOf([
  { rule: 'lifetime', max: '1h', action: 'notify' },
  { rule: 'over-use', window: '5m', cpuPercentAbove: 90, action: 'notify' },
  { rule: 'heartbeat-lost', window: '30m', action: 'notify' },
  { rule: 'health', window: '5m', action: 'notify' },
]);

describe('fixed: episode records of current episodes survive pruning', () => {
  it('does not notify again for an acted episode when newer records of past episodes pile up', () => {
    // GIVEN an instance over its lifetime for days (notified once), with six newer records of finished episodes
    const obs = observation({
      checkpoint: checkpoint({ since: NOW - 3 * DAY }),
      samples: series({ count: 30, sample: IDLE }),
      samplePeriodMs: MIN,
      heartbeat: { at: NOW - 10 * MIN, conditions: {} },
    });
    const first = evaluate(policy, obs, NOW - 2 * DAY);
    expect(first.action).toMatchObject({ name: 'notify', rule: 'lifetime' });
    const past = (rule: string, episode: string, at: number): EpisodeRecord => ({ rule, episode, actedAt: at, action: 'notify' });
    const piled = [
      ...first.episodes,
      past('over-use', '100', NOW - DAY),
      past('over-use', '101', NOW - DAY + HOUR),
      past('heartbeat-lost', 'h100', NOW - DAY),
      past('heartbeat-lost', 'h101', NOW - DAY + HOUR),
      past('health', '100', NOW - DAY),
      past('health', '101', NOW - DAY + HOUR),
    ];
    // WHEN evaluated twice more, carrying the records over
    const second = evaluate(policy, { ...obs, episodes: piled }, NOW);
    const third = evaluate(policy, { ...obs, episodes: second.episodes }, NOW + MIN);
    // THEN the lifetime episode stays acted, and the records still fit
    expect(second.episodes).toContainEqual(first.episodes[0]);
    expect(second.episodes.length).toBeLessThanOrEqual(6);
    expect(third.action).toBeUndefined();
    expect(third.rules[0]).toMatchObject({ rule: 'lifetime', status: 'acted' });
  });
});
