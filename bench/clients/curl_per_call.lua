-- bench/clients/curl_per_call.lua: one `curl` process per create, the way
-- a script shells out (io.popen -> sh -> curl), its answer decoded with
-- lua-cjson. Same target, the same body bytes (from a file written once),
-- same headers.
--   BENCH_URL=... BENCH_BODY=... lua5.4 bench/clients/curl_per_call.lua N WARMUP
-- Prints "ok N SECONDS"; exits 1 on the first non-201 or undecodable answer.
-- Must never leave its temp file behind.
local socket = require "socket"
local cjson = require "cjson"

local n, warmup = tonumber(arg[1]), tonumber(arg[2]) or 0
local url, token = os.getenv("BENCH_URL"), os.getenv("BENCH_TOKEN")
local body_file = os.tmpname()
local f = assert(io.open(body_file, "wb"))
f:write(os.getenv("BENCH_BODY"))
f:close()
local uuid4 = dofile("bench/clients/uuid4.lua")

local prefix = "curl -sS -X POST -H 'Authorization: Bearer " .. token .. "'"
  .. " -H 'Content-Type: application/json' -H 'Accept: application/json'"
  .. " --data-binary @" .. body_file .. " -w '\\n%{http_code}' '" .. url .. "'"

local function fail(message)
  os.remove(body_file)
  io.stderr:write("curl_per_call: ", message, "\n")
  os.exit(1)
end

local function create()
  local pipe = assert(io.popen(prefix .. " -H 'Idempotency-Key: " .. uuid4() .. "'"))
  local out = pipe:read("a")
  pipe:close()
  local json, status = out:match("^(.*)\n(%d+)$")
  if status ~= "201" then fail("HTTP " .. tostring(status)) end
  local group = cjson.decode(json)
  if type(group) ~= "table" or not group.id then fail("no group in the answer") end
end

for _ = 1, warmup do create() end
local started = socket.gettime()
for _ = 1, n do create() end
local seconds = socket.gettime() - started
os.remove(body_file)
io.write(("ok %d %.6f\n"):format(n, seconds))
