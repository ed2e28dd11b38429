-- Library prepended to the scripts that add messages to a thread, switch its branch or read
-- one (see scripts.rs). A thread's messages are stored in its LIST in the order they were
-- written, never moved. While each message follows the one before it (a linear thread) that
-- is all there is. The first message that does not — an edit, a regenerated reply, an
-- explicit `parentId`, a switch to another branch — gives the thread a tree: meta `tree` =
-- '1', and
-- - the HASH `<thread>:tree` holding, for every message,
--     i<id>    -> its list index
--     m<index> -> '<id> <the parent's list index (-1 for none)> <depth (0 for a first
--                 message)>', plus ' <id of the message it edits>' for an AI SDK edit
--     c<index> -> the ids of its children, oldest first, space-separated ('c-1': the first
--                 messages);
-- - the LIST `<thread>:path`: the list indexes of the active branch, first message first
--   (its element at position d is the branch's message of depth d), each followed by `*`
--   when the message has siblings, so the latest page of the branch costs one range however
--   deep and branched the thread is, and only its branch points cost a look at the tree.
-- Meta `activeLeafId` names the last message of the active branch. Message ids are
-- `[A-Za-z0-9_-]`, so a space separates them. Field names are those of store/schema.rs.

-- The id a stored message's JSON starts with (a reply a regenerate replaced, written before
-- branches, starts with its `supersededBy` mark; its own id is the first `id` after it).
local function tree_id_of(json)
  return string.match(json, '"id":"([%w_%-]+)"')
end

-- Whether a stored message was replaced by a regenerate before branches existed.
local function tree_superseded(json)
  return string.sub(json, 1, 17) == '{"supersededBy":"'
end

-- The rest is made on first use (`tree_load()`): a script run that never reaches a thread's
-- tree (most turns of a linear thread) does not pay Redis's Lua for making its functions.
local Tree = {}

local function tree_load()
  if Tree.node then
    return
  end
  -- `m<index>` as (id, parent index, depth, origin or nil); nil for an unknown index.
  function Tree.node(tree, index)
    local m = redis.call('HGET', tree, 'm' .. index)
    if not m then
      return nil
    end
    local id, parent, depth, origin = string.match(m, '^(%S+) (%S+) (%S+) ?(%S*)$')
    return id, tonumber(parent), tonumber(depth), origin ~= '' and origin or nil
  end

  -- The list index of message `id`, or nil.
  function Tree.index(tree, id)
    local index = redis.call('HGET', tree, 'i' .. id)
    return index and tonumber(index)
  end

  -- The turn a regenerate means by `key`, the client's id for its user message: after an edit
  -- the client still calls the edited version by the original's id, so the version on the
  -- branch that ends at message `leaf` is taken (`key` itself when it is on that branch, or
  -- when the walk finds neither within 64 steps).
  function Tree.turn_key(tree, leaf, key)
    local at = Tree.index(tree, leaf)
    for _ = 1, 64 do
      if not at or at < 0 then
        break
      end
      local id, parent, _, origin = Tree.node(tree, at)
      if id == key then
        break
      end
      if origin == key then
        return id
      end
      at = parent
    end
    return key
  end

  -- Records message `id` at list index `index` under the message at `parent` (-1: none).
  function Tree.add(tree, id, index, parent, origin)
    local depth = 0
    if parent >= 0 then
      local _, _, up = Tree.node(tree, parent)
      depth = (up or -1) + 1
    end
    local m = id .. ' ' .. parent .. ' ' .. depth
    if origin then
      m = m .. ' ' .. origin
    end
    local kids = redis.call('HGET', tree, 'c' .. parent)
    redis.call('HSET', tree, 'i' .. id, index, 'm' .. index, m,
      'c' .. parent, kids and (kids .. ' ' .. id) or id)
  end

  -- A path element: the list index, marked when its parent has more than one child.
  function Tree.entry(tree, index, parent)
    local kids = redis.call('HGET', tree, 'c' .. parent)
    if kids and string.find(kids, ' ', 1, true) then
      return index .. '*'
    end
    return tostring(index)
  end

  -- A path element's list index, and whether it is marked.
  function Tree.entry_index(entry)
    if not entry then
      return nil, false
    end
    local index = tonumber(entry)
    if index then
      return index, false
    end
    return tonumber(string.sub(entry, 1, -2)), true
  end

  -- Appends the message at `index` (under `parent`) to the active branch.
  function Tree.push(tree, path, index, parent)
    redis.call('RPUSH', path, Tree.entry(tree, index, parent))
  end

  -- The newest leaf under the message at `index`: its newest child's newest child, and so on.
  function Tree.newest_leaf(tree, index)
    while true do
      local kids = redis.call('HGET', tree, 'c' .. index)
      if not kids then
        return index
      end
      index = Tree.index(tree, string.match(kids, '(%S+)$'))
    end
  end

  -- Makes the active branch the one ending at list index `leaf` (-1: none): the path keeps
  -- what the two branches share and takes the rest from the tree, so a switch costs the
  -- distance to where they part.
  function Tree.path_to(tree, path, leaf)
    local climb = {}
    local at = leaf
    local shared = -1
    while at >= 0 do
      local _, parent, depth = Tree.node(tree, at)
      if not depth then
        break
      end
      if Tree.entry_index(redis.call('LINDEX', path, depth)) == at then
        shared = depth
        break
      end
      climb[#climb + 1] = Tree.entry(tree, at, parent)
      at = parent
    end
    if shared >= 0 then
      redis.call('LTRIM', path, 0, shared)
    else
      redis.call('DEL', path)
    end
    for k = #climb, 1, -1 do
      redis.call('RPUSH', path, climb[k])
    end
  end

  -- Gives a linear thread its tree: each message follows the last one before it that no
  -- regenerate replaced (a replaced reply is a sibling of its replacement). Written in
  -- batches (a command's arguments have a limit). Sets meta `tree` and `activeLeafId` (the
  -- last message of that line) and returns the leaf's list index (-1 for an empty thread).
  function Tree.build(meta, messages, tree, path, ttl)
    local fields, kids, line_indexes, line_parents = {}, {}, {}, {}
    local line, leaf_id = -1, nil
    local function flush()
      if #fields > 0 then
        redis.call('HSET', tree, unpack(fields))
        fields = {}
      end
    end
    for i, json in ipairs(redis.call('LRANGE', messages, 0, -1)) do
      local index = i - 1
      local id = tree_id_of(json)
      if id then
        -- The line so far is this message's branch: its depth is the line's length.
        local depth = #line_indexes
        fields[#fields + 1] = 'i' .. id
        fields[#fields + 1] = index
        fields[#fields + 1] = 'm' .. index
        fields[#fields + 1] = id .. ' ' .. line .. ' ' .. depth
        local c = kids[line]
        kids[line] = c and (c .. ' ' .. id) or id
        if not tree_superseded(json) then
          line_parents[#line_indexes + 1] = line
          line, leaf_id = index, id
          line_indexes[#line_indexes + 1] = index
        end
        if #fields >= 4000 then
          flush()
        end
      end
    end
    for k, parent in ipairs(line_parents) do
      if string.find(kids[parent], ' ', 1, true) then
        line_indexes[k] = line_indexes[k] .. '*'
      end
    end
    for parent, ids in pairs(kids) do
      fields[#fields + 1] = 'c' .. parent
      fields[#fields + 1] = ids
      if #fields >= 4000 then
        flush()
      end
    end
    flush()
    redis.call('DEL', path)
    for k = 1, #line_indexes, 4000 do
      redis.call('RPUSH', path, unpack(line_indexes, k, math.min(k + 3999, #line_indexes)))
    end
    redis.call('HSET', meta, 'tree', '1')
    if leaf_id then
      redis.call('HSET', meta, 'activeLeafId', leaf_id)
      if tonumber(ttl) > 0 then
        redis.call('PEXPIRE', tree, ttl)
        redis.call('PEXPIRE', path, ttl)
      end
    else
      redis.call('HDEL', meta, 'activeLeafId')
    end
    return line
  end
end
