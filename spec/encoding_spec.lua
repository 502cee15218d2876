-- What the module puts on the wire for every query parameter and every
-- body rule, read back from the mock's record of the request.
local truto = require "truto"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"
local cjson = require "cjson"

describe("the request on the wire", function()
  local m, client
  local acct = h.SEED_ACCOUNT

  setup(function()
    m = mock.start()
    client = assert(truto.new{ token = m.token, base_url = m.url, integrated_account_id = acct })
  end)
  teardown(function()
    if client then client:close() end
    if m then m:stop() end
  end)
  before_each(function() m:reset() end)

  local function query_of(body, query)
    local group, err = client.groups.create(body or { name = "q" }, query)
    assert.is_truthy(group, tostring(err))
    return m:last().query
  end

  local function body_of(body)
    local group, err = client.groups.create(body, nil)
    assert.is_truthy(group, tostring(err))
    return m:last().body
  end

  describe("query parameters", function()
    it("sends integrated_account_id as is", function()
      assert.equal("integrated_account_id=" .. acct, query_of(nil, { integrated_account_id = acct }))
    end)

    it("sends group_type as a query parameter", function()
      assert.equal("group_type=department&integrated_account_id=" .. acct,
        query_of(nil, { group_type = "department" }))
    end)

    it("sends truto_response_format", function()
      assert.equal("integrated_account_id=" .. acct .. "&truto_response_format=normalized",
        query_of(nil, { truto_response_format = "normalized" }))
    end)

    it("sends truto_ignore_remote_data as true and false", function()
      assert.equal("integrated_account_id=" .. acct .. "&truto_ignore_remote_data=true",
        query_of(nil, { truto_ignore_remote_data = true }))
      assert.equal("integrated_account_id=" .. acct .. "&truto_ignore_remote_data=false",
        query_of(nil, { truto_ignore_remote_data = false }))
    end)

    it("sends truto_exclude_fields with empty brackets, in the caller's order", function()
      assert.equal("integrated_account_id=" .. acct
        .. "&truto_exclude_fields%5B%5D=id&truto_exclude_fields%5B%5D=name",
        query_of(nil, { truto_exclude_fields = { "id", "name" } }))
    end)

    it("leaves out an empty truto_exclude_fields", function()
      assert.equal("integrated_account_id=" .. acct, query_of(nil, { truto_exclude_fields = {} }))
    end)

    it("sends remote_query as bracketed keys, nested, sorted", function()
      assert.equal("integrated_account_id=" .. acct
        .. "&remote_query%5Ba%5D%5Bb%5D%5Bc%5D=d&remote_query%5Bfoo%5D=bar&remote_query%5Bn%5D=7",
        query_of(nil, { remote_query = { foo = "bar", n = 7, a = { b = { c = "d" } } } }))
    end)

    it("sends arrays inside remote_query with empty brackets, and arrays of tables indexed", function()
      assert.equal("integrated_account_id=" .. acct
        .. "&remote_query%5Bf%5D%5B0%5D%5Bk%5D=v"
        .. "&remote_query%5Bids%5D%5B%5D=1&remote_query%5Bids%5D%5B%5D=2",
        query_of(nil, { remote_query = { ids = { 1, 2 }, f = { { k = "v" } } } }))
    end)

    it("percent-encodes everything outside the unreserved set, spaces as %20", function()
      assert.equal("integrated_account_id=" .. acct
        .. "&remote_query%5Bq%5D=a%20b%26c%3Dd%2Fe%3Ff%23g%2Bh~i_j.k-l%C3%A9",
        query_of(nil, { remote_query = { q = "a b&c=d/e?f#g+h~i_j.k-lé" } }))
    end)

    it("sends booleans and numbers in remote_query plainly", function()
      assert.equal("integrated_account_id=" .. acct
        .. "&remote_query%5Bf%5D=0.5&remote_query%5Bno%5D=false&remote_query%5Byes%5D=true",
        query_of(nil, { remote_query = { yes = true, no = false, f = 0.5 } }))
    end)

    it("leaves truto.null values and empty tables out of the query", function()
      assert.equal("integrated_account_id=" .. acct .. "&remote_query%5Bkept%5D=1",
        query_of(nil, { remote_query = { gone = truto.null, empty = {}, kept = 1 }, group_type = truto.null }))
    end)

    it("is the same string for the same tables every time (stable order)", function()
      local q = { remote_query = { z = 1, a = 2, m = { y = 1, b = 2 } }, group_type = "team",
        truto_exclude_fields = { "b", "a" } }
      local first = query_of(nil, q)
      for _ = 1, 5 do assert.equal(first, query_of(nil, q)) end
    end)

    it("is read back by the mock exactly as sent (exclusions honoured)", function()
      local group = client.groups.create({ name = "X", description = "D" },
        { truto_exclude_fields = { "description", "created_at" } })
      assert.is_nil(group.description)
      assert.is_nil(group.created_at)
      assert.equal("X", group.name)
    end)
  end)

  describe("the JSON body", function()
    it("keeps integers exact (12345678901234567 stays those digits)", function()
      local body = body_of({ remote_data = { big = 12345678901234567, neg = -42, zero = 0 } })
      if h.has_integers then
        assert.equal('{"remote_data":{"big":12345678901234567,"neg":-42,"zero":0}}', body)
      else
        -- Lua 5.1/5.2/LuaJIT numbers are doubles: the literal 12345678901234567
        -- is already the nearest double, 12345678901234568, before the module
        -- sees it; that double is written exactly, as its shortest digits
        assert.equal('{"remote_data":{"big":12345678901234568,"neg":-42,"zero":0}}', body)
      end
    end)

    it("writes floats so they read back exactly", function()
      local body = body_of({ remote_data = { a = 0.1, b = 1 / 3, c = 1e300, d = -2.5e-8 } })
      local d = cjson.decode(body).remote_data
      assert.equal(0.1, d.a)
      assert.equal(1 / 3, d.b)
      assert.equal(1e300, d.c)
      assert.equal(-2.5e-8, d.d)
      assert.matches('"b":0%.3333333333333333[0-9]*[,}]', body)
    end)

    it("encodes an empty table as {} and truto.array{} as []", function()
      assert.equal('{"remote_data":{"arr":[],"obj":{}}}',
        body_of({ remote_data = { obj = {}, arr = truto.array{} } }))
    end)

    it("encodes sequences as arrays, also when marked with truto.array", function()
      assert.equal('{"remote_data":{"a":[1,"two",true],"b":["x"]}}',
        body_of({ remote_data = { a = { 1, "two", true }, b = truto.array{ "x" } } }))
    end)

    it("encodes truto.null as null", function()
      assert.equal('{"remote_data":{"x":null}}', body_of({ remote_data = { x = truto.null } }))
    end)

    it("sorts object keys, at every depth", function()
      assert.equal('{"description":"d","name":"n","remote_data":{"a":{"a":1,"b":2},"b":1}}',
        body_of({ remote_data = { b = 1, a = { b = 2, a = 1 } }, name = "n", description = "d" }))
    end)

    it("escapes quotes, backslashes and control characters, and passes UTF-8 through", function()
      assert.equal('{"name":"q\\"b\\\\n\\nt\\tc\\u0001d\\u007fé✓😀"}',
        body_of({ name = 'q"b\\n\nt\tc\1d\127é✓😀' }))
    end)

    it("refuses a missing or non-table body, naming body, and sends nothing", function()
      local before = #m:requests()
      for _, body in ipairs{ false, "name=x", 42 } do
        local group, err = client.groups.create(body)
        assert.is_nil(group)
        assert.equal("body", err.field)
      end
      local group, err = client.groups.create(nil, {})
      assert.is_nil(group)
      assert.equal("invalid_argument", err.kind)
      assert.equal("body", err.field)
      assert.matches("required", err.message)
      assert.equal(before, #m:requests())
    end)

    it("sends {} for an empty body", function()
      local group = client.groups.create({}, nil)
      assert.is_table(group)
      assert.equal("{}", m:last().body)
    end)

    it("passes nested remote_data untouched, as data", function()
      local rd = { parent = { id = 7, tags = { "a", "b" }, meta = { ok = true, none = truto.null } } }
      local body = body_of({ name = "Nested", remote_data = rd })
      local got = cjson.decode(body).remote_data
      assert.equal(7, got.parent.id)
      assert.same({ "a", "b" }, got.parent.tags)
      assert.equal(true, got.parent.meta.ok)
      assert.equal(cjson.null, got.parent.meta.none)
    end)
  end)
end)
