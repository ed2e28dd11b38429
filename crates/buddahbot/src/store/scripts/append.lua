-- Library prepended to the turn scripts (see scripts.rs): appends the items of `items` to
-- `list`. A numeric loop: `ipairs` calls a library function per item, which costs Redis's Lua
-- about ten times an operation of its own.
local function append(list, items)
  local n = #list
  for i = 1, #items do
    list[n + i] = items[i]
  end
end
