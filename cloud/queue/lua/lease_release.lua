-- Gives a lease up, only when this node holds it (a lapsed lease may already be another node's).
-- KEYS[1]  the lease
-- ARGV[1]  this node's id
-- Returns 1 when it was released, 0 when this node did not hold it.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
