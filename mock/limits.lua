-- mock.limits: the mock's rate limits, per token and per integrated
-- account, over fixed windows (the way Truto's own limits read:
-- 500 requests / 10 s per token, 50 / 10 s per integrated account).
--
-- The written form, for `mock/run --limits` and POST /__mock/configure:
--   "50/1,500/1"                 the first is per account, the second per token
--   "account=50/1,token=500/1"   the same, named (either may be left out)
--   "token=500/10"               only a per-token limit
--   "" or "off"                  no limits (only the counting headers)
-- Each item is REQUESTS/SECONDS; SECONDS may be a fraction ("5/0.5").
-- Pure Lua, no ngx (mock/run reads it too): never send an answer here.
local limits = {}

local SCOPES = { "account", "token" }

local function rule_of(text)
  local count, seconds = text:match("^%s*(%d+)%s*/%s*([%d%.]+)%s*$")
  count, seconds = tonumber(count), tonumber(seconds)
  if not count or not seconds or count < 1 or seconds <= 0 then
    return nil
  end
  return { limit = count, window = seconds }
end

-- limits.parse(text) -> { account = rule?, token = rule? } | nil, message
-- where rule = { limit = requests, window = seconds }.
function limits.parse(text)
  local parsed = {}
  if text == nil or text:match("^%s*$") or text:match("^%s*off%s*$") then
    return parsed
  end
  local position = 0
  for item in (text .. ","):gmatch("([^,]*),") do
    position = position + 1
    local scope, rest = item:match("^%s*(%a+)%s*=(.*)$")
    if not scope then
      scope, rest = SCOPES[position], item
    end
    if scope ~= "account" and scope ~= "token" then
      return nil, "limits: \"" .. item .. "\": name account= or token= (at most one of each)"
    elseif parsed[scope] then
      return nil, "limits: " .. scope .. " is given twice"
    end
    local rule = rule_of(rest)
    if not rule then
      return nil, "limits: \"" .. item .. "\" is not REQUESTS/SECONDS (e.g. 50/1)"
    end
    parsed[scope] = rule
  end
  return parsed
end

-- The written form of parsed limits ("off" when none).
function limits.format(parsed)
  local parts = {}
  for _, scope in ipairs(SCOPES) do
    local rule = parsed and parsed[scope]
    if rule then
      parts[#parts + 1] = ("%s=%d/%g"):format(scope, rule.limit, rule.window)
    end
  end
  return #parts > 0 and table.concat(parts, ",") or "off"
end

-- The counter of `key` in `counters` for a rule at time `now`: a fresh one
-- when the window it counted is over.
local function counter(counters, key, rule, now)
  local c = counters[key]
  if not c or now >= c.start + rule.window then
    c = { start = now, count = 0 }
    counters[key] = c
  end
  return c
end

-- limits.take(parsed, counters, keys, now) -> verdict
-- Counts one request against every rule that applies (keys.account and
-- keys.token name what it is counted against; a missing key skips its
-- rule). A request one rule refuses is counted against none. The verdict:
--   { refused = scope or nil, scope, limit, window, remaining, reset }
-- describing the refusing rule, else the one with the least left; nil when
-- no rule applies.
function limits.take(parsed, counters, keys, now)
  local applied = {}
  for _, scope in ipairs(SCOPES) do
    local rule = parsed[scope]
    if rule and keys[scope] then
      counters[scope] = counters[scope] or {}
      applied[#applied + 1] = { scope = scope, rule = rule,
        counter = counter(counters[scope], keys[scope], rule, now) }
    end
  end
  if #applied == 0 then
    return nil
  end
  local function verdict(a, refused)
    return { refused = refused and a.scope or nil, scope = a.scope, limit = a.rule.limit,
      window = a.rule.window, remaining = math.max(a.rule.limit - a.counter.count, 0),
      reset = math.max(a.counter.start + a.rule.window - now, 0) }
  end
  for _, a in ipairs(applied) do
    if a.counter.count >= a.rule.limit then
      return verdict(a, true)
    end
  end
  local tightest
  for _, a in ipairs(applied) do
    a.counter.count = a.counter.count + 1
    if not tightest or a.rule.limit - a.counter.count < tightest.rule.limit - tightest.counter.count then
      tightest = a
    end
  end
  return verdict(tightest, false)
end

return limits
