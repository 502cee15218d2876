-- core.signals (a signal flag set by sigaction, read by Lua) and the
-- `should_stop` hook of create_many that lets a caller stop a batch between
-- transfers: start nothing new ("stop"), or also stop waiting for the
-- transfers in flight ("abandon"). Real signals to real processes, the real
-- mock with scripted slow answers; every Lua version.
local truto = require "truto"
local core = require "truto.core"
local errors = require "truto.errors"
local mock = require "spec.support.mock"
local helpers = require "spec.support.helpers"
local socket = require "socket"

local shell_quote = helpers.shell_quote

-- Runs `code` in a fresh interpreter of the suite's Lua with this tree's
-- modules; returns its output and its shell exit code. `by_name`: the
-- interpreter found by its name on PATH rather than the suite's own
-- command (make check's valgrind wrapper would report the memory of a
-- process a signal kills on purpose).
local function run_lua(code, by_name)
  local lua = by_name and helpers.LUA:match("[^/]+$") or helpers.LUA
  local cmd = "LUA_PATH=" .. shell_quote(os.getenv("LUA_PATH") or "") .. " LUA_CPATH="
    .. shell_quote(os.getenv("LUA_CPATH") or "") .. " " .. lua .. " -e " .. shell_quote(code)
    .. " 2>&1; echo \"rc=$?\""
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  p:close()
  return out, tonumber(out:match("rc=(%d+)%s*$"))
end

-- Lua code that defines `pid` (this process) and `send(name)`, which signals
-- it from a child (io.popen: unlike os.execute it does not ignore SIGINT
-- while it waits).
local PRELUDE = [[
local signals = require("truto.core").signals
local f = io.open("/proc/self/stat", "rb")
local pid = f:read("*a"):match("^(%d+)")
f:close()
local function send(name)
  local p = io.popen("kill -s " .. name .. " " .. pid)
  p:read("*a")
  p:close()
end
]]

describe("core.signals", function()
  it("reports nothing until a watched signal arrives, then its name and how many came", function()
    local out, rc = run_lua(PRELUDE .. [[
      signals.watch{ "INT", "TERM", "HUP" }
      print("before", signals.caught())
      send("TERM")
      print("one", signals.caught())
      send("INT"); send("HUP")
      print("three", signals.caught())
      signals.watch{ "HUP" }
      print("rewatched", signals.caught())
      send("HUP")
      print("hup", signals.caught())
    ]])
    assert.equal(0, rc, out)
    assert.matches("before\tnil\n", out)
    assert.matches("one\tTERM\t1\n", out)
    assert.matches("three\tTERM\t3\n", out)
    assert.matches("rewatched\tnil\n", out)
    assert.matches("hup\tHUP\t1\n", out)
  end)

  it("puts the earlier handlers back on restore, so the signal acts as before", function()
    local out, rc = run_lua(PRELUDE .. [[
      signals.watch{ "TERM" }
      send("TERM")
      signals.restore()
      signals.restore()
      print("still", signals.caught())
      io.stdout:flush()
      send("TERM")
      print("not reached")
    ]], true)
    assert.equal(143, rc, out)
    assert.matches("still\tTERM\t1\n", out)
    assert.is_nil(out:find("not reached", 1, true))
  end)

  it("refuses a signal it does not watch for", function()
    local ok, err = pcall(core.signals.watch, { "KILL" })
    assert.is_false(ok)
    assert.matches('signal names are "INT", "TERM" and "HUP"', err)
    assert.has_error(function() core.signals.watch("INT") end)
  end)
end)

describe("create_many's should_stop hook", function()
  local m, client

  setup(function() m = mock.start() end)
  teardown(function() if m then m:stop() end end)
  before_each(function()
    m:reset()
    client = assert(truto.new{ token = m.token, base_url = m.url, integrated_account_id = m.accounts.coupa,
      retry_base = 0.001 })
  end)
  after_each(function() client:close() end)

  local function names(n)
    local items = {}
    for i = 1, n do items[i] = { name = "Group " .. i } end
    return items
  end

  it("knows the error kind cancelled", function()
    assert.is_true(errors.KINDS.cancelled)
  end)

  it("must be a function", function()
    local results, err = client.groups.create_many(names(1), nil, { should_stop = "stop" })
    assert.is_nil(results)
    assert.equal("invalid_argument", err.kind)
    assert.equal("should_stop", err.field)
    assert.equal(0, m:stats().requests)
  end)

  it("starts nothing when it says stop at once: every item is cancelled and not sent", function()
    local seen = {}
    local results = client.groups.create_many(names(5), nil, {
      should_stop = function() return "stop" end,
      on_result = function(i, group, err) seen[#seen + 1] = { i, group, err } end,
    })
    assert.equal(5, #results)
    assert.equal(5, #seen)
    for i = 1, 5 do
      assert.equal("cancelled", results[i].err.kind)
      assert.is_false(results[i].err.sent)
      assert.is_false(results[i].err.retryable)
      assert.matches("^truto: cancelled: not sent", tostring(results[i].err))
    end
    assert.equal(0, m:stats().requests)
  end)

  it("after stop, lets the transfers in flight finish and cancels only what never started", function()
    m:script{ {}, { delay = 1 } }
    local done = 0
    local results = client.groups.create_many(names(8), nil, {
      concurrency = 2,
      on_result = function() done = done + 1 end,
      should_stop = function() return done >= 1 and "stop" or nil end,
    })
    assert.equal(8, #results)
    local created, cancelled = 0, 0
    for i = 1, 8 do
      if results[i].group then
        created = created + 1
      else
        assert.equal("cancelled", results[i].err.kind)
        assert.is_false(results[i].err.sent)
        cancelled = cancelled + 1
      end
    end
    -- the first answered at once; the second, in flight then, ran to its end
    assert.equal(2, created)
    assert.equal(6, cancelled)
    assert.equal(2, m:stats().requests)
    assert.equal(2, m:stats().created)
  end)

  it("after abandon, stops waiting at once: items in flight are cancelled as sent", function()
    m:script{ {}, { delay = 30 }, { delay = 30 } }
    local started = core.now()
    local results = client.groups.create_many(names(6), nil, {
      concurrency = 2,
      should_stop = function() return m:stats().requests >= 3 and "abandon" or nil end,
    })
    assert.is_true(core.now() - started < 15)
    assert.is_table(results[1].group)
    local sent, unsent = 0, 0
    for i = 2, 6 do
      assert.equal("cancelled", results[i].err.kind)
      if results[i].err.sent then sent = sent + 1 else unsent = unsent + 1 end
    end
    assert.equal(2, sent)
    assert.equal(3, unsent)
    -- nothing is left running: the client goes on working
    m:reset()
    local again = client.groups.create_many(names(2))
    assert.is_table(again[1].group)
    assert.is_table(again[2].group)
    assert.equal(2, m:stats().requests)
  end)

  it("stops within a moment during a long Retry-After pause, cancelling the item that waits", function()
    m:script{ { status = 429, headers = { ["Retry-After"] = "20" } } }
    local started = core.now()
    local results = client.groups.create_many(names(1), nil, {
      should_stop = function() return core.now() - started > 0.5 and "stop" or nil end,
    })
    assert.is_true(core.now() - started < 8)
    assert.equal("cancelled", results[1].err.kind)
    -- its first attempt was answered: it reached the server
    assert.is_true(results[1].err.sent)
    assert.equal(1, m:stats().requests)
  end)

  it("hears a signal while a transfer blocks, and stops within a moment", function()
    m:script{ { delay = 30 } }
    core.signals.watch{ "TERM" }
    local f = io.open("/proc/self/stat", "rb")
    local pid = f:read("*a"):match("^(%d+)")
    f:close()
    local killer = io.popen("(sleep 0.5; kill -s TERM " .. pid .. ") >/dev/null 2>&1 &")
    killer:close()
    local started = socket.gettime()
    local results = client.groups.create_many(names(1), nil, {
      should_stop = function() return core.signals.caught() and "abandon" or nil end,
    })
    local took = socket.gettime() - started
    local name = core.signals.caught()
    core.signals.restore()
    assert.equal("TERM", name)
    assert.equal("cancelled", results[1].err.kind)
    assert.is_true(results[1].err.sent)
    assert.is_true(took < 10, tostring(took))
  end)
end)

describe("err.sent", function()
  local m

  setup(function() m = mock.start() end)
  teardown(function() if m then m:stop() end end)
  before_each(function() m:reset() end)

  local function new_client(url)
    return assert(truto.new{ token = m.token, base_url = url or m.url, integrated_account_id = m.accounts.coupa,
      retry_base = 0.001, max_retries = 1 })
  end

  it("is true on an answered error and false when no connection was made, single and batched", function()
    local c = new_client()
    m:script{ { status = 400 }, { status = 400 } }
    local _, err = c.groups.create({ name = "x" })
    assert.equal("http", err.kind)
    assert.is_true(err.sent)
    local results = c.groups.create_many({ { name = "y" } })
    assert.equal("http", results[1].err.kind)
    assert.is_true(results[1].err.sent)
    c:close()

    local probe = assert(socket.bind("127.0.0.1", 0))
    local _, port = probe:getsockname()
    probe:close()
    c = new_client("http://127.0.0.1:" .. port)
    _, err = c.groups.create({ name = "x" })
    assert.equal("connect", err.kind)
    assert.is_false(err.sent)
    results = c.groups.create_many({ { name = "y" } })
    assert.equal("connect", results[1].err.kind)
    assert.is_false(results[1].err.sent)
    c:close()
  end)

  it("is true when the connection broke after the request was sent", function()
    local c = new_client()
    m:script{ { reset = true, create = false }, { reset = true, create = false } }
    local _, err = c.groups.create({ name = "x" }, nil, { max_retries = 0 })
    assert.equal("network", err.kind)
    assert.is_true(err.sent)
    local results = c.groups.create_many({ { name = "y" } }, nil, { max_retries = 0 })
    assert.equal("network", results[1].err.kind)
    assert.is_true(results[1].err.sent)
    c:close()
  end)
end)
