-- Writes one imported thread whole, unless a thread of that id exists (an import is
-- idempotent: ids come from the source's). The messages go into the list in the order given,
-- each after its parent; a thread whose messages do not each follow the one before gets its
-- tree and the path of its active branch (library: tree.lua). Each answered user message
-- gets its turn state (its newest reply), so a retry or a regenerate of it works as for any
-- turn; the thread is listed as its organisation says (library: index.lua). The field names
-- are those of store/schema.rs.
-- KEYS: 1 meta, 2 messages, 3 index, 4 turns, 5 tree, 6 path
-- ARGV: 1 thread id, 2 user id, 3 title, 4 createdAt (ms), 5 updatedAt (ms), 6 ttl (ms),
--       7 archived ('1' | ''), 8 pinned ('1' | ''), 9 tags (JSON list, '' for none),
--       10 metadata (JSON object, '' for none), 11 external id ('' for none), 12 the list
--       index of the active branch's last message (-1: none), 13 '1' when the thread needs a
--       tree, 14 model ('' for none), 15.. per message, oldest first: its parent's list index
--       (-1: none), its JSON
-- Returns 1 when written, 0 when the thread exists.
tree_load()
if redis.call('EXISTS', KEYS[1]) == 1 then
  return 0
end
local id, ttl = ARGV[1], ARGV[6]
local parents, jsons = {}, {}
for k = 15, #ARGV, 2 do
  parents[#parents + 1] = tonumber(ARGV[k])
  jsons[#jsons + 1] = ARGV[k + 1]
end
for k = 1, #jsons, 4000 do
  redis.call('RPUSH', KEYS[2], unpack(jsons, k, math.min(k + 3999, #jsons)))
end
local fields = {'id', id, 'userId', ARGV[2], 'title', ARGV[3], 'createdAt', ARGV[4],
  'updatedAt', ARGV[5], 'messageCount', #jsons, 'lastStatus', 'idle'}
for _, pair in ipairs({{'archived', ARGV[7]}, {'pinned', ARGV[8]}, {'tags', ARGV[9]},
    {'metadata', ARGV[10]}, {'model', ARGV[14]}}) do
  if pair[2] ~= '' then
    fields[#fields + 1] = pair[1]
    fields[#fields + 1] = pair[2]
  end
end
local leaf = tonumber(ARGV[12])
local ids, roles = {}, {}
for k, json in ipairs(jsons) do
  ids[k] = tree_id_of(json)
  roles[k] = string.match(json, '"role":"(%a+)"')
end
if leaf >= 0 then
  fields[#fields + 1] = 'activeLeafId'
  fields[#fields + 1] = ids[leaf + 1]
end
if ARGV[11] ~= '' then
  local external = KEYS[3] .. ':external'
  local owner = redis.call('HGET', external, ARGV[11])
  if not owner or redis.call('EXISTS', string.match(KEYS[1], '^(.-}:thread:)') .. owner .. ':meta') == 0 then
    redis.call('HSET', external, ARGV[11], id)
    redis.call('PEXPIRE', external, ttl)
    fields[#fields + 1] = 'externalId'
    fields[#fields + 1] = ARGV[11]
  end
end
if ARGV[13] == '1' then
  fields[#fields + 1] = 'tree'
  fields[#fields + 1] = '1'
  for k = 1, #jsons do
    Tree.add(KEYS[5], ids[k], k - 1, parents[k])
  end
  Tree.path_to(KEYS[5], KEYS[6], leaf)
  redis.call('PEXPIRE', KEYS[5], ttl)
  redis.call('PEXPIRE', KEYS[6], ttl)
end
redis.call('HSET', KEYS[1], unpack(fields))
-- Turn states: a user message's newest reply answers it.
local turns = {}
for k = 1, #jsons do
  local up = parents[k]
  if roles[k] == 'assistant' and up >= 0 and roles[up + 1] == 'user' then
    turns[#turns + 1] = ids[up + 1]
    turns[#turns + 1] = 'd:' .. (k - 1) .. ':' .. ids[k]
  end
end
for k = 1, #turns, 4000 do
  redis.call('HSET', KEYS[4], unpack(turns, k, math.min(k + 3999, #turns)))
end
reindex(KEYS[3], id, ARGV[5], KEYS[1], ttl)
for i = 1, 4 do
  redis.call('PEXPIRE', KEYS[i], ttl)
end
return 1
