-- The fault matrix: every way the mock can misbehave (mock/control.lua's
-- script steps), with and without an Idempotency-Key. For each, the specs
-- assert the exact number of attempts the mock saw, the key every attempt
-- carried (one key per create), the error kind, and that no fault made a
-- second group where it must not (the mock's `created` counter).
-- Waits between attempts go to an injected sleep: nothing waits for real
-- backoffs; only the timeout and stall cases take real (bounded) time.
local truto = require "truto"
local core = require "truto.core"
local mock = require "spec.support.mock"
local socket = require "socket"

local UUID = "^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$"

describe("a create under faults", function()
  local m, client, sleeps, retries

  local function new_client(extra)
    local config = {
      token = m.token, base_url = m.url, integrated_account_id = m.accounts.coupa,
      retry_base = 0.05, retry_cap = 10,
      sleep = function(s) sleeps[#sleeps + 1] = s end,
      on_retry = function(info) retries[#retries + 1] = info end,
    }
    for k, v in pairs(extra or {}) do config[k] = v end
    return assert(truto.new(config))
  end

  local function create(options)
    return client.groups.create({ name = "Platform" }, nil, options)
  end

  -- The keys every recorded request carried (false for none).
  local function keys()
    local out = {}
    for i, r in ipairs(m:requests()) do out[i] = r.idempotency_key or false end
    return out
  end

  -- Asserts the mock saw `n` requests, all with the same UUID key (or with
  -- none when keyed is false), and returns that key.
  local function assert_attempts(n, keyed)
    local seen = keys()
    assert.equal(n, #seen)
    for i = 1, n do
      if keyed == false then
        assert.is_false(seen[i])
      else
        assert.matches(UUID, seen[i])
        assert.equal(seen[1], seen[i])
      end
    end
    return seen[1]
  end

  setup(function() m = mock.start() end)
  teardown(function() if m then m:stop() end end)
  before_each(function()
    m:reset()
    sleeps, retries = {}, {}
    client = new_client()
  end)
  after_each(function() client:close() end)

  describe("with an Idempotency-Key (the default)", function()
    for _, status in ipairs{ 500, 502, 504 } do
      it("retries a " .. status .. " with the same key and creates one group", function()
        m:script{ { status = status } }
        local group, meta = create()
        assert.is_table(group, tostring(meta))
        assert.equal(2, meta.attempts)
        assert.equal(meta.idempotency_key, assert_attempts(2))
        assert.equal(1, m:stats().created)
        assert.equal(1, #retries)
        assert.equal(1, retries[1].attempt)
        assert.equal("http " .. status, retries[1].reason)
        assert.equal(retries[1].wait, sleeps[1])
      end)
    end

    it("gets the first answer replayed when the server created the group but answered 500", function()
      m:script{ { status = 500, create = true } }
      local group, meta = create()
      assert.is_table(group, tostring(meta))
      assert.equal(2, meta.attempts)
      assert_attempts(2)
      local rs = m:requests()
      assert.equal(rs[1].created, group.id)
      assert.is_true(rs[2].replayed)
      assert.equal(1, m:stats().created)
    end)

    it("gives up after max_retries retries with the last error and attempts = 4", function()
      m:script{ { status = 502 }, { status = 502 }, { status = 502 }, { status = 502 }, { status = 502 } }
      local group, err = create()
      assert.is_nil(group)
      assert.equal("http", err.kind)
      assert.equal(502, err.status)
      assert.equal(4, err.attempts)
      assert.is_true(err.retryable)
      assert_attempts(4)
      assert.equal(0, m:stats().created)
      assert.equal(3, #retries)
      for i = 1, 3 do assert.equal(i, retries[i].attempt) end
      assert.equal(3, #sleeps)
      assert.matches("after 4 attempts", tostring(err))
    end)

    for _, status in ipairs{ 400, 401, 403, 404, 405, 409, 422, 503 } do
      it("never retries a " .. status, function()
        m:script{ { status = status } }
        local group, err = create()
        assert.is_nil(group)
        assert.equal("http", err.kind)
        assert.equal(status, err.status)
        assert.equal(1, err.attempts)
        assert.is_false(err.retryable)
        assert_attempts(1)
        assert.equal(0, #sleeps)
        assert.equal(0, #retries)
        assert.equal(0, m:stats().created)
      end)
    end

    it("retries a connection reset before any answer; the replay keeps it to one group", function()
      m:script{ { reset = true, create = true } }
      local group, meta = create()
      assert.is_table(group, tostring(meta))
      assert.equal(2, meta.attempts)
      assert_attempts(2)
      assert.equal("network", retries[1].reason)
      assert.equal(1, m:stats().created)
    end)

    it("retries an answer cut short after some bytes, creating one group", function()
      m:script{ { close_after = 10, create = true } }
      local group, meta = create()
      assert.is_table(group, tostring(meta))
      assert.equal(2, meta.attempts)
      assert_attempts(2)
      assert.equal("network", retries[1].reason)
      assert.equal(1, m:stats().created)
    end)

    it("retries an answer that is not HTTP at all", function()
      m:script{ { raw = "garbage\r\n\r\n" } }
      local group, meta = create()
      assert.is_table(group, tostring(meta))
      assert.equal(2, meta.attempts)
      assert_attempts(2)
      assert.equal("network", retries[1].reason)
      assert.equal(1, m:stats().created)
    end)

    it("retries a load balancer's HTML 502 page", function()
      m:script{ { html = true, status = 502 } }
      local group, meta = create()
      assert.is_table(group, tostring(meta))
      assert.equal(2, meta.attempts)
      assert_attempts(2)
      assert.equal(1, m:stats().created)
    end)

    it("retries a timeout after sending; the slow first attempt's group is replayed, not doubled", function()
      m:script{ { delay = 3 } }
      local started = core.now()
      local group, meta = create{ timeout = 0.5 }
      assert.is_table(group, tostring(meta))
      assert.is_true(core.now() - started < 2.5)
      assert.equal(2, meta.attempts)
      assert_attempts(2)
      assert.equal("timeout (timeout)", retries[1].reason)
      assert.equal("timeout", retries[1].err.timeout)
      assert.equal(1, m:stats().created)
    end)

    it("retries a stalled body (stall_timeout) and creates one group", function()
      m:script{ { chunks = 3, chunk_delay = 4 } }
      local started = core.now()
      local group, meta = create{ stall_timeout = 0.5 }
      assert.is_table(group, tostring(meta))
      assert.is_true(core.now() - started < 3.5)
      assert.equal(2, meta.attempts)
      assert_attempts(2)
      assert.equal("timeout (stall_timeout)", retries[1].reason)
      assert.equal(1, m:stats().created)
    end)

    it("does not retry a 2xx answer whose JSON is malformed or truncated", function()
      for _, body in ipairs{ "{not json", '{"id":"1001","name":"Plat' } do
        m:reset()
        m:script{ { status = 201, headers = { ["Content-Type"] = "application/json" }, body = body } }
        local group, err = create()
        assert.is_nil(group)
        assert.equal("decode", err.kind)
        assert.equal(201, err.status)
        assert.equal(body, err.body)
        assert.equal(1, err.attempts)
        assert.is_false(err.retryable)
        assert_attempts(1)
      end
      assert.equal(0, #sleeps)
    end)
  end)

  describe("without an Idempotency-Key (idempotency_key = false)", function()
    for _, status in ipairs{ 500, 502, 504 } do
      it("does not retry a " .. status .. ": the server may have created the group", function()
        m:script{ { status = status, create = true } }
        local group, err = create{ idempotency_key = false }
        assert.is_nil(group)
        assert.equal(status, err.status)
        assert.equal(1, err.attempts)
        assert.is_false(err.retryable)
        assert_attempts(1, false)
        assert.equal(1, m:stats().created)
      end)
    end

    it("still retries a 429: nothing was created", function()
      m:script{ { status = 429, headers = { ["Retry-After"] = "1" } } }
      local group, meta = create{ idempotency_key = false }
      assert.is_table(group, tostring(meta))
      assert.equal(2, meta.attempts)
      assert.is_nil(meta.idempotency_key)
      assert_attempts(2, false)
      assert.same({ 1 }, sleeps)
      assert.equal(1, m:stats().created)
    end)

    for _, case in ipairs{
      { "a reset before any answer", { reset = true, create = true }, "network" },
      { "an answer cut short", { close_after = 10, create = true }, "network" },
      { "a timeout after sending", { delay = 2 }, "timeout" },
    } do
      for _, connection in ipairs{ "a new", "a reused keep-alive" } do
        it("does not retry " .. case[1] .. " on " .. connection
          .. " connection, and the one group made stays one", function()
          if connection ~= "a new" then
            assert.is_table((create{ idempotency_key = false }))
            m:reset()
          end
          m:script{ case[2] }
          local group, err = create{ idempotency_key = false, timeout = 0.5 }
          assert.is_nil(group)
          assert.equal(case[3], err.kind)
          assert.equal(1, err.attempts)
          assert.is_false(err.retryable)
          assert_attempts(1, false)
          assert.equal(1, m:stats().created)
        end)
      end
    end

    it("never lets libcurl re-send on its own when a reused connection dies with no answer", function()
      -- warm the keep-alive connection, then have the server read the next
      -- request, create, and hang up: libcurl would silently POST it again
      assert.is_table((create{ idempotency_key = false }))
      m:reset()
      m:script{ { reset = true, create = true } }
      local group, err = create{ idempotency_key = false }
      assert.is_nil(group)
      assert.equal("network", err.kind)
      assert.equal(1, err.attempts)
      assert_attempts(1, false)
      assert.equal(1, m:stats().created)
      -- and the client is usable afterwards
      assert.is_table((create{ idempotency_key = false }))
    end)

    it("with a key, the same reused-connection death is one counted retry, not a hidden one", function()
      assert.is_table((create()))
      m:reset()
      m:script{ { reset = true, create = true } }
      local group, meta = create()
      assert.is_table(group, tostring(meta))
      assert.equal(2, meta.attempts)
      assert_attempts(2)
      assert.equal(1, m:stats().created)
    end)

    it("retries a refused connection: nothing was sent", function()
      local probe = assert(socket.bind("127.0.0.1", 0))
      local _, port = probe:getsockname()
      probe:close()
      local c = new_client{ base_url = "http://127.0.0.1:" .. port }
      local group, err = c.groups.create({ name = "x" }, nil, { idempotency_key = false })
      c:close()
      assert.is_nil(group)
      assert.equal("connect", err.kind)
      assert.equal(4, err.attempts)
      assert.is_true(err.retryable)
      assert.equal(3, #retries)
      assert.equal("connect", retries[1].reason)
    end)

    it("retries a connect_timeout (a server that never finishes the TLS handshake)", function()
      local silent = assert(socket.bind("127.0.0.1", 0))
      local _, port = silent:getsockname()
      local c = new_client{ base_url = "https://127.0.0.1:" .. port, connect_timeout = 0.3, max_retries = 1 }
      local started = core.now()
      local group, err = c.groups.create({ name = "x" }, nil, { idempotency_key = false })
      local took = core.now() - started
      c:close()
      silent:close()
      assert.is_nil(group)
      assert.equal("timeout", err.kind)
      assert.equal("connect_timeout", err.timeout)
      assert.matches("connect_timeout = 0.3s", err.message)
      assert.equal(2, err.attempts)
      -- two 0.3 s handshakes that never end (the bound above is loose: TLS
      -- set-up reads the CA bundle, slow under valgrind)
      assert.is_true(took >= 0.55 and took < 10, tostring(took))
      assert.equal("timeout (connect_timeout)", retries[1].reason)
    end)
  end)

  describe("429 sequences", function()
    it("waits the seconds Retry-After gives", function()
      m:script{ { status = 429, headers = { ["Retry-After"] = "2" } } }
      local group, meta = create()
      assert.is_table(group, tostring(meta))
      assert.same({ 2 }, sleeps)
      assert.equal("rate_limited 429", retries[1].reason)
      assert_attempts(2)
      assert.equal(1, m:stats().created)
    end)

    for _, form in ipairs{
      { "an IMF-fixdate", "!%a, %d %b %Y %H:%M:%S GMT" },
      { "an RFC 850 date", "!%A, %d-%b-%y %H:%M:%S GMT" },
      { "an asctime date", "!%a %b %e %H:%M:%S %Y" },
    } do
      it("waits until the HTTP date Retry-After gives as " .. form[1], function()
        local date = os.date(form[2], os.time() + 6)
        m:script{ { status = 429, headers = { ["Retry-After"] = date } } }
        local group, meta = create()
        assert.is_table(group, tostring(meta))
        assert.equal(1, #sleeps)
        assert.is_true(sleeps[1] >= 4 and sleeps[1] <= 6, date .. " -> " .. tostring(sleeps[1]))
        assert_attempts(2)
      end)
    end

    it("falls back to ratelimit-reset when there is no Retry-After", function()
      m:script{ { status = 429, headers = { ["ratelimit-reset"] = "3" } } }
      local group, meta = create()
      assert.is_table(group, tostring(meta))
      assert.same({ 3 }, sleeps)
      assert_attempts(2)
    end)

    it("backs off with full jitter when the server says nothing", function()
      m:script{ { status = 429 }, { status = 429 }, { status = 429 } }
      local group, meta = create()
      assert.is_table(group, tostring(meta))
      assert.equal(4, meta.attempts)
      assert_attempts(4)
      -- retry_base = 0.05: waits within [0, 0.05], [0, 0.1], [0, 0.2]
      for i, wait in ipairs(sleeps) do
        assert.is_true(wait >= 0 and wait <= 0.05 * 2 ^ (i - 1), tostring(wait))
      end
      assert.equal(1, m:stats().created)
    end)

    it("ends rate_limited after four 429s, same key on each, no group", function()
      local steps = {}
      for i = 1, 4 do steps[i] = { status = 429, headers = { ["Retry-After"] = "1" } } end
      m:script(steps)
      local group, err = create()
      assert.is_nil(group)
      assert.equal("rate_limited", err.kind)
      assert.equal(4, err.attempts)
      assert.equal(1, err.retry_after)
      assert_attempts(4)
      assert.same({ 1, 1, 1 }, sleeps)
      assert.equal(0, m:stats().created)
    end)

    it("does not wait when Retry-After asks for longer than retry_cap, and says how long", function()
      m:script{ { status = 429, headers = { ["Retry-After"] = "120" } } }
      local group, err = create()
      assert.is_nil(group)
      assert.equal("rate_limited", err.kind)
      assert.equal(120, err.retry_after)
      assert.is_true(err.retryable)
      assert.equal(1, err.attempts)
      assert.equal(0, #sleeps)
      assert_attempts(1)
    end)

    -- issue 18 item 7: a Retry-After past the deadline is said as Truto said it
    it("does not wait past the deadline: rate_limited with the server's retry_after, naming the deadline", function()
      m:script{ { status = 429, headers = { ["Retry-After"] = "5" } } }
      local group, err = create{ deadline = 3, retry_cap = 10 }
      assert.is_nil(group)
      assert.equal("rate_limited", err.kind)
      assert.equal(429, err.status)
      assert.matches("deadline = 3s", err.message)
      assert.equal(1, err.attempts)
      assert.equal(5, err.retry_after)
      assert.equal(0, #sleeps)
      assert_attempts(1)
    end)
  end)

  describe("answers larger than max_response_bytes", function()
    it("refuses one announced by Content-Length without reading it, and is not retried", function()
      m:script{ { size = 200000 } }
      local group, err = create{ max_response_bytes = 1000 }
      assert.is_nil(group)
      assert.equal("too_large", err.kind)
      assert.matches("announces 200000 bytes", err.message)
      assert.matches("max_response_bytes = 1000", err.message)
      assert.equal(1, err.attempts)
      assert.is_false(err.retryable)
      assert_attempts(1)
      -- the dropped connection does not poison the next call
      local again, meta = create()
      assert.is_table(again, tostring(meta))
    end)

    it("drops the connection as soon as a chunked answer passes the cap, not at its end", function()
      -- 2 MB in 20 pieces, 0.5 s apart: reading it all would take 9.5 s
      m:script{ { size = 2000000, chunks = 20, chunk_delay = 0.5 } }
      local started = core.now()
      local group, err = create{ max_response_bytes = 150000 }
      local took = core.now() - started
      assert.is_nil(group)
      assert.equal("too_large", err.kind)
      assert.matches("connection dropped", err.message)
      assert.is_true(took < 5, tostring(took))
      assert_attempts(1)
      local again, meta = create()
      assert.is_table(again, tostring(meta))
    end)
  end)

  describe("TLS", function()
    -- a server with a self-signed certificate for 127.0.0.1 (openssl
    -- s_server: it completes handshakes, then never answers a POST)
    local dir, pid, tls_url

    local function sh(command)
      local p = assert(io.popen(command))
      local out = p:read("*a")
      p:close()
      return (out:gsub("%s+$", ""))
    end

    setup(function()
      dir = sh("mktemp -d /tmp/truto-tls-spec.XXXXXX")
      assert(dir:match("^/tmp/truto%-tls%-spec%."), dir)
      sh("cd " .. dir .. " && openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
        .. " -keyout key.pem -out cert.pem -days 2 -subj '/CN=truto-lua spec CA'"
        .. " -addext subjectAltName=IP:127.0.0.1 2>&1")
      for _ = 1, 5 do
        local probe = assert(socket.bind("127.0.0.1", 0))
        local _, port = probe:getsockname()
        probe:close()
        pid = sh("cd " .. dir .. " && { openssl s_server -quiet -www -accept 127.0.0.1:" .. port
          .. " -cert cert.pem -key key.pem </dev/null >/dev/null 2>&1 & echo $!; }")
        for _ = 1, 100 do
          local c = socket.tcp()
          c:settimeout(0.1)
          local up = c:connect("127.0.0.1", port)
          c:close()
          if up then tls_url = "https://127.0.0.1:" .. port break end
          socket.sleep(0.05)
        end
        if tls_url then break end
        os.execute("kill " .. pid .. " 2>/dev/null")
      end
      assert(tls_url, "openssl s_server did not start")
    end)

    teardown(function()
      if pid then os.execute("kill " .. pid .. " 2>/dev/null") end
      if dir and dir:match("^/tmp/truto%-tls%-spec%.") then os.execute("rm -rf -- " .. dir) end
    end)

    it("verifies certificates by default: an unknown CA is a tls error naming ca_file, not retried", function()
      local c = new_client{ base_url = tls_url }
      local group, err = c.groups.create{ name = "x" }
      c:close()
      assert.is_nil(group)
      assert.equal("tls", err.kind)
      assert.matches("certificate", err.message)
      assert.matches("ca_file", err.message)
      assert.is_nil(err.message:find("insecure", 1, true))
      assert.equal(1, err.attempts)
      assert.is_false(err.retryable)
      assert.equal(0, #retries)
    end)

    it("trusts a private CA given as ca_file (the handshake passes; the answer then times out)", function()
      local c = new_client{ base_url = tls_url, ca_file = dir .. "/cert.pem", timeout = 0.5, max_retries = 0 }
      local _, err = c.groups.create{ name = "x" }
      c:close()
      assert.equal("timeout", err.kind)
      assert.equal("timeout", err.timeout)
    end)

    it("with insecure = true skips verification, and names insecure in every tls error", function()
      local c = new_client{ base_url = tls_url, insecure = true, timeout = 0.5, max_retries = 0 }
      local _, err = c.groups.create{ name = "x" }
      c:close()
      assert.equal("timeout", err.kind)
      local plain = new_client{ base_url = m.url:gsub("^http:", "https:"), insecure = true }
      local _, terr = plain.groups.create{ name = "x" }
      plain:close()
      assert.equal("tls", terr.kind)
      assert.matches("insecure = true is set: certificate verification is off", terr.message, 1, true)
      assert.equal(1, terr.attempts)
    end)
  end)

  describe("redirects", function()
    local other
    setup(function() other = mock.start() end)
    teardown(function() if other then other:stop() end end)
    before_each(function() other:reset() end)

    local function redirect_to(base)
      return { status = 307, body = "", headers = {
        Location = base .. "/unified/user-directory/groups?integrated_account_id=" .. m.accounts.coupa } }
    end

    it("are not followed by default: a 3xx is an http error, not retried", function()
      m:script{ redirect_to(other.url) }
      local group, err = create()
      assert.is_nil(group)
      assert.equal("http", err.kind)
      assert.equal(307, err.status)
      assert.equal(1, err.attempts)
      assert.equal(0, #other:requests())
    end)

    it("when followed, keep Authorization on the same origin", function()
      m:script{ redirect_to(m.url) }
      local group, meta = create{ follow_redirects = true }
      assert.is_table(group, tostring(meta))
      local rs = m:requests()
      assert.equal(2, #rs)
      assert.equal("Bearer " .. m.token, rs[2].headers.authorization)
      assert.equal(rs[1].body, rs[2].body)
    end)

    it("when followed, never send Authorization to another origin", function()
      m:script{ redirect_to(other.url) }
      local group, err = create{ follow_redirects = true }
      assert.is_nil(group)
      assert.equal(401, err.status)
      local seen = other:requests()
      assert.equal(1, #seen)
      assert.is_nil(seen[1].headers.authorization)
      assert.equal('{"name":"Platform"}', seen[1].body)
    end)
  end)
end)
