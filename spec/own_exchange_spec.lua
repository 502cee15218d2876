-- The module's own HTTP/1.1 exchange (csrc/exchange.c), on the bare libcurl
-- handles: what it sends is, byte for byte, what libcurl's own transfer
-- sends for the same request (following redirects forces that one); a kept
-- connection the server has closed is replaced before a byte goes out; an
-- answer that may not be followed by another request closes its connection.
-- Against the mock, which records each request's raw head.
local core = require "truto.core"
local mock = require "spec.support.mock"
local socket = require "socket"

describe("the own HTTP/1.1 exchange", function()
  local m

  setup(function() m = mock.start() end)
  teardown(function() if m then m:stop() end end)
  before_each(function() m:reset() end)

  local cases = {
    { "GET", nil, { "Accept: application/json" } },
    { "DELETE", nil, { "Authorization: Bearer t-1", "Accept: application/json" } },
    { "POST", '{"name":"x"}', { "Authorization: Bearer t-1", "Accept: application/json",
      "User-Agent: truto-lua/0.1.0", "Content-Type: application/json", "Idempotency-Key: k-1" } },
    { "PATCH", '{"name":"p"}', { "content-type: application/json", "X-Request-Id: r-1" } },
    { "POST", "", { "X-Empty-Body: yes" } }, -- libcurl's own Accept and Content-Type
    { "PUT", "abc", { "X-Tab:\tv", "X-Spaces:   w  " } },
  }

  local function on_single(handle, case, url, follow)
    local status, _, _, sent = handle:request(case[1], url, case[3], case[2], 10, 5, nil, nil, nil, follow)
    assert.is_number(status, tostring(sent))
    return m:last()
  end

  local function on_multi(multi, case, url, follow)
    local out = {}
    multi:add(1, case[1], url, case[3], case[2], 10, 5, nil, nil, nil, follow)
    local n = 0
    while n == 0 do n = multi:perform(1, out) end
    assert.is_number(out[2], tostring(out[4]))
    return m:last()
  end

  for _, way in ipairs{ { "core.curl", core.curl, on_single }, { "core.multi", core.multi, on_multi } } do
    for _, case in ipairs(cases) do
      local label = case[1] .. (case[2] and " with a body of " .. #case[2] .. " bytes" or " without a body")
      it("on " .. way[1] .. ", writes a " .. label .. " as libcurl's transfer does, byte for byte", function()
        local handle = way[2]{ share = core.share() }
        local url = m.url .. "/things/7?x=1&y=%20z"
        local own = on_single == way[3] and on_single(handle, case, url, false) or on_multi(handle, case, url, false)
        local theirs = on_single == way[3] and on_single(handle, case, url, true) or on_multi(handle, case, url, true)
        handle:close()
        assert.are.equal(theirs.request_line, own.request_line)
        assert.are.equal(theirs.raw_header, own.raw_header)
        assert.are.equal(theirs.body, own.body)
        assert.are.equal(2, #m:requests())
      end)
    end
  end

  it("replaces a kept connection the server closed before the next request, sending that once", function()
    local handle = core.curl{ share = core.share() }
    local url = m.url .. "/things/1"
    -- a whole answer that allows reuse, then the server closes anyway
    m:script{ { raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}" } }
    local status = handle:request("GET", url, { "Accept: application/json" }, nil, 10, 5)
    assert.are.equal(200, status)
    socket.sleep(0.1) -- the close has arrived
    local again, kind, message = handle:request("POST", url, { "Content-Type: application/json" }, "{}", 10, 5)
    handle:close()
    assert.is_number(again, tostring(kind) .. " " .. tostring(message))
    assert.are.equal(2, #m:requests())
  end)

  it("reads an answer with Connection: close whole and opens a new connection for the next", function()
    local handle = core.multi{ share = core.share() }
    local out = {}
    m:script{ { raw = "HTTP/1.1 201 Created\r\nConnection: close\r\nContent-Type: application/json\r\n"
      .. "Content-Length: 11\r\n\r\n{\"id\":\"9\"}\n" } }
    for i = 1, 2 do
      handle:add(i, "GET", m.url .. "/things/" .. i, { "Accept: application/json" }, nil, 10, 5)
      local n = 0
      while n == 0 do n = handle:perform(1, out) end
      assert.are.equal(i, out[1])
      assert.is_number(out[2], tostring(out[4]))
    end
    handle:close()
    assert.are.equal(2, #m:requests())
  end)

  it("never takes bytes that came after an answer as the next request's answer", function()
    local handle = core.curl{ share = core.share() }
    local url = m.url .. "/things/1"
    m:script{ { raw = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
      .. "HTTP/1.1 418 I'm a teapot\r\nContent-Length: 0\r\n\r\n" } }
    assert.are.equal(200, (handle:request("GET", url, {}, nil, 10, 5)))
    local status, headers = handle:request("GET", url, {}, nil, 10, 5)
    handle:close()
    assert.is_number(status)
    assert.are_not.equal(418, status)
    assert.is_table(headers)
    assert.are.equal(2, #m:requests())
  end)

  it("ends a request on a kept connection that dies with no answer as network, sent, without re-sending", function()
    local handle = core.curl{ share = core.share() }
    local url = m.url .. "/things/1"
    assert.is_number((handle:request("GET", url, {}, nil, 10, 5)))
    m:script{ { reset = true } }
    local status, kind, message, sent = handle:request("POST", url, {}, '{"name":"once"}', 10, 5)
    handle:close()
    assert.is_nil(status)
    assert.are.equal("network", kind)
    assert.is_true(sent)
    assert.matches("the server may have received it", message, 1, true)
    assert.are.equal(2, #m:requests())
  end)
end)
