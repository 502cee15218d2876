-- truto.errors: the one error type every failure of `truto` returns.
--
-- An error is a plain table with a stable `kind` and a `message`, plus the
-- fields that apply (status, body, field, retryable, retry_after, attempts,
-- remote, insight, timeout, cause, sent). tostring(err) is one readable line.
-- Must never let the client's token into any field: `redact` scrubs every
-- string an error carries, including an error body the server echoed.

local M = {}

M.KINDS = {
  invalid_argument = true, http = true, rate_limited = true, timeout = true,
  connect = true, tls = true, network = true, decode = true, too_large = true,
  cancelled = true,
  invalid_signature = true, stale = true, -- truto.webhooks
}

local Error = {}
Error.__index = Error

local function one_line(s)
  return (tostring(s):gsub("[\r\n]+", " "))
end

Error.__tostring = function(e)
  local parts = { "truto: ", e.kind }
  if e.status then parts[#parts + 1] = " " .. e.status end
  if e.field and e.kind == "invalid_argument" then
    -- the message already starts with the field
    parts[#parts + 1] = ": " .. one_line(e.message)
  else
    parts[#parts + 1] = ": " .. one_line(e.message)
  end
  if e.attempts and e.attempts > 1 then
    parts[#parts + 1] = " (after " .. e.attempts .. " attempts)"
  end
  return table.concat(parts)
end

local REDACTED = "[REDACTED]"

local function scrub_one(s, secret)
  local i, out, start = 1, {}, 1
  while true do
    local a, b = string.find(s, secret, i, true)
    if not a then break end
    out[#out + 1] = s:sub(start, a - 1)
    out[#out + 1] = REDACTED
    start, i = b + 1, b + 1
  end
  if start == 1 then return s end
  out[#out + 1] = s:sub(start)
  return table.concat(out)
end

-- The forms a secret takes in what a server may echo: as is, and escaped
-- the way JSON encoders write it ("/" as "\/", quotes and backslashes).
local function secret_forms(secret)
  local escaped = secret:gsub('[\\"]', "\\%0")
  local forms = { secret }
  if escaped ~= secret then forms[#forms + 1] = escaped end
  local slashed = escaped:gsub("/", "\\/")
  if slashed ~= escaped then forms[#forms + 1] = slashed end
  return forms
end

local function scrub(s, forms)
  for i = 1, #forms do s = scrub_one(s, forms[i]) end
  return s
end

local function redact(v, forms, seen)
  local t = type(v)
  if t == "string" then return scrub(v, forms) end
  if t ~= "table" then return v end
  if seen[v] then return v end
  seen[v] = true
  local changes = {}
  for k, val in pairs(v) do
    local nk = k
    if type(k) == "string" and k ~= "kind" then nk = scrub(k, forms) end
    local nv = val
    if k ~= "kind" then nv = redact(val, forms, seen) end
    if nk ~= k or nv ~= val then changes[#changes + 1] = { k, nk, nv } end
  end
  for _, c in ipairs(changes) do
    v[c[1]] = nil
    v[c[2]] = c[3]
  end
  return v
end

-- Returns v with every occurrence of `secret` (as is or JSON-escaped) in
-- its strings, keys included, at any depth (`kind` is left alone)
-- replaced by "[REDACTED]", tables changed in place. Secrets shorter than
-- 4 bytes are not secrets worth garbling every message for.
function M.redact(v, secret)
  if type(secret) ~= "string" or #secret < 4 then return v end
  return redact(v, secret_forms(secret), {})
end

-- M.new(kind, message, fields) -> err. Fields are copied onto the error.
function M.new(kind, message, fields, secret)
  assert(M.KINDS[kind], "unknown error kind")
  local e = { kind = kind, message = message }
  if fields then for k, v in pairs(fields) do e[k] = v end end
  if secret then M.redact(e, secret) end
  return setmetatable(e, Error)
end

-- An invalid_argument about `field`: message is "field: detail".
function M.invalid(field, detail)
  return M.new("invalid_argument", field .. ": " .. detail, { field = field, retryable = false })
end

return M
