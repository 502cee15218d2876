-- bench/clients/truto_list.lua: the module listing every group of the
-- account — 1,000 groups in 10 pages of 100 — N times after a warm-up,
-- one client (one reused connection), the account set on the client.
--   BENCH_BASE=... lua5.4 bench/clients/truto_list.lua N WARMUP [each|list]
-- each: for group, err in client.groups.each{ limit = 100 } (the default);
-- list: client.groups.list page by page, passing next_cursor back.
-- Prints "ok N SECONDS" (N lists; wall time of the measured lists only).
-- Exits 1 on the first error or when a list is not exactly the 1,000
-- groups: a benchmark of errors would measure nothing.
local truto = require "truto"
local core = require "truto.core"
local payload = dofile("bench/payload.lua")

local n, warmup, mode = tonumber(arg[1]), tonumber(arg[2]) or 0, arg[3] or "each"
local EXPECTED = 1000
local client = assert(truto.new(dofile("bench/client_config.lua")(payload,
  { integrated_account_id = payload.query.integrated_account_id })))
local groups = client.groups
local list_query = payload.list_query

local function fail(...)
  io.stderr:write("truto_list: ", ...)
  io.stderr:write("\n")
  os.exit(1)
end

local function list_each()
  local count = 0
  for group, err in groups.each(list_query) do
    if not group then fail(tostring(err)) end
    if not group.id then fail("a group without an id") end
    count = count + 1
  end
  return count
end

local function list_pages()
  local count, query = 0, {}
  for k, v in pairs(list_query) do query[k] = v end
  repeat
    local page, err = groups.list(query)
    if not page then fail(tostring(err)) end
    local result = page.result
    for i = 1, #result do
      if not result[i].id then fail("a group without an id") end
    end
    count = count + #result
    query.next_cursor = page.next_cursor
  until not page.next_cursor
  return count
end

local list = mode == "list" and list_pages or list_each
local function run(times)
  for _ = 1, times do
    local count = list()
    if count ~= EXPECTED then fail(count, " groups listed, expected ", EXPECTED) end
  end
end

run(warmup)
local started = core.now()
run(n)
local seconds = core.now() - started
client:close()
io.write(("ok %d %.6f\n"):format(n, seconds))
