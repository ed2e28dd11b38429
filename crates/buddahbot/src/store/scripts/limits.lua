-- Library prepended to the scripts that rate-limit (see scripts.rs): the generic cell rate
-- algorithm over several limits at once, plus an optional daily token budget. The request
-- passes only if every limit allows it and the budget is not spent, and only then is it
-- counted against the limits.
--
-- Reads KEYS[k0 ..]: the key holding the limits' theoretical arrival times (ms, one per limit
-- in order, separated by spaces; named after the limits, keys.rs), then the day's token
-- counter; ARGV[a0]: the number of limits n, then per limit its period (ms) and allowed
-- requests per period, then the budget (tokens, 0 = none) and the ms until it resets.
-- Returns {allowed (1|0), limit, remaining, reset (ms until fully replenished), retry after
-- (ms, 0 when allowed)} for the tightest limit; limit 0 when no limit applies.
-- One GET and one SET whatever the number of limits: each command a script runs costs Redis
-- several times the command itself.
local function rate_limit(k0, a0, now)
  local n = tonumber(ARGV[a0])
  local budget = tonumber(ARGV[a0 + 1 + 2 * n])
  if budget > 0 then
    local used = tonumber(redis.call('GET', KEYS[k0 + (n > 0 and 1 or 0)]) or '0')
    if used >= budget then
      local reset = tonumber(ARGV[a0 + 2 + 2 * n])
      return {0, budget, 0, reset, reset}
    end
  end
  local tats, intervals, periods, limits = {}, {}, {}, {}
  local stored = {}
  if n > 0 then
    for tat in string.gmatch(redis.call('GET', KEYS[k0]) or '', '%d+') do
      stored[#stored + 1] = tat
    end
  end
  local blocked_retry, blocked_index = 0, 0
  for i = 1, n do
    local period = tonumber(ARGV[a0 - 1 + 2 * i])
    local limit = tonumber(ARGV[a0 + 2 * i])
    local interval = period / limit
    local tat = tonumber(stored[i] or now)
    if tat < now then tat = now end
    periods[i], limits[i], intervals[i], tats[i] = period, limit, interval, tat
    -- Admitting one more moves the arrival time on by one interval; it must stay within one
    -- period of now.
    local allow_at = tat + interval - period
    if allow_at > now and allow_at - now > blocked_retry then
      blocked_retry, blocked_index = allow_at - now, i
    end
  end
  if blocked_index > 0 then
    local i = blocked_index
    return {0, limits[i], 0, math.ceil(tats[i] - now), math.ceil(blocked_retry)}
  end
  local tightest_limit, tightest_remaining, tightest_reset = 0, 0, 0
  local cells, longest = {}, a0 + 1
  for i = 1, n do
    local new_tat = tats[i] + intervals[i]
    -- At least 1 ms: with huge limits the interval vanishes in the float precision of `now`.
    local ttl = math.max(1, math.ceil(new_tat - now))
    cells[i] = string.format('%.0f', new_tat)
    if periods[i] > tonumber(ARGV[longest]) then
      longest = a0 - 1 + 2 * i
    end
    local remaining = math.floor((periods[i] - (new_tat - now)) / intervals[i] + 1e-9)
    if i == 1 or remaining < tightest_remaining then
      tightest_limit, tightest_remaining, tightest_reset = limits[i], remaining, ttl
    end
  end
  if n > 0 then
    -- The cells live the longest period (an arrival time then past is as good as none).
    redis.call('SET', KEYS[k0], table.concat(cells, ' '), 'PX', ARGV[longest])
  end
  return {1, tightest_limit, tightest_remaining, tightest_reset, 0}
end
