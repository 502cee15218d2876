-- The rate budget in Redis (rate_limit_store = "redis://..."): one budget
-- for every client of one Redis and token, checked and counted atomically
-- by one server-side script; Redis trouble never fails a call (a local
-- budget of local_share x the limits, Redis asked again at most once a
-- second). Against a real redis-server on a loopback port of its own.
local truto = require "truto"
local pace = require "truto.pace"
local core = require "truto.core"
local socket = require "socket"
local mock = require "spec.support.mock"
local redis_server = require "spec.support.redis_server"
local sh = require "spec.support.sh"
local openresty = require "spec.support.openresty"
local haproxy = require "spec.support.haproxy"

local TOKEN = "fleet-spec-token-9f1c"

local function new_client(url, limits, extra)
  local config = { token = TOKEN, base_url = "http://127.0.0.1:9", rate_limit_store = url,
    rate_limits = limits or { token = { limit = 10, window = 60 }, account = { limit = 4, window = 60 } } }
  for k, v in pairs(extra or {}) do config[k] = v end
  return assert(truto.new(config))
end

-- Reserves until refused; returns how many went and the last store.
local function drain(c, account, now, most)
  local n, store = 0, nil
  for _ = 1, most or 1000 do
    local w
    w, store = c.pace:reserve(account, now or core.now())
    if w > 0 then break end
    n = n + 1
  end
  return n, store
end

describe("the Redis rate store", function()
  local r
  setup(function() r = redis_server.start() end)
  teardown(function() if r then r:close() end end)
  before_each(function() r:cli("FLUSHALL") end)

  it("is one budget for every client of the same Redis and token", function()
    local a, b = new_client(r.url), new_client(r.url)
    assert.equal(2, (drain(a, "acc-1", nil, 2)))
    local n, store = drain(b, "acc-1")
    assert.equal(2, n) -- the account's 4, shared
    assert.equal("redis", store)
    -- the token's 10 across accounts, shared
    assert.equal(4, (drain(a, "acc-2")))
    assert.equal(2, (drain(b, "acc-3")))
    local w, s = a.pace:reserve("acc-4", core.now())
    assert.is_true(w > 59 and w <= 63.1, tostring(w))
    assert.equal("redis", s)
  end)

  it("names keys by a SHA-256 of the token in a hash tag, never the token, and lets every key expire", function()
    local c = new_client(r.url, nil)
    drain(c, "acc-1", nil, 3)
    c.pace:learn("acc-1", 429, { limit = 4, window = 60, remaining = 0, reset = 30 }, 5, core.now())
    local keys = r:cli("KEYS", "*")
    local hash = core.sha256("truto-lua rate budget\0" .. TOKEN):sub(1, 32)
    local count = 0
    for key in keys:gmatch("[^\n]+") do
      count = count + 1
      assert.is_nil(key:find(TOKEN, 1, true))
      assert.equal("truto:{" .. hash .. "}:", key:sub(1, 41), key)
      local ttl = tonumber(r:cli("PTTL", key))
      assert.is_true(ttl > 0 and ttl <= 3600 * 1000, key .. " " .. ttl)
    end
    assert.is_true(count >= 6, keys) -- buckets, limit, window, remaining, reset, block
  end)

  it("forgets a window's counts once it has passed (keys expire)", function()
    -- a window long enough that a loaded machine still reads the key's TTL
    -- before it goes
    local c = new_client(r.url, { token = { limit = 3, window = 1.5 }, account = false })
    assert.equal(3, (drain(c)))
    local ttl = tonumber(r:cli("PTTL", r:cli("KEYS", "*"):match("[^\n]+")))
    assert.is_true(ttl > 0 and ttl <= 1650, tostring(ttl)) -- the window and a bucket's margin
    socket.sleep(1.7)
    assert.equal("0", r:cli("DBSIZE"))
    assert.equal(3, (drain(c)))
  end)

  it("never lets concurrent processes pass the budget", function()
    -- four plain Lua processes, 300 reservations each, against 500 per minute
    -- (a timeout of 2 s: this case is about sharing; under ASan on a loaded
    -- machine an answer can take longer than the default 50 ms, and the
    -- client then rightly counts locally)
    local code = ([[
      local truto = require "truto"
      local c = assert(truto.new{ token = %q, base_url = "http://127.0.0.1:9",
        rate_limit_store = { url = %q, timeout = 2 },
        rate_limits = { token = { limit = 500, window = 60 }, account = { limit = 500, window = 60 } } })
      local core = require "truto.core"
      while not io.open(%q) do core.sleep(0.001) end
      local n, stores = 0, {}
      for _ = 1, 300 do
        local w, s = c.pace:reserve("acc", core.now())
        stores[s] = true
        if w == 0 then n = n + 1 end
      end
      io.write(n, " ", stores["local"] and "local" or "redis")
    ]]):format(TOKEN, r.url, r.dir .. "/go")
    local lua = os.getenv("LUA") or "lua5.4"
    local pipes = {}
    for i = 1, 4 do
      pipes[i] = assert(io.popen(lua .. " -e " .. sh.quote(code) .. " 2>&1"))
    end
    socket.sleep(0.3)
    sh.write_file(r.dir .. "/go", "")
    local total = 0
    for i = 1, 4 do
      local out = pipes[i]:read("*a")
      pipes[i]:close()
      local n, store = out:match("^(%d+) (%a+)$")
      assert(n, out)
      assert.equal("redis", store)
      total = total + tonumber(n)
    end
    os.remove(r.dir .. "/go")
    assert.equal(500, total)
  end)

  it("keeps accounts whose ids read as large numbers apart", function()
    local c = new_client(r.url)
    assert.equal(4, (drain(c, "123456789012345678")))
    assert.equal(4, (drain(c, "123456789012345679")))
  end)

  it("records what answers teach, so one client's 429 holds the others back", function()
    local a, b = new_client(r.url), new_client(r.url)
    assert.equal("account", a.pace:learn("acc-1", 429, nil, 2, core.now()))
    local w, store = b.pace:reserve("acc-1", core.now())
    assert.is_true(w > 1.9 and w <= 2, tostring(w))
    assert.equal("redis", store)
    local t = core.now()
    local u = b.pace:blocked_until("acc-1", t)
    assert.is_true(u > t + 1.9 and u <= t + 2, tostring(u - t))
    assert.equal(0, (b.pace:reserve("acc-2", core.now())))
    -- ratelimit-remaining from one client's answer binds the other
    a.pace:learn("acc-3", 200, { limit = 4, window = 60, remaining = 1, reset = 30 }, nil, core.now())
    assert.equal(1, (drain(b, "acc-3")))
  end)

  it("loads its script again after a restart (NOSCRIPT) and a flush, still counting in Redis", function()
    local c = new_client(r.url)
    assert.equal(0, (c.pace:reserve("acc-1", core.now())))
    r:cli("SCRIPT", "FLUSH")
    local w, store = c.pace:reserve("acc-1", core.now())
    assert.equal(0, w)
    assert.equal("redis", store)
    r:stop()
    r:start()
    w, store = c.pace:reserve("acc-1", core.now())
    assert.equal(0, w)
    assert.equal("redis", store)
    -- a flush forgets the counts, nothing more
    r:cli("FLUSHALL")
    assert.equal(4, (drain(c, "acc-1")))
  end)

  describe("with AUTH and a db", function()
    local secured
    setup(function() secured = redis_server.start { password = "s3cret pass/word", user = "fleet" } end)
    teardown(function() if secured then secured:close() end end)

    it("authenticates as the URL's user and counts in the URL's db", function()
      local url = "redis://fleet:s3cret%20pass%2Fword@127.0.0.1:" .. secured.port .. "/3"
      local c = new_client(url)
      local n, store = drain(c, "acc-1")
      assert.equal(4, n)
      assert.equal("redis", store)
      assert.equal("0", secured:cli("DBSIZE"))
      assert.is_true(tonumber(secured:cli("-n", "3", "DBSIZE")) >= 1)
    end)

    it("goes on locally with a wrong password and says why, without the password", function()
      local c = new_client("redis://fleet:wrong-pass@127.0.0.1:" .. secured.port)
      local n, store = drain(c, "acc-1")
      assert.equal("local", store)
      assert.equal(1, n) -- a quarter of 4
      local state, why = c.pace:status()
      assert.equal("local", state)
      assert.matches("AUTH", why)
      assert.is_nil(why:find("wrong-pass", 1, true))
    end)
  end)

  describe("in trouble", function()
    it("unreachable: a local budget of local_share x the limits, Redis again after a second", function()
      local port = r.port
      r:stop()
      local c = new_client(r.url, { token = { limit = 40, window = 60 }, account = { limit = 8, window = 60 } },
        { rate_limit_store = { url = r.url, local_share = 0.5 } })
      local t0 = 100.0 -- the budget's clock, injected
      local n, store = drain(c, "acc-1", t0)
      assert.equal(4, n)
      assert.equal("local", store)
      r:start()
      assert.equal(port, r.port)
      -- within the second, Redis is not asked
      local _, s = c.pace:reserve("acc-2", t0 + 0.9)
      assert.equal("local", s)
      socket.sleep(1) -- the second this process's clients wait out together
      _, s = c.pace:reserve("acc-2", t0 + 1.01)
      assert.equal("redis", s)
    end)

    it("slower than timeout: local after about the timeout, once a second per process, back after", function()
      local c = new_client(nil, nil, { rate_limit_store = { url = r.url, timeout = 0.05 } })
      assert.equal("redis", select(2, c.pace:reserve("acc-1", 10.0)))
      r:pause()
      local started = socket.gettime()
      local w, store = c.pace:reserve("acc-1", 10.1)
      local took = socket.gettime() - started
      -- a client made now (as nginx makes one per request) does not spend
      -- another timeout on it within the second
      local other = new_client(nil, nil, { rate_limit_store = { url = r.url, timeout = 0.05 } })
      local again = socket.gettime()
      local _, other_store = other.pace:reserve("acc-1", 10.1)
      local other_took = socket.gettime() - again
      r:resume()
      assert.equal(0, w)
      assert.equal("local", store)
      assert.is_true(took < 0.2, tostring(took))
      assert.equal("local", other_store)
      assert.is_true(other_took < 0.01, tostring(other_took))
      socket.sleep(1)
      assert.equal("redis", select(2, c.pace:reserve("acc-1", 11.2)))
    end)

    it("answering errors (a db it does not have, out of memory): local, and the reason", function()
      local c = new_client(r.url .. "/99")
      local _, store = c.pace:reserve("acc-1", core.now())
      assert.equal("local", store)
      assert.matches("SELECT", select(2, c.pace:status()))
      -- a full Redis refuses the script's writes (db 5: a Redis of its own
      -- for the process's second without Redis)
      local full = new_client(r.url .. "/5")
      assert.equal("redis", select(2, full.pace:reserve("acc-1", 50.0)))
      r:cli("CONFIG", "SET", "maxmemory", "1")
      local ok, e = pcall(function()
        assert.equal("local", select(2, full.pace:reserve("acc-1", 60.0)))
        assert.matches("OOM", select(2, full.pace:status()))
      end)
      r:cli("CONFIG", "SET", "maxmemory", "0")
      assert(ok, e)
    end)

    it("never fails a call, says which store counted it, and creates nothing twice", function()
      local m = mock.start()
      local infos = {}
      local c = assert(truto.new{ token = m.token, base_url = m.url, rate_limit_store = r.url,
        on_request = function(info) infos[#infos + 1] = info.rate_store end })
      local g, meta = c.groups.create({ name = "fleet-1" }, { integrated_account_id = m.accounts.coupa })
      assert.truthy(g, tostring(meta))
      assert.equal("redis", meta.rate_store)
      r:stop()
      g, meta = c.groups.create({ name = "fleet-2" }, { integrated_account_id = m.accounts.coupa })
      r:start()
      assert.truthy(g, tostring(meta))
      assert.equal("local", meta.rate_store)
      assert.same({ "redis", "local" }, infos)
      socket.sleep(1) -- the process's second without Redis
      -- batch items say it too
      local results = c.groups.create_many({ { body = { name = "fleet-3" } }, { body = { name = "fleet-4" } } },
        { integrated_account_id = m.accounts.coupa })
      for i = 1, 2 do
        assert.truthy(results[i].group, tostring(results[i].err))
        assert.equal("redis", results[i].meta.rate_store)
      end
      local posts = 0
      for _, req in ipairs(m:requests()) do if req.method == "POST" then posts = posts + 1 end end
      assert.equal(4, posts)
      m:stop()
    end)
  end)

  describe("inside nginx", function()
    local n
    local LOCATIONS = [[
    location = /spec/redis-budget {
      content_by_lua_block {
        -- waits for the go file (yielding), then reserves 200 times
        local truto = require "truto"
        local args = ngx.req.get_uri_args()
        local c = assert(truto.new{ token = args.token, base_url = "http://127.0.0.1:9",
          rate_limit_store = { url = args.url, timeout = 2 }, -- about sharing, not timing
          rate_limits = { token = { limit = 300, window = 60 }, account = { limit = 300, window = 60 } } })
        while not io.open(args.go) do ngx.sleep(0.002) end
        local n, stores = 0, {}
        for _ = 1, 200 do
          local w, s = c.pace:reserve("acc", ngx.now())
          stores[s] = true
          if w == 0 then n = n + 1 end
        end
        local cosockets = package.loaded["resty.redis"] or package.loaded["nginx.redis"]
        ngx.say(n, " ", stores["local"] and "local" or "redis", " ", cosockets and "cosockets" or "blocking")
      }
    }
]]
    setup(function() n = openresty.start { workers = 2, locations = LOCATIONS } end)
    teardown(function() if n then n:stop() end end)

    it("workers (over cosockets) and plain Lua processes (over hiredis) share one budget", function()
      local go = n.dir .. "/go" -- readable by nginx's workers (nobody, under root)
      local conns = {}
      for i = 1, 2 do
        local c = assert(socket.tcp())
        c:settimeout(20)
        assert(c:connect("127.0.0.1", n.port))
        assert(c:send("GET /spec/redis-budget?token=" .. TOKEN .. "&url=" .. r.url .. "&go=" .. go
          .. " HTTP/1.0\r\n\r\n"))
        conns[i] = c
      end
      local code = ([[
        local truto = require "truto"
        local core = require "truto.core"
        local c = assert(truto.new{ token = %q, base_url = "http://127.0.0.1:9",
          rate_limit_store = { url = %q, timeout = 2 },
          rate_limits = { token = { limit = 300, window = 60 }, account = { limit = 300, window = 60 } } })
        while not io.open(%q) do core.sleep(0.002) end
        local n, stores = 0, {}
        for _ = 1, 200 do
          local w, s = c.pace:reserve("acc", core.now())
          stores[s] = true
          if w == 0 then n = n + 1 end
        end
        io.write(n, " ", stores["local"] and "local" or "redis")
      ]]):format(TOKEN, r.url, go)
      local pipes = {}
      local lua = os.getenv("LUA") or "lua5.4"
      for i = 1, 2 do pipes[i] = assert(io.popen(lua .. " -e " .. sh.quote(code) .. " 2>&1")) end
      socket.sleep(0.3)
      sh.write_file(go, "")
      local total = 0
      for i = 1, 2 do
        local text = conns[i]:receive("*a")
        conns[i]:close()
        local got, store, how = text:match("\r\n\r\n(%d+) (%a+) (%a+)")
        assert(got, text)
        assert.equal("redis", store)
        assert.equal("cosockets", how)
        total = total + tonumber(got)
        local out = pipes[i]:read("*a")
        pipes[i]:close()
        got, store = out:match("^(%d+) (%a+)$")
        assert(got, out)
        assert.equal("redis", store)
        total = total + tonumber(got)
      end
      os.remove(go)
      assert.equal(300, total)
    end)

    it("authenticates and selects the db over cosockets too", function()
      local secured = redis_server.start { password = "n g!nx", user = "edge" }
      local go = n.dir .. "/go-auth"
      sh.write_file(go, "")
      local url = "redis://edge:n%20g%21nx@127.0.0.1:" .. secured.port .. "/4"
      local status, body = openresty.http(n.port, "GET", "/spec/redis-budget?token=" .. TOKEN .. "&url="
        .. url:gsub("%%", "%%25") .. "&go=" .. go)
      local keys = secured:cli("-n", "4", "DBSIZE")
      secured:close()
      os.remove(go)
      assert.equal(200, status)
      assert.equal("200 redis cosockets", body:gsub("%s+$", ""))
      assert.is_true(tonumber(keys) >= 1)
    end)
  end)

  it("is the default client's store when TRUTO_RATE_LIMIT_STORE names it", function()
    local m = mock.start()
    local out, ok = require("spec.support.helpers").run_lua([[
      local truto = require "truto"
      local g, meta = truto.groups.create({ name = "From env" }, { integrated_account_id = os.getenv("ACC") })
      io.write(g and meta.rate_store or tostring(meta))
    ]], { TRUTO_API_TOKEN = m.token, TRUTO_BASE_URL = m.url, TRUTO_RATE_LIMIT_STORE = r.url,
      ACC = m.accounts.coupa })
    m:stop()
    assert.is_true(ok, out)
    assert.equal("redis", out)
    assert.is_true(tonumber(r:cli("DBSIZE")) >= 1)
  end)

  it("refuses a store option it cannot use, naming the field and never echoing the URL", function()
    for _, bad in ipairs { "redis:/host", "http://x", 5, { url = "redis://h", timeout = 0 },
      { url = "redis://h", local_share = 2 }, { url = "redis://h", prefix = "a{b}" }, { url = "redis://h", ttl = 1 },
      "redis://user@host", "redis://:pw@host:70000", { dict = 5 } } do
      local c, err = truto.new{ token = TOKEN, rate_limit_store = bad }
      assert.is_nil(c)
      assert.equal("invalid_argument", err.kind)
      assert.equal("rate_limit_store", err.field)
      assert.is_nil(tostring(err):find(":pw@", 1, true))
    end
    local c, err = truto.new{ token = TOKEN, rate_limit_store = { dict = "x" } }
    assert.is_nil(c)
    assert.matches("lua_shared_dict", err.message)
    assert.same({ kind = "redis", host = "::1", port = 6380, db = 2, user = "u", password = "p@ss",
      prefix = "truto:", timeout = 0.05, local_share = 0.25 }, pace.check_store("redis://u:p%40ss@[::1]:6380/2"))
    assert.same({ kind = "process" }, pace.check_store("process"))
  end)

  it("inside HAProxy, counts in the local budget and says why (no client that would not block it)", function()
    if not haproxy.installed() then pending("haproxy is not installed") return end
    local h = haproxy.start {
      global = ("  lua-prepend-path @ROOT@/?.lua\n  lua-load @ROOT@/spec/support/pace_haproxy_service.lua\n")
        :gsub("@ROOT@", haproxy.root),
      frontend = "  http-request use-service lua.spec_rate_store if { path /spec/rate-store }\n" }
    local status, body = haproxy.http(h.port, "POST", "/spec/rate-store", r.url)
    local log = h:log()
    h:stop()
    assert.equal(200, status, log)
    -- a quarter of the account's 4, counted locally; Redis never touched
    assert.matches("^1 local inside HAProxy", body)
    assert.equal("0", r:cli("DBSIZE"))
  end)
end)
