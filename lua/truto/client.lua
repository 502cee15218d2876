-- truto.client: a configured connection to Truto and the `groups` calls on
-- it. Validates configuration and per-call options (from the OPTIONS table
-- below, the one place they are described), builds the request with the C
-- core, sends it through the client's transport with retries that cannot
-- create a group twice, and shapes results and errors.
--
-- Must never: put the token in an error or a string it returns; retry a
-- create that may have reached the server without an Idempotency-Key; block
-- inside nginx (the ngx transport and ngx.sleep are chosen there).

local core = require "truto.core"
local errors = require "truto.errors"
local response = require "truto.response"
local retry = require "truto.retry"
local schema = require "truto.schema"

local M = {}
M.VERSION = "0.1.0"

local endpoint = core.endpoint(schema)
M.endpoint = endpoint
local now, uuid4 = core.now, core.uuid4
local interpret = response.interpret

-- Every option, where it may be given, its type and default.
--   client: accepted by truto.new; call: accepted in a call's options
--   env: read when truto.new is not given the key
M.OPTIONS = {
  token = { client = true, type = "string", env = "TRUTO_API_TOKEN", header = true },
  base_url = { client = true, type = "string", env = "TRUTO_BASE_URL",
    default = "https://api.truto.one" },
  integrated_account_id = { client = true, type = "string", env = "TRUTO_INTEGRATED_ACCOUNT_ID" },
  user_agent = { client = true, type = "string", header = true },
  ca_file = { client = true, type = "string" },
  insecure = { client = true, type = "boolean", default = false },
  proxy = { client = true, type = "string" },
  transport = { client = true, type = "transport" },
  sleep = { client = true, type = "function" },
  on_retry = { client = true, type = "function" },
  timeout = { client = true, call = true, type = "seconds", default = 30 },
  connect_timeout = { client = true, call = true, type = "seconds", default = 10 },
  stall_timeout = { client = true, call = true, type = "seconds" },
  deadline = { client = true, call = true, type = "seconds" },
  max_response_bytes = { client = true, call = true, type = "count", default = 64 * 1024 * 1024 },
  max_retries = { client = true, call = true, type = "count", default = 3, zero = true },
  retry_base = { client = true, call = true, type = "seconds", default = 0.5 },
  retry_cap = { client = true, call = true, type = "seconds", default = 30 },
  follow_redirects = { client = true, call = true, type = "boolean", default = false },
  idempotency_key = { call = true, type = "key" },
  headers = { call = true, type = "headers" },
  sink = { call = true, type = "function" },
}

-- Headers the module owns; options.headers may not set them.
local OWN_HEADERS = {
  authorization = "use the client's token", ["content-type"] = "the body is always JSON",
  accept = "responses are always JSON", ["idempotency-key"] = "use options.idempotency_key",
  ["content-length"] = "computed from the body", host = "taken from base_url",
  ["user-agent"] = "use the client's user_agent", expect = "never sent",
  ["transfer-encoding"] = "computed from the body", connection = "managed by the transport",
}

local function bad(field, detail) return nil, errors.invalid(field, detail) end

local function has_control(s) return s:find("[%z\1-\31\127]") ~= nil end

local function is_number(v) return type(v) == "number" and v == v and v > -math.huge and v < math.huge end

-- The longest header line ("Name: value") sent: servers refuse longer ones
-- (nginx and most proxies at 8 KiB), and libcurl fails on 1 MiB.
local MAX_HEADER_LINE = 8192

-- s fit for a message: bytes outside printable ASCII shown as ?, cut at 40.
local function printable(s)
  s = tostring(s)
  local cut = #s > 40
  s = s:sub(1, 40):gsub("[^\32-\126]", "?"):gsub('["\\]', "?")
  return s .. (cut and "..." or "")
end

-- A value as an error message shows it: numbers as they are, anything
-- else by its type (a string is not echoed: it might be a secret).
local function shown(v)
  if type(v) == "number" then return tostring(v) end
  return "a " .. type(v)
end

-- Checks one option value; returns the value to use or nil, err.
local function check_option(name, spec, v)
  local t = spec.type
  if t == "string" then
    if type(v) ~= "string" then return bad(name, "must be a string (got " .. type(v) .. ")") end
    if spec.header and has_control(v) then
      return bad(name, "must not contain control characters (CR, LF, NUL)")
    end
    if spec.header and #v > MAX_HEADER_LINE - 32 then
      return bad(name, "must be at most " .. (MAX_HEADER_LINE - 32) .. " bytes (got " .. #v .. ")")
    end
  elseif t == "boolean" or t == "function" then
    if type(v) ~= t then return bad(name, "must be a " .. t .. " (got " .. type(v) .. ")") end
  elseif t == "seconds" then
    if not is_number(v) or v <= 0 then
      return bad(name, "must be a positive number of seconds (got " .. shown(v) .. ")")
    end
  elseif t == "count" then
    if not is_number(v) or v % 1 ~= 0 or v < 0 or (v == 0 and not spec.zero) then
      return bad(name, "must be a " .. (spec.zero and "non-negative" or "positive")
        .. " whole number (got " .. shown(v) .. ")")
    end
  elseif t == "transport" then
    if v ~= "curl" and v ~= "ngx" and v ~= "haproxy"
      and not (type(v) == "table" and type(v.request) == "function") then
      return bad(name, "must be \"curl\", \"ngx\", \"haproxy\" or a table with a request method")
    end
  elseif t == "key" then
    if v ~= false and type(v) ~= "string" then
      return bad(name, "must be a string, or false to send none (got " .. type(v) .. ")")
    end
    if v then
      if v == "" or #v > 255 then return bad(name, "must be 1 to 255 characters") end
      if has_control(v) then return bad(name, "must not contain control characters (CR, LF, NUL)") end
    end
  elseif t == "headers" then
    if type(v) ~= "table" then return bad(name, "must be a table of name = value (got " .. type(v) .. ")") end
    local lines = {}
    for k, val in pairs(v) do
      if type(k) ~= "string" or k == "" or k:find("[^%w!#$%%&'*+%-.^_`|~]") then
        return bad("headers", "has an invalid header name \"" .. printable(k) .. "\""
          .. (type(k) ~= "string" and " (a " .. type(k) .. ")" or ""))
      end
      local field = "headers." .. printable(k)
      if OWN_HEADERS[k:lower()] then
        return bad(field, "cannot be set here: " .. OWN_HEADERS[k:lower()])
      end
      if type(val) ~= "string" and type(val) ~= "number" then
        return bad(field, "must be a string (got " .. type(val) .. ")")
      end
      val = tostring(val)
      if has_control(val) then return bad(field, "must not contain control characters (CR, LF, NUL)") end
      if #k + #val + 2 > MAX_HEADER_LINE then
        return bad(field, "makes a header line over " .. MAX_HEADER_LINE .. " bytes, which servers refuse")
      end
      lines[#lines + 1] = k .. ": " .. val
    end
    table.sort(lines)
    return lines
  end
  return v
end

local function in_nginx()
  return rawget(_G, "ngx") ~= nil and type(ngx.get_phase) == "function"
    and ngx.get_phase() ~= "init" and ngx.get_phase() ~= "init_worker"
end

-- HAProxy (2.5+) with its httpclient: its `core` global, not truto.core.
local function in_haproxy()
  local hcore = rawget(_G, "core")
  return type(hcore) == "table" and type(hcore.httpclient) == "function"
end

local function open_transport(config)
  local t = config.transport
  if type(t) == "table" then return t end
  if t == nil then t = (in_nginx() and "ngx") or (in_haproxy() and "haproxy") or "curl" end
  if t == "ngx" then return require("truto.transport.ngx").new(config) end
  if t == "haproxy" then return require("truto.transport.haproxy").new(config) end
  return require("truto.transport.curl").new(config)
end

local Client = {}
Client.__index = Client

Client.__tostring = function(c)
  return errors.redact("truto.client (" .. c.base_url .. (c.closed and ", closed" or "") .. ")", c.token)
end

-- M.new(config) -> client | nil, err
function M.new(config)
  if config == nil then config = {} end
  if type(config) ~= "table" then return bad("config", "must be a table (got " .. type(config) .. ")") end
  for k in pairs(config) do
    local spec = M.OPTIONS[k]
    if type(k) ~= "string" or not spec or not spec.client then
      return bad(tostring(k), "is not a client option" .. (spec and " (give it per call)" or ""))
    end
  end
  local c = {}
  for name, spec in pairs(M.OPTIONS) do
    if spec.client then
      local v = config[name]
      if v == nil and spec.env then
        v = os.getenv(spec.env)
        if v == "" then v = nil end
      end
      if v ~= nil then
        local ok, err = check_option(name, spec, v)
        if ok == nil then return nil, err end
        v = ok
      else
        v = spec.default
      end
      c[name] = v
    end
  end
  if not c.token or c.token == "" then
    return bad("token", "is required (pass token = ... or set TRUTO_API_TOKEN)")
  end
  local base = c.base_url:gsub("/+$", "")
  if not base:match("^https?://[^/%s?#]+[^%s?#]*$") then
    return bad("base_url", "must be an http:// or https:// URL without query or fragment")
  end
  c.base_url = base
  if c.integrated_account_id then
    local ok, field, why = endpoint:build(nil, nil, c.integrated_account_id)
    if not ok then return nil, errors.new("invalid_argument", why, { field = field }) end
  end
  local ok, transport = pcall(open_transport, c)
  if not ok then return nil, errors.new("invalid_argument", "transport: " .. tostring(transport),
    { field = "transport" }) end
  c.transport = transport
  c.headers = {
    "Authorization: Bearer " .. c.token,
    "Content-Type: application/json",
    "Accept: application/json",
    "User-Agent: truto-lua/" .. M.VERSION .. (c.user_agent and (" " .. c.user_agent) or ""),
  }
  c.sleep = c.sleep or (in_nginx() and ngx.sleep)
    or (c.transport.name == "haproxy" and function(seconds) -- HAProxy's yielding sleep
      rawget(_G, "core").msleep(math.floor(seconds * 1000 + 0.5)) end)
    or core.sleep
  c.closed = false
  local client = setmetatable(c, Client)
  client.groups = {
    create = function(body, query, options) return client:create_group(body, query, options) end,
    create_many = function(items, query, options)
      return require("truto.batch").create_many(client, items, query, options)
    end,
  }
  return client
end

-- Resolves per-call options over the client's; returns a table or nil, err.
local function call_options(c, options)
  -- no options: the client's own, resolved once (never modified by a call)
  if options == nil and c.call_defaults then return c.call_defaults end
  local o = {
    timeout = c.timeout, connect_timeout = c.connect_timeout, stall_timeout = c.stall_timeout,
    deadline = c.deadline, max_response_bytes = c.max_response_bytes,
    max_retries = c.max_retries, retry_base = c.retry_base, retry_cap = c.retry_cap,
    follow_redirects = c.follow_redirects,
  }
  if options == nil then
    c.call_defaults = o
    return o
  end
  if type(options) ~= "table" then return bad("options", "must be a table (got " .. type(options) .. ")") end
  for k, v in pairs(options) do
    local spec = M.OPTIONS[k]
    if type(k) ~= "string" or not spec or not spec.call then
      return bad(tostring(k), "is not a call option" .. (spec and " (set it on the client)" or ""))
    end
    local ok, err = check_option(k, spec, v)
    if ok == nil then return nil, err end
    o[k] = ok
  end
  return o
end

M.call_options = call_options

-- The longest request target (path and query) sent. Truto sits behind a
-- CDN that refuses longer URLs (414), and libcurl refuses URLs over 8 MB.
local MAX_TARGET_BYTES = 16384

-- The top-level query parameter that makes the target too long (the
-- biggest one on its own), for the error's field.
local function longest_query_field(query, account)
  local worst, worst_len = "query", -1
  if type(query) ~= "table" then return worst end
  for k, v in pairs(query) do
    local target = endpoint:build(nil, { [k] = v }, account)
    if target and #target > worst_len then worst, worst_len = k, #target end
  end
  return worst
end

-- The limits of one attempt: the per-attempt timeout and connect_timeout,
-- never past the deadline (`left` seconds, or nil), and for each limit a
-- transport may report, the name of the option that really set it.
local function attempt_limits(o, left)
  if not left and o.limits then return o.limits end
  local timeout, timeout_name = o.timeout, "timeout"
  if left and left < timeout then timeout, timeout_name = math.max(left, 0.001), "deadline" end
  local connect_timeout, connect_name = o.connect_timeout, "connect_timeout"
  if timeout < connect_timeout then connect_timeout, connect_name = timeout, timeout_name end
  local limits = {
    timeout = timeout, connect_timeout = connect_timeout,
    names = { timeout = timeout_name, connect_timeout = connect_name,
      stall_timeout = "stall_timeout" },
  }
  if not left then o.limits = limits end -- the same for every attempt without a deadline
  return limits
end

local TIMEOUT_TEXT = {
  timeout = "no complete answer within timeout = %gs",
  connect_timeout = "not connected within connect_timeout = %gs",
  stall_timeout = "no byte moved for stall_timeout = %gs",
  deadline = "the call's deadline = %gs passed",
}

-- M.transport_error(c, kind, message, which [, o, limits]) -> err
-- The error for an attempt the transport could not complete (no HTTP
-- answer). `which`: the limit the transport says fired; with the call's
-- options `o` and the attempt's `limits` (attempt_limits) it is renamed to
-- the option that really set that limit (a deadline shortens the others).
-- Also used by truto.batch.
function M.transport_error(c, kind, message, which, o, limits)
  local fields = {}
  message = tostring(message)
  if kind == "timeout" then
    which = limits and limits.names[which] or which or "timeout"
    if not TIMEOUT_TEXT[which] then which = "timeout" end
    fields.timeout = which
    local limit = o and o[which]
    message = (limit and TIMEOUT_TEXT[which]:format(limit) or which .. " fired")
      .. " (" .. message .. ")"
  elseif kind == "tls" then
    -- the one way verification is off is named whenever it is
    if c.insecure then
      message = message .. " (insecure = true is set: certificate verification is off)"
    elseif message:lower():find("certificate", 1, true) then
      message = message .. " (set ca_file to trust a private CA)"
    end
  end
  return errors.new(kind, message, fields)
end

-- The error when waiting for the next attempt would pass the deadline.
local function deadline_error(o, attempt, last)
  return errors.new("timeout", TIMEOUT_TEXT.deadline:format(o.deadline) .. " before attempt "
    .. (attempt + 1) .. " could start; last failure: " .. retry.reason(last) .. ": "
    .. tostring(last.message),
    { timeout = "deadline", cause = last, retry_after = last.retry_after })
end

-- client:create_group(body, query, options) -> group, meta | nil, err
-- Retries as truto.retry decides, with the same Idempotency-Key on every
-- attempt; every error it returns has `attempts` and `retryable` and has
-- been scrubbed of the token.
function Client:create_group(body, query, options)
  if self.closed then error("attempt to use a closed truto client", 2) end
  local token = self.token
  local o, oerr = call_options(self, options)
  if not o then
    oerr.attempts = 0
    return nil, errors.redact(oerr, token)
  end
  local target, json, why = endpoint:build(body, query, self.integrated_account_id)
  if not target then
    return nil, errors.redact(errors.new("invalid_argument", why,
      { field = json, retryable = false, attempts = 0 }), token)
  end
  if #target > MAX_TARGET_BYTES then
    local field = longest_query_field(query, self.integrated_account_id)
    return nil, errors.redact(errors.new("invalid_argument", field .. ": makes the URL "
      .. #target .. " bytes long, over the " .. MAX_TARGET_BYTES .. " bytes servers accept",
      { field = field, retryable = false, attempts = 0 }), token)
  end

  local key = o.idempotency_key
  if key == nil then key = uuid4() end
  local keyed = key ~= false
  local headers = { self.headers[1], self.headers[2], self.headers[3], self.headers[4] }
  if keyed then headers[#headers + 1] = "Idempotency-Key: " .. key end
  if o.headers then for i = 1, #o.headers do headers[#headers + 1] = o.headers[i] end end

  local format = type(query) == "table" and query.truto_response_format or nil
  -- once a sink has seen bytes, a retry would hand it the body twice
  local sank -- set false before each attempt, true by the sink wrapper
  local user_sink = format == "stream" and o.sink or nil
  local req = {
    method = schema.method, url = self.base_url .. target, headers = headers, body = json,
    max_response_bytes = o.max_response_bytes, stall_timeout = o.stall_timeout,
    sink = user_sink and function(chunk) sank = true; return user_sink(chunk) end or nil,
    follow_redirects = o.follow_redirects,
  }
  local started = now()
  local deadline_at = o.deadline and started + o.deadline
  local attempt = 0
  while true do
    attempt = attempt + 1
    local limits = attempt_limits(o, deadline_at and deadline_at - now())
    req.timeout, req.connect_timeout = limits.timeout, limits.connect_timeout
    sank = false
    local status, rheaders, rbody, sent, which = self.transport:request(req)
    local value, err
    if status then
      value, err = interpret(status, rheaders, rbody, format, req.sink ~= nil, keyed, token)
      if value ~= nil then
        local meta = { status = status, headers = rheaders, attempts = attempt,
          idempotency_key = key or nil, elapsed = now() - started,
          rate_limit = response.rate_limit(rheaders) }
        return value, meta
      end
      sent = true
    else
      err = M.transport_error(self, rheaders, rbody, which, o, limits)
    end
    err.attempts = attempt
    err.retryable = retry.may_retry(err, sent, keyed) and not sank
    local wait, stop
    if err.retryable then
      wait, stop = retry.plan(err, sent, keyed, o, attempt, deadline_at and deadline_at - now())
    end
    if not wait then
      if stop == "deadline" and not (err.kind == "timeout" and err.timeout == "deadline") then
        err = deadline_error(o, attempt, err)
        err.attempts, err.retryable = attempt, false
      end
      return nil, errors.redact(err, token)
    end
    errors.redact(err, token)
    if self.on_retry then
      self.on_retry{ attempt = attempt, reason = retry.reason(err), wait = wait, err = err,
        idempotency_key = key or nil }
    end
    if wait > 0 then self.sleep(wait) end
  end
end

-- client:close(): releases the connection; idempotent. Later calls raise.
function Client:close()
  if not self.closed then
    self.closed = true
    if self.transport.close then self.transport:close() end
  end
end
Client.__close = Client.close
Client.__gc = Client.close

return M
