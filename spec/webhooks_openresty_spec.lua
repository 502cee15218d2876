-- spec/webhooks_openresty_spec.lua: examples/openresty/webhooks.conf in a
-- real nginx, fed by the mock acting as Truto's webhook sender
-- (mock/deliver.lua). An integrated_account:active event must be
-- acknowledged at once and then create the configured default groups on
-- the mock; a forged, tampered, stale or replayed delivery must create
-- nothing.
local cjson = require "cjson"
local socket = require "socket"
local truto = require "truto"
local mock = require "spec.support.mock"
local openresty = require "spec.support.openresty"

local SECRET = "6e17561c-a20c-44ce-b8b5-caff0bf786fe"
local GROUPS_PATH = "/unified/user-directory/groups"
-- The list in examples/openresty/webhooks.conf.
local DEFAULT_GROUPS = {
  { name = "Engineering", description = "Builds the product", group_type = "team" },
  { name = "Support", description = "Answers customers", group_type = "team" },
  { name = "Everyone", description = "All staff" },
}

-- Echoes what a delivery looked like on arrival.
local LOCATIONS = [[
    location = /spec/echo {
      content_by_lua_block {
        ngx.req.read_body()
        local h = ngx.req.get_headers()
        ngx.say(require("cjson").encode({ method = ngx.req.get_method(), user_agent = h["user-agent"],
          signature = h["x-truto-signature"], content_type = h["content-type"], body = ngx.req.get_body_data() }))
      }
    }
]]

local function iso8601(t)
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(t)) .. ".000Z"
end

local function wait_for_requests(m, count, seconds)
  local deadline = socket.gettime() + (seconds or 20)
  while m:stats().requests < count do
    if socket.gettime() > deadline then return false end
    socket.sleep(0.05)
  end
  return true
end

describe("examples/openresty/webhooks.conf", function()
  local m, n, url

  setup(function()
    m = mock.start()
    n = openresty.start {
      example = "webhooks.conf",
      workers = 2, -- a replay must be caught whichever worker it reaches
      env = { TRUTO_BASE_URL = m.url, TRUTO_API_TOKEN = m.token, TRUTO_WEBHOOK_SECRET = SECRET },
      locations = LOCATIONS,
    }
    url = n.url .. "/webhooks/truto"
  end)

  teardown(function()
    if n then n:stop() end
    if m then m:stop() end
  end)

  before_each(function()
    m:reset()
  end)

  local function active_event(fields)
    local event = { event = "integrated_account:active",
      payload = { id = m.accounts.coupa, tenant_id = "acme-1", is_sandbox = false } }
    for k, v in pairs(fields or {}) do event[k] = v end
    return event
  end

  local function log_tail() return "\n" .. n:log():sub(-3000) end

  it("has the mock deliver like Truto: POST, User-Agent truto, JSON, a signature verify accepts", function()
    local d = m:deliver { url = n.url .. "/spec/echo", secret = SECRET, event = active_event() }
    assert.are.equal(200, d.status)
    local seen = cjson.decode(d.body)
    assert.are.equal("POST", seen.method)
    assert.are.equal("truto", seen.user_agent)
    assert.are.equal("application/json", seen.content_type)
    assert.are.equal(d.signature, seen.signature)
    assert.are.equal(d.sent, seen.body)
    assert.matches("^format=sha256,v=%x+$", d.signature)
    local event, err = truto.webhooks.verify(SECRET, seen.signature, seen.body)
    assert.is_nil(err)
    assert.are.equal(d.id, event.id)
    assert.are.equal(m.accounts.coupa, event.payload.id)
    assert.is_string(event.created_at)
  end)

  it("creates the account's default groups after an integrated_account:active event", function()
    local d = m:deliver { url = url, secret = SECRET, event = active_event() }
    assert.are.equal(200, d.status, d.body .. log_tail())
    assert.are.same({ ok = true }, cjson.decode(d.body))
    assert.is_true(wait_for_requests(m, #DEFAULT_GROUPS), "the groups were not created" .. log_tail())
    local records = m:requests()
    assert.are.equal(#DEFAULT_GROUPS, #records)
    local by_name = {}
    for _, record in ipairs(records) do
      assert.are.equal("POST", record.method)
      assert.are.equal(GROUPS_PATH, record.path)
      assert.are.equal(201, record.status)
      assert.are.equal("Bearer " .. m.token, record.headers.authorization)
      local body = cjson.decode(record.body)
      by_name[body.name] = { body = body, record = record }
    end
    for _, wanted in ipairs(DEFAULT_GROUPS) do
      local got = assert(by_name[wanted.name], wanted.name .. " was not created")
      assert.are.equal(wanted.description, got.body.description)
      assert.matches("integrated_account_id=" .. m.accounts.coupa, got.record.query, 1, true)
      if wanted.group_type then
        assert.matches("group_type=" .. wanted.group_type, got.record.query, 1, true)
      else
        assert.is_nil(got.record.query:find("group_type", 1, true))
      end
      assert.are.equal(d.id .. ":" .. wanted.name, got.record.idempotency_key)
    end
    assert.are.equal(#DEFAULT_GROUPS, m:stats().created)
  end)

  it("answers before the groups are created (the work runs in a timer)", function()
    m:script { { delay = 2 } }
    local started = socket.gettime()
    local d = m:deliver { url = url, secret = SECRET, event = active_event() }
    local took = socket.gettime() - started
    assert.are.equal(200, d.status)
    assert.is_true(took < 1.5, ("the delivery waited %.2f s for the groups"):format(took))
    assert.is_true(wait_for_requests(m, #DEFAULT_GROUPS), "the groups were not created" .. log_tail())
  end)

  it("refuses a forged signature with 401 and creates nothing", function()
    local d = m:deliver { url = url, secret = "not-the-webhook-secret", event = active_event() }
    assert.are.equal(401, d.status)
    assert.are.equal("invalid_signature", cjson.decode(d.body).error)
    d = m:deliver { url = url, signature = "format=sha256,v=" .. ("0"):rep(64), event = active_event() }
    assert.are.equal(401, d.status)
    d = m:deliver { url = url, secret = SECRET, event = active_event(), headers = { ["X-Spec"] = "1" } }
    assert.are.equal(200, d.status) -- a genuinely signed one goes through
    assert.is_true(wait_for_requests(m, #DEFAULT_GROUPS))
    socket.sleep(0.3)
    assert.are.equal(#DEFAULT_GROUPS, m:stats().requests)
  end)

  it("refuses a body changed after signing with 401", function()
    local genuine = m:deliver { url = n.url .. "/spec/echo", secret = SECRET, event = active_event() }
    local tampered = genuine.sent:gsub("acme%-1", "acme-2")
    assert.are_not.equal(genuine.sent, tampered)
    local d = m:deliver { url = url, body = tampered, signature = genuine.signature }
    assert.are.equal(401, d.status)
    socket.sleep(0.3)
    assert.are.equal(0, m:stats().requests)
  end)

  it("acknowledges a replayed delivery as a duplicate without creating the groups again", function()
    local event = active_event { id = "replayed-" .. tostring(socket.gettime()) }
    local first = m:deliver { url = url, secret = SECRET, event = event }
    assert.are.equal(200, first.status)
    assert.is_true(wait_for_requests(m, #DEFAULT_GROUPS))
    for _ = 1, 6 do -- new connections, so both workers see the replay
      local again = m:deliver { url = url, secret = SECRET, body = first.sent }
      assert.are.equal(200, again.status)
      assert.are.same({ ok = true, duplicate = true }, cjson.decode(again.body))
    end
    socket.sleep(0.5)
    assert.are.equal(#DEFAULT_GROUPS, m:stats().requests)
  end)

  it("refuses a stale event, and one dated in the future, with 400", function()
    for _, created in ipairs { os.time() - 600, os.time() + 600 } do
      local d = m:deliver { url = url, secret = SECRET, event = active_event { created_at = iso8601(created) } }
      assert.are.equal(400, d.status)
      local answer = cjson.decode(d.body)
      assert.are.equal("stale", answer.error)
      assert.are.equal(created < os.time() and "too_old" or "future", answer.reason)
    end
    socket.sleep(0.3)
    assert.are.equal(0, m:stats().requests)
  end)

  it("acknowledges other events with 200 and does nothing for them", function()
    local d = m:deliver { url = url, secret = SECRET, event = { event = "integrated_account:created",
      payload = { id = m.accounts.coupa } } }
    assert.are.equal(200, d.status)
    d = m:deliver { url = url, secret = SECRET, event = { event = "test", payload = {} } }
    assert.are.equal(200, d.status)
    socket.sleep(0.3)
    assert.are.equal(0, m:stats().requests)
  end)

  it("refuses a signed body that is not an event with 400", function()
    local d = m:deliver { url = url, secret = SECRET, body = "[1,2,3]" }
    assert.are.equal(400, d.status)
    assert.are.equal("decode", cjson.decode(d.body).error)
  end)
end)
