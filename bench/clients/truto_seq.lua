-- bench/clients/truto_seq.lua: the module, sequential — one client (one
-- reused connection) calling client.groups.create N times after a warm-up.
--   BENCH_BASE=http://127.0.0.1:PORT lua5.4 bench/clients/truto_seq.lua N WARMUP
-- Prints "ok N SECONDS" (wall time of the measured N only). Exits non-zero
-- on the first failed create: a benchmark of errors would measure nothing.
-- Must never time anything but the creates.
local truto = require "truto"
local core = require "truto.core"
local payload = dofile("bench/payload.lua")

local n, warmup = tonumber(arg[1]), tonumber(arg[2]) or 0
local client = assert(truto.new{ token = payload.token, base_url = os.getenv("BENCH_BASE"),
  rate_limits = false }) -- loopback CPU, not pacing (issue 11 measures pacing apart)
local create, body, query = client.groups.create, payload.body, payload.query

local function run(count)
  for _ = 1, count do
    local group, err = create(body, query)
    if not group then
      io.stderr:write("truto_seq: ", tostring(err), "\n")
      os.exit(1)
    end
  end
end

run(warmup)
local started = core.now()
run(n)
local seconds = core.now() - started
client:close()
io.write(("ok %d %.6f\n"):format(n, seconds))
