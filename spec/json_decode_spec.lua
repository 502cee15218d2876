-- core.json_decode (csrc/decode_json.c), what truto.response.decode is:
-- strict RFC 8259 JSON to Lua in one pass, with the number rules of the
-- call path. Concrete cases first, then a differential check against the
-- pipeline it replaced (lua-cjson behind a Lua pre-scan, kept below as the
-- oracle) on a few thousand generated texts. Every Lua the module runs on.
-- Never touches the network; the locale spec writes only under build/.
local core = require "truto.core"
local response = require "truto.response"
local h = require "spec.support.helpers"

local decode = core.json_decode
local has_integers = h.has_integers

-- "integer" / "float" on 5.3+, "number" before.
local function number_kind(v)
  if math.type then return math.type(v) end
  return type(v)
end

local function describe_value(v)
  if type(v) == "string" then return ("%q"):format(v) end
  if type(v) == "number" then return number_kind(v) .. " " .. tostring(v) end
  return tostring(v)
end

-- Deep equality that tells integers from floats, -0.0 from 0.0 (floats),
-- and refuses metatables. Returns true, or false and where they differ.
local function same(a, b, path)
  path = path or "value"
  if type(a) ~= type(b) then
    return false, path .. ": " .. describe_value(a) .. " vs " .. describe_value(b)
  end
  if type(a) == "number" then
    if number_kind(a) ~= number_kind(b) or a ~= b
      or (a == 0 and number_kind(a) ~= "integer" and 1 / a ~= 1 / b) then
      return false, path .. ": " .. describe_value(a) .. " vs " .. describe_value(b)
    end
    return true
  end
  if type(a) ~= "table" then
    if a ~= b then return false, path .. ": " .. describe_value(a) .. " vs " .. describe_value(b) end
    return true
  end
  if getmetatable(a) ~= nil or getmetatable(b) ~= nil then return false, path .. ": a metatable" end
  for k, v in pairs(a) do
    local ok, where = same(v, rawget(b, k), path .. "[" .. describe_value(k) .. "]")
    if not ok then return false, where end
  end
  for k in pairs(b) do
    if rawget(a, k) == nil then return false, path .. "[" .. describe_value(k) .. "]: missing" end
  end
  return true
end

local function assert_same(expected, actual, text)
  local ok, where = same(expected, actual)
  assert(ok, ("for %q: %s"):format(text, tostring(where)))
end

-- Each case { text, why }: decode(text) refuses it with exactly that why.
local function assert_refused(cases)
  for _, case in ipairs(cases) do
    local v, why = decode(case[1])
    assert.is_nil(v, case[1])
    assert.equal(case[2], why)
  end
end

-- The integer n as this Lua reads an integer literal within 2^53.
local function int(n)
  if has_integers then return math.tointeger(n) end
  return n
end

-- The pipeline core.json_decode replaced (truto.response before it), kept
-- as the oracle: the four-pattern pre-check, the Lua rewrite of risky
-- numbers, a private lua-cjson with invalid numbers off, then integral
-- floats within 2^53 made integers again (what core.normalize did).
local old = {}
do
  local cjson = require "cjson.safe"
  local json = cjson.new()
  json.decode_invalid_numbers(false)
  local EXACT_DIGITS = "9007199254740992"

  local function needs_care(text)
    return (text:find("%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d%d") or text:find("%d%.[^%d]")
      or text:find("%d%.$") or text:find("[eE][-+]?%d%d%d")) ~= nil
  end

  local function beyond_exact(digits)
    if #digits ~= #EXACT_DIGITS then return #digits > #EXACT_DIGITS end
    return digits > EXACT_DIGITS
  end

  local function check_number(token)
    local i, frac, exp = token:match("^(%-?%d+)(%.?%d*)([eE]?[-+]?%d*)$")
    if not i or not (i:match("^%-?0$") or i:match("^%-?[1-9]%d*$"))
      or not (frac == "" or frac:match("^%.%d+$")) or not (exp == "" or exp:match("^[eE][-+]?%d+$")) then
      return nil, "invalid number " .. token
    end
    if frac == "" and exp == "" then
      if beyond_exact(i:match("%d+")) then return '"' .. token .. '"' end
      return token
    end
    local n = tonumber(token)
    if n == math.huge or n == -math.huge then return nil, "number out of range " .. token end
    return token
  end

  -- lua-cjson 2.1.0 decodes every number as a float on 5.3+.
  local function normalize(v)
    if type(v) == "number" and math.tointeger and math.type(v) == "float" and v == math.floor(v)
      and math.abs(v) <= 2 ^ 53 then
      return math.tointeger(v)
    elseif type(v) == "table" then
      for k, x in pairs(v) do v[k] = normalize(x) end
    end
    return v
  end

  local function exact_numbers(text)
    local out, pos, len, why = {}, 1, #text, nil
    local function number(token)
      local replaced, problem = check_number(token)
      if not replaced then why = why or problem; return nil end
      return replaced
    end
    while pos <= len do
      local quote = text:find('"', pos, true)
      local outside = text:sub(pos, (quote or len + 1) - 1)
      out[#out + 1] = (outside:gsub("%-?%d[%w%.+%-]*", number))
      if why then return nil, why end
      if not quote then break end
      local i = quote + 1
      while true do
        local stop = text:find('["\\]', i)
        if not stop then i = len; break end
        if text:byte(stop) == 92 then i = stop + 2 else i = stop; break end
      end
      out[#out + 1] = text:sub(quote, i)
      pos = i + 1
    end
    return table.concat(out)
  end

  function old.decode(text)
    if needs_care(text) then
      local safe, why = exact_numbers(text)
      if not safe then return nil, why end
      text = safe
    end
    local value, why = json.decode(text)
    if value == nil then return nil, why end
    return normalize(value)
  end

  -- The text between strings, and each string's raw body: (outside,
  -- inside) pieces in order, for the corrections below. An unterminated
  -- string's body runs to the end.
  local function pieces(text)
    local out, pos, len = {}, 1, #text
    while pos <= len do
      local quote = text:find('"', pos, true)
      out[#out + 1] = { outside = true, s = text:sub(pos, (quote or len + 1) - 1) }
      if not quote then break end
      local i = quote + 1
      while true do
        local stop = text:find('["\\]', i)
        if not stop then i = len + 1; break end
        if text:byte(stop) == 92 then i = stop + 2 else i = stop; break end
      end
      out[#out + 1] = { outside = false, s = text:sub(quote + 1, i - 1), closed = i <= len }
      pos = i + 1
    end
    return out
  end

  -- True when v holds an infinity anywhere.
  local function has_infinity(v)
    if v == math.huge or v == -math.huge then return true end
    if type(v) == "table" then
      for _, x in pairs(v) do
        if has_infinity(x) then return true end
      end
    end
    return false
  end

  -- The old pipeline, with its departures from the rules corrected (the
  -- rules win): lua-cjson reads a NUL as the end of the text (so it
  -- ignored what followed one outside strings, and refused one inside a
  -- string); strtod let `-.5` through as -0.5; and on LuaJIT, whose
  -- tonumber gives nil for an exponent of many digits, the overflow check
  -- let `1e<many digits>` through to lua-cjson as an infinity. Returns
  -- value | nil.
  function old.oracle(text)
    local parts = pieces(text)
    local rebuilt = {}
    for _, part in ipairs(parts) do
      if part.outside then
        if part.s:find("\0", 1, true) then return nil end
        if part.s:find("%-%.") then return nil end
        rebuilt[#rebuilt + 1] = part.s
      else
        -- a NUL byte inside a string is the same as \u0000 there, but
        -- for one right after a backslash: an escape that does not exist
        local body, i = {}, 1
        while i <= #part.s do
          local c = part.s:sub(i, i)
          if c == "\\" then
            if part.s:sub(i + 1, i + 1) == "\0" then return nil end
            body[#body + 1] = part.s:sub(i, i + 1)
            i = i + 2
          else
            body[#body + 1] = c == "\0" and "\\u0000" or c
            i = i + 1
          end
        end
        rebuilt[#rebuilt + 1] = '"' .. table.concat(body) .. (part.closed and '"' or "")
      end
    end
    local value = old.decode(table.concat(rebuilt))
    if has_infinity(value) then return nil end
    return value
  end
end

describe("core.json_decode", function()
  describe("structure", function()
    it("reads objects, arrays, strings, booleans and null", function()
      local v = assert(decode(' { "a" : [ 1 , "x" , true , false , null ] , "b" : { } , "c" : [ ] }\r\n\t'))
      assert_same({ a = { int(1), "x", true, false, core.null }, b = {}, c = {} }, v, "mixed")
    end)

    it("gives truto.null, the same value as cjson.null, for null", function()
      local v = assert(decode('{"a":null}'))
      assert.equal(core.null, v.a)
      assert.equal(require("cjson").null, v.a)
      assert.equal("userdata", type(decode("null")))
    end)

    it("reads any scalar as the whole text", function()
      assert.equal(int(7), decode("7"))
      assert.equal("s", decode('"s"'))
      assert.equal(true, decode(" true "))
      assert.equal(false, decode("false"))
      assert.equal(core.null, decode("null"))
    end)

    it("makes plain tables: arrays 1..n without a metatable, empty ones empty", function()
      local v = assert(decode('[[],{},[1,[2,[3]]]]'))
      assert.is_nil(getmetatable(v))
      assert.is_nil(getmetatable(v[1]))
      assert.is_nil(next(v[1]))
      assert.is_nil(next(v[2]))
      assert.equal(3, #v)
      assert.equal(int(3), v[3][2][2][1])
    end)

    it("keeps the last of two equal keys", function()
      assert_same({ a = int(3), b = int(2) }, decode('{"a":1,"b":2,"a":3}'), "dup")
      assert_same({ a = { int(2) } }, decode('{"a":{"x":1},"a":[2]}'), "dup tables")
    end)

    it("reads long arrays and wide objects whole (filled a chunk at a time)", function()
      local items, members = {}, {}
      for i = 1, 5000 do items[i] = tostring(i) end
      for i = 1, 3000 do members[i] = ('"k%d":%d'):format(i, i) end
      local a = assert(decode("[" .. table.concat(items, ",") .. "]"))
      assert.equal(5000, #a)
      for i = 1, 5000 do assert.equal(int(i), a[i]) end
      local o = assert(decode("{" .. table.concat(members, ",") .. "}"))
      local n = 0
      for k, v in pairs(o) do
        n = n + 1
        assert.equal("k" .. tostring(v), k)
      end
      assert.equal(3000, n)
      -- an array of arrays of objects, items after the nested ones
      local v = assert(decode('[[{"a":1},2,{"b":[3,{"c":4}]},5],6]'))
      assert_same({ { { a = int(1) }, int(2), { b = { int(3), { c = int(4) } } }, int(5) }, int(6) }, v, "nested")
    end)

    it("decodes objects of changing shapes right (the size guess is only a guess)", function()
      local wide = {}
      for i = 1, 100 do wide[i] = ('"id%d":%d'):format(i, i) end
      local texts = { '{"id":1}', "{" .. table.concat(wide, ",") .. "}", '{"id":1}', '{"id":1,"x":2}',
        '[{"id":1,"a":2},{"id":3},{"id":4,"b":5,"c":6,"d":7}]' }
      for _, text in ipairs(texts) do
        local v = assert(decode(text))
        assert_same(old.decode(text), v, text)
      end
    end)

    it("reads many different keys, long keys and keys with escapes (the key cache)", function()
      local parts = {}
      for i = 1, 600 do
        parts[#parts + 1] = ('"%s":%d'):format(("key%d"):format(i):rep(i % 7 + 1), i)
      end
      parts[#parts + 1] = '"' .. ("k"):rep(300) .. '":1'
      parts[#parts + 1] = '"a\\"b":2'
      parts[#parts + 1] = '"a":3'
      parts[#parts + 1] = '"":4'
      parts[#parts + 1] = '"\\u0061":5'
      local text = "{" .. table.concat(parts, ",") .. "}"
      for _ = 1, 3 do -- the second and third time from the cache
        local v = assert(decode(text))
        for i = 1, 600 do assert.equal(int(i), v[("key%d"):format(i):rep(i % 7 + 1)]) end
        assert.equal(int(1), v[("k"):rep(300)])
        assert.equal(int(2), v['a"b'])
        assert.equal(int(5), v.a) -- "\u0061" is "a" again: the last wins
        assert.equal(int(4), v[""])
      end
      -- keys sharing their first four bytes
      local v = assert(decode('{"user_id":1,"user_name":2,"user_mail":3,"user":4,"use":5,"us":6}'))
      assert_same({ user_id = int(1), user_name = int(2), user_mail = int(3), user = int(4), use = int(5),
        us = int(6) }, v, "prefixes")
    end)

    it("refuses nesting deeper than 1000 levels, and takes 1000", function()
      local ok = assert(decode(("["):rep(1000) .. ("]"):rep(1000)))
      local depth = 0
      while type(ok) == "table" do depth, ok = depth + 1, ok[1] end
      assert.equal(1000, depth)
      local v, why = decode(("["):rep(1001) .. ("]"):rep(1001))
      assert.is_nil(v)
      assert.equal("nested deeper than 1000 levels at byte 1001", why)
      v, why = decode(('{"a":'):rep(1001) .. "1" .. ("}"):rep(1001))
      assert.is_nil(v)
      assert.matches("nested deeper than 1000 levels at byte 5001", why, 1, true)
      assert.truthy(decode(('{"a":['):rep(500) .. ("]}"):rep(500)))
    end)

    it("survives a very deep text without overflowing any stack", function()
      local v, why = decode(("["):rep(200000))
      assert.is_nil(v)
      assert.matches("nested deeper than 1000", why, 1, true)
      v, why = decode(('{"k":['):rep(100000))
      assert.is_nil(v)
      assert.matches("nested deeper than 1000", why, 1, true)
    end)
  end)

  describe("numbers", function()
    it("reads integer literals within 2^53 as integers (numbers before 5.3)", function()
      for _, case in ipairs{ { "0", 0 }, { "-0", 0 }, { "42", 42 }, { "-42", -42 },
        { "9007199254740992", 9007199254740992 }, { "-9007199254740992", -9007199254740992 },
        { "1000000000000000", 1000000000000000 } } do
        local v = decode(case[1])
        assert.equal(case[2], v)
        assert.equal(has_integers and "integer" or "number", number_kind(v))
      end
    end)

    it("keeps integer literals beyond 2^53 as strings of their exact token", function()
      for _, text in ipairs{ "9007199254740993", "-9007199254740993", "12345678901234567890",
        "18446744073709551616", "-99999999999999999999999999999", ("9"):rep(400) } do
        assert.equal(text, decode(text))
        assert.equal(text, decode("[" .. text .. "]")[1])
      end
    end)

    it("makes integral numbers within 2^53 integers on 5.3+ (1e2, 3.0, -0.0, an underflow)", function()
      for _, case in ipairs{ { "1e2", 100 }, { "3.0", 3 }, { "-0.0", 0 }, { "1e-400", 0 },
        { "-1e-400", 0 }, { "1.5e3", 1500 }, { "9007199254740992.0", 9007199254740992 },
        { "9007199254740993.0", 9007199254740992 }, { "0e5", 0 }, { "2E+0", 2 }, { "100e-2", 1 } } do
        local v = decode(case[1])
        assert.equal(case[2], v, case[1])
        if has_integers then assert.equal("integer", math.type(v), case[1]) end
      end
      -- beyond 2^53 an integral float stays a float
      local v = decode("1e20")
      assert.equal(1e20, v)
      if has_integers then assert.equal("float", math.type(v)) end
      -- -0.0 keeps its sign where there are no integers
      if not has_integers then assert.equal(-math.huge, 1 / decode("-0.0")) end
    end)

    it("reads other numbers as the nearest double", function()
      local tokens = { "0.1", "-2.5", "1.7976931348623157e308", "4.9e-324", "2.2250738585072014e-308",
        "0.30000000000000004", "123.456e-5", "1e22", "1e23", "9007199254740993.5",
        "123456789012345678901234567890.5", "0.000000000000000000000000000001",
        "1.00000000000000011102230246251565404236316680908203125",
        "3.14159265358979323846264338327950288419716939937510582097494459", "5e-324", "2.5e-324" }
      -- and many generated ones, through both the fast path and strtod
      local seed = 12345
      local function rand(n)
        seed = seed * 16807 % 2147483647
        return seed % n
      end
      for _ = 1, 3000 do
        local digits = {}
        for i = 1, rand(25) + 1 do digits[i] = tostring(rand(10)) end
        local mantissa = table.concat(digits)
        mantissa = mantissa:gsub("^0+(%d)", "%1")
        local cut = rand(#mantissa + 1)
        local token = mantissa
        if cut > 0 and cut < #mantissa then token = mantissa:sub(1, cut) .. "." .. mantissa:sub(cut + 1) end
        if rand(2) == 0 then token = token .. (rand(2) == 0 and "e" or "E-") .. tostring(rand(340)) end
        if rand(2) == 0 then token = "-" .. token end
        tokens[#tokens + 1] = token
      end
      for _, token in ipairs(tokens) do
        local v, why = decode(token)
        local expected = tonumber(token)
        if expected == math.huge or expected == -math.huge then
          assert.is_nil(v, token)
          assert.matches("number out of range", why, 1, true)
        elseif type(v) ~= "string" then -- integer literals beyond 2^53 are strings
          assert(v == expected, ("%s: %s vs %s"):format(token, describe_value(v), describe_value(expected)))
        end
      end
    end)

    it("refuses numbers that overflow a double", function()
      for _, text in ipairs{ "1e400", "-1e400", "1" .. ("0"):rep(400) .. ".0", "1.8e308" } do
        local v, why = decode(text)
        assert.is_nil(v)
        assert.matches("number out of range", why, 1, true)
      end
      assert.equal("number out of range 1e400 at byte 7", select(2, decode('{"a": 1e400}')))
    end)

    it("refuses what RFC 8259 does not call a number", function()
      assert_refused{
        { '{"id":01}', "invalid number 01 at byte 7" },
        { "[1.]", "invalid number 1. at byte 2" },
        { "[.5]", "invalid number .5 at byte 2" },
        { "[-.5]", "invalid number -.5 at byte 2" },
        { "[+1]", "invalid number +1 at byte 2" },
        { "[1e]", "invalid number 1e at byte 2" },
        { "[1e+]", "invalid number 1e+ at byte 2" },
        { "[-]", "invalid number - at byte 2" },
        { "[0x1F]", "invalid number 0x1F at byte 2" },
        { "[1.e5]", "invalid number 1.e5 at byte 2" },
        { "[-01]", "invalid number -01 at byte 2" },
        { "[00]", "invalid number 00 at byte 2" },
        { "[NaN]", "invalid literal NaN at byte 2" },
        { "[Infinity]", "invalid literal Infinity at byte 2" },
        { "[-Infinity]", "invalid number -Infinity at byte 2" },
        { "[1-2]", "invalid number 1-2 at byte 2" },
        { "[1true]", "invalid number 1true at byte 2" },
        { "[--1]", "invalid number --1 at byte 2" },
      }
      local _, why = decode("[" .. ("1"):rep(100) .. "x]")
      assert.equal("invalid number " .. ("1"):rep(40) .. "... at byte 2", why)
    end)

    it("reads numbers the same under a locale whose decimal point is a comma", function()
      local code = [[
        local tokens = { "1.5", "0.1", "-2.5e-3", "1.7976931348623157e308", "3.14159265358979323846",
          "123456789012345678901234567890.5", "0.000000000000000000000001", "1e2" }
        local expected = {}
        for i, t in ipairs(tokens) do expected[i] = tonumber(t) end -- in the C locale
        local name
        for _, l in ipairs{ "de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "ru_RU.UTF-8" } do
          if os.setlocale(l, "numeric") then name = l break end
        end
        if not name then print("no comma locale") return end
        local core = require "truto.core"
        for i, t in ipairs(tokens) do
          local v = core.json_decode(t)
          assert(v == expected[i], t .. " read as " .. tostring(v))
        end
        assert(core.json_decode("[1,5]")[2] == 5)
        print("same in " .. name)
      ]]
      local out = h.run_lua(code)
      if out:match("no comma locale") then
        -- none installed: make one under build/ (localedef), if this system can
        local dir = "build/locales"
        os.execute("mkdir -p " .. dir)
        -- made once and kept (localedef takes seconds), one maker at a time
        local made = os.execute("cd " .. dir .. " && flock .lock sh -c 'test -d de_DE.UTF-8 || "
          .. "{ localedef -i de_DE -f UTF-8 ./new.$$ && mv ./new.$$ de_DE.UTF-8; }' >/dev/null 2>&1")
        if made == true or made == 0 then
          -- with LOCPATH set, glibc's newlocale (called by a library libcurl
          -- loads) leaks the path list it builds: this one process runs
          -- without make check's leak checks — the interpreter by its name
          -- (not the valgrind wrapper), LeakSanitizer off
          local asan = os.getenv("ASAN_OPTIONS")
          local env = { LOCPATH = dir, LUA_PATH = os.getenv("LUA_PATH") or "",
            LUA_CPATH = os.getenv("LUA_CPATH") or "", ASAN_OPTIONS = asan and (asan .. ":detect_leaks=0") }
          local cmd = {}
          for k, v in pairs(env) do cmd[#cmd + 1] = k .. "=" .. h.shell_quote(v) end
          cmd[#cmd + 1] = h.LUA:match("[^/]+$") .. " -e " .. h.shell_quote(code) .. " 2>&1"
          local p = assert(io.popen(table.concat(cmd, " ")))
          out = p:read("*a")
          p:close()
        end
      end
      if out:match("no comma locale") then
        pending("no locale with a decimal comma here (and localedef could not make one)")
        return
      end
      assert.matches("same in ", out, 1, true)
    end)
  end)

  describe("strings", function()
    it("reads every escape, \\u as UTF-8 and surrogate pairs as one 4-byte character", function()
      local v = assert(decode([["\"\\\/\b\f\n\r\t\u0041\u00e9\u20AC\ud83d\ude00\u0000\uFFFF"]]))
      assert.equal('"\\/\b\f\n\r\tA\195\169\226\130\172\240\159\152\128\0\239\191\191', v)
    end)

    it("refuses a lone or mismatched surrogate, a bad hex digit and an unknown escape", function()
      assert_refused{
        { [["\ud800"]], "lone surrogate \\ud800 at byte 2" },
        { [["\uDC00"]], "lone surrogate \\uDC00 at byte 2" },
        { [["\uD800\u0041"]], "lone surrogate \\uD800 at byte 2" },
        { [["\uD800\uD800"]], "lone surrogate \\uD800 at byte 2" },
        { [["x\uD83D"]], "lone surrogate \\uD83D at byte 3" },
        { [["\u12G4"]], "invalid \\u escape at byte 2" },
        { [["\u12"]], "invalid \\u escape at byte 2" },
        { [["\q"]], "invalid escape \\q at byte 2" },
        { [["\x41"]], "invalid escape \\x at byte 2" },
        { [["\U0041"]], "invalid escape \\U at byte 2" },
        { '"\\\1"', "invalid escape at byte 2" },
        { '"abc', "unterminated string at byte 1" },
        { '"abc\\', "unterminated string at byte 1" },
        { '"abc\\"', "unterminated string at byte 1" },
      }
    end)

    it("passes raw bytes through: control characters, invalid UTF-8, NUL", function()
      local raw = "\1\9\10\31\127\128\192\175\237\160\128\255\0x"
      assert.equal(raw, decode('"' .. raw .. '"'))
      assert.equal(raw .. "\n", decode('"' .. raw .. '\\n"'))
      assert.equal("a\0b", decode('{"k\0":"a\0b"}')["k\0"])
      -- a long one, scanned in blocks
      local long = ("\0\1\2\255 x"):rep(1000)
      assert.equal(long, decode('"' .. long .. '"'))
    end)

    it("reads a NUL outside strings as the byte it is, not as the end", function()
      assert_refused{ { "1\0", "unexpected byte 0x00 at byte 2 (expected the end of the text)" },
        { "[1]\0 ", "unexpected byte 0x00 at byte 4 (expected the end of the text)" },
        { "[1,\0]", "unexpected byte 0x00 at byte 4 (expected a value)" },
        { "\0", "unexpected byte 0x00 at byte 1 (expected a value)" } }
    end)
  end)

  describe("errors", function()
    it("name the problem and its byte", function()
      assert_refused{
        { "", "unexpected end of text at byte 1 (expected a value)" },
        { "  ", "unexpected end of text at byte 3 (expected a value)" },
        { "[", "unexpected end of text at byte 2 (expected a value)" },
        { "{", "unexpected end of text at byte 2 (expected a string key or '}')" },
        { '{"a"', "unexpected end of text at byte 5 (expected ':')" },
        { '{"a" 1}', "unexpected '1' at byte 6 (expected ':')" },
        { '{"a":1,}', "unexpected '}' at byte 8 (expected a string key)" },
        { "{1:2}", "unexpected '1' at byte 2 (expected a string key or '}')" },
        { "[1,]", "unexpected ']' at byte 4 (expected a value)" },
        { "[1 2]", "unexpected '2' at byte 4 (expected ',' or ']')" },
        { '{"a":1 "b":2}', "unexpected '\"' at byte 8 (expected ',' or '}')" },
        { "1 2", "unexpected '2' at byte 3 (expected the end of the text)" },
        { "[1]]", "unexpected ']' at byte 4 (expected the end of the text)" },
        { "\f1", "unexpected byte 0x0C at byte 1 (expected a value)" },
        { "1\v", "unexpected byte 0x0B at byte 2 (expected the end of the text)" },
        { "[tru]", "invalid literal tru at byte 2" },
        { "truex", "invalid literal truex at byte 1" },
        { "nul", "invalid literal nul at byte 1" },
        { "[\255]", "unexpected byte 0xFF at byte 2 (expected a value)" },
        { "{'a':1}", "unexpected ''' at byte 2 (expected a string key or '}')" },
      }
    end)

    it("are nil, why and never raised; a non-string is nil, \"not a string\"", function()
      for _, bad in ipairs{ 1, true, {}, core.null } do
        local v, why = decode(bad)
        assert.is_nil(v)
        assert.equal("not a string", why)
        v, why = response.decode(bad)
        assert.is_nil(v)
        assert.equal("not a string", why)
      end
      local v, why = decode()
      assert.is_nil(v)
      assert.equal("not a string", why)
    end)

    it("leave the stack as it was (many refusals in a row)", function()
      for i = 1, 2000 do
        local v, why = decode(('{"a":[1,{"b":"%s\\q"}]}'):format(("x"):rep(i % 50)))
        assert.is_nil(v)
        assert.is_string(why)
      end
      assert_same({ a = int(1) }, decode('{"a":1}'), "after")
    end)
  end)

  it("is what truto.response.decode calls", function()
    assert_same({ id = "12345678901234567890", n = int(5) },
      response.decode('{"id":12345678901234567890,"n":5.0}'), "response")
  end)
end)

describe("core.json_decode against the pipeline it replaced", function()
  -- Park-Miller: the same sequence on every Lua (exact in doubles)
  local seed = 20240501
  local function rand(n)
    seed = seed * 16807 % 2147483647
    return seed % n
  end
  local function pick(list) return list[rand(#list) + 1] end

  local SPACE = { "", "", "", " ", "\n", "\t ", "\r\n" }
  local NUMBERS = { "0", "-0", "1", "-1", "42", "9007199254740992", "-9007199254740992",
    "9007199254740993", "-9007199254740993", "12345678901234567890", "1000000000000000",
    "9999999999999999", "0.5", "-0.5", "3.0", "1e2", "1E2", "1e+2", "1e-2", "2.5e-3", "1e22", "1e23",
    "1e308", "1e309", "1e400", "-1e400", "1e-400", "4.9e-324", "0.1", "1.7976931348623157e308",
    "123456789012345678901234567890", "1234567890123456789012.5", "01", "-01", "00", "1.", "-1.", ".5",
    "-.5", "+1", "1e", "1e+", "-", "0x1F", "1.e5", "NaN", "Infinity", "-Infinity", "1E5", "0e0", "-0.0",
    "0.000000000000000000000000000001", "100e-2", "1.5e0300", "7e-0400", "12.34.5", "1e5e5", "--2" }
  local STRINGS = { "", "a", "name", "x y", "\\n", "\\\"", "\\\\", "\\/", "\\b\\f\\r\\t", "\\u0041",
    "\\u00e9", "\\u20ac", "\\ud83d\\ude00", "\\uD83D\\uDE00", "\\ud800", "\\udc00", "\\ud800x",
    "\\ud800\\u0041", "\\u12G4", "\\q", "\\x41", "\1", "\31", "\127", "\195\169", "\255", "\192\175",
    "\0", "a\0b", "1.", "12345678901234567890", "0x1F", "NaN", "e400", '\\"1.\\"', "\\" }
  local KEYS = { "id", "name", "a", "", "remote_data", "user_id", "user_name", "k\\u0061", "dup", "dup" }

  local function value(depth)
    local r = rand(depth > 6 and 6 or 9)
    if r == 0 or r == 1 then return pick(NUMBERS) end
    if r == 2 or r == 3 then return '"' .. pick(STRINGS) .. '"' end
    if r == 4 then return pick{ "true", "false", "null", "tru", "nul", "True" } end
    if r == 5 then return pick{ "[]", "{}", "[ ]", "{ }" } end
    if r == 6 or r == 7 then
      local items = {}
      for i = 1, rand(5) do items[i] = pick(SPACE) .. value(depth + 1) .. pick(SPACE) end
      return "[" .. table.concat(items, ",") .. "]"
    end
    local members = {}
    for i = 1, rand(5) do
      members[i] = pick(SPACE) .. '"' .. pick(KEYS) .. '"' .. pick(SPACE) .. ":" .. pick(SPACE) .. value(depth + 1)
    end
    return "{" .. table.concat(members, ",") .. "}"
  end

  local NOISE = { "", "\0", ",", "]", "}", "[", "{", '"', ":", "1", "-", ".", "e", "x", " ", "\\", "\255" }

  -- A text: mostly valid, a third of them mutated (a byte dropped, one
  -- inserted, the end cut off, a piece repeated).
  local function text()
    local t = pick(SPACE) .. value(0) .. pick(SPACE)
    local m = rand(12)
    if m == 0 and #t > 0 then
      local i = rand(#t) + 1
      t = t:sub(1, i - 1) .. t:sub(i + 1)
    elseif m == 1 then
      local i = rand(#t + 1)
      t = t:sub(1, i) .. pick(NOISE) .. t:sub(i + 1)
    elseif m == 2 then
      t = t:sub(1, rand(#t + 1))
    elseif m == 3 and #t > 1 then
      local i = rand(#t) + 1
      t = t:sub(1, i) .. t:sub(i, i + rand(5)) .. t:sub(i + 1)
    end
    return t
  end

  it("agrees on 4000 generated texts: the same accepted, the same values", function()
    local accepted, refused = 0, 0
    for _ = 1, 4000 do
      local t = text()
      local expected = old.oracle(t)
      local actual, why = decode(t)
      if expected == nil then
        assert(actual == nil, ("%q: accepted (%s), the oracle refuses"):format(t, describe_value(actual)))
        assert.is_string(why)
        refused = refused + 1
      else
        assert(actual ~= nil, ("%q: refused (%s), the oracle accepts"):format(t, tostring(why)))
        assert_same(expected, actual, t)
        accepted = accepted + 1
      end
    end
    -- both sides of the decision were exercised
    assert(accepted > 1000, "only " .. accepted .. " accepted")
    assert(refused > 800, "only " .. refused .. " refused")
  end)

  -- v as the default options give it: marks off, integers beyond 2^53 as
  -- their digits; fails when a table has a metatable other than the mark.
  local function unmarked(v)
    if type(v) == "number" and math.type and math.type(v) == "integer" and (v > 2 ^ 53 or v < -2 ^ 53) then
      return tostring(v)
    elseif type(v) == "table" then
      local mt = getmetatable(v)
      assert(mt == nil or mt == core.array_mt, "a metatable other than truto.array's")
      local copy = {}
      for k, x in pairs(v) do copy[k] = unmarked(x) end
      return copy
    end
    return v
  end

  it("with every option on, refuses what the default refuses, and otherwise gives the same values or"
    .. " refuses only for an option", function()
    local options = { max_depth = 4, duplicate_keys = false, mark_arrays = true, big_integers = "integer" }
    local same_value, refused_by_option = 0, 0
    for _ = 1, 3000 do
      local t = text()
      local plain = decode(t)
      local strict, why = decode(t, options)
      if plain == nil then
        assert(strict == nil, ("%q: accepted with options, refused without"):format(t))
      elseif strict == nil then
        assert(why:find("^duplicate key ") or why:find("^nested deeper than 4 levels ")
          or why:find("^integer %-?%d+ does not fit in 64 bits ") or why:find("^integer %-?%d+ is beyond 2%^53, "),
          ("%q: refused for %s"):format(t, why))
        refused_by_option = refused_by_option + 1
      else
        assert_same(plain, unmarked(strict), t)
        same_value = same_value + 1
      end
    end
    assert(same_value > 800, "only " .. same_value .. " accepted with options")
    assert(refused_by_option > 30, "only " .. refused_by_option .. " refused for an option")
  end)
end)

describe("core.json_decode's options", function()
  it("max_depth refuses nesting deeper than asked, and allows it to that depth", function()
    assert.truthy(decode("[[1]]", { max_depth = 2 }))
    assert_same({ { { 1 } } }, decode("[[[1]]]", { max_depth = 3 }), "[[[1]]]")
    local v, why = decode('{"a":[{}]}', { max_depth = 2 })
    assert.is_nil(v)
    assert.equal("nested deeper than 2 levels at byte 7", why)
    v, why = decode(("["):rep(1001) .. ("]"):rep(1001))
    assert.is_nil(v)
    assert.equal("nested deeper than 1000 levels at byte 1001", why)
  end)

  it("duplicate_keys = false refuses a repeated key at any depth, null values included", function()
    for _, case in ipairs {
      { '{"a":1,"a":2}', 'duplicate key "a" at byte 8' },
      { '{"x":{"b":null,"b":null}}', 'duplicate key "b" at byte 16' },
      { '[{"k\\u00e9":1,"k\\u00e9":2}]', 'duplicate key "k??" at byte 15' },
      { '{"' .. ("n"):rep(50) .. '":1,"' .. ("n"):rep(50) .. '":1}',
        'duplicate key "' .. ("n"):rep(40) .. '..." at byte 57' },
    } do
      local v, why = decode(case[1], { duplicate_keys = false })
      assert.is_nil(v, case[1])
      assert.equal(case[2], why)
    end
    assert_same({ a = 1, b = { a = 2 } }, decode('{"a":1,"b":{"a":2}}', { duplicate_keys = false }), "nested")
    assert_same({ a = int(2) }, decode('{"a":1,"a":2}'), "the last wins by default")
  end)

  it("mark_arrays gives every array, empty or not, truto.array's metatable, and objects none", function()
    local v = decode('{"a":[],"b":[1,[2]],"o":{}}', { mark_arrays = true })
    assert.is_nil(getmetatable(v))
    assert.is_nil(getmetatable(v.o))
    assert.equal(core.array_mt, getmetatable(v.a))
    assert.equal(core.array_mt, getmetatable(v.b))
    assert.equal(core.array_mt, getmetatable(v.b[2]))
    assert.equal(int(2), v.b[2][1])
    assert.is_nil(getmetatable(decode("[]")))
  end)

  it("big_integers = \"integer\" keeps integers beyond 2^53 exact as Lua integers, or refuses them", function()
    if has_integers then
      assert.equal(math.tointeger(9007199254740993), decode("9007199254740993", { big_integers = "integer" }))
      assert.equal(math.maxinteger, decode("9223372036854775807", { big_integers = "integer" }))
      assert.equal(math.mininteger, decode("-9223372036854775808", { big_integers = "integer" }))
      local v, why = decode("[1,18446744073709551616]", { big_integers = "integer" })
      assert.is_nil(v)
      assert.equal("integer 18446744073709551616 does not fit in 64 bits at byte 4 (it would be rounded:"
        .. " write it as a string)", why)
    else
      local v, why = decode("[1,9007199254740993]", { big_integers = "integer" })
      assert.is_nil(v)
      assert.equal("integer 9007199254740993 is beyond 2^53, the largest integer " .. _VERSION
        .. " keeps exact, at byte 4 (it would be rounded: write it as a string)", why)
    end
    assert.equal("9007199254740993", decode("9007199254740993", { big_integers = "string" }))
    assert.equal("9007199254740993", decode("9007199254740993"))
  end)

  it("raises on a misspelt or mistyped option, naming it", function()
    for _, case in ipairs {
      { { depth = 3 }, "options.depth is not an option" },
      { { max_depth = 0 }, "options.max_depth must be a whole number from 1 to 1000" },
      { { max_depth = 2.5 }, "options.max_depth must be a whole number from 1 to 1000" },
      { { duplicate_keys = "no" }, "options.duplicate_keys must be a boolean" },
      { { mark_arrays = 1 }, "options.mark_arrays must be a boolean" },
      { { big_integers = "float" }, "options.big_integers must be \"string\" or \"integer\"" },
      { 7, "table expected, got number" },
    } do
      local ok, err = pcall(decode, "1", case[1])
      assert.is_false(ok)
      assert.truthy(tostring(err):find(case[2], 1, true), tostring(err))
    end
  end)
end)

describe("core.utf8_check", function()
  it("accepts RFC 3629 UTF-8 (a NUL included) and gives the first bad byte's position", function()
    assert.is_true(core.utf8_check(""))
    assert.is_true(core.utf8_check("caf\195\169 \240\159\152\128 a\0b " .. ("x"):rep(40)))
    for _, case in ipairs {
      { "\255", 1 }, { "ab\192\175", 3 }, { "\237\160\128", 1 }, { "\244\144\128\128", 1 },
      { ("a"):rep(17) .. "\195", 18 }, { "\226\130", 1 }, { "caf\233!", 4 }, { "\128", 1 },
    } do
      local ok, at = core.utf8_check(case[1])
      assert.is_false(ok, case[1])
      assert.equal(case[2], at)
    end
  end)

  it("starts where asked", function()
    assert.is_true(core.utf8_check("\255ok", 2))
    local ok, at = core.utf8_check("\255ok\255", 2)
    assert.is_false(ok)
    assert.equal(4, at)
    assert.is_true(core.utf8_check("\255", 5))
  end)
end)
