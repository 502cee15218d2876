#!/usr/bin/env lua5.4
-- bench/compare.lua: this tree's create rows against another build of the
-- module (an older commit, built in a scratch dir), in interleaved rounds
-- against one canned nginx: truto_seq and truto_many (bench/clients/) run
-- with each tree's lua/ and build/lua5.4/ in turn, the order swapped every
-- round. Prints, per row, the median over rounds of new/old for throughput
-- and for client CPU per create, with the range — ratios only, because on
-- a shared machine absolute rates say little.
--
--   git archive 10f7d2d | tar -x -C /tmp/old && make -C /tmp/old build
--   lua5.4 bench/compare.lua /tmp/old [N] [ROUNDS]
--
-- Must never: bind a fixed port, signal a process it did not start, assert
-- a timing, or write into either tree.
local here = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".")
local sh = dofile(here .. "/../spec/support/sh.lua")
local shell_quote, read_file, run = sh.quote, sh.read_file, sh.run

local function absolute(path)
  local ok, out = run("cd " .. shell_quote(path) .. " && pwd -P")
  assert(ok, out)
  return (out:gsub("\n$", ""))
end

local NEW = absolute(here .. "/..")
local OLD = arg[1] and absolute(arg[1]) or error("usage: lua5.4 bench/compare.lua OLD_REPO [N] [ROUNDS]")
local N = tonumber(arg[2] or "") or 2000
local ROUNDS = tonumber(arg[3] or "") or 5
package.path = NEW .. "/lua/?.lua;" .. package.path
package.cpath = NEW .. "/build/lua5.4/?.so;" .. package.cpath

local payload = dofile(NEW .. "/bench/payload.lua")
local server = dofile(NEW .. "/bench/server.lua").start(NEW)

local TREES = { { name = "new", dir = NEW }, { name = "old", dir = OLD } }
local ROWS = {
  { id = "seq", label = "sequential creates", command = "lua5.4 bench/clients/truto_seq.lua", args = "" },
  { id = "many", label = "create_many (16 in flight)", command = "lua5.4 bench/clients/truto_many.lua",
    args = " 16" },
}

-- One client run under /usr/bin/time -> { rate, cpu_per } | nil, why
local function measure(tree, row)
  local stamp, errfile = os.tmpname(), os.tmpname()
  local line = "cd " .. shell_quote(NEW) .. " && env LUA_PATH=" .. shell_quote(tree.dir .. "/lua/?.lua;;")
    .. " LUA_CPATH=" .. shell_quote(tree.dir .. "/build/lua5.4/?.so;;")
    .. " BENCH_BASE=" .. shell_quote(server.base) .. " BENCH_TOKEN=" .. shell_quote(payload.token)
    .. " /usr/bin/time -f '%e %U %S' -o " .. shell_quote(stamp) .. " " .. row.command .. " " .. N .. " "
    .. (N // 10) .. row.args .. " 2>" .. shell_quote(errfile)
  local pipe = assert(io.popen(line))
  local out = pipe:read("a")
  pipe:close()
  local times, err = read_file(stamp) or "", read_file(errfile) or ""
  os.remove(stamp)
  os.remove(errfile)
  local done, secs = out:match("^ok (%d+) ([%d.]+)")
  local user, sys = times:match("[%d.]+ ([%d.]+) ([%d.]+)%s*$")
  if not done or not user then return nil, tree.name .. " " .. row.id .. " failed: " .. out .. err end
  return { rate = tonumber(done) / tonumber(secs), cpu_per = (tonumber(user) + tonumber(sys)) / (N + N // 10) }
end

local function median(list)
  local copy = {}
  for i, v in ipairs(list) do copy[i] = v end
  table.sort(copy)
  local m = #copy // 2
  if #copy % 2 == 1 then return copy[m + 1], copy[1], copy[#copy] end
  return (copy[m] + copy[m + 1]) / 2, copy[1], copy[#copy]
end

local function main()
  local load_start = (read_file("/proc/loadavg") or ""):match("^(%S+ %S+ %S+)")
  local ratios = {}
  for _, row in ipairs(ROWS) do ratios[row.id] = { rate = {}, cpu = {} } end
  for round = 1, ROUNDS do
    local order = round % 2 == 1 and { TREES[1], TREES[2] } or { TREES[2], TREES[1] }
    for _, row in ipairs(ROWS) do
      local got = {}
      for _, tree in ipairs(order) do
        got[tree.name] = assert(measure(tree, row))
      end
      local r = ratios[row.id]
      r.rate[#r.rate + 1] = got.new.rate / got.old.rate
      r.cpu[#r.cpu + 1] = got.new.cpu_per / got.old.cpu_per
      io.stderr:write(("compare: round %d/%d %-28s new/old throughput %.2f, CPU per create %.2f\n")
        :format(round, ROUNDS, row.label, r.rate[#r.rate], r.cpu[#r.cpu]))
    end
  end
  local load_end = (read_file("/proc/loadavg") or ""):match("^(%S+ %S+ %S+)")
  print(("new (%s) vs old (%s): %d creates per run (+%d warm-up), %d interleaved rounds, load %s → %s")
    :format(NEW, OLD, N, N // 10, ROUNDS, load_start, load_end))
  print(("%-28s %24s %24s"):format("row", "throughput new/old", "CPU/create new/old"))
  for _, row in ipairs(ROWS) do
    local r = ratios[row.id]
    local rm, rlo, rhi = median(r.rate)
    local cm, clo, chi = median(r.cpu)
    print(("%-28s %8.2f (%.2f–%.2f) %11.2f (%.2f–%.2f)"):format(row.label, rm, rlo, rhi, cm, clo, chi))
  end
end

local ok, err = pcall(main)
server:stop()
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
