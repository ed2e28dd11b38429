-- Takes back a turn's begin (begin_turn.lua) whose answer never came back: its request got
-- 503, so its client will retry, and must find the turn failed (a retry generates) and the
-- thread free, not a generation nobody runs. Runs after the begin, on the same connection;
-- does nothing when the begin never ran or another attempt holds the thread since, so it
-- may be sent again. Frees the thread as fail_turn.lua does; a thread the begin made under an
-- id only its request knew (a turn without a thread id: its retry makes another) is deleted
-- instead (library: index.lua), while it holds nothing but the turn's messages. Field names
-- and turn states are those of store/schema.rs.
-- KEYS: 1 turns, 2 meta, 3 tree, 4 path, 5 index, 6 messages, 7 stream
-- ARGV: 1 the turn's key as the request named it, 2 assistant message id of the attempt,
--       3 '1' for a regenerate (its key may be an edited version's: Tree.turn_key), 4 '1'
--       when the request made the thread under an id of its own, 5 the number of messages
--       the turn adds, 6 thread id
-- Returns 1 when it freed (or deleted) the thread, 0 when there was nothing of the attempt
-- to take back.
tree_load()
local meta = redis.call('HMGET', KEYS[2], 'activeMessageId', 'leafBeforeTurn', 'activeLeafId',
  'tree', 'messageCount')
if meta[1] ~= ARGV[2] then
  return 0
end
if ARGV[4] == '1' and tonumber(meta[5] or '0') <= tonumber(ARGV[5]) then
  unindex(KEYS[5], ARGV[6], KEYS[2])
  redis.call('DEL', KEYS[2], KEYS[6], KEYS[1], KEYS[7], KEYS[3], KEYS[4])
  return 1
end
local key = ARGV[1]
if ARGV[3] == '1' and meta[4] == '1' and meta[3] then
  key = Tree.turn_key(KEYS[3], meta[3], key)
end
local current = redis.call('HGET', KEYS[1], key)
if current and string.sub(current, 1, #ARGV[2] + 2) == 'g:' .. ARGV[2] then
  redis.call('HSET', KEYS[1], key, 'f')
end
redis.call('HDEL', KEYS[2], 'activeMessageId', 'activeUntil', 'stopRequested', 'streamWanted',
  'replyParent', 'leafBeforeTurn')
redis.call('HSET', KEYS[2], 'lastStatus', 'error')
local before = meta[2] and Tree.index(KEYS[3], meta[2])
if before then
  redis.call('HSET', KEYS[2], 'activeLeafId', meta[2])
  Tree.path_to(KEYS[3], KEYS[4], before)
end
return 1
