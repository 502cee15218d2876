-- Observing every call: on_request / on_response hooks (client and per
-- call), a hook that raises, and the client's `headers` (a table, or a
-- function called per call) on every request, single or batched.
local truto = require "truto"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"

describe("observing calls", function()
  local m

  setup(function() m = mock.start() end)
  teardown(function() if m then m:stop() end end)
  before_each(function() m:reset() end)

  local function new(config)
    config.token, config.base_url = m.token, m.url
    config.integrated_account_id = h.SEED_ACCOUNT
    config.sleep = function() end
    return assert(truto.new(config))
  end

  it("tells on_request and on_response about every attempt", function()
    local requests, responses = {}, {}
    local c = new{
      on_request = function(info) requests[#requests + 1] = info end,
      on_response = function(info) responses[#responses + 1] = info end,
    }
    m:script{ { status = 502 } }
    local g, meta = c.groups.create{ name = "Observed" }
    assert.is_table(g, tostring(meta))
    assert.equal(2, #requests)
    assert.equal(2, #responses)
    local r1, a1, a2 = requests[1], responses[1], responses[2]
    assert.equal("groups.create", r1.operation)
    assert.equal("POST", r1.method)
    assert.equal(m.url .. "/unified/user-directory/groups?integrated_account_id=" .. h.SEED_ACCOUNT, r1.url)
    assert.equal(1, r1.attempt)
    assert.equal(meta.idempotency_key, r1.idempotency_key)
    assert.equal(#'{"name":"Observed"}', r1.bytes_out)
    assert.equal(0, r1.rate_wait)
    assert.equal(502, a1.status)
    assert.equal("http", a1.error)
    assert.is_number(a1.retry_in)
    assert.equal(2, a2.attempt)
    assert.equal(201, a2.status)
    assert.is_nil(a2.error)
    assert.is_true(a2.elapsed >= 0)
    assert.is_true(a2.bytes_in > 0)
    for _, info in ipairs(requests) do assert.is_nil(info.url:find(m.token, 1, true)) end
    c:close()
  end)

  it("tells on_response of an attempt that got no answer, with the error kind", function()
    local responses = {}
    local c = assert(truto.new{ token = m.token, base_url = "http://127.0.0.1:1", max_retries = 0,
      integrated_account_id = h.SEED_ACCOUNT,
      on_response = function(info) responses[#responses + 1] = info end })
    local _, err = c.groups.get("g1")
    assert.equal("connect", err.kind)
    assert.equal(1, #responses)
    assert.equal("connect", responses[1].error)
    assert.equal("groups.get", responses[1].operation)
    c:close()
  end)

  it("a hook that raises is reported, never breaks the call", function()
    local c = new{ on_request = function() error("hook bug") end }
    local g, meta = c.groups.create{ name = "Still" }
    assert.is_table(g, tostring(meta))
    assert.equal(1, #meta.hook_errors)
    assert.matches("on_request raised: .*hook bug", meta.hook_errors[1])
    c:close()
  end)

  it("per-call hooks replace the client's for that call", function()
    local client_seen, call_seen = 0, 0
    local c = new{ on_request = function() client_seen = client_seen + 1 end }
    assert(c.groups.create({ name = "A" }, nil, { on_request = function() call_seen = call_seen + 1 end }))
    assert(c.groups.create{ name = "B" })
    assert.equal(1, client_seen)
    assert.equal(1, call_seen)
    c:close()
  end)

  it("sends the client's headers on every call, the call's winning by name", function()
    local c = new{ headers = { ["X-Request-Id"] = "client", traceparent = "00-abc-def-01" } }
    assert(c.groups.create({ name = "A" }, nil, { headers = { ["x-request-id"] = "call" } }))
    local r = m:last()
    assert.equal("call", r.headers["x-request-id"])
    assert.equal("00-abc-def-01", r.headers["traceparent"])
    c:close()
  end)

  it("calls a headers function once per call, retries reusing its answer", function()
    local n = 0
    local c = new{ headers = function(info)
      n = n + 1
      return { ["X-Request-Id"] = info.operation .. "-" .. n }
    end }
    m:script{ { status = 502 } }
    assert(c.groups.create{ name = "A" })
    local rs = m:requests()
    assert.equal(2, #rs)
    assert.equal("groups.create-1", rs[1].headers["x-request-id"])
    assert.equal("groups.create-1", rs[2].headers["x-request-id"])
    local results = c.groups.create_many({ { name = "B" }, { name = "C" } })
    assert.is_table(results[2].group)
    assert.equal(3, n)
    c:close()
  end)

  it("refuses the module's own headers and bad answers of a headers function", function()
    local c, err = truto.new{ token = "t0ken-x", headers = { Authorization = "Bearer other" } }
    assert.is_nil(c)
    assert.equal("headers.Authorization", err.field)
    c = new{ headers = function() return { ["Content-Type"] = "text/plain" } end }
    local g
    g, err = c.groups.create{ name = "A" }
    assert.is_nil(g)
    assert.equal("headers.Content-Type", err.field)
    c:close()
    c = new{ headers = function() error("no trace") end }
    g, err = c.groups.create{ name = "A" }
    assert.is_nil(g)
    assert.equal("headers", err.field)
    assert.matches("no trace", err.message)
    assert.equal(0, #m:requests())
    c:close()
  end)
end)
