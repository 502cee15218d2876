-- Creating a group end to end through the curl transport, against the
-- local mock: what goes on the wire, what comes back, and the default
-- client built from the environment.
local truto = require "truto"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"
local cjson = require "cjson"

describe("client.groups.create", function()
  local m, client

  setup(function()
    m = mock.start()
    client = assert(truto.new{ token = m.token, base_url = m.url })
  end)
  teardown(function()
    if client then client:close() end
    if m then m:stop() end
  end)
  before_each(function() m:reset() end)

  it("sends the seed's example with the method, path, query, JSON and headers it documents", function()
    local group, meta = client.groups.create(
      { name = "your_name", description = "your_description", remote_data = {} },
      { integrated_account_id = h.SEED_ACCOUNT })
    assert.is_table(group, tostring(meta))
    local r = m:last()
    assert.equal("POST /unified/user-directory/groups?integrated_account_id=" .. h.SEED_ACCOUNT
      .. " HTTP/1.1", r.request_line)
    assert.same({ name = "your_name", description = "your_description", remote_data = {} },
      cjson.decode(r.body))
    assert.equal('{"description":"your_description","name":"your_name","remote_data":{}}', r.body)
    assert.equal("Bearer " .. m.token, r.headers["authorization"])
    assert.equal("application/json", r.headers["content-type"])
    assert.equal("application/json", r.headers["accept"])
    assert.equal("truto-lua/" .. truto.VERSION, r.headers["user-agent"])
    assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$",
      r.headers["idempotency-key"])
    assert.equal(tostring(#r.body), r.headers["content-length"])
    assert.is_nil(r.headers["expect"])
  end)

  it("runs the README's example: group_type, exclusions and remote_query reach the mock", function()
    local group, meta = client.groups.create(
      { name = "Engineering", description = "Builds things", remote_data = { parent_id = 7 } },
      { integrated_account_id = h.SEED_ACCOUNT, group_type = "team",
        truto_exclude_fields = { "remote_data" }, remote_query = { notify = true } })
    assert.is_table(group, tostring(meta))
    assert.is_string(group.id)
    assert.equal("Engineering", group.name)
    assert.equal("Builds things", group.description)
    assert.equal("team", group.group_type)
    assert.is_string(group.created_at)
    assert.is_nil(group.remote_data)
    assert.equal("group_type=team&integrated_account_id=" .. h.SEED_ACCOUNT
      .. "&remote_query%5Bnotify%5D=true&truto_exclude_fields%5B%5D=remote_data", m:last().query)
    assert.equal('{"description":"Builds things","name":"Engineering","remote_data":{"parent_id":7}}',
      m:last().body)
  end)

  it("returns meta with status, lower-case headers, attempts, key, elapsed and rate limits", function()
    local group, meta = client.groups.create({ name = "Meta" }, { integrated_account_id = h.SEED_ACCOUNT })
    assert.is_table(group, tostring(meta))
    assert.equal(201, meta.status)
    assert.equal(1, meta.attempts)
    assert.is_number(meta.elapsed)
    assert.is_true(meta.elapsed >= 0 and meta.elapsed < 10)
    assert.equal(m:last().headers["idempotency-key"], meta.idempotency_key)
    assert.matches("json", meta.headers["content-type"])
    assert.same({ limit = 110, window = 10, remaining = 109, reset = 10 }, meta.rate_limit)
  end)

  it("sends a fresh idempotency key on every create", function()
    local _, a = client.groups.create({ name = "A" }, { integrated_account_id = h.SEED_ACCOUNT })
    local _, b = client.groups.create({ name = "B" }, { integrated_account_id = h.SEED_ACCOUNT })
    assert.are_not.equal(a.idempotency_key, b.idempotency_key)
    assert.equal(2, m:stats().created)
  end)

  it("sends the caller's idempotency key, and the mock replays instead of creating again", function()
    local o = { idempotency_key = "import-row-17" }
    local g1 = client.groups.create({ name = "Once" }, { integrated_account_id = h.SEED_ACCOUNT }, o)
    local g2, meta = client.groups.create({ name = "Once" }, { integrated_account_id = h.SEED_ACCOUNT }, o)
    assert.equal(g1.id, g2.id)
    assert.equal("import-row-17", meta.idempotency_key)
    assert.equal("import-row-17", m:last().headers["idempotency-key"])
    assert.equal(1, m:stats().created)
  end)

  it("sends no Idempotency-Key at all when the caller passes false", function()
    local group, meta = client.groups.create({ name = "NoKey" }, { integrated_account_id = h.SEED_ACCOUNT },
      { idempotency_key = false })
    assert.is_table(group, tostring(meta))
    assert.is_nil(meta.idempotency_key)
    assert.is_nil(m:last().headers["idempotency-key"])
  end)

  it("appends the client's user_agent after truto-lua/<version>", function()
    local c = assert(truto.new{ token = m.token, base_url = m.url, user_agent = "importer/2.1" })
    c.groups.create({ name = "UA" }, { integrated_account_id = h.SEED_ACCOUNT })
    assert.equal("truto-lua/" .. truto.VERSION .. " importer/2.1", m:last().headers["user-agent"])
    c:close()
  end)

  it("adds extra request headers from options.headers", function()
    client.groups.create({ name = "H" }, { integrated_account_id = h.SEED_ACCOUNT },
      { headers = { ["X-Request-Id"] = "abc-123" } })
    assert.equal("abc-123", m:last().headers["x-request-id"])
  end)

  it("uses the client's integrated_account_id when the call gives none", function()
    local c = assert(truto.new{ token = m.token, base_url = m.url, integrated_account_id = m.accounts.jira })
    local group, meta = c.groups.create({ name = "Jira group" })
    assert.is_table(group, tostring(meta))
    assert.equal("integrated_account_id=" .. m.accounts.jira, m:last().query)
    -- and the call's own account wins over the client's
    c.groups.create({ name = "Coupa group" }, { integrated_account_id = h.SEED_ACCOUNT })
    assert.equal("integrated_account_id=" .. h.SEED_ACCOUNT, m:last().query)
    c:close()
  end)

  it("accepts a base_url with a trailing slash", function()
    local c = assert(truto.new{ token = m.token, base_url = m.url .. "/" })
    c.groups.create({ name = "Slash" }, { integrated_account_id = h.SEED_ACCOUNT })
    assert.matches("^POST /unified/user%-directory/groups%?", m:last().request_line)
    c:close()
  end)

  it("reuses one connection across creates (keep-alive)", function()
    for i = 1, 3 do client.groups.create({ name = "K" .. i }, { integrated_account_id = h.SEED_ACCOUNT }) end
    local rs = m:requests()
    assert.equal(3, #rs)
    for _, r in ipairs(rs) do assert.is_not.equal("close", (r.headers["connection"] or ""):lower()) end
  end)

  it("gives integers back as integers where Lua has them", function()
    local group = client.groups.create({ name = "Ints", remote_data = { n = 42 } },
      { integrated_account_id = h.SEED_ACCOUNT })
    assert.equal(42, group.remote_data.n)
    if h.has_integers then assert.equal("integer", math.type(group.remote_data.n)) end
  end)
end)

describe("truto.groups.create (the default client)", function()
  local m
  setup(function() m = mock.start() end)
  teardown(function() if m then m:stop() end end)

  it("builds its client from TRUTO_API_TOKEN, TRUTO_BASE_URL and TRUTO_INTEGRATED_ACCOUNT_ID", function()
    local out, ok = h.run_lua([[
      local truto = require "truto"
      local g, meta = truto.groups.create({ name = "From env" })
      assert(g, tostring(meta))
      io.write(g.name, " ", meta.status)
    ]], { TRUTO_API_TOKEN = m.token, TRUTO_BASE_URL = m.url, TRUTO_INTEGRATED_ACCOUNT_ID = m.accounts.coupa,
      LUA_PATH = os.getenv("LUA_PATH"), LUA_CPATH = os.getenv("LUA_CPATH") })
    assert.is_true(ok, out)
    assert.equal("From env 201", out)
    assert.equal("integrated_account_id=" .. m.accounts.coupa, m:last().query)
    assert.equal("Bearer " .. m.token, m:last().headers.authorization)
  end)

  it("returns invalid_argument naming token when the environment has none", function()
    local out, ok = h.run_lua([[
      local truto = require "truto"
      local g, err = truto.groups.create({ name = "x" })
      io.write(tostring(g), " ", err.kind, " ", err.field)
    ]], { TRUTO_API_TOKEN = "", LUA_PATH = os.getenv("LUA_PATH"), LUA_CPATH = os.getenv("LUA_CPATH") })
    assert.is_true(ok, out)
    assert.equal("nil invalid_argument token", out)
  end)

  it("defaults base_url to https://api.truto.one", function()
    local out, ok = h.run_lua([[
      local truto = require "truto"
      local c = assert(truto.new{ token = "secret-token-1" })
      io.write(c.base_url, " ", tostring(c))
    ]], { TRUTO_BASE_URL = "", LUA_PATH = os.getenv("LUA_PATH"), LUA_CPATH = os.getenv("LUA_CPATH") })
    assert.is_true(ok, out)
    assert.equal("https://api.truto.one truto.client (https://api.truto.one)", out)
  end)
end)
