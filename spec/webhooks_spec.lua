-- truto.webhooks.verify: Truto's signed deliveries are accepted and decoded;
-- anything forged, tampered with, malformed, outside the replay window or
-- seen before is refused with a stable kind, and never with the secret in
-- the error. HMAC-SHA256 is checked against RFC 4231 and openssl.
local truto = require "truto"
local core = require "truto.core"
local sh = require "spec.support.sh"

local webhooks = truto.webhooks
local HAS_INTEGERS = math.type ~= nil

local SECRET = "6e17561c-a20c-44ce-b8b5-caff0bf786fe"
local CREATED = "2026-12-01T22:15:58.123Z"
local CREATED_AT = 1796163358.123 -- CREATED in seconds since the epoch
local NOW = CREATED_AT + 2

local function event_body(fields)
  local parts = {
    '"id":"3a0da6ba-b2d1-473f-957c-51f6825e3623"',
    '"event":"integrated_account:active"',
    '"payload":{"id":"79a39d69-e27e-49cb-b9a9-79f5eea7aa26","tenant_id":"acme-1","count":3,'
      .. '"ratio":0.5,"context":{},"tags":[1,2],"note":null}',
    '"environment_id":"ac15abdc-b38e-47d0-97a2-69194017c177"',
    '"webhook_id":"b6d29b9b-3d9d-44fd-aa77-512fd83b28c1"',
    '"created_at":"' .. CREATED .. '"',
  }
  if fields then parts = fields end
  return "{" .. table.concat(parts, ",") .. "}"
end

local BODY = event_body()

local function sign(body, secret)
  return "format=sha256,v=" .. core.hmac_sha256(secret or SECRET, body)
end

local function verify(header, body, options)
  options = options or {}
  if options.now == nil then options.now = NOW end
  return webhooks.verify(SECRET, header, body, options)
end

-- Every string an error carries, keys and values, at any depth.
local function strings_of(v, out, seen)
  out, seen = out or {}, seen or {}
  if type(v) == "string" then out[#out + 1] = v
  elseif type(v) == "table" and not seen[v] then
    seen[v] = true
    for k, val in pairs(v) do strings_of(k, out, seen); strings_of(val, out, seen) end
  end
  return out
end

local function refused(kind, header, body, options)
  local event, err = verify(header, body, options)
  assert.is_nil(event)
  assert.is_table(err, "no error")
  assert.are.equal(kind, err.kind, tostring(err))
  assert.is_string(err.message)
  local text = tostring(err)
  assert.matches("^truto: " .. kind .. ": ", text)
  local expected = core.hmac_sha256(SECRET, body or "")
  for _, s in ipairs(strings_of(err)) do
    assert.is_nil(s:find(SECRET, 1, true), "the secret is in the error")
    assert.is_nil(s:lower():find(expected, 1, true), "the expected signature is in the error")
  end
  assert.is_nil(text:find(SECRET, 1, true))
  return err
end

describe("HMAC-SHA256 in the C core", function()
  local function hex_bytes(hex) return (hex:gsub("%x%x", function(b) return string.char(tonumber(b, 16)) end)) end

  -- RFC 4231 section 4, HMAC-SHA-256 (test case 5 truncates; left out)
  local vectors = {
    { ("\11"):rep(20), "Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7" },
    { "Jefe", "what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843" },
    { ("\170"):rep(20), ("\221"):rep(50), "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe" },
    { hex_bytes("0102030405060708090a0b0c0d0e0f10111213141516171819"), ("\205"):rep(50),
      "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b" },
    { ("\170"):rep(131), "Test Using Larger Than Block-Size Key - Hash Key First",
      "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54" },
    { ("\170"):rep(131), "This is a test using a larger than block-size key and a larger than block-size data."
      .. " The key needs to be hashed before being used by the HMAC algorithm.",
      "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2" },
  }

  it("computes the RFC 4231 test vectors", function()
    for i, v in ipairs(vectors) do
      assert.are.equal(v[3], core.hmac_sha256(v[1], v[2]), "test vector " .. i)
    end
  end)

  it("verifies the RFC 4231 vectors in either case of hex and refuses a one-bit change", function()
    for _, v in ipairs(vectors) do
      assert.is_true(core.hmac_sha256_verify(v[1], v[2], v[3]))
      assert.is_true(core.hmac_sha256_verify(v[1], v[2], v[3]:upper()))
      local flipped = v[3]:sub(1, 63) .. (v[3]:sub(64) == "0" and "1" or "0")
      assert.is_false(core.hmac_sha256_verify(v[1], v[2], flipped))
      assert.is_false(core.hmac_sha256_verify(v[1], v[2] .. "x", v[3]))
    end
  end)

  it("answers false, never raises, for a signature of the wrong length or with non-hex digits", function()
    local v = vectors[2]
    for _, bad in ipairs { "", v[3]:sub(1, 63), v[3] .. "0", v[3]:sub(1, 62) .. "zz", v[3]:sub(1, 62) .. " 0",
                           ("g"):rep(64), v[3]:sub(1, 32) .. "\0" .. v[3]:sub(34) } do
      assert.is_false(core.hmac_sha256_verify(v[1], v[2], bad))
    end
  end)

  it("agrees with openssl dgst -hmac on an event body, bytes outside ASCII and NUL included", function()
    local path = os.tmpname()
    for _, body in ipairs { BODY, '{"name":"Ingeni\195\184r\0x"}', "" } do
      sh.write_file(path, body)
      local ok, output = sh.run("openssl dgst -sha256 -hmac " .. sh.quote(SECRET) .. " < " .. sh.quote(path))
      assert(ok, output)
      local hex = output:match("(%x+)%s*$")
      assert.are.equal(64, #hex)
      assert.are.equal(hex, core.hmac_sha256(SECRET, body))
    end
    os.remove(path)
  end)
end)

describe("truto.webhooks.verify", function()
  it("is truto.webhooks, with sign giving the header Truto sends", function()
    assert.are.equal(require "truto.webhooks", truto.webhooks)
    assert.are.equal("format=sha256,v=" .. core.hmac_sha256(SECRET, BODY), webhooks.sign(SECRET, BODY))
  end)

  describe("accepts", function()
    it("a genuine delivery and returns the decoded event", function()
      local event, err = verify(sign(BODY), BODY)
      assert.is_nil(err)
      assert.are.equal("3a0da6ba-b2d1-473f-957c-51f6825e3623", event.id)
      assert.are.equal("integrated_account:active", event.event)
      assert.are.equal("79a39d69-e27e-49cb-b9a9-79f5eea7aa26", event.payload.id)
      assert.are.equal(CREATED, event.created_at)
      assert.are.equal(3, event.payload.count)
      assert.are.equal(0.5, event.payload.ratio)
      assert.are.equal(truto.null, event.payload.note)
      assert.are.same({ 1, 2 }, event.payload.tags)
    end)

    it("with integral numbers as integers on Lua 5.3+", function()
      if not HAS_INTEGERS then return end
      local event = assert(verify(sign(BODY), BODY))
      assert.are.equal("integer", math.type(event.payload.count))
      assert.are.equal("integer", math.type(event.payload.tags[2]))
      assert.are.equal("float", math.type(event.payload.ratio))
    end)

    it("with integers beyond 2^53 exact, as their digits, decoded as every answer is", function()
      local body = event_body {
        '"id":"e-big"', '"event":"record:created"', '"created_at":"' .. CREATED .. '"',
        '"payload":{"big":12345678901234567890,"edge":9007199254740993,"max":9007199254740992,'
          .. '"neg":-9223372036854775809,"list":[18446744073709551616]}',
      }
      local event = assert(verify(sign(body), body))
      assert.are.equal("12345678901234567890", event.payload.big)
      assert.are.equal("9007199254740993", event.payload.edge)
      assert.are.equal("-9223372036854775809", event.payload.neg)
      assert.are.equal("18446744073709551616", event.payload.list[1])
      assert.are.equal(9007199254740992, event.payload.max)
      if HAS_INTEGERS then assert.are.equal("integer", math.type(event.payload.max)) end
      assert.are.same(core.json_decode(body), event)
    end)

    it("header forms with extra whitespace, parameters in any order, unknown parameters, upper-case hex", function()
      local hex = core.hmac_sha256(SECRET, BODY)
      for _, header in ipairs {
        "format=sha256,v=" .. hex,
        "  format = sha256 ,\tv = " .. hex .. "  ",
        "v=" .. hex .. ",format=sha256",
        "t=1796163358,format=sha256,v=" .. hex .. ",x=y",
        "format=SHA256,v=" .. hex:upper(),
        "Format=sha256,V=" .. hex,
        "format=sha256,,v=" .. hex .. ",",
      } do
        local event, err = verify(header, BODY)
        assert.is_nil(err, header)
        assert.are.equal("integrated_account:active", event.event)
      end
    end)

    it("times in ISO 8601 with Z or an offset, with or without fractional seconds", function()
      for _, created in ipairs {
        "2026-12-01T22:15:58Z", "2026-12-01T22:15:58.123456Z", "2026-12-01t22:15:58z",
        "2026-12-02T03:45:58.123+05:30", "2026-12-01T14:15:58-0800", "2026-12-01T23:15:58+01",
        "2026-12-01 22:15:58Z",
      } do
        local body = event_body { '"id":"e-1"', '"event":"test"', '"created_at":"' .. created .. '"' }
        local event, err = verify(sign(body), body)
        assert.is_nil(err, created)
        assert.are.equal(created, event.created_at)
        assert.is_true(math.abs(webhooks.parse_time(created) - 1796163358) < 1, created)
      end
    end)

    it("valid UTF-8 beyond ASCII", function()
      local body = event_body { '"id":"e-2"', '"event":"test"', '"created_at":"' .. CREATED .. '"',
        '"payload":{"name":"Ingeni\195\184rer \230\151\165\230\156\172 \240\159\154\128 \239\191\189"}' }
      local event, err = verify(sign(body), body)
      assert.is_nil(err)
      assert.are.equal("Ingeni\195\184rer \230\151\165\230\156\172 \240\159\154\128 \239\191\189", event.payload.name)
    end)

    it("a large delivery (8 MiB) in reasonable time", function()
      local filler = ("abcdefgh"):rep(1024 * 1024)
      local body = event_body { '"id":"big"', '"event":"record:created"', '"created_at":"' .. CREATED .. '"',
        '"payload":{"blob":"' .. filler .. '"}' }
      local started = os.clock()
      local event, err = verify(sign(body), body)
      assert.is_nil(err)
      assert.are.equal(#filler, #event.payload.blob)
      assert.is_true(os.clock() - started < 20, "took " .. (os.clock() - started) .. " s of CPU")
    end)
  end)

  describe("refuses with invalid_signature", function()
    it("a body changed after signing, by one byte", function()
      local header = sign(BODY)
      refused("invalid_signature", header, (BODY:gsub("acme%-1", "acme-2")))
      refused("invalid_signature", header, BODY .. " ")
      refused("invalid_signature", header, BODY:sub(1, -2))
    end)

    it("a body signed with another secret", function()
      refused("invalid_signature", sign(BODY, "another-secret-uuid"), BODY)
      refused("invalid_signature", sign(BODY, SECRET:sub(1, -2)), BODY)
      refused("invalid_signature", sign(BODY, SECRET .. "0"), BODY)
    end)

    it("bad header forms", function()
      local hex = core.hmac_sha256(SECRET, BODY)
      for _, header in ipairs {
        "", "   ", hex, "sha256=" .. hex, "v=" .. hex, "format=sha256", "format=sha256,v=",
        "format=sha1,v=" .. hex, "format=sha512,v=" .. hex, "format=,v=" .. hex,
        "format=sha256,v=" .. hex:sub(1, 63), "format=sha256,v=" .. hex .. "0",
        "format=sha256,v=" .. hex:sub(1, 62) .. "zz", "format=sha256,v=" .. hex .. ",v=" .. hex,
        "format=sha256,format=sha256,v=" .. hex, "format=sha256;v=" .. hex, "=sha256,v=" .. hex,
        "format=sha256,v=" .. hex .. "," .. ("x=y,"):rep(300),
      } do
        refused("invalid_signature", header, BODY)
      end
    end)

    it("a missing header (nil) and a repeated one (a table, as ngx.req.get_headers gives it)", function()
      refused("invalid_signature", nil, BODY)
      refused("invalid_signature", { sign(BODY), sign(BODY) }, BODY)
    end)

    it("a large tampered body without decoding it", function()
      local body = event_body { '"id":"big"', '"event":"test"', '"created_at":"' .. CREATED .. '"',
        '"payload":"' .. ("x"):rep(8 * 1024 * 1024) .. '"' }
      local header = sign(body)
      refused("invalid_signature", header, body:sub(1, -3) .. 'y"}')
    end)

    it("before it looks at the body: a forged one that is not JSON is still invalid_signature", function()
      refused("invalid_signature", "format=sha256,v=" .. ("0"):rep(64), "not json")
    end)
  end)

  describe("refuses with decode", function()
    local function signed_refusal(body)
      return refused("decode", sign(body), body)
    end

    it("a signed body that is not JSON, or not strict JSON", function()
      for _, body in ipairs {
        "not json", "{", '{"id":"a","event":"test",}', '{"id":"a","event":"test"} trailing',
        '{"id":"a","event":"test","n":NaN}', '{"id":"a","event":"test","n":Infinity}',
        '{"id":"a","event":"test","n":-Infinity}', '{"id":"a","event":"test","n":0x10}',
        "{'id':'a'}", "\239\187\191{}",
      } do
        signed_refusal(body)
      end
    end)

    it("an empty body (nil, as ngx.req.get_body_data gives it)", function()
      refused("decode", sign(""), nil)
      refused("decode", sign(""), "")
    end)

    it("a signed body that is not an event object", function()
      for _, body in ipairs {
        "[1,2]", '"text"', "12", "null", "{}", '{"event":"test","created_at":"' .. CREATED .. '"}',
        '{"id":7,"event":"test","created_at":"' .. CREATED .. '"}',
        '{"id":"","event":"test","created_at":"' .. CREATED .. '"}',
        '{"id":"a","created_at":"' .. CREATED .. '"}',
      } do
        signed_refusal(body)
      end
    end)

    it("a signed body that is not UTF-8", function()
      local prefix = '{"id":"a","event":"test","created_at":"' .. CREATED .. '","payload":"'
      for _, bytes in ipairs {
        "\255", "\192\175", "\224\128\175", "\237\160\128", "\244\144\128\128", "\195", "\226\130",
        "caf\233", "\128", "\248\136\128\128\128",
      } do
        local err = signed_refusal(prefix .. bytes .. '"}')
        assert.matches("UTF%-8", err.message)
      end
    end)

    it("a signed body nested deeper than the decoder allows", function()
      signed_refusal(('{"id":"a","event":"test","p":') .. ("["):rep(5000) .. ("]"):rep(5000) .. "}")
    end)
  end)

  describe("refuses with stale", function()
    it("an event older than the window (default 5 minutes), and accepts one just inside it", function()
      local err = refused("stale", sign(BODY), BODY, { now = CREATED_AT + 301 })
      assert.are.equal("too_old", err.reason)
      assert.is_truthy(verify(sign(BODY), BODY, { now = CREATED_AT + 299 }))
    end)

    it("an event dated in the future beyond the window, and accepts a small clock skew", function()
      local err = refused("stale", sign(BODY), BODY, { now = CREATED_AT - 301 })
      assert.are.equal("future", err.reason)
      assert.is_truthy(verify(sign(BODY), BODY, { now = CREATED_AT - 30 }))
    end)

    it("with options.max_age in seconds, and options.now as a function", function()
      local clock = function() return CREATED_AT + 61 end
      assert.are.equal("too_old", refused("stale", sign(BODY), BODY, { max_age = 60, now = clock }).reason)
      assert.is_truthy(verify(sign(BODY), BODY, { max_age = 3600, now = CREATED_AT + 3000 }))
      local err = refused("stale", sign(BODY), BODY, { max_age = 0.5, now = CREATED_AT + 0.75 })
      assert.matches("max_age 0.5 s", err.message)
      assert.is_truthy(verify(sign(BODY), BODY, { max_age = 0.5, now = CREATED_AT + 0.25 }))
    end)

    it("an event whose created_at is missing or not an ISO 8601 time with a zone", function()
      for _, created in ipairs {
        false, '"yesterday"', '"2026-12-01T22:15:58"', '"2026-13-01T00:00:00Z"', '"2026-02-29T00:00:00Z"',
        '"2026-12-01T24:00:00Z"', '"2026-12-01T22:15:58+25:00"', '"2026-12-01"', "1796163358", "null",
        '"2026-12-01T22:15:58.Z"', '"2026-12-01T22:15:58Z "',
      } do
        local fields = { '"id":"a"', '"event":"test"' }
        if created then fields[3] = '"created_at":' .. created end
        local body = event_body(fields)
        local err = refused("stale", sign(body), body)
        assert.are.equal("no_created_at", err.reason, tostring(created))
      end
    end)

    it("accepts any created_at when max_age is false", function()
      local body = event_body { '"id":"a"', '"event":"test"' }
      assert.is_truthy(verify(sign(body), body, { max_age = false }))
      assert.is_truthy(verify(sign(BODY), BODY, { max_age = false, now = CREATED_AT + 1e6 }))
    end)

    it("a replayed id, through a store with add like a lua_shared_dict", function()
      local calls = {}
      local store = { data = {} }
      function store:add(key, value, ttl)
        calls[#calls + 1] = { key, value, ttl }
        if self.data[key] ~= nil then return false, "exists" end
        self.data[key] = value
        return true
      end
      assert.is_truthy(verify(sign(BODY), BODY, { seen = store }))
      local err = refused("stale", sign(BODY), BODY, { seen = store })
      assert.are.equal("replayed", err.reason)
      assert.are.equal("3a0da6ba-b2d1-473f-957c-51f6825e3623", err.id)
      -- the ttl covers the whole window, both sides of now
      assert.are.same({ "3a0da6ba-b2d1-473f-957c-51f6825e3623", true, 600 }, calls[1])
      assert.is_truthy(verify(sign(BODY), BODY, { seen = store, max_age = 90, now = CREATED_AT }) == nil)
      assert.are.equal(180, calls[3][3])
    end)

    it("records nothing for an event it refuses for another reason", function()
      local added = 0
      local store = { add = function() added = added + 1; return true end }
      refused("invalid_signature", sign(BODY, "x-other-secret"), BODY, { seen = store })
      refused("stale", sign(BODY), BODY, { seen = store, now = CREATED_AT + 1000 })
      refused("decode", sign("[]"), "[]", { seen = store })
      assert.are.equal(0, added)
    end)

    it("an event the store cannot record (store_failed), since it may be a replay", function()
      local store = { add = function() return false, "no memory" end }
      local err = refused("stale", sign(BODY), BODY, { seen = store })
      assert.are.equal("store_failed", err.reason)
      assert.matches("no memory", err.message)
    end)

    it("a replayed id, through a function(id, ttl) returning true when new", function()
      local ids, got = {}, {}
      local function seen(id, ttl)
        got[#got + 1] = ttl
        if ids[id] then return false end
        ids[id] = true
        return true
      end
      assert.is_truthy(verify(sign(BODY), BODY, { seen = seen }))
      assert.are.equal("replayed", refused("stale", sign(BODY), BODY, { seen = seen }).reason)
      assert.are.same({ 600, 600 }, got)
      -- anything but true counts as seen before
      assert.are.equal("replayed", refused("stale", sign(BODY), BODY, { seen = function() return 1 end }).reason)
    end)
  end)

  describe("raises on misuse of its arguments", function()
    local function raises(pattern, ...)
      local ok, err = pcall(webhooks.verify, ...)
      assert.is_false(ok)
      assert.is_string(err)
      assert.matches(pattern, err)
      assert.is_nil(err:find(SECRET, 1, true))
    end

    it("names the argument, and never shows the secret", function()
      local header = sign(BODY)
      raises("secret: must be a non%-empty string %(got nil%)", nil, header, BODY)
      raises("secret: must be a non%-empty string %(got an empty string%)", "", header, BODY)
      raises("secret: .*got number", 12345, header, BODY)
      raises("signature_header: .*got number", SECRET, 5, BODY)
      raises("raw_body: .*got table", SECRET, header, { BODY })
      raises("options: must be a table", SECRET, header, BODY, "fast")
      raises("options.maxAge: is not an option", SECRET, header, BODY, { maxAge = 60 })
      raises("options.max_age: must be a positive number", SECRET, header, BODY, { max_age = "300" })
      raises("options.max_age: must be a positive number", SECRET, header, BODY, { max_age = 0 })
      raises("options.max_age: must be a positive number", SECRET, header, BODY, { max_age = 0 / 0 })
      raises("options.now: must be seconds", SECRET, header, BODY, { now = "now" })
      raises("options.now: returned string", SECRET, header, BODY, { now = function() return "x" end })
      raises("options.seen: must be a function", SECRET, header, BODY, { seen = 5 })
      raises("options.seen: must be a function", SECRET, header, BODY, { seen = {} })
    end)

    it("blames the caller's line", function()
      local ok, err = pcall(function()
        local event = webhooks.verify(nil, "", "") -- not a tail call: this line is the caller
        return event
      end)
      assert.is_false(ok)
      assert.matches("webhooks_spec%.lua:%d+: truto%.webhooks%.verify: secret", err)
    end)
  end)
end)
