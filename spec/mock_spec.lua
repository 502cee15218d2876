-- Specs of the local Truto mock (mock/, spec/support/mock.lua), driven over
-- HTTP with luasocket only: they must never use the truto module, so the
-- mock can be trusted before the client it tests.
-- Run: LUA_PATH="lua/?.lua;;" lua5.4 /usr/bin/busted spec/mock_spec.lua
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"
local schema = require "truto.schema"
local mock = require "spec.support.mock"

local TOKEN = "spec-token"

describe("the Truto mock", function()
  local m

  setup(function()
    m = mock.start { token = TOKEN }
  end)

  teardown(function()
    if m then m:stop() end
  end)

  before_each(function()
    m:reset()
  end)

  local function query_string(params)
    local parts = {}
    for _, pair in ipairs(params) do
      parts[#parts + 1] = pair[1] .. "=" .. pair[2]
    end
    return table.concat(parts, "&")
  end

  -- POSTs to the API path. opts: query (raw string or list of {k, v}),
  -- body (string or table), headers, token (false for none).
  local function post(opts)
    opts = opts or {}
    local query = type(opts.query) == "table" and query_string(opts.query) or opts.query
    local body = type(opts.body) == "table" and cjson.encode(opts.body) or opts.body or "{}"
    local headers = { ["content-type"] = "application/json", ["content-length"] = #body }
    if opts.token ~= false then
      headers.authorization = "Bearer " .. (opts.token or TOKEN)
    end
    for k, v in pairs(opts.headers or {}) do
      headers[k] = v
    end
    local chunks = {}
    local ok, status, response_headers = http.request {
      url = m.url .. (opts.path or schema.path) .. (query and "?" .. query or ""),
      method = opts.method or "POST",
      headers = headers,
      source = ltn12.source.string(body),
      sink = ltn12.sink.table(chunks),
      create = function()
        local c = socket.tcp()
        c:settimeout(10)
        return c
      end,
    }
    assert(ok, status)
    local text = table.concat(chunks)
    local decoded_ok, decoded = pcall(cjson.decode, text)
    return { status = status, headers = response_headers, text = text, json = decoded_ok and decoded or nil }
  end

  local function account_query(name, extra)
    local params = { { "integrated_account_id", m.accounts[name] } }
    for _, pair in ipairs(extra or {}) do
      params[#params + 1] = pair
    end
    return params
  end

  -- Sends these exact bytes on a new connection and reads until it closes.
  local function exchange(bytes, timeout)
    local host, port = m.url:match("^http://([^:/]+):(%d+)")
    local c = socket.tcp()
    c:settimeout(timeout or 10)
    assert(c:connect(host, tonumber(port)))
    assert(c:send(bytes))
    local data, err, partial = c:receive("*a")
    c:close()
    return data or partial, err
  end

  local function request_bytes(query, body, extra_headers)
    return "POST " .. schema.path .. "?" .. query .. " HTTP/1.1\r\n"
      .. "Host: 127.0.0.1\r\nAuthorization: Bearer " .. TOKEN .. "\r\n"
      .. "Content-Type: application/json\r\n" .. (extra_headers or "")
      .. "Content-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body
  end

  local function split_response(raw)
    local head, body = raw:match("^(.-\r\n)\r\n(.*)$")
    return head, body
  end

  -- The pieces of a chunked body, in order.
  local function dechunk(body)
    local pieces, pos = {}, 1
    while true do
      local size_hex, data_start = body:match("^(%x+)\r\n()", pos)
      assert(size_hex, "not a chunked body at byte " .. pos)
      local size = tonumber(size_hex, 16)
      if size == 0 then
        return pieces
      end
      pieces[#pieces + 1] = body:sub(data_start, data_start + size - 1)
      pos = data_start + size + 2
    end
  end

  local function keys_of(t)
    local keys = {}
    for k in pairs(t) do
      keys[#keys + 1] = k
    end
    table.sort(keys)
    return keys
  end

  local function sorted(list)
    local copy = { table.unpack(list) }
    table.sort(copy)
    return copy
  end

  local coupa_create = function(extra, body)
    return post { query = account_query("coupa", extra),
                  body = body or { name = "Finance", description = "Money people" } }
  end

  describe("when refusing a request", function()
    it("answers 401 with Truto's envelope without a token", function()
      local r = post { query = account_query("coupa"), token = false }
      assert.equal(401, r.status)
      assert.same({ statusCode = 401, error = "Unauthorized", message = "Invalid API token" }, r.json)
      assert.equal("application/json", r.headers["content-type"])
    end)

    it("answers 401 for a wrong token", function()
      assert.equal(401, post { query = account_query("coupa"), token = "wrong" }.status)
    end)

    it("answers 400 with missing_required_query_parameters without integrated_account_id", function()
      local r = post { body = { name = "x" } }
      assert.equal(400, r.status)
      assert.equal("Bad Request", r.json.error)
      assert.same({ missing_required_query_parameters = { "integrated_account_id" } }, r.json.truto_error_insight)
    end)

    it("answers 404 for an unknown integrated account", function()
      local r = post { query = "integrated_account_id=00000000-0000-4000-8000-00000000dead", body = { name = "x" } }
      assert.equal(404, r.status)
      assert.equal("Not Found", r.json.error)
    end)

    it("answers 405 for the read-only sandbox account and 503 for the blocked one", function()
      assert.equal(405, post { query = account_query("coupa_sandbox"), body = { name = "x" } }.status)
      assert.equal(503, post { query = account_query("coupa_blocked"), body = { name = "x" } }.status)
    end)

    it("answers 400 with missing_required_query_parameters when BlackLine gets no group_type", function()
      local r = post { query = account_query("blackline"), body = { name = "Ops" } }
      assert.equal(400, r.status)
      assert.same({ missing_required_query_parameters = { "group_type" } }, r.json.truto_error_insight)
    end)

    it("points at a group_type sent in the body instead of the query", function()
      local r = post { query = account_query("blackline"), body = { name = "Ops", group_type = "team" } }
      assert.equal(400, r.status)
      assert.matches(schema.misplaced.body.group_type, r.json.message, 1, true)
    end)

    it("answers 400 when BlackLine gets a group_type other than the allowed ones", function()
      local r = post { query = account_query("blackline", { { "group_type", "department" } }), body = { name = "Ops" } }
      assert.equal(400, r.status)
      assert.matches("group_type", r.json.message)
    end)

    it("answers 400 with missing_required_body_fields when Jira gets no name", function()
      local r = post { query = account_query("jira"), body = { description = "no name" } }
      assert.equal(400, r.status)
      assert.same({ missing_required_body_fields = { "name" } }, r.json.truto_error_insight)
    end)

    it("answers 400 when the body is not a JSON object", function()
      assert.equal(400, coupa_create(nil, "[1,2]").status)
      assert.equal(400, coupa_create(nil, "not json").status)
      assert.equal(400, coupa_create(nil, '{"name":"x"} trailing').status)
      assert.equal(400, coupa_create(nil, "").status)
    end)

    it("answers 400 for values outside the schema's enums and booleans", function()
      assert.equal(400, coupa_create { { "group_type", "squad" } }.status)
      assert.equal(400, coupa_create { { "truto_response_format", "xml" } }.status)
      assert.equal(400, coupa_create { { "truto_ignore_remote_data", "yes" } }.status)
      assert.equal(400, coupa_create { { "remote_query", "flat" } }.status)
      assert.equal(400, coupa_create { { "truto_exclude_fields", "id" } }.status)
      assert.equal(400, post { query = "integrated_account_id=not-a-uuid" }.status)
      assert.equal(400, coupa_create(nil, { name = 42 }).status)
    end)

    it("ignores body keys it does not know", function()
      assert.equal(201, coupa_create(nil, { name = "x", colour = "blue" }).status)
    end)

    it("answers 404 off the unified API's paths and 405 with Allow for another method", function()
      assert.equal(404, post { path = "/unified/user-directory", query = account_query("coupa") }.status)
      assert.equal(404, post { path = "/v1/groups", query = account_query("coupa") }.status)
      local r = post { method = "PUT", query = account_query("coupa") }
      assert.equal(405, r.status)
      assert.equal("GET, POST", r.headers.allow)
      r = post { method = "POST", path = schema.path .. "/1001", query = account_query("coupa") }
      assert.equal(405, r.status)
      assert.equal("DELETE, GET, PATCH", r.headers.allow)
    end)
  end)

  describe("when creating a group", function()
    it("answers 201 with a new id and Coupa's fields", function()
      local r = coupa_create({ { "group_type", "team" } }, { name = "Finance", description = "Money people" })
      assert.equal(201, r.status)
      assert.equal("application/json", r.headers["content-type"])
      local group = r.json
      assert.is_string(group.id)
      assert.equal("Finance", group.name)
      assert.equal("Money people", group.description)
      assert.equal("team", group.group_type)
      local iso8601 = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%dZ$"
      assert.matches(iso8601, group.created_at)
      assert.matches(iso8601, group.updated_at)
      assert.same({ id = group.id }, group.remote_data)
      assert.equal(1, m:stats().created)
    end)

    it("answers each integration with exactly the fields its response lists, plus remote_data", function()
      for key, integration in pairs(schema.integrations) do
        local extra = {}
        for _, name in ipairs(integration.query) do
          local allowed = integration.allowed[name]
          for _, spec in ipairs(schema.query) do
            if spec.name == name then
              extra[#extra + 1] = { name, (allowed or spec.values)[1] }
            end
          end
        end
        local r = post { query = account_query(key, extra), body = { name = "n", description = "d" } }
        assert.equal(201, r.status, key .. ": " .. r.text)
        local expected = { "remote_data", table.unpack(integration.response) }
        assert.same(sorted(expected), keys_of(r.json), key)
      end
    end)

    it("hands out a new id for every group", function()
      assert.not_equal(coupa_create().json.id, coupa_create().json.id)
      assert.same({ created = 2, requests = 2 }, m:stats())
    end)

    it("echoes the request's remote_data merged with the provider's id", function()
      local r = coupa_create(nil, '{"name":"x","remote_data":{"cost_center":"CC-1","tags":[],"extra":{}}}')
      assert.equal("CC-1", r.json.remote_data.cost_center)
      assert.equal(r.json.id, r.json.remote_data.id)
      assert.matches('"tags":%[%]', r.text)
      assert.matches('"extra":{}', r.text)
    end)

    it("drops the fields truto_exclude_fields[] names", function()
      local r = coupa_create { { "truto_exclude_fields%5B%5D", "description" },
                               { "truto_exclude_fields%5B%5D", "created_at" } }
      assert.equal(201, r.status)
      assert.is_nil(r.json.description)
      assert.is_nil(r.json.created_at)
      assert.is_string(r.json.updated_at)
    end)

    it("drops the fields truto_exclude_fields[0] names", function()
      local r = coupa_create { { "truto_exclude_fields[0]", "id" }, { "truto_exclude_fields%5B1%5D", "name" } }
      assert.equal(201, r.status)
      assert.is_nil(r.json.id)
      assert.is_nil(r.json.name)
      assert.equal("Money people", r.json.description)
    end)

    it("drops remote_data with truto_ignore_remote_data=true and keeps it with false", function()
      assert.is_nil(coupa_create { { "truto_ignore_remote_data", "true" } }.json.remote_data)
      assert.is_table(coupa_create { { "truto_ignore_remote_data", "false" } }.json.remote_data)
    end)

    it("accepts a nested, percent-encoded remote_query", function()
      local r = coupa_create { { "remote_query%5Bfilter%5D%5Bstatus%5D", "active%20only" }, { "remote_query[x]", "1" } }
      assert.equal(201, r.status)
    end)

    it("answers the provider's own shape with truto_response_format=raw", function()
      local raw_query = account_query("blackline", { { "group_type", "team" }, { "truto_response_format", "raw" } })
      local r = post { query = raw_query, body = { name = "Ops" } }
      assert.equal(201, r.status)
      assert.equal("Ops", r.json.groupName)
      assert.is_string(r.json.groupId)
      assert.is_nil(r.json.name)
    end)

    it("answers the unified shape with truto_response_format=normalized", function()
      local r = coupa_create { { "truto_response_format", "normalized" } }
      assert.equal(201, r.status)
      assert.equal("Finance", r.json.name)
    end)

    it("streams the group in several chunks as application/octet-stream", function()
      local query = "integrated_account_id=" .. m.accounts.coupa .. "&truto_response_format=stream"
      local raw = exchange(request_bytes(query, '{"name":"Streamed"}'))
      local head, body = split_response(raw)
      assert.matches("^HTTP/1.1 201", head)
      assert.matches("\r\nContent%-Type: application/octet%-stream\r\n", head)
      assert.matches("\r\nTransfer%-Encoding: chunked\r\n", head)
      local pieces = dechunk(body)
      assert.is_true(#pieces >= 2)
      assert.equal("Streamed", cjson.decode(table.concat(pieces)).name)
    end)
  end)

  describe("with an Idempotency-Key", function()
    it("replays the first answer exactly and creates nothing more", function()
      local key = { ["idempotency-key"] = "key-1" }
      local first = post { query = account_query("coupa"), body = { name = "Once" }, headers = key }
      local again = post { query = account_query("coupa"), body = { name = "Once" }, headers = key }
      assert.equal(201, again.status)
      assert.equal(first.text, again.text)
      assert.equal("true", again.headers["idempotent-replayed"])
      assert.is_nil(first.headers["idempotent-replayed"])
      for name, value in pairs(first.headers) do
        if name ~= "date" then
          assert.equal(value, again.headers[name], name)
        end
      end
      assert.equal(1, m:stats().created)
      local records = m:requests()
      assert.equal("key-1", records[2].idempotency_key)
      assert.is_true(records[2].replayed)
      assert.is_nil(records[2].created)
      assert.equal(first.json.id, records[1].created)
    end)

    it("creates again for a different key", function()
      post { query = account_query("coupa"), body = { name = "a" }, headers = { ["idempotency-key"] = "k1" } }
      post { query = account_query("coupa"), body = { name = "a" }, headers = { ["idempotency-key"] = "k2" } }
      assert.equal(2, m:stats().created)
    end)

    it("replays a refusal too", function()
      local key = { ["idempotency-key"] = "bad" }
      local first = post { query = account_query("jira"), body = {}, headers = key }
      local again = post { query = account_query("jira"), body = { name = "fixed" }, headers = key }
      assert.equal(400, again.status)
      assert.equal(first.text, again.text)
    end)
  end)

  describe("rate-limit headers", function()
    it("count down per token and start again after a reset", function()
      local r1, r2 = coupa_create(), coupa_create()
      assert.equal("110;w=10", r1.headers["ratelimit-limit"])
      assert.equal("10", r1.headers["ratelimit-reset"])
      assert.equal("109", r1.headers["ratelimit-remaining"])
      assert.equal("108", r2.headers["ratelimit-remaining"])
      assert.equal("109", post { query = account_query("coupa"), token = "other" }.headers["ratelimit-remaining"])
      m:reset()
      assert.equal("109", coupa_create().headers["ratelimit-remaining"])
    end)
  end)

  describe("records", function()
    it("keep the exact request line, query, raw header and body of every API request", function()
      local query = "integrated_account_id=" .. m.accounts.coupa .. "&truto_exclude_fields%5B%5D=id&x=%2B+"
      local body = '{"name":"R\\u00e9cord",  "description":"spaces kept"}'
      local bytes = request_bytes(query, body, "X-Trace: abc\r\nIdempotency-Key: rec-1\r\n")
      local raw = exchange(bytes)
      assert.matches("^HTTP/1.1 201", raw)
      local record = m:last()
      assert.equal("POST " .. schema.path .. "?" .. query .. " HTTP/1.1", record.request_line)
      assert.equal("POST", record.method)
      assert.equal(schema.path, record.path)
      assert.equal(query, record.query)
      assert.equal(bytes:sub(1, #bytes - #body), record.raw_header)
      assert.equal(body, record.body)
      assert.equal("abc", record.headers["x-trace"])
      assert.equal("Bearer " .. TOKEN, record.headers.authorization)
      assert.equal("rec-1", record.idempotency_key)
      assert.equal(201, record.status)
      assert.is_string(record.created)
    end)

    it("include refused requests and leave out control requests", function()
      post { query = account_query("coupa"), token = false }
      post { path = "/elsewhere" }
      m:stats()
      local records = m:requests()
      assert.equal(2, #records)
      assert.equal(401, records[1].status)
      assert.is_nil(records[1].created)
      assert.equal("/elsewhere", records[2].path)
      assert.same({ created = 0, requests = 2 }, m:stats())
    end)
  end)

  describe("scripted steps", function()
    it("answer exactly the status, headers and body given, still recording the request", function()
      m:script { { status = 429, headers = { ["Retry-After"] = "2" }, body = "slow down" } }
      local r = coupa_create()
      assert.equal(429, r.status)
      assert.equal("2", r.headers["retry-after"])
      assert.equal("slow down", r.text)
      assert.equal(429, m:last().status)
      assert.equal(0, m:stats().created)
    end)

    it("encode a json value and give a status alone Truto's envelope", function()
      m:script { { status = 409, json = { conflict = true } }, { status = 500 } }
      local r = coupa_create()
      assert.equal(409, r.status)
      assert.same({ conflict = true }, r.json)
      r = coupa_create()
      assert.equal(500, r.status)
      assert.equal(500, r.json.statusCode)
      assert.equal("Internal Server Error", r.json.error)
    end)

    it("are consumed first in first out, then the normal behaviour applies", function()
      m:script { { status = 502 } }
      m:script { { status = 504 } }
      assert.equal(502, coupa_create().status)
      assert.equal(504, coupa_create().status)
      assert.equal(201, coupa_create().status)
    end)

    it("delay the normal answer", function()
      m:script { { delay = 0.4 } }
      local started = socket.gettime()
      local r = coupa_create()
      assert.is_true(socket.gettime() - started >= 0.35)
      assert.equal(201, r.status)
      assert.equal(1, m:stats().created)
    end)

    it("send the given chunks with a delay between them", function()
      m:script { { status = 200, chunks = { '{"a":', '1}' }, chunk_delay = 0.3 } }
      local started = socket.gettime()
      local raw = exchange(request_bytes("integrated_account_id=" .. m.accounts.coupa, "{}"))
      assert.is_true(socket.gettime() - started >= 0.25)
      local _, body = split_response(raw)
      assert.same({ '{"a":', '1}' }, dechunk(body))
    end)

    it("cut the normal answer in pieces when chunks is a number", function()
      m:script { { chunks = 4 } }
      local raw = exchange(request_bytes("integrated_account_id=" .. m.accounts.coupa, '{"name":"Pieces"}'))
      local head, body = split_response(raw)
      assert.matches("^HTTP/1.1 201", head)
      local pieces = dechunk(body)
      assert.equal(4, #pieces)
      assert.equal("Pieces", cjson.decode(table.concat(pieces)).name)
      assert.equal(1, m:stats().created)
    end)

    it("close the connection after close_after bytes of an announced longer body", function()
      m:script { { close_after = 5 } }
      local raw = exchange(request_bytes("integrated_account_id=" .. m.accounts.coupa, '{"name":"Cut"}'))
      local head, body = split_response(raw)
      assert.matches("^HTTP/1.1 201", head)
      local announced = tonumber(head:match("\r\nContent%-Length: (%d+)"))
      assert.equal(5, #body)
      assert.is_true(announced > 5)
      assert.equal(0, m:stats().created)
    end)

    it("close the connection without any answer on reset", function()
      m:script { { reset = true } }
      local raw = exchange(request_bytes("integrated_account_id=" .. m.accounts.coupa, "{}"))
      assert.equal("", raw)
      assert.equal(1, #m:requests())
      assert.is_nil(m:last().status)
    end)

    it("write raw bytes and close", function()
      local bytes = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{not json"
      m:script { { raw = bytes } }
      assert.equal(bytes, exchange(request_bytes("integrated_account_id=" .. m.accounts.coupa, "{}")))
      assert.equal(200, m:last().status)
    end)

    it("really create with create=true although the client sees a fault, and replay it", function()
      m:script { { reset = true, create = true } }
      local key = "Idempotency-Key: lost-1\r\n"
      local raw = exchange(request_bytes("integrated_account_id=" .. m.accounts.coupa, '{"name":"Lost"}', key))
      assert.equal("", raw)
      assert.equal(1, m:stats().created)
      local created_id = m:last().created
      assert.is_string(created_id)
      local r = post { query = account_query("coupa"), body = { name = "Lost" },
                       headers = { ["idempotency-key"] = "lost-1" } }
      assert.equal(201, r.status)
      assert.equal(created_id, r.json.id)
      assert.equal("true", r.headers["idempotent-replayed"])
      assert.equal(1, m:stats().created)
    end)

    it("answer a valid JSON body of the given size", function()
      m:script { { size = 100000 } }
      local r = coupa_create()
      assert.equal(200, r.status)
      assert.equal(100000, #r.text)
      assert.is_table(r.json)
    end)

    it("answer an HTML page like a load balancer's", function()
      m:script { { html = true, status = 502 } }
      local r = coupa_create()
      assert.equal(502, r.status)
      assert.matches("^text/html", r.headers["content-type"])
      assert.matches("<title>502 Bad Gateway</title>", r.text)
    end)

    it("are refused with 400 when a field is unknown or of the wrong type", function()
      local function script_status(text)
        local _, status = http.request(m.url .. "/__mock/script", text)
        return status
      end
      assert.equal(400, script_status('[{"stauts":500}]'))
      assert.equal(400, script_status('[{"delay":"soon"}]'))
      assert.equal(400, script_status('{"status":500}'))
      assert.equal(200, script_status("[]"))
    end)
  end)

  -- Any API request. opts: query (raw string or list of {k, v}), body
  -- (string or table; nil sends none and no Content-Type), headers, token.
  local function send(method, path, opts)
    opts = opts or {}
    local query = type(opts.query) == "table" and query_string(opts.query) or opts.query
    local body = type(opts.body) == "table" and cjson.encode(opts.body) or opts.body
    local headers = {}
    if body then
      headers["content-type"] = "application/json"
      headers["content-length"] = #body
    end
    if opts.token ~= false then
      headers.authorization = "Bearer " .. (opts.token or TOKEN)
    end
    for k, v in pairs(opts.headers or {}) do
      headers[k] = v
    end
    local chunks = {}
    local ok, status, response_headers = http.request {
      url = m.url .. path .. (query and "?" .. query or ""),
      method = method,
      headers = headers,
      source = body and ltn12.source.string(body) or nil,
      sink = ltn12.sink.table(chunks),
      create = function()
        local c = socket.tcp()
        c:settimeout(10)
        return c
      end,
    }
    assert(ok, status)
    local text = table.concat(chunks)
    local decoded_ok, decoded = pcall(cjson.decode, text)
    return { status = status, headers = response_headers, text = text, json = decoded_ok and decoded or nil }
  end

  local function group_path(id)
    return schema.path .. "/" .. id
  end

  -- Creates groups with these names on an account; returns their ids.
  local function make_groups(account, names, extra)
    local ids = {}
    for i, name in ipairs(names) do
      local r = post { query = account_query(account, extra), body = { name = name, description = "d" .. i } }
      assert.equal(201, r.status, r.text)
      ids[i] = r.json.id
    end
    return ids
  end

  local function list(account, extra)
    return send("GET", schema.path, { query = account_query(account, extra) })
  end

  local function assert_envelope(status, r)
    assert.equal(status, r.status, r.text)
    assert.equal(status, r.json.statusCode)
    assert.is_string(r.json.error)
    assert.is_string(r.json.message)
  end

  describe("when listing groups", function()
    it("pages with limit and opaque cursors until next_cursor is null", function()
      local ids = make_groups("coupa", { "g1", "g2", "g3", "g4", "g5", "g6", "g7" })
      local seen, pages, cursor = {}, {}, nil
      repeat
        local extra = { { "limit", "3" } }
        if cursor then extra[#extra + 1] = { "next_cursor", cursor } end
        local r = list("coupa", extra)
        assert.equal(200, r.status, r.text)
        pages[#pages + 1] = r.json
        for _, group in ipairs(r.json.result) do seen[#seen + 1] = group.id end
        assert.equal(#r.json.result, r.json.result_count)
        assert.is_false(r.json.is_partial_response)
        cursor = r.json.next_cursor
        if cursor ~= cjson.null then
          assert.is_string(cursor)
          assert.is_nil(cursor:match("^%d+$"), "a cursor is not a plain offset")
        end
      until cursor == cjson.null or #pages > 5
      assert.equal(3, #pages)
      assert.same({ 3, 3, 1 }, { pages[1].result_count, pages[2].result_count, pages[3].result_count })
      assert.same(ids, seen)
      assert.equal(cjson.null, pages[1].prev_cursor)
      assert.is_string(pages[2].prev_cursor)
      assert.not_equal(pages[2].next_cursor, pages[1].next_cursor)
      local back = list("coupa", { { "limit", "3" }, { "next_cursor", pages[3].prev_cursor } })
      assert.equal(ids[4], back.json.result[1].id)
    end)

    it("answers every group in one page by default and with truto_ignore_limit", function()
      local ids = make_groups("coupa", { "a", "b", "c" })
      local r = list("coupa")
      assert.equal(3, #r.json.result)
      assert.equal(cjson.null, r.json.next_cursor)
      r = list("coupa", { { "limit", "1" }, { "truto_ignore_limit", "true" } })
      assert.equal(3, r.json.result_count)
      assert.equal(ids[3], r.json.result[3].id)
      assert.equal(cjson.null, r.json.next_cursor)
    end)

    it("answers an empty page for an account without groups", function()
      make_groups("coupa", { "elsewhere" })
      local r = list("files.com")
      assert.equal(200, r.status)
      assert.same({}, r.json.result)
      assert.matches('"result":%[%]', r.text)
      assert.equal(0, r.json.result_count)
    end)

    it("refuses a garbled, unknown or pre-reset cursor with 400 in Truto's envelope", function()
      make_groups("coupa", { "a", "b" })
      local cursor = list("coupa", { { "limit", "1" } }).json.next_cursor
      assert_envelope(400, list("coupa", { { "next_cursor", "garbage!" } }))
      assert_envelope(400, list("coupa", { { "next_cursor", "1" } }))
      assert_envelope(400, list("coupa", { { "next_cursor", cursor:sub(1, -3) } }))
      make_groups("jira", { "a", "b" })
      assert_envelope(400, list("jira", { { "next_cursor", cursor } })) -- another account's
      m:reset()
      make_groups("coupa", { "a", "b" })
      local r = list("coupa", { { "next_cursor", cursor } })
      assert_envelope(400, r)
      assert.matches("next_cursor", r.json.message)
    end)

    it("keys result by the truto_key_by field", function()
      local ids = make_groups("coupa", { "Alpha", "Beta" })
      local r = list("coupa", { { "truto_key_by", "name" } })
      assert.equal(200, r.status)
      assert.equal(ids[1], r.json.result.Alpha.id)
      assert.equal(ids[2], r.json.result.Beta.id)
      assert.equal(2, r.json.result_count)
      r = list("coupa", { { "truto_key_by", "id" }, { "limit", "1" } })
      assert.same({ ids[1] }, keys_of(r.json.result))
    end)

    it("filters by name and group_type, sorts by sort_by and leaves out excluded fields", function()
      make_groups("coupa", { "Zeta" }, { { "group_type", "team" } })
      make_groups("coupa", { "Alpha" }, { { "group_type", "department" } })
      make_groups("coupa", { "Mid" }, { { "group_type", "team" } })
      local r = list("coupa", { { "name", "Alpha" } })
      assert.equal(1, #r.json.result)
      assert.equal("department", r.json.result[1].group_type)
      r = list("coupa", { { "group_type", "team" }, { "sort_by", "name" } })
      assert.same({ "Mid", "Zeta" }, { r.json.result[1].name, r.json.result[2].name })
      r = list("coupa", { { "truto_exclude_fields%5B%5D", "description" }, { "truto_ignore_remote_data", "true" } })
      assert.is_nil(r.json.result[1].description)
      assert.is_nil(r.json.result[1].remote_data)
      assert.equal(0, list("coupa", { { "user_id", "u1" } }).json.result_count)
    end)

    it("refuses parameters outside the description's types", function()
      assert_envelope(400, list("coupa", { { "limit", "0" } }))
      assert_envelope(400, list("coupa", { { "limit", "ten" } }))
      assert_envelope(400, list("coupa", { { "sort_by", "colour" } }))
      assert_envelope(400, list("coupa", { { "truto_ignore_limit", "yes" } }))
      assert_envelope(400, send("GET", schema.path))
    end)

    it("requires organization_id for Asana", function()
      local r = list("asana")
      assert_envelope(400, r)
      assert.same({ missing_required_query_parameters = { "organization_id" } }, r.json.truto_error_insight)
      assert.equal(200, list("asana", { { "organization_id", "org-1" } }).status)
    end)
  end)

  describe("when getting, updating and deleting a group", function()
    it("answers the kept group, and 404 in Truto's envelope for an unknown id", function()
      local id = make_groups("coupa", { "Kept" })[1]
      local r = send("GET", group_path(id), { query = account_query("coupa") })
      assert.equal(200, r.status)
      assert.equal("Kept", r.json.name)
      assert.equal(id, r.json.id)
      r = send("GET", group_path("nope"), { query = account_query("coupa") })
      assert.equal(404, r.status)
      assert.same({ "error", "message", "statusCode" }, keys_of(r.json))
      assert.equal("Not Found", r.json.error)
      assert.equal(404, send("GET", group_path(id), { query = account_query("jira") }).status)
    end)

    it("reads the id as one percent-decoded path segment", function()
      local r = send("GET", group_path("a%2Fb%20c"), { query = account_query("coupa") })
      assert.equal(404, r.status)
      assert.matches("a/b c", r.json.message, 1, true)
      assert.equal("groups", m:last().operation:match("groups"))
    end)

    it("updates with PATCH: body fields as for create, remote_data merged, updated_at new", function()
      local created = post { query = account_query("coupa"), body = { name = "Old", remote_data = { a = 1 } } }.json
      socket.sleep(0.01)
      local r = send("PATCH", group_path(created.id), { query = account_query("coupa"),
        body = { name = "New", remote_data = { b = 2 } } })
      assert.equal(200, r.status, r.text)
      assert.equal("New", r.json.name)
      assert.equal(created.description, r.json.description)
      assert.equal(created.created_at, r.json.created_at)
      assert.not_equal(created.updated_at, r.json.updated_at)
      assert.same({ id = created.id, a = 1, b = 2 }, r.json.remote_data)
      assert.equal("New", send("GET", group_path(created.id), { query = account_query("coupa") }).json.name)
      assert_envelope(404, send("PATCH", group_path("nope"), { query = account_query("coupa"), body = { name = "x" } }))
      assert_envelope(400, send("PATCH", group_path(created.id),
        { query = account_query("coupa"), body = { name = 1 } }))
      assert_envelope(400, send("PATCH", group_path(created.id), { query = account_query("coupa"), body = "[]" }))
    end)

    it("deletes, answering { id }, after which the group is gone", function()
      local ids = make_groups("coupa", { "a", "b" })
      local r = send("DELETE", group_path(ids[1]), { query = account_query("coupa") })
      assert.equal(200, r.status)
      assert.same({ id = ids[1] }, r.json)
      assert_envelope(404, send("GET", group_path(ids[1]), { query = account_query("coupa") }))
      assert_envelope(404, send("DELETE", group_path(ids[1]), { query = account_query("coupa") }))
      assert.same({ ids[2] }, { list("coupa").json.result[1].id, list("coupa").json.result[2] })
    end)

    it("requires group_type=team for a BlackLine delete", function()
      local id = make_groups("blackline", { "Ops" }, { { "group_type", "team" } })[1]
      local r = send("DELETE", group_path(id), { query = account_query("blackline") })
      assert_envelope(400, r)
      assert.same({ missing_required_query_parameters = { "group_type" } }, r.json.truto_error_insight)
      local function typed(group_type)
        return { query = account_query("blackline", { { "group_type", group_type } }) }
      end
      assert_envelope(400, send("DELETE", group_path(id), typed("group")))
      assert.equal(200, send("DELETE", group_path(id), typed("team")).status)
    end)

    it("removes a user with remove-user, answering a wrapped result", function()
      local id = make_groups("coupa", { "Team" })[1]
      local path = schema.path .. "/remove-user"
      local r = send("POST", path, { query = account_query("coupa"), body = { group_id = id, user_id = "u1" } })
      assert.equal(200, r.status, r.text)
      assert.same({ result = { group_id = id, user_id = "u1" } }, r.json)
      r = send("POST", path, { query = account_query("coupa"), body = { group_id = id } })
      assert_envelope(400, r)
      assert.same({ missing_required_body_fields = { "user_id" } }, r.json.truto_error_insight)
      assert_envelope(404, send("POST", path,
        { query = account_query("coupa"), body = { group_id = "nope", user_id = "u1" } }))
      assert.equal("user-directory/groups remove_user", m:requests()[2].operation)
    end)

    it("refuses every write on the sandbox account with 405 and still reads", function()
      local query = account_query("coupa_sandbox")
      assert_envelope(405, send("POST", schema.path, { query = query, body = { name = "x" } }))
      assert_envelope(405, send("PATCH", group_path("1"), { query = query, body = { name = "x" } }))
      assert_envelope(405, send("DELETE", group_path("1"), { query = query }))
      assert_envelope(405, send("POST", schema.path .. "/remove-user", { query = query,
        body = { group_id = "1", user_id = "u" } }))
      assert_envelope(405, send("POST", "/unified/crm/contacts/merge", { query = query, body = {} }))
      assert.equal(200, send("GET", schema.path, { query = query }).status)
      assert_envelope(404, send("GET", group_path("1"), { query = query }))
    end)

    it("replays a PATCH with the same Idempotency-Key without updating again", function()
      local id = make_groups("coupa", { "Start" })[1]
      local key = { ["idempotency-key"] = "patch-1" }
      local function rename(name)
        return send("PATCH", group_path(id), { query = account_query("coupa"), body = { name = name }, headers = key })
      end
      local first, again = rename("One"), rename("Two")
      assert.equal(200, again.status)
      assert.equal(first.text, again.text)
      assert.equal("true", again.headers["idempotent-replayed"])
      assert.is_true(m:last().replayed)
      assert.equal("One", send("GET", group_path(id), { query = account_query("coupa") }).json.name)
      local other = send("PATCH", group_path(id), { query = account_query("coupa"), body = { name = "Three" },
        headers = { ["idempotency-key"] = "patch-2" } })
      assert.equal("Three", other.json.name)
    end)

    it("keys replays by account and path as well as the key", function()
      local key = { ["idempotency-key"] = "shared" }
      local a = post { query = account_query("coupa"), body = { name = "A" }, headers = key }
      local b = post { query = account_query("files.com"), body = { name = "B" }, headers = key }
      assert.not_equal(a.json.id, b.json.id)
      local u = send("PATCH", group_path(a.json.id),
        { query = account_query("coupa"), body = { name = "A2" }, headers = key })
      assert.equal("A2", u.json.name)
      assert.is_nil(u.headers["idempotent-replayed"])
      assert.equal(2, m:stats().created)
    end)

    it("records a GET and a DELETE with no body, their raw and decoded query", function()
      local raw_query = "integrated_account_id=" .. m.accounts.coupa .. "&limit=2&remote_query%5Ba%5D=b"
      send("GET", schema.path, { query = raw_query })
      send("DELETE", group_path("x"), { query = account_query("coupa") })
      local records = m:requests()
      assert.equal("GET", records[1].method)
      assert.equal("", records[1].body)
      assert.is_nil(records[1].headers["content-type"])
      assert.equal(raw_query, records[1].query)
      assert.same({ integrated_account_id = m.accounts.coupa, limit = "2", remote_query = { a = "b" } },
        records[1].params)
      assert.equal("user-directory/groups list", records[1].operation)
      assert.equal("DELETE", records[2].method)
      assert.equal("", records[2].body)
      assert.equal(404, records[2].status)
      assert.is_number(records[2].at)
    end)
  end)

  describe("on users, a described resource other than groups", function()
    local base = "/unified/user-directory/users"
    local EMAILS = { { email = "ada@example.com", type = "work", is_primary = true } }

    it("keeps users with the described fields from the body, and serves get, update, list and delete", function()
      local query = account_query("coupa")
      local created = send("POST", base, { query = query,
        body = { first_name = "Ada", last_name = "Lovelace", emails = EMAILS, remote_data = { k = "v" } } })
      assert.equal(201, created.status, created.text)
      local u = created.json
      assert.is_string(u.id)
      assert.equal("Ada", u.first_name)
      assert.same(EMAILS, u.emails)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT", u.created_at)
      assert.same({ k = "v", id = u.id }, u.remote_data)
      assert.equal("user-directory/users create", m:last().operation)
      local updated = send("PATCH", base .. "/" .. u.id, { query = query, body = { title = "Countess" } })
      assert.equal(200, updated.status, updated.text)
      assert.equal("Countess", updated.json.title)
      assert.equal("Ada", updated.json.first_name)
      assert.equal("Countess", send("GET", base .. "/" .. u.id, { query = query }).json.title)
      local page = send("GET", base, { query = account_query("coupa", { { "truto_exclude_fields[]", "emails" } }) })
      assert.equal(1, page.json.result_count)
      assert.is_nil(page.json.result[1].emails)
      assert.equal(0, list("coupa").json.result_count) -- groups are another resource
      assert.same({ id = u.id }, send("DELETE", base .. "/" .. u.id, { query = query }).json)
      assert_envelope(404, send("GET", base .. "/" .. u.id, { query = query }))
    end)

    it("validates the body against the users description", function()
      local query = account_query("coupa")
      local r = send("POST", base, { query = query, body = { emails = { "ada@example.com" } } })
      assert_envelope(400, r)
      assert.matches("emails must be an array of objects", r.json.message, 1, true)
      r = send("POST", base, { query = query, body = '{"emails":{}}' })
      assert_envelope(400, r)
      r = send("POST", base, { query = query, body = { first_name = 7 } })
      assert_envelope(400, r)
      assert.matches("first_name must be a string", r.json.message, 1, true)
      assert.equal(201, send("POST", base, { query = query, body = '{"emails":[]}' }).status)
    end)

    it("applies the integration's rules and names: Jira requires emails and answers raw with accountId", function()
      local r = send("POST", base, { query = account_query("jira"), body = { first_name = "Ada" } })
      assert_envelope(400, r)
      assert.equal("Jira requires body fields emails", r.json.message)
      assert.same({ "emails" }, r.json.truto_error_insight.missing_required_body_fields)
      r = send("POST", base, { query = account_query("jira", { { "truto_response_format", "raw" } }),
        body = { emails = EMAILS } })
      assert.equal(201, r.status, r.text)
      -- the unified id under Jira's own name, beside the remote_data it was sent (which has the id)
      assert.is_string(r.json.accountId)
      assert.equal(r.json.accountId, r.json.id)
      assert.is_nil(r.json.remote_data)
    end)

    it("downgrade needs user_id in the query and a user the account has", function()
      local query = account_query("coupa")
      local missing = send("POST", base .. "/downgrade", { query = query, body = {} })
      assert_envelope(400, missing)
      assert.same({ "user_id" }, missing.json.truto_error_insight.missing_required_query_parameters)
      local unknown = send("POST", base .. "/downgrade",
        { query = account_query("coupa", { { "user_id", "nobody" } }), body = {} })
      assert_envelope(404, unknown)
      local id = send("POST", base, { query = query, body = { first_name = "Ada" } }).json.id
      local r = send("POST", base .. "/downgrade",
        { query = account_query("coupa", { { "user_id", id }, { "role_id", "observer" } }),
          body = { remote_data = { a = 1 } } })
      assert.equal(200, r.status, r.text)
      assert.same({ result = { remote_data = { a = 1 } } }, r.json)
      assert.equal("user-directory/users downgrade", m:last().operation)
    end)

    it("names no resource in its code: what differs comes from truto.api", function()
      for _, file in ipairs{ "api", "objects", "router", "validate", "listing", "state", "answer", "control" } do
        local f = assert(io.open("mock/" .. file .. ".lua"))
        local n = 0
        for line in f:lines() do
          n = n + 1
          local code = line:gsub("%-%-.*$", "")
          for _, word in ipairs{ "groups", "users", "is_groups", "group_id", "user_id" } do
            assert.is_nil(code:find('[%W]' .. word .. '[%W]'),
              ("mock/%s.lua:%d names %s: %s"):format(file, n, word, line))
          end
        end
        f:close()
      end
    end)
  end)

  describe("on a unified resource it does not describe", function()
    local base = "/unified/crm/contacts"

    it("creates, lists, gets, updates and deletes objects as sent", function()
      local query = account_query("coupa")
      local created = send("POST", base, { query = query, body = { first_name = "Ada", tags = { "x" } } })
      assert.equal(201, created.status, created.text)
      local id = created.json.id
      assert.is_string(id)
      assert.equal("Ada", created.json.first_name)
      assert.equal(1, send("GET", base, { query = query }).json.result_count)
      assert.equal("Ada", send("GET", base .. "/" .. id, { query = query }).json.first_name)
      local updated = send("PATCH", base .. "/" .. id, { query = query, body = { first_name = "Grace" } })
      assert.equal("Grace", updated.json.first_name)
      assert.same({ "x" }, updated.json.tags)
      assert.same({ id = id }, send("DELETE", base .. "/" .. id, { query = query }).json)
      assert_envelope(404, send("GET", base .. "/" .. id, { query = query }))
      assert.equal(0, list("coupa").json.result_count) -- groups are another resource
      assert.equal("crm/contacts create", m:requests()[1].operation)
    end)

    it("answers a custom method with the body wrapped in result", function()
      local r = send("POST", base .. "/merge", { query = account_query("coupa"), body = { a = 1, b = { "c" } } })
      assert.equal(200, r.status, r.text)
      assert.same({ result = { a = 1, b = { "c" } } }, r.json)
      assert.equal("crm/contacts merge", m:last().operation)
    end)

    it("passes undescribed query parameters and still checks the common ones", function()
      local query = account_query("coupa", { { "anything", "goes" } })
      assert.equal(200, send("GET", base, { query = query }).status)
      local bad_format = account_query("coupa", { { "truto_response_format", "xml" } })
      assert_envelope(400, send("GET", base, { query = bad_format }))
      assert_envelope(400, send("GET", base))
      assert_envelope(400, send("POST", base, { query = account_query("coupa"), body = "[1]" }))
      assert_envelope(405, send("PUT", base, { query = account_query("coupa"), body = {} }))
    end)

    it("pages like groups do", function()
      for i = 1, 5 do
        send("POST", "/unified/user-directory/roles", { query = account_query("jira"), body = { n = i } })
      end
      local r = send("GET", "/unified/user-directory/roles", { query = account_query("jira", { { "limit", "2" } }) })
      assert.equal(2, r.json.result_count)
      local n, cursor = 2, r.json.next_cursor
      while cursor ~= cjson.null do
        r = send("GET", "/unified/user-directory/roles",
          { query = account_query("jira", { { "limit", "2" }, { "next_cursor", cursor } }) })
        n, cursor = n + r.json.result_count, r.json.next_cursor
      end
      assert.equal(5, n)
    end)
  end)

  describe("with rate limits", function()
    it("refuses over the per-account limit with Truto's 429, Retry-After and ratelimit-* headers", function()
      assert.same({ latency = 0, limits = "account=3/5" }, m:configure { limits = "3/5" })
      for i = 1, 3 do
        local r = list("coupa")
        assert.equal(200, r.status)
        assert.equal("3;w=5", r.headers["ratelimit-limit"])
        assert.equal(tostring(3 - i), r.headers["ratelimit-remaining"])
        assert.matches("^%d+$", r.headers["ratelimit-reset"])
      end
      local r = list("coupa")
      assert_envelope(429, r)
      assert.equal("Too Many Requests", r.json.error)
      assert.equal("account", r.json.truto_error_insight.rate_limit_error.scope)
      assert.is_true(tonumber(r.headers["retry-after"]) >= 1 and tonumber(r.headers["retry-after"]) <= 5)
      assert.equal("0", r.headers["ratelimit-remaining"])
      assert.equal(429, m:last().status)
      assert.equal(200, list("jira").status) -- another account has its own budget
    end)

    it("refuses over the per-token limit across accounts, counting each token alone", function()
      m:configure { limits = "token=2/5" }
      assert.equal(200, list("coupa").status)
      assert.equal(200, list("jira").status)
      local r = list("files.com")
      assert.equal(429, r.status)
      assert.equal("token", r.json.truto_error_insight.rate_limit_error.scope)
      assert.equal(401, send("GET", schema.path, { query = account_query("coupa"), token = "other" }).status)
    end)

    it("refuses nothing that would have been refused alone and counts no refused request", function()
      m:configure { limits = "account=2/5,token=3/5" }
      assert.equal(200, list("coupa").status)
      assert.equal(200, list("coupa").status)
      assert.equal(429, list("coupa").status)
      local r = list("jira")
      assert.equal(200, r.status)
      assert.equal("0", r.headers["ratelimit-remaining"]) -- the token's third
      assert.equal(429, list("jira").status)
    end)

    it("lets requests through again once the window is over", function()
      m:configure { limits = "2/0.5" }
      assert.equal(200, list("coupa").status)
      assert.equal(200, list("coupa").status)
      assert.equal(429, list("coupa").status)
      socket.sleep(0.6)
      assert.equal(200, list("coupa").status)
    end)

    it("goes back to counting headers only on reset or with limits = false", function()
      m:configure { limits = "1/10" }
      list("coupa")
      assert.equal(429, list("coupa").status)
      m:reset()
      assert.same({ latency = 0, limits = "off" }, m:configure {})
      assert.equal("110;w=10", list("coupa").headers["ratelimit-limit"])
      m:configure { limits = "1/10" }
      list("coupa")
      m:configure { limits = false }
      assert.equal(200, list("coupa").status)
    end)

    it("refuses a malformed configuration", function()
      assert.has_error(function() m:configure { limits = "fast" } end)
      assert.has_error(function() m:configure { latency = -1 } end)
      assert.has_error(function() m:configure { limits = "account=1/1,account=2/1" } end)
    end)
  end)

  describe("with a latency", function()
    it("waits that long before every answer, scripted ones included, until reset", function()
      m:configure { latency = 0.3 }
      local started = socket.gettime()
      assert.equal(200, list("coupa").status)
      assert.is_true(socket.gettime() - started >= 0.28)
      m:script { { status = 500 } }
      started = socket.gettime()
      assert.equal(500, list("coupa").status)
      assert.is_true(socket.gettime() - started >= 0.28)
      started = socket.gettime()
      m:stats()
      assert.is_true(socket.gettime() - started < 0.28, "control calls have no latency")
      m:reset()
      assert.equal(0, m:configure {}.latency)
    end)
  end)
end)

describe("the mock's helper", function()
  it("stops nginx and removes the temp dir it made", function()
    local m = mock.start()
    assert.equal("mock-token", m.token)
    local pid = assert(io.open(m.dir .. "/nginx.pid")):read("*l")
    m:stop()
    assert.is_nil(io.open("/proc/" .. pid .. "/cmdline") and
      io.open("/proc/" .. pid .. "/cmdline"):read("*a"):match("nginx"))
    assert.is_nil(io.open(m.dir .. "/nginx.conf"))
    m:stop()
  end)

  it("starts with mock/run's --latency and --limits, which a reset restores", function()
    local m = mock.start { latency = 0.05, limits = "account=2/10" }
    finally(function() m:stop() end)
    assert.same({ latency = 0.05, limits = "account=2/10" }, m:configure {})
    m:configure { latency = 0, limits = false }
    m:reset()
    assert.same({ latency = 0.05, limits = "account=2/10" }, m:configure {})
    local function list()
      local _, status = http.request {
        url = m.url .. schema.path .. "?integrated_account_id=" .. m.accounts.coupa,
        headers = { authorization = "Bearer " .. m.token },
        sink = ltn12.sink.null(),
      }
      return status
    end
    assert.same({ 200, 200, 429 }, { list(), list(), list() })
  end)

  it("documents its options in mock/run --help and refuses malformed ones", function()
    local sh = require "spec.support.sh"
    local ok, help = sh.run("mock/run --help")
    assert.is_true(ok)
    assert.matches("--latency SECONDS", help, 1, true)
    assert.matches("--limits LIMITS", help, 1, true)
    assert.matches("50/1,500/1", help, 1, true)
    local started, refused = sh.run("mock/run --limits 50/x start")
    assert.is_false(started)
    assert.matches("REQUESTS/SECONDS", refused, 1, true)
    assert.is_false((sh.run("mock/run --latency soon start")))
  end)

  it("runs instances side by side on different ports", function()
    local a, b = mock.start(), mock.start()
    finally(function() a:stop() b:stop() end)
    assert.not_equal(a.url, b.url)
    a:script { { status = 500 } }
    assert.same({ created = 0, requests = 0 }, b:stats())
  end)
end)
