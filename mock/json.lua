-- mock.json: the mock server's JSON codec (dkjson, pure Lua, runs in nginx's LuaJIT).
--
-- dkjson rather than cjson because it keeps `[]` and `{}` apart when it
-- decodes (metatables), so a request's remote_data is echoed back as sent and
-- "the body must be a JSON object" can be checked exactly.
-- Not truto.core's decoder, though nginx could load its LuaJIT build: the
-- mock is the referee of what the module puts on the wire, so it reads
-- requests with a decoder that shares no code with the module (a mistake in
-- the core's JSON would otherwise be read back as right), and it keeps
-- serving, and saying what it received, while the core under test is broken
-- or not yet built for LuaJIT.
-- Never encode a table built here without json.object() when it may be empty:
-- an empty plain table encodes as `[]`.
local dkjson = require "dkjson"

local json = {}

json.null = dkjson.null

local OBJECT = { __jsontype = "object" }
local ARRAY = { __jsontype = "array" }

-- Key order for every object the mock writes: the error envelope, then
-- list's envelope, then each described resource's fields in truto.api's
-- order (resources by name), then request records. Keys not listed follow
-- in any order.
local key_order = { "statusCode", "error", "message", "truto_error_insight",
  "result", "next_cursor", "prev_cursor", "result_count", "is_partial_response" }
local resources, listed = require("truto.api").resources, {}
local resource_names = {}
for name in pairs(resources) do resource_names[#resource_names + 1] = name end
table.sort(resource_names)
for _, name in ipairs(resource_names) do
  for _, field in ipairs(resources[name].object or {}) do
    if not listed[field.name] then
      listed[field.name] = true
      key_order[#key_order + 1] = field.name
    end
  end
end
for _, key in ipairs { "request_line", "method", "path", "query", "params", "raw_header", "headers",
                       "body", "idempotency_key", "operation", "created", "status", "replayed",
                       "scripted", "at" } do
  key_order[#key_order + 1] = key
end

-- Marks t (default: a new table) as a JSON object, even when empty.
function json.object(t)
  return setmetatable(t or {}, OBJECT)
end

-- Marks t as a JSON array, even when empty.
function json.array(t)
  return setmetatable(t or {}, ARRAY)
end

function json.is_object(v)
  return type(v) == "table" and getmetatable(v) == OBJECT
end

function json.is_array(v)
  return type(v) == "table" and getmetatable(v) == ARRAY
end

-- Returns the JSON text of value; raises on values JSON cannot hold.
function json.encode(value)
  return assert(dkjson.encode(value, { keyorder = key_order }))
end

-- Returns the decoded value, or nil and a message. The whole text must be
-- one JSON value (trailing garbage is an error). JSON null becomes json.null.
function json.decode(text)
  if type(text) ~= "string" then
    return nil, "no JSON text"
  end
  local value, next_pos, err = dkjson.decode(text, 1, json.null, OBJECT, ARRAY)
  if err then
    return nil, err
  end
  if text:find("%S", next_pos) then
    return nil, "unexpected text after the JSON value at byte " .. next_pos
  end
  return value
end

return json
