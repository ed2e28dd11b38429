-- Library prepended to the scripts that rate-limit (see scripts.rs): the generic cell rate
-- algorithm over several limits at once, plus an optional daily token budget. The request
-- passes only if every limit allows it and the budget is not spent, and only then is it
-- counted against the limits.
--
-- Reads KEYS[k0 ..]: one key per limit (its theoretical arrival time, ms), then the day's
-- token counter; ARGV[a0]: the number of limits n, then per limit its period (ms) and allowed
-- requests per period, then the budget (tokens, 0 = none) and the ms until it resets.
-- Returns {allowed (1|0), limit, remaining, reset (ms until fully replenished), retry after
-- (ms, 0 when allowed)} for the tightest limit; limit 0 when no limit applies.
local function rate_limit(k0, a0, now)
  local n = tonumber(ARGV[a0])
  local budget = tonumber(ARGV[a0 + 1 + 2 * n])
  if budget > 0 then
    local used = tonumber(redis.call('GET', KEYS[k0 + n]) or '0')
    if used >= budget then
      local reset = tonumber(ARGV[a0 + 2 + 2 * n])
      return {0, budget, 0, reset, reset}
    end
  end
  local tats, intervals, periods, limits = {}, {}, {}, {}
  local stored = {}
  if n > 0 then
    stored = redis.call('MGET', unpack(KEYS, k0, k0 + n - 1))
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
  for i = 1, n do
    local new_tat = tats[i] + intervals[i]
    -- At least 1 ms: with huge limits the interval vanishes in the float precision of `now`.
    local ttl = math.max(1, math.ceil(new_tat - now))
    -- The cell lives a period (its arrival time is then past, as good as none): a string
    -- Redis reads as it is, where a number would be formatted first.
    redis.call('SET', KEYS[k0 - 1 + i], string.format('%.0f', new_tat), 'PX', ARGV[a0 - 1 + 2 * i])
    local remaining = math.floor((periods[i] - (new_tat - now)) / intervals[i] + 1e-9)
    if i == 1 or remaining < tightest_remaining then
      tightest_limit, tightest_remaining, tightest_reset = limits[i], remaining, ttl
    end
  end
  return {1, tightest_limit, tightest_remaining, tightest_reset, 0}
end
