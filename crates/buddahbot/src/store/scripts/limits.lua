-- Library prepended to the scripts that rate-limit (see scripts.rs): the generic cell rate
-- algorithm over several limits at once, plus an optional daily token budget. The request
-- passes only if every limit allows it and the budget is not spent, and only then is it
-- counted against the limits.
--
-- Reads KEYS[k0 ..]: the key holding the limits' state, then the day's token counter;
-- ARGV[a0]: the number of limits n, then per limit its period (ms) and allowed requests per
-- period, then the budget (tokens, 0 = none) and the ms until it resets.
-- The state (named after the limits, keys.rs) is each limit's theoretical arrival time (ms),
-- in order, then when the key expires, separated by spaces. The key lives at least the
-- longest period past the last request it counted: its expiry is set to twice that period
-- whenever less than one is left, so most requests write it keeping its expiry.
-- Returns {allowed (1|0), limit, remaining, reset (ms until fully replenished), retry after
-- (ms, 0 when allowed)} for the tightest limit; limit 0 when no limit applies.
-- Written for Redis's cost: one GET and one SET whatever the number of limits (each command
-- a script runs costs several times the command itself), an expiry set rarely (Redis
-- rewrites a relative one for its replicas), and plain arithmetic rather than calls to
-- library functions, which cost about as much as ten operations each.

-- ⌈x⌉ for x ≥ 0.
local function ceil(x)
  local c = x - x % 1
  if c < x then
    c = c + 1
  end
  return c
end

local function rate_limit(k0, a0, now)
  local n = ARGV[a0] + 0
  local budget = ARGV[a0 + 1 + 2 * n] + 0
  if budget > 0 then
    local used = tonumber(redis.call('GET', KEYS[k0 + (n > 0 and 1 or 0)]) or '0')
    if used >= budget then
      local reset = ARGV[a0 + 2 + 2 * n] + 0
      return {0, budget, 0, reset, reset}
    end
  end
  if n == 0 then
    return {1, 0, 0, 0, 0}
  end
  local cells = {}
  for cell in string.gmatch(redis.call('GET', KEYS[k0]) or '', '[^ ]+') do
    cells[#cells + 1] = cell
  end
  -- Each limit's arrival time once this request is counted, and the tightest limit: the one
  -- that refuses latest, or, when all allow, the one with the fewest requests left.
  local tats = {}
  local longest, expires = 0, cells[n + 1]
  local pick, pick_retry, pick_remaining = 0, 0, 0
  for i = 1, n do
    local period = ARGV[a0 - 1 + 2 * i] + 0
    local interval = period / ARGV[a0 + 2 * i]
    local tat = (cells[i] or now) + 0
    if tat < now then
      tat = now
    end
    tat = tat + interval
    tats[i] = tat
    if period > longest then
      longest = period
    end
    -- Admitting one more moves the arrival time on by one interval; it must stay within one
    -- period of now.
    local retry = tat - period - now
    if retry > 0 then
      if retry > pick_retry then
        pick, pick_retry = i, retry
      end
    elseif pick_retry == 0 then
      local left = (period - (tat - now)) / interval + 1e-9
      left = left - left % 1
      if pick == 0 or left < pick_remaining then
        pick, pick_remaining = i, left
      end
    end
  end
  local limit = ARGV[a0 + 2 * pick] + 0
  if pick_retry > 0 then
    local interval = ARGV[a0 - 1 + 2 * pick] / limit
    return {0, limit, 0, ceil(tats[pick] - interval - now), ceil(pick_retry)}
  end
  -- At least 1 ms: with huge limits the interval vanishes in the float precision of `now`.
  local reset = ceil(tats[pick] - now)
  if reset < 1 then
    reset = 1
  end
  -- Whole milliseconds, which Lua writes out whole (up to 14 digits: the year 5138).
  for i = 1, n do
    local tat = tats[i] + 0.5
    tats[i] = tat - tat % 1
  end
  if expires and expires - now > longest then
    tats[n + 1] = expires
    redis.call('SET', KEYS[k0], table.concat(tats, ' '), 'KEEPTTL')
  else
    tats[n + 1] = now + 2 * longest
    redis.call('SET', KEYS[k0], table.concat(tats, ' '), 'PX', 2 * longest)
  end
  return {1, limit, pick_remaining, reset, 0}
end
