-- bench/clients/luasec.lua: the hand-written peer — LuaSocket + LuaSec
-- (Debian's lua-sec) and lua-cjson: one kept-alive HTTPS/1.1 connection,
-- reopened when the server closes it, the request written by hand and the
-- answer read by Content-Length; a fresh Idempotency-Key per create. Same
-- request as the module's. LuaSec cannot resume a TLS session: each
-- reconnect is a full handshake.
--   BENCH_URL=https://127.0.0.1:PORT/path?query BENCH_BODY=... BENCH_CA_FILE=... \
--     lua5.4 bench/clients/luasec.lua N WARMUP
-- Prints "ok N SECONDS"; exits 1 on the first non-201 or undecodable answer.
local socket = require "socket"
local ssl = require "ssl"
local cjson = require "cjson"

local n, warmup = tonumber(arg[1]), tonumber(arg[2]) or 0
local url, token = os.getenv("BENCH_URL"), os.getenv("BENCH_TOKEN")
local host, port, target = url:match("^https://([^:/]+):(%d+)(/.*)$")
local body = cjson.decode(os.getenv("BENCH_BODY"))
local fixed = "Host: " .. host .. ":" .. port .. "\r\nAuthorization: Bearer " .. token
  .. "\r\nContent-Type: application/json\r\nAccept: application/json\r\nUser-Agent: "
  .. os.getenv("BENCH_USER_AGENT") .. "\r\n"
local params = { mode = "client", protocol = "any", verify = "peer", cafile = os.getenv("BENCH_CA_FILE"),
  options = { "all", "no_sslv3" } }
local uuid4 = dofile("bench/clients/uuid4.lua")

local function fail(...)
  io.stderr:write("luasec: ", ...)
  io.stderr:write("\n")
  os.exit(1)
end

local conn
local function connect()
  local tcp = assert(socket.tcp())
  tcp:setoption("tcp-nodelay", true)
  assert(tcp:connect(host, tonumber(port)))
  local c = assert(ssl.wrap(tcp, params))
  c:sni(host)
  local ok, err = c:dohandshake()
  if not ok then fail("handshake: ", tostring(err)) end
  return c
end

local function create()
  if not conn then conn = connect() end
  local json = cjson.encode(body)
  local ok, err = conn:send("POST " .. target .. " HTTP/1.1\r\n" .. fixed .. "Idempotency-Key: " .. uuid4()
    .. "\r\nContent-Length: " .. #json .. "\r\n\r\n" .. json)
  if not ok then fail("send: ", tostring(err)) end
  local line = conn:receive("*l")
  local status = line and tonumber(line:match("^HTTP/1%.1 (%d+)"))
  if status ~= 201 then fail("status line: ", tostring(line)) end
  local length, close
  while true do
    local h = conn:receive("*l")
    if not h then fail("headers cut") end
    if h == "" then break end
    local name, value = h:match("^([^:]+):%s*(.-)%s*$")
    name = name and name:lower()
    if name == "content-length" then length = tonumber(value)
    elseif name == "connection" and value:lower() == "close" then close = true end
  end
  local answer = conn:receive(length)
  local group = answer and cjson.decode(answer)
  if type(group) ~= "table" or not group.id then fail("no group in the answer") end
  if close then conn:close(); conn = nil end
end

for _ = 1, warmup do create() end
local started = socket.gettime()
for _ = 1, n do create() end
io.write(("ok %d %.6f\n"):format(n, socket.gettime() - started))
