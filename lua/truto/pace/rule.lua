-- truto.pace.rule: the sliding-window rule of the rate budget, over any
-- store of numbers (a Lua table, a lua_shared_dict, Redis). The same source
-- runs in the client and inside Redis as the body of the store's
-- server-side script, so every store keeps one rule and one margin: it
-- must stay Lua 5.1, use no require, no globals and no clock of its own
-- (`now` is passed in, seconds on the clock the store's users share).
--
-- A budget (the token's, an account's) counts sends in buckets of a
-- twentieth of its window and allows a send while at most `limit` were made
-- in the last window plus one bucket (the margin that absorbs clock and
-- latency differences between here and Truto).
--
-- A reservation counts first and checks after, rolling its counts back
-- when over: two users of one store can both be refused at the edge, never
-- both allowed past it (a shared dict's or Redis's increments are atomic,
-- its reads of the buckets are not).
--
-- Store interface: s:get(k) -> number|nil; s:set(k, v, ttl, now);
-- optionally s:get_many(keys) -> a list of number|false (one round trip);
-- s:incr(k, n, ttl, now) -> new value (a missing key counts from 0, and
-- gets the ttl). Keys under a budget's key: |<window>|<bucket> counts,
-- |L |W a server's limit and window, |PL |PW the rule before a window
-- change, |U |R a server's reset time and what is left until it, |B the
-- end of a 429's block.

local R = {}

local BUCKETS = 20
local floor, max, ceil = math.floor, math.max, math.ceil

-- How long a server's limit and window are kept without being said again.
local LEARNED_TTL = 3600

-- The rule of a budget: the server's ratelimit-limit / window when one was
-- learned, else the configured one.
local function rule(s, key, limit, window)
  local l = s:get(key .. "|L")
  if l then return l, s:get(key .. "|W") or window, true end
  return limit, window, false
end

-- The counters of one window length: keys carry the window, so counts made
-- under another window are never read as if made under this one.
local function prefix(key, window)
  return key .. "|" .. string.format("%.6g", window) .. "|"
end

-- (bucket numbers stay below 10^14, so they print whole on every Lua,
-- Redis's 5.1 included.)
-- Sends counted under `p` in the last window plus one bucket, and the
-- oldest bucket that holds one.
local function count(s, p, g, now)
  local b = floor(now / g)
  local sum, oldest = 0, nil
  if s.get_many then -- one round for the whole window (Redis's MGET)
    local keys = {}
    for i = b - BUCKETS, b do keys[#keys + 1] = p .. i end
    local values = s:get_many(keys)
    for j = 1, #keys do
      local n = values[j]
      if n and n > 0 then
        sum = sum + n
        oldest = oldest or (b - BUCKETS + j - 1)
      end
    end
    return sum, oldest
  end
  for i = b - BUCKETS, b do
    local n = s:get(p .. i)
    if n and n > 0 then
      sum = sum + n
      oldest = oldest or i
    end
  end
  return sum, oldest
end

-- Counts a send under (limit, window) and returns the wait it implies (0:
-- within the budget). `undo` collects the increments to roll back; `p` is
-- the window's prefix when the caller has it.
local function take_window(s, key, limit, window, now, undo, p)
  local g = window / BUCKETS
  p = p or prefix(key, window)
  local k = p .. floor(now / g)
  s:incr(k, 1, window + 2 * g, now)
  undo[#undo + 1] = k
  local sum, oldest = count(s, p, g, now)
  if sum > limit then return (oldest + BUCKETS + 1) * g - now end
  return 0
end

-- R.budget(key, limit, window) -> a budget to reserve on: its key, the
-- configured rule and the key names it reads (made once per budget: a
-- reservation then builds no string but its buckets').
function R.budget(key, limit, window)
  return { key = key, limit = limit, window = window, p = prefix(key, window),
    B = key .. "|B", L = key .. "|L", W = key .. "|W", U = key .. "|U", R = key .. "|R",
    PL = key .. "|PL", PW = key .. "|PW" }
end

-- Counts a send on budget `b` and returns its wait; `undo` collects what
-- to roll back.
local function take(s, b, now, undo)
  local limit, window, p = b.limit, b.window, b.p
  local said = false
  local l = s:get(b.L)
  if l then -- the server's word
    said, limit = true, l
    local w = s:get(b.W)
    if w and w ~= window then window, p = w, nil end
  end
  local wait = take_window(s, b.key, limit, window, now, undo, p)
  -- until the sends counted before a window change leave the old window,
  -- the old rule holds too (only a server's word is ever changed so)
  local pw = said and s:get(b.PW)
  if pw and pw ~= window then
    wait = max(wait, take_window(s, b.key, s:get(b.PL) or limit, pw, now, undo))
  end
  -- the server said how many are left until its reset
  local u = s:get(b.U)
  if u and u > now then
    local left = s:incr(b.R, -1, u - now + 1, now)
    undo[#undo + 1] = b.R
    undo[b.R] = 1
    if left < 0 then wait = max(wait, u - now) end
  end
  return wait
end

-- R.reserve(s, budgets, now) -> 0 when a send may go now (and it is
-- counted in every budget), else the seconds to wait before asking again.
-- budgets: a list of R.budget(...).
function R.reserve(s, budgets, now)
  local wait = 0
  for i = 1, #budgets do
    local until_ = s:get(budgets[i].B) -- a 429's block: nothing counted
    if until_ and until_ > now then wait = max(wait, until_ - now) end
  end
  if wait > 0 then return wait end
  local undo = {}
  for i = 1, #budgets do wait = max(wait, take(s, budgets[i], now, undo)) end
  if wait > 0 then
    for i = 1, #undo do
      local k = undo[i]
      s:incr(k, undo[k] or -1, 1, now)
    end
  end
  return wait
end

-- R.blocked_until(s, keys, now) -> the latest end of a 429's block over
-- the keys, or nil.
function R.blocked_until(s, keys, now)
  local u = 0
  for i = 1, #keys do u = max(u, s:get(keys[i] .. "|B") or 0) end
  if u > now then return u end
  return nil
end

-- R.learn(s, key, limit, window, rl, now): what an answer's ratelimit-*
-- headers say about the budget at `key` (configured limit, window).
-- rl: { limit, window, remaining, reset } (any may be nil).
function R.learn(s, key, limit, window, rl, now)
  if rl.limit and rl.limit >= 1 and rl.window and rl.window > 0 then
    local said = s:get(key .. "|W") ~= nil
    local ol, ow = rule(s, key, limit, window)
    if ow ~= rl.window then
      -- the window changes: what was sent still counts in the new window,
      -- as if sent now (never earlier than it was); and when the old
      -- window was the server's own word, under the old rule too until it
      -- leaves the old window (a configured rule was only a guess: the
      -- server's replaces it at once)
      local og = ow / BUCKETS
      local sum = count(s, prefix(key, ow), og, now)
      if sum > 0 then
        if said then
          s:set(key .. "|PL", ol, ow + og, now)
          s:set(key .. "|PW", ow, ow + og, now)
        end
        local ng = rl.window / BUCKETS
        s:incr(prefix(key, rl.window) .. floor(now / ng), sum,
          rl.window + 2 * ng, now)
      end
    end
    s:set(key .. "|L", rl.limit, LEARNED_TTL, now)
    s:set(key .. "|W", rl.window, LEARNED_TTL, now)
  end
  if rl.remaining and rl.reset and rl.reset > 0 then
    -- ratelimit-reset is often whole seconds, rounded up: every answer of
    -- one window bounds its end from above, so keep the earliest bound
    -- (and the lowest remaining) until an answer names a later window
    local u, known = now + rl.reset, s:get(key .. "|U")
    local w = rl.window or window
    local ttl = ceil(rl.reset) + 1
    if known and known > now and u < known + w then
      if u < known then s:set(key .. "|U", u, ttl, now) end
      local left = s:get(key .. "|R")
      if not left or rl.remaining < left then s:set(key .. "|R", rl.remaining, ttl, now) end
    else
      s:set(key .. "|R", rl.remaining, ttl, now)
      s:set(key .. "|U", u, ttl, now)
    end
  end
end

-- A 429 blocks `key` for `wait` seconds (never shortens a longer block).
local function block(s, key, wait, now)
  local until_ = now + wait
  local prev = s:get(key .. "|B")
  if not prev or prev < until_ then s:set(key .. "|B", until_, wait + 1, now) end
end

-- R.answer(s, limits, token_key, account_key, status, rl, retry_after,
-- now, remote) -> "token" | "account" for a 429, else nil. What an answer
-- teaches: rl is { limit, window, remaining, reset } (checked by the
-- caller) or nil; a 429 blocks the budget it concerns for retry_after.
function R.answer(s, limits, tk, ak, status, rl, retry_after, now, remote)
  -- which budget the headers describe: the token's when their limit is at
  -- least the token's, else the account's (Truto's tighter one)
  local kind, key = "account", ak
  local token_rule = limits.token
  if not ak or (rl and rl.limit and token_rule and rl.limit >= token_rule.limit) then
    kind, key = "token", tk
  end
  local configured = limits[kind]
  if rl and key and configured then
    R.learn(s, key, configured.limit, configured.window, rl, now)
  end
  if status == 429 then
    -- a provider's own 429 (remote) concerns the account only
    if remote and ak then kind, key = "account", ak end
    -- blocked for as long as the answer says (a 429 that says nothing is
    -- left to the caller's backoff)
    local wait = retry_after or (rl and rl.reset)
    if wait and wait > 0 then block(s, key, wait, now) end
    return kind
  end
  return nil
end

return R
