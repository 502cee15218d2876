-- What a create returns: each response format, and each error kind with
-- its fields, against the mock (its script steps stand in for the answers
-- the real API gives rarely).
local truto = require "truto"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"

describe("responses", function()
  local m, client
  setup(function() m = mock.start() end)
  teardown(function()
    if client then client:close() end
    if m then m:stop() end
  end)
  -- a fresh mock state and a fresh client: a budget that learned one
  -- case's 429 (Retry-After: 7) would hold the next case's send for 7 s
  before_each(function()
    m:reset()
    if client then client:close() end
    client = assert(truto.new{ token = m.token, base_url = m.url, max_retries = 0 })
  end)

  local function create(query, options, body)
    query = query or {}
    query.integrated_account_id = query.integrated_account_id or m.accounts.coupa
    return client.groups.create(body or { name = "R", description = "d" }, query, options)
  end

  describe("formats", function()
    it("unified (the default) gives the decoded group", function()
      local g, meta = create({ group_type = "group" })
      assert.is_table(g, tostring(meta))
      assert.equal("R", g.name)
      assert.equal("group", g.group_type)
      assert.is_string(g.updated_at)
      assert.is_table(g.remote_data)
    end)

    it("normalized gives the decoded group", function()
      local g = create({ truto_response_format = "normalized" })
      assert.equal("R", g.name)
    end)

    it("raw gives the provider's decoded JSON", function()
      local g = create({ truto_response_format = "raw", integrated_account_id = m.accounts.blackline,
        group_type = "team" })
      assert.equal("R", g.groupName)
      assert.equal("team", g.groupType)
    end)

    it("raw gives the body string when the answer is not JSON", function()
      m:script{ { status = 200, headers = { ["Content-Type"] = "text/plain" }, body = "group 77 created" } }
      local g, meta = create({ truto_response_format = "raw" })
      assert.equal("group 77 created", g)
      assert.equal(200, meta.status)
    end)

    it("stream without a sink gives the body string", function()
      local g = create({ truto_response_format = "stream" })
      assert.is_string(g)
      assert.matches('"name":"R"', g)
    end)

    it("stream with a sink passes every chunk to it and gives true", function()
      local chunks = {}
      local g, meta = create({ truto_response_format = "stream" },
        { sink = function(chunk) chunks[#chunks + 1] = chunk end })
      assert.is_true(g, tostring(meta))
      assert.is_true(#chunks >= 1)
      assert.matches('"name":"R"', table.concat(chunks))
    end)

    it("treats any 2xx as success and 204 as an empty result", function()
      m:script{ { status = 200, json = { id = "g-200" } }, { status = 204 } }
      assert.equal("g-200", create().id)
      local empty, meta = create()
      assert.same({}, empty)
      assert.equal(204, meta.status)
    end)

    it("decodes nulls to truto.null", function()
      m:script{ { status = 201, body = '{"id":"n1","description":null}' } }
      local g = create()
      assert.equal(truto.null, g.description)
    end)
  end)

  describe("errors", function()
    it("401 is kind http with Truto's envelope decoded", function()
      local c = assert(truto.new{ token = "not-the-token", base_url = m.url })
      local g, err = c.groups.create({ name = "x" }, { integrated_account_id = m.accounts.coupa })
      assert.is_nil(g)
      assert.equal("http", err.kind)
      assert.equal(401, err.status)
      assert.equal("Invalid API token", err.message)
      assert.equal(401, err.body.statusCode)
      assert.equal("Unauthorized", err.body.error)
      assert.is_false(err.retryable)
      assert.equal(1, err.attempts)
      assert.equal("truto: http 401: Invalid API token", tostring(err))
      c:close()
    end)

    it("400 carries truto_error_insight as err.insight", function()
      local _, err = create({ integrated_account_id = m.accounts.blackline }, nil, { name = "B" })
      assert.equal("http", err.kind)
      assert.equal(400, err.status)
      assert.same({ "group_type" }, err.insight.missing_required_query_parameters)
      local _, err2 = create({ integrated_account_id = m.accounts.jira }, nil, { description = "no name" })
      assert.same({ "name" }, err2.insight.missing_required_body_fields)
    end)

    it("404 for an unknown account, 405 for a sandbox, 503 for a blocked account", function()
      local _, e404 = create({ integrated_account_id = "00000000-0000-4000-8000-000000000000" })
      assert.equal(404, e404.status)
      local _, e405 = create({ integrated_account_id = m.accounts.coupa_sandbox })
      assert.equal(405, e405.status)
      local _, e503 = create({ integrated_account_id = m.accounts.coupa_blocked })
      assert.equal(503, e503.status)
      assert.is_false(e503.retryable)
      assert.equal("http", e503.kind)
    end)

    it("marks remote errors with err.remote", function()
      m:script{ { status = 422, json = { statusCode = 422, error = "Unprocessable Entity",
        message = "Group name taken", truto_is_remote_error = true, raw_response = { code = "dup" } } } }
      local _, err = create()
      assert.equal("http", err.kind)
      assert.is_true(err.remote)
      assert.equal("Group name taken", err.message)
      assert.equal("dup", err.body.raw_response.code)
    end)

    it("uses the reason when the envelope's message is empty", function()
      m:script{ { status = 500, json = { statusCode = 500, error = "Internal Server Error", message = "" } } }
      local _, err = create()
      assert.equal("Internal Server Error", err.message)
    end)

    it("429 is rate_limited, retryable, with retry_after from Retry-After", function()
      m:script{ { status = 429, headers = { ["Retry-After"] = "7" },
        json = { statusCode = 429, error = "Too Many Requests", message = "slow down" } } }
      local _, err = create()
      assert.equal("rate_limited", err.kind)
      assert.equal(429, err.status)
      assert.equal(7, err.retry_after)
      assert.is_true(err.retryable)
    end)

    it("decode when a 2xx answer is not JSON", function()
      m:script{ { status = 201, headers = { ["Content-Type"] = "application/json" }, body = "{not json" } }
      local _, err = create()
      assert.equal("decode", err.kind)
      assert.equal(201, err.status)
      assert.matches("not valid JSON", err.message)
    end)

    it("an HTML error page is kind http with the page as err.body", function()
      m:script{ { html = true, status = 502 } }
      local _, err = create()
      assert.equal("http", err.kind)
      assert.equal(502, err.status)
      assert.is_string(err.body)
      assert.matches("<html", err.body:lower())
    end)

    it("too_large when the answer exceeds max_response_bytes", function()
      m:script{ { size = 200000 } }
      local _, err = create(nil, { max_response_bytes = 1000 })
      assert.equal("too_large", err.kind)
      assert.matches("max_response_bytes", err.message)
    end)

    it("timeout when the answer takes longer than timeout", function()
      m:script{ { delay = 2 } }
      local _, err = create(nil, { timeout = 0.3, idempotency_key = false })
      assert.equal("timeout", err.kind)
      assert.equal("timeout", err.timeout)
    end)

    it("connect when nothing listens", function()
      local c = assert(truto.new{ token = "tok-123456", base_url = "http://127.0.0.1:1", max_retries = 0 })
      local _, err = c.groups.create({ name = "x" }, { integrated_account_id = h.SEED_ACCOUNT })
      assert.equal("connect", err.kind)
      assert.is_true(err.retryable)
      c:close()
    end)

    it("tls when https meets something that does not speak TLS", function()
      local c = assert(truto.new{ token = "tok-123456", base_url = m.url:gsub("^http:", "https:"),
        max_retries = 0 })
      local _, err = c.groups.create({ name = "x" }, { integrated_account_id = h.SEED_ACCOUNT })
      assert.equal("tls", err.kind)
      c:close()
    end)

    it("network when the connection is reset before any answer", function()
      m:script{ { reset = true } }
      local _, err = create(nil, { idempotency_key = false })
      assert.equal("network", err.kind)
      assert.is_false(err.retryable)
    end)

    it("renders every error as one line", function()
      m:script{ { status = 400, json = { statusCode = 400, error = "Bad Request", message = "line one\nline two" } } }
      local _, err = create()
      assert.equal("truto: http 400: line one line two", tostring(err))
    end)
  end)

  describe("strict JSON", function()
    local function answer(body, status)
      m:script{ { status = status or 201, headers = { ["Content-Type"] = "application/json" }, body = body } }
      return create()
    end

    for _, body in ipairs{ '{"id":"g1","score":NaN}', '{"id":"g1","score":-Infinity}',
      '{"id":"g1","score":Infinity}', '{"id":0x1F}', '{"id":1.}', '{"id":1.e5}', '{"id":01}',
      '{"id":1e400}' } do
      it("a 2xx of " .. body .. " is decode, never a number", function()
        local g, err = answer(body)
        assert.is_nil(g)
        assert.equal("decode", err.kind)
        assert.equal(201, err.status)
        assert.is_false(err.retryable)
        assert.matches("not valid JSON", err.message)
        assert.equal(body, err.body)
      end)
    end

    it("keeps integers beyond 2^53 exact, as strings of their digits", function()
      local g = answer('{"id":12345678901234567890,"n":-9007199254740993,'
        .. '"list":[18446744073709551616,1],"m":9007199254740992,"f":1.5}')
      assert.equal("12345678901234567890", g.id)
      assert.equal("-9007199254740993", g.n)
      assert.equal("18446744073709551616", g.list[1])
      assert.equal(1, g.list[2])
      assert.equal(9007199254740992, g.m)
      assert.is_number(g.m)
      assert.equal(1.5, g.f)
    end)

    it("leaves strings that look like numbers alone", function()
      local g = answer([[{"id":"x\\","name":"1. 12345678901234567890 \"0x1F\\","v":2}]])
      assert.equal([[x\]], g.id)
      assert.equal([[1. 12345678901234567890 "0x1F\]], g.name)
      assert.equal(2, g.v)
    end)

    it("an error envelope that is not strict JSON is kept as the body text", function()
      local body = '{"statusCode":500,"message":NaN}'
      m:script{ { status = 500, headers = { ["Content-Type"] = "application/json" }, body = body } }
      local _, err = create(nil, { idempotency_key = false })
      assert.equal("http", err.kind)
      assert.equal(body, err.body)
      assert.equal("HTTP 500 Internal Server Error", err.message)
    end)

    it("an error envelope keeps big integers exact", function()
      m:script{ { status = 422, headers = { ["Content-Type"] = "application/json" },
        body = '{"statusCode":422,"message":"taken","raw_response":{"id":98765432109876543210}}' } }
      local _, err = create()
      assert.equal("taken", err.message)
      assert.equal("98765432109876543210", err.body.raw_response.id)
      assert.equal(422, err.body.statusCode)
    end)
  end)
end)
