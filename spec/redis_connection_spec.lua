-- core.redis_connect, the C core's Redis connection on hiredis (the rate
-- budget's Redis store talks through it outside nginx): replies, Redis's
-- errors, one idempotent close, the collector, the command timeout. Against
-- a real redis-server on a loopback port of its own; small enough for the
-- valgrind pass (scripts/check), which the rest of pace_redis_spec is not.
local core = require "truto.core"
local socket = require "socket"
local redis_server = require "spec.support.redis_server"

describe("core.redis_connect (hiredis)", function()
  local r
  setup(function() r = redis_server.start() end)
  teardown(function() if r then r:close() end end)
  before_each(function() r:cli("FLUSHALL") end)

  local function clients() return select(2, r:cli("CLIENT", "LIST"):gsub("\n", "\n")) + 1 end

  it("answers, reports Redis's errors without losing the connection, and closes once", function()
    local conn = assert(core.redis_connect("127.0.0.1", r.port, 1))
    assert.matches("^truto%.redis: ", tostring(conn))
    assert.equal("PONG", conn:command("PING"))
    assert.equal("OK", conn:command("SET", "k\0bin", "v\0x"))
    assert.equal("v\0x", conn:command("GET", "k\0bin"))
    assert.is_false(conn:command("GET", "missing"))
    assert.same({ "v\0x", false }, conn:command("MGET", "k\0bin", "missing"))
    assert.equal(2, conn:command("INCRBY", "n", "2"))
    local v, err, kind = conn:command("NO-SUCH-COMMAND")
    assert.is_nil(v)
    assert.equal("reply", kind)
    assert.matches("unknown command", err)
    assert.equal("PONG", conn:command("PING"))
    conn:close()
    conn:close()
    assert.has_error(function() conn:command("PING") end, "the Redis connection is closed")
    assert.is_nil((core.redis_connect("127.0.0.1", 1, 0.2)))
    assert.has_error(function() core.redis_connect("127.0.0.1", 0, 1) end)
    assert.has_error(function() core.redis_connect("127.0.0.1", r.port, 0) end)
  end)

  it("is closed by the collector", function()
    local before = clients()
    for _ = 1, 5 do assert(core.redis_connect("127.0.0.1", r.port, 1)):command("PING") end
    collectgarbage()
    collectgarbage()
    assert.equal(before, clients())
  end)

  it("gives up on a command after the timeout, closing the connection", function()
    local conn = assert(core.redis_connect("127.0.0.1", r.port, 0.05))
    r:pause()
    local started = socket.gettime()
    local v, err, kind = conn:command("PING")
    local took = socket.gettime() - started
    r:resume()
    assert.is_nil(v)
    assert.equal("io", kind, err)
    assert.is_true(took < 0.5, tostring(took))
    assert.has_error(function() conn:command("PING") end, "the Redis connection is closed")
  end)
end)
