-- Takes a lease nobody holds, or extends it for its holder; one gateway node holds it at a time.
-- KEYS[1]  the lease (a string: the holder's id, expiring)
-- ARGV[1]  this node's id
-- ARGV[2]  time to live (ms)
-- Returns 1 when this node holds the lease now, 0 when another node does.
local holder = redis.call('GET', KEYS[1])
if holder == false or holder == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
  return 1
end
return 0
