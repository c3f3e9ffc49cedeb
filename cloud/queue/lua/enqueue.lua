-- Appends job ids to an agent's queue and wakes the long polls waiting for that agent on every node.
-- KEYS[1]  the agent's queue (list of job ids, oldest first)
-- ARGV[1]  the wake-up channel
-- ARGV[2]  the agent id (the wake-up message)
-- ARGV[3..] job ids, in order
-- Returns the queue length after the push.
local length = 0
for i = 3, #ARGV do
  length = redis.call('RPUSH', KEYS[1], ARGV[i])
end
redis.call('PUBLISH', ARGV[1], ARGV[2])
return length
