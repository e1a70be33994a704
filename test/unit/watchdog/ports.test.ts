import { observeInstance, type ObservedInstance } from '../../../lambda-agent/adapters/observe';
import { encodeCheckpoint, encodeEpisodes } from '../../../lambda-agent/contract/state';
import { AGENT_EPISODES_TAG, EPISODES_TAG, POLICY_TAG, STATE_TAG } from '../../../lambda-agent/contract/tags';
import { evaluate } from '../../../lambda-agent/engine/evaluate';
import { loadPolicy } from '../../../lambda-agent/policy/parse';
import { createPorts, effectiveDecision, tagsToWrite } from '../../../lambda-agent/watchdog/ports';
import { InstanceError } from '../../../lambda-agent/watchdog/errors';

const NOW = Date.parse('2026-03-04T12:00:00Z');
const H = 3_600_000;
const cp = { state: 'running' as const, since: NOW - H, firstSeen: NOW - H, runningMs: 0, spendUsd: 0 };

function observed(tags: Record<string, string>): ObservedInstance {
  const o = observeInstance(
    {
      InstanceId: 'i-0123456789abcdef0',
      State: { Name: 'running' },
      LaunchTime: new Date(NOW - H),
      Tags: Object.entries({ [POLICY_TAG]: 'dev', ...tags }).map(([Key, Value]) => ({ Key, Value })),
    },
    'dev',
  );
  if (o.kind !== 'ok') throw new Error('not ok');
  return o.value;
}

describe('watchdog ports', () => {
  it('writes only the tags whose value changes, in one call, and remembers what it wrote', async () => {
    const o = observed({ [STATE_TAG]: encodeCheckpoint(cp) });
    const sent: any[] = [];
    const ports = createPorts(
      { ec2: { send: async (c: any) => void sent.push(c.input) }, sns: { send: async () => undefined }, topicArn: 't' },
      new Map([[o.instanceId, o]]),
    );
    await ports.saveState(o.instanceId, { checkpoint: cp, episodes: [] });
    expect(sent).toEqual([]);
    expect(ports.stats).toMatchObject({ writes: 0, skippedWrites: 1 });
    const rec = { rule: 'idle', episode: '1', warnedAt: NOW };
    await ports.saveState(o.instanceId, { checkpoint: { ...cp, state: 'stopped', since: NOW }, episodes: [rec] });
    expect(sent).toEqual([
      {
        Resources: [o.instanceId],
        Tags: [
          { Key: STATE_TAG, Value: encodeCheckpoint({ ...cp, state: 'stopped', since: NOW }) },
          { Key: EPISODES_TAG, Value: encodeEpisodes([rec]) },
        ],
      },
    ]);
    await ports.saveState(o.instanceId, { episodes: [rec] });
    expect(sent).toHaveLength(1);
  });

  it('refuses to write to or act on an instance not described under the policy in this run', async () => {
    const ports = createPorts({ ec2: { send: async () => undefined }, sns: { send: async () => undefined }, topicArn: 't' }, new Map());
    await expect(ports.saveState('i-0000000000000000a', { checkpoint: cp })).rejects.toBeInstanceOf(InstanceError);
    await expect(ports.perform('terminate', ['i-0000000000000000a'])).rejects.toThrow(
      /refusing to terminate i-0000000000000000a: not described under this policy/,
    );
  });

  it('judges a decision’s changes against the watchdog’s own tag, not the agent’s records', () => {
    const policy = loadPolicy({ id: 'dev', rules: [{ rule: 'lifetime', max: '7d' }] });
    const agent = Array.from({ length: 7 }, (_, i) => ({ rule: `r${i}`, episode: String(i), warnedAt: NOW - (10 - i) * 1000 }));
    const o = observed({ [STATE_TAG]: encodeCheckpoint(cp), [AGENT_EPISODES_TAG]: encodeEpisodes(agent) });
    const d = evaluate(policy, o.observation, NOW);
    expect(d.episodesChanged).toBe(true); // the engine pruned the merged list to six
    const e = effectiveDecision(d, o);
    expect(e.episodesChanged).toBe(false); // nothing of the watchdog's own changed
    expect(tagsToWrite(o, { episodes: d.episodes })).toEqual({});
  });
});
