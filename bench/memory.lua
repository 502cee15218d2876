-- bench/memory.lua: the memory targets, one mode per process so one mode's
-- heap never hides another's.
--   BENCH_BASE=... lua5.4 bench/memory.lua seq FIRST TOTAL
--     RSS after FIRST sequential creates, after TOTAL/10 and after TOTAL
--     (one client).
--   BENCH_BASE=... lua5.4 bench/memory.lua many FIRST TOTAL BATCH [C]
--     The same with create_many, in calls of BATCH items at concurrency C,
--     results dropped between calls.
--   BENCH_BASE=... lua5.4 bench/memory.lua many_one FIRST TOTAL [C]
--     RSS after one create_many call over FIRST items vs after one call
--     over TOTAL items (results dropped before reading RSS), and the peak;
--     the middle figure repeats the first.
-- Prints "ok RSS_FIRST_KIB RSS_TENTH_KIB RSS_TOTAL_KIB PEAK_KIB" (the
-- tenth shows whether growth goes on once the heap has settled, which
-- tells a leak from the allocator warming up); "unavailable" (exit 3)
-- when create_many does not exist. RSS is read from /proc/self/status
-- after a full garbage collection, so it counts what is still held, not
-- garbage not yet swept. Exits 1 on any failed create.
local truto = require "truto"
local payload = dofile("bench/payload.lua")

local mode, first, total = arg[1], tonumber(arg[2]), tonumber(arg[3])

local function status_kib(field)
  local f = assert(io.open("/proc/self/status"))
  local text = f:read("a")
  f:close()
  return tonumber(text:match(field .. ":%s*(%d+) kB"))
end

local function rss_now()
  collectgarbage("collect")
  collectgarbage("collect")
  return status_kib("VmRSS")
end

local client = assert(truto.new{ token = payload.token, base_url = os.getenv("BENCH_BASE"),
  rate_limits = false }) -- loopback CPU, not pacing (issue 11 measures pacing apart)

local function fail(message)
  io.stderr:write("memory: ", message, "\n")
  os.exit(1)
end

local function create_many_or_exit()
  if type(client.groups.create_many) ~= "function" then
    io.write("unavailable\n")
    os.exit(3)
  end
  return client.groups.create_many
end

local function many_call(create_many, count, concurrency)
  local items = {}
  for i = 1, count do items[i] = payload.body end
  local results, err = create_many(items, payload.query, { concurrency = concurrency })
  if not results then fail(tostring(err)) end
  if #results ~= count then fail(#results .. " results for " .. count .. " items") end
  for i = 1, count do
    if not (results[i] and results[i].group) then fail("item " .. i .. ": " .. tostring(results[i].err)) end
  end
end

local rss_first, rss_tenth, rss_total
local tenth = total // 10
if mode == "seq" then
  local create, body, query = client.groups.create, payload.body, payload.query
  for i = 1, total do
    local group, err = create(body, query)
    if not group then fail(tostring(err)) end
    if i == first then rss_first = rss_now() end
    if i == tenth then rss_tenth = rss_now() end
  end
  rss_total = rss_now()
elseif mode == "many" then
  local create_many = create_many_or_exit()
  local batch, concurrency = tonumber(arg[4]), tonumber(arg[5]) or 16
  local done = 0
  while done < total do
    many_call(create_many, batch, concurrency)
    done = done + batch
    if done == first then rss_first = rss_now() end
    if done == tenth then rss_tenth = rss_now() end
  end
  rss_total = rss_now()
elseif mode == "many_one" then
  local create_many = create_many_or_exit()
  local concurrency = tonumber(arg[4]) or 16
  many_call(create_many, first, concurrency)
  rss_first = rss_now()
  rss_tenth = rss_first
  many_call(create_many, total, concurrency)
  rss_total = rss_now()
else
  fail("unknown mode " .. tostring(mode))
end
client:close()
io.write(("ok %d %d %d %d\n"):format(rss_first, rss_tenth, rss_total, status_kib("VmHWM")))
