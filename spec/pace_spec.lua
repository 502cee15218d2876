-- The rate budget (truto.pace): sends within Truto's limits per token and
-- per integrated account, waiting instead of being refused; answers'
-- ratelimit-* headers and 429s adjust it; a batch goes on with the
-- accounts that are not at their limit. Against the mock with its limits
-- switched on (m:configure), and the budget alone with a fake clock.
local truto = require "truto"
local pace = require "truto.pace"
local mock = require "spec.support.mock"

describe("truto.pace", function()
  describe("the budget alone", function()
    local limits = assert(pace.check{ token = { limit = 10, window = 1 }, account = { limit = 3, window = 1 } })

    it("allows `limit` sends per window and account, then says how long to wait", function()
      local b = pace.new(limits)
      for _ = 1, 3 do assert.equal(0, b:reserve("a", 100.0)) end
      local w = b:reserve("a", 100.0)
      assert.is_true(w > 1 and w <= 1.1, tostring(w))
      -- another account is not held back
      assert.equal(0, b:reserve("b", 100.0))
      -- once the window (and its margin) has passed, sends go again
      assert.equal(0, b:reserve("a", 100.0 + w))
    end)

    it("holds the token's limit across accounts", function()
      local b = pace.new(limits)
      for i = 1, 10 do assert.equal(0, b:reserve("acc" .. i, 50.0)) end
      assert.is_true(b:reserve("acc11", 50.0) > 0)
    end)

    it("follows ratelimit-remaining until its reset", function()
      local b = pace.new(limits)
      b:learn("a", 200, { limit = 3, window = 1, remaining = 0, reset = 5 }, nil, 10.0)
      local w = b:reserve("a", 10.0)
      assert.is_true(w >= 4.9 and w <= 5, tostring(w))
      assert.equal(0, b:reserve("a", 15.1))
    end)

    it("keeps the earliest end of a window that whole-second ratelimit-reset values bound", function()
      local b = pace.new(limits)
      -- a window ending at 11.0: answers at 10.08 and 10.59 both say reset 1
      b:learn("a", 200, { limit = 3, window = 1, remaining = 1, reset = 1 }, nil, 10.08)
      b:learn("a", 200, { limit = 3, window = 1, remaining = 0, reset = 1 }, nil, 10.59)
      local w = b:reserve("a", 10.6)
      assert.is_true(w > 0.47 and w < 0.49, tostring(w)) -- until 11.08, not 11.59
      -- an answer of the next window starts over
      b:learn("a", 200, { limit = 3, window = 1, remaining = 2, reset = 1 }, nil, 11.2)
      assert.equal(0, b:reserve("a", 11.2))
    end)

    it("takes a server's ratelimit-limit over the configured one", function()
      local b = pace.new(limits)
      b:learn("a", 200, { limit = 1, window = 2 }, nil, 10.0)
      assert.equal(0, b:reserve("a", 10.0))
      assert.is_true(b:reserve("a", 10.0) > 2)
    end)

    it("blocks only the account a 429 concerns, or the token when its limit is the token's", function()
      local b = pace.new(limits)
      assert.equal("account", b:learn("a", 429, nil, 4, 10.0))
      assert.is_true(b:reserve("a", 10.0) >= 3.9)
      assert.equal(0, b:reserve("b", 10.0))
      assert.equal("token", b:learn("b", 429, { limit = 10, window = 1 }, 2, 10.0))
      assert.is_true(b:reserve("c", 10.0) >= 1.9)
    end)

    it("checks the rate_limits option", function()
      assert.is_false(pace.check(false))
      assert.is_nil((pace.check{ account = { limit = 0, window = 1 } }))
      assert.is_nil((pace.check{ acount = { limit = 1, window = 1 } }))
      assert.is_nil((pace.check(5)))
      local c, err = truto.new{ token = "t0ken-x", rate_limits = { account = { limit = 1.5, window = 1 } } }
      assert.is_nil(c)
      assert.equal("rate_limits", err.field)
    end)
  end)

  describe("bounds and window changes", function()
    it("refuses windows under 1 ms or over a day and limits over 10^6 as invalid_argument", function()
      for _, rule in ipairs {
        { limit = 1, window = 1e-300 }, { limit = 1, window = 0.0009 }, { limit = 1, window = 86401 },
        { limit = 1, window = math.huge }, { limit = 1, window = 0 / 0 }, { limit = 1e6 + 1, window = 1 },
        { limit = math.huge, window = 1 }, { limit = 1, window = -1 },
      } do
        assert.is_nil((pace.check{ token = rule }), rule.limit .. " per " .. rule.window)
        local c, err = truto.new{ token = "t0ken-x", rate_limits = { account = rule } }
        assert.is_nil(c)
        assert.equal("invalid_argument", err.kind)
        assert.equal("rate_limits", err.field)
        assert.matches("0.001 to 86400", err.message, 1, true)
      end
      -- the edges themselves are fine
      assert.truthy(pace.check{ token = { limit = 1e6, window = 86400 }, account = { limit = 1, window = 0.001 } })
    end)

    it("ignores a server's window under 1 ms or limit over 10^6 instead of spinning on it", function()
      local b = pace.new(assert(pace.check{ token = { limit = 10, window = 1 }, account = false }))
      b:learn(nil, 200, { limit = 5, window = 1e-300 }, nil, 1.0)
      b:learn(nil, 200, { limit = 1e9, window = 1 }, nil, 1.0)
      for _ = 1, 10 do assert.equal(0, (b:reserve(nil, 1.0))) end
      assert.is_true(b:reserve(nil, 1.0) > 0)
    end)

    -- Sends every millisecond the budget allows, from 0 to `stop`, with
    -- `change` applied once at `at`; returns the send times. (The clock
    -- starts at 5 s, where bucket numbers of different windows differ.)
    local function sends_with_change(limits, at, change, stop)
      local b = pace.new(assert(pace.check(limits)))
      -- the server said the configured rule first
      b:learn(nil, 200, { limit = limits.token.limit, window = limits.token.window }, nil, 5)
      local times, changed = {}, false
      for step = 0, math.floor(stop * 1000) do
        local now = step / 1000
        if not changed and now >= at then
          b:learn(nil, 200, change, nil, 5 + now)
          changed = true
        end
        while b:reserve(nil, 5 + now) == 0 do times[#times + 1] = now end
      end
      return times
    end

    -- The most sends in any window of `length` seconds.
    local function busiest(times, length)
      local most, first = 0, 1
      for last = 1, #times do
        while times[last] - times[first] >= length - 1e-9 do first = first + 1 end
        most = math.max(most, last - first + 1)
      end
      return most
    end

    it("keeps the sends counted before a shorter window in every window of either length", function()
      local times = sends_with_change({ token = { limit = 10, window = 0.1 }, account = false },
        0.01, { limit = 10, window = 0.05 }, 0.1)
      assert.equal(10, #times) -- the first ten, and none until the old window has passed
      assert.is_true(busiest(times, 0.05) <= 10)
      assert.is_true(busiest(times, 0.1) <= 10)
      times = sends_with_change({ token = { limit = 10, window = 0.1 }, account = false },
        0.01, { limit = 10, window = 0.05 }, 0.3)
      assert.is_true(#times > 20, #times) -- then the new window's pace
      assert.is_true(busiest(times, 0.05) <= 10)
    end)

    it("keeps what was sent under a configured window in a server's different one", function()
      -- no earlier word of the server: the configured rule gives way at once
      local b = pace.new(assert(pace.check{ token = { limit = 10, window = 0.1 }, account = false }))
      for _ = 1, 10 do assert.equal(0, (b:reserve(nil, 5.0))) end
      b:learn(nil, 200, { limit = 10, window = 0.05 }, nil, 5.01)
      assert.is_true(b:reserve(nil, 5.05) > 0) -- the ten still count in the new window
      assert.equal(0, (b:reserve(nil, 5.07)))  -- and leave it with it
    end)

    it("keeps the sends counted before a longer window in it", function()
      local times = sends_with_change({ token = { limit = 10, window = 0.05 }, account = false },
        0.01, { limit = 10, window = 0.2 }, 0.5)
      assert.is_true(busiest(times, 0.2) <= 10, busiest(times, 0.2))
      assert.is_true(busiest(times, 0.05) <= 10)
      assert.is_true(#times >= 20, #times)
    end)
  end)

  describe("against the mock's limits", function()
    local m
    setup(function() m = mock.start() end)
    teardown(function() if m then m:stop() end end)
    before_each(function()
      m:reset()
      m:configure{ limits = "4/1,100/1" }
    end)

    local function statuses()
      local n429, ok = 0, 0
      for _, r in ipairs(m:requests()) do
        if r.status == 429 then n429 = n429 + 1 elseif r.status and r.status < 300 then ok = ok + 1 end
      end
      return ok, n429
    end

    it("single calls wait for the budget instead of being refused, and say how long", function()
      local c = assert(truto.new{ token = m.token, base_url = m.url,
        integrated_account_id = m.accounts.coupa,
        rate_limits = { account = { limit = 4, window = 1 }, token = { limit = 100, window = 1 } } })
      local waited = 0
      for i = 1, 8 do
        local g, meta = c.groups.create{ name = "Paced " .. i }
        assert.is_table(g, tostring(meta))
        waited = waited + meta.rate_wait
      end
      local ok, n429 = statuses()
      assert.equal(8, ok)
      assert.equal(0, n429)
      assert.is_true(waited > 0.5, tostring(waited))
      c:close()
    end)

    it("without a budget (rate_limits = false) the same calls run into 429s", function()
      local c = assert(truto.new{ token = m.token, base_url = m.url,
        integrated_account_id = m.accounts.coupa, rate_limits = false, retry_cap = 5 })
      for i = 1, 8 do assert(c.groups.create{ name = "Unpaced " .. i }) end
      local _, n429 = statuses()
      assert.is_true(n429 > 0)
      c:close()
    end)

    it("a batch over two accounts keeps each within its limit and lets one go while the other waits", function()
      local c = assert(truto.new{ token = m.token, base_url = m.url,
        rate_limits = { account = { limit = 4, window = 1 }, token = { limit = 100, window = 1 } } })
      local items = {}
      for i = 1, 16 do
        local account = i <= 12 and m.accounts.coupa or m.accounts["files.com"]
        items[i] = { body = { name = "B" .. i }, query = { integrated_account_id = account } }
      end
      local done_at = {}
      local started = require("truto.core").now()
      local results = c.groups.create_many(items, nil, { concurrency = 8,
        on_result = function(i) done_at[i] = require("truto.core").now() - started end })
      for i = 1, 16 do assert.is_table(results[i].group, tostring(results[i].err)) end
      local _, n429 = statuses()
      assert.equal(0, n429)
      -- the four files.com items did not wait behind coupa's twelve
      for i = 13, 16 do assert.is_true(done_at[i] < 1, tostring(done_at[i])) end
      -- coupa's twelve needed three windows
      local last = 0
      for i = 1, 12 do last = math.max(last, done_at[i]) end
      assert.is_true(last >= 2, tostring(last))
      local waited = 0
      for i = 1, 12 do waited = waited + results[i].meta.rate_wait end
      assert.is_true(waited > 0)
      c:close()
    end)

    it("a 429 the budget did not foresee pauses only that account", function()
      -- the mock allows less than the client believes: 429s come, and only
      -- the refused account's items are held back by them
      m:configure{ limits = "2/2,100/1" }
      local c = assert(truto.new{ token = m.token, base_url = m.url, retry_cap = 5,
        rate_limits = { account = { limit = 50, window = 1 }, token = { limit = 100, window = 1 } } })
      local items = {}
      for i = 1, 8 do
        local account = i % 2 == 1 and m.accounts.coupa or m.accounts["files.com"]
        items[i] = { body = { name = "C" .. i }, query = { integrated_account_id = account } }
      end
      local results = c.groups.create_many(items, nil, { concurrency = 4 })
      for i = 1, 8 do assert.is_table(results[i].group, tostring(results[i].err)) end
      assert.equal(8, m:stats().created)
      c:close()
    end)
  end)
end)
