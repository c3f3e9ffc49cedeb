/** The event log's kept events, with a stand-in for the Redis connection that can refuse and then answer. */
import { EventLog, jobStatusEvent, type JobStatusEvent } from '../../cloud/lifecycle/events';
import { RedisKeys } from '../../cloud/queue/keys';
import type { RedisClient } from '../../cloud/queue/redis';

/** A Redis connection whose XADD fails while `down`, and records what it appended. */
function standInRedis() {
  const appended: string[] = [];
  const redis = {
    down: true,
    xadd: async (...args: unknown[]) => {
      if (redis.down) throw new Error('connect ECONNREFUSED');
      appended.push(JSON.parse(String(args[args.length - 1])).job_id);
      return '1-0';
    },
  };
  return { redis, appended };
}

const event = (id: string): JobStatusEvent =>
  jobStatusEvent({ id, userId: 1, agentId: 1, agentName: 'web1', status: 'succeeded', result: 'ok', reason: null }, new Date());

describe('EventLog kept events', () => {
  it('keeps at most its cap, dropping the oldest, and appends the rest in order once Redis answers', async () => {
    const { redis, appended } = standInRedis();
    const log = new EventLog(redis as unknown as RedisClient, new RedisKeys('t:'), 1000, undefined, undefined, 3);
    for (const id of ['j1', 'j2', 'j3', 'j4', 'j5']) await log.jobStatus([event(id)]).catch(() => undefined);
    expect(log.unsentCount).toBe(3);
    redis.down = false;
    await log.flush(5000);
    expect(appended).toEqual(['j3', 'j4', 'j5']);
    expect(log.unsentCount).toBe(0);
  });
});
