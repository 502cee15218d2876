-- bench/layers.lua: what one sequential create costs layer by layer, in one
-- process against the canned server — the C build, the key, the answer's
-- decoding, the bare transport call with a prepared request, and the whole
-- client.groups.create. Used by bench/profile.lua to tell the module's own
-- cost from libcurl's.
--   BENCH_BASE=... lua5.4 bench/layers.lua [N]
-- Prints "name wall_us cpu_us" lines (median of 3 timings of N calls).
-- Must never change what it measures between layers (same body, query,
-- headers as bench/clients/truto_seq.lua).
local truto = require "truto"
local core = require "truto.core"
local schema = require "truto.schema"
local response = require "truto.response"
local payload = dofile("bench/payload.lua")

local n = tonumber(arg[1]) or 20000
local client = assert(truto.new(dofile("bench/client_config.lua")(payload)))
local build = require("truto.call").compile(require("truto.api").resources.groups.operations.create).build
local body, query = payload.body, payload.query
local target, json = build(body, query)
local req = {
  method = schema.method, url = client.base_url .. target, body = json, timeout = 30, connect_timeout = 10,
  max_response_bytes = 64 * 1024 * 1024,
  headers = { client.own_headers.authorization, client.own_headers.accept, client.own_headers.user_agent,
    client.own_headers.content_type, "Idempotency-Key: " .. core.uuid4() },
}
local status, headers, answer = client.transport:request(req)
assert(status == 201, "the canned server did not answer 201")

local now, clock = core.now, os.clock

local function median(list)
  table.sort(list)
  return list[(#list + 1) // 2]
end

local function time(name, f)
  for _ = 1, n // 10 do f() end
  local walls, cpus = {}, {}
  for r = 1, 3 do
    local w0, c0 = now(), clock()
    for _ = 1, n do f() end
    walls[r], cpus[r] = (now() - w0) / n * 1e6, (clock() - c0) / n * 1e6
  end
  io.write(("%s %.3f %.3f\n"):format(name, median(walls), median(cpus)))
end

local create, transport = client.groups.create, client.transport
time("endpoint:build", function() build(body, query) end)
time("core.uuid4", function() core.uuid4() end)
time("response.interpret", function() response.interpret(status, headers, answer, nil, false, true) end)
time("transport:request", function() transport:request(req) end)
time("client.groups.create", function() create(body, query) end)
client:close()
