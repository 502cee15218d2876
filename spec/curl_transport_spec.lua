-- The libcurl transport where a caller, a server or the client's own
-- callbacks push it: closing or re-entering a client from inside its own
-- call, the one response-header limit, redirects that fail or loop, and
-- requests without a body on the bare handle (core.curl). Against the mock;
-- the cases that crashed the process once run in a child interpreter, so a
-- regression fails one spec instead of the whole run.
local truto = require "truto"
local core = require "truto.core"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"
local socket = require "socket"

local CLOSE_REFUSED = "cannot close a truto client during one of its own calls"
local REENTRY_REFUSED = "cannot use a truto client inside one of its own calls"

describe("the curl transport", function()
  local m, sleeps

  local function new_client(extra)
    local config = {
      token = m.token, base_url = m.url, integrated_account_id = m.accounts.coupa,
      retry_base = 0.01, sleep = function(s) sleeps[#sleeps + 1] = s end,
    }
    for k, v in pairs(extra or {}) do config[k] = v end
    return assert(truto.new(config))
  end

  -- Runs `code` in a child interpreter that has this tree and the mock's
  -- address (MOCK_URL, MOCK_TOKEN, MOCK_ACCOUNT); returns its output and
  -- whether it exited 0.
  local function child(code, env)
    local all = { MOCK_URL = m.url, MOCK_TOKEN = m.token, MOCK_ACCOUNT = m.accounts.coupa,
      LUA_PATH = os.getenv("LUA_PATH"), LUA_CPATH = os.getenv("LUA_CPATH") }
    for k, v in pairs(env or {}) do all[k] = v end
    return h.run_lua(code, all)
  end

  -- A port nothing listens on.
  local function closed_port()
    local probe = assert(socket.bind("127.0.0.1", 0))
    local _, port = probe:getsockname()
    probe:close()
    return port
  end

  setup(function() m = mock.start() end)
  teardown(function() if m then m:stop() end end)
  before_each(function()
    m:reset()
    sleeps = {}
  end)

  describe("closing a client during one of its own calls", function()
    it("refuses close() from the client's own sink with a clear error; the stream still ends whole", function()
      local out, ok = child([[
        local truto = require "truto"
        local c = assert(truto.new{ token = os.getenv("MOCK_TOKEN"), base_url = os.getenv("MOCK_URL"),
          integrated_account_id = os.getenv("MOCK_ACCOUNT") })
        local chunks, refused = {}, nil
        local done, meta = c.groups.create({ name = "Sunk" }, { truto_response_format = "stream" },
          { sink = function(chunk)
              chunks[#chunks + 1] = chunk
              local closed, why = pcall(c.close, c)
              assert(not closed, "close() went through inside the sink")
              refused = why
            end })
        assert(done == true, tostring(meta))
        assert(table.concat(chunks):find('"name":"Sunk"', 1, true), table.concat(chunks))
        assert(c.closed == false, "the refused close marked the client closed")
        assert(c.groups.create{ name = "After" }, "the client is not usable after the refusal")
        c:close()
        assert(c.closed == true)
        io.write(#chunks, " ", refused)
      ]])
      assert.is_true(ok, out)
      assert.matches("^%d+ .*" .. CLOSE_REFUSED, out)
      assert.equal(2, #m:requests())
    end)

    it("raises that error out of the call when the sink lets it through", function()
      local out, ok = child([[
        local truto = require "truto"
        local c = assert(truto.new{ token = os.getenv("MOCK_TOKEN"), base_url = os.getenv("MOCK_URL"),
          integrated_account_id = os.getenv("MOCK_ACCOUNT") })
        local raised, why = pcall(c.groups.create, { name = "Sunk" }, { truto_response_format = "stream" },
          { sink = function() c:close() end })
        assert(not raised, "the call succeeded")
        assert(c.groups.create{ name = "After" }, "the client is not usable after the refusal")
        c:close()
        io.write(why)
      ]])
      assert.is_true(ok, out)
      assert.matches(CLOSE_REFUSED, out, 1, true)
    end)

    it("refuses truto.reset() from the sink of a default-client call", function()
      local out, ok = child([[
        local truto = require "truto"
        local refused
        local done, meta = truto.groups.create({ name = "Sunk" }, { truto_response_format = "stream" },
          { sink = function()
              local reset, why = pcall(truto.reset)
              assert(not reset, "truto.reset() went through inside the sink")
              refused = why
            end })
        assert(done == true, tostring(meta))
        assert(truto.groups.create{ name = "After" }, "the default client is not usable after the refusal")
        truto.reset()
        io.write(refused)
      ]], { TRUTO_API_TOKEN = m.token, TRUTO_BASE_URL = m.url,
        TRUTO_INTEGRATED_ACCOUNT_ID = m.accounts.coupa })
      assert.is_true(ok, out)
      assert.matches(CLOSE_REFUSED, out, 1, true)
    end)

    for _, callback in ipairs{ "on_result", "on_progress" } do
      for _, concurrency in ipairs{ 1, 3 } do
        it("lets create_many's " .. callback .. " close the client (concurrency " .. concurrency
          .. "): no crash, the batch stops with a clear error", function()
          local out, ok = child([[
            local truto = require "truto"
            local c = assert(truto.new{ token = os.getenv("MOCK_TOKEN"), base_url = os.getenv("MOCK_URL"),
              integrated_account_id = os.getenv("MOCK_ACCOUNT") })
            local items = {}
            for i = 1, 6 do items[i] = { name = "b" .. i } end
            local options = { concurrency = tonumber(os.getenv("CONCURRENCY")) }
            options[os.getenv("CALLBACK")] = function() c:close() end
            local finished, why = pcall(c.groups.create_many, items, nil, options)
            assert(not finished, "create_many went on with a closed client")
            assert(c.closed == true)
            collectgarbage("collect")
            io.write(why)
          ]], { CALLBACK = callback, CONCURRENCY = tostring(concurrency) })
          assert.is_true(ok, out)
          assert.matches("attempt to use a closed truto client", out, 1, true)
          -- nothing new started once it was closed
          assert.is_true(#m:requests() <= concurrency, tostring(#m:requests()))
        end)
      end
    end
  end)

  describe("re-entering a client from its own sink", function()
    it("refuses the inner call with a clear error, and the outer call fails with it (never a cut stream)", function()
      local c = new_client()
      local chunks = {}
      local ok, why = pcall(c.groups.create, { name = "Outer" }, { truto_response_format = "stream" },
        { sink = function(chunk)
            chunks[#chunks + 1] = chunk
            c.groups.create{ name = "Inner" }
          end })
      assert.is_false(ok)
      assert.matches(REENTRY_REFUSED, why, 1, true)
      assert.equal(1, #chunks)
      -- the inner call never reached the server, and the outer is not retried
      assert.equal(1, #m:requests())
      assert.is_table((c.groups.create{ name = "After" }))
      c:close()
    end)

    it("leaves the outer stream whole when the sink catches the refusal", function()
      local c = new_client()
      local chunks, refusals = {}, {}
      local done, meta = c.groups.create({ name = "Outer" }, { truto_response_format = "stream" },
        { sink = function(chunk)
            chunks[#chunks + 1] = chunk
            local ok, why = pcall(c.groups.create, { name = "Inner" })
            assert(not ok)
            refusals[#refusals + 1] = why
          end })
      assert.is_true(done, tostring(meta))
      assert.is_true(#chunks >= 2)
      assert.equal(#chunks, #refusals)
      assert.matches(REENTRY_REFUSED, refusals[1], 1, true)
      local group = h.decode(table.concat(chunks))
      assert.equal("Outer", group.name)
      assert.equal(1, #m:requests())
      c:close()
    end)

    it("lets another client create from inside the sink", function()
      local c, other = new_client(), new_client()
      local chunks, inner = {}, {}
      local done, meta = c.groups.create({ name = "Outer" }, { truto_response_format = "stream" },
        { sink = function(chunk)
            chunks[#chunks + 1] = chunk
            inner[#inner + 1] = assert(other.groups.create{ name = "Inner " .. #chunks })
          end })
      assert.is_true(done, tostring(meta))
      assert.equal("Outer", h.decode(table.concat(chunks)).name)
      assert.equal(#chunks, #inner)
      assert.equal("Inner 1", inner[1].name)
      assert.equal(1 + #chunks, m:stats().created)
      other:close()
      c:close()
    end)
  end)

  describe("redirects", function()
    local function redirect(status, location)
      return { status = status, body = "", headers = { Location = location } }
    end

    it("counts a delivered hop as sent: a 303 to an unreachable Location is not retried without a key", function()
      local c = new_client{ follow_redirects = true }
      m:script{ redirect(303, "http://127.0.0.1:" .. closed_port() .. "/elsewhere") }
      local group, err = c.groups.create({ name = "x" }, nil, { idempotency_key = false })
      c:close()
      assert.is_nil(group)
      assert.equal("connect", err.kind)
      assert.matches("following a redirect", err.message, 1, true)
      assert.equal(1, err.attempts)
      assert.is_false(err.retryable)
      assert.equal(1, #m:requests())
      assert.equal(0, #sleeps)
    end)

    it("with a key, retries that failure (the key makes a repeat a replay)", function()
      local c = new_client{ follow_redirects = true, max_retries = 1 }
      local away = redirect(303, "http://127.0.0.1:" .. closed_port() .. "/elsewhere")
      m:script{ away, away }
      local group, err = c.groups.create({ name = "x" })
      c:close()
      assert.is_nil(group)
      assert.equal("connect", err.kind)
      assert.equal(2, err.attempts)
      assert.equal(2, #m:requests())
    end)

    it("gives the last 3xx of a redirect loop as an http error, never retried", function()
      local c = new_client{ follow_redirects = true }
      local here = m.url .. "/unified/user-directory/groups?integrated_account_id=" .. m.accounts.coupa
      local loop = {}
      for i = 1, 8 do loop[i] = redirect(302, here) end
      m:script(loop)
      local group, err = c.groups.create({ name = "x" })
      c:close()
      assert.is_nil(group)
      assert.equal("http", err.kind)
      assert.equal(302, err.status)
      assert.equal(here, err.headers.location)
      assert.equal(1, err.attempts)
      assert.is_false(err.retryable)
      assert.equal(0, #sleeps)
      assert.equal(6, #m:requests()) -- the request and the 5 redirects followed
    end)

    it("gives the same http error for a redirect loop inside create_many", function()
      local c = new_client{ follow_redirects = true }
      local here = m.url .. "/unified/user-directory/groups?integrated_account_id=" .. m.accounts.coupa
      local loop = {}
      for i = 1, 6 do loop[i] = redirect(307, here) end
      m:script(loop)
      local results = c.groups.create_many({ { name = "x" } }, nil, { concurrency = 1 })
      c:close()
      local err = results[1].err
      assert.is_table(err)
      assert.equal("http", err.kind)
      assert.equal(307, err.status)
      assert.equal(1, err.attempts)
      assert.equal(6, #m:requests())
    end)
  end)

  describe("the response-header limit (256 KiB, 1xx answers included)", function()
    local LIMIT = 256 * 1024

    -- Header lines of `line` value bytes each, `total` bytes or just over.
    local function padding(total, line)
      local lines, n = {}, 0
      while n < total do
        local l = ("X-Pad-%d: %s\r\n"):format(#lines + 1, ("a"):rep(line))
        lines[#lines + 1] = l
        n = n + #l
      end
      return table.concat(lines)
    end

    local function answer(head_bytes, line)
      return "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
        .. padding(head_bytes, line or 1000) .. "Content-Length: 13\r\n\r\n" .. '{"id":"1001"}'
    end

    local function assert_too_large(err)
      assert.is_table(err)
      assert.equal("too_large", err.kind)
      assert.equal(1, err.attempts)
      assert.is_false(err.retryable)
      assert.equal(1, #m:requests())
      assert.equal(0, #sleeps)
    end

    -- One create against a server that answers `raw` (twice, so a retry
    -- would find it too); returns what the create returned.
    local function create_against(raw)
      local c = new_client()
      m:script{ { raw = raw }, { raw = raw } }
      local group, err = c.groups.create({ name = "x" })
      c:close()
      return group, err
    end

    it("accepts a 2xx with headers just under it", function()
      local c = new_client()
      m:script{ { raw = answer(LIMIT - 4096) } }
      local group, meta = c.groups.create({ name = "x" })
      c:close()
      assert.is_table(group, tostring(meta))
      assert.equal("1001", group.id)
    end)

    it("refuses a 2xx with 300 KB of headers as too_large, never retried", function()
      local group, err = create_against(answer(300 * 1000))
      assert.is_nil(group)
      assert_too_large(err)
      assert.matches("262144 bytes", err.message, 1, true)
    end)

    it("counts the headers of a 100 Continue before the answer", function()
      local group, err = create_against("HTTP/1.1 100 Continue\r\n" .. padding(140 * 1024, 1000) .. "\r\n"
        .. answer(140 * 1024))
      assert.is_nil(group)
      assert_too_large(err)
    end)

    it("counts endless small 1xx answers", function()
      local interim = "HTTP/1.1 102 Processing\r\n" .. padding(4000, 100) .. "\r\n"
      local group, err = create_against(interim:rep(70) .. answer(100))
      assert.is_nil(group)
      assert_too_large(err)
    end)

    it("refuses one header line over libcurl's 100 KiB as too_large too", function()
      local group, err = create_against(answer(150 * 1024, 150 * 1024))
      assert.is_nil(group)
      assert_too_large(err)
    end)

    it("applies the same limit in create_many", function()
      local c = new_client()
      m:script{ { raw = answer(300 * 1000) }, { raw = answer(300 * 1000) } }
      local results = c.groups.create_many({ { name = "x" } })
      c:close()
      assert_too_large(results[1].err)
    end)
  end)

  -- Without a proxy or redirects to follow, libcurl is given the origin
  -- and the path and query apart (CURLOPT_REQUEST_TARGET): the request
  -- must be the one the whole URL would make.
  describe("the request target, on the bare handle", function()
    local function sent(config, url, follow)
      local handle = core.curl(config)
      local status = handle:request{ method = "GET", url = url, headers = { "Accept: application/json" },
        timeout = 10, connect_timeout = 5, follow_redirects = follow }
      handle:close()
      assert.is_number(status)
      return m:last()
    end
    local host -- the mock's host:port, known once it runs
    before_each(function() host = m.url:match("^https?://([^/]+)") end)

    it("sends the path and query as given, with the URL's Host, under a base path", function()
      local r = sent({}, m.url .. "/prefix/things/7?x=1&y=%20%2F&z%5B%5D=a")
      assert.equal("GET /prefix/things/7?x=1&y=%20%2F&z%5B%5D=a HTTP/1.1", r.request_line)
      assert.equal(host, r.headers.host)
    end)

    it("sends the same request line when following redirects (libcurl is given the whole URL)", function()
      local r = sent({}, m.url .. "/prefix/things/7?x=1&y=%20", true)
      assert.equal("GET /prefix/things/7?x=1&y=%20 HTTP/1.1", r.request_line)
      assert.equal(host, r.headers.host)
    end)

    it("sends the absolute form to a proxy", function()
      local r = sent({ proxy = m.url }, "http://example.invalid/things/7?x=1")
      assert.equal("GET http://example.invalid/things/7?x=1 HTTP/1.1", r.request_line)
      assert.equal("example.invalid", r.headers.host)
    end)

    it("switches between the two on one handle", function()
      local handle = core.curl{}
      for _, follow in ipairs{ false, true, false } do
        assert.is_number(handle:request{ method = "GET", url = m.url .. "/a/b?c=" .. tostring(follow),
          headers = { "Accept: application/json" }, timeout = 10, connect_timeout = 5, follow_redirects = follow })
        assert.equal("GET /a/b?c=" .. tostring(follow) .. " HTTP/1.1", m:last().request_line)
      end
      handle:close()
    end)
  end)

  describe("requests without a body, on the bare handle", function()
    local handle
    before_each(function() handle = core.curl{} end)
    after_each(function() handle:close() end)

    local function send(method, body)
      return handle:request{ method = method, url = m.url .. "/things/7?x=1",
        headers = { "Accept: application/json" }, body = body, timeout = 10, connect_timeout = 5 }
    end

    for _, method in ipairs{ "GET", "DELETE" } do
      it("sends a " .. method .. " with a nil body without body, Content-Length or Content-Type", function()
        local status = send(method, nil)
        assert.is_number(status)
        local r = m:last()
        assert.equal(method, r.method)
        assert.equal(method .. " /things/7?x=1 HTTP/1.1", r.request_line)
        assert.equal("", r.body)
        assert.is_nil(r.headers["content-length"])
        assert.is_nil(r.headers["content-type"])
        assert.is_nil(r.headers["transfer-encoding"])
        assert.is_nil(r.raw_header:lower():find("content%-length"))
      end)
    end

    it("sends a PATCH's body as a POST's is sent", function()
      assert.is_number((send("PATCH", '{"name":"p"}')))
      local r = m:last()
      assert.equal("PATCH", r.method)
      assert.equal('{"name":"p"}', r.body)
      assert.equal("12", r.headers["content-length"])
    end)

    it("switches between methods with and without a body on one handle", function()
      assert.is_number((send("GET", nil)))
      assert.is_number((send("POST", '{"a":1}')))
      assert.is_number((send("DELETE", nil)))
      assert.is_number((send("POST", "")))
      local rs = m:requests()
      assert.same({ "GET", "POST", "DELETE", "POST" },
        { rs[1].method, rs[2].method, rs[3].method, rs[4].method })
      assert.equal('{"a":1}', rs[2].body)
      assert.equal("7", rs[2].headers["content-length"])
      assert.is_nil(rs[3].headers["content-length"])
      assert.equal("0", rs[4].headers["content-length"])
    end)

    for _, method in ipairs{ "GET", "DELETE" } do
      it("never lets libcurl re-send a " .. method .. " when a reused connection dies with no answer", function()
        assert.is_number((send(method, nil))) -- warms the keep-alive connection
        m:reset()
        m:script{ { reset = true } }
        local status, kind, _, sent = send(method, nil)
        assert.is_nil(status)
        assert.equal("network", kind)
        assert.is_true(sent)
        assert.equal(1, #m:requests())
      end)
    end
  end)

  describe("a request table the bare handles refuse", function()
    local function refusal(req)
      local handle = core.curl{}
      local ok, err = pcall(handle.request, handle, req)
      handle:close()
      assert.is_false(ok)
      return tostring(err)
    end
    local function valid(extra)
      local req = { method = "GET", url = m.url .. "/things/7", headers = {} }
      for k, v in pairs(extra) do req[k] = v end
      return req
    end

    it("names the field of the wrong type, and sends nothing", function()
      m:reset()
      assert.matches("request.method: expected a string, got boolean", refusal(valid{ method = false }), 1, true)
      assert.matches("request.url: expected a string, got number", refusal(valid{ url = 7 }), 1, true)
      assert.matches("request.headers: expected an array of header lines, got string",
        refusal(valid{ headers = "Accept: x" }), 1, true)
      assert.matches("request.headers[2]: expected a header line", refusal(valid{ headers = { "A: b", 3 } }), 1, true)
      assert.matches("request.body: expected a string, got table", refusal(valid{ body = {} }), 1, true)
      assert.matches("request.timeout: expected a number, got string", refusal(valid{ timeout = "5" }), 1, true)
      assert.matches("request.sink: expected a function, got boolean", refusal(valid{ sink = true }), 1, true)
      assert.equal(0, #m:requests())
    end)

    it("refuses anything but a table, on the single handle and the multi handle", function()
      local handle, multi = core.curl{}, core.multi{}
      assert.is_false((pcall(handle.request, handle, "GET")))
      assert.is_false((pcall(multi.add, multi, 1, "GET", m.url)))
      local ok, err = pcall(multi.add, multi, 1, valid{ max_response_bytes = "big" })
      assert.is_false(ok)
      assert.matches("request.max_response_bytes: expected a number, got string", tostring(err), 1, true)
      handle:close()
      multi:close()
    end)

    it("lets the multi handle run a request table and ignores its sink (no sinks in a batch)", function()
      local multi = core.multi{}
      multi:add(7, valid{ sink = function() error("never called") end, timeout = 10 })
      local out, n = {}, 0
      for _ = 1, 100 do
        n = multi:perform(0.2, out)
        if n > 0 then break end
      end
      multi:close()
      assert.equal(1, n)
      assert.equal(7, out[1])
      assert.is_number(out[2])
    end)
  end)
end)
