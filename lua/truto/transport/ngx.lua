-- truto.transport.ngx: the transport inside nginx (OpenResty, or Debian's
-- libnginx-mod-http-lua). Sends one prepared request on an nginx cosocket,
-- so the worker keeps serving its other connections while Truto answers.
-- Follows the contract of every transport (see truto.transport.curl):
--
--   transport:request(req) -> status, headers, body
--                           | nil, kind, message, sent, which_timeout
--
-- Why cosockets, and the response parsed by the C core: a cosocket is owned
-- by this call, so each call gets its own connect/total/stall timeouts, its
-- own max_response_bytes (checked against Content-Length before the body
-- is read, then as bytes arrive) and can stream a 2xx body to a sink piece
-- by piece, just as the curl transport does; TLS is verified with
-- sslhandshake against lua_ssl_trusted_certificate; idle connections go
-- back to nginx's keep-alive pool, and only after a whole answer was read;
-- a new connection resumes the TLS session of the last one to that origin
-- (sslhandshake's session argument).
-- The alternative, a subrequest (ngx.location.capture) to a proxy_pass
-- location, would need a location in every server block, buffers the whole
-- answer (no cap before reading, no streaming) and has its timeouts fixed in
-- the nginx configuration instead of per call. HTTP framing (Content-Length,
-- chunked, 1xx, read-until-close, the 256 KiB header limit) is the C
-- core's own parser, core.http_response, fed from receiveany: it only
-- parses (no I/O, no calls back into Lua), so LuaJIT never yields across a
-- C frame. Reading the answer in Lua instead (receive("*l"), receive(n))
-- was measured 1.15-1.4x slower end to end (bench/ngx_parse).
--
-- Must never block the worker (no luasocket, no os.execute, no curl here),
-- never send a request twice on its own (a dead keep-alive connection is a
-- `network` failure with sent = true; the client's retry policy decides),
-- never put a connection back in the pool before its answer was read whole
-- (nor a TLS one into a plain-text pool), never let the token into a
-- message, and never skip certificate verification unless the client was
-- made with insecure = true.

local core = require "truto.core"
local url_mod = require "truto.url"

local M = {}
M.__index = M

local RECEIVE_SIZE = 16384
local MAX_REDIRECTS = 5 -- as the curl transport's CURLOPT_MAXREDIRS
-- Methods whose requests carry a body: they say Content-Length even when
-- it is 0. Others (GET, HEAD, DELETE, ...) send none unless given bytes.
local BODY_METHODS = { POST = true, PUT = true, PATCH = true }
-- Where a private CA is trusted inside nginx (ca_file is refused here).
local TLS_HINT = " (nginx trusts the CAs in lua_ssl_trusted_certificate: set it in nginx.conf "
  .. "to trust a private CA)"

local now = core.now

-- The last TLS session per pool (scheme, host, port and verification mode:
-- a session a client without verification made is never resumed by one
-- that verifies), handed to the next handshake there so that a new
-- connection resumes it rather than making a full handshake. One cache
-- per worker, shared by its clients (a client is often made per request).
local sessions = {}

-- Where a cosocket may run (ngx.get_phase() names).
local COSOCKET_PHASES = {
  rewrite = true, server_rewrite = true, access = true, content = true, timer = true,
  ssl_cert = true, ssl_session_fetch = true, ssl_client_hello = true, preread = true,
}

-- truto.transport.ngx.new(config) -> transport. config: the client's
-- (insecure is honoured; ca_file and proxy cannot be, see below). Raises
-- on misuse: truto.new turns that into an invalid_argument.
function M.new(config)
  if rawget(_G, "ngx") == nil or type(ngx.socket) ~= "table" then
    error("transport \"ngx\" needs nginx with the lua module (ngx.socket is missing)", 0)
  end
  if config.ca_file then
    -- cosockets verify against nginx's own CA list; one per nginx, not per call
    error("ca_file cannot be used with the ngx transport: set lua_ssl_trusted_certificate "
      .. "in nginx.conf instead", 0)
  end
  if config.proxy then
    error("proxy is not supported by the ngx transport (use transport = \"curl\")", 0)
  end
  return setmetatable({ name = "ngx", verify = not config.insecure }, M)
end

-- scheme, host (for connect and TLS), port, Host header value, target;
-- or nil, message.
local function split_url(url)
  local scheme, authority, target = url:match("^(%a[%w+.-]*)://([^/?#]*)(.*)$")
  if not scheme then return nil, "URL is malformed: " .. url end
  scheme = scheme:lower()
  if scheme ~= "http" and scheme ~= "https" then
    return nil, "unsupported protocol " .. scheme .. " (http and https only)"
  end
  if authority:find("@", 1, true) then
    return nil, "URLs with user information are not supported"
  end
  local host, port = authority:match("^(%[[%x:.]+%])(.*)$")
  if not host then host, port = authority:match("^([^:]*)(.*)$") end
  if host == "" then return nil, "URL has no host: " .. url end
  local default = scheme == "https" and 443 or 80
  local number = default
  if port ~= "" then
    number = tonumber(port:match("^:(%d+)$"))
    if not number or number < 1 or number > 65535 then return nil, "URL has a bad port: " .. url end
  end
  if target == "" or target:sub(1, 1) ~= "/" then target = "/" .. target end
  target = target:gsub("#.*$", "")
  local host_header = number == default and host or (host .. ":" .. number)
  return scheme, host, number, host_header, target
end

-- The request line, headers and body as sent on the wire: the same bytes,
-- in the same order, as the curl transport sends (Host first, then the
-- caller's headers, then Content-Length). Only the caller's headers and
-- Content-Length: never a Content-Type of our own, and for a request
-- without a body (GET, DELETE) no Content-Length either.
local function serialize(method, host_header, target, headers, body)
  local lines = { method .. " " .. target .. " HTTP/1.1", "Host: " .. host_header }
  for i = 1, #headers do lines[#lines + 1] = headers[i] end
  if (body and #body > 0) or BODY_METHODS[method] then
    lines[#lines + 1] = "Content-Length: " .. (body and #body or 0)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = body or ""
  return table.concat(lines, "\r\n")
end

-- Seconds as cosocket milliseconds: the core's one rule (rounded up, at
-- least 1, at most 2^31 - 1, the largest a cosocket takes: settimeouts
-- raises "bad timeout value" above it), as libcurl gets them.
local millis = core.milliseconds

-- A failure as the contract returns it.
local function failure(kind, message, sent, which)
  return { kind = kind, message = message, sent = sent, which = which }
end

-- Classifies a cosocket connect error message. Like curl, a timeout
-- before the connection is up is a connect_timeout (nothing was sent),
-- whichever of connect_timeout and timeout ran out.
local function connect_failure(err, host, port, waited)
  if err == "timeout" then
    return failure("timeout", ("connection to %s port %d timed out after %d ms"):format(
      host, port, millis(waited)), false, "connect_timeout")
  end
  return failure("connect", ("failed to connect to %s port %d: %s"):format(host, port, err), false)
end

local function too_large(max, announced)
  if announced then
    return failure("too_large", ("the answer announces %d bytes, over max_response_bytes = %d; "
      .. "connection dropped without reading it"):format(announced, max), true)
  end
  return failure("too_large", ("the answer passed max_response_bytes = %d; connection dropped "
    .. "without reading the rest"):format(max), true)
end

-- One exchange on one connection: { status, headers, body } or a failure.
-- A request is never sent twice here: when a reused keep-alive connection
-- turns out dead, the failure says the request may have been received
-- (sent = true) and the client's retry policy decides, as with curl.
local function exchange(self, req, target, deadline)
  local scheme, host, port, host_header, path = target.scheme, target.host, target.port,
    target.host_header, target.path
  local https = scheme == "https"
  local hint = self.verify and TLS_HINT or ""
  local sock = ngx.socket.tcp()
  local pool = scheme .. "://" .. host .. ":" .. port .. (https and (self.verify and "#verify" or "#insecure") or "")

  -- connect (and TLS): bounded by connect_timeout and by what is left of timeout
  local started = now()
  local left = deadline - started
  local connect_budget = math.min(req.connect_timeout or 10, left)
  -- stall_timeout also bounds a connect that makes no progress; as with
  -- curl, a timeout before the request went out is a connect_timeout
  if req.stall_timeout and req.stall_timeout < connect_budget then connect_budget = req.stall_timeout end
  local ms = millis(connect_budget)
  sock:settimeouts(ms, ms, ms)
  -- one pool per scheme + host + port + verification mode; its size and
  -- idle time are nginx's lua_socket_pool_size / lua_socket_keepalive_timeout
  local ok, err = sock:connect(host, port, { pool = pool })
  if not ok then
    return connect_failure(err, host, port, now() - started)
  end
  local reused = (sock:getreusedtimes() or 0) > 0
  if https and not reused then
    local sni = host:gsub("^%[(.*)%]$", "%1")
    ms = millis(math.max(connect_budget - (now() - started), 0.001))
    sock:settimeouts(ms, ms, ms)
    -- nil (no session yet) or the last one: either way the handshake's own
    -- session comes back (false would return only true). Debian's
    -- lua-resty-core asserts, raising, where a handshake that completed at
    -- once failed verification (see below): that is a failed handshake.
    local done, session, herr = pcall(sock.sslhandshake, sock, sessions[pool], sni, self.verify)
    if not done then session, herr = nil, "certificate verification failed?" end
    sessions[pool] = session or nil
    if not session then
      sock:close()
      if herr == "timeout" then
        return failure("timeout", ("TLS handshake with %s port %d timed out"):format(host, port), false,
          "connect_timeout")
      end
      return failure("tls", ("TLS handshake with %s failed: %s"):format(host,
        tostring(herr or "no reason given")) .. hint, false)
    end
    -- Debian's lua-nginx (0.10.23, ngx_http_lua_ffi_socket_tcp_sslhandshake)
    -- reports success for a handshake that completed at once but failed
    -- verification, on a socket it already closed: nothing can be written
    -- on it, so that is the TLS failure, not a network one
    local _, closed = sock:getreusedtimes()
    if closed then
      sock:close()
      return failure("tls", ("TLS handshake with %s failed: the connection was closed during the "
        .. "handshake (certificate verification failed?)"):format(host) .. hint, false)
    end
  end
  local fresh_tls = https and not reused

  -- send: what is left of the total timeout
  left = deadline - now()
  if left <= 0 then
    sock:close()
    return failure("timeout", ("timed out after %d ms before the request was sent"):format(
      millis(now() - started)), false, "timeout")
  end
  ms = millis(left)
  sock:settimeouts(ms, ms, ms)
  local bytes, serr = sock:send(serialize(req.method, host_header, path, req.headers, req.body))
  if not bytes then
    sock:close()
    if fresh_tls and serr == "closed" then
      -- the same late verdict: closed before a byte of the request went out
      return failure("tls", ("TLS handshake with %s failed: the server closed the connection "
        .. "before the request was written (certificate refused?)"):format(host) .. hint, false)
    end
    if serr == "timeout" then
      return failure("timeout", ("timed out after %d ms while sending the request"):format(
        millis(now() - started)), true, "timeout")
    end
    return failure("network", "sending the request failed: " .. tostring(serr), true)
  end

  -- receive: until the parser says done; each wait bounded by what is left
  -- of the total and by stall_timeout
  local parser = core.http_response(req.method == "HEAD")
  local stall = req.stall_timeout
  local max = req.max_response_bytes or 64 * 1024 * 1024
  local sink, sinking = req.sink, false
  local pieces, size, got_any = {}, 0, false
  local phase, status, headers = "head", nil, nil
  while phase ~= "done" do
    left = deadline - now()
    if left <= 0 then
      sock:close()
      return failure("timeout", ("operation timed out after %d ms"):format(millis(now() - started)),
        true, "timeout")
    end
    local wait, by_stall = left, false
    if stall and stall < left then wait, by_stall = stall, true end
    sock:settimeout(millis(wait))
    local data, rerr = sock:receiveany(RECEIVE_SIZE)
    if not data then
      if rerr == "timeout" then
        sock:close()
        if by_stall then
          return failure("timeout", ("no byte moved for %g seconds"):format(stall), true, "stall_timeout")
        end
        return failure("timeout", ("operation timed out after %d ms"):format(millis(now() - started)),
          true, "timeout")
      elseif rerr == "closed" then
        data = "" -- the peer closed: tell the parser (read-until-close answers end here)
      else
        sock:close()
        if reused and not got_any then
          return failure("network", "the reused connection failed with no answer after the request "
            .. "was sent (" .. tostring(rerr) .. "; the server may have received it)", true)
        end
        return failure("network", "receiving the response failed: " .. tostring(rerr), true)
      end
    end
    if data ~= "" then got_any = true end
    local perr, code
    phase, perr, code = parser:feed(data)
    if not phase then
      sock:close()
      if code == "too_large" then
        return failure("too_large", perr .. "; connection dropped", true)
      end
      if code == "closed" and reused and not got_any then
        return failure("network", "the connection closed with no answer after the request was sent "
          .. "(the server may have received it)", true)
      end
      return failure("network", perr, true)
    end
    if not status and phase ~= "head" then
      status, headers = parser:status(), parser:headers()
      local length = parser:content_length()
      if length and length > max then
        sock:close()
        return too_large(max, length)
      end
      sinking = sink ~= nil and status >= 200 and status < 300
    end
    if status then
      local chunk = parser:take()
      if chunk ~= "" then
        if sinking then
          local sok, serr2 = pcall(sink, chunk)
          if not sok then
            sock:close()
            error(serr2, 0) -- the sink's own error, as the curl transport raises it
          end
        else
          if #chunk > max - size then
            sock:close()
            return too_large(max)
          end
          size = size + #chunk
          pieces[#pieces + 1] = chunk
        end
      end
    end
    if data == "" and phase ~= "done" then
      -- closed and the parser did not fail: cannot happen, but never spin
      sock:close()
      return failure("network", "connection closed before the response was complete", true)
    end
  end

  if parser:keep_alive() then
    if not sock:setkeepalive() then sock:close() end
  else
    sock:close()
  end
  return { status = status, headers = headers, body = table.concat(pieces) }
end

-- transport:request(req): see the header comment and truto.transport.curl.
function M:request(req)
  local phase = ngx.get_phase()
  if not COSOCKET_PHASES[phase] then
    error("the ngx transport cannot run in nginx's " .. phase .. " phase (cosockets are "
      .. "disabled there): call it from a content/access/rewrite handler or an ngx.timer", 2)
  end
  local deadline = now() + (req.timeout or 30)
  local url, method, body, headers = req.url, req.method, req.body, req.headers
  local redirects = 0
  while true do
    local scheme, host, port, host_header, path = split_url(url)
    if not scheme then return nil, "connect", host, redirects > 0 end
    local target = { scheme = scheme, host = host, port = port, host_header = host_header, path = path }
    local current = { method = method, headers = headers, body = body, connect_timeout = req.connect_timeout,
      stall_timeout = req.stall_timeout, max_response_bytes = req.max_response_bytes, sink = req.sink }
    local r = exchange(self, current, target, deadline)
    -- a hop that was delivered means the request was sent, whatever
    -- happens to the next one
    if r.kind then return nil, r.kind, r.message, r.sent or redirects > 0, r.which end

    local location = r.headers.location
    local redirect = req.follow_redirects and location and (r.status == 301 or r.status == 302
      or r.status == 303 or r.status == 307 or r.status == 308)
    if not redirect then return r.status, r.headers, r.body end
    -- past the limit (a loop, most likely) the last 3xx is the answer:
    -- a permanent one, which the caller reports with its status
    if redirects >= MAX_REDIRECTS then return r.status, r.headers, r.body end
    redirects = redirects + 1
    local next_url = url_mod.resolve_location(url, location)
    if not next_url:match("^[Hh][Tt][Tt][Pp][Ss]?://") then
      return nil, "connect", "redirect to an unsupported protocol", true
    end
    -- as curl does: 301/302/303 turn a POST into a GET without a body;
    -- Authorization never follows to another origin
    if (r.status == 301 or r.status == 302 or r.status == 303) and method ~= "GET" and method ~= "HEAD" then
      method, body = "GET", nil
    end
    if url_mod.origin_of(next_url) ~= url_mod.origin_of(url) then
      local kept = {}
      for i = 1, #headers do
        if not headers[i]:lower():match("^authorization:") then kept[#kept + 1] = headers[i] end
      end
      headers = kept
    end
    url = next_url
  end
end

-- Connections live in nginx's keep-alive pools, not here: nothing to free.
function M.close(_) end

return M
