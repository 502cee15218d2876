-- truto.retry: the retry policy, shared by every call, page and batch item.
-- Pure functions: whether a failed attempt may be repeated without taking
-- effect twice, how long to wait first, and which waits (for a retry or
-- for the rate budget) a call may not make. truto.call's attempt loop
-- applies them, the same for a single call and a batch item. Never sleeps itself, never
-- reads a clock (callers pass the time left), never looks at the token.
--
-- What is retried (README "Retries and failures" says the same), by the
-- kind of operation (truto.api's `kind`):
--                                  read       write (create, update, custom)   delete
--   429                            yes        yes                              yes
--   500, 502, 504                  yes        only with an Idempotency-Key     yes
--   connect failures (not sent)    yes        yes                              yes
--   timeouts, resets after sending yes        only with an Idempotency-Key     yes
--   400 401 403 404 405 409 422 503, tls, decode, too_large, a sink that
--   already received bytes         never
-- A read changes nothing; deleting one id twice cannot delete anything
-- else (a 404 after an attempt that may have been delivered says so).

local M = {}

-- Whether an attempt that may have reached the server can be repeated
-- without taking effect twice, per kind of operation.
M.REPEATABLE = { read = "always", delete = "always", write = "with_key" }

-- M.repeatable(kind, keyed) -> boolean
function M.repeatable(kind, keyed)
  local rule = M.REPEATABLE[kind]
  return rule == "always" or (rule == "with_key" and keyed) or false
end

-- May this failure be retried? `sent`: the request may have reached the
-- server; `keyed`: repeating it after that cannot take effect twice (a read,
-- a delete, or a write with an Idempotency-Key: the server replays).
function M.may_retry(err, sent, keyed)
  if err.kind == "rate_limited" then return true end
  if err.kind == "http" then return err.retryable == true end
  if err.kind == "too_large" or err.kind == "tls" or err.kind == "decode"
    or err.kind == "invalid_argument" then
    return false
  end
  -- connect, timeout, network: safe when nothing was sent, or with a key
  return (not sent) or keyed
end

-- Seconds to wait before attempt `attempt + 1`: the server's Retry-After
-- (or ratelimit-reset on a 429) when it gave one, else exponential backoff
-- with full jitter between 0 and min(retry_cap, retry_base * 2^(attempt-1)).
function M.wait(err, o, attempt, random)
  if err.retry_after then return err.retry_after end
  local ceiling = math.min(o.retry_cap, o.retry_base * 2 ^ (attempt - 1))
  return (random or math.random)() * ceiling
end

-- M.plan(err, sent, keyed, o, attempt, time_left [, random])
--   -> wait            retry after `wait` seconds
--    | nil, why        stop; why is one of
--        "not_retryable"  repeating could create twice, or cannot help
--        "max_retries"    o.max_retries retries were made already
--        "retry_after"    the server asks for a longer wait than o.retry_cap
--        "deadline"       the wait would end past the caller's deadline
-- `o` holds max_retries, retry_base, retry_cap; `time_left` is the seconds
-- left before the deadline, or nil when there is none.
function M.plan(err, sent, keyed, o, attempt, time_left, random)
  if not M.may_retry(err, sent, keyed) then return nil, "not_retryable" end
  if attempt > o.max_retries then return nil, "max_retries" end
  if err.retry_after and err.retry_after > o.retry_cap then return nil, "retry_after" end
  local wait = M.wait(err, o, attempt, random)
  if time_left and wait >= time_left then return nil, "deadline" end
  return wait
end

-- M.budget(wait, servers, o, time_left) -> nil | why
-- Whether a call may wait `wait` seconds for the rate budget before an
-- attempt: nil, it waits; else it ends now, why being
--   "rate_limited"  the wait is the server's (`servers`: a 429's block, or
--                   ratelimit-reset with nothing left) and longer than
--                   o.retry_cap or past the deadline, as a Retry-After
--                   would be (plan's "retry_after" and "deadline")
--   "deadline"      the budget's own wait would end past the deadline
function M.budget(wait, servers, o, time_left)
  local past_deadline = time_left ~= nil and wait > time_left
  if servers and (wait > o.retry_cap or past_deadline) then return "rate_limited" end
  if past_deadline then return "deadline" end
  return nil
end

-- One word or two naming why an attempt failed, for on_retry and logs:
-- "http 502", "rate_limited 429", "timeout (stall_timeout)", "network".
function M.reason(err)
  if err.status then return err.kind .. " " .. err.status end
  if err.kind == "timeout" and err.timeout then return "timeout (" .. err.timeout .. ")" end
  return err.kind
end

return M
