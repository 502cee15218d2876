-- spec/haproxy_init_spec.lua: truto inside a real HAProxy (Debian's 2.6,
-- Lua 5.3) where its httpclient cannot go: calls made from
-- core.register_init (no HAProxy task runs before the start ends, so they
-- are sent by the blocking curl transport and HAProxy still starts), and
-- update, a PATCH that HAProxy 2.6's httpclient cannot send (refused with
-- what to use instead; it works from register_init). The HAProxy side is
-- spec/fixtures/haproxy_calls.lua. Skipped (pending) without haproxy.
local cjson = require "cjson"
local socket = require "socket"
local mock = require "spec.support.mock"
local haproxy = require "spec.support.haproxy"

local ROOT = haproxy.root
local GROUPS = "/unified/user-directory/groups"

local GLOBAL = ("  lua-prepend-path @ROOT@/?.lua\n"
  .. "  lua-load @ROOT@/spec/fixtures/haproxy_calls.lua\n"):gsub("@ROOT@", ROOT)
local FRONTEND = "  http-request use-service lua.spec_init if { path /spec/init }\n"
  .. "  http-request use-service lua.spec_call if { path /spec/call }\n"

local describe_haproxy = haproxy.installed() and describe or pending

describe_haproxy("truto inside HAProxy, where its httpclient cannot go", function()
  local m, h, start_seconds, account

  local function config()
    return { token = m.token, base_url = m.url, retry_base = 0.3, retry_cap = 1, timeout = 5 }
  end

  local function in_action(call)
    local status, body = haproxy.http(h.port, "POST", "/spec/call", cjson.encode(call), 30)
    assert(status == 200, "haproxy answered " .. tostring(status) .. ": " .. tostring(body))
    return cjson.decode(body)
  end

  setup(function()
    m = mock.start()
    account = m.accounts.coupa
    -- what the calls at start get, in order: the create a 502 then its
    -- group, the update its answer
    m:script { { status = 502 }, {}, { status = 200, json = { id = "g1", name = "Renamed" } } }
    local calls = {
      { config = config(), op = "create",
        args = { { name = "From init" }, { integrated_account_id = account, group_type = "team" } } },
      { config = config(), op = "update",
        args = { "g1", { name = "Renamed" }, { integrated_account_id = account } } },
    }
    local t = socket.gettime()
    h = haproxy.start { env = { SPEC_INIT_CALLS = cjson.encode(calls) }, global = GLOBAL, frontend = FRONTEND }
    start_seconds = socket.gettime() - t
  end)

  teardown(function()
    if h then h:stop() end
    if m then m:stop() end
  end)

  local function at_start()
    local status, body = haproxy.http(h.port, "GET", "/spec/init", nil, 10)
    assert.are.equal(200, status)
    return cjson.decode(body)
  end

  describe("a call made from core.register_init", function()
    it("is sent at once with the blocking curl transport, and HAProxy then starts listening", function()
      assert.is_true(start_seconds < 5, ("HAProxy took %.1f s to listen"):format(start_seconds))
      local d = at_start()[1]
      assert.is_true(d.ok, tostring(d.message or d.raised))
      assert.are.equal(201, d.status)
      assert.are.equal("From init", d.value.name)
    end)

    it("waits between retries for real (core.msleep does not wait during the start)", function()
      local d = at_start()[1]
      assert.are.equal(2, d.attempts)
      assert.are.equal(1, #d.waits)
      assert.is_true(d.seconds >= d.waits[1] * 0.9, ("waited %.3f s of %.3f s"):format(d.seconds, d.waits[1]))
    end)

    it("can update: the PATCH goes out with its body", function()
      local d = at_start()[2]
      assert.is_true(d.ok, tostring(d.message or d.raised))
      assert.are.equal("Renamed", d.value.name)
      local patch
      for _, r in ipairs(m:requests()) do
        if r.request_line:match("^PATCH ") then patch = r end
      end
      assert.is_truthy(patch, "no PATCH reached the mock")
      assert.are.equal("PATCH " .. GROUPS .. "/g1?integrated_account_id=" .. account .. " HTTP/1.1",
        patch.request_line)
      assert.are.same({ name = "Renamed" }, cjson.decode(patch.body))
    end)
  end)

  describe("update in an action", function()
    it("is refused before anything is sent, saying why and what to use instead", function()
      m:reset()
      local d = in_action { config = config(), op = "update",
        args = { "g1", { name = "Renamed" }, { integrated_account_id = account } } }
      assert.is_false(d.ok)
      assert.are.equal("invalid_argument", d.kind)
      assert.are.equal("haproxy", d.transport)
      assert.is_false(d.sent)
      assert.are.equal(1, d.attempts)
      assert.is_truthy(d.message:find("cannot send PATCH", 1, true), d.message)
      assert.is_truthy(d.message:find("update is a PATCH", 1, true), d.message)
      assert.is_truthy(d.message:find("core.register_init", 1, true), d.message)
      assert.are.equal(0, m:stats().requests)
    end)

    it("leaves the other operations on HAProxy's httpclient (a get is answered)", function()
      m:reset()
      m:script { { status = 200, json = { id = "g1", name = "Eng" } } }
      local d = in_action { config = config(), op = "get", args = { "g1", { integrated_account_id = account } } }
      assert.is_true(d.ok, tostring(d.message or d.raised))
      assert.are.equal("Eng", d.value.name)
      assert.are.equal(1, m:stats().requests)
    end)
  end)
end)
