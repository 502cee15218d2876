-- truto.errors: the one error type every failure of `truto` returns.
--
-- An error is a plain table with a stable `kind` and a `message`, plus the
-- fields that apply (status, body, field, retryable, retry_after, attempts,
-- remote, insight, timeout, cause). tostring(err) is one readable line.
-- Must never let the client's token into any field: `redact` scrubs every
-- string an error carries, including an error body the server echoed.

local M = {}

M.KINDS = {
  invalid_argument = true, http = true, rate_limited = true, timeout = true,
  connect = true, tls = true, network = true, decode = true, too_large = true,
}

local Error = {}
Error.__index = Error
M.mt = Error

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

local function scrub(s, secret)
  if not secret or secret == "" then return s end
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

-- Returns v with every occurrence of `secret` in its string values (at any
-- depth; keys and `kind` are left alone) replaced, in place. Secrets
-- shorter than 4 bytes are not secrets worth garbling every message for.
function M.redact(v, secret, seen)
  local t = type(v)
  if not secret or #secret < 4 then return v end
  if t == "string" then return scrub(v, secret) end
  if t ~= "table" then return v end
  seen = seen or {}
  if seen[v] then return seen[v] end
  seen[v] = v
  local changes = {}
  for k, val in pairs(v) do
    if k ~= "kind" then
      local nv = M.redact(val, secret, seen)
      if nv ~= val then changes[#changes + 1] = { k, nv } end
    end
  end
  for _, c in ipairs(changes) do v[c[1]] = c[2] end
  return v
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

function M.is(v)
  return getmetatable(v) == Error
end

return M
