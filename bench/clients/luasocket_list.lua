-- bench/clients/luasocket_list.lua: listing every group the way a Lua user
-- would without the module — LuaSocket's socket.http and lua-cjson, on
-- Lua 5.4: GET the first page with the module's headers, decode it, pass
-- next_cursor back (percent-encoded, appended as the module's sorted query
-- puts it last) until it is null. A new connection per page (socket.http
-- sends Connection: close), as it does for everyone.
--   BENCH_LIST_URL=... BENCH_TOKEN=... lua5.4 bench/clients/luasocket_list.lua N WARMUP
-- Prints "ok N SECONDS" (N lists of 1,000 groups); exits 1 on the first
-- non-200, undecodable answer or wrong count.
local http = require "socket.http"
local ltn12 = require "ltn12"
local socket = require "socket"
local cjson = require "cjson"

local n, warmup = tonumber(arg[1]), tonumber(arg[2]) or 0
local first_url, token = os.getenv("BENCH_LIST_URL"), os.getenv("BENCH_TOKEN")
local user_agent = os.getenv("BENCH_USER_AGENT")
local EXPECTED = 1000
local null = cjson.null

local function fail(...)
  io.stderr:write("luasocket_list: ", ...)
  io.stderr:write("\n")
  os.exit(1)
end

local function escape(s)
  return (s:gsub("[^%w%-._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local headers = {
  ["authorization"] = "Bearer " .. token,
  ["accept"] = "application/json",
  ["user-agent"] = user_agent,
}

local function get_page(url)
  local chunks = {}
  local ok, status = http.request{ url = url, method = "GET", headers = headers,
    sink = ltn12.sink.table(chunks) }
  if not ok or status ~= 200 then fail(tostring(status)) end
  local page = cjson.decode(table.concat(chunks))
  if type(page) ~= "table" or type(page.result) ~= "table" then fail("not a page") end
  return page
end

local function list()
  local count, url = 0, first_url
  while true do
    local page = get_page(url)
    local result = page.result
    for i = 1, #result do
      if not result[i].id then fail("a group without an id") end
    end
    count = count + #result
    local cursor = page.next_cursor
    if cursor == nil or cursor == null then break end
    url = first_url .. "&next_cursor=" .. escape(cursor)
  end
  if count ~= EXPECTED then fail(count, " groups listed, expected ", EXPECTED) end
end

for _ = 1, warmup do list() end
local started = socket.gettime()
for _ = 1, n do list() end
io.write(("ok %d %.6f\n"):format(n, socket.gettime() - started))
