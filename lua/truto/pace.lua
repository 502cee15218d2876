-- truto.pace: the client's rate budget. Truto allows 500 requests per 10 s
-- per API token and 50 per 10 s per integrated account, and answers 429
-- beyond that; a client that knows it can wait instead of being refused.
--
-- Each budget (the token's, each account's) counts sends in buckets of a
-- twentieth of its window and allows a send while fewer than `limit` were
-- made in the last window plus one bucket (the extra bucket is the margin
-- that absorbs the clock and latency differences between here and Truto).
-- Answers adjust it: `ratelimit-limit: 110;w=10` replaces the limit and
-- window, `ratelimit-remaining` / `ratelimit-reset` cap what may be sent
-- until the reset, and a 429 blocks the budget it concerns until its
-- Retry-After has passed.
--
-- The counters live in a store: a plain table per client by default, or a
-- lua_shared_dict (rate_limit_dict) so every nginx worker draws from the
-- same budget. Pure bookkeeping: never sleeps, never reads a clock itself
-- (callers pass `now`, seconds on any clock shared by the store's users).

local M = {}

M.DEFAULTS = {
  token = { limit = 500, window = 10 },
  account = { limit = 50, window = 10 },
}

local BUCKETS = 20 -- per window

-- A store in a Lua table with the part of the lua_shared_dict API used;
-- `now` comes last in every call so entries can expire as the dict's do.
local function table_store()
  local data, expires = {}, {}
  local store = {}
  function store.get(_, k) return data[k] end
  function store.set(_, k, v, ttl, now)
    data[k] = v
    expires[k] = ttl and now and now + ttl or nil
    return true
  end
  function store.incr(_, k, n, init, ttl, now)
    local v = data[k]
    if v == nil then
      v = init or 0
      expires[k] = ttl and now and now + ttl or nil
    end
    v = v + n
    data[k] = v
    return v
  end
  -- forget what expired (a long-lived client must not grow)
  function store.sweep(_, now)
    for k, t in pairs(expires) do
      if t < now then data[k], expires[k] = nil, nil end
    end
  end
  return store
end

-- Checks a rate_limits option value; returns the limits table or nil, why.
function M.check(v)
  if v == false then return false end
  if type(v) ~= "table" then return nil, "must be false or a table { token = { limit, window }, account = {...} }" end
  local out = {}
  for k, rule in pairs(v) do
    if not M.DEFAULTS[k] then return nil, "has an unknown key " .. tostring(k) .. " (expected token, account)" end
    if rule == false then
      out[k] = false
    else
      if type(rule) ~= "table" or type(rule.limit) ~= "number" or rule.limit < 1 or rule.limit % 1 ~= 0
          or type(rule.window) ~= "number" or rule.window ~= rule.window or rule.window <= 0
          or rule.window == math.huge then
        return nil, k .. " must be { limit = whole number >= 1, window = seconds > 0 } or false"
      end
      out[k] = { limit = rule.limit, window = rule.window }
    end
  end
  for k, d in pairs(M.DEFAULTS) do if out[k] == nil then out[k] = d end end
  return out
end

local Budget = {}
Budget.__index = Budget

-- M.new(limits, store, scope) -> budget. `scope` separates clients that
-- share a store (the token's hash).
function M.new(limits, store, scope)
  return setmetatable({ limits = limits, store = store or table_store(), scope = scope or "",
    sends = 0 }, Budget)
end

-- The rule for a key (a server's ratelimit-limit wins over the configured).
function Budget:rule(kind, key)
  local s = self.store
  local limit = s:get(key .. "|L")
  if limit then return limit, s:get(key .. "|W") end
  local r = self.limits[kind]
  if not r then return nil end
  return r.limit, r.window
end

-- Seconds until a send on `key` is allowed (0 now), counting the buckets
-- of the last window and the server's own word.
function Budget:wait_for(kind, key, now)
  local limit, window = self:rule(kind, key)
  if not limit then return 0 end
  local s = self.store
  local blocked = s:get(key .. "|B")
  if blocked and blocked > now then return blocked - now end
  local g = window / BUCKETS
  local b = math.floor(now / g)
  local sum, oldest = 0, nil
  for i = b - BUCKETS, b do
    local n = s:get(key .. "|" .. i)
    if n and n > 0 then
      sum = sum + n
      oldest = oldest or i
    end
  end
  local wait = 0
  if sum >= limit then wait = (oldest + BUCKETS + 1) * g - now end
  -- the server said how many are left until its reset
  local until_ = s:get(key .. "|U")
  if until_ and until_ > now then
    local left = s:get(key .. "|R") or 0
    if left <= 0 then wait = math.max(wait, until_ - now) end
  end
  return wait
end

local function record(self, kind, key, now)
  local limit, window = self:rule(kind, key)
  if not limit then return end
  local s = self.store
  local g = window / BUCKETS
  local b = math.floor(now / g)
  s:incr(key .. "|" .. b, 1, 0, window * 2 + g, now)
  local until_ = s:get(key .. "|U")
  if until_ and until_ > now then s:incr(key .. "|R", -1, 0, nil, now) end
end

local function keys_of(self, account)
  local token_key = "t|" .. self.scope
  if account then return token_key, "a|" .. self.scope .. "|" .. account end
  return token_key, nil
end

-- budget:reserve(account, now) -> 0 when a send may go now (and it is
-- counted), else the seconds to wait before asking again.
function Budget:reserve(account, now)
  local tk, ak = keys_of(self, account)
  local wait = self:wait_for("token", tk, now)
  if ak then wait = math.max(wait, self:wait_for("account", ak, now)) end
  if wait > 0 then return wait end
  record(self, "token", tk, now)
  if ak then record(self, "account", ak, now) end
  self.sends = self.sends + 1
  if self.sends % 1000 == 0 and self.store.sweep then self.store:sweep(now) end
  return 0
end

-- budget:blocked_until(account, now) -> the time the account (or the token)
-- is blocked until by a 429, or nil.
function Budget:blocked_until(account, now)
  local tk, ak = keys_of(self, account)
  local t = self.store:get(tk .. "|B")
  local a = ak and self.store:get(ak .. "|B")
  local u = math.max(t or 0, a or 0)
  if u > now then return u end
  return nil
end

-- budget:learn(account, status, rate_limit, retry_after, now, remote)
-- Adjusts the budget from an answer: rate_limit is response.rate_limit's
-- { limit, window, remaining, reset }; a 429 blocks the account's budget
-- (the token's when the answer's limit is the token's) for retry_after.
-- Returns "token" or "account": what a 429 concerned.
function Budget:learn(account, status, rl, retry_after, now, remote)
  local tk, ak = keys_of(self, account)
  local s = self.store
  -- which budget the headers describe: the token's when their limit is at
  -- least the token's, else the account's (Truto's tighter one)
  local kind, key = "account", ak
  local token_rule = self.limits.token
  if not ak or (rl and rl.limit and token_rule and rl.limit >= token_rule.limit) then
    kind, key = "token", tk
  end
  if rl and key and self.limits[kind] then
    if rl.limit and rl.limit >= 1 and rl.window and rl.window > 0 then
      s:set(key .. "|L", rl.limit, 3600, now)
      s:set(key .. "|W", rl.window, 3600, now)
    end
    if rl.remaining and rl.reset and rl.reset > 0 then
      -- ratelimit-reset is often whole seconds, rounded up: every answer of
      -- one window bounds its end from above, so keep the earliest bound
      -- (and the lowest remaining) until an answer names a later window
      local u, known = now + rl.reset, s:get(key .. "|U")
      local window = rl.window or self.limits[kind].window
      if known and known > now and u < known + window then
        if u < known then s:set(key .. "|U", u, rl.reset + 1, now) end
        local left = s:get(key .. "|R")
        if not left or rl.remaining < left then s:set(key .. "|R", rl.remaining, rl.reset + 1, now) end
      else
        s:set(key .. "|R", rl.remaining, rl.reset + 1, now)
        s:set(key .. "|U", u, rl.reset + 1, now)
      end
    end
  end
  if status == 429 then
    -- a provider's own 429 (remote) concerns the account only
    if remote and ak then kind, key = "account", ak end
    -- blocked for as long as the answer says (a 429 that says nothing is
    -- left to the caller's backoff)
    local wait = retry_after or (rl and rl.reset)
    if wait and wait > 0 then
      local until_ = now + wait
      local prev = s:get(key .. "|B")
      if not prev or prev < until_ then s:set(key .. "|B", until_, wait + 1, now) end
    end
    return kind
  end
end

-- M.scope_of(token) -> 16 hex digits that tell tokens apart in a shared
-- store without putting the token there: two polynomial hashes modulo
-- primes below 2^32 (exact in doubles on every Lua). Not a secret-keeping
-- hash — the dict is the process's own memory — only never the token itself.
function M.scope_of(token)
  local a, b = 7, 11
  for i = 1, #token do
    local c = token:byte(i)
    a = (a * 31 + c) % 4294967291
    b = (b * 131 + c) % 4294967279
  end
  return ("%08x%08x"):format(a, b)
end

-- The store of a lua_shared_dict, or an error when nginx has none by that
-- name.
function M.shared_store(name)
  local dict = rawget(_G, "ngx") and ngx.shared and ngx.shared[name]
  if not dict then return nil, "no lua_shared_dict named " .. tostring(name) .. " in nginx.conf" end
  return {
    get = function(_, k) return (dict:get(k)) end,
    set = function(_, k, v, ttl) return dict:set(k, v, ttl or 0) end,
    incr = function(_, k, n, init, ttl) return (dict:incr(k, n, init or 0, ttl or 0)) end,
    delete = function(_, k) dict:delete(k) end,
  }
end

return M
