-- The attempt rules, each run both ways: as a single call and as a batch
-- item (client:batch on the curl multi handle). One attempt loop decides
-- both (truto.call's step and settle), so every rule must end the same way:
-- the same kind, status, attempts, `sent`, retryable, retry_after, the
-- same requests seen by the mock and the same keys on them.
--
-- Time passes on an injected sleep (the client's clock moves on as if it
-- had slept), so a rule about a 10 s budget wait takes no 10 s.
local truto = require "truto"
local mock = require "spec.support.mock"

-- Each rule: the mock's script, the call (op, key), the call's options, the
-- client's options; `before`: a call made first, with these options or
-- none (its outcome is not the rule's); `expect`: the outcome of the rule's call.
-- An answer that spends the budget for the next 10 s (a window of one).
local BUDGET_SPENT = { status = 201, json = { id = "x", name = "x" }, headers = {
  ["ratelimit-limit"] = "1;w=10", ["ratelimit-remaining"] = "0", ["ratelimit-reset"] = "10" } }

local RULES = {
  { "retries a 502 on a keyed create with the same key, and succeeds",
    script = { { status = 502 } },
    expect = { ok = true, attempts = 2, requests = 2, keys = 1 } },
  { "never retries a keyless create once it may have been sent",
    script = { { reset = true } }, key = false,
    expect = { kind = "network", attempts = 1, sent = true, retryable = false, requests = 1 } },
  { "retries a read after a reset",
    op = "get", script = { { reset = true } },
    expect = { ok = true, attempts = 2, requests = 2 } },
  { "never retries a 404",
    op = "get", script = { { status = 404 } },
    expect = { kind = "http", status = 404, attempts = 1, sent = true, retryable = false, requests = 1 } },
  { "stops after max_retries, still retryable",
    script = { { status = 502 }, { status = 502 }, { status = 502 } }, options = { max_retries = 1 },
    expect = { kind = "http", status = 502, attempts = 2, sent = true, retryable = true, requests = 2, keys = 1 } },
  { "retries what was never sent (connection refused), sent stays false",
    client = { base_url = "http://127.0.0.1:1" }, options = { max_retries = 2 },
    expect = { kind = "connect", attempts = 3, sent = false, retryable = true, requests = 0 } },
  { "does not wait for a retry past the deadline: timeout (deadline), sent",
    script = { { status = 502, headers = { ["Retry-After"] = "2" } } }, options = { deadline = 1 },
    expect = { kind = "timeout", timeout = "deadline", attempts = 1, sent = true, retryable = false,
      requests = 1 } },
  -- issue 18 item 7
  { "ends at once when Retry-After is longer than retry_cap: rate_limited with retry_after",
    script = { { status = 429, headers = { ["Retry-After"] = "120" } } }, options = { retry_cap = 5 },
    expect = { kind = "rate_limited", status = 429, retry_after = 120, attempts = 1, sent = true,
      retryable = true, requests = 1, sleeps = 0 } },
  { "ends at once when Retry-After is past the deadline: rate_limited with retry_after",
    script = { { status = 429, headers = { ["Retry-After"] = "5" } } },
    options = { deadline = 3, retry_cap = 10 },
    expect = { kind = "rate_limited", status = 429, retry_after = 5, attempts = 1, sent = true,
      retryable = true, requests = 1, sleeps = 0 } },
  { "after a Retry-After of 999999999, the next call ends at once as rate_limited, nothing sent",
    before = true, script = { { status = 429, headers = { ["Retry-After"] = "999999999" } } },
    expect = { kind = "rate_limited", retry_after = { 999999990, 999999999 }, attempts = 0,
      sent = false, retryable = true, requests = 1, sleeps = 0 } },
  { "after a ratelimit-reset of a day with nothing remaining, the next call ends at once",
    before = true, script = { { json = { id = "x", name = "x" }, status = 201,
      headers = { ["ratelimit-limit"] = "50;w=10", ["ratelimit-remaining"] = "0",
        ["ratelimit-reset"] = "86400" } } },
    expect = { kind = "rate_limited", retry_after = { 86390, 86400 }, attempts = 0, sent = false,
      retryable = true, requests = 1, sleeps = 0 } },
  { "a learned block shorter than retry_cap is waited for, then the call goes",
    before = { max_retries = 0 }, script = { { status = 429, headers = { ["Retry-After"] = "2" } } },
    options = { max_retries = 0 },
    expect = { ok = true, attempts = 1, requests = 2, rate_wait = { 1.9, 2.1 } } },
  -- issue 18 item 12
  { "waiting for the budget past the deadline ends as timeout (deadline), nothing sent",
    before = true, script = { BUDGET_SPENT }, options = { deadline = 1 },
    expect = { kind = "timeout", timeout = "deadline", attempts = 0, sent = false, retryable = false,
      requests = 1, sleeps = 0 } },
  { "waits for the budget within the deadline, then sends",
    before = true, script = { BUDGET_SPENT }, options = { deadline = 20 },
    expect = { ok = true, attempts = 1, requests = 2, rate_wait = { 9, 11 } } },
}

describe("the attempt rules, single call and batch item alike", function()
  local m, group_id

  setup(function() m = mock.start() end)
  teardown(function() if m then m:stop() end end)

  -- A fresh client (its own budget and clock) and what its sleep was asked.
  local function new_client(rule)
    local sleeps = {}
    local config = { token = m.token, base_url = m.url, integrated_account_id = m.accounts.coupa,
      sleep = function(s) sleeps[#sleeps + 1] = s end, retry_base = 0.001 }
    for k, v in pairs(rule.client or {}) do config[k] = v end
    return assert(truto.new(config)), sleeps
  end

  local WAYS = {
    single = function(c, rule, op, options)
      local o = {}
      for k, v in pairs(options) do o[k] = v end
      if rule.key ~= nil then o.idempotency_key = rule.key end
      if op == "get" then return c.groups.get(group_id, nil, o) end
      return c.groups.create({ name = "rule" }, nil, o)
    end,
    batch = function(c, rule, op, options)
      local o = { concurrency = 1 }
      for k, v in pairs(options) do o[k] = v end
      local item = { resource = "groups", op = op, idempotency_key = rule.key }
      if op == "get" then item.id = group_id else item.body = { name = "rule" } end
      local results = assert(c:batch({ item }, o))
      local r = results[1]
      if r.err then return nil, r.err end
      return r.value, r.meta
    end,
  }

  local function outcome(value, meta_or_err, sleeps, requests)
    local keys, n = {}, 0
    for _, r in ipairs(requests) do
      local k = r.headers["idempotency-key"]
      if k and not keys[k] then keys[k], n = true, n + 1 end
    end
    local e = value == nil and meta_or_err or nil
    return {
      ok = value ~= nil, kind = e and e.kind, status = e and e.status, timeout = e and e.timeout,
      attempts = meta_or_err.attempts, sent = e and e.sent, retryable = e and e.retryable,
      retry_after = e and e.retry_after, rate_wait = value ~= nil and meta_or_err.rate_wait or nil,
      requests = #requests, keys = n, sleeps = #sleeps,
    }
  end

  local function check(rule, got, way)
    local label = way .. ": " .. rule[1]
    for k, want in pairs(rule.expect) do
      local have = got[k]
      if type(want) == "table" then
        assert.is_number(have, label .. ": " .. k)
        assert.is_true(have >= want[1] and have <= want[2], label .. ": " .. k .. " = " .. tostring(have))
      else
        assert.equal(want, have, label .. ": " .. k)
      end
    end
    if not rule.expect.ok then assert.is_false(got.ok, label) end
  end

  for _, rule in ipairs(RULES) do
    it(rule[1], function()
      local got = {}
      for _, way in ipairs{ "single", "batch" } do
        m:reset()
        local seed = assert(truto.new{ token = m.token, base_url = m.url,
          integrated_account_id = m.accounts.coupa, rate_limits = false })
        group_id = assert(seed.groups.create{ name = "seed" }).id
        seed:close()
        m:forget_requests()
        local c, sleeps = new_client(rule)
        local op = rule.op or "create"
        if rule.script then m:script(rule.script) end
        if rule.before then
          WAYS[way](c, { key = rule.key }, op, type(rule.before) == "table" and rule.before or {})
          for i = #sleeps, 1, -1 do sleeps[i] = nil end
        end
        local value, meta = WAYS[way](c, rule, op, rule.options or {})
        got[way] = outcome(value, meta, sleeps, m:requests())
        c:close()
        check(rule, got[way], way)
      end
      -- and the two ways agree on everything measured, not only on what
      -- the rule names
      local single, batch = got.single, got.batch
      -- how many sleeps a jittered wait takes is the driver's (a batch may
      -- find the wait over already): compared only where the rule names it
      if rule.expect.sleeps == nil then single.sleeps, batch.sleeps = nil, nil end
      if single.rate_wait then single.rate_wait = math.floor(single.rate_wait + 0.5) end
      if batch.rate_wait then batch.rate_wait = math.floor(batch.rate_wait + 0.5) end
      if single.retry_after then single.retry_after = math.floor(single.retry_after / 100) end
      if batch.retry_after then batch.retry_after = math.floor(batch.retry_after / 100) end
      assert.same(single, batch)
    end)
  end
end)
