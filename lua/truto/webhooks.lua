-- truto.webhooks: receive Truto's webhook deliveries safely.
--
--   local event, err = truto.webhooks.verify(secret, signature_header, raw_body, options)
--
-- Checks the X-Truto-Signature header (HMAC-SHA256 of the raw body keyed
-- with the webhook's secret, compared in constant time in C), decodes the
-- body as strict JSON, refuses events outside the replay window on
-- `created_at`, and optionally refuses an `id` seen before through a store
-- the caller owns (a lua_shared_dict in nginx). See README.md "Webhooks".
--
-- Must never: decode or look at a body before its signature checked out,
-- compare signatures in Lua, put the secret (or the signature it expects)
-- in an error, or record an id as seen for an event it then refuses.

local core = require "truto.core"
local errors = require "truto.errors"
local time = require "truto.time"

local M = {}

M.DEFAULT_MAX_AGE = 300      -- seconds either side of now that created_at may be
M.MAX_HEADER_BYTES = 1024    -- a longer X-Truto-Signature is not Truto's

local OPTIONS = { max_age = true, now = true, seen = true }

-- Programmer mistakes raise (STYLE.md), blaming verify's caller: a handler that answers every
-- `nil, err` with 401 would otherwise refuse every genuine delivery in
-- silence when, say, the secret is missing from its configuration.
local function misuse(what, detail)
  error("truto.webhooks.verify: " .. what .. ": " .. detail, 4)
end

local function refuse(kind, message, fields, secret)
  return nil, errors.new(kind, message, fields, secret)
end

local function trim(s)
  return (s:gsub("^%s+", ""):gsub("%s+$", ""))
end

-- The header's parameters as a table (lower-case names), or nil, why.
local function parse_signature_header(header)
  if header == nil then return nil, "no X-Truto-Signature header" end
  if type(header) == "table" then return nil, "more than one X-Truto-Signature header" end
  if #header > M.MAX_HEADER_BYTES then return nil, "the X-Truto-Signature header is too long" end
  local params = {}
  for part in (header .. ","):gmatch("([^,]*),") do
    part = trim(part)
    if part ~= "" then
      local name, value = part:match("^([^=]-)%s*=%s*(.*)$")
      if not name or name == "" then
        return nil, "the X-Truto-Signature header has a parameter without a name and value"
      end
      name = name:lower()
      if params[name] then
        return nil, "the X-Truto-Signature header repeats " .. name
      end
      params[name] = value
    end
  end
  return params
end

-- M.parse_time("2026-12-01T22:15:58.123Z") -> seconds since the epoch (UTC),
-- or nil: an RFC 3339 / ISO 8601 time with a zone (truto.time.iso8601).
M.parse_time = time.iso8601

local function clock(now)
  if type(now) == "function" then
    local t = now()
    if type(t) ~= "number" or t ~= t then misuse("options.now", "returned " .. type(t) .. ", not a number") end
    return t
  elseif type(now) == "number" then
    return now
  end
  return time.now()
end

local function check_arguments(secret, signature_header, raw_body, options)
  if type(secret) ~= "string" or secret == "" then
    misuse("secret", "must be a non-empty string (got " .. (secret == "" and "an empty string" or type(secret)) .. ")")
  end
  local ht = type(signature_header)
  if ht ~= "string" and ht ~= "nil" and ht ~= "table" then
    misuse("signature_header", "must be the header's value, a string or nil (got " .. ht .. ")")
  end
  if raw_body ~= nil and type(raw_body) ~= "string" then
    misuse("raw_body", "must be the body's bytes, a string or nil (got " .. type(raw_body) .. ")")
  end
  if options == nil then return end
  if type(options) ~= "table" then misuse("options", "must be a table (got " .. type(options) .. ")") end
  for k in pairs(options) do
    if not OPTIONS[k] then misuse("options." .. tostring(k), "is not an option of verify") end
  end
  local max_age = options.max_age
  if max_age ~= nil and max_age ~= false
    and (type(max_age) ~= "number" or max_age ~= max_age or max_age <= 0 or max_age == math.huge) then
    misuse("options.max_age", "must be a positive number of seconds, or false")
  end
  local now = options.now
  if now ~= nil and type(now) ~= "function" and (type(now) ~= "number" or now ~= now) then
    misuse("options.now", "must be seconds since the epoch, or a function returning them")
  end
  local seen = options.seen
  if seen ~= nil and type(seen) ~= "function" then
    local ok, has_add = pcall(function() return type(seen.add) == "function" end)
    if not (ok and has_add) then
      misuse("options.seen", "must be a function(id, ttl) or a store with an add method (a lua_shared_dict)")
    end
  end
end

-- Records id in the caller's store; returns true when it was new, or
-- false, why.
local function first_sighting(seen, id, ttl)
  if type(seen) == "function" then
    if seen(id, ttl) == true then return true end
    return false, "replayed"
  end
  local ok, err = seen:add(id, true, ttl)
  if ok then return true end
  if err == "exists" then return false, "replayed" end
  return false, "store_failed", err
end

--[[
M.verify(secret, signature_header, raw_body, options) -> event | nil, err

  secret            the webhook's secret (non-empty string)
  signature_header  the X-Truto-Signature value as received (a string; nil
                    when absent; a table when repeated, as ngx gives it)
  raw_body          the body's bytes exactly as received (nil reads as "")
  options.max_age   seconds created_at may be away from now, either way
                    (default 300); false turns the window off
  options.now       seconds since the epoch, or a function returning them
                    (default ngx.now() in nginx, else os.time())
  options.seen      function(id, ttl) -> true when id is new; or a store
                    with store:add(id, true, ttl) -> true | false, "exists"

Returns the event decoded as every answer is (core.json_decode: integers
beyond 2^53 as strings of their digits, null as truto.null) or nil and an error of kind
invalid_signature, decode or stale (err.reason: too_old, future,
no_created_at, replayed, store_failed). Raises on misuse of its arguments.
]]
function M.verify(secret, signature_header, raw_body, options)
  check_arguments(secret, signature_header, raw_body, options)
  options = options or {}
  raw_body = raw_body or ""

  local params, why = parse_signature_header(signature_header)
  if not params then return refuse("invalid_signature", why) end
  local format, given = params.format, params.v
  if format == nil then
    return refuse("invalid_signature", "the X-Truto-Signature header has no format")
  elseif format:lower() ~= "sha256" then
    return refuse("invalid_signature", "unknown signature format " .. ("%q"):format(format:sub(1, 32))
      .. " (only sha256 is known)", nil, secret)
  elseif given == nil or given == "" then
    return refuse("invalid_signature", "the X-Truto-Signature header has no v")
  end
  if not core.hmac_sha256_verify(secret, raw_body, given) then
    return refuse("invalid_signature", "the signature does not match the body (wrong secret, "
      .. "or the body changed on the way)")
  end

  -- From here on the bytes are Truto's.
  local utf8, bad = core.utf8_check(raw_body)
  if not utf8 then
    return refuse("decode", "the body is not valid UTF-8 (byte " .. bad .. ")")
  end
  local event, derr = core.json_decode(raw_body)
  if event == nil then
    return refuse("decode", "the body is not strict JSON: " .. tostring(derr), nil, secret)
  end
  if type(event) ~= "table" or event[1] ~= nil then
    return refuse("decode", "the body is not a JSON object")
  end
  if type(event.id) ~= "string" or event.id == "" then
    return refuse("decode", "the event has no id (a non-empty string)")
  end
  if type(event.event) ~= "string" then
    return refuse("decode", "the event has no event name (a string)")
  end

  local max_age = options.max_age
  if max_age == nil then max_age = M.DEFAULT_MAX_AGE end
  if max_age then
    local created = M.parse_time(event.created_at)
    if not created then
      return refuse("stale", "the event's created_at is missing or not an ISO 8601 time with a zone, "
        .. "so its age is unknown", { reason = "no_created_at", id = event.id }, secret)
    end
    local age = clock(options.now) - created
    if age > max_age then
      return refuse("stale", ("the event is %.0f s old (max_age %g s)"):format(age, max_age),
        { reason = "too_old", id = event.id, age = age }, secret)
    elseif -age > max_age then
      return refuse("stale", ("the event is dated %.0f s in the future (max_age %g s)"):format(-age,
        max_age), { reason = "future", id = event.id, age = age }, secret)
    end
  end

  if options.seen then
    -- Long enough to cover every moment the window would still let it in.
    local ttl = max_age and math.ceil(2 * max_age) or 0
    local new, reason, store_err = first_sighting(options.seen, event.id, ttl)
    if not new then
      if reason == "replayed" then
        return refuse("stale", "event " .. event.id .. " was received before (a replay)",
          { reason = "replayed", id = event.id }, secret)
      end
      return refuse("stale", "cannot record event " .. event.id .. " in options.seen ("
        .. tostring(store_err) .. "), so it may be a replay", { reason = "store_failed", id = event.id }, secret)
    end
  end
  return event
end

-- M.sign(secret, raw_body) -> "format=sha256,v=<hex>", the header Truto
-- sends with raw_body (for tests of a receiver). Raises on misuse.
function M.sign(secret, raw_body)
  if type(secret) ~= "string" or secret == "" then
    error("truto.webhooks.sign: secret: must be a non-empty string (got " .. type(secret) .. ")", 2)
  end
  if type(raw_body) ~= "string" then
    error("truto.webhooks.sign: raw_body: must be a string (got " .. type(raw_body) .. ")", 2)
  end
  return "format=sha256,v=" .. core.hmac_sha256(secret, raw_body)
end

return M
