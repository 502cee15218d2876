-- base_url is checked at truto.new: a URL no request could use is refused
-- there as invalid_argument naming base_url, never later as a retryable
-- connect error; what is kept is one normal form.
local truto = require "truto"
local url = require "truto.url"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"

describe("truto.url.check_base_url", function()
  local function accepted(s, want)
    local got, why = url.check_base_url(s)
    assert.equal(want, got, why)
  end

  local function refused(s, pattern)
    local got, why = url.check_base_url(s)
    assert.is_nil(got, "accepted: " .. tostring(got))
    assert.is_string(why)
    if pattern then assert.matches(pattern, why) end
    return why
  end

  it("keeps an http or https URL, without its trailing slashes", function()
    accepted("https://api.truto.one", "https://api.truto.one")
    accepted("https://api.truto.one/", "https://api.truto.one")
    accepted("http://127.0.0.1:8080///", "http://127.0.0.1:8080")
  end)

  it("reads the scheme and host case-insensitively and lower-cases them", function()
    accepted("HTTP://Example.COM", "http://example.com")
    accepted("HtTpS://API.truto.one:443/V1", "https://api.truto.one:443/V1")
  end)

  it("allows a path prefix, kept as it is", function()
    accepted("https://proxy.internal/truto/api/", "https://proxy.internal/truto/api")
  end)

  it("refuses . and .. path segments (the path is sent as it is written)", function()
    refused("https://proxy.internal/a/../truto", "%. or %.%. path segments")
    refused("https://proxy.internal/./truto", "%. or %.%. path segments")
    refused("https://proxy.internal/truto/..", "%. or %.%. path segments")
    refused("https://proxy.internal/truto/../", "%. or %.%. path segments")
    accepted("https://proxy.internal/a..b/.c/d.", "https://proxy.internal/a..b/.c/d.")
  end)

  it("allows IPv6 literals in brackets", function()
    accepted("http://[::1]:8080/", "http://[::1]:8080")
    refused("http://[::1:8080/", "IPv6")
    refused("http://[zz]/", "IPv6")
  end)

  it("refuses schemes other than http and https", function()
    refused("ftp://example.com", "http:// or https://")
    refused("file:///etc/passwd", "http:// or https://")
    refused("example.com", "http:// or https://")
    refused("//example.com", "http:// or https://")
  end)

  it("refuses ports outside 1-65535", function()
    for _, port in ipairs{ "0", "65536", "99999", "123456", "-1", "80a", "" } do
      refused("http://127.0.0.1:" .. port, "port")
    end
    accepted("http://127.0.0.1:1", "http://127.0.0.1:1")
    accepted("http://127.0.0.1:65535", "http://127.0.0.1:65535")
  end)

  it("refuses control characters, NUL and spaces anywhere", function()
    for _, bad in ipairs{ "\0", "\r\n", "\t", " ", "\127", "\27" } do
      refused("https://api.truto.one" .. bad, "control")
      refused("https://api.truto.one/a" .. bad .. "b", "control")
      refused("https://api" .. bad .. ".truto.one", "control")
    end
  end)

  it("refuses unicode hosts, pointing at the punycode form", function()
    refused("https://bücher.example/", "punycode")
    refused("https://例え.jp", "xn%-%-")
    accepted("https://xn--bcher-kva.example/", "https://xn--bcher-kva.example")
  end)

  it("refuses other bytes in the path, and odd characters in the host", function()
    refused("https://api.truto.one/caf\195\169", "ASCII path")
    refused("https://api%2etruto.one", "host")
    refused("https://api!truto.one", "host")
  end)

  it("refuses user:pass@ and says why, without echoing it", function()
    local why = refused("https://user:s3cret@api.truto.one", "user name or password")
    assert.is_nil(why:find("s3cret", 1, true))
    refused("https://user@api.truto.one", "user name or password")
    refused("https://@api.truto.one", "user name or password")
    -- a "/" in the password: no parser's guess at where the host starts is taken
    why = refused("https://user:pa/ss@api.truto.one", "user name or password")
    assert.is_nil(why:find("pa/ss", 1, true))
  end)

  it("refuses a missing host", function()
    refused("https://", "host")
    refused("https:///path", "host")
    refused("http://:8080", "host")
  end)

  it("refuses a query or a fragment", function()
    refused("https://api.truto.one/?x=1", "query")
    refused("https://api.truto.one#top", "fragment")
  end)

  it("never puts the URL in its message", function()
    for _, s in ipairs{ "https://sekrit-host.example:99999", "gopher://sekrit-host.example",
      "https://sekrit-host.example/?sekrit", "https://sekrit-host.example\0" } do
      assert.is_nil(refused(s):find("sekrit", 1, true))
    end
  end)
end)

describe("truto.new checks base_url", function()
  local function refused(base_url, pattern)
    local c, err = truto.new{ token = "tok-12345", base_url = base_url }
    assert.is_nil(c, "accepted " .. tostring(c))
    assert.equal("invalid_argument", err.kind)
    assert.equal("base_url", err.field)
    assert.is_false(err.retryable)
    if pattern then assert.matches(pattern, err.message) end
    return err
  end

  it("refuses a port out of range, a NUL, a control character and a unicode host", function()
    refused("http://127.0.0.1:99999", "port")
    refused("http://127.0.0.1:8080\0.evil", "control")
    refused("http://127.0.0.1:8080/\r\nX-Evil: 1", "control")
    refused("https://bücher.example", "punycode")
  end)

  it("refuses user:pass@ and keeps the password out of the error", function()
    local err = refused("https://user:hunter2@api.truto.one", "user name or password")
    assert.is_nil(tostring(err):find("hunter2", 1, true))
    assert.is_nil(err.message:find("hunter2", 1, true))
  end)

  it("refuses a base_url from TRUTO_BASE_URL the same way", function()
    local out = h.run_lua([[
      local c, err = require("truto").new()
      io.write(tostring(c), " ", err.kind, " ", err.field, " ", err.message)]],
      { TRUTO_API_TOKEN = "tok-12345", TRUTO_BASE_URL = "http://127.0.0.1:99999" })
    assert.equal("nil invalid_argument base_url base_url: must have a port from 1 to 65535", out)
  end)

  describe("against the mock", function()
    local m
    setup(function() m = mock.start() end)
    teardown(function() if m then m:stop() end end)

    it("accepts HTTP:// in capitals and creates through it", function()
      local c = assert(truto.new{ token = m.token, base_url = m.url:gsub("^http:", "HTTP:") .. "//",
        max_retries = 0 })
      assert.equal(m.url, c.base_url)
      local g, meta = c.groups.create({ name = "Caps" }, { integrated_account_id = m.accounts.coupa })
      assert.is_table(g, tostring(meta))
      assert.equal("Caps", g.name)
      c:close()
    end)

    it("a client's string shows the normalized URL", function()
      local c = assert(truto.new{ token = m.token, base_url = m.url:gsub("^http", "hTTp") .. "/" })
      assert.equal("truto.client (" .. m.url .. ")", tostring(c))
      c:close()
    end)
  end)
end)
