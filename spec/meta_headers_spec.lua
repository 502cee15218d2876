-- meta.headers (and err.headers) of a libcurl answer is an ordinary table
-- on every Lua (5.1-5.4, LuaJIT): pairs, next and cjson.encode see every
-- header before anything else is read, with no metatable and no fill
-- step: lower-case names, trimmed values, repeats joined. Also the
-- rate-limit fields read from it, and an error's headers redacted. Against
-- the mock's raw answers.
local truto = require "truto"
local cjson = require "cjson"
local mock = require "spec.support.mock"

local BODY = '{"id":"g1","name":"Plain"}'

-- A raw HTTP/1.1 answer with the given header lines and body.
local function answer(status, lines, body)
  return ("HTTP/1.1 %d X\r\n%s\r\nContent-Length: %d\r\n\r\n%s"):format(status,
    table.concat(lines, "\r\n"), #body, body)
end

local LINES = {
  "Content-Type: application/json", "X-Trace: a", "x-trace:   b  ", "RateLimit-Limit: 10;w=1",
  "RateLimit-Remaining: 9", "RateLimit-Reset: 1", "Set-Cookie: s=1",
}
local ALL = { ["content-type"] = "application/json", ["x-trace"] = "a, b",
  ["ratelimit-limit"] = "10;w=1", ["ratelimit-remaining"] = "9", ["ratelimit-reset"] = "1",
  ["set-cookie"] = "s=1", ["content-length"] = tostring(#BODY) }

-- Every field as next() sees it, nothing read before.
local function fields(h)
  local out = {}
  for k, v in next, h do out[k] = v end
  return out
end

describe("meta.headers", function()
  local m, c

  setup(function() m = mock.start() end)
  teardown(function() if m then m:stop() end end)
  before_each(function()
    m:reset()
    c = assert(truto.new{ token = m.token, base_url = m.url, integrated_account_id = m.accounts.coupa,
      rate_limits = false })
  end)
  after_each(function() c:close() end)

  local function created(lines)
    m:script{ { raw = answer(201, lines or LINES, BODY) } }
    local group, meta = c.groups.create({ name = "Plain" })
    assert.is_table(group, tostring(meta))
    return meta
  end

  it("is a table without a metatable", function()
    assert.is_nil(getmetatable(created().headers))
  end)

  it("shows every field to next before any key is read", function()
    assert.same(ALL, fields(created().headers))
  end)

  it("shows every field to pairs before any key is read", function()
    local seen = {}
    for k, v in pairs(created().headers) do seen[k] = v end
    assert.same(ALL, seen)
  end)

  it("shows every field to cjson.encode", function()
    assert.same(ALL, cjson.decode(cjson.encode(created().headers)))
  end)

  it("reads the rate-limit fields into meta.rate_limit", function()
    local meta = created()
    assert.same({ limit = 10, window = 1, remaining = 9, reset = 1 }, meta.rate_limit)
    assert.equal("a, b", meta.headers["x-trace"])
  end)

  it("is complete for an answer without ratelimit-* headers", function()
    local meta = created { "Content-Type: application/json", "X-Trace: a" }
    assert.is_nil(meta.rate_limit)
    assert.same({ ["content-type"] = "application/json", ["x-trace"] = "a",
      ["content-length"] = tostring(#BODY) }, fields(meta.headers))
  end)

  it("gives a batch item's meta.headers the same fields as a single call's", function()
    m:script{ { raw = answer(201, LINES, BODY) } }
    local results = assert(c.groups.create_many({ { name = "Plain" } }))
    local meta = assert(results[1].meta, tostring(results[1].err))
    assert.same({ limit = 10, window = 1, remaining = 9, reset = 1 }, meta.rate_limit)
    assert.same(ALL, fields(meta.headers))
  end)

  it("returns an error's headers complete and redacted, whatever the Lua (a token echoed in a header)", function()
    local lines = { "Content-Type: application/json", "X-Echo: Bearer " .. m.token }
    m:script{ { raw = answer(400, lines, '{"message":"no"}') } }
    local ok, err = c.groups.create({ name = "Plain" })
    assert.is_nil(ok)
    assert.equal(400, err.status)
    assert.is_nil(getmetatable(err.headers))
    assert.equal("Bearer [REDACTED]", rawget(err.headers, "x-echo"))
  end)
end)
