-- bench/clients/luasocket.lua: the alternative a Lua user reaches for first
-- — LuaSocket's socket.http with ltn12 and lua-cjson, on Lua 5.4. It opens
-- a new connection for every call (socket.http sends Connection: close),
-- as it does for everyone. Same request as the module: same target, same
-- body bytes (re-encoded by cjson each call), same headers.
--   BENCH_URL=... BENCH_BODY=... lua5.4 bench/clients/luasocket.lua N WARMUP
-- Prints "ok N SECONDS"; exits 1 on the first non-201 or undecodable answer.
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"
local cjson = require "cjson"

local n, warmup = tonumber(arg[1]), tonumber(arg[2]) or 0
local url, token = os.getenv("BENCH_URL"), os.getenv("BENCH_TOKEN")
local body = cjson.decode(os.getenv("BENCH_BODY"))
local uuid4 = dofile("bench/clients/uuid4.lua")

local function create()
  local json = cjson.encode(body)
  local chunks = {}
  local ok, status = http.request{
    url = url, method = "POST",
    headers = {
      ["authorization"] = "Bearer " .. token,
      ["content-type"] = "application/json",
      ["accept"] = "application/json",
      ["idempotency-key"] = uuid4(),
      ["content-length"] = tostring(#json),
    },
    source = ltn12.source.string(json),
    sink = ltn12.sink.table(chunks),
  }
  if not ok or status ~= 201 then
    io.stderr:write("luasocket: ", tostring(status), "\n")
    os.exit(1)
  end
  local group = cjson.decode(table.concat(chunks))
  if type(group) ~= "table" or not group.id then
    io.stderr:write("luasocket: no group in the answer\n")
    os.exit(1)
  end
end

for _ = 1, warmup do create() end
local started = socket.gettime()
for _ = 1, n do create() end
io.write(("ok %d %.6f\n"):format(n, socket.gettime() - started))
