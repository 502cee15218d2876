-- bench/clients/lcurl_multi.lua: the concurrent peer — Lua-cURLv3's multi
-- interface as its docs show it (curl_multi_perform + wait), C easy handles
-- reused, each re-added as soon as it finishes, PIPEWAIT on (wait for the
-- first connection and multiplex on it when it speaks HTTP/2), lua-cjson
-- for the bodies, a fresh Idempotency-Key per create. Same request as the
-- module's.
--   BENCH_URL=... BENCH_BODY=... BENCH_CA_FILE=... BENCH_HTTP_VERSION=2|1.1 \
--     LUA_CPATH=<dir of lcurl.so>/?.so;; lua5.4 bench/clients/lcurl_multi.lua N WARMUP [C]
-- BENCH_KEEP_RESULTS=1: every decoded answer kept in an array, as the
-- module's create_many returns its results by default; otherwise each is
-- checked and dropped.
-- Prints "ok N SECONDS errors"; a failed transfer is counted, not retried.
local lcurl = require "lcurl"
local cjson = require "cjson"

local n, warmup, concurrency = tonumber(arg[1]), tonumber(arg[2]) or 0, tonumber(arg[3]) or 16
local url, token = os.getenv("BENCH_URL"), os.getenv("BENCH_TOKEN")
local body = cjson.decode(os.getenv("BENCH_BODY"))
local h2 = os.getenv("BENCH_HTTP_VERSION") == "2"
local uuid4 = dofile("bench/clients/uuid4.lua")

local fixed = { "Authorization: Bearer " .. token, "Content-Type: application/json",
  "Accept: application/json", "User-Agent: " .. os.getenv("BENCH_USER_AGENT") }
local multi = lcurl.multi()
multi:setopt_pipelining(2) -- CURLPIPE_MULTIPLEX (lcurl has no constant for it)
local chunks, errors = {}, 0
local keep = os.getenv("BENCH_KEEP_RESULTS") == "1"
local kept

local function new_easy(i)
  chunks[i] = {}
  return lcurl.easy{
    url = url, post = true, cainfo = os.getenv("BENCH_CA_FILE"), pipewait = true,
    http_version = h2 and lcurl.HTTP_VERSION_2TLS or lcurl.HTTP_VERSION_1_1,
    writefunction = function(chunk) local c = chunks[i]; c[#c + 1] = chunk; return true end,
  }, i
end

local easies, slot_of = {}, {}
for i = 1, concurrency do
  local e = new_easy(i)
  easies[i], slot_of[e] = e, i
end

local function start(e)
  local json = cjson.encode(body)
  e:setopt_httpheader{ fixed[1], fixed[2], fixed[3], fixed[4], "Idempotency-Key: " .. uuid4() }
  e:setopt_postfields(json)
  chunks[slot_of[e]] = {}
  multi:add_handle(e)
end

local function run(count)
  local started, done = 0, 0
  kept = keep and {} or nil
  for i = 1, math.min(concurrency, count) do start(easies[i]); started = started + 1 end
  while done < count do
    multi:perform()
    while true do
      local e, ok, err = multi:info_read(true)
      if type(e) ~= "userdata" then break end
      done = done + 1
      local status = ok and e:getinfo_response_code()
      if status == 201 then
        local group = cjson.decode(table.concat(chunks[slot_of[e]]))
        if type(group) ~= "table" or not group.id then errors = errors + 1 end
        if kept then kept[#kept + 1] = group end
      else
        errors = errors + 1
        if errors <= 3 then io.stderr:write("lcurl_multi: ", tostring(err or status), "\n") end
      end
      if started < count then start(e); started = started + 1 end
    end
    if done < count then multi:wait(1000) end
  end
end

local clock = require("socket").gettime
run(warmup)
local t0 = clock()
run(n)
io.write(("ok %d %.6f %d\n"):format(n, clock() - t0, errors))
