-- truto.cli.json: exact JSON for the truto-groups command.
--
-- decode() keeps every integer exact (lua-cjson 2.1.0 turns them into
-- floats), marks arrays with truto.array so an empty one stays an array,
-- and gives JSON null as truto.null; encode() is the C core's exact encoder
-- (integers exact, keys sorted). Must never round a number silently: an
-- integer too large for 64 bits is refused with a message, not rounded.
-- Lua 5.3+ (integers); only the command-line tool loads it.

local core = require "truto.core"

local M = {}

local null, array = core.null, core.array

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
      if not utf8.len(s) then fail(text, pos, "invalid UTF-8 in a string") end
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
          code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00)
          i = i + 6
        elseif code >= 0xDC00 and code <= 0xDFFF then
          fail(text, stop, "unpaired surrogate in a \\u escape")
        end
        parts[#parts + 1] = utf8.char(code)
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
    value = math.tointeger(tonumber(literal))
    if not value then
      fail(text, pos, "the integer " .. literal .. " does not fit in 64 bits and would be rounded"
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
  if utf8.len(s) then return s end
  local out, i = {}, 1
  while i <= #s do
    local _, bad = utf8.len(s, i)
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
