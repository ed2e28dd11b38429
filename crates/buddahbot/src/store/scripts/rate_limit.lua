-- Generic cell rate algorithm over several limits at once, plus an optional daily token
-- budget: the request passes only if every limit allows it (and the budget is not spent),
-- and only then is it counted against the limits. One round trip, atomic.
-- KEYS: 1..n one key per limit (its theoretical arrival time, ms); n+1 the day's token
--       counter when a budget applies
-- ARGV: 1 now (ms), 2 n, then per limit: period (ms), allowed requests per period;
--       then budget (tokens, 0 = none), ms until the budget resets
-- Returns {allowed (1|0), limit, remaining, reset (ms until fully replenished),
--          retry after (ms, 0 when allowed)} for the tightest limit.
local now = tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local budget = tonumber(ARGV[3 + 2 * n])
if budget > 0 then
  local used = tonumber(redis.call('GET', KEYS[n + 1]) or '0')
  if used >= budget then
    local reset = tonumber(ARGV[4 + 2 * n])
    return {0, budget, 0, reset, reset}
  end
end
local tats, intervals, periods, limits = {}, {}, {}, {}
local blocked_retry, blocked_index = 0, 0
for i = 1, n do
  local period = tonumber(ARGV[1 + 2 * i])
  local limit = tonumber(ARGV[2 + 2 * i])
  local interval = period / limit
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
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
local tightest_limit, tightest_remaining, tightest_reset = 0, nil, 0
for i = 1, n do
  local new_tat = tats[i] + intervals[i]
  redis.call('SET', KEYS[i], string.format('%.0f', new_tat), 'PX', math.ceil(new_tat - now))
  local remaining = math.floor((periods[i] - (new_tat - now)) / intervals[i] + 1e-9)
  if tightest_remaining == nil or remaining < tightest_remaining then
    tightest_limit, tightest_remaining, tightest_reset = limits[i], remaining, math.ceil(new_tat - now)
  end
end
return {1, tightest_limit, tightest_remaining or 0, tightest_reset, 0}
