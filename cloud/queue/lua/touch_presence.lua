-- Records that an agent polled now.
-- KEYS[1]  sorted set agent id -> last poll time (ms)
-- KEYS[2]  set of agents believed online
-- ARGV[1]  now (ms)
-- ARGV[2]  agent id
-- Returns 1 when the agent was not believed online before (it may have come online), else 0.
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
return redis.call('SADD', KEYS[2], ARGV[2])
