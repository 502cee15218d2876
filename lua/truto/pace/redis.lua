-- truto.pace.redis: the rate budget in Redis, shared by every client that
-- names the same Redis and token, on any machine (rate_limit_store =
-- "redis://..."). Same interface as a truto.pace budget: reserve, learn,
-- blocked_until.
--
-- Each of those is one server-side script (EVALSHA, loaded again on
-- NOSCRIPT) that runs truto.pace.rule, the very source the process budget
-- runs, on Redis's own clock (TIME), so checking and counting the token's
-- and the account's windows is one atomic step for the whole fleet. Keys:
-- <prefix>{<hash of the token>}:t... and ...:a|<account>..., every one
-- with an expiry; the hash tag puts one token's keys in one Cluster slot.
--
-- Clients: hiredis from the C core (blocking, with the store's timeout)
-- outside nginx; cosockets (resty.redis, or Debian's nginx.redis) inside
-- nginx where cosockets run, never blocking a worker. Inside HAProxy (and
-- nginx phases without cosockets) nothing may block the event loop and
-- there is no client: the local budget below is used, and said.
--
-- Redis trouble never fails a call: unreachable, slower than `timeout`,
-- restarted, flushed or answering errors, the client goes on under a local
-- budget of local_share x the limits, asks Redis again at most once a
-- second, and reports which answered ("redis" or "local").

local M = {}

-- How long to go on locally after Redis failed before asking it again.
M.RETRY_SECONDS = 1

-- Redis servers that failed lately, per process (per nginx worker): pool
-- -> { until_ = monotonic seconds, why }. Every client of that server then
-- waits out the same second, so clients made per request (as in nginx) do
-- not each spend a timeout on a Redis that is away.
local down = {}

-- The script: truto.pace.rule's source, then the store over Redis's keys
-- and the three operations. ARGV: op, token limit, token window, account
-- limit, account window, account ("" for none), then learn's fields.
local SCRIPT_BODY = [[
local base = KEYS[1]
local time = redis.call("TIME")
local now = tonumber(time[1]) + tonumber(time[2]) / 1e6
local function ms(ttl) return math.max(1, math.ceil(ttl * 1000)) end
local s = {}
function s.get(_, k)
  local v = redis.call("GET", base .. k)
  if v then return tonumber(v) end
  return nil
end
function s.get_many(_, keys)
  local full = {}
  for i = 1, #keys do full[i] = base .. keys[i] end
  local values = redis.call("MGET", unpack(full))
  for i = 1, #values do values[i] = values[i] and tonumber(values[i]) or false end
  return values
end
function s.set(_, k, v, ttl)
  redis.call("SET", base .. k, string.format("%.17g", v), "PX", ms(ttl))
end
function s.incr(_, k, n, ttl)
  local v = redis.call("INCRBY", base .. k, n)
  if v == n then redis.call("PEXPIRE", base .. k, ms(ttl)) end
  return v
end
local function arg(i) local v = ARGV[i]; if v == nil or v == "" then return nil end return tonumber(v) or v end
local limits = {}
if arg(2) then limits.token = { limit = arg(2), window = arg(3) } end
if arg(4) then limits.account = { limit = arg(4), window = arg(5) } end
local account = ARGV[6] ~= "" and ARGV[6] or nil -- a string as given (never a number)
local ak = account and ("a|" .. account) or nil
local op = ARGV[1]
if op == "reserve" then
  local budgets = {}
  if limits.token then budgets[#budgets + 1] = R.budget("t", limits.token.limit, limits.token.window) end
  if ak and limits.account then budgets[#budgets + 1] = R.budget(ak, limits.account.limit, limits.account.window) end
  return string.format("%.6f", R.reserve(s, budgets, now))
elseif op == "learn" then
  local rl
  if arg(8) or arg(10) then
    rl = { limit = arg(8), window = arg(9), remaining = arg(10), reset = arg(11) }
  end
  return R.answer(s, limits, "t", ak, arg(7), rl, arg(12), now, ARGV[13] == "1") or false
elseif op == "blocked" then
  local u = R.blocked_until(s, { "t", ak }, now)
  if u then return string.format("%.6f", u - now) end
  return false
end
return redis.error_reply("unknown operation")
]]

-- Where require would find a module's file (package.searchpath is 5.2+).
local function search(name)
  local file = name:gsub("%.", "/")
  for template in package.path:gmatch("[^;]+") do
    local path = template:gsub("%?", file)
    local f = io.open(path, "rb")
    if f then return path, f end
  end
  return nil
end

-- The script's source, or nil and why (never raises: a call must not fail
-- for it, the local budget takes over).
local script_source
local function script()
  if script_source then return script_source end
  local path, f = search("truto.pace.rule")
  if not path then return nil, "truto.pace.rule's source is not on package.path" end
  local src = f:read("*a")
  f:close()
  script_source = "local R = (function()\n" .. src .. "\nend)()\n" .. SCRIPT_BODY
  return script_source
end
M.script = script

local function decode(s) return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)) end

-- M.parse(url) -> { host, port, user, password, db } | nil, why.
-- redis://[[user]:password@]host[:port][/db]; never echoes the password.
function M.parse(url)
  local rest = url:match("^redis://(.*)$")
  if not rest then return nil, "must start with redis://" end
  local out = { port = 6379, db = 0 }
  local auth, hostpart = rest:match("^(.*)@([^@]*)$")
  if auth then
    local user, password = auth:match("^([^:]*):(.*)$")
    if not user then return nil, "must give the password after a colon (redis://[user]:password@host)" end
    if user ~= "" then out.user = decode(user) end
    out.password = decode(password)
  else
    hostpart = rest
  end
  local host, tail = hostpart:match("^%[([%x:.]+)%](.*)$")
  if not host then host, tail = hostpart:match("^([^:/%[%]]+)(.*)$") end
  if not host then return nil, "has no host" end
  out.host = host
  local port, after = tail:match("^:(%d+)(.*)$")
  if port then
    out.port = tonumber(port)
    if out.port < 1 or out.port > 65535 then return nil, "has a port outside 1 to 65535" end
    tail = after
  end
  if tail ~= "" then
    local db = tail:match("^/(%d*)$")
    if not db then return nil, "has something after the host that is not :port or /db" end
    if db ~= "" then out.db = tonumber(db) end
    if out.db > 1e6 then return nil, "has a db number too large" end
  end
  return out
end

-- The local budget's limits: local_share of each (at least one send).
local function shared_out(limits, share)
  local out = {}
  for k, r in pairs(limits) do
    out[k] = r and { limit = math.max(1, math.floor(r.limit * share)), window = r.window } or false
  end
  return out
end

local function in_haproxy()
  local core = rawget(_G, "core")
  return type(core) == "table" and type(core.tcp) == "function" and type(core.register_action) == "function"
end

-- nginx phases where cosockets run (elsewhere a worker would block).
local COSOCKET_PHASES = { rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true }

local function nginx_phase()
  local ngx = rawget(_G, "ngx")
  if type(ngx) == "table" and type(ngx.get_phase) == "function" then return ngx.get_phase() end
  return nil
end

-- Drivers: run(self, ...) -> reply | nil, message, kind ("reply" when Redis
-- answered an error, "io" otherwise). A nil reply is false.

-- Whether a failure was Redis being slower than the timeout (hiredis says
-- EAGAIN's text, cosockets "timeout").
function M.slow(err)
  err = tostring(err)
  return err:find("timeout", 1, true) ~= nil or err:find("temporarily unavailable", 1, true) ~= nil
end

local hiredis = {}

local function hiredis_connect(store)
  local o = store.options
  local conn, why = require("truto.core").redis_connect(o.host, o.port, o.timeout)
  if not conn then return nil, why, "io" end
  local ok, err, kind = true, nil, nil
  if o.password then
    if o.user then ok, err, kind = conn:command("AUTH", o.user, o.password)
    else ok, err, kind = conn:command("AUTH", o.password) end
    if not ok then err = "AUTH: " .. tostring(err) end
  end
  if ok and o.db ~= 0 then
    ok, err, kind = conn:command("SELECT", tostring(o.db))
    if not ok then err = "SELECT: " .. tostring(err) end
  end
  if not ok then
    if kind ~= "io" then conn:close() end
    return nil, err, kind
  end
  return conn
end

function hiredis.run(store, ...)
  local kept = store.conn
  local conn = kept
  if not conn then
    local err, kind
    conn, err, kind = hiredis_connect(store)
    if not conn then return nil, err, kind end
    store.conn = conn
  end
  local reply, err, kind = conn:command(...)
  if kind == "io" then
    store.conn = nil
    -- a kept connection Redis closed (restarted): one new one, not when
    -- Redis was merely slow
    if kept and not M.slow(err) then return hiredis.run(store, ...) end
  end
  return reply, err, kind
end

function hiredis.close(store)
  if store.conn then store.conn:close(); store.conn = nil end
end

local cosocket = {}

local resty_redis
local function load_resty()
  if resty_redis == nil then
    local ok, mod = pcall(require, "resty.redis")
    if not ok then ok, mod = pcall(require, "nginx.redis") end -- Debian's name
    resty_redis = ok and mod or false
  end
  return resty_redis
end

function cosocket.run(store, cmd, ...)
  local redis = load_resty()
  if not redis then return nil, "no resty.redis (Debian: lua-nginx-redis) in nginx's lua_package_path", "io" end
  local o = store.options
  local red = redis:new()
  red:set_timeout(math.max(1, math.floor(o.timeout * 1000)))
  local ok, err = red:connect(o.host, o.port, { pool = store.pool })
  if not ok then return nil, err, "io" end
  local kept = (red:get_reused_times() or 0) > 0
  if not kept then
    if o.password then
      if o.user then ok, err = red:auth(o.user, o.password) else ok, err = red:auth(o.password) end
      if not ok then red:close(); return nil, "AUTH: " .. tostring(err), ok == false and "reply" or "io" end
    end
    if o.db ~= 0 then
      ok, err = red:select(o.db)
      if not ok then red:close(); return nil, "SELECT: " .. tostring(err), ok == false and "reply" or "io" end
    end
  end
  local reply
  reply, err = red[cmd:lower()](red, ...)
  if reply == nil then
    red:close()
    -- a kept connection Redis closed (restarted): one new one, not when
    -- Redis was merely slow
    if kept and not M.slow(err) then return cosocket.run(store, cmd, ...) end
    return nil, err, "io"
  end
  red:set_keepalive(60000, 32)
  if reply == false then return nil, err, "reply" end
  if reply == ngx.null then return false end
  return reply
end

function cosocket.close() end

local Store = {}
Store.__index = Store

-- M.new(limits, options, scope) -> a budget in Redis. options: the checked
-- rate_limit_store table (host, port, user, password, db, prefix, timeout,
-- local_share); scope: the token's hash.
function M.new(limits, options, scope)
  local pace = require "truto.pace"
  local function arg(r, f) return r and tostring(r[f]) or "" end
  return setmetatable({
    limits = limits, options = options,
    key = options.prefix .. "{" .. scope .. "}:",
    fixed = { arg(limits.token, "limit"), arg(limits.token, "window"),
      arg(limits.account, "limit"), arg(limits.account, "window") },
    pool = ("truto-redis:%s:%d:%d:%s"):format(options.host, options.port, options.db, options.user or ""),
    fallback = pace.new(shared_out(limits, options.local_share), nil, scope),
    retry_at = nil, sha = nil, why = nil,
  }, Store)
end

-- The driver for where this runs, or nil (and why) where none may run.
function Store.driver()
  local phase = nginx_phase()
  if phase then
    if COSOCKET_PHASES[phase] then return cosocket end
    return nil, "no cosockets in nginx's " .. phase .. " phase"
  end
  if in_haproxy() then return nil, "inside HAProxy (no Redis client that would not block its event loop)" end
  return hiredis
end

-- driver.run under pcall: a client library that raises is one more way
-- for Redis to be unusable, never a failed call.
local function guarded(driver, store, ...)
  local ok, reply, err, kind = pcall(driver.run, store, ...)
  if ok then return reply, err, kind end
  return nil, reply, "io"
end

-- Runs one operation's script; returns true and its reply, or nil and why.
function Store:eval(now, op, account, ...)
  if self.retry_at and now < self.retry_at then return nil, self.why end
  local known = down[self.pool]
  if known then
    if require("truto.core").now() < known.until_ then
      self.why, self.retry_at = known.why, now + M.RETRY_SECONDS
      return nil, self.why
    end
    down[self.pool] = nil
  end
  local driver, why = Store.driver()
  if not driver then -- asked each time: the same client may be used where it can
    self.why = why
    return nil, why
  end
  local reply, err, kind
  for _ = 1, 2 do
    if not self.sha then
      local source
      source, err = script()
      if not source then kind = "reply" break end
      self.sha, err, kind = guarded(driver, self, "SCRIPT", "LOAD", source)
      if not self.sha then break end
    end
    reply, err, kind = guarded(driver, self, "EVALSHA", self.sha, "1", self.key, op,
      self.fixed[1], self.fixed[2], self.fixed[3], self.fixed[4], account or "", ...)
    -- restarted or flushed: load the script again, once
    if reply ~= nil or kind ~= "reply" or not tostring(err):find("^NOSCRIPT") then break end
    self.sha = nil
  end
  if reply == nil then
    if kind == "io" then driver.close(self) end
    self.why = "Redis at " .. self.options.host .. ":" .. self.options.port .. ": " .. tostring(err)
    self.retry_at = now + M.RETRY_SECONDS
    down[self.pool] = { until_ = require("truto.core").now() + M.RETRY_SECONDS, why = self.why }
    return nil, self.why
  end
  self.retry_at, self.why = nil, nil
  return true, reply
end

-- store:reserve(account, now) -> wait, "redis" | "local" (see truto.pace).
function Store:reserve(account, now)
  local ok, reply = self:eval(now, "reserve", account)
  if ok then return tonumber(reply) or 0, "redis" end
  return (self.fallback:reserve(account, now)), "local"
end

-- store:learn(account, status, rl, retry_after, now, remote): recorded in
-- Redis so one client's 429 holds the whole fleet back (and locally).
function Store:learn(account, status, rl, retry_after, now, remote)
  local kind = self.fallback:learn(account, status, rl, retry_after, now, remote)
  rl = require("truto.pace").sane(rl)
  local function f(v) return v and tostring(v) or "" end
  local ok, reply = self:eval(now, "learn", account, f(status), f(rl and rl.limit), f(rl and rl.window),
    f(rl and rl.remaining), f(rl and rl.reset), f(retry_after), remote and "1" or "0")
  if ok then return reply or nil end
  return kind
end

-- store:blocked_until(account, now) -> time on the caller's clock | nil.
function Store:blocked_until(account, now)
  local ok, reply = self:eval(now, "blocked", account)
  if not ok then return self.fallback:blocked_until(account, now) end
  if reply then return now + tonumber(reply) end
  return nil
end

-- store:status() -> "redis" or "local", and why when local.
function Store:status()
  if self.why then return "local", self.why end
  return "redis"
end

function Store:close()
  hiredis.close(self)
end

return M
