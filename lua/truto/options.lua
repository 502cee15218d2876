-- truto.options: every option of a client and of a call, in one table
-- (OPTIONS: where each may be given, its type and default), the checks
-- that turn a given value into the value used, and the resolution of a
-- call's options over its client's. Pure: no I/O, never sees a secret in
-- a message it builds (strings are not echoed).

local errors = require "truto.errors"

-- truto.pace is loaded when a budget is asked for, not by rate_limits = false
local function pace() return require "truto.pace" end

local M = {}

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
  http_version = { client = true, type = "http_version", default = "auto" },
  transport = { client = true, type = "transport" },
  sleep = { client = true, type = "function" },
  on_retry = { client = true, type = "function" },
  on_request = { client = true, call = true, type = "function" },
  rate_limits = { client = true, type = "rate_limits" },
  rate_limit_dict = { client = true, type = "string" },
  rate_limit_store = { client = true, type = "rate_limit_store", env = "TRUTO_RATE_LIMIT_STORE" },
  on_response = { client = true, call = true, type = "function" },
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
  headers = { client = true, call = true, type = "headers" },
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
  elseif t == "http_version" then
    if v ~= "auto" and v ~= "1.1" and v ~= "2" then
      return bad(name, "must be \"auto\", \"1.1\" or \"2\" (got " .. shown(v) .. ")")
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
  elseif t == "rate_limits" then
    if v == false then return false end -- no budget
    local limits, why = pace().check(v)
    if limits == nil then return bad(name, why) end
    return limits
  elseif t == "rate_limit_store" then
    local store, why = pace().check_store(v)
    if not store then return bad(name, why) end
    return store
  elseif t == "headers" then
    -- a function is called for each call and its table checked then
    if type(v) == "function" then return v end
    if type(v) ~= "table" then
      return bad(name, "must be a table of name = value, or a function returning one (got " .. type(v) .. ")")
    end
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


M.check_option = check_option
M.MAX_HEADER_LINE = MAX_HEADER_LINE
M.OWN_HEADERS = OWN_HEADERS
M.has_control = has_control
M.bad = bad

-- Resolves per-call options over the client's; returns a table or nil, err.
function M.call_options(c, options)
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


return M
