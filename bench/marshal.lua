-- bench/marshal.lua: the marshalling micro-benchmark, in one Lua 5.4
-- process — building the request (target with its query string, and the
-- JSON body) for the typical group (bench/payload.lua) with the C core,
-- versus the same in plain Lua: lua-cjson for the body and a Lua URL
-- encoder (bracket syntax, percent-encoding outside the unreserved set,
-- sorted keys) for the query.
--   lua5.4 bench/marshal.lua [BUILDS] [REPEATS]
-- Prints "ok C_NS LUA_NS" (median ns per build over REPEATS timings of
-- BUILDS builds each). Exits 1 when the two builders disagree: a faster
-- builder of a different request would prove nothing. The C core also
-- validates against the schema (types, enums, uuid, UTF-8) and sorts the
-- JSON keys; the plain-Lua builder does neither, which favours it.
local schema = require "truto.schema"
local cjson = require "cjson"
local payload = dofile("bench/payload.lua")

local builds = tonumber(arg[1]) or 100000
local repeats = tonumber(arg[2]) or 5

local build = require("truto.call").compile(require("truto.api").resources.groups.operations.create).build
local body, query = payload.body, payload.query

-- ---- the plain-Lua builder -------------------------------------------

local format, byte, gsub, concat, sort = string.format, string.byte, string.gsub, table.concat, table.sort

local function escape_char(c) return format("%%%02X", byte(c)) end

local function escape(s)
  return (gsub(s, "[^%w%-%._~]", escape_char))
end

local function is_array(t)
  local n = #t
  if n == 0 then return next(t) == nil end
  local count = 0
  for _ in pairs(t) do count = count + 1 end
  return count == n
end

local function add_value(parts, prefix, v)
  local tv = type(v)
  if tv == "table" then
    if is_array(v) then
      for i = 1, #v do add_value(parts, prefix .. "%5B%5D", v[i]) end
    else
      local keys = {}
      for k in pairs(v) do keys[#keys + 1] = k end
      sort(keys)
      for i = 1, #keys do
        local k = keys[i]
        add_value(parts, prefix .. "%5B" .. escape(k) .. "%5D", v[k])
      end
    end
  elseif tv == "boolean" then
    parts[#parts + 1] = prefix .. "=" .. (v and "true" or "false")
  else
    parts[#parts + 1] = prefix .. "=" .. escape(tostring(v))
  end
end

local function encode_query(q)
  local keys, parts = {}, {}
  for k in pairs(q) do keys[#keys + 1] = k end
  sort(keys)
  for i = 1, #keys do add_value(parts, escape(keys[i]), q[keys[i]]) end
  return concat(parts, "&")
end

local path = schema.path
local function lua_build(b, q)
  local qs = encode_query(q)
  return qs ~= "" and (path .. "?" .. qs) or path, cjson.encode(b)
end

-- ---- the two must build the same request ------------------------------

local function same(a, b)
  if type(a) ~= type(b) then return false end
  if type(a) ~= "table" then return a == b end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

local c_target, c_json = build(body, query)
local l_target, l_json = lua_build(body, query)
if not c_target or c_target ~= l_target or not same(cjson.decode(c_json), cjson.decode(l_json))
    or #c_json ~= #l_json then
  io.stderr:write("marshal: the builders disagree:\n  C:   ", tostring(c_target), " ", tostring(c_json),
    "\n  Lua: ", l_target, " ", l_json, "\n")
  os.exit(1)
end

-- ---- timing --------------------------------------------------------------

local clock = os.clock

local function time_c()
  local t0 = clock()
  for _ = 1, builds do build(body, query) end
  return (clock() - t0) / builds * 1e9
end

local function time_lua()
  local t0 = clock()
  for _ = 1, builds do lua_build(body, query) end
  return (clock() - t0) / builds * 1e9
end

local function median(list)
  sort(list)
  return list[(#list + 1) // 2]
end

-- warm up both, then alternate so drift hits them alike
time_c(); time_lua()
local c_ns, lua_ns = {}, {}
for i = 1, repeats do
  collectgarbage("collect")
  c_ns[i] = time_c()
  collectgarbage("collect")
  lua_ns[i] = time_lua()
end
io.write(("ok %.1f %.1f %d\n"):format(median(c_ns), median(lua_ns), #c_json + #c_target))
