-- The command-line tool's helper modules are installed by the rock on every
-- Lua: they load there and give the same answers (digests, keys, decoded
-- JSON) everywhere, except where a Lua cannot hold an integer exactly, and
-- then they refuse rather than round.
local sha256 = require("truto.core").sha256
local json = require "truto.cli.json"
local rows = require "truto.cli.rows"
local h = require "spec.support.helpers"

describe("core.sha256", function()
  it("gives the FIPS 180-4 digests", function()
    assert.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", sha256(""))
    assert.equal("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", sha256("abc"))
    assert.equal("248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
      sha256("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"))
    assert.equal("41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3",
      sha256(string.rep("a", 1000)))
  end)

  it("handles every byte value and the padding boundaries", function()
    local bytes = {}
    for i = 0, 255 do bytes[#bytes + 1] = string.char(i) end
    assert.equal("40aff2e9d2d8922e47afd4648e6967497158785fbd1da870e7110266bf944880",
      sha256(table.concat(bytes)))
    assert.equal("9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318",
      sha256(string.rep("a", 55)))
    assert.equal("ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb",
      sha256(string.rep("a", 64)))
  end)
end)

describe("truto.cli.rows keys", function()
  it("are version-8 UUIDs, the same on every Lua", function()
    assert.equal("7803902b-a303-85ba-aadf-cb333acd1864", rows.next_key("abc"))
  end)
end)

describe("truto.cli.json", function()
  it("decodes escapes, surrogate pairs and UTF-8", function()
    local v = assert(json.decode([[{"s":"a\u00e9\ud83d\ude00\n","t":"caf]] .. "\195\169" .. [["}]]))
    assert.equal("a\195\169\240\159\152\128\n", v.s)
    assert.equal("caf\195\169", v.t)
  end)

  it("refuses invalid UTF-8, overlongs and encoded surrogates", function()
    for _, bad in ipairs{ "\255", "\192\175", "\237\160\128", "\244\144\128\128", "\195" } do
      local v, why = json.decode('"' .. bad .. '"')
      assert.is_nil(v)
      assert.equal("invalid UTF-8 at byte 2", why)
    end
  end)

  it("keeps integers exact, and refuses rather than rounds one this Lua cannot hold", function()
    assert.equal(9007199254740992, json.decode("9007199254740992"))
    assert.equal(-42, json.decode("-42"))
    local v, why = json.decode("[12345678901234567890]")
    assert.is_nil(v)
    assert.matches("^integer 12345678901234567890 .* at byte 2 %(it would be rounded: write it as a string%)$", why)
    if h.has_integers then
      assert.equal(9007199254740993, json.decode("9007199254740993"))
      assert.equal("integer", math.type(json.decode("9007199254740993")))
      assert.equal(math.maxinteger, json.decode("9223372036854775807"))
      assert.equal(math.mininteger, json.decode("-9223372036854775808"))
      for _, big in ipairs{ "9223372036854775808", "-9223372036854775809" } do
        v, why = json.decode(big)
        assert.is_nil(v)
        assert.equal("integer " .. big .. " does not fit in 64 bits at byte 1 (it would be rounded:"
          .. " write it as a string)", why)
      end
    else
      v, why = json.decode("9007199254740993")
      assert.is_nil(v)
      assert.equal("integer 9007199254740993 is beyond 2^53, the largest integer " .. _VERSION
        .. " keeps exact, at byte 1 (it would be rounded: write it as a string)", why)
    end
  end)

  it("refuses a repeated key, nesting deeper than 100 and text after the value", function()
    local cases = {
      { '{"name":"a","name":"b"}', 'duplicate key "name" at byte 13' },
      { string.rep("[", 101) .. string.rep("]", 101), "nested deeper than 100 levels at byte 101" },
      { '{"name":"a"} {}', "unexpected '{' at byte 14 (expected the end of the text)" },
    }
    for _, case in ipairs(cases) do
      local v, why = json.decode(case[1])
      assert.is_nil(v)
      assert.equal(case[2], why)
    end
    assert.truthy(json.decode(string.rep("[", 100) .. string.rep("]", 100)))
  end)

  it("keeps an empty array an array and an empty object an object when sent back", function()
    local v = assert(json.decode('{"a":[],"o":{},"n":[1,[]]}'))
    assert.is_true(json.is_object(v))
    assert.is_false(json.is_object(v.a))
    assert.is_true(json.is_object(v.o))
    assert.equal('{"a":[],"n":[1,[]],"o":{}}', json.encode(v))
  end)

  it("replaces invalid UTF-8 in text with U+FFFD", function()
    assert.equal("ok\239\191\189x\239\191\189", json.text("ok\255x\195"))
    assert.equal("caf\195\169", json.text("caf\195\169"))
  end)
end)
