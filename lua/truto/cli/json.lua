-- truto.cli.json: exact JSON for the truto-groups command.
--
-- decode() keeps every integer exact (lua-cjson 2.1.0 turns them into
-- floats), marks arrays with truto.array so an empty one stays an array,
-- and gives JSON null as truto.null; encode() is the C core's exact encoder
-- (integers exact, keys sorted). Must never round a number silently: an
-- integer too large for 64 bits (for 2^53 on Lua 5.1, 5.2 and LuaJIT,
-- whose numbers are doubles) is refused with a message, not rounded.
-- Loads and decodes alike on every Lua (no 5.3-only syntax or library).

local core = require "truto.core"

local M = {}

local null, array = core.null, core.array
local floor, tointeger = math.floor, math.tointeger

-- utf8_len(s [, i]) -> number of characters from i | nil, position of the
-- first byte that is not valid UTF-8 (RFC 3629: no overlongs, surrogates or
-- code points past U+10FFFF), the same on every Lua version.
local function utf8_len(s, i)
  i = i or 1
  if not s:find("[\128-\255]", i) then return #s - i + 1 end
  local n, len = 0, #s
  while i <= len do
    local c, size, lo, hi = s:byte(i), 1, 0x80, 0xBF
    if c >= 0x80 then
      if c >= 0xC2 and c <= 0xDF then size = 2
      elseif c >= 0xE0 and c <= 0xEF then size = 3
      elseif c >= 0xF0 and c <= 0xF4 then size = 4
      else return nil, i end
      if c == 0xE0 then lo = 0xA0 elseif c == 0xED then hi = 0x9F
      elseif c == 0xF0 then lo = 0x90 elseif c == 0xF4 then hi = 0x8F end
      local second = s:byte(i + 1)
      if not second or second < lo or second > hi then return nil, i end
      for k = i + 2, i + size - 1 do
        local b = s:byte(k)
        if not b or b < 0x80 or b > 0xBF then return nil, i end
      end
    end
    i, n = i + size, n + 1
  end
  return n
end

-- The UTF-8 bytes of one code point (below U+110000, not a surrogate).
local function utf8_char(code)
  if code < 0x80 then return string.char(code) end
  if code < 0x800 then return string.char(0xC0 + floor(code / 0x40), 0x80 + code % 0x40) end
  if code < 0x10000 then
    return string.char(0xE0 + floor(code / 0x1000), 0x80 + floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
  end
  return string.char(0xF0 + floor(code / 0x40000), 0x80 + floor(code / 0x1000) % 0x40,
    0x80 + floor(code / 0x40) % 0x40, 0x80 + code % 0x40)
end

-- An integer literal's exact value, or nil when this Lua cannot hold it
-- exactly: 64-bit integers on 5.3+, doubles (up to 2^53) before.
local MAX_EXACT = "9007199254740992"
local function exact_integer(literal)
  if tointeger then return tointeger(tonumber(literal)) end
  local digits = literal:match("%d+"):match("^0*(%d.-)$")
  if #digits > #MAX_EXACT or (#digits == #MAX_EXACT and digits > MAX_EXACT) then return nil end
  return tonumber(literal)
end
local TOO_BIG = tointeger and "does not fit in 64 bits" or ("is beyond 2^53, the largest integer "
  .. _VERSION .. " keeps exact,")

-- M.encode(value) -> json | nil, message
function M.encode(value)
  local json, field, message = core.encode_json(value)
  if not json then return nil, message or field end
  return json
end

local ESCAPES = { ['"'] = '"', ["\\"] = "\\", ["/"] = "/", b = "\b", f = "\f", n = "\n",
  r = "\r", t = "\t" }

local decode_value

local function fail(text, pos, what)
  local shown = text:sub(pos, pos + 9)
  if shown == "" then shown = "the end" else shown = string.format("%q", shown) end
  error({ json_problem = what .. " at character " .. pos .. " (near " .. shown .. ")" }, 0)
end

local function skip_space(text, pos)
  return text:find("[^ \t\r\n]", pos) or #text + 1
end

local function decode_string(text, pos)
  -- pos is at the opening quote
  local parts, i = {}, pos + 1
  while true do
    local stop = text:find('["\\%z\1-\31]', i)
    if not stop then fail(text, pos, "unterminated string") end
    parts[#parts + 1] = text:sub(i, stop - 1)
    local c = text:sub(stop, stop)
    if c == '"' then
      local s = table.concat(parts)
      if not utf8_len(s) then fail(text, pos, "invalid UTF-8 in a string") end
      return s, stop + 1
    elseif c == "\\" then
      local e = text:sub(stop + 1, stop + 1)
      if ESCAPES[e] then
        parts[#parts + 1] = ESCAPES[e]
        i = stop + 2
      elseif e == "u" then
        local hex = text:match("^%x%x%x%x", stop + 2)
        if not hex then fail(text, stop, "bad \\u escape") end
        local code = tonumber(hex, 16)
        i = stop + 6
        if code >= 0xD800 and code <= 0xDBFF then
          local low = text:match("^\\u(%x%x%x%x)", i)
          low = low and tonumber(low, 16)
          if not low or low < 0xDC00 or low > 0xDFFF then
            fail(text, stop, "unpaired surrogate in a \\u escape")
          end
          code = 0x10000 + (code - 0xD800) * 0x400 + (low - 0xDC00)
          i = i + 6
        elseif code >= 0xDC00 and code <= 0xDFFF then
          fail(text, stop, "unpaired surrogate in a \\u escape")
        end
        parts[#parts + 1] = utf8_char(code)
      else
        fail(text, stop, "bad escape")
      end
    else
      fail(text, stop, "control character in a string")
    end
  end
end

local function decode_number(text, pos)
  local literal = text:match("^-?%d+%.?%d*[eE]?[-+]?%d*", pos)
  if not literal or not literal:match("^-?0$") and not literal:match("^-?0[%.eE]")
    and not literal:match("^-?[1-9]") then
    fail(text, pos, "bad number")
  end
  if not literal:match("^-?%d+$") and not literal:match("^-?%d+%.%d+$")
    and not literal:match("^-?%d+[eE][-+]?%d+$") and not literal:match("^-?%d+%.%d+[eE][-+]?%d+$") then
    fail(text, pos, "bad number")
  end
  local value
  if literal:match("^-?%d+$") then
    value = exact_integer(literal)
    if not value then
      fail(text, pos, "the integer " .. literal .. " " .. TOO_BIG .. " and would be rounded"
        .. " (send it as a string)")
    end
  else
    value = tonumber(literal)
    if value == math.huge or value == -math.huge then
      fail(text, pos, "the number " .. literal .. " is out of range")
    end
  end
  return value, pos + #literal
end

local function decode_object(text, pos, depth)
  local object, seen = {}, {}
  pos = skip_space(text, pos + 1)
  if text:sub(pos, pos) == "}" then return object, pos + 1 end
  while true do
    if text:sub(pos, pos) ~= '"' then fail(text, pos, "expected a string key") end
    local key
    key, pos = decode_string(text, pos)
    if seen[key] then fail(text, pos, "duplicate key " .. string.format("%q", key)) end
    seen[key] = true
    pos = skip_space(text, pos)
    if text:sub(pos, pos) ~= ":" then fail(text, pos, "expected ':'") end
    object[key], pos = decode_value(text, skip_space(text, pos + 1), depth + 1)
    pos = skip_space(text, pos)
    local c = text:sub(pos, pos)
    if c == "}" then return object, pos + 1 end
    if c ~= "," then fail(text, pos, "expected ',' or '}'") end
    pos = skip_space(text, pos + 1)
  end
end

local function decode_array(text, pos, depth)
  local list, n = {}, 0
  pos = skip_space(text, pos + 1)
  if text:sub(pos, pos) == "]" then return array(list), pos + 1 end
  while true do
    n = n + 1
    list[n], pos = decode_value(text, pos, depth + 1)
    pos = skip_space(text, pos)
    local c = text:sub(pos, pos)
    if c == "]" then return array(list), pos + 1 end
    if c ~= "," then fail(text, pos, "expected ',' or ']'") end
    pos = skip_space(text, pos + 1)
  end
end

local MAX_DEPTH = 100

function decode_value(text, pos, depth)
  if depth > MAX_DEPTH then fail(text, pos, "nested deeper than " .. MAX_DEPTH) end
  local c = text:sub(pos, pos)
  if c == "{" then return decode_object(text, pos, depth)
  elseif c == "[" then return decode_array(text, pos, depth)
  elseif c == '"' then return decode_string(text, pos)
  elseif c == "-" or c:match("%d") then return decode_number(text, pos)
  elseif text:sub(pos, pos + 3) == "true" then return true, pos + 4
  elseif text:sub(pos, pos + 4) == "false" then return false, pos + 5
  elseif text:sub(pos, pos + 3) == "null" then return null, pos + 4
  end
  fail(text, pos, c == "" and "unexpected end" or "unexpected character")
end

-- M.decode(text) -> value | nil, message. The whole text must be one value
-- (surrounding whitespace allowed).
function M.decode(text)
  local ok, value, pos = pcall(function()
    local v, p = decode_value(text, skip_space(text, 1), 0)
    return v, skip_space(text, p)
  end)
  if not ok then
    if type(value) == "table" and value.json_problem then return nil, value.json_problem end
    error(value, 0)
  end
  if pos <= #text then return nil, "unexpected text after the JSON value at character " .. pos end
  return value
end

-- True when v is a decoded JSON object (a table that is not an array).
function M.is_object(v)
  return type(v) == "table" and v ~= null and getmetatable(v) == nil
end

M.null = null

-- M.text(s) -> s with every invalid UTF-8 byte replaced by U+FFFD, so any
-- message (a server's, a file's) can go into a JSON line.
function M.text(s)
  s = tostring(s)
  if utf8_len(s) then return s end
  local out, i = {}, 1
  while i <= #s do
    local _, bad = utf8_len(s, i)
    if not bad then
      out[#out + 1] = s:sub(i)
      break
    end
    out[#out + 1] = s:sub(i, bad - 1)
    out[#out + 1] = "\239\191\189"
    i = bad + 1
  end
  return table.concat(out)
end

return M
