-- truto.response: status + headers + body of one attempt -> the caller's
-- value, or an `http` / `rate_limited` / `decode` error with Truto's
-- envelope decoded. Pure: no I/O, no retries (the client decides those
-- from the `retryable` and `retry_after` this sets).

local cjson = require "cjson.safe"
local core = require "truto.core"
local errors = require "truto.errors"

local M = {}

local decode, normalize = cjson.decode, core.normalize

-- Status codes after which repeating a create cannot make a second group
-- only when the server deduplicates by Idempotency-Key (TRUTO_API.md).
local RETRY_WITH_KEY = { [500] = true, [502] = true, [504] = true }

local REASONS = {
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [409] = "Conflict", [422] = "Unprocessable Entity",
  [429] = "Too Many Requests", [500] = "Internal Server Error", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8,
  Sep = 9, Oct = 10, Nov = 11, Dec = 12 }

-- Seconds from now that an HTTP date names (IMF-fixdate), or nil.
local function seconds_until_date(s, now)
  local d, mon, y, h, mi, sec = s:match("^%a+, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d or not MONTHS[mon] then return nil end
  -- days since the epoch, civil-from-days inverse (no os.time: it is local time)
  local yy, mm, dd = tonumber(y), MONTHS[mon], tonumber(d)
  if mm <= 2 then yy = yy - 1 end
  local era = math.floor(yy / 400)
  local yoe = yy - era * 400
  local doy = math.floor((153 * (mm + (mm > 2 and -3 or 9)) + 2) / 5) + dd - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  local days = era * 146097 + doe - 719468
  local t = days * 86400 + tonumber(h) * 3600 + tonumber(mi) * 60 + tonumber(sec)
  local wait = t - (now or os.time())
  return wait > 0 and wait or 0
end

-- Retry-After as seconds (delta-seconds or an HTTP date), or nil.
function M.retry_after(value, now)
  if type(value) ~= "string" then return nil end
  value = value:match("^%s*(.-)%s*$")
  if value:match("^%d+$") then return tonumber(value) end
  if value:match("^%d+%.%d+$") then return tonumber(value) end
  return seconds_until_date(value, now)
end

-- { limit, remaining, reset [, window] } from ratelimit-* headers, or nil.
function M.rate_limit(headers)
  local limit, remaining, reset = headers["ratelimit-limit"], headers["ratelimit-remaining"],
    headers["ratelimit-reset"]
  if not (limit or remaining or reset) then return nil end
  local rl = {}
  if limit then
    rl.limit = tonumber(limit:match("^%s*(%d+)"))
    rl.window = tonumber(limit:match(";%s*w=(%d+)"))
  end
  if remaining then rl.remaining = tonumber(remaining:match("^%s*(%d+)")) end
  if reset then rl.reset = tonumber(reset:match("^%s*(%d+%.?%d*)")) end
  return rl
end

local function is_json(headers)
  local ct = headers["content-type"]
  return ct ~= nil and ct:lower():find("json", 1, true) ~= nil
end

local function snippet(body)
  if #body > 200 then return body:sub(1, 200) .. "..." end
  return body
end

-- The error for a non-2xx answer. `keyed`: the request carried an
-- Idempotency-Key, so a retry of 500/502/504 cannot create twice.
local function http_error(status, headers, body, keyed)
  local envelope, message = decode(body), nil
  if type(envelope) == "table" then
    normalize(envelope)
    if type(envelope.message) == "string" and envelope.message ~= "" then
      message = envelope.message
    elseif type(envelope.error) == "string" and envelope.error ~= "" then
      message = envelope.error
    end
  else
    envelope = body ~= "" and body or nil
  end
  message = message or ("HTTP " .. status .. (REASONS[status] and (" " .. REASONS[status]) or ""))
  local fields = {
    status = status,
    body = envelope,
    headers = headers,
    retryable = status == 429 or (keyed and RETRY_WITH_KEY[status]) or false,
  }
  if type(envelope) == "table" then
    fields.remote = envelope.truto_is_remote_error == true or nil
    fields.insight = envelope.truto_error_insight
  end
  if status == 429 then
    fields.retry_after = M.retry_after(headers["retry-after"])
    if not fields.retry_after then
      local rl = M.rate_limit(headers)
      fields.retry_after = rl and rl.reset
    end
  end
  return errors.new(status == 429 and "rate_limited" or "http", message, fields)
end

-- M.interpret(status, headers, body, format, sank, keyed) -> value | nil, err
-- format: the truto_response_format asked for (nil = unified); sank: the
-- body went to a sink.
function M.interpret(status, headers, body, format, sank, keyed)
  if status < 200 or status > 299 then return nil, http_error(status, headers, body, keyed) end
  if format == "stream" then
    if sank then return true end
    return body
  end
  if status == 204 or body == "" then return {} end
  local value, why = decode(body)
  if value == nil then
    if format == "raw" and not is_json(headers) then return body end
    return nil, errors.new("decode", "response is not valid JSON (" .. tostring(why) .. "): "
      .. snippet(body), { status = status, body = body, headers = headers, retryable = false })
  end
  return normalize(value)
end

return M
