-- Puts job ids back at the head of an agent's queue, in their original order, after a take that could not be recorded.
-- KEYS[1]  the agent's queue
-- ARGV[1]  the wake-up channel
-- ARGV[2]  the agent id
-- ARGV[3..] job ids, oldest first
-- Returns the queue length after the push.
local length = 0
for i = #ARGV, 3, -1 do
  length = redis.call('LPUSH', KEYS[1], ARGV[i])
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return length
