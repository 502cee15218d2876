-- spec/https_batch_spec.lua: the path users take — HTTPS to a server that
-- closes its connections every few requests (nginx's keepalive_requests:
-- GOAWAY on HTTP/2, "Connection: close" on HTTP/1.1), over a real local
-- nginx with TLS and http2 (bench/tls_server.lua, a CA of its own trusted
-- through ca_file). Counted from the server's own log: every create seen
-- exactly once (by Idempotency-Key), on the protocol asked for, with no
-- error and no retry, and the TLS session resumed on every reconnect, for
-- batches and single calls alike.
--
-- Always on: 3,000 creates per protocol with a connection closed every 50
-- requests (60 GOAWAYs). `make test-https` (run by .ci/run) sets
-- TRUTO_HTTPS_N=22000 and TRUTO_HTTPS_KEEPALIVE=1000 (nginx's default).
local truto = require "truto"
local tls = dofile("bench/tls_server.lua")

local N = tonumber(os.getenv("TRUTO_HTTPS_N") or "") or 3000
local KEEPALIVE = tonumber(os.getenv("TRUTO_HTTPS_KEEPALIVE") or "") or 50
local ACCOUNT = "62f44730-dd91-461e-bd6a-aedd9e0ad79d"

describe("HTTPS against nginx closing each connection after " .. KEEPALIVE .. " requests", function()
  local s

  setup(function() s = tls.start{ keepalive_requests = KEEPALIVE } end)
  teardown(function() if s then s:stop() end end)

  local function new_client(url, version)
    return assert(truto.new{ base_url = url, token = "t0k3n", integrated_account_id = ACCOUNT,
      ca_file = s.ca_file, rate_limits = false, http_version = version })
  end

  -- at least 90 % of the reconnects resumed their TLS session (those
  -- opened after the first ones, which had no session to resume)
  local function assert_resumed(count)
    assert.is_true(count.reconnects > 0, "no reconnect happened")
    assert.equal(count.connections, count.tls_full + count.tls_resumed)
    assert.is_true(count.reconnects_resumed >= 0.9 * count.reconnects,
      ("%d of %d reconnects resumed their TLS session"):format(count.reconnects_resumed, count.reconnects))
  end

  for _, case in ipairs{
    { name = "HTTP/2", url = "h2", version = "2", protocol = "HTTP/2.0" },
    { name = "HTTP/1.1", url = "h2", version = "1.1", protocol = "HTTP/1.1" },
  } do
    it(("%s: %d creates at 16 in flight, each seen once, no error, no retry, sessions resumed")
        :format(case.name, N), function()
      local c = new_client(s.urls[case.url], case.version)
      local items = {}
      for i = 1, N do items[i] = { name = "Group " .. i } end
      local mark = s:log_mark()
      local results = c.groups.create_many(items, nil, { concurrency = 16 })
      c:close()
      local failed, retried = {}, 0
      for i = 1, N do
        local r = results[i]
        if not r.group then failed[#failed + 1] = i .. ": " .. tostring(r.err)
        elseif r.meta.attempts ~= 1 then retried = retried + 1 end
      end
      assert.same({}, { table.unpack(failed, 1, math.min(#failed, 5)) })
      assert.equal(0, retried)
      local count = s:count(mark, 16)
      assert.equal(N, count.requests)
      assert.equal(N, count.keys)
      assert.equal(0, count.duplicates, "seen twice: " .. table.concat(count.duplicate_keys, ", "))
      assert.equal(N, count.protocols[case.protocol])
      assert.equal(N, count.statuses[201])
      -- the server closed connections all along (a GOAWAY or a close each)
      assert.is_true(count.connections >= N / KEEPALIVE, count.connections .. " connections")
      assert_resumed(count)
    end)
  end

  -- libcurl sends an HTTPS/1.1 request through an upload buffer of 16 KiB
  -- (CURLOPT_UPLOAD_BUFFERSIZE, csrc/transfer.c): bodies around and well
  -- past it arrive whole, single and batched, on both protocols
  for _, version in ipairs{ "1.1", "2" } do
    it("HTTP/" .. version .. ": bodies around and past the 16 KiB upload buffer arrive whole", function()
      local c = assert(truto.new{ base_url = s.urls.h2 .. "/echo", token = "t0k3n",
        integrated_account_id = ACCOUNT, ca_file = s.ca_file, rate_limits = false, http_version = version })
      local sizes = { 1, 16384 - 12, 16384 - 11, 16384 - 10, 65536, 200000, 3000000 }
      local items = {}
      local function expect(body, group)
        -- the JSON the builder writes for a one-field body: {"name":"..."}
        local json = '{"name":"' .. body.name .. '"}'
        local path = os.tmpname()
        local w = assert(io.open(path, "wb"))
        w:write(json)
        w:close()
        local p = assert(io.popen("md5sum " .. path))
        local md5 = p:read("*a"):match("^(%x+)")
        p:close()
        os.remove(path)
        assert.equal(tostring(#json), group.name)
        assert.equal(md5, group.description)
      end
      local mark = s:log_mark()
      for i, n in ipairs(sizes) do
        items[i] = { name = string.rep(string.char(96 + i), n) }
        expect(items[i], assert(c.groups.create(items[i])))
      end
      local results = c.groups.create_many(items, nil, { concurrency = 4 })
      for i = 1, #items do
        assert(results[i].group, tostring(results[i].err))
        expect(items[i], results[i].group)
      end
      c:close()
      -- each sent once (and the log settled before the next case marks it)
      local count = s:count(mark)
      assert.equal(2 * #sizes, count.requests)
      assert.equal(2 * #sizes, count.statuses[201])
      assert.equal(0, count.duplicates)
    end)
  end

  for _, case in ipairs{
    { name = "HTTP/1.1 (the default for single calls)", version = nil, protocol = "HTTP/1.1" },
    { name = "HTTP/2 (forced)", version = "2", protocol = "HTTP/2.0" },
  } do
    it(case.name .. ": single calls across reconnects resume their TLS session", function()
      local c = new_client(s.urls.h2, case.version)
      local calls = math.min(N, 3 * KEEPALIVE + 1)
      local mark = s:log_mark()
      for i = 1, calls do assert(c.groups.create{ name = "One " .. i }) end
      c:close()
      local count = s:count(mark)
      assert.equal(calls, count.requests)
      assert.equal(0, count.duplicates)
      assert.equal(calls, count.protocols[case.protocol])
      assert_resumed(count)
    end)
  end
end)
