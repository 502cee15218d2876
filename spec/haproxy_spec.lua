-- spec/haproxy_spec.lua: truto inside a real HAProxy (Debian's 2.6, Lua
-- 5.3) running examples/haproxy/haproxy.cfg as shipped (Debian's default
-- nbthread, `lua-load`), against the mock. The haproxy transport is the
-- default there, never blocks HAProxy (slow creates overlap while other
-- requests answer at once; retry waits use core.msleep), and maps what
-- HAProxy's httpclient reports to the documented errors; the curl
-- transport, forced inside HAProxy on purpose, shows the abort the haproxy
-- one avoids. Skipped (pending) when haproxy is not installed.
local cjson = require "cjson"
local socket = require "socket"
local mock = require "spec.support.mock"
local haproxy = require "spec.support.haproxy"
local sh = require "spec.support.sh"

local ROOT = haproxy.root
local SCHEMA_PATH = "/unified/user-directory/groups"
local FAST = 0.1 -- seconds: what "keeps answering" means

-- The spec's own services, after the example's lua-load (same Lua state).
local GLOBAL = ("  lua-prepend-path @ROOT@/?.lua\n"
  .. "  lua-load @ROOT@/spec/support/haproxy_services.lua\n"):gsub("@ROOT@", ROOT)
local FRONTEND = "  http-request use-service lua.spec_ping if { path /spec/ping }\n"
  .. "  http-request use-service lua.spec_create if { path /spec/create }\n"

local function start(m, extra)
  local opts = { env = { TRUTO_BASE_URL = m.url, TRUTO_API_TOKEN = m.token },
    global = GLOBAL, frontend = FRONTEND }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return haproxy.start(opts)
end

-- Sends a request on its own connection and returns a function that reads
-- its answer (status, body) later: several can be in flight at once.
local function send(h, method, target, body)
  local conn = socket.tcp()
  conn:settimeout(60)
  assert(conn:connect("127.0.0.1", h.port))
  assert(conn:send(method .. " " .. target .. " HTTP/1.0\r\nHost: 127.0.0.1\r\nContent-Length: "
    .. #(body or "") .. "\r\n\r\n" .. (body or "")))
  return function()
    local text, err, partial = conn:receive("*a")
    conn:close()
    text = text or partial or ""
    return tonumber(text:match("^HTTP/1%.%d (%d%d%d)")), text:match("\r\n\r\n(.*)$"), err
  end
end

-- Pings the shared Lua state every 50 ms for `seconds`; returns the slowest
-- answer's seconds, or nil and a reason when one did not come.
local function ping_for(h, seconds)
  local slowest, count = 0, 0
  local until_at = socket.gettime() + seconds
  while socket.gettime() < until_at do
    local status, body, took = haproxy.http(h.port, "GET", "/spec/ping", nil, 10)
    if status ~= 200 or body ~= "pong\n" then return nil, "ping answered " .. tostring(status) end
    if took > slowest then slowest = took end
    count = count + 1
    socket.sleep(0.05)
  end
  return slowest, count
end

-- One create inside HAProxy through spec.support.openresty_driver.
local function in_haproxy(h, input)
  local status, body = haproxy.http(h.port, "POST", "/spec/create", cjson.encode(input), 60)
  assert(status == 200, "haproxy answered " .. tostring(status) .. ": " .. tostring(body)
    .. "\n" .. h:log():sub(-3000))
  return cjson.decode(body)
end

local function input_for(m, fields)
  local input = {
    config = { token = m.token, base_url = m.url, retry_base = 0.01, retry_cap = 5 },
    body = { name = "Engineering", description = "Builds things" },
    query = { integrated_account_id = m.accounts.coupa, group_type = "team" },
    options = { idempotency_key = "haproxy-spec-key" },
  }
  for k, v in pairs(fields or {}) do
    if k == "config" or k == "options" then
      for ck, cv in pairs(v) do input[k][ck] = cv end
    else
      input[k] = v
    end
  end
  return input
end

local describe_haproxy = haproxy.installed() and describe or pending

describe_haproxy("truto inside HAProxy", function()
  local m, h

  setup(function()
    m = mock.start()
    h = start(m)
  end)

  teardown(function()
    if h then h:stop() end
    if m then m:stop() end
  end)

  before_each(function()
    -- HAProxy's httpclient re-sends a request by itself after its
    -- inactivity timeout (the attempt's timeout + 1 s): a re-send of the
    -- previous spec's abandoned call would take this spec's scripted step.
    -- Wait until HAProxy has nothing in flight, then start clean.
    h:settle()
    m:reset()
  end)

  describe("the example configuration", function()
    it("creates a group from a JSON request through POST /groups, with the haproxy transport", function()
      local status, body, _, head = haproxy.http(h.port, "POST", "/groups?integrated_account_id="
        .. m.accounts.coupa .. "&group_type=team", '{"name":"Eng","description":"d"}')
      assert.are.equal(201, status, body)
      local group = cjson.decode(body)
      assert.are.equal("1001", group.id)
      assert.are.equal("Eng", group.name)
      assert.is_truthy(head:lower():find("x-truto-transport: haproxy", 1, true))
      local record = m:last()
      assert.are.equal("POST", record.method)
      assert.are.equal(SCHEMA_PATH, record.path)
      assert.are.equal('{"description":"d","name":"Eng"}', record.body)
      assert.are.equal("Bearer " .. m.token, record.headers.authorization)
      assert.are.equal("application/json", record.headers["content-type"])
      assert.are.equal(tostring(#record.body), record.headers["content-length"])
      assert.is_truthy(record.headers["user-agent"]:find("^truto%-lua/"))
      assert.is_truthy(record.idempotency_key)
    end)

    it("answers a bad request with 400 and the field, without calling Truto", function()
      local status, body = haproxy.http(h.port, "POST", "/groups?integrated_account_id="
        .. m.accounts.coupa, '{"name":"Eng","group_type":"team"}')
      assert.are.equal(400, status)
      local answer = cjson.decode(body)
      assert.are.equal("invalid_argument", answer.error)
      assert.are.equal("group_type", answer.field)
      assert.are.equal(0, m:stats().requests)
    end)

    it("keeps running and keeps answering while four slow creates wait at once", function()
      local steps = {}
      for i = 1, 4 do steps[i] = { delay = 2 } end
      m:script(steps)
      local pending_answers = {}
      for i = 1, 4 do
        pending_answers[i] = send(h, "POST", "/groups?integrated_account_id=" .. m.accounts.coupa
          .. "&group_type=team", cjson.encode{ name = "Slow " .. i })
      end
      socket.sleep(0.2) -- all four are waiting on the mock now
      local slowest, count = ping_for(h, 1.2)
      assert.is_truthy(slowest, count)
      assert.is_true(slowest < FAST, ("the slowest ping took %.3f s"):format(slowest))
      assert.is_true(count >= 5)
      local ids = {}
      for i = 1, 4 do
        local status, body = pending_answers[i]()
        assert.are.equal(201, status, body)
        ids[cjson.decode(body).id] = true
      end
      assert.are.equal(4, m:stats().created)
      local distinct = 0
      for _ in pairs(ids) do distinct = distinct + 1 end
      assert.are.equal(4, distinct)
      assert.is_true(h:running(), h:log())
      assert.is_falsy(h:log():find("kill the process", 1, true))
    end)
  end)

  describe("the haproxy transport", function()
    it("is the default inside HAProxy and yields while it waits: a create takes the server's time", function()
      m:script { { delay = 1 } }
      local d = in_haproxy(h, input_for(m))
      assert.is_true(d.ok, d.message)
      assert.are.equal("haproxy", d.transport)
      assert.are.equal(201, d.status)
      assert.is_true(d.handler_seconds >= 0.9 and d.handler_seconds < 5, tostring(d.handler_seconds))
    end)

    it("is chosen by transport = \"haproxy\" too", function()
      local d = in_haproxy(h, input_for(m, { config = { transport = "haproxy" } }))
      assert.is_true(d.ok, d.message)
      assert.are.equal("haproxy", d.transport)
    end)

    it("waits between retries with HAProxy's sleep, answering other requests meanwhile", function()
      m:script { { status = 429, headers = { ["Retry-After"] = "1" } },
        { status = 502 }, {} }
      local answer = send(h, "POST", "/spec/create", cjson.encode(input_for(m)))
      socket.sleep(0.2)
      local slowest, count = ping_for(h, 0.9)
      assert.is_truthy(slowest, count)
      assert.is_true(slowest < FAST, ("the slowest ping took %.3f s"):format(slowest))
      local status, body = answer()
      assert.are.equal(200, status)
      local d = cjson.decode(body)
      assert.is_true(d.ok, d.message)
      assert.are.equal(3, d.attempts)
      assert.are.same({ "rate_limited 429", "http 502" }, { d.retries[1].reason, d.retries[2].reason })
      assert.is_true(d.handler_seconds >= 1, tostring(d.handler_seconds))
      -- the same key on every attempt
      local keys = {}
      for _, record in ipairs(m:requests()) do keys[#keys + 1] = record.idempotency_key end
      assert.are.same({ "haproxy-spec-key", "haproxy-spec-key", "haproxy-spec-key" }, keys)
    end)

    it("turns HAProxy's own 503 for a refused connection into a connect error, not sent", function()
      local port = haproxy.free_port() -- nothing listens there
      local d = in_haproxy(h, input_for(m, { config = { base_url = "http://127.0.0.1:" .. port,
        max_retries = 0 } }))
      assert.is_false(d.ok)
      assert.are.equal("connect", d.kind)
      assert.is_nil(d.status)
      assert.is_true(d.retryable) -- nothing was sent: safe to repeat, even without a key
      assert.is_truthy(d.message:find("could not connect", 1, true))
    end)

    it("turns HAProxy's own 502 after a reset into a network error that counts as sent", function()
      -- HAProxy's httpclient re-sends on its own after a reset (3 times in
      -- 2.6): the key makes each of those a replay; then the client retries
      m:script { { reset = true }, { reset = true }, { reset = true }, { reset = true } }
      local d = in_haproxy(h, input_for(m))
      assert.is_true(d.ok, d.message)
      assert.are.equal(2, d.attempts)
      assert.are.equal("network", d.retries[1].reason)
      local keys = {}
      for _, record in ipairs(m:requests()) do keys[record.idempotency_key] = true end
      assert.are.same({ ["haproxy-spec-key"] = true }, keys)
    end)

    it("keeps Truto's own 503 an http error (not a connect failure)", function()
      m:script { { status = 503 } }
      local d = in_haproxy(h, input_for(m))
      assert.is_false(d.ok)
      assert.are.equal("http", d.kind)
      assert.are.equal(503, d.status)
      assert.are.equal(1, d.attempts)
    end)

    it("ends an attempt at its timeout with a timeout error that counts as sent", function()
      m:script { { delay = 3 } }
      local d = in_haproxy(h, input_for(m, { options = { timeout = 0.5 }, config = { max_retries = 0 } }))
      assert.is_false(d.ok)
      assert.are.equal("timeout", d.kind)
      assert.are.equal("timeout", d.timeout)
      assert.is_true(d.handler_seconds < 2, tostring(d.handler_seconds))
      assert.is_true(d.retryable) -- sent, but with a key the retry is a replay
    end)

    it("turns HAProxy's own 504 after a silent server into a stall_timeout", function()
      -- stall_timeout is the httpclient's inactivity timeout; it re-sends
      -- (3 times in 2.6) and then answers its own 504 page
      m:script { { delay = 2 }, { delay = 2 }, { delay = 2 }, { delay = 2 } }
      local d = in_haproxy(h, input_for(m, { options = { stall_timeout = 0.2, timeout = 10 },
        config = { max_retries = 0 } }))
      assert.is_false(d.ok)
      assert.are.equal("timeout", d.kind, d.message)
      assert.are.equal("stall_timeout", d.timeout)
      assert.is_true(d.handler_seconds < 5, tostring(d.handler_seconds))
    end)

    it("retries a timed-out create with the same key, and Truto replays it", function()
      m:script { { delay = 2 } }
      local d = in_haproxy(h, input_for(m, { options = { timeout = 0.5 } }))
      assert.is_true(d.ok, d.message)
      assert.are.equal(2, d.attempts)
      assert.are.equal("timeout (timeout)", d.retries[1].reason)
    end)

    it("refuses a create without an Idempotency-Key before sending anything", function()
      local d = in_haproxy(h, input_for(m, { options = { idempotency_key = false } }))
      assert.is_false(d.ok)
      assert.are.equal("invalid_argument", d.kind)
      assert.is_truthy(d.message:find("Idempotency-Key", 1, true))
      assert.are.equal(1, d.attempts)
      assert.is_false(d.retryable)
      assert.are.equal(0, m:stats().requests)
    end)

    it("refuses an answer over max_response_bytes as too_large", function()
      m:script { { size = 5000 } }
      local d = in_haproxy(h, input_for(m, { options = { max_response_bytes = 1000 } }))
      assert.is_false(d.ok)
      assert.are.equal("too_large", d.kind)
      assert.is_false(d.retryable)
    end)

    it("hands a streamed 2xx body to the sink", function()
      local d = in_haproxy(h, input_for(m, { sink = true,
        query = { integrated_account_id = m.accounts.coupa, group_type = "team",
          truto_response_format = "stream" } }))
      assert.is_true(d.ok, d.message)
      assert.are.equal("1001", cjson.decode(d.chunks).id)
    end)

    it("runs create_many's items one after another, each with its own key", function()
      local d = in_haproxy(h, input_for(m, { many = 3, concurrency = 3 }))
      assert.are.equal("haproxy", d.transport)
      assert.are.equal(3, d.created)
      assert.are.equal(3, d.distinct_keys)
      assert.are.equal(3, m:stats().created)
    end)

    for _, case in ipairs {
      { "ca_file", "/etc/ssl/certs/ca-certificates.crt", "httpclient.ssl.ca-file" },
      { "insecure", true, "httpclient.ssl.verify" },
      { "proxy", "http://127.0.0.1:3128", "not supported by the haproxy transport" },
    } do
      it("refuses the client option " .. case[1] .. " at truto.new with invalid_argument", function()
        local d = in_haproxy(h, input_for(m, { config = { [case[1]] = case[2] } }))
        assert.is_false(d.ok)
        assert.are.equal("invalid_argument", d.kind)
        assert.are.equal("transport", d.field)
        assert.is_truthy(d.message:find(case[3], 1, true), d.message)
        assert.are.equal(0, m:stats().requests)
      end)
    end
  end)
end)

describe_haproxy("TLS through HAProxy's httpclient", function()
  -- HAProxy itself fronts the mock with TLS (two more frontends in the same
  -- process): one certificate httpclient.ssl.ca-file trusts, one it does not.
  local m, h, dir, ports

  local function certificate(name)
    assert(sh.run(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=127.0.0.1' "
      .. "-addext 'subjectAltName=IP:127.0.0.1,DNS:127.0.0.1' -keyout %s/%s.key -out %s/%s.crt "
      .. "&& cat %s/%s.crt %s/%s.key > %s/%s.pem"):format(dir, name, dir, name, dir, name, dir, name, dir, name)))
  end

  setup(function()
    m = mock.start()
    local _, out = sh.run("mktemp -d /tmp/truto-haproxy-certs.XXXXXX")
    dir = out:match("^(%S+)")
    certificate("trusted")
    certificate("untrusted")
    ports = { trusted = haproxy.free_port(), untrusted = haproxy.free_port() }
    local sections = {}
    for name, port in pairs(ports) do
      sections[#sections + 1] = ("frontend tls_%s\n  bind 127.0.0.1:%d ssl crt %s/%s.pem\n"
        .. "  default_backend mock\n"):format(name, port, dir, name)
    end
    sections[#sections + 1] = "backend mock\n  server mock " .. m.url:match("//([^/]+)") .. "\n"
    -- the example's CA setting, pointed at the spec's own certificate
    h = start(m, { replace = { { "httpclient%.ssl%.ca%-file @system%-ca",
      "httpclient.ssl.ca-file " .. dir .. "/trusted.crt" } }, sections = table.concat(sections) })
  end)

  teardown(function()
    if h then h:stop() end
    if m then m:stop() end
    if dir and dir:match("^/tmp/truto%-haproxy%-certs%.[%w]+$") then sh.run("rm -rf -- " .. sh.quote(dir)) end
  end)

  before_each(function() m:reset() end)

  it("creates a group through a server whose certificate httpclient.ssl.ca-file trusts", function()
    local d = in_haproxy(h, input_for(m, { config = { base_url = "https://127.0.0.1:" .. ports.trusted } }))
    assert.is_true(d.ok, d.message)
    assert.are.equal(201, d.status)
    assert.are.equal(1, m:stats().created)
  end)

  it("refuses a certificate nobody trusts as a connect failure, nothing sent", function()
    local d = in_haproxy(h, input_for(m, { config = { base_url = "https://127.0.0.1:" .. ports.untrusted,
      max_retries = 0 } }))
    assert.are.equal("connect", d.kind, d.message)
    assert.is_truthy(d.message:find("TLS handshake", 1, true))
    assert.is_true(d.retryable)
    assert.are.equal(0, m:stats().requests)
  end)
end)

describe_haproxy("the example with lua-load-per-thread instead of lua-load", function()
  it("also keeps answering while four slow creates wait at once", function()
    local m = mock.start()
    local h = start(m, { replace = { { "\n  lua%-load ", "\n  lua-load-per-thread " } },
      global = GLOBAL:gsub("lua%-load ", "lua-load-per-thread ") })
    local ok, err = pcall(function()
      local steps = {}
      for i = 1, 4 do steps[i] = { delay = 2 } end
      m:script(steps)
      local answers = {}
      for i = 1, 4 do
        answers[i] = send(h, "POST", "/groups?integrated_account_id=" .. m.accounts.coupa
          .. "&group_type=team", cjson.encode{ name = "Slow " .. i })
      end
      socket.sleep(0.2)
      local slowest, count = ping_for(h, 1.2)
      assert.is_truthy(slowest, count)
      assert.is_true(slowest < FAST, ("the slowest ping took %.3f s"):format(slowest))
      for i = 1, 4 do assert.are.equal(201, (answers[i]())) end
      assert.are.equal(4, m:stats().created)
      assert.is_true(h:running(), h:log())
    end)
    h:stop()
    m:stop()
    assert(ok, err)
  end)
end)

describe_haproxy("the curl transport forced inside HAProxy", function()
  it("blocks the shared Lua state until HAProxy's watchdog aborts the process", function()
    local m = mock.start()
    local h = start(m)
    local ok, err = pcall(function()
      -- answers slow enough that the watchdog acts first even on a busy
      -- machine (it counts the stuck thread's CPU time); HAProxy ends
      -- within a few seconds of the first create anyway
      local steps = {}
      for i = 1, 4 do steps[i] = { delay = 15 } end
      m:script(steps)
      local input = cjson.encode(input_for(m, { config = { transport = "curl" } }))
      for _ = 1, 4 do send(h, "POST", "/spec/create", input) end
      -- new connections land on every thread; one that needs the Lua state
      -- while a create holds it is stuck, and the watchdog acts on that
      local deadline = socket.gettime() + 50
      while h:running() and socket.gettime() < deadline do
        haproxy.http(h.port, "GET", "/spec/ping", nil, 0.5)
        socket.sleep(0.05)
      end
      assert.is_false(h:running())
      assert.is_truthy(h:log():find("is about to kill the process", 1, true), h:log():sub(1, 2000))
    end)
    h:stop()
    m:stop()
    assert(ok, err)
  end)
end)
