-- bench/clients/lcurl.lua: the peer a libcurl-minded Lua user would write —
-- Lua-cURLv3 (`lcurl`) and lua-cjson on Lua 5.4: one easy handle reused
-- for every call (one kept-alive connection), the body re-encoded by cjson
-- and a fresh Idempotency-Key each call, the answer collected by a write
-- callback and decoded. Same request as the module: same target, body
-- bytes and headers.
--   BENCH_URL=... BENCH_BODY=... LUA_CPATH=<dir of lcurl.so>/?.so;; \
--     lua5.4 bench/clients/lcurl.lua N WARMUP
-- Prints "ok N SECONDS"; exits 1 on the first non-201 or undecodable answer.
local lcurl = require "lcurl"
local cjson = require "cjson"

local n, warmup = tonumber(arg[1]), tonumber(arg[2]) or 0
local url, token = os.getenv("BENCH_URL"), os.getenv("BENCH_TOKEN")
local user_agent = os.getenv("BENCH_USER_AGENT")
local body = cjson.decode(os.getenv("BENCH_BODY"))
local uuid4 = dofile("bench/clients/uuid4.lua")

local chunks, count = {}, 0
local easy = lcurl.easy{
  url = url,
  post = true,
  -- over HTTPS (bench/https.lua): the bench CA and the protocol asked for
  cainfo = os.getenv("BENCH_CA_FILE"),
  http_version = os.getenv("BENCH_HTTP_VERSION") == "2" and lcurl.HTTP_VERSION_2TLS or lcurl.HTTP_VERSION_1_1,
  writefunction = function(chunk)
    count = count + 1
    chunks[count] = chunk
    return true
  end,
}
local fixed = { "Authorization: Bearer " .. token, "Content-Type: application/json",
  "Accept: application/json", "User-Agent: " .. user_agent }

local function create()
  local json = cjson.encode(body)
  easy:setopt_httpheader{ fixed[1], fixed[2], fixed[3], fixed[4], "Idempotency-Key: " .. uuid4() }
  easy:setopt_postfields(json)
  count = 0
  local ok, err = easy:perform()
  if not ok then
    io.stderr:write("lcurl: ", tostring(err), "\n")
    os.exit(1)
  end
  local status = easy:getinfo_response_code()
  if status ~= 201 then
    io.stderr:write("lcurl: ", tostring(status), "\n")
    os.exit(1)
  end
  local group = cjson.decode(table.concat(chunks, "", 1, count))
  if type(group) ~= "table" or not group.id then
    io.stderr:write("lcurl: no group in the answer\n")
    os.exit(1)
  end
end

local clock = os.time
local ok_socket, socket = pcall(require, "socket")
if ok_socket then clock = socket.gettime end

for _ = 1, warmup do create() end
local started = clock()
for _ = 1, n do create() end
io.write(("ok %d %.6f\n"):format(n, clock() - started))
easy:close()
