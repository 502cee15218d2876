-- client:batch: any mix of operations at once, through the same call path
-- as single calls (so the same URL check, deadline error, retries per kind
-- of operation), one result per call in order; and the create_many faults
-- the old second attempt loop had: no URL check, a deadline reported as a
-- plain timeout, internal errors when nested.
local truto = require "truto"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"
local core = require "truto.core"

describe("client:batch", function()
  local m, client

  setup(function()
    m = mock.start()
    client = assert(truto.new{ token = m.token, base_url = m.url, integrated_account_id = h.SEED_ACCOUNT,
      sleep = function() end, rate_limits = false })
  end)
  teardown(function()
    if client then client:close() end
    if m then m:stop() end
  end)
  before_each(function() m:reset() end)

  it("runs a mix of operations and gives one result per call, in order", function()
    local a = assert(client.groups.create{ name = "A" })
    local b = assert(client.groups.create{ name = "B" })
    m:forget_requests()
    local results = assert(client:batch({
      { resource = "groups", op = "create", body = { name = "C" } },
      { resource = "groups", op = "update", id = a.id, body = { description = "new" } },
      { resource = "groups", op = "delete", id = b.id },
      { resource = "groups", op = "get", id = a.id },
      { resource = "groups", op = "list", query = { limit = 10 } },
      { resource = "groups", op = "get", id = "nope" },
      { resource = "groups", op = "remove_user", body = { group_id = a.id, user_id = "u1" } },
      { model = "crm", resource = "contacts", op = "create", body = { first_name = "Ada" } },
    }, { concurrency = 3 }))
    assert.equal(8, #results)
    assert.equal("C", results[1].value.name)
    assert.equal("new", results[2].value.description)
    assert.same({ id = b.id }, results[3].value)
    assert.equal(a.id, results[4].value.id)
    assert.is_table(results[5].value.result)
    assert.equal(404, results[6].err.status)
    assert.is_not_nil(results[7].value)
    assert.equal("Ada", results[8].value.first_name)
    assert.equal("groups.update", results[2].meta.operation)
    local methods = {}
    for _, r in ipairs(m:requests()) do methods[r.method] = (methods[r.method] or 0) + 1 end
    assert.same({ POST = 3, PATCH = 1, DELETE = 1, GET = 3 }, methods)
  end)

  it("refuses bad calls alone, naming them, and runs the rest", function()
    local results = assert(client:batch({
      { resource = "groups", op = "create", body = { name = "ok" } },
      { resource = "groups", op = "frobnicate" },
      { resource = "widgets", op = "get", id = "1" },
      { resource = "groups", op = "get", id = "" },
      { resource = "groups", op = "create", body = { name = "x" }, colour = "blue" },
      "not a table",
    }))
    assert.equal("ok", results[1].value.name)
    assert.equal("items[2].op", results[2].err.field)
    assert.equal("items[3].resource", results[3].err.field)
    assert.equal("items[4].id", results[4].err.field)
    assert.equal("items[5].colour", results[5].err.field)
    assert.equal("items[6]", results[6].err.field)
    for i = 2, 6 do assert.is_false(results[i].err.sent) end
    assert.equal(1, #m:requests())
  end)

  it("retries per kind of operation: a read and a delete after a reset, a keyless update never", function()
    local g = assert(client.groups.create{ name = "G" })
    m:forget_requests()
    m:script{ { reset = true }, { reset = true }, { reset = true } }
    local results = assert(client:batch({
      { resource = "groups", op = "get", id = g.id },
      { resource = "groups", op = "update", id = g.id, body = { name = "H" }, idempotency_key = false },
    }, { concurrency = 1 }))
    assert.equal(g.id, results[1].value.id)
    assert.is_true(results[1].meta.attempts >= 2)
    assert.equal("network", results[2].err.kind)
    assert.is_true(results[2].err.sent)
    assert.is_false(results[2].err.retryable)
    assert.equal(1, results[2].err.attempts)
  end)

  it("checks the URL length of each item, as single calls do", function()
    local results = assert(client.groups.create_many({
      { body = { name = "long" }, query = { remote_query = { q = ("x"):rep(20000) } } },
      { name = "short" },
    }))
    assert.equal("invalid_argument", results[1].err.kind)
    assert.equal("items[1].remote_query", results[1].err.field)
    assert.matches("URL", results[1].err.message)
    assert.equal("short", results[2].group.name)
    assert.equal(1, #m:requests())
  end)

  it("reports a deadline as the deadline, as single calls do", function()
    m:script{ { delay = 2 } }
    local results = assert(client.groups.create_many({ { name = "slow" } }, nil, { deadline = 0.3 }))
    assert.equal("timeout", results[1].err.kind)
    assert.equal("deadline", results[1].err.timeout)
  end)

  it("runs a batch started from inside another's callback on the same client", function()
    local inner
    local results = assert(client.groups.create_many({ { name = "outer 1" }, { name = "outer 2" } }, nil, {
      concurrency = 1,
      on_result = function(i)
        if i == 1 then inner = client.groups.create_many({ { name = "inner 1" }, { name = "inner 2" } }) end
      end,
    }))
    assert.equal("outer 2", results[2].group.name)
    assert.equal("inner 2", inner[2].group.name)
    assert.equal(4, m:stats().created)
  end)

  it("raises an error of on_result once no transfer is running, after starting nothing more", function()
    local ok, err = pcall(client.groups.create_many, { { name = "1" }, { name = "2" }, { name = "3" } }, nil, {
      concurrency = 1,
      on_result = function(i) if i == 1 then error("stop here") end end,
    })
    assert.is_false(ok)
    assert.matches("stop here", tostring(err))
    assert.equal(1, m:stats().created)
    -- the client is still usable, its multi handle too
    local results = assert(client.groups.create_many({ { name = "after" } }))
    assert.equal("after", results[1].group.name)
  end)

  -- issue 18 item 11: every slot busy on a slow answer, more items waiting
  for _, with_stop in ipairs{ true, false } do
    it("never busy-waits while every slot waits on a slow answer"
        .. (with_stop and ", and asks should_stop at most about 10 times a second" or ""), function()
      m:script{ { delay = 1 }, { delay = 1 }, { delay = 1 }, { delay = 1 } }
      local asked = 0
      local items = {}
      for i = 1, 4 do items[i] = { name = "slow " .. i } end
      local wall, cpu = core.now(), os.clock()
      local results = assert(client.groups.create_many(items, nil, { concurrency = 2,
        should_stop = with_stop and function() asked = asked + 1 end or nil }))
      wall, cpu = core.now() - wall, os.clock() - cpu
      for i = 1, 4 do assert.is_table(results[i].group, tostring(results[i].err)) end
      assert.is_true(wall >= 1.9, tostring(wall))
      assert.is_true(cpu / wall < 0.05, ("%.1f %% of a core"):format(100 * cpu / wall))
      if with_stop then
        -- ten a second, plus once after each finished transfer
        assert.is_true(asked <= wall * 10 + 4 + 2, asked .. " calls in " .. wall .. " s")
        assert.is_true(asked >= wall * 3, asked .. " calls in " .. wall .. " s")
      end
    end)
  end

  it("lists the resource's own operations and the described resources in its messages", function()
    local api = require "truto.api"
    local results = assert(client:batch({
      { resource = "groups", op = "frobnicate" },
      { resource = "widgets", op = "get", id = "1" },
      { model = "crm", resource = "contacts", op = "remove_user" },
    }))
    local ops, resources = {}, {}
    for name in pairs(api.resources.groups.operations) do ops[#ops + 1] = name end
    for name in pairs(api.resources) do resources[#resources + 1] = name end
    table.sort(ops)
    table.sort(resources)
    assert.matches("must be one of " .. table.concat(ops, ", "), results[1].err.message, 1, true)
    assert.matches("(" .. table.concat(resources, ", ") .. ")", results[2].err.message, 1, true)
    -- an undescribed resource has the standard five, not groups' remove_user
    assert.matches("must be one of create, delete, get, list, update (got remove_user)",
      results[3].err.message, 1, true)
  end)

  it("compiles the plan of an undescribed resource once per batch, not per item", function()
    local compiles, operation = 0, core.operation
    core.operation = function(...) compiles = compiles + 1; return operation(...) end
    local calls = {}
    for i = 1, 100 do
      calls[i] = { model = "crm", resource = "contacts", op = "create", body = { first_name = "C" .. i } }
    end
    local ok, results = pcall(client.batch, client, calls)
    core.operation = operation
    assert.is_true(ok, tostring(results))
    for i = 1, 100 do assert.equal("C" .. i, results[i].value.first_name) end
    assert.equal(1, compiles)
  end)

  it("checks an item's idempotency_key by the call option's rule, naming the item", function()
    local _, single = client.groups.create({ name = "k" }, nil, { idempotency_key = "a\nb" })
    local results = assert(client:batch({
      { resource = "groups", op = "create", body = { name = "k" }, idempotency_key = "a\nb" },
      { resource = "groups", op = "create", body = { name = "k" }, idempotency_key = ("x"):rep(256) },
    }))
    assert.equal("items[1].idempotency_key", results[1].err.field)
    assert.equal("items[1]: " .. single.message, results[1].err.message)
    assert.equal("items[2].idempotency_key", results[2].err.field)
    assert.equal(0, #m:requests())
  end)

  it("has a truto.batch twin on the default client", function()
    assert.is_function(truto.batch)
  end)
end)
