-- spec.support.haproxy_calls: what the HAProxy specs (spec/haproxy_spec.lua,
-- spec/haproxy_variants_spec.lua) do with a running HAProxy: start the
-- example with the spec's own services (spec/support/haproxy_services.lua:
-- /spec/ping, /spec/create), send requests that stay in flight, ping the
-- shared Lua state, make a create inside HAProxy, and build its input.
--
--   local calls = require "spec.support.haproxy_calls"
--   local h = calls.start(m, { replace = ..., sections = ... })
--   local read = calls.send(h, "POST", target, body); local status, body = read()
--   local slowest, count = calls.ping_for(h, seconds)
--   local d = calls.in_haproxy(h, calls.input_for(m, { config = {...} }))
--   calls.four_slow_creates(m, h)   -- asserts HAProxy keeps answering meanwhile
--   calls.with_own(extra, function(m, h) ... end)  -- a mock and HAProxy of its own
--   calls.GLOBAL, calls.FAST
local cjson = require "cjson"
local socket = require "socket"
local assert = require "luassert"
local haproxy = require "spec.support.haproxy"
local mock = require "spec.support.mock"
local helpers = require "spec.support.helpers"

local M = {}
local ROOT = haproxy.root
M.FAST = 0.1 -- seconds: what "keeps answering" means

-- The spec's own services, after the example's lua-load (same Lua state).
M.GLOBAL = ("  lua-prepend-path @ROOT@/?.lua\n"
  .. "  lua-load @ROOT@/spec/support/haproxy_services.lua\n"):gsub("@ROOT@", ROOT)
local FRONTEND = "  http-request use-service lua.spec_ping if { path /spec/ping }\n"
  .. "  http-request use-service lua.spec_create if { path /spec/create }\n"

function M.start(m, extra)
  local opts = { env = { TRUTO_BASE_URL = m.url, TRUTO_API_TOKEN = m.token },
    global = M.GLOBAL, frontend = FRONTEND }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return haproxy.start(opts)
end

-- Sends a request on its own connection and returns a function that reads
-- its answer (status, body) later: several can be in flight at once.
function M.send(h, method, target, body)
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
function M.ping_for(h, seconds)
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
function M.in_haproxy(h, input)
  local status, body = haproxy.http(h.port, "POST", "/spec/create", cjson.encode(input), 60)
  assert(status == 200, "haproxy answered " .. tostring(status) .. ": " .. tostring(body)
    .. "\n" .. h:log():sub(-3000))
  return cjson.decode(body)
end

function M.input_for(m, fields)
  return helpers.call_input(m, { name = "Engineering", description = "Builds things" }, "haproxy-spec-key", fields)
end

-- Four creates through the example's POST /groups, each answered after
-- 2 s; meanwhile the shared Lua state answers every ping within FAST.
-- Asserts that, and that four distinct groups were created.
function M.four_slow_creates(m, h)
  local steps = {}
  for i = 1, 4 do steps[i] = { delay = 2 } end
  m:script(steps)
  local pending_answers = {}
  for i = 1, 4 do
    pending_answers[i] = M.send(h, "POST", "/groups?integrated_account_id=" .. m.accounts.coupa
      .. "&group_type=team", cjson.encode{ name = "Slow " .. i })
  end
  socket.sleep(0.2) -- all four are waiting on the mock now
  local slowest, count = M.ping_for(h, 1.2)
  assert.is_truthy(slowest, count)
  assert.is_true(slowest < M.FAST, ("the slowest ping took %.3f s"):format(slowest))
  assert.is_true(count >= 5)
  local ids, distinct = {}, 0
  for i = 1, 4 do
    local status, body = pending_answers[i]()
    assert.are.equal(201, status, body)
    ids[cjson.decode(body).id] = true
  end
  for _ in pairs(ids) do distinct = distinct + 1 end
  assert.are.equal(4, distinct)
  assert.are.equal(4, m:stats().created)
end

-- Runs fn(m, h) with a mock and a HAProxy (M.start's extra) of its own,
-- stopping both whatever happens; raises what fn raised.
function M.with_own(extra, fn)
  local m = mock.start()
  local h = M.start(m, extra)
  local ok, err = pcall(fn, m, h)
  h:stop()
  m:stop()
  assert(ok, err)
end

return M
