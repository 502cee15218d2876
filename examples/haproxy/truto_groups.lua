-- examples/haproxy/truto_groups.lua - the HTTP service haproxy.cfg (next
-- to this file) loads: POST /groups?integrated_account_id=...&group_type=team
-- with a JSON body { "name": ..., "description": ..., "remote_data": {...} }
-- creates a Truto group and answers 201 with it, or the error as JSON.
--
-- Runs in HAProxy's Lua 5.3 (build the core with `make LUA=lua5.3`). The
-- client is made per request: truto.new picks the haproxy transport there
-- (core.httpclient, which yields), and retries wait with core.msleep, so a
-- slow Truto never stalls HAProxy's threads or its shared Lua state.
--
-- Must never: use the curl transport here (it blocks the thread while it
-- holds the Lua lock, and HAProxy's watchdog aborts the process), or create
-- a client in the file's body (no I/O may happen at load time).
local truto = require "truto"

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function query_args(qs)
  local args = {}
  for pair in (qs or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    args[unescape(k)] = unescape(v)
  end
  return args
end

local function reply(applet, status, value, headers)
  local text = (truto.json_encode(value) or '{"error":"encode","message":"the answer is not valid JSON text"}') .. "\n"
  applet:set_status(status)
  applet:add_header("content-type", "application/json")
  applet:add_header("content-length", tostring(#text))
  for name, v in pairs(headers or {}) do applet:add_header(name, tostring(v)) end
  applet:start_response()
  applet:send(text)
end

core.register_service("truto_groups", "http", function(applet)
  if applet.method ~= "POST" then
    return reply(applet, 405, { error = "invalid_argument", message = "POST only" })
  end
  local body = truto.json_decode(applet:receive() or "", { mark_arrays = true })
  if type(body) ~= "table" then
    return reply(applet, 400, { error = "invalid_argument", message = "the body must be a JSON object" })
  end
  local args = query_args(applet.qs)

  -- TRUTO_API_TOKEN / TRUTO_BASE_URL come from HAProxy's environment.
  local client, cerr = truto.new{ timeout = 15, deadline = 30 }
  if not client then
    return reply(applet, 500, { error = cerr.kind, message = cerr.message })
  end
  local group, meta = client.groups.create(body, {
    integrated_account_id = args.integrated_account_id,
    group_type = args.group_type,
  })
  if not group then
    local err, status, headers = meta, 502, nil
    if err.kind == "invalid_argument" then status = 400
    elseif err.kind == "timeout" then status = 504
    elseif err.kind == "rate_limited" then
      status = 429
      if err.retry_after then headers = { ["retry-after"] = math.ceil(err.retry_after) } end
    elseif err.kind == "http" and err.status >= 400 and err.status < 500
      and err.status ~= 401 and err.status ~= 403 then
      status = err.status -- the caller's mistake: 400, 404, 409, 422 ...
    end
    return reply(applet, status, { error = err.kind, status = err.status, field = err.field,
      message = err.message, attempts = err.attempts }, headers)
  end
  return reply(applet, 201, group, { ["x-truto-attempts"] = meta.attempts,
    ["x-truto-transport"] = client.transport.name })
end)
