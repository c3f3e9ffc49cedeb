-- Records that many agents polled now (their long polls are open).
-- KEYS[1]  sorted set agent id -> last poll time (ms)
-- KEYS[2]  set of agents believed online
-- ARGV[1]  now (ms)
-- ARGV[2..] agent ids
-- Returns the ids of the agents that were not believed online before.
local new = {}
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
  if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
    new[#new + 1] = ARGV[i]
  end
end
return new
