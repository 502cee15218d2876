-- mock.query: reads a raw query string the way Truto's server does.
--
-- Bracket syntax as in "Querying in Truto API" (the `qs` conventions):
--   a=1                      -> { a = "1" }
--   a=1&a=2                  -> { a = { "1", "2" } }
--   list[]=x&list[]=y        -> { list = { "x", "y" } }
--   list[0]=x&list[1]=y      -> { list = { "x", "y" } }
--   obj[a][b]=c              -> { obj = { a = { b = "c" } } }
-- Keys and values are percent-decoded ("+" is a space) before brackets are
-- read, since clients percent-encode the brackets too.
-- Pure Lua, no ngx: never validate here (that is mock.validate's job).
local json = require "mock.json"

local query = {}

local function percent_decode(text)
  text = text:gsub("+", " ")
  return (text:gsub("%%(%x%x)", function(hex)
    return string.char(tonumber(hex, 16))
  end))
end

-- "a[b][]" -> "a", { "b", "" }. A key whose brackets do not parse is taken
-- literally, as qs does.
local function split_key(key)
  local base, rest = key:match("^([^%[]+)(.*)$")
  if not base then
    return key, {}
  end
  local segments, pos = {}, 1
  while pos <= #rest do
    local segment, next_pos = rest:match("^%[([^%]]*)%]()", pos)
    if not segment then
      return key, {}
    end
    segments[#segments + 1] = segment
    pos = next_pos
  end
  return base, segments
end

-- Index segments ("0", "1") become integer keys 1, 2; "" appends.
local function child_key(node, segment)
  if segment == "" then
    return #node + 1
  elseif segment:match("^%d+$") and #segment < 10 then
    return tonumber(segment) + 1
  end
  return segment
end

local function store(params, key, value)
  local base, segments = split_key(key)
  if #segments == 0 then
    local previous = params[base]
    if previous == nil then
      params[base] = value
    elseif type(previous) == "table" then
      previous[#previous + 1] = value
    else
      params[base] = { previous, value }
    end
    return
  end
  local node, at = params, base
  for _, segment in ipairs(segments) do
    if type(node[at]) ~= "table" then
      node[at] = {}
    end
    node = node[at]
    at = child_key(node, segment)
  end
  node[at] = value
end

-- Tables with only integer keys become dense arrays in key order; any other
-- table is an object, its integer keys turned back into index strings.
local function finish(node)
  if type(node) ~= "table" then
    return node
  end
  local integer_keys, only_integers = {}, true
  for k, v in pairs(node) do
    node[k] = finish(v)
    if type(k) == "number" then
      integer_keys[#integer_keys + 1] = k
    else
      only_integers = false
    end
  end
  if only_integers and #integer_keys > 0 then
    table.sort(integer_keys)
    local array = json.array()
    for i, k in ipairs(integer_keys) do
      array[i] = node[k]
    end
    return array
  end
  local object = json.object()
  for k, v in pairs(node) do
    object[type(k) == "number" and tostring(k - 1) or k] = v
  end
  return object
end

-- Returns the parameters of a raw query string (nil or "" gives {}).
function query.parse(raw)
  local params = {}
  for pair in (raw or ""):gmatch("[^&]+") do
    local key, value = pair:match("^([^=]*)=(.*)$")
    if not key then
      key, value = pair, ""
    end
    key = percent_decode(key)
    if key ~= "" then
      store(params, key, percent_decode(value))
    end
  end
  return finish(params)
end

return query
