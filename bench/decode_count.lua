-- bench/decode_count.lua N: decodes bench/group.json N times with
-- truto.response.decode, for counting instructions under callgrind (issue
-- 11): run it with N=2000 and N=6000 and divide the difference of
-- "Collected" by 4000 to get the cost of one decode without the start-up.
--   LUA_PATH="lua/?.lua;;" LUA_CPATH="build/lua5.4/?.so;;" \
--   valgrind --tool=callgrind --callgrind-out-file=/dev/null lua5.4 bench/decode_count.lua 2000
-- Never prints anything but a check that the last decode was right.
local response = require "truto.response"
local n = tonumber(arg[1]) or 1000
local f = assert(io.open("bench/group.json", "rb"))
local text = f:read("*a")
f:close()
local decode, value = response.decode, nil
for _ = 1, n do value = decode(text) end
assert(value.remote_data.active == true)
