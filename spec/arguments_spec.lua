-- invalid_argument: every way a caller can get configuration, body, query
-- or options wrong is refused locally, naming the field, before anything
-- is sent (the mock must record no request).
local truto = require "truto"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"

describe("truto.new", function()
  local function refused(config, field, pattern)
    local c, err = truto.new(config)
    assert.is_nil(c)
    assert.equal("invalid_argument", err.kind)
    assert.equal(field, err.field)
    if pattern then assert.matches(pattern, err.message) end
    return err
  end

  it("needs a token", function()
    refused({ token = "" }, "token", "required")
  end)

  it("refuses unknown keys, naming them", function()
    refused({ token = "tok-1234", tokn = "x" }, "tokn", "not a client option")
    refused({ token = "tok-1234", idempotency_key = "x" }, "idempotency_key", "per call")
  end)

  it("refuses values of the wrong type, naming the option", function()
    local cases = {
      { "token", 12 }, { "base_url", true }, { "integrated_account_id", 5 }, { "timeout", "30" },
      { "timeout", -1 }, { "timeout", 0 / 0 }, { "connect_timeout", {} }, { "user_agent", 1 },
      { "ca_file", false }, { "insecure", "yes" }, { "proxy", 1 }, { "max_response_bytes", 1.5 },
      { "max_response_bytes", 0 }, { "max_retries", -1 }, { "sleep", "now" }, { "on_retry", 1 },
      { "transport", "carrier-pigeon" }, { "follow_redirects", 1 },
    }
    for _, case in ipairs(cases) do
      local config = { token = "tok-1234" }
      config[case[1]] = case[2]
      refused(config, case[1])
    end
  end)

  it("accepts fractional timeouts", function()
    assert.is_table(truto.new{ token = "tok-1234", timeout = 0.25, connect_timeout = 1.5 })
  end)

  it("refuses a base_url that is not http(s)", function()
    refused({ token = "tok-1234", base_url = "ftp://example.com" }, "base_url")
    refused({ token = "tok-1234", base_url = "https://api.truto.one/?x=1" }, "base_url")
  end)

  it("refuses a default integrated_account_id that is not a UUID", function()
    refused({ token = "tok-1234", integrated_account_id = "acct-1" }, "integrated_account_id", "UUID")
  end)

  it("refuses CR, LF and NUL in the token and user_agent", function()
    refused({ token = "tok\r\nX-Evil: 1" }, "token", "control")
    refused({ token = "tok-1234", user_agent = "ua\0" }, "user_agent", "control")
  end)

  it("refuses a config that is not a table", function()
    refused("token", "config")
  end)
end)

describe("client.groups.create refuses bad input before sending", function()
  local m, client
  setup(function()
    m = mock.start()
    client = assert(truto.new{ token = m.token, base_url = m.url, integrated_account_id = h.SEED_ACCOUNT })
  end)
  teardown(function()
    if client then client:close() end
    if m then m:stop() end
  end)
  before_each(function() m:reset() end)
  after_each(function() assert.equal(0, m:stats().requests) end)

  local function refused(body, query, options, field, pattern)
    local g, err = client.groups.create(body, query, options)
    assert.is_nil(g)
    assert.equal("invalid_argument", err.kind)
    if field then assert.equal(field, err.field) end
    if pattern then assert.matches(pattern, err.message, 1, true) end
    assert.matches("^truto: invalid_argument: ", tostring(err))
    return err
  end

  it("names an unknown body field", function()
    refused({ nmae = "x" }, nil, nil, "nmae", "unknown body field")
  end)

  it("tells that group_type is a query parameter when it is in the body", function()
    refused({ name = "x", group_type = "team" }, nil, nil, "group_type", "query parameter")
  end)

  it("tells that name is a body field when it is in the query", function()
    refused({}, { name = "x" }, nil, "name", "body field")
  end)

  it("names body fields of the wrong type", function()
    refused({ name = 5 }, nil, nil, "name", "must be a string")
    refused({ description = {} }, nil, nil, "description", "must be a string")
    refused({ remote_data = "x" }, nil, nil, "remote_data", "must be a table")
  end)

  it("refuses a body or query that is not a table", function()
    refused("name", nil, nil, "body")
    refused({}, "q", nil, "query")
    refused({ "a", "b" }, nil, nil, "body", "not an array")
  end)

  it("names an unknown query parameter", function()
    refused({}, { group_typ = "team" }, nil, "group_typ", "unknown query parameter")
  end)

  it("refuses enum values outside their set", function()
    refused({}, { group_type = "squad" }, nil, "group_type", "one of department, group, team")
    refused({}, { truto_response_format = "xml" }, nil, "truto_response_format", "one of unified, raw")
  end)

  it("refuses an integrated_account_id that is not a UUID", function()
    refused({}, { integrated_account_id = "62f44730" }, nil, "integrated_account_id", "UUID")
    refused({}, { integrated_account_id = 7 }, nil, "integrated_account_id")
  end)

  it("needs an integrated_account_id from the call or the client", function()
    local c = assert(truto.new{ token = m.token, base_url = m.url })
    local g, err = c.groups.create({ name = "x" })
    assert.is_nil(g)
    assert.equal("integrated_account_id", err.field)
    assert.matches("required", err.message)
    c:close()
  end)

  it("refuses wrong types for the other query parameters", function()
    refused({}, { truto_ignore_remote_data = "true" }, nil, "truto_ignore_remote_data", "boolean")
    refused({}, { truto_exclude_fields = "id" }, nil, "truto_exclude_fields", "array of strings")
    refused({}, { truto_exclude_fields = { "id", 2 } }, nil, "truto_exclude_fields[2]", "must be a string")
    refused({}, { truto_exclude_fields = { a = "id" } }, nil, "truto_exclude_fields", "array")
    refused({}, { remote_query = "a=b" }, nil, "remote_query", "must be a table")
    refused({}, { remote_query = { 1, 2 } }, nil, "remote_query", "named parameters")
  end)

  it("names the path of a bad value inside remote_data", function()
    refused({ remote_data = { a = { 1, 2, 0 / 0 } } }, nil, nil, "remote_data.a[3]", "NaN")
    refused({ remote_data = { a = { x = 1 / 0 } } }, nil, nil, "remote_data.a.x", "infinite")
    refused({ remote_data = { f = print } }, nil, nil, "remote_data.f", "function")
    refused({ remote_data = { s = { 1, nil, 3 } } }, nil, nil, "remote_data.s", "sparse")
    refused({ remote_data = { mix = { 1, k = 2 } } }, nil, nil, "remote_data.mix", "mixes")
    refused({ remote_data = { ["odd key"] = { [true] = 1 } } }, nil, nil, 'remote_data["odd key"]', "boolean key")
    refused({ remote_data = { u = "\255" } }, nil, nil, "remote_data.u", "UTF-8")
  end)

  it("refuses cycles and nesting deeper than the limit", function()
    local cyc = {}
    cyc.self = cyc
    refused({ remote_data = cyc }, nil, nil, "remote_data.self", "cycle")
    local deep = {}
    local t = deep
    for _ = 1, 100 do t.d = {}; t = t.d end
    local err = refused({ remote_data = deep }, nil, nil, nil, "nested deeper")
    assert.matches("^remote_data%.d%.d", err.field)
  end)

  it("names the path of a bad value inside remote_query", function()
    refused({}, { remote_query = { a = { b = 0 / 0 } } }, nil, "remote_query.a.b", "NaN")
    refused({}, { remote_query = { ["a&b=c"] = 1 } }, nil, 'remote_query["a&b=c"]', "structure")
    refused({}, { remote_query = { ["x[y]"] = 1 } }, nil, 'remote_query["x[y]"]', "structure")
  end)

  it("refuses bad options, naming them", function()
    refused({}, nil, { idempotency_key = 5 }, "idempotency_key")
    refused({}, nil, { idempotency_key = "a\r\nb" }, "idempotency_key", "control")
    refused({}, nil, { timeout = "5" }, "timeout")
    refused({}, nil, { sink = "file" }, "sink")
    refused({}, nil, { headers = { ["X-A"] = "a\nb" } }, "headers.X-A", "control")
    refused({}, nil, { headers = { ["Bad Name"] = "v" } }, "headers", "invalid header name")
    refused({}, nil, { headers = { Authorization = "Bearer other" } }, "headers.Authorization", "cannot be set")
    refused({}, nil, { sleep = function() end }, "sleep", "client")
    refused({}, nil, { colour = "red" }, "colour", "not a call option")
    refused({}, nil, "fast", "options")
  end)
end)
