-- spec/empty_header_spec.lua: an extra header with an empty value (valid
-- HTTP: a field value may be empty) goes out the same way on every
-- transport: sent, as "Name:" with nothing after it. libcurl drops a
-- "Name:" line with nothing after the colon unless it is written
-- "Name;"; the nginx and HAProxy transports send it as it is; a custom
-- transport gets the same "Name: " line as every other. Each transport
-- runs spec.support.openresty_driver's create against the mock.
local cjson = require "cjson"
local truto = require "truto"
local mock = require "spec.support.mock"
local driver = require "spec.support.openresty_driver"
local openresty = require "spec.support.openresty"
local haproxy = require "spec.support.haproxy"

local ROOT = openresty.root

describe("an empty header value", function()
  local m

  setup(function() m = mock.start() end)
  teardown(function() if m then m:stop() end end)
  before_each(function() m:reset() end)

  local function input(config)
    local cfg = { token = m.token, base_url = m.url, headers = { ["X-Client-Empty"] = "" } }
    for k, v in pairs(config or {}) do cfg[k] = v end
    return { config = cfg, body = { name = "Engineering" },
      query = { integrated_account_id = m.accounts.coupa, group_type = "team" },
      options = { headers = { ["X-Empty"] = "", ["X-Full"] = "v" } } }
  end

  -- what reached the mock: both empty headers as empty fields, in the raw
  -- header as "Name:" and optional blanks, beside the full one
  local function assert_sent_empty(d)
    assert.is_true(d.ok, tostring(d.message or d.raised))
    local r = m:last()
    assert.are.equal("", r.headers["x-empty"], r.raw_header)
    assert.are.equal("", r.headers["x-client-empty"], r.raw_header)
    assert.are.equal("v", r.headers["x-full"])
    assert.is_truthy(r.raw_header:lower():find("\nx%-empty:[ \t]*\r?\n"), r.raw_header)
  end

  it("is sent by the curl transport", function()
    assert_sent_empty(driver.describe(input()))
  end)

  it("is sent by the curl transport on libcurl's own transfer (follow_redirects)", function()
    assert_sent_empty(driver.describe(input { follow_redirects = true }))
  end)

  it("reaches a custom transport as the same \"Name: \" line, and is sent by it", function()
    local curl = require("truto.transport.curl").new({})
    local lines
    local custom = { request = function(_, req)
      lines = req.headers
      return curl:request(req)
    end, close = function() curl:close() end }
    local client = assert(truto.new { token = m.token, base_url = m.url, transport = custom })
    local g, err = client.groups.create({ name = "Engineering" }, { integrated_account_id = m.accounts.coupa },
      { headers = { ["X-Empty"] = "", ["X-Full"] = "v" } })
    client:close()
    assert.is_table(g, tostring(err))
    local found
    for _, line in ipairs(lines) do if line:match("^X%-Empty:") then found = line end end
    assert.are.equal("X-Empty: ", found)
    assert.are.equal("", m:last().headers["x-empty"])
  end)

  local describe_nginx = io.open("/usr/sbin/nginx", "rb") and describe or pending
  describe_nginx("inside nginx", function()
    local n
    setup(function()
      n = openresty.start { locations = ([[
    location = /spec/create {
      content_by_lua_file @ROOT@/spec/support/openresty_driver.lua;
    }
]]):gsub("@ROOT@", ROOT) }
    end)
    teardown(function() if n then n:stop() end end)

    it("is sent by the ngx transport", function()
      local status, body = openresty.http(n.port, "POST", "/spec/create", cjson.encode(input()), 30)
      assert.are.equal(200, status, tostring(body) .. n:log():sub(-2000))
      local d = cjson.decode(body)
      assert.are.equal("ngx", d.transport)
      assert_sent_empty(d)
    end)
  end)

  local describe_haproxy = haproxy.installed() and describe or pending
  describe_haproxy("inside HAProxy", function()
    local h
    setup(function()
      h = haproxy.start {
        global = ("  lua-prepend-path @ROOT@/?.lua\n  lua-load @ROOT@/spec/support/haproxy_services.lua\n")
          :gsub("@ROOT@", ROOT),
        frontend = "  http-request use-service lua.spec_create if { path /spec/create }\n" }
    end)
    teardown(function() if h then h:stop() end end)

    it("is sent by the haproxy transport", function()
      local status, body = haproxy.http(h.port, "POST", "/spec/create", cjson.encode(input()), 30)
      assert.are.equal(200, status, tostring(body) .. h:log():sub(-2000))
      local d = cjson.decode(body)
      assert.are.equal("haproxy", d.transport)
      assert_sent_empty(d)
    end)
  end)
end)
