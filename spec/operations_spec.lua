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
end)
