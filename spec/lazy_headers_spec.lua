-- The headers of a libcurl answer are filled in when first read (truto.core's
-- lazy headers): what a caller reads — meta.headers, err.headers, pairs
-- over them, the rate-limit fields — is the same as a fully parsed table,
-- and an error's headers are complete (and redacted) before it is
-- returned. Also the one-pass check that replaced four Lua patterns before
-- a JSON decode. Against the mock's raw answers.
local truto = require "truto"
local core = require "truto.core"
local mock = require "spec.support.mock"

local BODY = '{"id":"g1","name":"Lazy"}'

-- A raw HTTP/1.1 answer with the given header lines and body.
local function answer(status, lines, body)
  return ("HTTP/1.1 %d X\r\n%s\r\nContent-Length: %d\r\n\r\n%s"):format(status,
    table.concat(lines, "\r\n"), #body, body)
end

local LINES = {
  "Content-Type: application/json", "X-Trace: a", "x-trace:   b  ", "RateLimit-Limit: 10;w=1",
  "RateLimit-Remaining: 9", "RateLimit-Reset: 1", "Set-Cookie: s=1",
}

-- Every field as pairs() sees it, after core.headers_fill (every Lua).
local function fields(h)
  local out = {}
  core.headers_fill(h)
  for k, v in next, h do out[k] = v end
  return out
end

describe("lazy response headers", function()
  local m, c

  setup(function() m = mock.start() end)
  teardown(function() if m then m:stop() end end)
  before_each(function()
    m:reset()
    c = assert(truto.new{ token = m.token, base_url = m.url, integrated_account_id = m.accounts.coupa,
      rate_limits = false })
  end)
  after_each(function() c:close() end)

  it("gives meta.headers every field of the answer: lower-case names, trimmed values, repeats joined", function()
    m:script{ { raw = answer(201, LINES, BODY) } }
    local group, meta = c.groups.create({ name = "Lazy" })
    assert.equal("g1", group.id)
    assert.equal("a, b", meta.headers["x-trace"])
    assert.same({ ["content-type"] = "application/json", ["x-trace"] = "a, b",
      ["ratelimit-limit"] = "10;w=1", ["ratelimit-remaining"] = "9", ["ratelimit-reset"] = "1",
      ["set-cookie"] = "s=1", ["content-length"] = tostring(#BODY) }, fields(meta.headers))
    assert.same({ limit = 10, window = 1, remaining = 9, reset = 1 }, meta.rate_limit)
  end)

  it("sees every field with pairs before any other key is read (Lua 5.2+: __pairs fills it)", function()
    if _VERSION == "Lua 5.1" then return end -- 5.1 and LuaJIT: no __pairs; documented
    m:script{ { raw = answer(201, LINES, BODY) } }
    local _, meta = c.groups.create({ name = "Lazy" })
    local seen = {}
    for k, v in pairs(meta.headers) do seen[k] = v end
    assert.equal("a, b", seen["x-trace"])
    assert.equal("s=1", seen["set-cookie"])
  end)

  it("answers the rate-limit and content-type fields without filling the rest", function()
    m:script{ { raw = answer(201, LINES, BODY) } }
    local _, meta = c.groups.create({ name = "Lazy" })
    local h = meta.headers
    assert.equal("9", h["ratelimit-remaining"])
    assert.is_nil(h["retry-after"])
    assert.is_nil(rawget(h, "x-trace")) -- not filled yet
    assert.equal("s=1", h["set-cookie"]) -- any other key fills it all
    assert.equal("a, b", rawget(h, "x-trace"))
    assert.is_nil(getmetatable(h))
  end)

  it("reads an answer without ratelimit-* headers without filling the rest", function()
    m:script{ { raw = answer(201, { "Content-Type: application/json", "X-Trace: a" }, BODY) } }
    local _, meta = c.groups.create({ name = "Lazy" })
    assert.is_nil(meta.rate_limit)
    assert.is_nil(rawget(meta.headers, "x-trace")) -- still lazy: nothing parsed the block
    assert.equal("a", meta.headers["x-trace"])
  end)

  it("gives a batch item's meta.headers the same fields as a single call's", function()
    m:script{ { raw = answer(201, LINES, BODY) } }
    local results = assert(c.groups.create_many({ { name = "Lazy" } }))
    local meta = assert(results[1].meta, tostring(results[1].err))
    assert.same({ limit = 10, window = 1, remaining = 9, reset = 1 }, meta.rate_limit)
    assert.equal("a, b", fields(meta.headers)["x-trace"])
  end)

  it("returns an error's headers complete and redacted, whatever the Lua (a token echoed in a header)", function()
    local lines = { "Content-Type: application/json", "X-Echo: Bearer " .. m.token }
    m:script{ { raw = answer(400, lines, '{"message":"no"}') } }
    local ok, err = c.groups.create({ name = "Lazy" })
    assert.is_nil(ok)
    assert.equal(400, err.status)
    -- filled before redaction: the field is there without any metatable
    assert.is_nil(getmetatable(err.headers))
    assert.equal("Bearer [REDACTED]", rawget(err.headers, "x-echo"))
  end)
end)
