-- Ids and query numbers that are integral floats (1001.0, as lua-cjson
-- decodes every number on Lua 5.4; 1e15) go on the wire as the integer's
-- digits on every Lua; a non-integral one, or one beyond 2^53 (where a
-- float no longer names one integer), is invalid_argument naming the
-- field, and nothing is sent.
local truto = require "truto"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"
local cjson = require "cjson"

describe("integral floats on the wire", function()
  local m, client
  local ACCOUNT = h.SEED_ACCOUNT
  local GROUPS = "/unified/user-directory/groups"

  setup(function()
    m = mock.start()
    client = assert(truto.new{ token = m.token, base_url = m.url, integrated_account_id = ACCOUNT })
  end)
  teardown(function()
    if client then client:close() end
    if m then m:stop() end
  end)
  before_each(function() m:reset() end)

  local function target_of_get(id)
    m:script{ { status = 200, json = { id = "g" } } }
    local g, err = client.groups.get(id)
    assert.is_table(g, tostring(err))
    return m:last().request_line:match("^GET (%S+)")
  end

  local function query_of_list(query)
    m:script{ { status = 200, json = { result = {}, next_cursor = cjson.null } } }
    local page, err = client.groups.list(query)
    assert.is_table(page, tostring(err))
    return m:last().request_line:match("^GET %S-%?(%S*)")
  end

  local function refused(field, fn, ...)
    local value, err = fn(...)
    assert.is_nil(value)
    assert.equal("invalid_argument", err.kind)
    assert.equal(field, err.field)
    assert.is_false(err.sent)
    assert.equal(0, #m:requests())
    return err
  end

  it("sends an id of 1001.0 as /groups/1001", function()
    assert.equal(GROUPS .. "/1001?integrated_account_id=" .. ACCOUNT, target_of_get(1001.0))
  end)

  it("sends an id decoded by lua-cjson as the integer's digits", function()
    local id = cjson.decode('{"id": 1001}').id
    assert.equal(GROUPS .. "/1001?integrated_account_id=" .. ACCOUNT, target_of_get(id))
  end)

  it("sends 1e15 and 2^53 as their digits, and -0.0 as 0", function()
    assert.equal(GROUPS .. "/1000000000000000?integrated_account_id=" .. ACCOUNT, target_of_get(1e15))
    assert.equal(GROUPS .. "/9007199254740992?integrated_account_id=" .. ACCOUNT, target_of_get(2.0 ^ 53))
    assert.equal(GROUPS .. "/0?integrated_account_id=" .. ACCOUNT, target_of_get(-0.0))
  end)

  it("refuses an id that is not integral or is beyond 2^53, naming id", function()
    refused("id", client.groups.get, 1001.5)
    local err = refused("id", client.groups.get, 2.0 ^ 53 * 4)
    assert.matches("integer", err.message)
    refused("id", client.groups.get, -1e300)
    refused("id", client.groups.get, 1 / 0)
  end)

  it("sends limit = 10.0 as limit=10 and limit = 1e15 as its digits", function()
    assert.equal("integrated_account_id=" .. ACCOUNT .. "&limit=10", query_of_list{ limit = 10.0 })
    assert.equal("integrated_account_id=" .. ACCOUNT .. "&limit=1000000000000000",
      query_of_list{ limit = 1e15 })
    local decoded = cjson.decode('{"limit": 25}')
    assert.equal("integrated_account_id=" .. ACCOUNT .. "&limit=25", query_of_list(decoded))
  end)

  it("refuses limit = 10.5 and limit beyond 2^53, naming limit", function()
    local err = refused("limit", client.groups.list, { limit = 10.5 })
    assert.matches("whole number", err.message)
    refused("limit", client.groups.list, { limit = 2.0 ^ 60 })
  end)

  it("sends integral floats inside remote_query as the integer's digits, others as they read", function()
    assert.equal("integrated_account_id=" .. ACCOUNT
      .. "&remote_query%5Bf%5D=0.5&remote_query%5Bids%5D%5B%5D=7&remote_query%5Bn%5D=1001",
      query_of_list{ remote_query = { n = 1001.0, f = 0.5, ids = { 7.0 } } })
  end)
end)
