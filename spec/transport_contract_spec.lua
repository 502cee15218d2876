-- spec/transport_contract_spec.lua: the transport contract (README
-- "Transports") seen from the public API. A transport written here, a table
-- with a `request` method, is handed to truto.new{ transport = t }; the spec
-- checks what `request` receives for client.groups.create and what each
-- thing it may return becomes: an answer a group, each failure kind the
-- documented error, retried or not by what `sent` says.
local truto = require "truto"
local cjson = require "cjson"

local ACCOUNT = "62f44730-dd91-461e-bd6a-aedd9e0ad79d"
local BASE = "https://truto.example"
local PATH = "/unified/user-directory/groups"

local GROUP = '{"id":"g1","name":"Eng","group_type":"team","created_at":"2026-01-01T00:00:00Z"}'

-- A transport that returns `script`'s entries in turn (each a list of the
-- values `request` returns) and keeps a copy of every req it got.
local function scripted(script)
  local t = { seen = {}, closed = 0 }
  function t.request(self, req)
    local copy = {}
    for k, v in pairs(req) do copy[k] = v end
    copy.headers = {}
    for i, line in ipairs(req.headers) do copy.headers[i] = line end
    self.seen[#self.seen + 1] = copy
    local step = assert(script[#self.seen], "the transport was called more often than scripted")
    return (table.unpack or unpack)(step, 1, step.n or #step)
  end
  function t.close(self) self.closed = self.closed + 1 end
  return t
end

local function client_with(t, extra)
  local config = { token = "contract-token", base_url = BASE, transport = t,
    sleep = function() end, retry_base = 0.001 }
  for k, v in pairs(extra or {}) do config[k] = v end
  return assert(truto.new(config))
end

local function header(req, name)
  for _, line in ipairs(req.headers) do
    local n, v = line:match("^([^:]+):%s*(.*)$")
    if n and n:lower() == name:lower() then return v end
  end
end

local QUERY = { integrated_account_id = ACCOUNT, group_type = "team" }
local CREATED = { 201, { ["content-type"] = "application/json" }, GROUP }

describe("a custom transport (the transport contract)", function()
  it("is accepted by truto.new as a table with a request method, and used for the call", function()
    local t = scripted { CREATED }
    local client = client_with(t)
    assert.are.equal(t, client.transport)
    assert.is_truthy(client.groups.create({ name = "Eng" }, QUERY))
    assert.are.equal(1, #t.seen)
  end)

  it("is refused by truto.new when it has no request method", function()
    local client, err = truto.new{ token = "x", transport = { send = function() end } }
    assert.is_nil(client)
    assert.are.equal("invalid_argument", err.kind)
    assert.are.equal("transport", err.field)
  end)

  it("gets a request of its own: what it writes into req cannot reach the call", function()
    local GROUP_ANSWER = { ["content-type"] = "application/json" }
    local attempts, tables = 0, {}
    local t = {}
    function t.request(_, req)
      attempts = attempts + 1
      tables[attempts] = req
      -- a transport's own bookkeeping, under names the client also uses
      req.attempts, req.started, req.o, req.op, req.key, req.limits = "x", "x", false, 5, "k", {}
      if attempts == 1 then return nil, "network", "reset", true end
      return 201, GROUP_ANSWER, GROUP
    end
    local client = client_with(t)
    local group, meta = client.groups.create({ name = "Eng" }, QUERY, { idempotency_key = "own-1" })
    assert.is_truthy(group, tostring(meta))
    assert.are.equal("g1", group.id)
    assert.are.equal(2, meta.attempts)
    assert.are.equal("own-1", meta.idempotency_key)
    assert.are.equal("number", type(meta.elapsed))
    assert.are.equal(tables[1], tables[2]) -- one table per call, its limits renewed
    assert.are.equal("number", type(tables[2].timeout))
  end)

  it("receives method, url, header lines, the JSON body and the attempt's limits", function()
    local t = scripted { CREATED }
    local client = client_with(t, { user_agent = "contract/1" })
    assert.is_truthy(client.groups.create({ name = "Eng", description = "d" }, QUERY,
      { idempotency_key = "k-1", timeout = 7, connect_timeout = 2, stall_timeout = 3,
        max_response_bytes = 4096, headers = { ["X-Trace"] = "abc" } }))
    local req = t.seen[1]
    assert.are.equal("POST", req.method)
    local path, query = req.url:match("^" .. BASE:gsub("%p", "%%%0") .. "(/[^?]*)%?(.*)$")
    assert.are.equal(PATH, path)
    assert.is_truthy(query:find("integrated_account_id=" .. ACCOUNT, 1, true))
    assert.is_truthy(query:find("group_type=team", 1, true))
    assert.are.equal("Bearer contract-token", header(req, "Authorization"))
    assert.are.equal("application/json", header(req, "Content-Type"))
    assert.are.equal("application/json", header(req, "Accept"))
    assert.is_truthy(header(req, "User-Agent"):find("^truto%-lua/.* contract/1$"))
    assert.are.equal("k-1", header(req, "Idempotency-Key"))
    assert.are.equal("abc", header(req, "X-Trace"))
    for _, line in ipairs(req.headers) do
      assert.is_truthy(line:match("^[%w-]+: [^\r\n]*$"), line) -- "Name: value", no CR/LF
    end
    assert.are.same({ name = "Eng", description = "d" }, cjson.decode(req.body))
    assert.are.equal(7, req.timeout)
    assert.are.equal(2, req.connect_timeout)
    assert.are.equal(3, req.stall_timeout)
    assert.are.equal(4096, req.max_response_bytes)
    assert.is_false(req.follow_redirects)
    assert.is_nil(req.sink)
  end)

  it("receives a timeout cut to what is left of the deadline", function()
    local t = scripted { CREATED }
    local client = client_with(t)
    assert.is_truthy(client.groups.create({ name = "Eng" }, QUERY, { timeout = 30, deadline = 2 }))
    assert.is_true(t.seen[1].timeout <= 2 and t.seen[1].timeout > 1)
    assert.is_true(t.seen[1].connect_timeout <= 2)
  end)

  it("receives a sink for a stream, and what it hands the sink is the body", function()
    local t = {}
    function t.request(_, req)
      req.sink(GROUP:sub(1, 10))
      req.sink(GROUP:sub(11))
      return 201, { ["content-type"] = "application/json" }, ""
    end
    local client = client_with(t)
    local got = {}
    local value = client.groups.create({ name = "Eng" },
      { integrated_account_id = ACCOUNT, group_type = "team", truto_response_format = "stream" },
      { sink = function(chunk) got[#got + 1] = chunk end })
    assert.is_truthy(value)
    assert.are.equal(GROUP, table.concat(got))
  end)

  it("turns an answer (status, lower-case headers, body) into a group and meta", function()
    local t = scripted { { 201, { ["content-type"] = "application/json", ["x-request-id"] = "r1" }, GROUP } }
    local client = client_with(t)
    local group, meta = client.groups.create({ name = "Eng" }, QUERY, { idempotency_key = "k-2" })
    assert.are.equal("g1", group.id)
    assert.are.equal("Eng", group.name)
    assert.are.equal(201, meta.status)
    assert.are.equal("r1", meta.headers["x-request-id"])
    assert.are.equal(1, meta.attempts)
    assert.are.equal("k-2", meta.idempotency_key)
  end)

  it("turns an error answer into an http error with its status", function()
    local t = scripted { { 422, { ["content-type"] = "application/json" },
      '{"statusCode":422,"error":"Unprocessable Entity","message":"name is taken"}' } }
    local group, err = client_with(t).groups.create({ name = "Eng" }, QUERY)
    assert.is_nil(group)
    assert.are.equal("http", err.kind)
    assert.are.equal(422, err.status)
    assert.is_false(err.retryable)
  end)

  it("retries a connect failure that was not sent, even without an Idempotency-Key", function()
    local t = scripted { { nil, "connect", "refused", false, n = 4 }, CREATED }
    local group, meta = client_with(t).groups.create({ name = "Eng" }, QUERY, { idempotency_key = false })
    assert.is_truthy(group)
    assert.are.equal(2, meta.attempts)
    assert.is_nil(header(t.seen[1], "Idempotency-Key"))
  end)

  it("does not retry a timeout after the request was sent without an Idempotency-Key", function()
    local t = scripted { { nil, "timeout", "no answer", true, "timeout", n = 5 } }
    local group, err = client_with(t).groups.create({ name = "Eng" }, QUERY,
      { idempotency_key = false, timeout = 4 })
    assert.is_nil(group)
    assert.are.equal("timeout", err.kind)
    assert.are.equal("timeout", err.timeout)
    assert.is_truthy(err.message:find("timeout = 4s", 1, true))
    assert.is_truthy(err.message:find("no answer", 1, true))
    assert.are.equal(1, err.attempts)
    assert.is_false(err.retryable)
    assert.are.equal(1, #t.seen)
  end)

  it("retries a timeout after the request was sent when it carries an Idempotency-Key", function()
    local t = scripted { { nil, "timeout", "no answer", true, "timeout", n = 5 }, CREATED }
    local group, meta = client_with(t).groups.create({ name = "Eng" }, QUERY, { idempotency_key = "k-3" })
    assert.is_truthy(group)
    assert.are.equal(2, meta.attempts)
    assert.are.equal("k-3", header(t.seen[2], "Idempotency-Key"))
  end)

  it("names the limit the transport says fired: connect_timeout and stall_timeout", function()
    for _, which in ipairs { "connect_timeout", "stall_timeout" } do
      local t = scripted { { nil, "timeout", "slow", which == "stall_timeout", which, n = 5 } }
      local _, err = client_with(t, { max_retries = 0 }).groups.create({ name = "Eng" }, QUERY,
        { stall_timeout = 5 })
      assert.are.equal("timeout", err.kind)
      assert.are.equal(which, err.timeout)
    end
  end)

  it("never retries a tls failure, and says how to trust a private CA", function()
    local t = scripted { { nil, "tls", "certificate verify failed", false, n = 4 } }
    local _, err = client_with(t).groups.create({ name = "Eng" }, QUERY)
    assert.are.equal("tls", err.kind)
    assert.is_truthy(err.message:find("certificate verify failed", 1, true))
    assert.is_truthy(err.message:find("ca_file", 1, true))
    assert.is_false(err.retryable)
    assert.are.equal(1, #t.seen)
  end)

  it("retries a network failure after sending only with an Idempotency-Key", function()
    local keyed = scripted { { nil, "network", "reset", true, n = 4 }, CREATED }
    assert.is_truthy(client_with(keyed).groups.create({ name = "Eng" }, QUERY))
    assert.are.equal(2, #keyed.seen)
    local keyless = scripted { { nil, "network", "reset", true, n = 4 } }
    local _, err = client_with(keyless).groups.create({ name = "Eng" }, QUERY, { idempotency_key = false })
    assert.are.equal("network", err.kind)
    assert.is_false(err.retryable)
    assert.are.equal(1, #keyless.seen)
  end)

  it("never retries too_large", function()
    local t = scripted { { nil, "too_large", "over max_response_bytes", true, n = 4 } }
    local _, err = client_with(t).groups.create({ name = "Eng" }, QUERY)
    assert.are.equal("too_large", err.kind)
    assert.is_false(err.retryable)
  end)

  it("never lets the token into an error, whatever the transport's message says", function()
    local t = scripted { { nil, "network", "echo Bearer contract-token", true, n = 4 } }
    local _, err = client_with(t, { max_retries = 0 }).groups.create({ name = "Eng" }, QUERY)
    assert.is_nil(err.message:find("contract-token", 1, true))
    assert.is_nil(tostring(err):find("contract-token", 1, true))
  end)

  it("has close called once when the client is closed", function()
    local t = scripted {}
    local client = client_with(t)
    client:close()
    client:close()
    assert.are.equal(1, t.closed)
  end)
end)
