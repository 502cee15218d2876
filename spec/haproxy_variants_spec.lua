-- spec/haproxy_variants_spec.lua: truto inside HAProxy beyond the example
-- as shipped (spec/haproxy_spec.lua): TLS through HAProxy's httpclient (a
-- CA file it trusts, a certificate nobody trusts), the example with
-- lua-load-per-thread, and the curl transport forced inside HAProxy on
-- purpose, which shows the abort the haproxy transport avoids. Each starts
-- its own HAProxy and mock. Skipped (pending) when haproxy is not installed.
local cjson = require "cjson"
local socket = require "socket"
local mock = require "spec.support.mock"
local haproxy = require "spec.support.haproxy"
local sh = require "spec.support.sh"
local calls = require "spec.support.haproxy_calls"
local start, send, in_haproxy, input_for = calls.start, calls.send, calls.in_haproxy, calls.input_for
local GLOBAL = calls.GLOBAL

local describe_haproxy = haproxy.installed() and describe or pending

describe_haproxy("TLS through HAProxy's httpclient", function()
  -- HAProxy itself fronts the mock with TLS (two more frontends in the same
  -- process): one certificate httpclient.ssl.ca-file trusts, one it does not.
  local m, h, dir, ports

  local function certificate(name)
    assert(sh.run(("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj '/CN=127.0.0.1' "
      .. "-addext 'subjectAltName=IP:127.0.0.1,DNS:127.0.0.1' -keyout %s/%s.key -out %s/%s.crt "
      .. "&& cat %s/%s.crt %s/%s.key > %s/%s.pem"):format(dir, name, dir, name, dir, name, dir, name, dir, name)))
  end

  setup(function()
    m = mock.start()
    local _, out = sh.run("mktemp -d /tmp/truto-haproxy-certs.XXXXXX")
    dir = out:match("^(%S+)")
    certificate("trusted")
    certificate("untrusted")
    ports = { trusted = haproxy.free_port(), untrusted = haproxy.free_port() }
    local sections = {}
    for name, port in pairs(ports) do
      sections[#sections + 1] = ("frontend tls_%s\n  bind 127.0.0.1:%d ssl crt %s/%s.pem\n"
        .. "  default_backend mock\n"):format(name, port, dir, name)
    end
    sections[#sections + 1] = "backend mock\n  server mock " .. m.url:match("//([^/]+)") .. "\n"
    -- the example's CA setting, pointed at the spec's own certificate
    h = start(m, { replace = { { "httpclient%.ssl%.ca%-file @system%-ca",
      "httpclient.ssl.ca-file " .. dir .. "/trusted.crt" } }, sections = table.concat(sections) })
  end)

  teardown(function()
    if h then h:stop() end
    if m then m:stop() end
    if dir and dir:match("^/tmp/truto%-haproxy%-certs%.[%w]+$") then sh.run("rm -rf -- " .. sh.quote(dir)) end
  end)

  before_each(function() m:reset() end)

  it("creates a group through a server whose certificate httpclient.ssl.ca-file trusts", function()
    local d = in_haproxy(h, input_for(m, { config = { base_url = "https://127.0.0.1:" .. ports.trusted } }))
    assert.is_true(d.ok, d.message)
    assert.are.equal(201, d.status)
    assert.are.equal(1, m:stats().created)
  end)

  it("refuses a certificate nobody trusts as a connect failure, nothing sent", function()
    local d = in_haproxy(h, input_for(m, { config = { base_url = "https://127.0.0.1:" .. ports.untrusted,
      max_retries = 0 } }))
    assert.are.equal("connect", d.kind, d.message)
    assert.is_truthy(d.message:find("TLS handshake", 1, true))
    assert.is_true(d.retryable)
    assert.are.equal(0, m:stats().requests)
  end)
end)

describe_haproxy("the example with lua-load-per-thread instead of lua-load", function()
  it("also keeps answering while four slow creates wait at once", function()
    calls.with_own({ replace = { { "\n  lua%-load ", "\n  lua-load-per-thread " } },
      global = GLOBAL:gsub("lua%-load ", "lua-load-per-thread ") }, function(m, h)
      calls.four_slow_creates(m, h)
      assert.is_true(h:running(), h:log())
    end)
  end)
end)

describe_haproxy("the curl transport forced inside HAProxy", function()
  it("blocks the shared Lua state until HAProxy's watchdog aborts the process", function()
    calls.with_own(nil, function(m, h)
      -- answers slow enough that the watchdog acts first even on a busy
      -- machine (it counts the stuck thread's CPU time); HAProxy ends
      -- within a few seconds of the first create anyway
      local steps = {}
      for i = 1, 4 do steps[i] = { delay = 15 } end
      m:script(steps)
      local input = cjson.encode(input_for(m, { config = { transport = "curl" } }))
      for _ = 1, 4 do send(h, "POST", "/spec/create", input) end
      -- new connections land on every thread; one that needs the Lua state
      -- while a create holds it is stuck, and the watchdog acts on that
      local deadline = socket.gettime() + 50
      while h:running() and socket.gettime() < deadline do
        haproxy.http(h.port, "GET", "/spec/ping", nil, 0.5)
        socket.sleep(0.05)
      end
      assert.is_false(h:running())
      assert.is_truthy(h:log():find("is about to kill the process", 1, true), h:log():sub(1, 2000))
    end)
  end)
end)
