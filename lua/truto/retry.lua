-- truto.retry: the retry policy, shared by single creates and create_many.
-- Pure functions: whether a failed attempt may be repeated without risking
-- a second group, and how long to wait first. Never sleeps itself.

local M = {}

-- May this failure be retried? `sent`: the request may have reached the
-- server; `keyed`: it carried an Idempotency-Key (then the server replays
-- instead of creating again).
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

return M
