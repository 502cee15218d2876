-- truto.pace: the client's rate budget. Truto allows 500 requests per 10 s
-- per API token and 50 per 10 s per integrated account, and answers 429
-- beyond that; a client that knows it can wait instead of being refused.
--
-- Each budget (the token's, each account's) counts sends in a sliding
-- window (truto.pace.rule, shared by every store).
-- Answers adjust it: `ratelimit-limit: 110;w=10` replaces the limit and
-- window, `ratelimit-remaining` / `ratelimit-reset` cap what may be sent
-- until the reset, and a 429 blocks the budget it concerns until its
-- Retry-After has passed.
--
-- The counters live in a store (rate_limit_store): a plain table per
-- client by default, a lua_shared_dict so every nginx worker draws from the
-- same budget, or Redis for a fleet (truto.pace.redis). Pure bookkeeping: never sleeps, never reads a clock itself
-- (callers pass `now`, seconds on any clock shared by the store's users).

local M = {}

M.DEFAULTS = {
  token = { limit = 500, window = 10 },
  account = { limit = 50, window = 10 },
}

local rule = require "truto.pace.rule"

-- The bounds of a rule: a window under 1 ms leaves no time to count in, one
-- over a day outlives any answer's word; more than 10^6 sends per window
-- is no limit Truto has.
M.MIN_WINDOW, M.MAX_WINDOW, M.MAX_LIMIT = 0.001, 86400, 1e6

-- A store in a Lua table with the part of the lua_shared_dict API used;
-- `now` comes last in every call so entries can expire as the dict's do.
local function table_store()
  local data, expires = {}, {}
  local store = { name = "process" }
  function store.get(_, k) return data[k] end
  function store.set(_, k, v, ttl, now)
    data[k] = v
    expires[k] = ttl and now and now + ttl or nil
    return true
  end
  function store.incr(_, k, n, ttl, now)
    local v = data[k]
    if v == nil then
      v = 0
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
M.table_store = table_store

local function bad_rule(k)
  return nil, k .. " must be { limit = whole number 1 to 10^6, window = seconds from 0.001 to 86400 } or false"
end

-- Checks a rate_limits option value; returns the limits table or nil, why.
function M.check(v)
  if v == false then return false end
  if type(v) ~= "table" then return nil, "must be false or a table { token = { limit, window }, account = {...} }" end
  local out = {}
  for k, r in pairs(v) do
    if not M.DEFAULTS[k] then return nil, "has an unknown key " .. tostring(k) .. " (expected token, account)" end
    if r == false then
      out[k] = false
    else
      if type(r) ~= "table" then return bad_rule(k) end
      local limit, window = r.limit, r.window
      if type(limit) ~= "number" or not (limit >= 1 and limit <= M.MAX_LIMIT) or limit % 1 ~= 0
          or type(window) ~= "number" or not (window >= M.MIN_WINDOW and window <= M.MAX_WINDOW) then
        return bad_rule(k)
      end
      out[k] = { limit = limit, window = window }
    end
  end
  for k, d in pairs(M.DEFAULTS) do if out[k] == nil then out[k] = d end end
  return out
end

-- What an answer may teach: a limit and window inside the same bounds as
-- the option's (a hostile or broken server must not make the budget spin
-- or stall for a year).
function M.sane(rl)
  if not rl then return nil end
  local out = { remaining = rl.remaining, reset = rl.reset }
  if rl.limit and rl.window and rl.limit >= 1 and rl.limit <= M.MAX_LIMIT
      and rl.window >= M.MIN_WINDOW and rl.window <= M.MAX_WINDOW then
    out.limit, out.window = rl.limit, rl.window
  end
  if out.reset and not (out.reset > 0 and out.reset <= M.MAX_WINDOW) then out.reset = nil end
  return out
end

local Budget = {}
Budget.__index = Budget

-- M.new(limits, store, scope) -> budget. `scope` separates clients that
-- share a store (the token's hash).
function M.new(limits, store, scope)
  store = store or table_store()
  return setmetatable({ limits = limits, store = store, scope = scope or "",
    name = store.name or "dict", sends = 0, lists = {} }, Budget)
end

local function keys_of(self, account)
  local token_key = "t|" .. self.scope
  if account then return token_key, "a|" .. self.scope .. "|" .. account end
  return token_key, nil
end

-- The budgets a send on `account` draws from (truto.pace.rule's), made
-- once per account (forgotten with the store's sweep).
local function budgets_of(self, account)
  local list = self.lists[account or self]
  if list then return list end
  local tk, ak = keys_of(self, account)
  local t, a = self.limits.token, self.limits.account
  list = {}
  if t then list[#list + 1] = rule.budget(tk, t.limit, t.window) end
  if ak and a then list[#list + 1] = rule.budget(ak, a.limit, a.window) end
  self.lists[account or self] = list
  return list
end

-- budget:reserve(account, now) -> wait, store: wait is 0 when a send may go
-- now (and it is counted), else the seconds to wait before asking again;
-- store names what answered ("process" or "dict").
function Budget:reserve(account, now)
  local wait = rule.reserve(self.store, budgets_of(self, account), now)
  if wait == 0 then
    self.sends = self.sends + 1
    if self.sends % 1000 == 0 then
      if self.store.sweep then self.store:sweep(now) end
      self.lists = {}
    end
  end
  return wait, self.name
end

-- budget:blocked_until(account, now) -> the time the account (or the token)
-- is blocked until by a 429, or nil.
function Budget:blocked_until(account, now)
  local tk, ak = keys_of(self, account)
  return rule.blocked_until(self.store, { tk, ak }, now)
end

-- budget:learn(account, status, rate_limit, retry_after, now, remote)
-- Adjusts the budget from an answer: rate_limit is response.rate_limit's
-- { limit, window, remaining, reset }; a 429 blocks the account's budget
-- (the token's when the answer's limit is the token's) for retry_after.
-- Returns "token" or "account": what a 429 concerned.
function Budget:learn(account, status, rl, retry_after, now, remote)
  local tk, ak = keys_of(self, account)
  return rule.answer(self.store, self.limits, tk, ak, status, M.sane(rl), retry_after, now, remote)
end

-- M.scope_of(token) -> 16 hex digits that tell tokens apart in a store of
-- this process or nginx (a table, a lua_shared_dict) without putting the
-- token there: two polynomial hashes modulo primes below 2^32 (exact in
-- doubles on every Lua). Not a secret-keeping hash — that memory is the
-- process's own — only never the token itself; no libcrypto in truto.new.
function M.scope_of(token)
  local a, b = 7, 11
  for i = 1, #token do
    local c = token:byte(i)
    a = (a * 31 + c) % 4294967291
    b = (b * 131 + c) % 4294967279
  end
  return ("%08x%08x"):format(a, b)
end

-- M.shared_scope(token) -> 32 hex digits for key names in a store others
-- can read (Redis): SHA-256 (libcrypto's, core.sha256) of the token under
-- this module's own prefix, cut to 128 bits: one-way, so a key name gives
-- nothing back of the token.
function M.shared_scope(token)
  return (require("truto.core").sha256("truto-lua rate budget\0" .. token)):sub(1, 32)
end

-- The store of a lua_shared_dict, or an error when nginx has none by that
-- name.
function M.shared_store(name)
  local dict = rawget(_G, "ngx") and ngx.shared and ngx.shared[name]
  if not dict then return nil, "no lua_shared_dict named " .. tostring(name) .. " in nginx.conf" end
  return {
    name = "dict",
    get = function(_, k) return (dict:get(k)) end,
    set = function(_, k, v, ttl) return dict:set(k, v, ttl or 0) end,
    -- atomic across workers: the rule counts first and checks after
    incr = function(_, k, n, ttl) return (dict:incr(k, n, 0, ttl or 0)) end,
  }
end

-- M.check_store(v) -> the rate_limit_store option as used, or nil, why:
--   nil or "process"                  { kind = "process" }
--   { dict = "name" }                 { kind = "dict", name = ... }
--   "redis://[[user]:password@]host[:port][/db]" or { url = ..., prefix =
--   "truto:", timeout = 0.05, local_share = 0.25 }
--                                     { kind = "redis", host, port, user,
--                                       password, db, prefix, timeout, local_share }
-- Messages never repeat the URL (it may hold a password).
function M.check_store(v)
  if v == nil or v == "process" then return { kind = "process" } end
  if type(v) == "table" and v.dict ~= nil then
    if type(v.dict) ~= "string" or v.dict == "" then return nil, "dict must be the name of a lua_shared_dict" end
    for k in pairs(v) do
      if k ~= "dict" then return nil, "has an unknown key " .. tostring(k) .. " beside dict" end
    end
    return { kind = "dict", name = v.dict }
  end
  local options = type(v) == "table" and v or { url = v }
  if type(options.url) ~= "string" then
    return nil, 'must be "process", { dict = "name" }, "redis://[[user]:password@]host[:port][/db]"'
      .. ' or { url = "redis://...", prefix, timeout, local_share }'
  end
  for k in pairs(options) do
    if k ~= "url" and k ~= "prefix" and k ~= "timeout" and k ~= "local_share" then
      return nil, "has an unknown key " .. tostring(k) .. " (expected url, prefix, timeout, local_share)"
    end
  end
  local out, why = require("truto.pace.redis").parse(options.url)
  if not out then return nil, "url " .. why end
  out.kind = "redis"
  out.prefix = options.prefix == nil and "truto:" or options.prefix
  if type(out.prefix) ~= "string" or #out.prefix > 200 or out.prefix:find("[{}%c]") then
    return nil, "prefix must be a string of at most 200 characters without braces or control characters"
  end
  out.timeout = options.timeout == nil and 0.05 or options.timeout
  if type(out.timeout) ~= "number" or not (out.timeout >= 0.001 and out.timeout <= 10) then
    return nil, "timeout must be seconds from 0.001 to 10"
  end
  out.local_share = options.local_share == nil and 0.25 or options.local_share
  if type(out.local_share) ~= "number" or not (out.local_share > 0 and out.local_share <= 1) then
    return nil, "local_share must be a number above 0, at most 1"
  end
  return out
end

-- M.open(limits, token, store, dict) -> budget | nil, field, why: the
-- client's budget in the store its options name (store: check_store's
-- value; dict: the rate_limit_dict short form).
function M.open(limits, token, store, dict)
  store = store or { kind = "process" }
  if dict then
    if store.kind ~= "process" then
      return nil, "rate_limit_dict", "is the short form of rate_limit_store = { dict = ... }: give one of them"
    end
    store = { kind = "dict", name = dict }
  end
  -- clients with different tokens may share a store: keys carry a hash of
  -- the token, never the token
  if store.kind == "redis" then
    return require("truto.pace.redis").new(limits, store, M.shared_scope(token))
  end
  local scope = M.scope_of(token)
  local shared
  if store.kind == "dict" then
    local why
    shared, why = M.shared_store(store.name)
    if not shared then return nil, dict and "rate_limit_dict" or "rate_limit_store", why end
  end
  return M.new(limits, shared, scope)
end

return M
