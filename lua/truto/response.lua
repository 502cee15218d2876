-- truto.response: status + headers + body of one attempt -> the caller's
-- value, or an `http` / `rate_limited` / `decode` error with Truto's
-- envelope decoded. Pure: no I/O, no retries (the client decides those
-- from the `retryable` and `retry_after` this sets).
--
-- Must never: accept as JSON what strict JSON (RFC 8259) is not (NaN,
-- Infinity, hex, `1.`), or silently round an integer the server sent.

local core = require "truto.core"
local errors = require "truto.errors"
-- truto.time (HTTP dates) is loaded by the first Retry-After that needs it
local function time() return require "truto.time" end

local M = {}

-- M.decode(text) -> value | nil, why: strict JSON, nulls as truto.null,
-- integral numbers within +-2^53 as integers on Lua 5.3+, and integer
-- literals beyond 2^53 as strings of their exact digits (every Lua); why
-- names the problem and its byte, or is "not a string". One pass in C
-- (csrc/decode_json.c).
M.decode = core.json_decode
local decode = M.decode

-- Status codes after which repeating a create cannot make a second group
-- only when the server deduplicates by Idempotency-Key (TRUTO_API.md).
local RETRY_WITH_KEY = { [500] = true, [502] = true, [504] = true }

local REASONS = {
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [409] = "Conflict", [422] = "Unprocessable Entity",
  [429] = "Too Many Requests", [500] = "Internal Server Error", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

-- Seconds since the epoch that an HTTP date names, or nil (truto.time).
function M.http_date(value) return time().http_date(value) end

-- Retry-After as seconds from now (delta-seconds or an HTTP date; a date in
-- the past is 0), or nil when it is neither. `now`: seconds since the epoch
-- (default truto.time.now()).
function M.retry_after(value, now)
  if type(value) ~= "string" then return nil end
  value = value:match("^%s*(.-)%s*$")
  if value:match("^%d+$") or value:match("^%d+%.%d+$") then return tonumber(value) end
  local t = M.http_date(value)
  if not t then return nil end
  local wait = t - (now or time().now())
  return wait > 0 and wait or 0
end

-- The number a header value starts with (after `pattern`'s capture), or nil:
-- a garbled header from a hostile server is ignored, never an error.
local function leading_number(value, pattern)
  local digits = type(value) == "string" and value:match(pattern)
  return digits and tonumber(digits) or nil
end

local rate_limit_fields = core.rate_limit_fields

-- { limit, remaining, reset [, window] } from ratelimit-* headers, or nil.
-- Read raw from the transports' plain tables; most answers have none.
function M.rate_limit(headers)
  local limit, remaining, reset = rate_limit_fields(headers)
  if not (limit or remaining or reset) then return nil end
  return {
    limit = leading_number(limit, "^%s*(%d+)"),
    window = leading_number(limit, ";%s*w=(%d+)"),
    remaining = leading_number(remaining, "^%s*(%d+)"),
    reset = leading_number(reset, "^%s*(%d+%.?%d*)"),
  }
end

local function is_json(headers)
  local ct = headers["content-type"]
  return ct ~= nil and ct:lower():find("json", 1, true) ~= nil
end

-- The start of a body for a message. The secret is scrubbed before the
-- cut, so a token the server echoed cannot survive half-cut.
local function snippet(body, secret)
  body = errors.redact(body, secret)
  if #body > 200 then return body:sub(1, 200) .. "..." end
  return body
end

-- The error for a non-2xx answer. `keyed`: the request carried an
-- Idempotency-Key, so a retry of 500/502/504 cannot create twice.
local function http_error(status, headers, body, keyed)
  local envelope, message = decode(body), nil
  if type(envelope) == "table" then
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
  -- the server's own word on when to come back, on any status it sends
  -- one with (only 429 falls back to the rate-limit window's reset)
  fields.retry_after = M.retry_after(headers["retry-after"])
  if status == 429 and not fields.retry_after then
    local rl = M.rate_limit(headers)
    fields.retry_after = rl and rl.reset
  end
  return errors.new(status == 429 and "rate_limited" or "http", message, fields)
end

-- M.interpret(status, headers, body, format, sank, keyed [, secret])
--   -> value | nil, err
-- format: the truto_response_format asked for (nil = unified); sank: the
-- body went to a sink; secret: the token, kept out of every message built
-- here (the caller still redacts the whole error).
function M.interpret(status, headers, body, format, sank, keyed, secret)
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
      .. snippet(body, secret), { status = status, body = body, headers = headers, retryable = false })
  end
  return value
end

return M
