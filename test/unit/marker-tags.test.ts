import calculateSlot from 'cluster-key-slot';
import { markerTags } from '../../cloud/queue/redis-state';
import { RedisKeys } from '../../cloud/queue/keys';

describe('marker tags of a Redis Cluster', () => {
  it('puts one marker on every master, even one that serves a single slot', () => {
    const layout: [number, number, [string, number, string]][] = [
      [0, 5460, ['10.0.0.1', 7001, 'a']],
      [5461, 10921, ['10.0.0.2', 7002, 'b']],
      [10922, 10922, ['10.0.0.3', 7003, 'c']],
      [10923, 16383, ['10.0.0.1', 7001, 'a']],
    ];
    const tags = markerTags(layout);
    expect(tags).toHaveLength(3);
    const keys = new RedisKeys('skadi:');
    const owner = (slot: number) => layout.find(([first, last]) => slot >= first && slot <= last)![2][1];
    expect(tags.map((tag) => owner(calculateSlot(keys.epochOf(tag)))).sort()).toEqual([7001, 7002, 7003]);
  });
});
