-- The hostile-input battery: every body, query, options and client field
-- with every wrong type; 10 MB strings; deep nesting; cycles; NaN and
-- infinities; invalid UTF-8; embedded NULs; keys that try to inject query
-- syntax; integer edge cases; CR/LF/NUL in header names and values. Each
-- refusal is an invalid_argument naming the path, made before anything is
-- sent (the mock records no request), and nothing crashes. What is valid,
-- however odd, reaches the mock exactly.
local truto = require "truto"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"
local cjson = require "cjson"

local MB10 = 10 * 1024 * 1024
local MB5 = 5 * 1024 * 1024

-- math.mininteger and friends exist from Lua 5.3 on
local it_with_integers = h.has_integers and it or pending

-- Values of every Lua type (and JSON null), by name, for "every wrong type".
local VALUES = {
  number = 1, float = 1.5, ["true"] = true, ["false"] = false, table = {}, array = { "a" },
  ["function"] = print, userdata = io.stdout, thread = coroutine.create(function() end), null = truto.null,
  string = "x",
}

-- The VALUES whose names are not in `allowed`.
local function wrong(allowed)
  local out = {}
  for name, v in pairs(VALUES) do
    local ok = false
    for _, a in ipairs(allowed) do ok = ok or a == name end
    if not ok then out[#out + 1] = { name, v } end
  end
  table.sort(out, function(a, b) return a[1] < b[1] end)
  return out
end

-- A table nested `depth` levels deep under key "a" (built without recursion).
local function nested(depth, leaf)
  local top = {}
  local cur = top
  for _ = 1, depth - 1 do cur.a = {} cur = cur.a end
  cur.a = leaf or 1
  return top
end

describe("hostile input", function()
  local m, client

  setup(function()
    m = mock.start()
    client = assert(truto.new{ token = m.token, base_url = m.url, integrated_account_id = m.accounts.coupa,
      max_retries = 0 })
  end)
  teardown(function()
    if client then client:close() end
    if m then m:stop() end
  end)
  before_each(function() m:reset() end)

  -- create must refuse: invalid_argument, `field`, the message containing
  -- `text` (plain), nothing attempted.
  local function refused(body, query, options, field, text)
    if body == nil then body = {} end -- a missing body has its own spec
    local group, err = client.groups.create(body, query, options)
    assert.is_nil(group)
    assert.is_table(err)
    assert.equal("invalid_argument", err.kind, tostring(err))
    if field ~= nil then assert.equal(field, err.field, tostring(err)) end
    if text then assert.is_truthy(err.message:find(text, 1, true), err.message) end
    assert.equal(0, err.attempts)
    assert.is_false(err.retryable)
    local line = tostring(err)
    assert.equal("truto: invalid_argument: " .. err.message:gsub("[\r\n]+", " "), line)
    return err
  end

  local function nothing_sent()
    assert.equal(0, m:stats().requests)
  end

  describe("of the wrong type is refused, naming the field", function()
    after_each(nothing_sent)

    it("for body, query and options themselves", function()
      for _, case in ipairs(wrong{ "table", "array", "null" }) do
        refused(case[2], nil, nil, "body", "must be a table")
        refused({ name = "x" }, case[2], nil, "query", "must be a table")
        refused({ name = "x" }, nil, case[2], "options", "must be a table")
      end
      refused({ "x" }, nil, nil, "body", "not an array")
      refused({ name = "x" }, { "x" }, nil, "query", "not an array")
    end)

    it("for every body field", function()
      for _, f in ipairs{ "name", "description" } do
        for _, case in ipairs(wrong{ "string" }) do refused({ [f] = case[2] }, nil, nil, f, "must be a string") end
      end
      for _, case in ipairs(wrong{ "table", "array" }) do
        refused({ remote_data = case[2] }, nil, nil, "remote_data", "must be a table")
      end
      refused({ nmae = "x" }, nil, nil, "nmae", "unknown body field")
      refused({ group_type = "team" }, nil, nil, "group_type", "is a query parameter")
    end)

    it("for every query parameter", function()
      for _, case in ipairs(wrong{ "string", "null" }) do
        refused(nil, { integrated_account_id = case[2] }, nil, "integrated_account_id", "must be a UUID string")
        refused(nil, { group_type = case[2] }, nil, "group_type", "must be a string")
        refused(nil, { truto_response_format = case[2] }, nil, "truto_response_format", "must be a string")
      end
      for _, case in ipairs(wrong{ "true", "false", "null" }) do
        refused(nil, { truto_ignore_remote_data = case[2] }, nil, "truto_ignore_remote_data", "must be a boolean")
      end
      for _, case in ipairs(wrong{ "table", "array", "null" }) do
        refused(nil, { truto_exclude_fields = case[2] }, nil, "truto_exclude_fields", "must be an array of strings")
        refused(nil, { remote_query = case[2] }, nil, "remote_query", "must be a table")
      end
      refused(nil, { truto_exclude_fields = { "id", 2 } }, nil, "truto_exclude_fields[2]", "must be a string")
      refused(nil, { truto_exclude_fields = { id = true } }, nil, "truto_exclude_fields", "not a table with keys")
      refused(nil, { truto_exclude_fields = { [1] = "a", [3] = "c" } }, nil, "truto_exclude_fields", "sparse")
      refused(nil, { remote_query = { 1, 2 } }, nil, "remote_query", "not an array")
    end)

    it("for values outside a parameter's form", function()
      local uuid = "62f44730-dd91-461e-bd6a-aedd9e0ad79d"
      for _, bad in ipairs{ "", "not-a-uuid", uuid .. " ", " " .. uuid, uuid:sub(1, 35), uuid:gsub("-", "_"),
        uuid .. "\0", ("9"):rep(MB10) } do
        refused(nil, { integrated_account_id = bad }, nil, "integrated_account_id", "must be a UUID")
      end
      for _, bad in ipairs{ "", "TEAM", "team ", "teams", "team\0", ("t"):rep(MB10) } do
        refused(nil, { group_type = bad }, nil, "group_type", "must be one of department, group, team")
      end
      refused(nil, { truto_response_format = "json" }, nil, "truto_response_format", "must be one of")
      refused(nil, { group_typ = "team" }, nil, "group_typ", "unknown query parameter")
      refused(nil, { name = "x" }, nil, "name", "is a body field")
    end)

    it("for every call option", function()
      for _, name in ipairs{ "timeout", "connect_timeout", "stall_timeout", "deadline", "retry_base", "retry_cap" } do
        for _, case in ipairs(wrong{}) do
          if case[1] ~= "number" and case[1] ~= "float" then
            refused({ name = "x" }, nil, { [name] = case[2] }, name, "must be a positive number of seconds")
          end
        end
        for _, bad in ipairs{ 0, -1, 0 / 0, math.huge, -math.huge } do
          refused({ name = "x" }, nil, { [name] = bad }, name, "must be a positive number of seconds")
        end
      end
      for _, name in ipairs{ "max_retries", "max_response_bytes" } do
        for _, case in ipairs(wrong{ "number" }) do
          refused({ name = "x" }, nil, { [name] = case[2] }, name, "whole number")
        end
        for _, bad in ipairs{ -1, 0.5, 0 / 0, math.huge } do
          refused({ name = "x" }, nil, { [name] = bad }, name, "whole number")
        end
      end
      refused({ name = "x" }, nil, { max_response_bytes = 0 }, "max_response_bytes", "positive whole number")
      for _, case in ipairs(wrong{ "true", "false" }) do
        refused({ name = "x" }, nil, { follow_redirects = case[2] }, "follow_redirects", "must be a boolean")
      end
      for _, case in ipairs(wrong{ "function" }) do
        refused({ name = "x" }, nil, { sink = case[2] }, "sink", "must be a function")
      end
      for _, case in ipairs(wrong{ "string", "false" }) do
        refused({ name = "x" }, nil, { idempotency_key = case[2] }, "idempotency_key", "must be a string")
      end
      for _, case in ipairs(wrong{ "table", "array", "function" }) do
        refused({ name = "x" }, nil, { headers = case[2] }, "headers", "must be a table")
      end
      for _, name in ipairs{ "retries", "Timeout", "token", "base_url", "sleep", "on_retry", "user_agent",
        "ca_file", "insecure", "proxy", "transport", "integrated_account_id" } do
        refused({ name = "x" }, nil, { [name] = 1 }, name, "is not a call option")
      end
      refused({ name = "x" }, nil, { [1] = 1 }, "1", "is not a call option")
    end)

    it("for every client option", function()
      local function refused_new(config, field, text)
        if config.token == nil and field ~= "token" then config.token = "tok-12345" end
        local c, err = truto.new(config)
        -- no dump of a client on failure: it would print its token
        assert.is_true(c == nil, "accepted " .. field .. " = " .. tostring(config[field]))
        assert.equal("invalid_argument", err.kind)
        assert.equal(field, err.field)
        if text then assert.is_truthy(err.message:find(text, 1, true), err.message) end
      end
      for _, case in ipairs(wrong{ "table", "array" }) do
        if case[1] ~= "null" then
          local c, err = truto.new(case[2])
          assert.is_nil(c)
          assert.equal("config", err.field)
        end
      end
      for name, spec in pairs(truto.OPTIONS) do
        if spec.client then
          local allowed = ({ string = { "string" }, boolean = { "true", "false" }, ["function"] = { "function" },
            seconds = { "number", "float" }, count = { "number" },
            transport = {}, http_version = {}, headers = { "table", "function" },
            rate_limits = { "false", "table" }, rate_limit_store = {} })[spec.type]
          for _, case in ipairs(wrong(allowed)) do
            local config = { token = "tok-12345" }
            config[name] = case[2]
            refused_new(config, name)
          end
        end
      end
      refused_new({ nope = 1 }, "nope", "is not a client option")
      refused_new({ sink = print }, "sink", "give it per call")
    end)
  end)

  describe("in header names and values is refused before sending", function()
    after_each(nothing_sent)

    it("for CR, LF and NUL in the token and the user agent", function()
      for _, evil in ipairs{ "\r\nX-Evil: 1", "\n", "\r", "\0", "\0\r\n" } do
        local c, err = truto.new{ token = "tok-12345" .. evil, base_url = m.url }
        assert.is_nil(c)
        assert.equal("token", err.field)
        assert.matches("control characters", err.message)
        c, err = truto.new{ token = "tok-12345", base_url = m.url, user_agent = "bot/1" .. evil }
        assert.is_nil(c)
        assert.equal("user_agent", err.field)
      end
    end)

    it("for bad header names", function()
      for _, name in ipairs{ "X A", "X:A", "X\r\nA", "X\nA", "X\0A", "", "X\195\169", "X(A)", "X/A" } do
        refused({ name = "x" }, nil, { headers = { [name] = "v" } }, "headers", "invalid header name")
      end
      for _, key in ipairs{ 1, true, 1.5 } do
        refused({ name = "x" }, nil, { headers = { [key] = "v" } }, "headers", "invalid header name")
      end
    end)

    it("for CR, LF and NUL in header values and the idempotency key", function()
      for _, evil in ipairs{ "v\r\nX-Evil: 1", "v\n", "v\r", "v\0", "\r\n\r\nGET / HTTP/1.1" } do
        refused({ name = "x" }, nil, { headers = { ["X-Trace"] = evil } }, "headers.X-Trace", "control characters")
        refused({ name = "x" }, nil, { idempotency_key = "k" .. evil }, "idempotency_key", "control characters")
      end
      for _, case in ipairs(wrong{ "string", "number", "float" }) do
        refused({ name = "x" }, nil, { headers = { ["X-Trace"] = case[2] } }, "headers.X-Trace", "must be a string")
      end
    end)

    it("for the module's own headers", function()
      for _, name in ipairs{ "Authorization", "authorization", "Content-Type", "Accept", "Idempotency-Key",
        "Content-Length", "Host", "User-Agent", "Transfer-Encoding", "Connection", "Expect" } do
        refused({ name = "x" }, nil, { headers = { [name] = "v" } }, "headers." .. name, "cannot be set here")
      end
    end)

    it("for header lines and keys too long for any server", function()
      refused({ name = "x" }, nil, { headers = { ["X-Big"] = ("v"):rep(MB10) } }, "headers.X-Big", "over 8192 bytes")
      refused({ name = "x" }, nil, { idempotency_key = ("k"):rep(256) }, "idempotency_key", "1 to 255")
      refused({ name = "x" }, nil, { idempotency_key = "" }, "idempotency_key", "1 to 255")
      local c, err = truto.new{ token = ("t"):rep(MB10) }
      assert.is_nil(c)
      assert.equal("token", err.field)
      assert.is_true(#tostring(err) < 200)
    end)
  end)

  describe("that JSON or a query string cannot carry is refused, naming the path", function()
    after_each(nothing_sent)

    it("NaN and infinities", function()
      for _, v in ipairs{ 0 / 0, -(0 / 0), math.huge, -math.huge } do
        local what = v ~= v and "NaN" or "infinite"
        refused({ remote_data = { x = v } }, nil, nil, "remote_data.x", what)
        refused({ remote_data = { list = { 1, v } } }, nil, nil, "remote_data.list[2]", what)
        refused(nil, { remote_query = { deep = { x = v } } }, nil, "remote_query.deep.x", what)
      end
    end)

    it("cycles, however they loop", function()
      local self = {}
      self.me = self
      refused({ remote_data = self }, nil, nil, "remote_data.me", "contains itself")
      local arr = {}
      arr[1] = arr
      refused({ remote_data = { x = arr } }, nil, nil, "remote_data.x[1]", "contains itself")
      local a, b = {}, {}
      a.b, b.a = b, a
      refused({ remote_data = a }, nil, nil, "remote_data.b.a", "contains itself")
      refused(nil, { remote_query = a }, nil, "remote_query.b.a", "contains itself")
    end)

    it("nesting past 64 levels, even 100000 deep, without exhausting any stack", function()
      local err = refused({ remote_data = nested(65) }, nil, nil, nil, "nested deeper than 64 levels")
      assert.matches("^remote_data%.a%.a%.a", err.field)
      for _, depth in ipairs{ 66, 100000 } do
        err = refused({ remote_data = nested(depth) }, nil, nil, nil, "nested deeper than 64 levels")
        assert.is_true(#err.field <= 256)
        err = refused(nil, { remote_query = nested(depth) }, nil, nil, "nested deeper than 64 levels")
        assert.matches("^remote_query%.a", err.field)
      end
      local arrays = {}
      local cur = arrays
      for _ = 1, 1000 do cur[1] = {} cur = cur[1] end
      err = refused({ remote_data = { x = arrays } }, nil, nil, nil, "nested deeper")
      assert.matches("^remote_data%.x%[1%]%[1%]", err.field)
    end)

    it("functions, userdata, threads and keys JSON has no place for", function()
      refused({ remote_data = { f = print } }, nil, nil, "remote_data.f", "function")
      refused({ remote_data = { f = io.stdout } }, nil, nil, "remote_data.f", "userdata")
      refused({ remote_data = { f = coroutine.create(function() end) } }, nil, nil, "remote_data.f", "thread")
      refused({ remote_data = { [true] = 1 } }, nil, nil, "remote_data", "boolean key")
      refused({ remote_data = { [{}] = 1 } }, nil, nil, "remote_data", "table key")
      refused({ remote_data = { [1.5] = 1 } }, nil, nil, "remote_data", "fractional number key")
      refused({ remote_data = { [0] = 1 } }, nil, nil, "remote_data", "non-positive")
      refused({ remote_data = { [-1] = 1 } }, nil, nil, "remote_data", "non-positive")
      refused({ remote_data = { 1, nil, 3 } }, nil, nil, "remote_data", "sparse array")
      refused({ remote_data = { 1, a = 2 } }, nil, nil, "remote_data", "mixes array items and string keys")
      refused({ remote_data = truto.array{ a = 1 } }, nil, nil, "remote_data", "marked truto.array")
      refused(nil, { remote_query = { f = print } }, nil, "remote_query.f", "function")
    end)

    it("invalid UTF-8, wherever it is", function()
      -- decimal escapes: Lua 5.1 reads "\xC0" as the letters "xC0"
      local bad = { "\192\175", "\237\160\128", "\244\144\128\128", "\226\130", "\128", "\255", "ok\248" }
      for _, s in ipairs(bad) do
        refused({ name = s }, nil, nil, "name", "not valid UTF-8")
        refused({ description = "fine " .. s }, nil, nil, "description", "not valid UTF-8")
        refused({ remote_data = { v = s } }, nil, nil, "remote_data.v", "not valid UTF-8")
        local err = refused({ remote_data = { [s] = 1 } }, nil, nil, nil, "not valid UTF-8")
        assert.matches('^remote_data%["[%?ok]+"%]$', err.field)
        refused(nil, { remote_query = { v = s } }, nil, "remote_query.v", "not valid UTF-8")
        refused(nil, { truto_exclude_fields = { "id", s } }, nil, "truto_exclude_fields[2]", "not valid UTF-8")
        -- the message itself stays valid UTF-8: the bad bytes are shown as ?
        assert.is_nil(err.message:find("[\128-\255]"))
      end
    end)

    it("embedded NULs", function()
      refused({ name = "a\0b" }, nil, nil, "name", "NUL byte at offset 1")
      refused({ description = "\0" }, nil, nil, "description", "NUL byte at offset 0")
      refused({ remote_data = { v = "x\0" } }, nil, nil, "remote_data.v", "NUL byte")
      refused({ remote_data = { ["k\0"] = 1 } }, nil, nil, 'remote_data["k?"]', "NUL byte")
      refused(nil, { remote_query = { v = "\0" } }, nil, "remote_query.v", "NUL byte")
      refused(nil, { truto_exclude_fields = { "a\0" } }, nil, "truto_exclude_fields[1]", "NUL byte")
      refused({ ["na\0me"] = "x" }, nil, nil, "na?me", "unknown body field")
    end)

    it("keys that would inject query syntax", function()
      for _, key in ipairs{ "a&b=c", "a=b", "a[b]", "a]", "[", "a#b", "a?b", "a\nb" } do
        local err = refused(nil, { remote_query = { [key] = 1 } }, nil, nil, "which query strings read as structure")
        assert.matches('^remote_query%["', err.field)
        refused(nil, { remote_query = { x = { [key] = 1 } } }, nil, nil, "which query strings read as structure")
      end
      refused(nil, { remote_query = { ["a&b=c"] = 1 } }, nil, 'remote_query["a&b=c"]', "key contains '&'")
      refused(nil, { remote_query = { [""] = 1 } }, nil, 'remote_query[""]', "empty key")
    end)

    it_with_integers("integer keys that arrays cannot hold", function()
      refused({ remote_data = { [math.mininteger] = 1 } }, nil, nil, "remote_data", "non-positive")
      refused({ remote_data = { [math.maxinteger] = 1 } }, nil, nil, "remote_data", "sparse array")
    end)

    if not h.has_integers then
      -- instead, on Lua 5.1/5.2/LuaJIT (doubles only): keys up to 2^53 are
      -- array indexes, larger ones cannot be and are refused as such
      it("number keys that arrays cannot hold (doubles only: past 2^53 no key is an index)", function()
        refused({ remote_data = { [-2 ^ 53] = 1 } }, nil, nil, "remote_data", "non-positive")
        refused({ remote_data = { [2 ^ 53] = 1 } }, nil, nil, "remote_data",
          "sparse array (1 items, largest index 9007199254740992)")
        refused({ remote_data = { [2 ^ 53 + 2] = 1 } }, nil, nil, "remote_data", "non-positive or fractional")
        nothing_sent()
      end)
    end
  end)

  describe("at 10 MB", function()
    it("sends a 10 MB name whole", function()
      local name = ("\195\169"):rep(MB5) -- "é", 2 bytes each
      local group, meta = client.groups.create{ name = name }
      assert.is_table(group, tostring(meta))
      assert.equal(#name, #group.name)
      local r = m:last()
      assert.equal(#'{"name":""}' + MB10, #r.body)
      assert.equal(tostring(#r.body), r.headers["content-length"])
    end)

    it("refuses a 10 MB name with one bad byte at its end, saying where", function()
      refused({ name = ("\195\169"):rep(MB5) .. "\255" }, nil, nil, "name", "bad byte at offset " .. MB10)
      refused({ name = ("a"):rep(MB5) .. "\0" .. ("a"):rep(MB5) }, nil, nil, "name",
        "NUL byte at offset " .. MB5)
      nothing_sent()
    end)

    it("names a 10 MB key by a short cut of it", function()
      local err = refused({ remote_data = { [("k"):rep(MB10)] = 0 / 0 } }, nil, nil, nil, "NaN")
      assert.matches("^remote_data%.k+%.%.%.$", err.field)
      assert.is_true(#err.field < 80)
      err = refused({ [("x"):rep(MB10)] = 1 }, nil, nil, nil, "unknown body field")
      assert.is_true(#tostring(err) < 200)
      nothing_sent()
    end)

    it("refuses a query too long for any URL, naming the parameter", function()
      refused(nil, { remote_query = { q = ("v"):rep(MB10) } }, nil, "remote_query", "over the 16384 bytes")
      refused(nil, { truto_exclude_fields = { ("f"):rep(20000) } }, nil, "truto_exclude_fields", "URL")
      nothing_sent()
    end)
  end)

  describe("that is odd but valid reaches the mock exactly", function()
    it_with_integers("integer edges, exact to the last digit", function()
      local group, meta = client.groups.create({ remote_data = { min = math.mininteger, max = math.maxinteger,
        zero = 0, neg = -1 } }, { remote_query = { min = math.mininteger, max = math.maxinteger } })
      assert.is_table(group, tostring(meta))
      local r = m:last()
      assert.equal('{"remote_data":{"max":9223372036854775807,"min":-9223372036854775808,"neg":-1,"zero":0}}', r.body)
      assert.equal("integrated_account_id=" .. m.accounts.coupa
        .. "&remote_query%5Bmax%5D=9223372036854775807&remote_query%5Bmin%5D=-9223372036854775808", r.query)
    end)

    if not h.has_integers then
      -- instead, on Lua 5.1/5.2/LuaJIT (doubles only): integral values are
      -- exact up to ±2^53 and written as integers; beyond, as the doubles
      -- they are (Lua rounded them already)
      it("integer edges: exact to ±2^53, then doubles (doubles only)", function()
        local group, meta = client.groups.create({ remote_data = { min = -2 ^ 53, max = 2 ^ 53,
          big = 2 ^ 63, zero = 0, neg = -1 } }, { remote_query = { min = -2 ^ 53, max = 2 ^ 53 } })
        assert.is_table(group, tostring(meta))
        local r = m:last()
        assert.equal('{"remote_data":{"big":9.223372036854776e+18,"max":9007199254740992,'
          .. '"min":-9007199254740992,"neg":-1,"zero":0}}', r.body)
        assert.equal("integrated_account_id=" .. m.accounts.coupa
          .. "&remote_query%5Bmax%5D=9007199254740992&remote_query%5Bmin%5D=-9007199254740992", r.query)
      end)
    end

    it("floats that round-trip", function()
      local floats = { tiny = 5e-324, huge = 1.7976931348623157e308, third = 1 / 3, big = 2 ^ 53 + 2,
        negzero = -0.0, tenth = 0.1 }
      local group, meta = client.groups.create{ remote_data = floats }
      assert.is_table(group, tostring(meta))
      local sent = cjson.decode(m:last().body).remote_data
      for k, v in pairs(floats) do assert.equal(v, sent[k], k) end
    end)

    it("values full of query syntax, percent-encoded", function()
      local group, meta = client.groups.create({}, { remote_query = { q = "a&b=c#d?e[f]%20 +" } })
      assert.is_table(group, tostring(meta))
      assert.equal("integrated_account_id=" .. m.accounts.coupa
        .. "&remote_query%5Bq%5D=a%26b%3Dc%23d%3Fe%5Bf%5D%2520%20%2B", m:last().query)
    end)

    it("the same table twice (shared, not a cycle)", function()
      local shared = { 1, 2 }
      local group, meta = client.groups.create{ remote_data = { x = shared, y = shared } }
      assert.is_table(group, tostring(meta))
      assert.equal('{"remote_data":{"x":[1,2],"y":[1,2]}}', m:last().body)
    end)

    it("64 levels of nesting, the deepest allowed", function()
      local group, meta = client.groups.create{ remote_data = nested(64) }
      assert.is_table(group, tostring(meta))
      assert.equal('{"remote_data":' .. ('{"a":'):rep(64) .. "1" .. ("}"):rep(64) .. "}", m:last().body)
    end)

    it("tables with a metatable are refused, naming the path, and no metamethod is called", function()
      local trap = setmetatable({ real = 1 }, {
        __pairs = function() error("__pairs called") end,
        __index = function() error("__index called") end,
        __len = function() error("__len called") end,
      })
      local before = #m:requests()
      local group, err = client.groups.create{ remote_data = { t = trap } }
      assert.is_nil(group)
      assert.equal("invalid_argument", err.kind)
      assert.equal("remote_data.t", err.field)
      assert.matches("metatable", err.message)
      assert.equal(before, #m:requests())
    end)

    it("an __index proxy as the body is refused rather than sent as {}", function()
      local proxy = setmetatable({}, { __index = { name = "Proxied" } })
      local before = #m:requests()
      local group, err = client.groups.create(proxy)
      assert.is_nil(group)
      assert.equal("body", err.field)
      assert.equal(before, #m:requests())
      -- truto.array's marker is the one metatable allowed
      local ok, meta = client.groups.create{ name = "A", remote_data = { list = truto.array{} } }
      assert.is_table(ok, tostring(meta))
      assert.equal('{"name":"A","remote_data":{"list":[]}}', m:last().body)
    end)

    it("remote_data with 10,000 keys, and 2,500 per level nested, encodes on every Lua", function()
      local wide = {}
      for i = 1, 10000 do wide["k" .. i] = i end
      local group, meta = client.groups.create{ name = "Wide", remote_data = wide }
      assert.is_table(group, tostring(meta))
      assert.equal(10000, select(2, m:last().body:gsub('"k%d+":', "")))
      local two_levels = { inner = {} }
      for i = 1, 2500 do two_levels["a" .. i] = i; two_levels.inner["b" .. i] = i end
      group, meta = client.groups.create{ name = "Nested", remote_data = two_levels }
      assert.is_table(group, tostring(meta))
      assert.equal(5000, select(2, m:last().body:gsub('"[ab]%d+":', "")))
    end)

    it("unusual but valid UTF-8 and control characters, escaped", function()
      local s = "\239\187\191bom \244\143\191\191 max \226\128\168 ls \1\31\127 ctl \"q\" \\"
      local group, meta = client.groups.create{ name = s }
      assert.is_table(group, tostring(meta))
      assert.equal(s, cjson.decode(m:last().body).name)
      assert.is_nil(m:last().body:find("[\1-\31]"))
    end)
  end)
end)
