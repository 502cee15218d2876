-- Every operation of the groups resource and of client.unified on the
-- wire (method, path, id escaping, query, body or none, headers) and what
-- comes back: pages, each, unwrapping, retries per kind of operation.
-- Answers the mock does not make by itself are scripted (m:script).
local truto = require "truto"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"
local cjson = require "cjson"

local ACCOUNT = h.SEED_ACCOUNT
local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

describe("operations", function()
  local m, client, sleeps

  setup(function()
    m = mock.start()
    client = assert(truto.new{ token = m.token, base_url = m.url, integrated_account_id = ACCOUNT })
    client.sleep = function(s) sleeps[#sleeps + 1] = s end
  end)
  teardown(function()
    if client then client:close() end
    if m then m:stop() end
  end)
  before_each(function()
    m:reset()
    sleeps = {}
  end)

  local function page(items, next_cursor)
    return { status = 200, json = { result = items, next_cursor = next_cursor or cjson.null,
      prev_cursor = cjson.null, result_count = #items, is_partial_response = false } }
  end

  local function common_headers(r)
    assert.equal("Bearer " .. m.token, r.headers["authorization"])
    assert.equal("application/json", r.headers["accept"])
    assert.equal("truto-lua/" .. truto.VERSION, r.headers["user-agent"])
  end

  local function no_body(r)
    assert.equal("", r.body or "")
    assert.is_nil(r.headers["content-type"])
    assert.is_nil(r.headers["content-length"])
    assert.is_nil(r.headers["transfer-encoding"])
    assert.is_nil(r.headers["idempotency-key"])
  end

  describe("on the wire", function()
    it("list sends GET with the paging query, no body and no Content-Type", function()
      m:script{ page({ { id = "1", name = "a" } }) }
      local p, meta = client.groups.list{ limit = 2, next_cursor = "c/1+x", truto_ignore_limit = false,
        sort_by = "name", created_at = { gte = "2024-01-01T00:00:00Z" } }
      assert.is_table(p, tostring(meta))
      local r = m:last()
      assert.equal("GET /unified/user-directory/groups?created_at%5Bgte%5D=2024-01-01T00%3A00%3A00Z"
        .. "&integrated_account_id=" .. ACCOUNT .. "&limit=2&next_cursor=c%2F1%2Bx&sort_by=name"
        .. "&truto_ignore_limit=false HTTP/1.1", r.request_line)
      common_headers(r)
      no_body(r)
    end)

    it("get escapes the id as one path segment", function()
      local ids = {
        { "a/b?c#d%e f", "a%2Fb%3Fc%23d%25e%20f" },
        { "grüße", "gr%C3%BC%C3%9Fe" },
        { 42, "42" },
        { "...", "..." },
      }
      for _, case in ipairs(ids) do
        m:script{ { status = 200, json = { id = tostring(case[1]) } } }
        local g, meta = client.groups.get(case[1])
        assert.is_table(g, tostring(meta))
        local r = m:last()
        assert.equal("GET /unified/user-directory/groups/" .. case[2] .. "?integrated_account_id="
          .. ACCOUNT .. " HTTP/1.1", r.request_line)
        no_body(r)
      end
    end)

    it("refuses ids that are not a non-empty string or an integer, naming id, sending nothing", function()
      for _, id in ipairs{ "", ".", "..", 1.5, true, {}, 0 / 0 } do
        local g, err = client.groups.get(id)
        assert.is_nil(g)
        assert.equal("invalid_argument", err.kind)
        assert.equal("id", err.field)
        assert.is_false(err.sent)
      end
      local g, err = client.groups.get(nil)
      assert.is_nil(g)
      assert.equal("id", err.field)
      assert.equal(0, #m:requests())
    end)

    it("update sends PATCH with the JSON body and an Idempotency-Key", function()
      m:script{ { status = 200, json = { id = "g1", name = "New" } } }
      local g, meta = client.groups.update("g1", { name = "New", description = "D" }, { group_type = "team" })
      assert.is_table(g, tostring(meta))
      assert.equal("New", g.name)
      local r = m:last()
      assert.equal("PATCH /unified/user-directory/groups/g1?group_type=team&integrated_account_id="
        .. ACCOUNT .. " HTTP/1.1", r.request_line)
      assert.equal('{"description":"D","name":"New"}', r.body)
      assert.equal("application/json", r.headers["content-type"])
      assert.matches(UUID, r.headers["idempotency-key"])
      assert.equal(meta.idempotency_key, r.headers["idempotency-key"])
      common_headers(r)
    end)

    it("update validates its body like create", function()
      local g, err = client.groups.update("g1", { group_type = "team" })
      assert.is_nil(g)
      assert.equal("group_type", err.field)
      assert.matches("query parameter", err.message)
      g, err = client.groups.update("g1", nil)
      assert.is_nil(g)
      assert.equal("body", err.field)
      assert.equal(0, #m:requests())
    end)

    it("delete sends DELETE without a body and answers { id }", function()
      m:script{ { status = 200, json = { id = "g 1" } } }
      local v, meta = client.groups.delete("g 1", { group_type = "team" })
      assert.same({ id = "g 1" }, v, tostring(meta))
      local r = m:last()
      assert.equal("DELETE /unified/user-directory/groups/g%201?group_type=team&integrated_account_id="
        .. ACCOUNT .. " HTTP/1.1", r.request_line)
      no_body(r)
      -- a 204 still names what was deleted
      m:script{ { status = 204, body = "" } }
      v = client.groups.delete("g2")
      assert.same({ id = "g2" }, v)
    end)

    it("remove_user POSTs to remove-user and returns the unwrapped result", function()
      m:script{ { status = 200, json = { result = { removed = true, count = 1 } } } }
      local v, meta = client.groups.remove_user{ group_id = "g1", user_id = "u1" }
      assert.same({ removed = true, count = 1 }, v, tostring(meta))
      assert.equal(1, v.count)
      assert.equal(math.type and "integer" or nil, math.type and math.type(v.count) or nil)
      local r = m:last()
      assert.equal("POST /unified/user-directory/groups/remove-user?integrated_account_id=" .. ACCOUNT
        .. " HTTP/1.1", r.request_line)
      assert.equal('{"group_id":"g1","user_id":"u1"}', r.body)
      assert.matches(UUID, r.headers["idempotency-key"])
      -- a null result is truto.null, not a failure
      m:script{ { status = 200, json = { result = cjson.null } } }
      v = client.groups.remove_user{ group_id = "g1", user_id = "u1" }
      assert.equal(truto.null, v)
    end)

    it("remove_user requires group_id and user_id, as strings", function()
      local v, err = client.groups.remove_user{ group_id = "g1" }
      assert.is_nil(v)
      assert.equal("user_id", err.field)
      assert.matches("required", err.message)
      v, err = client.groups.remove_user{ group_id = 7, user_id = "u" }
      assert.is_nil(v)
      assert.equal("group_id", err.field)
      v, err = client.groups.remove_user{ group_id = "g", user_id = "u", name = "x" }
      assert.is_nil(v)
      assert.equal("name", err.field)
      assert.equal(0, #m:requests())
    end)

    it("list and get refuse unknown parameters and bad types, naming them", function()
      local p, err = client.groups.list{ limt = 2 }
      assert.is_nil(p)
      assert.equal("limt", err.field)
      assert.is_nil(p)
      err = select(2, client.groups.list{ limit = 0 })
      assert.equal("limit", err.field)
      err = select(2, client.groups.list{ limit = 2.5 })
      assert.equal("limit", err.field)
      err = select(2, client.groups.list{ sort_by = "colour" })
      assert.equal("sort_by", err.field)
      err = select(2, client.groups.get("g1", { limit = 1 }))
      assert.equal("limit", err.field)
      assert.equal(0, #m:requests())
    end)

    it("an Idempotency-Key is refused on reads and deletes (they are safe to repeat without one)", function()
      local v, err = client.groups.get("g1", nil, { idempotency_key = "k" })
      assert.is_nil(v)
      assert.equal("idempotency_key", err.field)
      err = select(2, client.groups.delete("g1", nil, { idempotency_key = "k" }))
      assert.equal("idempotency_key", err.field)
      assert.equal(0, #m:requests())
    end)
  end)

  describe("list", function()
    it("gives result, cursors as strings or nil, count and partial flag as sent", function()
      m:script{ { status = 200, json = { result = { { id = "1" }, { id = "2" } }, next_cursor = "n1",
        prev_cursor = cjson.null, result_count = 2, is_partial_response = true } } }
      local p = assert(client.groups.list{ limit = 2 })
      assert.equal(2, #p.result)
      assert.equal("n1", p.next_cursor)
      assert.is_nil(p.prev_cursor)
      assert.equal(2, p.result_count)
      assert.is_true(p.is_partial_response)
    end)

    it("keys result by the field truto_key_by names", function()
      m:script{ { status = 200, json = { result = { a = { id = "a" }, b = { id = "b" } },
        next_cursor = cjson.null } } }
      local p = assert(client.groups.list{ truto_key_by = "id" })
      assert.equal("b", p.result.b.id)
      assert.matches("truto_key_by=id", m:last().request_line, 1, true)
    end)
  end)

  describe("each", function()
    it("follows next_cursor over three pages, fetching each only when the loop needs it", function()
      m:script{ page({ { id = "1" }, { id = "2" } }, "c2"), page({ { id = "3" } }, "c3"),
        page({ { id = "4" }, { id = "5" } }) }
      local got = {}
      for g, err in client.groups.each{ limit = 2 } do
        assert.is_truthy(g, tostring(err))
        got[#got + 1] = g.id
        if g.id == "1" then assert.equal(1, #m:requests()) end
      end
      assert.same({ "1", "2", "3", "4", "5" }, got)
      local rs = m:requests()
      assert.equal(3, #rs)
      assert.is_nil(rs[1].request_line:find("next_cursor", 1, true))
      assert.matches("next_cursor=c2", rs[2].request_line, 1, true)
      assert.matches("next_cursor=c3", rs[3].request_line, 1, true)
    end)

    it("yields false, err once for a failure in the middle, then ends", function()
      m:script{ page({ { id = "1" } }, "c2"), { status = 403 } }
      local got, errs = {}, {}
      for g, err in client.groups.each() do
        if g then got[#got + 1] = g.id else errs[#errs + 1] = err end
      end
      assert.same({ "1" }, got)
      assert.equal(1, #errs)
      assert.equal("http", errs[1].kind)
      assert.equal(403, errs[1].status)
    end)

    it("stops with an error when the server repeats a cursor, instead of looping", function()
      m:script{ page({ { id = "1" } }, "same"), page({ { id = "2" } }, "same"), page({ { id = "3" } }, "same") }
      local got, errs = {}, {}
      for g, err in client.groups.each() do
        if g then got[#got + 1] = g.id else errs[#errs + 1] = err end
      end
      assert.same({ "1", "2" }, got)
      assert.equal(1, #errs)
      assert.matches("second time", errs[1].message)
      assert.equal(2, #m:requests())
    end)

    it("reports invalid arguments through the loop, sending nothing", function()
      local n = 0
      for g, err in client.groups.each{ limit = -1 } do
        n = n + 1
        assert.is_false(g)
        assert.equal("limit", err.field)
      end
      assert.equal(1, n)
      assert.equal(0, #m:requests())
    end)
  end)

  describe("retries per kind of operation", function()
    it("reads are retried after a 502 and after a reset, even without a key", function()
      m:script{ { status = 502 }, { reset = true }, { status = 200, json = { id = "g1" } } }
      local g, meta = client.groups.get("g1")
      assert.is_table(g, tostring(meta))
      assert.equal(3, meta.attempts)
      assert.equal(3, #m:requests())
    end)

    it("updates are retried after a 502 with the same key, and not at all without one", function()
      m:script{ { status = 502 }, { status = 200, json = { id = "g1" } } }
      local g, meta = client.groups.update("g1", { name = "x" })
      assert.is_table(g, tostring(meta))
      local rs = m:requests()
      assert.equal(2, #rs)
      assert.equal(rs[1].headers["idempotency-key"], rs[2].headers["idempotency-key"])
      m:reset()
      m:script{ { status = 502 } }
      local _, err = client.groups.update("g1", { name = "x" }, nil, { idempotency_key = false })
      assert.equal(502, err.status)
      assert.is_false(err.retryable)
      assert.equal(1, #m:requests())
    end)

    it("deletes are retried after a reset; a 404 after that says an earlier attempt may have deleted it", function()
      m:script{ { reset = true }, { status = 404 } }
      local v, err = client.groups.delete("g1")
      assert.is_nil(v)
      assert.equal(404, err.status)
      assert.is_true(err.maybe_done)
      assert.matches("may have deleted", err.message)
      assert.equal(2, #m:requests())
    end)

    it("a 404 on a first delete attempt is a plain 404", function()
      m:script{ { status = 404 } }
      local _, err = client.groups.delete("g1")
      assert.equal(404, err.status)
      assert.is_nil(err.maybe_done)
    end)

    it("errors say whether the request was sent", function()
      m:script{ { status = 400 } }
      local _, err = client.groups.get("g1")
      assert.is_true(err.sent)
      local c = assert(truto.new{ token = m.token, base_url = "http://127.0.0.1:1",
        integrated_account_id = ACCOUNT, max_retries = 0 })
      err = select(2, c.groups.get("g1"))
      assert.equal("connect", err.kind)
      assert.is_false(err.sent)
      c:close()
    end)
  end)

  describe("client.unified", function()
    it("gives the groups resource itself for user-directory/groups", function()
      assert.equal(client.groups, client.unified("user-directory", "groups"))
    end)

    it("runs every operation on a resource that is not described, checking only JSON-ability", function()
      local users = assert(client.unified("crm", "contacts"))
      m:script{ { status = 201, json = { id = "c1" } } }
      local v, meta = users.create({ first_name = "Ada", tags = { "x" }, nested = { n = 1 } },
        { custom_filter = "yes", remote_query = { a = 1 } })
      assert.is_table(v, tostring(meta))
      local r = m:last()
      assert.equal("POST /unified/crm/contacts?custom_filter=yes&integrated_account_id=" .. ACCOUNT
        .. "&remote_query%5Ba%5D=1 HTTP/1.1", r.request_line)
      assert.equal('{"first_name":"Ada","nested":{"n":1},"tags":["x"]}', r.body)
      assert.matches(UUID, r.headers["idempotency-key"])
      -- what JSON cannot carry is still refused
      local bad, err = users.create{ f = function() end }
      assert.is_nil(bad)
      assert.equal("f", err.field)
      -- the common parameters keep their types
      err = select(2, users.list{ truto_response_format = "xml" })
      assert.equal("truto_response_format", err.field)
      m:script{ page({ { id = "c1" } }) }
      local p = assert(users.list{ page_filter = 3 })
      assert.equal("c1", p.result[1].id)
      assert.matches("^GET /unified/crm/contacts%?integrated_account_id=", m:last().request_line)
      assert.matches("page_filter=3", m:last().request_line, 1, true)
    end)

    it(":call posts to a custom method and unwraps result", function()
      m:script{ { status = 200, json = { result = { merged = "c1" } } } }
      local contacts = assert(client.unified("crm", "contacts"))
      local v, meta = contacts:call("merge", { ids = { "a", "b" } })
      assert.same({ merged = "c1" }, v, tostring(meta))
      local r = m:last()
      assert.equal("POST /unified/crm/contacts/merge?integrated_account_id=" .. ACCOUNT .. " HTTP/1.1",
        r.request_line)
      assert.equal('{"ids":["a","b"]}', r.body)
    end)

    it("refuses model, resource and method names that are not one path segment", function()
      local r, err = client.unified("crm/../x", "contacts")
      assert.is_nil(r)
      assert.equal("model", err.field)
      err = select(2, client.unified("crm", ""))
      assert.equal("resource", err.field)
      local v
      v, err = client.unified("crm", "contacts"):call("a/b", {})
      assert.is_nil(v)
      assert.equal("method", err.field)
      assert.equal(0, #m:requests())
    end)
  end)

  describe("the default client", function()
    it("has a truto.groups twin for every operation", function()
      for _, name in ipairs{ "list", "each", "get", "create", "update", "delete", "remove_user" } do
        assert.is_function(truto.groups[name], name)
      end
      assert.is_function(truto.unified)
      assert.is_function(truto.batch)
    end)
  end)

  describe("cold start", function()
    it("require \"truto\" and a first create load nothing that create does not need", function()
      local out, ok = h.run_lua([[
        local truto = require "truto"
        local c = assert(truto.new{ token = os.getenv("T"), base_url = os.getenv("U"),
          integrated_account_id = os.getenv("A") })
        assert(c.groups.create({ name = "cold" }, { group_type = "team" }))
        local loaded = {}
        for name in pairs(package.loaded) do
          if name:match("^truto") or name:match("^cjson") then loaded[#loaded + 1] = name end
        end
        table.sort(loaded)
        io.write(table.concat(loaded, " "), "\n")
        -- what was left out comes on first use
        assert(type(truto.webhooks.verify) == "function")
        for _ in c.users.each() do end
        assert(c.users.create_many{ { first_name = "x" } })
        assert(package.loaded["truto.webhooks"] and package.loaded["truto.pages"] and package.loaded["truto.batch"])
        io.write("later: ok")
      ]], { T = m.token, U = m.url, A = ACCOUNT, TRUTO_API_TOKEN = "",
        LUA_PATH = os.getenv("LUA_PATH"), LUA_CPATH = os.getenv("LUA_CPATH") })
      assert.is_true(ok, out)
      local first, later = out:match("^([^\n]*)\n(.*)$")
      assert.equal("later: ok", later, out)
      local loaded = {}
      for name in first:gmatch("%S+") do loaded[name] = true end
      for _, name in ipairs{ "truto.webhooks", "truto.batch", "truto.pages", "truto.schema",
          "truto.transport.ngx", "truto.transport.haproxy", "cjson", "cjson.safe" } do
        assert.is_nil(loaded[name], name .. " was loaded: " .. first)
      end
      for name in pairs(loaded) do
        assert.is_nil(name:match("^truto%.cli%."), name .. " was loaded: " .. first)
      end
      assert.is_true(loaded["truto.transport.curl"], first)
      assert.is_nil(loaded["truto.time"], "truto.time (HTTP dates) was loaded: " .. first)
    end)

    it("with rate_limits = false the rate budget's code is not loaded either", function()
      local out, ok = h.run_lua([[
        local truto = require "truto"
        local c = assert(truto.new{ token = os.getenv("T"), base_url = os.getenv("U"),
          integrated_account_id = os.getenv("A"), rate_limits = false })
        assert(c.groups.create({ name = "cold" }, { group_type = "team" }))
        io.write(tostring(package.loaded["truto.pace"]), " ", tostring(package.loaded["truto.pace.rule"]))
      ]], { T = m.token, U = m.url, A = ACCOUNT, TRUTO_API_TOKEN = "",
        LUA_PATH = os.getenv("LUA_PATH"), LUA_CPATH = os.getenv("LUA_CPATH") })
      assert.is_true(ok, out)
      assert.equal("nil nil", out)
    end)
  end)

  describe("every resource truto.api describes", function()
    local api = require "truto.api"
    local client_mod = require "truto.client"

    -- The functions a resource object of desc must have: its operations,
    -- each (with list), create_many (with create), call.
    local function expected_functions(desc)
      local names = { call = true }
      for name in pairs(desc.operations) do names[name] = true end
      if desc.operations.list then names.each = true end
      if desc.operations.create then names.create_many = true end
      return names
    end

    it("is client.<name> and truto.<name>, named after its path, with a function per operation", function()
      local seen = 0
      for name, desc in pairs(api.resources) do
        seen = seen + 1
        assert.equal(desc.resource:gsub("%-", "_"), name)
        local r = client[name]
        assert.is_table(r, name)
        assert.equal(r, client.unified(desc.model, desc.resource))
        local want = expected_functions(desc)
        local got, twin = {}, {}
        for k, v in pairs(r) do
          if type(v) == "function" then got[k] = true end
        end
        for k, v in pairs(truto[name]) do
          if type(v) == "function" then twin[k] = true end
        end
        assert.same(want, got, name)
        assert.same(want, twin, "truto." .. name)
        local listed = {}
        for _, fn in ipairs(client_mod.methods(desc)) do listed[fn] = true end
        assert.same(want, listed, "truto.client.methods")
      end
      assert.is_true(seen >= 2)
      assert.is_nil(client.nothing_described)
      assert.is_nil(truto.nothing_described)
    end)

    it("is not made until first used, and made once", function()
      local c = assert(truto.new{ token = m.token, base_url = m.url, integrated_account_id = ACCOUNT })
      assert.is_nil(rawget(c, "users"))
      local users = c.users
      assert.equal(users, rawget(c, "users"))
      assert.equal(users, c.users)
      assert.equal(users, c.unified("user-directory", "users"))
      c:close()
    end)

    it("is one row per operation in the README's table, and every row of it is one", function()
      local f = assert(io.open("README.md"))
      local text = f:read("*a")
      f:close()
      local section = assert(text:match("\n## Every operation\n(.-)\n## "), "README has no Every operation section")
      local rows = {}
      for line in section:gmatch("[^\n]+") do
        local name, fn = line:match("^| `client%.([%w_]+)%.([%w_]+)%(")
        if name then
          local key = name .. "." .. fn
          assert.is_nil(rows[key], "README lists " .. key .. " twice")
          rows[key] = true
        end
      end
      -- :call (any custom method) is the client.unified row's
      local wanted = {}
      for name, desc in pairs(api.resources) do
        for fn in pairs(expected_functions(desc)) do
          if fn ~= "call" then wanted[name .. "." .. fn] = true end
        end
      end
      assert.same(wanted, rows)
    end)
  end)

  describe("users", function()
    local USERS = "/unified/user-directory/users"

    it("create POSTs the described fields, emails as an array of objects, and answers the user", function()
      local u, meta = client.users.create({ first_name = "Ada", last_name = "Lovelace", username = "ada",
        emails = { { email = "ada@example.com", type = "work", is_primary = true } }, phones = {},
        remote_data = { locale = "en" } })
      assert.is_table(u, tostring(meta))
      assert.equal(201, meta.status)
      local r = m:last()
      assert.equal("POST " .. USERS .. "?integrated_account_id=" .. ACCOUNT .. " HTTP/1.1", r.request_line)
      assert.same({ first_name = "Ada", last_name = "Lovelace", username = "ada",
        emails = { { email = "ada@example.com", type = "work", is_primary = true } }, phones = {},
        remote_data = { locale = "en" } }, cjson.decode(r.body))
      assert.matches('"phones":%[%]', r.body) -- an empty array stays an array
      assert.matches(UUID, r.headers["idempotency-key"])
      common_headers(r)
      assert.equal("Ada", u.first_name)
      assert.equal("ada@example.com", u.emails[1].email)
      assert.is_true(u.emails[1].is_primary)
      assert.is_string(u.id)
      assert.is_string(u.created_at)
      assert.equal(u.id, u.remote_data.id)
      assert.equal("en", u.remote_data.locale)
    end)

    it("get, update, list, each and delete act on the users the mock keeps", function()
      local u = assert(client.users.create{ first_name = "Grace", emails = { { email = "g@example.com" } } })
      local got = assert(client.users.get(u.id))
      assert.equal("Grace", got.first_name)
      assert.equal("GET " .. USERS .. "/" .. u.id .. "?integrated_account_id=" .. ACCOUNT .. " HTTP/1.1",
        m:last().request_line)
      local updated = assert(client.users.update(u.id, { last_name = "Hopper", title = "Rear Admiral" }))
      assert.equal("Hopper", updated.last_name)
      assert.equal("Grace", updated.first_name)
      local r = m:last()
      assert.equal("PATCH " .. USERS .. "/" .. u.id .. "?integrated_account_id=" .. ACCOUNT .. " HTTP/1.1",
        r.request_line)
      assert.equal('{"last_name":"Hopper","title":"Rear Admiral"}', r.body)
      assert(client.users.create{ first_name = "Second" })
      local first = assert(client.users.list{ limit = 1 })
      assert.equal(1, #first.result)
      assert.is_string(first.next_cursor)
      local names = {}
      for user, err in client.users.each{ limit = 1 } do
        assert.is_table(user, tostring(err))
        names[#names + 1] = user.first_name
      end
      assert.same({ "Grace", "Second" }, names)
      assert.same({ id = u.id }, assert(client.users.delete(u.id)))
      r = m:last()
      assert.equal("DELETE " .. USERS .. "/" .. u.id .. "?integrated_account_id=" .. ACCOUNT .. " HTTP/1.1",
        r.request_line)
      no_body(r)
      local gone, err = client.users.get(u.id)
      assert.is_nil(gone)
      assert.equal(404, err.status)
    end)

    it("list passes the filters of each integration on, and keeps the common ones typed", function()
      assert(client.users.list{ email = "a@example.com", status = "active" })
      assert.same({ "email=a%40example.com", "integrated_account_id=" .. ACCOUNT, "status=active" },
        h.pairs_of(m:last().query))
      local p, err = client.users.list{ limit = 0 }
      assert.is_nil(p)
      assert.equal("limit", err.field)
    end)

    it("refuses what the description refuses, naming the field, sending nothing", function()
      local cases = {
        { { emails = "ada@example.com" }, "emails", "array of tables" },
        { { emails = { "ada@example.com" } }, "emails[1]", "must be a table" },
        { { emails = { email = "ada@example.com" } }, "emails", "not a table with keys" },
        { { phones = { { number = "1" }, 7 } }, "phones[2]", "must be a table" },
        { { first_name = 7 }, "first_name", "string" },
        { { group_type = "team" }, "group_type", "body field" },
        { { integrated_account_id = ACCOUNT }, "integrated_account_id", "query parameter" },
      }
      for _, case in ipairs(cases) do
        local v, err = client.users.create(case[1])
        assert.is_nil(v)
        assert.equal("invalid_argument", err.kind)
        assert.equal(case[2], err.field)
        assert.matches(case[3], err.message, 1, true)
      end
      local v, err = client.users.get("u1", { first_name = "Ada" })
      assert.is_nil(v)
      assert.equal("first_name", err.field)
      assert.matches("body field", err.message, 1, true)
      assert.equal(0, #m:requests())
    end)

    it("the mock refuses a Jira user without emails, as Jira does", function()
      local jira = "a1ba0000-0000-4000-8000-000000000003"
      local v, err = client.users.create({ first_name = "Ada" }, { integrated_account_id = jira })
      assert.is_nil(v)
      assert.equal(400, err.status)
      assert.matches("Jira requires body fields emails", err.message, 1, true)
      v = assert(client.users.create({ emails = { { email = "a@example.com" } } },
        { integrated_account_id = jira, truto_response_format = "raw" }))
      assert.is_string(v.accountId) -- Jira's own name for the id
    end)

    it("downgrade POSTs to users/downgrade with user_id in the query and returns the unwrapped result", function()
      local u = assert(client.users.create{ first_name = "Ada" })
      local v, meta = client.users.downgrade({ remote_data = { reason = "seat" } },
        { user_id = u.id, license_id = "basic" })
      assert.same({ remote_data = { reason = "seat" } }, v, tostring(meta))
      local r = m:last()
      assert.equal("POST " .. USERS .. "/downgrade?integrated_account_id=" .. ACCOUNT .. "&license_id=basic&user_id="
        .. u.id .. " HTTP/1.1", r.request_line)
      assert.equal('{"remote_data":{"reason":"seat"}}', r.body)
      assert.matches(UUID, r.headers["idempotency-key"])
      -- a user the account does not have
      v, meta = client.users.downgrade({}, { user_id = "nobody" })
      assert.is_nil(v)
      assert.equal(404, meta.status)
    end)

    it("downgrade requires user_id as a query string, sending nothing without it", function()
      local v, err = client.users.downgrade({}, {})
      assert.is_nil(v)
      assert.equal("user_id", err.field)
      assert.matches("required", err.message)
      v, err = client.users.downgrade({}, { user_id = 7 })
      assert.is_nil(v)
      assert.equal("user_id", err.field)
      v, err = client.users.downgrade({ first_name = "x" }, { user_id = "u" })
      assert.is_nil(v)
      assert.equal("first_name", err.field)
      assert.equal(0, #m:requests())
    end)

    it("batch and create_many take users like any described resource", function()
      local results = assert(client:batch{
        { resource = "users", op = "create", body = { first_name = "B1" } },
        { resource = "users", op = "downgrade", body = {}, query = { user_id = "missing" } },
      })
      assert.equal("B1", results[1].value.first_name)
      assert.equal(404, results[2].err.status)
      local many = assert(client.users.create_many{ { first_name = "M1" }, { first_name = "M2" } })
      assert.is_nil(many[1].err)
      assert.is_nil(many[2].err)
      local names = {}
      for user in client.users.each() do names[#names + 1] = user.first_name end
      table.sort(names)
      assert.same({ "B1", "M1", "M2" }, names)
    end)
  end)
end)
