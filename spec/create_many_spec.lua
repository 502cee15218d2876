-- client.groups.create_many: many creates at once on one curl multi handle,
-- one result per item in input order, whatever the faults.
local truto = require "truto"
local mock = require "spec.support.mock"

describe("client.groups.create_many", function()
  local m, client, sleeps

  setup(function() m = mock.start() end)
  teardown(function() if m then m:stop() end end)
  before_each(function()
    m:reset()
    sleeps = {}
    client = assert(truto.new{ token = m.token, base_url = m.url, integrated_account_id = m.accounts.coupa,
      sleep = function(s) sleeps[#sleeps + 1] = s end, retry_base = 0.001, retry_cap = 5 })
  end)
  after_each(function() client:close() end)

  local function names(n)
    local items = {}
    for i = 1, n do items[i] = { name = "Group " .. i } end
    return items
  end

  -- every attempt the mock saw, grouped by idempotency key
  local function attempts_by_key()
    local by = {}
    for _, r in ipairs(m:requests()) do
      local k = r.headers["idempotency-key"]
      by[k] = (by[k] or 0) + 1
    end
    return by
  end

  it("creates every item and returns results in input order", function()
    local results = client.groups.create_many(names(40), nil, { concurrency = 16 })
    assert.equal(40, #results)
    for i = 1, 40 do
      assert.is_table(results[i].group, tostring(results[i].err))
      assert.equal("Group " .. i, results[i].group.name)
      assert.equal(201, results[i].meta.status)
      assert.equal(1, results[i].meta.attempts)
    end
    assert.equal(40, m:stats().created)
    -- one distinct key per item
    local keys = {}
    for i = 1, 40 do
      local k = results[i].meta.idempotency_key
      assert.is_nil(keys[k])
      keys[k] = true
    end
  end)

  it("runs 40 transfers at once (more sockets than the multi handle watches at first)", function()
    local results = client.groups.create_many(names(80), nil, { concurrency = 40 })
    for i = 1, 80 do assert.is_table(results[i].group, tostring(results[i].err)) end
    assert.equal(80, m:stats().created)
    assert.equal(80, #m:requests())
  end)

  it("sends each item exactly as a single create would", function()
    client.groups.create_many({ { name = "Same", remote_data = { n = 1 } } }, { group_type = "team" })
    local many = m:last()
    m:reset()
    client.groups.create({ name = "Same", remote_data = { n = 1 } }, { group_type = "team" })
    local one = m:last()
    assert.equal(one.request_line, many.request_line)
    assert.equal(one.body, many.body)
    for _, h in ipairs{ "authorization", "content-type", "accept", "user-agent" } do
      assert.equal(one.headers[h], many.headers[h])
    end
  end)

  it("takes items as { body, query, idempotency_key } and merges the item's query over the batch's", function()
    local results = client.groups.create_many({
      { body = { name = "A" }, query = { group_type = "department" }, idempotency_key = "item-a" },
      { body = { name = "B" } },
    }, { group_type = "team" })
    assert.equal("department", results[1].group.group_type)
    assert.equal("item-a", results[1].meta.idempotency_key)
    assert.equal("team", results[2].group.group_type)
  end)

  it("fails invalid items alone, naming them, and creates the rest", function()
    local items = names(5)
    items[2] = { name = 2 }
    items[4] = { body = { name = "x" }, colour = "red" }
    local results = client.groups.create_many(items)
    assert.equal(5, #results)
    assert.equal("invalid_argument", results[2].err.kind)
    assert.equal("items[2].name", results[2].err.field)
    assert.equal("invalid_argument", results[4].err.kind)
    assert.equal("items[4].colour", results[4].err.field)
    for _, i in ipairs{ 1, 3, 5 } do assert.is_table(results[i].group) end
    assert.equal(3, m:stats().created)
  end)

  it("reports HTTP failures per item without stopping the batch", function()
    local items = {
      { name = "ok 1" },
      { body = { name = "blocked" }, query = { integrated_account_id = m.accounts.coupa_blocked } },
      { name = "ok 2" },
    }
    local results = client.groups.create_many(items, nil, { concurrency = 1 })
    assert.is_table(results[1].group)
    assert.equal(503, results[2].err.status)
    assert.equal(1, results[2].err.attempts)
    assert.is_table(results[3].group)
  end)

  it("calls on_result for every item and on_progress up to the total", function()
    local seen, progress = {}, {}
    client.groups.create_many(names(6), nil, {
      concurrency = 3,
      on_result = function(i, g, err) seen[#seen + 1] = { i, g and g.name, err } end,
      on_progress = function(done, total) progress[#progress + 1] = done .. "/" .. total end,
    })
    assert.equal(6, #seen)
    local got = {}
    for _, s in ipairs(seen) do got[s[1]] = s[2] end
    for i = 1, 6 do assert.equal("Group " .. i, got[i]) end
    assert.same({ "1/6", "2/6", "3/6", "4/6", "5/6", "6/6" }, progress)
  end)

  it("retries a 429 with the same key after Retry-After, and creates once", function()
    m:script{ { status = 429, headers = { ["Retry-After"] = "3" } } }
    local results = client.groups.create_many(names(3), nil, { concurrency = 1 })
    for i = 1, 3 do assert.is_table(results[i].group, tostring(results[i].err)) end
    assert.equal(2, results[1].meta.attempts)
    assert.equal(1, #sleeps)
    assert.is_true(sleeps[1] > 2.9 and sleeps[1] <= 3, tostring(sleeps[1]))
    local rs = m:requests()
    assert.equal(4, #rs)
    assert.equal(rs[1].headers["idempotency-key"], rs[2].headers["idempotency-key"])
    assert.equal(3, m:stats().created)
  end)

  -- an idle transfer is not visited by libcurl's socket interface: the
  -- stall is noticed by the multi handle itself, on time
  it("ends a stalled answer at stall_timeout and retries it while the others finish", function()
    m:script{ { chunks = 3, chunk_delay = 4 } }
    local started = require("truto.core").now()
    local results = client.groups.create_many(names(4), nil, { concurrency = 4, stall_timeout = 0.5 })
    local took = require("truto.core").now() - started
    local retried = 0
    for i = 1, 4 do
      assert.is_table(results[i].group, tostring(results[i].err))
      if results[i].meta.attempts == 2 then retried = retried + 1 end
    end
    assert.equal(1, retried)
    assert.is_true(took < 3, "took " .. took .. " s")
    assert.equal(4, m:stats().created)
  end)

  it("gives a stall that uses up the retries as timeout (stall_timeout), sent", function()
    m:script{ { chunks = 3, chunk_delay = 4 }, { chunks = 3, chunk_delay = 4 } }
    local results = client.groups.create_many(names(1), nil, { stall_timeout = 0.3, max_retries = 1 })
    local err = results[1].err
    assert.is_table(err)
    assert.equal("timeout", err.kind)
    assert.equal("stall_timeout", err.timeout)
    assert.is_true(err.sent)
    assert.equal(2, err.attempts)
  end)

  it("pauses the whole batch on a 429 (shared backoff): nothing new starts during the wait", function()
    -- one request is rate limited at once while the other is still in flight
    m:script{ { status = 429, headers = { ["Retry-After"] = "2" } }, { delay = 0.3 } }
    local seen_at_429, seen_at_sleep
    client.on_retry = function() seen_at_429 = #m:requests() end
    client.sleep = function(s)
      sleeps[#sleeps + 1] = s
      seen_at_sleep = seen_at_sleep or #m:requests()
    end
    local results = client.groups.create_many(names(6), nil, { concurrency = 2 })
    for i = 1, 6 do assert.is_table(results[i].group, tostring(results[i].err)) end
    assert.equal(2, seen_at_429)
    -- the delayed one finished meanwhile, and still nothing new was started
    assert.equal(2, seen_at_sleep)
    assert.is_true(sleeps[1] > 1.5 and sleeps[1] <= 2, tostring(sleeps[1]))
    assert.equal(7, #m:requests())
    assert.equal(6, m:stats().created)
  end)

  it("gives exactly one result per item and no duplicate group under mixed faults", function()
    m:script{
      { reset = true, create = true },          -- created, answer lost
      { status = 502 },
      { close_after = 5, create = true },        -- created, answer cut short
      { status = 500, create = true },
      { status = 504 },
    }
    local items = names(12)
    local results = client.groups.create_many(items, nil, { concurrency = 4 })
    assert.equal(12, #results)
    for i = 1, 12 do
      assert.is_table(results[i].group, tostring(results[i].err))
      assert.equal("Group " .. i, results[i].group.name)
    end
    assert.equal(12, m:stats().created)
    local by = attempts_by_key()
    local keys, extra = 0, 0
    for _, n in pairs(by) do keys = keys + 1; extra = extra + (n - 1) end
    assert.equal(12, keys)
    assert.equal(5, extra)
  end)

  it("does not retry after sending when an item has idempotency_key = false", function()
    m:script{ { status = 502 } }
    local results = client.groups.create_many({ { body = { name = "no key" }, idempotency_key = false } })
    assert.equal("http", results[1].err.kind)
    assert.equal(502, results[1].err.status)
    assert.equal(1, #m:requests())
    assert.is_nil(m:last().headers["idempotency-key"])
  end)

  it("refuses options that only make sense per item", function()
    local r, err = client.groups.create_many(names(2), nil, { idempotency_key = "one-for-all" })
    assert.is_nil(r)
    assert.equal("idempotency_key", err.field)
    local _, err2 = client.groups.create_many(names(2), nil, { concurrency = 0 })
    assert.equal("concurrency", err2.field)
    local _, err3 = client.groups.create_many("items")
    assert.equal("items", err3.field)
    assert.equal(0, m:stats().requests)
  end)

  it("gives each result as value, and as group too for groups (the name it had)", function()
    local results = client.groups.create_many(names(2))
    for i = 1, 2 do
      assert.equal("Group " .. i, results[i].value.name)
      assert.equal(results[i].value, results[i].group)
    end
  end)

  it("gives value alone on another resource", function()
    local contacts = assert(client.unified("crm", "contacts"))
    local results = contacts.create_many({ { first_name = "Ada" } })
    assert.equal("Ada", results[1].value.first_name)
    assert.is_nil(results[1].group)
    assert.equal("contacts.create", results[1].meta.operation)
  end)

  describe("keep_results = false", function()
    -- issue 21 item 4: the peak of the Lua heap over a run of n creates,
    -- sampled after a full collection every 100 results
    local function peak_kb(n, keep)
      local c = assert(truto.new{ token = m.token, base_url = m.url,
        integrated_account_id = m.accounts.coupa, rate_limits = false })
      local peak, seen = 0, 0
      local items = names(n) -- the caller's, before the measure
      collectgarbage("collect")
      local base = collectgarbage("count")
      local out = c.groups.create_many(items, nil, { concurrency = 16, keep_results = keep,
        on_result = function(_, value)
          if value then seen = seen + 1 end
          if seen % 100 == 0 then
            collectgarbage("collect")
            peak = math.max(peak, collectgarbage("count") - base)
          end
        end })
      c:close()
      return peak, out, seen
    end

    it("keeps no results and returns counts, in flat memory", function()
      local small, counts, seen = peak_kb(300, false)
      assert.same({ total = 300, succeeded = 300, failed = 0, cancelled = 0 }, counts)
      assert.equal(300, seen)
      local large, counts2 = peak_kb(3000, false)
      assert.equal(3000, counts2.succeeded)
      -- ten times the items, the same memory (within 64 KB)
      assert.is_true(large - small < 64, ("%.0f KB for 300, %.0f KB for 3000"):format(small, large))
      -- where kept, 3000 results are far more than that
      local kept = peak_kb(3000, true)
      assert.is_true(kept - large > 1000, ("%.0f KB kept, %.0f KB not"):format(kept, large))
    end)

    it("counts failures and cancelled items", function()
      m:script{ { status = 404 } }
      local n = 0
      local counts = client.groups.create_many(names(3), nil, { concurrency = 1, keep_results = false,
        on_result = function() n = n + 1 end,
        should_stop = function() return n >= 2 and "stop" or nil end })
      assert.same({ total = 3, succeeded = 1, failed = 2, cancelled = 1 }, counts)
    end)

    it("needs on_result, and is a boolean", function()
      local r, err = client.groups.create_many(names(1), nil, { keep_results = false })
      assert.is_nil(r)
      assert.equal("keep_results", err.field)
      r, err = client.groups.create_many(names(1), nil, { keep_results = "no", on_result = print })
      assert.is_nil(r)
      assert.equal("keep_results", err.field)
      assert.equal(0, m:stats().requests)
    end)
  end)

  it("returns an empty array for no items", function()
    assert.same({}, client.groups.create_many({}))
  end)

  it("stops every transfer and re-raises when a callback raises", function()
    assert.has_error(function()
      client.groups.create_many(names(4), nil, { on_result = function() error("stop here") end })
    end, "stop here")
    -- the client still works afterwards
    local g = client.groups.create({ name = "after" })
    assert.is_table(g)
  end)
end)
