-- Claims the members of a schedule whose time has come: each member is returned to exactly one caller.
-- KEYS[1]  sorted set member -> due time (ms)
-- ARGV[1]  now (ms)
-- ARGV[2]  the most to claim
-- Returns the claimed members.
local members = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
if #members > 0 then
  redis.call('ZREM', KEYS[1], unpack(members))
end
return members
