-- Switches a thread's active branch to the one through a message, down to that message's
-- newest leaf (tree.lua). A linear thread gets its tree first, unless the message already
-- ends it. Refused while a generation holds the thread (the lease rule of store/schema.rs):
-- its reply will end the branch it started on. `updatedAt` stays: nothing was written.
-- KEYS: 1 meta, 2 messages, 3 tree, 4 path
-- ARGV: 1 message id, 2 now (ms)
-- Returns {outcome, the new active leaf's id} where outcome is 'ok' | 'not_found' (no such
-- thread) | 'no_message' | 'busy'.
tree_load()
local meta = redis.call('HMGET', KEYS[1], 'id', 'activeMessageId', 'activeUntil', 'tree')
if not meta[1] then
  return {'not_found', ''}
end
if meta[2] and tonumber(meta[3] or '0') > tonumber(ARGV[2]) then
  return {'busy', meta[2]}
end
if meta[4] ~= '1' then
  local last = redis.call('LINDEX', KEYS[2], -1)
  if last and tree_id_of(last) == ARGV[1] and not tree_superseded(last) then
    redis.call('HSET', KEYS[1], 'activeLeafId', ARGV[1])
    return {'ok', ARGV[1]}
  end
  Tree.build(KEYS[1], KEYS[2], KEYS[3], KEYS[4], redis.call('PTTL', KEYS[1]))
end
local at = Tree.index(KEYS[3], ARGV[1])
if not at then
  return {'no_message', ''}
end
local newest = Tree.newest_leaf(KEYS[3], at)
local leaf = Tree.node(KEYS[3], newest)
redis.call('HSET', KEYS[1], 'activeLeafId', leaf)
Tree.path_to(KEYS[3], KEYS[4], newest)
return {'ok', leaf}
