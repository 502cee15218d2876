-- bench/clients/cold_lcurl.lua: cold start of the peer — a fresh process
-- that requires Lua-cURLv3 and lua-cjson and creates one group over HTTPS
-- (the same request), then exits (bench/https.lua times the process).
local lcurl = require "lcurl"
local cjson = require "cjson"
local chunks = {}
local easy = lcurl.easy{ url = os.getenv("BENCH_URL"), post = true, cainfo = os.getenv("BENCH_CA_FILE"),
  httpheader = { "Authorization: Bearer " .. os.getenv("BENCH_TOKEN"), "Content-Type: application/json",
    "Accept: application/json", "User-Agent: " .. os.getenv("BENCH_USER_AGENT"),
    "Idempotency-Key: 6f1c9a52-0d3b-4c1e-9a7f-2b8e5d4c3a10" },
  postfields = cjson.encode(cjson.decode(os.getenv("BENCH_BODY"))),
  writefunction = function(chunk) chunks[#chunks + 1] = chunk; return true end }
easy:perform()
assert(easy:getinfo_response_code() == 201)
assert(cjson.decode(table.concat(chunks)).id)
