-- bench/clients/cold_truto.lua: cold start — a fresh process that requires
-- the module, makes a client and creates one group over HTTPS, then exits
-- (bench/https.lua times the whole process).
local truto = require "truto"
local payload = dofile("bench/payload.lua")
local client = assert(truto.new(dofile("bench/client_config.lua")(payload)))
assert(client.groups.create(payload.body, payload.query))
