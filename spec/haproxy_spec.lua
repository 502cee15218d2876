-- spec/haproxy_spec.lua: truto inside a real HAProxy (Debian's 2.6, Lua
-- 5.3) running examples/haproxy/haproxy.cfg as shipped (Debian's default
-- nbthread, `lua-load`), against the mock. The haproxy transport is the
-- default there, never blocks HAProxy (slow creates overlap while other
-- requests answer at once; retry waits use core.msleep), and maps what
-- HAProxy's httpclient reports to the documented errors. TLS, the
-- lua-load-per-thread variant and the curl transport forced inside HAProxy
-- are in spec/haproxy_variants_spec.lua (each its own HAProxy; a file of
-- their own runs beside this one). Skipped (pending) when haproxy is not
-- installed.
local cjson = require "cjson"
local socket = require "socket"
local mock = require "spec.support.mock"
local haproxy = require "spec.support.haproxy"

local SCHEMA_PATH = "/unified/user-directory/groups"

local calls = require "spec.support.haproxy_calls"
local start, send, ping_for, in_haproxy, input_for = calls.start, calls.send, calls.ping_for,
  calls.in_haproxy, calls.input_for
local FAST = calls.FAST

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
      calls.four_slow_creates(m, h)
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
