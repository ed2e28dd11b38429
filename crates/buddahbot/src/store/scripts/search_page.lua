-- One stretch of a search (store/search.rs). Walks the documents of the first word group
-- newest first from the cursor, keeps those every other group holds too (a document is in a
-- group when one of the group's words holds it), and returns them with their thread's title
-- and the message, for the caller to check against the whole query and cut a snippet from.
-- Documents of deleted or replaced threads are skipped and taken out of the words read.
-- Stops after `want` documents or about `budget` commands' worth of work, whichever comes
-- first.
-- KEYS: 1 root (hash)
-- ARGV: 1 the user's key prefix (`user:{<id>}:`), 2 generation, 3 cursor score ('+inf' at
--       the start), 4 cursor document ('' at the start), 5 want, 6 budget, 7 archived
--       ('exclude', 'only' or 'all'), 8.. per group: n, then n words
-- Returns {score, document where it stopped, '1' when nothing is left after it else '0', then
-- per document: document, score, thread id, title, '1' when archived else '', the message
-- JSON ('' for a title)}; {} when another generation started.
local root = KEYS[1]
if redis.call('HGET', root, 'gen') ~= ARGV[2] then
  return {}
end
local prefix = ARGV[1]
local base = root .. ':' .. ARGV[2] .. ':w:'
local groups = {}
local i = 8
while i <= #ARGV do
  local n = tonumber(ARGV[i])
  local group = {}
  for k = 1, n do
    group[k] = base .. ARGV[i + k]
  end
  groups[#groups + 1] = group
  i = i + n + 1
end
local want, budget, archived = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]

-- The work done so far, in commands; 16 entries read or looked up count as one more.
local work = 0
local function call(cost, ...)
  work = work + 1 + cost / 16
  return redis.call(...)
end
local cursor_score, cursor_doc = ARGV[3], ARGV[4]

-- The next `n` documents of `key` after the cursor: by score, then document, descending.
local function after(key, n)
  local out = {}
  local offset = 0
  while true do
    local page = call(n, 'ZREVRANGEBYSCORE', key, cursor_score, '-inf', 'WITHSCORES',
      'LIMIT', offset, n)
    for j = 1, #page, 2 do
      local doc, score = page[j], page[j + 1]
      if cursor_doc == '' or score ~= cursor_score or doc < cursor_doc then
        out[#out + 1] = {doc, score, tonumber(score)}
        if #out == n then
          return out
        end
      end
    end
    if #page < 2 * n then
      return out
    end
    offset = offset + n
  end
end

local function newer(a, b)
  if a[3] ~= b[3] then
    return a[3] > b[3]
  end
  return a[1] > b[1]
end

-- The next documents of a group, at least `n` unless it runs out: its words' lists merged.
-- Each word gives `per` documents; the merge is complete down to the oldest of the words
-- that gave all `per` (older ones of theirs were not read), so it stops there. Returns the
-- documents, how many entries were read, and whether the group has nothing after them.
local function next_docs(group, n)
  if #group == 1 then
    local docs = after(group[1], n)
    return docs, #docs, #docs < n
  end
  local per = math.max(8, math.ceil(n / #group))
  local all, read = {}, 0
  local cutoff
  for _, key in ipairs(group) do
    local docs = after(key, per)
    read = read + #docs
    for _, entry in ipairs(docs) do
      all[#all + 1] = entry
    end
    if #docs == per and (not cutoff or newer(docs[per], cutoff)) then
      cutoff = docs[per]
    end
  end
  table.sort(all, newer)
  local out = {}
  for _, entry in ipairs(all) do
    if cutoff and newer(cutoff, entry) then
      break
    end
    -- A document has one score, so its copies from several words are side by side.
    if #out == 0 or out[#out][1] ~= entry[1] then
      out[#out + 1] = entry
    end
  end
  return out, read, cutoff == nil
end

-- Threads by number: {id, title, archived} while they are what the index numbered, or false.
local threads = {}
local function thread_of(num)
  local t = threads[num]
  if t ~= nil then
    return t
  end
  t = false
  local id = call(0, 'HGET', root, 'n:' .. num)
  if id then
    local state = call(0, 'HGET', root, 't:' .. id)
    local meta = call(0, 'HMGET', prefix .. 'thread:' .. id .. ':meta', 'title', 'archived',
      'createdAt')
    if state and meta[1] and state == string.match(state, '^' .. num .. ' %d+ ' .. meta[3] .. '$')
    then
      t = {id, meta[1], meta[2] == '1' and '1' or ''}
    end
  end
  threads[num] = t
  return t
end

-- Documents walked per step: fewer when each costs lookups in many words.
local per_doc = 0
for g = 2, #groups do
  per_doc = per_doc + #groups[g]
end
local chunk = math.max(8, math.min(64, math.floor(256 / math.max(per_doc, 1))))

local out = {}
local found, done = 0, '0'
while found < want and work < budget do
  local batch, _, last = next_docs(groups[1], chunk)
  local docs = {}
  for k, entry in ipairs(batch) do
    docs[k] = entry[1]
  end
  local keep = {}
  for k = 1, #docs do
    keep[k] = true
  end
  for g = 2, #groups do
    local hit = {}
    if #docs > 0 then
      for _, key in ipairs(groups[g]) do
        local scores = call(#docs, 'ZMSCORE', key, unpack(docs))
        for k = 1, #docs do
          if scores[k] then
            hit[k] = true
          end
        end
      end
    end
    for k = 1, #docs do
      keep[k] = keep[k] and hit[k] or false
    end
  end
  local dead = {}
  local used = 0
  for k, entry in ipairs(batch) do
    used = k
    cursor_doc, cursor_score = entry[1], entry[2]
    local num, idx = string.match(entry[1], '^(%d+):(.+)$')
    local t = thread_of(num)
    if not t then
      dead[#dead + 1] = entry[1]
    elseif keep[k] and (archived == 'all' or (archived == 'only') == (t[3] == '1')) then
      local body = ''
      if idx ~= 't' then
        body = call(0, 'LINDEX', prefix .. 'thread:' .. t[1] .. ':messages', idx)
      end
      if body then
        out[#out + 1] = entry[1]
        out[#out + 1] = entry[2]
        out[#out + 1] = t[1]
        out[#out + 1] = t[2]
        out[#out + 1] = t[3]
        out[#out + 1] = body
        found = found + 1
        if found == want then
          break
        end
      end
    end
  end
  if #dead > 0 then
    for _, group in ipairs(groups) do
      for _, key in ipairs(group) do
        redis.call('ZREM', key, unpack(dead))
      end
    end
  end
  if used == #batch and last then
    done = '1'
    break
  end
end
local result = {cursor_score, cursor_doc, done}
for _, v in ipairs(out) do
  result[#result + 1] = v
end
return result
