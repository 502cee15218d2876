-- The token never leaves the Authorization header: not in any error, any
-- message, tostring(err), tostring(client), what on_retry is handed, or
-- what a program prints — also when the server echoes the Authorization
-- header back (in an error envelope, a response header, an HTML page, a
-- broken 2xx body, JSON-escaped, or cut where a message is shortened).
local truto = require "truto"
local mock = require "spec.support.mock"
local h = require "spec.support.helpers"
local cjson = require "cjson"

-- Has a "/" (JSON encoders write it "\/") and is long enough to be cut.
local TOKEN = "sk_live/7Hq2Zr9VwX4pLm8Kd3Ns6Ty1"

-- Every string reachable from v (keys too, metatables aside), with a path.
local function strings_in(v, path, out, seen)
  out, seen, path = out or {}, seen or {}, path or "value"
  if type(v) == "string" then
    out[#out + 1] = { path, v }
  elseif type(v) == "table" and not seen[v] then
    seen[v] = true
    for k, val in pairs(v) do
      strings_in(k, path .. "<key>", out, seen)
      strings_in(val, path .. "." .. tostring(k), out, seen)
    end
  end
  return out
end

local PIECES = { TOKEN, cjson.encode(TOKEN):sub(2, -2), TOKEN:sub(1, 12), TOKEN:sub(-12) }

-- s with every piece of the token masked: what a failing spec may print.
local function masked(s)
  for _, piece in ipairs(PIECES) do
    s = s:gsub(piece:gsub("%p", "%%%0"), "<TOKEN>")
  end
  return s
end

-- assert.equal for strings that could hold the token: a failure prints
-- them masked.
local function assert_text(expected, actual)
  assert.is_true(expected == actual, masked(("expected %q, got %q"):format(expected, tostring(actual))))
end

-- Fails naming where the token (or a telling piece of it) shows up,
-- without printing it.
local function assert_no_token(v, what)
  for _, found in ipairs(strings_in(v)) do
    for _, piece in ipairs(PIECES) do
      assert.is_nil(found[2]:find(piece, 1, true),
        masked((what or "value") .. " leaks the token at " .. found[1] .. ": " .. found[2]:sub(1, 120)))
    end
  end
  if type(v) == "table" and getmetatable(v) and getmetatable(v).__tostring then
    assert_no_token(tostring(v), "tostring(" .. (what or "value") .. ")")
  end
end

describe("the token", function()
  local m, client, retries

  setup(function() m = mock.start{ token = TOKEN } end)
  teardown(function() if m then m:stop() end end)
  before_each(function()
    m:reset()
    retries = {}
    client = assert(truto.new{ token = TOKEN, base_url = m.url, integrated_account_id = m.accounts.coupa,
      sleep = function() end, on_retry = function(info) retries[#retries + 1] = info end })
  end)
  after_each(function() client:close() end)

  local function create(options) return client.groups.create({ name = "Finance" }, nil, options) end

  it("is what the server receives, as a bearer token", function()
    assert.is_table((create()))
    assert.equal("Bearer " .. TOKEN, m:last().headers.authorization)
  end)

  it("stays out of an error whose envelope and headers echo the Authorization header", function()
    m:script{ { status = 401, headers = { ["X-Echo-Authorization"] = "Bearer " .. TOKEN,
      [TOKEN] = "as a header name" },
      json = { statusCode = 401, error = "Unauthorized", message = "Token Bearer " .. TOKEN .. " is revoked",
        echo = { headers = { authorization = "Bearer " .. TOKEN }, [TOKEN] = true } } } }
    local group, err = create()
    assert.is_nil(group)
    assert.equal(401, err.status)
    assert_no_token(err, "err")
    assert_text("Token Bearer [REDACTED] is revoked", err.message)
    assert_text("Bearer [REDACTED]", err.body.echo.headers.authorization)
    assert_text("Bearer [REDACTED]", err.headers["x-echo-authorization"])
    assert_text("truto: http 401: Token Bearer [REDACTED] is revoked", tostring(err))
  end)

  it("stays out of what on_retry is handed and of the final error, retry after retry", function()
    local page = "<html><body><pre>Authorization: Bearer " .. TOKEN .. "</pre></body></html>"
    m:script{
      { status = 502, headers = { ["Content-Type"] = "text/html" }, body = page },
      { status = 500, json = { statusCode = 500, message = "upstream said: " .. TOKEN } },
      { status = 429, headers = { ["Retry-After"] = "1", ["X-Token"] = TOKEN }, json = { message = TOKEN } },
      { status = 504, headers = { ["Content-Type"] = "text/html" }, body = page },
    }
    local group, err = create()
    assert.is_nil(group)
    assert.equal(4, err.attempts)
    assert.equal(3, #retries)
    for i, info in ipairs(retries) do assert_no_token(info, "on_retry info " .. i) end
    assert_no_token(err, "err")
    assert.is_truthy(err.body:find("Bearer [REDACTED]", 1, true), masked(err.body))
  end)

  it("stays out of a deadline error and the failure it wraps", function()
    -- (a 502: a 429 past the deadline is said as the 429 itself, issue 18 item 7)
    m:script{ { status = 502, headers = { ["Retry-After"] = "30" },
      json = { statusCode = 502, message = "bad gateway, " .. TOKEN } } }
    local _, err = create{ deadline = 5, retry_cap = 60 }
    assert.equal("deadline", err.timeout)
    assert.equal("http", err.cause.kind)
    assert_no_token(err, "err")
  end)

  it("is not left half-cut in a decode error's shortened message", function()
    -- the message quotes the first 200 bytes: the token straddles the cut
    local body = ("x"):rep(190) .. TOKEN .. " and more"
    m:script{ { status = 201, headers = { ["Content-Type"] = "application/json" }, body = body } }
    local _, err = create()
    assert.equal("decode", err.kind)
    assert_no_token(err, "err")
    assert.is_truthy(err.message:find("[REDACTED]", 1, true), masked(err.message))
  end)

  it("is caught JSON-escaped in a body that is not decoded", function()
    local escaped = cjson.encode{ echo = "Bearer " .. TOKEN }
    assert.is_nil(escaped:find(TOKEN, 1, true)) -- "/" came out as "\/"
    m:script{ { status = 200, headers = { ["Content-Type"] = "application/json" }, body = escaped .. "}" } }
    local _, err = create()
    assert.equal("decode", err.kind)
    assert_no_token(err, "err")
  end)

  it("stays out of transport errors", function()
    m:script{ { delay = 2 } }
    local _, timeout = create{ timeout = 0.3, idempotency_key = false }
    assert.equal("timeout", timeout.kind)
    assert_no_token(timeout, "timeout err")
    m:script{ { reset = true } }
    local _, reset = create{ idempotency_key = false }
    assert.equal("network", reset.kind)
    assert_no_token(reset, "network err")
    m:script{ { size = 5000 } }
    local _, big = create{ max_response_bytes = 100 }
    assert.equal("too_large", big.kind)
    assert_no_token(big, "too_large err")
    local tls = assert(truto.new{ token = TOKEN, base_url = m.url:gsub("^http:", "https:"), max_retries = 0,
      insecure = true })
    local _, terr = tls.groups.create({ name = "x" }, { integrated_account_id = m.accounts.coupa })
    tls:close()
    assert.equal("tls", terr.kind)
    assert.is_truthy(terr.message:find("insecure = true", 1, true), masked(terr.message))
    assert_no_token(terr, "tls err")
  end)

  it("stays out of invalid_argument errors, even when a caller misplaces it", function()
    local cases = {
      { { name = TOKEN, nmae = 1 }, nil, nil },
      { { name = "x" }, { remote_query = { [TOKEN .. "&"] = 1 } }, nil },
      { { name = "x" }, { integrated_account_id = TOKEN }, nil },
      { { name = "x" }, nil, { idempotency_key = TOKEN .. "\n" } },
      { { name = "x" }, nil, { headers = { ["X-Token"] = TOKEN .. "\r\n" } } },
      { { name = "x" }, nil, { headers = { [TOKEN .. ":"] = "v" } } },
      { { name = "x" }, nil, { [TOKEN] = 1 } },
      { { remote_data = { [TOKEN] = 0 / 0 } }, nil, nil },
    }
    for i, case in ipairs(cases) do
      local _, err = client.groups.create(case[1], case[2], case[3])
      assert.equal("invalid_argument", err.kind, "case " .. i)
      assert_no_token(err, "case " .. i)
    end
    assert.equal(0, #m:requests())
    local _, cerr = truto.new{ token = TOKEN, base_url = "ftp://" .. TOKEN }
    assert.equal("base_url", cerr.field)
    local _, uerr = truto.new{ token = TOKEN, user_agent = TOKEN .. "\0" }
    assert.equal("user_agent", uerr.field)
    assert_no_token(uerr, "user_agent err")
    local _, terr = truto.new{ token = TOKEN .. "\r\nX-Evil: 1" }
    assert.equal("token", terr.field)
    assert_no_token(terr, "token err")
  end)

  it("stays out of tostring(client), and a base_url with userinfo is refused without it", function()
    assert_no_token(tostring(client), "tostring(client)")
    local c, err = truto.new{ token = TOKEN, base_url = "https://user:" .. TOKEN .. "@example.invalid" }
    assert.is_nil(c)
    assert.equal("base_url", err.field)
    assert.matches("user name or password", err.message)
    assert_no_token(err, "base_url err")
  end)

  it("never reaches what a program prints about its failures", function()
    -- while the program runs, the mock answers 502s that echo the token
    local echo = { status = 502, json = { statusCode = 502, message = "bad gateway for " .. TOKEN,
      request = { authorization = "Bearer " .. TOKEN } } }
    m:script{ echo, echo }
    local out, ok = h.run_lua([[
      local truto = require "truto"
      local c = assert(truto.new{ token = os.getenv("T"), base_url = os.getenv("U"),
        integrated_account_id = os.getenv("A"), max_retries = 1, sleep = function() end,
        on_retry = function(info) print("retry", info.attempt, info.reason, tostring(info.err)) end })
      local function show(g, e)
        if not g then
          print(tostring(e))
          for k, v in pairs(e) do print(k, type(v) == "table" and require("cjson").encode(v) or tostring(v)) end
        end
      end
      show(c.groups.create{ name = "x" })
      show(c.groups.create({ name = os.getenv("T"), bad = 1 }))
      print(tostring(c))
      print("done")
    ]], { T = TOKEN, U = m.url, A = m.accounts.coupa,
      LUA_PATH = "lua/?.lua;./?.lua;;", LUA_CPATH = package.cpath })
    assert.is_true(ok, masked(out))
    assert.matches("done", masked(out))
    assert.matches("retry\t1\thttp 502", masked(out))
    for _, piece in ipairs(PIECES) do
      assert.is_nil(out:find(piece, 1, true), masked(out))
    end
  end)
end)
