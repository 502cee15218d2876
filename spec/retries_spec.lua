-- The retry policy and the time limits: which failures are retried (with
-- and without an Idempotency-Key), how long each wait is (Retry-After in
-- every HTTP form, ratelimit-reset, full-jitter backoff within retry_base /
-- retry_cap), max_retries, the on_retry hook and the injectable sleep, and
-- the deadline over the whole call. Pure parts are checked directly; the
-- rest against the mock, counting the attempts it saw.
local truto = require "truto"
local core = require "truto.core"
local retry = require "truto.retry"
local response = require "truto.response"
local mock = require "spec.support.mock"
local socket = require "socket"

describe("the retry policy (truto.retry)", function()
  local o = { max_retries = 3, retry_base = 0.5, retry_cap = 30 }

  local function err(kind, status, extra)
    local e = { kind = kind, status = status }
    for k, v in pairs(extra or {}) do e[k] = v end
    return e
  end

  it("retries 429 with or without a key, sent or not", function()
    for _, keyed in ipairs{ true, false } do
      assert.is_true(retry.may_retry(err("rate_limited", 429), true, keyed))
    end
  end)

  it("retries 500, 502 and 504 only when response.lua marked them (a key was sent)", function()
    for _, status in ipairs{ 500, 502, 504 } do
      local keyed = select(2, response.interpret(status, {}, "", nil, false, true))
      local bare = select(2, response.interpret(status, {}, "", nil, false, false))
      assert.is_true(retry.may_retry(keyed, true, true))
      assert.is_false(retry.may_retry(bare, true, false))
    end
  end)

  it("never retries 400, 401, 403, 404, 405, 409, 422 or 503, key or not", function()
    for _, status in ipairs{ 400, 401, 403, 404, 405, 409, 422, 503 } do
      local _, e = response.interpret(status, { ["retry-after"] = "1" }, "", nil, false, true)
      assert.is_false(e.retryable)
      assert.is_false(retry.may_retry(e, true, true), tostring(status))
      assert.is_nil((retry.plan(e, true, true, o, 1)))
    end
  end)

  it("retries connect, timeout and network failures before sending always, after sending only with a key", function()
    for _, kind in ipairs{ "connect", "timeout", "network" } do
      assert.is_true(retry.may_retry(err(kind), false, false))
      assert.is_true(retry.may_retry(err(kind), true, true))
      assert.is_false(retry.may_retry(err(kind), true, false))
    end
  end)

  it("never retries tls, decode, too_large or invalid_argument", function()
    for _, kind in ipairs{ "tls", "decode", "too_large", "invalid_argument" } do
      assert.is_false(retry.may_retry(err(kind), false, true))
    end
  end)

  it("plans: the server's wait, else full jitter under min(retry_cap, retry_base * 2^(n-1))", function()
    assert.equal(7, retry.plan(err("rate_limited", 429, { retry_after = 7 }), true, true, o, 1))
    local half = function() return 0.5 end
    assert.equal(0.25, retry.plan(err("network"), false, true, o, 1, nil, half))
    assert.equal(0.5, retry.plan(err("network"), false, true, o, 2, nil, half))
    local many = { max_retries = 20, retry_base = 0.5, retry_cap = 30 }
    assert.equal(15, retry.plan(err("network"), false, true, many, 10, nil, half)) -- capped at 30
    assert.equal(0, retry.plan(err("network"), false, true, o, 3, nil, function() return 0 end))
  end)

  it("plans to stop after max_retries, past the deadline, and when Retry-After exceeds retry_cap", function()
    local e = err("rate_limited", 429, { retry_after = 5 })
    assert.same({ nil, "max_retries" }, { retry.plan(e, true, true, o, 4) })
    assert.same({ nil, "deadline" }, { retry.plan(e, true, true, o, 1, 4.9) })
    assert.equal(5, retry.plan(e, true, true, o, 1, 5.1))
    local long = err("rate_limited", 429, { retry_after = 31 })
    assert.same({ nil, "retry_after" }, { retry.plan(long, true, true, o, 1) })
    assert.same({ nil, "not_retryable" }, { retry.plan(err("tls"), false, true, o, 1) })
  end)

  it("lets a call wait for the budget, except the server's long waits and past the deadline", function()
    -- o.retry_cap is 30 here
    assert.is_nil(retry.budget(9, false, o, nil))
    assert.is_nil(retry.budget(40, false, o, nil))          -- its own counting: waited for
    assert.is_nil(retry.budget(29, true, o, 30))
    assert.equal("rate_limited", retry.budget(31, true, o, nil))
    assert.equal("rate_limited", retry.budget(5, true, o, 4))
    assert.equal("deadline", retry.budget(5, false, o, 4))
  end)

  it("names reasons for logs", function()
    assert.equal("http 502", retry.reason(err("http", 502)))
    assert.equal("timeout (stall_timeout)", retry.reason(err("timeout", nil, { timeout = "stall_timeout" })))
    assert.equal("connect", retry.reason(err("connect")))
  end)
end)

describe("Retry-After (truto.response.retry_after)", function()
  local now = 784111777 -- Sun, 06 Nov 1994 08:49:37 GMT

  it("reads delta-seconds", function()
    assert.equal(120, response.retry_after("120", now))
    assert.equal(0, response.retry_after("0", now))
    assert.equal(1.5, response.retry_after(" 1.5 ", now))
  end)

  it("reads the three HTTP date forms, as seconds from now", function()
    assert.equal(10, response.retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now))
    assert.equal(10, response.retry_after("Sunday, 06-Nov-94 08:49:47 GMT", now))
    assert.equal(10, response.retry_after("Sun Nov  6 08:49:47 1994", now))
    assert.equal(86400 + 10, response.retry_after("Mon, 07 Nov 1994 08:49:47 GMT", now))
    assert.equal(0, response.http_date("Thu, 01 Jan 1970 00:00:00 GMT"))
    assert.equal(951782400, response.http_date("Tue, 29 Feb 2000 00:00:00 GMT"))
  end)

  it("gives 0 for a date in the past", function()
    assert.equal(0, response.retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now))
  end)

  it("ignores what is neither", function()
    for _, bad in ipairs{ "-5", "soon", "", "1e3", "Sun, 06 Nov 1994 08:49:47 CET",
      "Sun, 32 Nov 1994 08:49:47 GMT", "Xyz, 06 Nov 1994 08:49:47 GMT", "Sun, 06 Foo 1994 08:49:47 GMT",
      "Sun, 06 Nov 1994 25:49:47 GMT", ("9"):rep(400) .. "x" } do
      assert.is_nil(response.retry_after(bad, now), bad)
    end
    assert.is_nil(response.retry_after(nil, now))
  end)

  it("ignores garbled ratelimit-* headers instead of failing", function()
    local rl = response.rate_limit{ ["ratelimit-limit"] = "lots", ["ratelimit-remaining"] = "",
      ["ratelimit-reset"] = "later" }
    assert.same({}, rl)
    local _, e = response.interpret(429, { ["ratelimit-reset"] = "soon" }, "", nil, false, true)
    assert.is_nil(e.retry_after)
  end)

  it("reads ratelimit-* from a plain table, and through the __index of a host's headers", function()
    assert.same({ limit = 50, window = 10, remaining = 3, reset = 7 }, response.rate_limit{
      ["ratelimit-limit"] = "50;w=10", ["ratelimit-remaining"] = "3", ["ratelimit-reset"] = "7" })
    assert.is_nil(response.rate_limit{ ["content-type"] = "application/json" })
    -- a case-insensitive table, as nginx's and HAProxy's header tables are
    local raw = { ["RateLimit-Remaining"] = "4" }
    local host = setmetatable({}, { __index = function(_, k)
      for name, v in pairs(raw) do if name:lower() == k:lower() then return v end end
    end })
    assert.same({ remaining = 4 }, response.rate_limit(host))
    assert.is_nil(response.rate_limit(setmetatable({}, { __index = function() end })))
  end)
end)

describe("retries against the mock", function()
  local m, sleeps, retries, order

  local function new_client(extra)
    local config = {
      token = m.token, base_url = m.url, integrated_account_id = m.accounts.coupa,
      sleep = function(s) sleeps[#sleeps + 1] = s; order[#order + 1] = "sleep" end,
      on_retry = function(info) retries[#retries + 1] = info; order[#order + 1] = "on_retry" end,
    }
    for k, v in pairs(extra or {}) do config[k] = v end
    return assert(truto.new(config))
  end

  local function fail_steps(n, step)
    local steps = {}
    for i = 1, n do steps[i] = step or { status = 502 } end
    return steps
  end

  setup(function() m = mock.start() end)
  teardown(function() if m then m:stop() end end)
  before_each(function()
    m:reset()
    sleeps, retries, order = {}, {}, {}
  end)

  describe("max_retries", function()
    it("defaults to 3 retries: four attempts in all", function()
      local c = new_client()
      m:script(fail_steps(6))
      local _, err = c.groups.create{ name = "x" }
      assert.equal(4, err.attempts)
      assert.equal(4, #m:requests())
      c:close()
    end)

    it("0 means one attempt and no retry", function()
      local c = new_client{ max_retries = 0 }
      m:script(fail_steps(2))
      local _, err = c.groups.create{ name = "x" }
      assert.equal(1, err.attempts)
      assert.equal(1, #m:requests())
      assert.equal(0, #retries)
      c:close()
    end)

    it("can be set on the client and overridden per call", function()
      local c = new_client{ max_retries = 5 }
      m:script(fail_steps(8))
      local _, err = c.groups.create{ name = "x" }
      assert.equal(6, err.attempts)
      m:reset()
      m:script(fail_steps(8))
      local _, err2 = c.groups.create({ name = "x" }, nil, { max_retries = 1 })
      assert.equal(2, err2.attempts)
      assert.equal(2, #m:requests())
      c:close()
    end)

    it("counts attempts in meta when a retry succeeds", function()
      local c = new_client()
      m:script(fail_steps(2))
      local group, meta = c.groups.create{ name = "x" }
      assert.is_table(group, tostring(meta))
      assert.equal(3, meta.attempts)
      assert.equal(1, m:stats().created)
      c:close()
    end)

    it("reports attempts = 0 when nothing could be sent", function()
      local c = new_client()
      local _, err = c.groups.create{ nmae = "x" }
      assert.equal("invalid_argument", err.kind)
      assert.equal(0, err.attempts)
      assert.equal(0, #m:requests())
      c:close()
    end)
  end)

  describe("backoff", function()
    it("stays within min(retry_cap, retry_base * 2^(n-1)) and is jittered", function()
      local c = new_client{ max_retries = 8, retry_base = 1, retry_cap = 4 }
      m:script(fail_steps(9))
      local _, err = c.groups.create{ name = "x" }
      assert.equal(9, err.attempts)
      assert.equal(8, #sleeps)
      local distinct = {}
      for n, wait in ipairs(sleeps) do
        assert.is_true(wait >= 0 and wait <= math.min(4, 2 ^ (n - 1)), n .. ": " .. wait)
        distinct[wait] = true
      end
      assert.is_true(next(distinct, next(distinct)) ~= nil, "every wait was the same")
      c:close()
    end)

    it("takes retry_base and retry_cap per call", function()
      local c = new_client{ retry_base = 100, retry_cap = 100 }
      m:script(fail_steps(4))
      c.groups.create({ name = "x" }, nil, { retry_base = 0.001, retry_cap = 0.002 })
      assert.equal(3, #sleeps)
      for _, wait in ipairs(sleeps) do assert.is_true(wait <= 0.002) end
      c:close()
    end)

    it("honours Retry-After on a retried 502 too", function()
      local c = new_client()
      m:script{ { status = 502, headers = { ["Retry-After"] = "2" } } }
      local group = c.groups.create{ name = "x" }
      assert.is_table(group)
      assert.same({ 2 }, sleeps)
      c:close()
    end)

    it("does not retry a 503 even when it carries Retry-After", function()
      local c = new_client()
      m:script{ { status = 503, headers = { ["Retry-After"] = "1" } } }
      local _, err = c.groups.create{ name = "x" }
      assert.equal(503, err.status)
      assert.equal(1, err.retry_after)
      assert.equal(1, err.attempts)
      assert.equal(0, #sleeps)
      c:close()
    end)
  end)

  describe("on_retry and sleep", function()
    it("calls on_retry before each sleep with attempt, reason, wait, the error and the key", function()
      local c = new_client()
      m:script{ { status = 429, headers = { ["Retry-After"] = "3" } }, { status = 500 } }
      local group, meta = c.groups.create{ name = "x" }
      assert.is_table(group, tostring(meta))
      assert.equal(3, meta.attempts)
      assert.same({ "on_retry", "sleep", "on_retry", "sleep" }, order)
      assert.equal(1, retries[1].attempt)
      assert.equal("rate_limited 429", retries[1].reason)
      assert.equal(3, retries[1].wait)
      assert.equal("rate_limited", retries[1].err.kind)
      assert.equal(meta.idempotency_key, retries[1].idempotency_key)
      assert.equal(2, retries[2].attempt)
      assert.equal("http 500", retries[2].reason)
      assert.equal(sleeps[2], retries[2].wait)
      for _, r in ipairs(m:requests()) do assert.equal(meta.idempotency_key, r.idempotency_key) end
      c:close()
    end)

    it("really sleeps by default", function()
      local c = assert(truto.new{ token = m.token, base_url = m.url,
        integrated_account_id = m.accounts.coupa })
      m:script{ { status = 429, headers = { ["Retry-After"] = "1" } } }
      local started = core.now()
      local group, meta = c.groups.create{ name = "x" }
      assert.is_table(group, tostring(meta))
      assert.is_true(core.now() - started >= 0.95)
      assert.equal(2, meta.attempts)
      c:close()
    end)

    it("may not be given per call", function()
      local c = new_client()
      for _, name in ipairs{ "sleep", "on_retry" } do
        local _, err = c.groups.create({ name = "x" }, nil, { [name] = function() end })
        assert.equal("invalid_argument", err.kind)
        assert.equal(name, err.field)
        assert.matches("set it on the client", err.message)
      end
      assert.equal(0, #m:requests())
      c:close()
    end)

    it("does not retry a stream whose sink already received bytes", function()
      local c = new_client()
      m:script{ { chunks = 3, chunk_delay = 4 } }
      local got = {}
      local ok, err = c.groups.create({ name = "x" }, { truto_response_format = "stream" },
        { sink = function(chunk) got[#got + 1] = chunk end, stall_timeout = 0.5 })
      assert.is_nil(ok)
      assert.equal("timeout", err.kind)
      assert.equal("stall_timeout", err.timeout)
      assert.is_false(err.retryable)
      assert.equal(1, err.attempts)
      assert.equal(1, #got)
      assert.equal(1, #m:requests())
      c:close()
    end)
  end)

  describe("time limits", function()
    it("ends an attempt at the deadline when it is shorter than timeout", function()
      local c = new_client()
      m:script{ { delay = 3 } }
      local started = core.now()
      local _, err = c.groups.create({ name = "x" }, nil, { deadline = 0.6, idempotency_key = false })
      local took = core.now() - started
      assert.equal("timeout", err.kind)
      assert.equal("deadline", err.timeout)
      assert.matches("deadline = 0.6s", err.message)
      assert.is_true(took >= 0.55 and took < 2, tostring(took))
      assert.equal(1, err.attempts)
      c:close()
    end)

    it("counts the waits between attempts against the deadline", function()
      -- attempts at about 0 s, 2 s and 4 s; a third wait would end at 6 s > 5 s
      -- (exact as long as an attempt takes under half a second)
      local c = new_client{ sleep = core.sleep }
      m:script(fail_steps(6, { status = 502, headers = { ["Retry-After"] = "2" } }))
      local started = core.now()
      local _, err = c.groups.create({ name = "x" }, nil, { deadline = 5 })
      local took = core.now() - started
      assert.equal("timeout", err.kind)
      assert.equal("deadline", err.timeout)
      assert.equal(3, err.attempts)
      assert.equal(3, #m:requests())
      assert.equal("http", err.cause.kind)
      assert.equal(502, err.cause.status)
      assert.matches("before attempt 4", err.message)
      assert.is_true(took >= 3.9 and took < 5, tostring(took))
      c:close()
    end)

    it("names timeout, not connect_timeout, when the per-attempt timeout was the shorter", function()
      local silent = assert(socket.bind("127.0.0.1", 0))
      local _, port = silent:getsockname()
      local c = new_client{ base_url = "https://127.0.0.1:" .. port, max_retries = 0,
        timeout = 0.3, connect_timeout = 5 }
      local _, err = c.groups.create{ name = "x" }
      assert.equal("timeout", err.kind)
      assert.equal("timeout", err.timeout)
      assert.matches("timeout = 0.3s", err.message)
      local _, err2 = c.groups.create({ name = "x" }, nil, { deadline = 0.3 })
      assert.equal("deadline", err2.timeout)
      c:close()
      silent:close()
    end)

    it("accepts absurdly large and tiny limits without misbehaving", function()
      local c = new_client{ timeout = 1e300, connect_timeout = 1e300, max_response_bytes = 2 ^ 80,
        stall_timeout = 1e300, deadline = 1e300 }
      local group, meta = c.groups.create{ name = "x" }
      assert.is_table(group, tostring(meta))
      m:script{ { delay = 1 } }
      local _, err = c.groups.create({ name = "x" }, nil, { timeout = 1e-9, idempotency_key = false })
      assert.equal("timeout", err.kind)
      assert.equal("timeout", err.timeout)
      c:close()
    end)
  end)
end)
