-- bench/clients/truto_many.lua: the module, concurrent — one call of
-- client.groups.create_many over N items at options.concurrency = C.
--   BENCH_BASE=... lua5.4 bench/clients/truto_many.lua N WARMUP [C]
-- BENCH_KEEP_RESULTS=0: keep_results = false, each result checked in
-- on_result and dropped (as the Lua-cURLv3 peer drops its answers; flat
-- memory); otherwise the default, every result kept and returned.
-- Prints "ok N SECONDS", or "unavailable" (exit 3) when this tree's client
-- has no create_many yet. Exits 1 when any result is an error or missing.
local truto = require "truto"
local core = require "truto.core"
local payload = dofile("bench/payload.lua")

local n, warmup, concurrency = tonumber(arg[1]), tonumber(arg[2]) or 0, tonumber(arg[3]) or 16
local client = assert(truto.new(dofile("bench/client_config.lua")(payload)))
local create_many = client.groups.create_many
if type(create_many) ~= "function" then
  io.write("unavailable\n")
  os.exit(3)
end

local function items(count)
  local list = {}
  for i = 1, count do list[i] = payload.body end
  return list
end

local function check(list, results, err)
  if not results then
    io.stderr:write("truto_many: ", tostring(err), "\n")
    os.exit(1)
  end
  for i = 1, #list do
    local r = results[i]
    if not (r and r.group and r.group.id) then
      io.stderr:write("truto_many: item ", i, ": ", tostring(r and r.err), "\n")
      os.exit(1)
    end
  end
  if #results ~= #list then
    io.stderr:write("truto_many: ", #results, " results for ", #list, " items\n")
    os.exit(1)
  end
end

local options = { concurrency = concurrency }
local keep = os.getenv("BENCH_KEEP_RESULTS") ~= "0"
local function run(list)
  if keep then return check(list, create_many(list, payload.query, options)) end
  local seen = 0
  options.keep_results = false
  options.on_result = function(i, group, err)
    if not (group and group.id) then
      io.stderr:write("truto_many: item ", i, ": ", tostring(err), "\n")
      os.exit(1)
    end
    seen = seen + 1
  end
  local counts, err = create_many(list, payload.query, options)
  if not counts or counts.succeeded ~= #list or seen ~= #list then
    io.stderr:write("truto_many: ", tostring(err or (counts and counts.succeeded)), " of ", #list, "\n")
    os.exit(1)
  end
end
if warmup > 0 then run(items(warmup)) end
local list = items(n)
local started = core.now()
run(list)
local seconds = core.now() - started
client:close()
io.write(("ok %d %.6f\n"):format(n, seconds))
