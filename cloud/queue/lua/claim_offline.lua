-- Claims agents whose last poll is older than the cutoff: only the caller that removes them handles them.
-- KEYS[1]  sorted set agent id -> last poll time (ms)
-- KEYS[2]  set of agents believed online
-- ARGV[1]  cutoff (ms): agents last seen at or before it are claimed
-- ARGV[2]  the most to claim
-- Returns the claimed agent ids.
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  redis.call('SREM', KEYS[2], id)
end
return ids
