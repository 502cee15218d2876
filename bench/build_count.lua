-- bench/build_count.lua: N builds of the typical group (bench/payload.lua)
-- with the C core and nothing else, for counting instructions per build
-- under callgrind: run it with two values of N and divide the difference
-- of the totals by the difference of N (start-up cancels out).
--   valgrind --tool=callgrind --callgrind-out-file=/dev/null lua5.4 bench/build_count.lua N
-- Must never: time anything or print more than one line.
local payload = dofile("bench/payload.lua")
local op = require("truto.call").compile(require("truto.api").resources.groups.operations.create)
local build, body, query = op.build, payload.body, payload.query
local n = tonumber(arg[1]) or 2000
for _ = 1, n do build(body, query, nil, nil) end
print("ok " .. n)
