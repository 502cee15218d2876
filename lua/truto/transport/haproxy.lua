-- truto.transport.haproxy: the transport inside HAProxy (2.6 and later,
-- whose Lua is 5.3: build the core with `make LUA=lua5.3`). Sends one
-- prepared request with HAProxy's own HTTP client, core.httpclient(), which
-- yields to HAProxy's scheduler while it waits, so the thread (and, with
-- `lua-load`, the one Lua state every thread shares) keeps serving other
-- requests. Follows the contract of every transport (README "Transports";
-- lua/truto/transport/curl.lua):
--
--   transport:request(req) -> status, headers, body
--                           | nil, kind, message, sent, which_timeout
--
-- What HAProxy 2.6's httpclient allows, and what this file does about it:
-- - It is a whole-answer API: no per-request connect timeout, no streaming,
--   no way to abort it. So each request runs in its own HAProxy task
--   (core.register_task) and the caller waits for it with core.msleep, up
--   to req.timeout; past that the call returns a `timeout` (sent = true: the
--   httpclient cannot say whether it sent) and the task's late answer is
--   dropped. The httpclient's own `timeout` (server inactivity) is set to
--   stall_timeout when that is shorter, else to timeout + 1 s, so no
--   abandoned request lives on long and an attempt never races a re-send.
-- - It re-sends a request by itself (up to 3 times) when the connection
--   fails, is reset before an answer, or stays silent past that inactivity
--   timeout. With an Idempotency-Key Truto replays the first answer instead
--   of creating twice; without one a re-send could create a second group.
--   So a request other than GET/HEAD without an Idempotency-Key header is
--   refused here (invalid_argument, nothing sent).
-- - When it could not connect, or gave up, it answers with HAProxy's own
--   error page (503 "No server is available", 502, 504) instead of failing.
--   Those pages (exact bytes, no Date header) become `connect` (sent =
--   false: HAProxy answers 503 only when no connection was made), `network`
--   and `timeout` failures; a 503 with any other body is Truto's own.
-- - TLS verification, the CA list and name resolution are per process
--   (httpclient.ssl.verify, httpclient.ssl.ca-file, httpclient.resolvers.*
--   in haproxy.cfg's global section), and there is no forward proxy: the
--   client options ca_file, insecure = true and proxy are refused by new().
--   A failed TLS handshake is a failed connection to HAProxy, so it comes
--   back as `connect` (HAProxy's 503), not `tls`.
-- - It has no PATCH (2.6 has get, head, put, post and delete), so update is
--   refused (invalid_argument, nothing sent) with what to use instead; an
--   httpclient that has the method sends it.
-- - No HAProxy task runs before HAProxy's start ends: while it loads its
--   files and runs core.register_init functions, core.httpclient() gives
--   nil, core.msleep returns at once and core.now stands still, so a request
--   through a task would wait forever and HAProxy would never listen. There
--   the blocking curl transport sends instead (HAProxy serves nobody yet, as
--   in nginx's init phases), and M.sleep is a real sleep.
-- - The answer is read whole before this file sees it: max_response_bytes
--   refuses it (too_large) by its Content-Length or its length, but HAProxy
--   has already buffered it (bounded by tune.lua.maxmem). A sink gets the
--   body of a 2xx in one piece.
--
-- Must never: block the thread once HAProxy serves (curl only during its
-- start; no luasocket, no os.execute; the only waits are core.msleep and
-- the httpclient's yields), send a keyless create through the httpclient,
-- wait on a task or on core.msleep where no task can run (HAProxy's start:
-- request() and M.sleep use curl and a real sleep there), or let the token
-- into a message.

local M = {}
M.__index = M

local MAX_REDIRECTS = 5 -- as the other transports
local POLL_MS = 5       -- how often the caller looks whether the task is done

-- HAProxy's own error pages, as its httpclient answers them (src/http.c's
-- http_err_msgs): the one sign that no HTTP answer came from the server.
local LOCAL_PAGES = {
  [502] = { "network", "<html><body><h1>502 Bad Gateway</h1>\nThe server returned an invalid or "
    .. "incomplete response.\n</body></html>\n",
    "HAProxy's httpclient got no valid answer (connection closed or reset, or not HTTP)" },
  [503] = { "connect", "<html><body><h1>503 Service Unavailable</h1>\nNo server is available to "
    .. "handle this request.\n</body></html>\n",
    "HAProxy's httpclient could not connect (refused, unreachable, no DNS answer, or a failed "
    .. "TLS handshake)" },
  [504] = { "timeout", "<html><body><h1>504 Gateway Time-out</h1>\nThe server didn't respond in "
    .. "time.\n</body></html>\n",
    "HAProxy's httpclient timed out waiting for the server" },
  [500] = { "network", "<html><body><h1>500 Internal Server Error</h1>\nAn internal server error "
    .. "occurred.\n</body></html>\n",
    "HAProxy's httpclient failed internally" },
}

local function haproxy_core()
  local hcore = rawget(_G, "core")
  if type(hcore) == "table" and type(hcore.httpclient) == "function" then return hcore end
end

-- Is this Lua running inside HAProxy with an httpclient (2.5+)?
function M.available() return haproxy_core() ~= nil end

-- truto.transport.haproxy.new(config) -> transport. Raises on what it
-- cannot do; truto.new turns that into an invalid_argument.
function M.new(config)
  if not haproxy_core() then
    error("transport \"haproxy\" needs HAProxy 2.5 or later with Lua (core.httpclient is missing)", 0)
  end
  if config.ca_file then
    error("ca_file cannot be used with the haproxy transport: set httpclient.ssl.ca-file in "
      .. "haproxy.cfg's global section instead", 0)
  end
  if config.insecure then
    error("insecure = true cannot be used with the haproxy transport: verification is set for "
      .. "the whole process by httpclient.ssl.verify in haproxy.cfg's global section", 0)
  end
  if config.proxy then
    error("proxy is not supported by the haproxy transport (HAProxy's httpclient connects directly)", 0)
  end
  return setmetatable({ name = "haproxy" }, M)
end

-- Seconds as milliseconds: the core's one rule (rounded up, at least 1).
local millis = require("truto.core").milliseconds
local url_mod = require "truto.url"

-- The httpclient this context can use, or nil during HAProxy's start
-- (see the header).
local function httpclient_here(hcore)
  local hc = hcore.httpclient()
  if hc ~= nil then return hc end
end

-- The client's sleep with this transport: HAProxy's yielding one, or a
-- real sleep during HAProxy's start, where core.msleep does not wait.
function M.sleep(seconds)
  local hcore = haproxy_core()
  if hcore and httpclient_here(hcore) then return hcore.msleep(millis(seconds)) end
  return require("truto.core").sleep(seconds)
end

-- "Name: value" lines -> the httpclient's { name = { value, ... } }; also
-- whether an Idempotency-Key is among them.
local function header_table(lines, body)
  local headers, keyed = {}, false
  for i = 1, #lines do
    local name, value = lines[i]:match("^([^:]+):%s*(.*)$")
    if name then
      local lower = name:lower()
      if lower == "idempotency-key" then keyed = true end
      local list = headers[lower]
      if not list then list = {}; headers[lower] = list end
      list[#list + 1] = value
    end
  end
  -- without it the httpclient sends the body chunked
  if body then headers["content-length"] = { tostring(#body) } end
  return headers, keyed
end

-- The httpclient's { name = { [0] = v, ... } } -> { name = "v1, v2" }.
local function flat_headers(raw)
  local out = {}
  for name, values in pairs(raw or {}) do
    if type(values) == "table" then
      local list, i = {}, 0
      while values[i] ~= nil do list[#list + 1] = tostring(values[i]); i = i + 1 end
      for _, v in ipairs(values) do if values[0] == nil then list[#list + 1] = tostring(v) end end
      out[tostring(name):lower()] = table.concat(list, ", ")
    else
      out[tostring(name):lower()] = tostring(values)
    end
  end
  return out
end

-- One exchange in its own task; returns the httpclient's answer table, or
-- nil, kind, message, sent, which.
local function exchange(hcore, method, url, headers, body, timeout, stall)
  -- without a stall_timeout, the attempt's own timer decides when it ends:
  -- HAProxy's inactivity timeout (after which it re-sends by itself) comes
  -- a second later, so an attempt's outcome never races a re-send
  local inactivity = stall and stall < timeout and stall or timeout + 1
  local box = {}
  local started = hcore.now()
  hcore.register_task(function()
    local ok, answer = pcall(function()
      local hc = hcore.httpclient()
      local call = hc[method:lower()]
      return call(hc, { url = url, headers = headers, body = body, timeout = millis(inactivity) })
    end)
    box.ok, box.answer, box.done = ok, answer, true
  end)
  local function elapsed()
    local t = hcore.now()
    return (t.sec - started.sec) + (t.usec - started.usec) / 1e6
  end
  while not box.done do
    local left = timeout - elapsed()
    if left <= 0 then
      box.done = true -- the task's late answer is dropped
      return nil, "timeout", ("no complete answer after %d ms (HAProxy's httpclient may have sent "
        .. "the request)"):format(millis(elapsed())), true, "timeout"
    end
    hcore.msleep(math.min(POLL_MS, millis(left)))
  end
  if not box.ok then
    return nil, "network", "HAProxy's httpclient failed: " .. tostring(box.answer), true
  end
  local answer = box.answer
  if type(answer) ~= "table" or not tonumber(answer.status) or tonumber(answer.status) == 0 then
    return nil, "network", "HAProxy's httpclient returned no HTTP answer", true
  end
  return answer
end

-- Why a method the httpclient lacks is refused, and what to use instead.
local function unsendable(method)
  return ("HAProxy's httpclient cannot send %s (HAProxy 2.6's has GET, HEAD, PUT, POST and DELETE "
    .. "only)%s: send it from outside HAProxy (truto-groups, or a script with the curl "
    .. "transport), or from a core.register_init function, where the blocking curl transport "
    .. "sends"):format(method, method == "PATCH" and ", and update is a PATCH" or "")
end

-- transport:request(req): see the header comment and the README.
function M:request(req)
  local hcore = haproxy_core()
  local hc = httpclient_here(hcore)
  if not hc then
    self.blocking = self.blocking or require("truto.transport.curl").new({})
    return self.blocking:request(req)
  end
  local method, url, lines, body = req.method, req.url, req.headers, req.body
  if not method:match("^%u+$") or hc[method:lower()] == nil then
    return nil, "invalid_argument", unsendable(method), false
  end
  if not url:match("^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]+") then
    return nil, "connect", "unsupported URL (http:// and https:// only)", false
  end
  local headers, keyed = header_table(lines, body)
  if not keyed and method ~= "GET" and method ~= "HEAD" and method ~= "DELETE" then
    return nil, "invalid_argument", "the haproxy transport sends a " .. method .. " only with an "
      .. "Idempotency-Key: HAProxy's httpclient re-sends a request by itself when the connection "
      .. "fails or times out, and without a key that could create twice", false
  end
  local timeout = req.timeout or 30
  local max = req.max_response_bytes or 64 * 1024 * 1024
  local started = hcore.now()
  local function left()
    local t = hcore.now()
    return timeout - ((t.sec - started.sec) + (t.usec - started.usec) / 1e6)
  end
  local redirects = 0
  while true do
    local answer, kind, message, sent, which = exchange(hcore, method, url, headers, body,
      math.max(left(), 0.001), req.stall_timeout)
    if not answer then return nil, kind, message, sent, which end
    local status = math.floor(tonumber(answer.status))
    local rheaders = flat_headers(answer.headers)
    local rbody = answer.body or ""
    local page = LOCAL_PAGES[status]
    if page and rbody == page[2] and rheaders.date == nil then
      local stall = req.stall_timeout and req.stall_timeout < timeout
      return nil, page[1], page[3], page[1] ~= "connect",
        page[1] == "timeout" and (stall and "stall_timeout" or "timeout") or nil
    end
    local length = tonumber(rheaders["content-length"])
    if length and length > max then
      return nil, "too_large", ("the answer announces %d bytes, over max_response_bytes = %d"):format(
        length, max), true
    end
    local location = rheaders.location
    if req.follow_redirects and location and (status == 301 or status == 302 or status == 303
      or status == 307 or status == 308) then
      redirects = redirects + 1
      if redirects > MAX_REDIRECTS then
        return nil, "network", ("maximum (%d) redirects followed"):format(MAX_REDIRECTS), true
      end
      local next_url = url_mod.resolve_location(url, location)
      if not next_url:match("^[Hh][Tt][Tt][Pp][Ss]?://") then
        return nil, "connect", "redirect to an unsupported protocol", true
      end
      -- as curl does: 301/302/303 turn a POST into a GET without a body;
      -- Authorization never follows to another origin
      if (status == 301 or status == 302 or status == 303) and method ~= "GET" and method ~= "HEAD" then
        method, body = "GET", nil
        headers["content-length"] = nil
      end
      if url_mod.origin_of(next_url) ~= url_mod.origin_of(url) then headers.authorization = nil end
      url = next_url
    else
      if req.sink and status >= 200 and status < 300 then
        if rbody ~= "" then req.sink(rbody) end -- its error is raised, as with curl
        return status, rheaders, ""
      end
      if #rbody > max then
        return nil, "too_large", ("the answer passed max_response_bytes = %d"):format(max), true
      end
      return status, rheaders, rbody
    end
  end
end

-- The httpclient keeps no connection this client owns; the curl transport
-- used during HAProxy's start does.
function M:close()
  if self.blocking then self.blocking:close() end
end

return M
