-- bench/profile.lua: where the time of one create goes, for the note of
-- issue 4 when a throughput target is missed. Against its own canned nginx
-- (bench/server.lua), for the sequential row and/or create_many at 16:
--   * the ceiling (wrk) and the libcurl floor (bench/floor.c: the same
--     request from a bare C loop; for sequential both with POSTFIELDS and
--     with a read callback, the module's body path),
--   * the module's row, wall and CPU per create (medians of 3, interleaved),
--   * layer by layer (bench/layers.lua, sequential only),
--   * system calls per create (strace -c -f),
--   * CPU samples by library (perf record -e cpu-clock; kernel, libcurl,
--     libc, the Lua VM, core.so, cjson) and the top symbols.
--   lua5.4 bench/profile.lua [seq|many|all] [N]      (bench/run calls it)
-- Prints plain text. Needs gcc and libcurl's headers; strace and perf
-- are used when present and skipped (said so) when not. Must never change
-- system settings or signal a process it did not start.
-- shell helpers shared with the specs (spec/support/sh.lua)
local sh = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".") .. "/../spec/support/sh.lua")
local shell_quote, read_file, run = sh.quote, sh.read_file, sh.run

local REPO = (function()
  local _, out = run("cd " .. shell_quote((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/..") .. " && pwd -P")
  return (out:gsub("\n$", ""))
end)()
local LUA_PATH = REPO .. "/lua/?.lua;" .. REPO .. "/?.lua;" .. (os.getenv("LUA_PATH") or ";")
local LUA_CPATH = REPO .. "/build/lua5.4/?.so;" .. (os.getenv("LUA_CPATH") or ";")
package.path = LUA_PATH .. ";" .. package.path
package.cpath = LUA_CPATH .. ";" .. package.cpath

local core = require "truto.core"
local payload = dofile(REPO .. "/bench/payload.lua")

local which = arg[1] or "all"
local N = tonumber(arg[2]) or 20000
local TRACE_N = 2000

local TARGET, BODY = require("truto.call").compile(require("truto.api").resources.groups.operations.create)
  .build(payload.body, payload.query)
local USER_AGENT = "truto-lua/" .. require("truto.client").VERSION
local HEADERS = { "Authorization: Bearer " .. payload.token, "Content-Type: application/json",
  "Accept: application/json", "User-Agent: " .. USER_AGENT, "Idempotency-Key: " .. core.uuid4() }

local server
local out = {}
local function say(s) out[#out + 1] = s or "" end

local function have(command) return (run("command -v " .. shell_quote(command))) end

-- Runs command in the repo with the bench environment under /usr/bin/time;
-- returns stdout, user+sys seconds, ok.
local function measure(command, prefix)
  local stamp = os.tmpname()
  local env = table.concat({
    "LUA_PATH=" .. shell_quote(LUA_PATH), "LUA_CPATH=" .. shell_quote(LUA_CPATH),
    "BENCH_BASE=" .. shell_quote(server.base), "BENCH_BODY=" .. shell_quote(BODY),
    "BENCH_TOKEN=" .. shell_quote(payload.token), "BENCH_USER_AGENT=" .. shell_quote(USER_AGENT),
  }, " ")
  local line = "cd " .. shell_quote(REPO) .. " && env " .. env .. " " .. (prefix or "")
    .. "/usr/bin/time -f '%U %S' -o " .. shell_quote(stamp) .. " " .. command .. " 2>/dev/null"
  local pipe = assert(io.popen(line))
  local text = pipe:read("a")
  local ok = pipe:close()
  local user, sys = (read_file(stamp) or ""):match("([%d.]+) ([%d.]+)%s*$")
  os.remove(stamp)
  return text, user and (tonumber(user) + tonumber(sys)), ok == true
end

local function median(list)
  local copy = {}
  for i, v in ipairs(list) do copy[i] = v end
  table.sort(copy)
  return copy[(#copy + 1) // 2]
end

local function floor_command(mode, arg6, n, warmup)
  local parts = { shell_quote(server.dir .. "/floor"), mode, shell_quote(server.base .. TARGET), shell_quote(BODY),
    tostring(n), tostring(warmup), arg6 }
  for _, h in ipairs(HEADERS) do parts[#parts + 1] = shell_quote(h) end
  return table.concat(parts, " ")
end

-- Each variant: { label, command, kind = "wrk" | "ok" }; returns rows with
-- median µs per create (wall) and CPU µs per create.
local function compare(variants, rounds)
  for _, v in ipairs(variants) do v.walls, v.cpus = {}, {} end
  for _ = 1, rounds do
    for _, v in ipairs(variants) do
      local text, cpu = measure(v.command)
      if v.kind == "wrk" then
        local requests, secs = text:match("(%d+) requests in ([%d.]+)s")
        if requests then
          v.walls[#v.walls + 1] = tonumber(secs) / tonumber(requests) * 1e6
          v.cpus[#v.cpus + 1] = cpu / tonumber(requests) * 1e6
        end
      else
        local n, secs, own_cpu = text:match("^ok (%d+) ([%d.]+) ?([%d.]*)")
        if n then
          v.walls[#v.walls + 1] = tonumber(secs) / tonumber(n) * 1e6
          -- floor reports the CPU of its timed loop; the clients, the
          -- whole process (warm-up included) over every create they made
          v.cpus[#v.cpus + 1] = own_cpu ~= "" and tonumber(own_cpu) / tonumber(n) * 1e6
            or cpu / v.creates * 1e6
        end
      end
    end
  end
  local base = variants[1]
  for _, v in ipairs(variants) do
    if #v.walls == 0 then
      say(("  %-52s failed"):format(v.label))
    else
      local wall, cpu = median(v.walls), median(v.cpus)
      v.wall, v.cpu = wall, cpu
      say(("  %-52s %8.2f µs/create  %5.2f × ceiling  CPU %7.2f µs"):format(v.label, wall,
        median(base.walls) / wall, cpu))
    end
  end
end

local function syscalls(command, creates)
  if not have("strace") then say("  (strace not installed: no system-call counts)") return end
  local file = os.tmpname()
  measure(command, "strace -f -c -o " .. shell_quote(file) .. " ")
  local text = read_file(file) or ""
  os.remove(file)
  local list, total = {}, 0
  for calls, name in text:gmatch("\n%s*[%d.]+%s+[%d.]+%s+%d+%s+(%d+)%s+%d*%s*([%w_]+)") do
    local per = tonumber(calls) / creates
    if name ~= "total" and per >= 0.2 then
      list[#list + 1] = ("%s %.1f"):format(name, per)
      total = total + per
    end
  end
  say(("  system calls per create: %.1f (%s)"):format(total, table.concat(list, ", ")))
end

local function samples(command)
  if not have("perf") then say("  (perf not installed: no CPU samples)") return end
  local file = server.dir .. "/perf.data"
  local ok, text = run("cd " .. shell_quote(REPO) .. " && env LUA_PATH=" .. shell_quote(LUA_PATH)
    .. " LUA_CPATH=" .. shell_quote(LUA_CPATH) .. " BENCH_BASE=" .. shell_quote(server.base)
    .. " perf record -q -e cpu-clock -F 999 -o " .. shell_quote(file) .. " " .. command)
  if not ok then say("  (perf record failed: " .. text:gsub("\n", " ") .. ")") return end
  local _, by_dso = run("perf report -q -i " .. shell_quote(file) .. " --sort dso --stdio")
  local shares = {}
  for pct, dso in by_dso:gmatch("([%d.]+)%%%s+([^\n]-)%s*\n") do
    if tonumber(pct) >= 0.3 then
      local name = dso:gsub("^%[kernel%.kallsyms%]$", "kernel"):gsub("^lua5%.4$", "Lua VM (lua5.4)")
        :gsub("%.so[%.%d]*$", "")
      shares[#shares + 1] = ("%s %s%%"):format(name, pct)
    end
  end
  say("  CPU samples by library: " .. table.concat(shares, ", "))
  local _, by_sym = run("perf report -q -i " .. shell_quote(file) .. " --sort dso,sym --stdio")
  local top = {}
  for pct, dso, sym in by_sym:gmatch("([%d.]+)%%%s+(%S+)%s+%[[%.k]%]%s+([^\n]-)%s*\n") do
    if #top < 12 and not dso:find("kernel") then
      top[#top + 1] = ("%s %s%%"):format(sym:gsub("@.*$", ""), pct)
    end
  end
  say("  top user-space symbols: " .. table.concat(top, ", "))
  local ours = {}
  for pct, dso, sym in by_sym:gmatch("([%d.]+)%%%s+(%S+)%s+%[[%.k]%]%s+([^\n]-)%s*\n") do
    if dso == "core.so" and #ours < 6 then ours[#ours + 1] = ("%s %s%%"):format(sym, pct) end
  end
  if #ours > 0 then say("  in core.so: " .. table.concat(ours, ", ")) end
  os.remove(file)
end

local function wrk(threads, connections)
  return "wrk -t" .. threads .. " -c" .. connections .. " -d3s -s bench/wrk.lua " .. shell_quote(server.base .. TARGET)
end

local function sequential()
  say(("sequential, one connection (N = %d, medians of 3):"):format(N))
  local variants = {
    { label = "wrk -t1 -c1 (ceiling)", command = wrk(1, 1), kind = "wrk" },
    { label = "libcurl floor: C loop, POSTFIELDS (one send)",
      command = floor_command("easy", "postfields", N, N // 10) },
    { label = "libcurl floor: C loop, read callback (module's path)",
      command = floor_command("easy", "readfn", N, N // 10) },
    { label = "truto sequential (client.groups.create)", creates = N + N // 10,
      command = "lua5.4 bench/clients/truto_seq.lua " .. N .. " " .. N // 10 },
  }
  compare(variants, 3)
  local text = measure("lua5.4 bench/layers.lua " .. N)
  local parts = {}
  for name, wall, cpu in text:gmatch("(%S+) ([%d.]+) ([%d.]+)") do
    parts[#parts + 1] = ("%s %.2f µs (CPU %.2f)"):format(name, tonumber(wall), tonumber(cpu))
  end
  say("  layers, one process: " .. table.concat(parts, "; "))
  syscalls("lua5.4 bench/clients/truto_seq.lua " .. TRACE_N .. " 0", TRACE_N)
  samples("lua5.4 bench/clients/truto_seq.lua " .. N .. " " .. N // 10)
  say()
end

local function concurrent()
  say(("create_many at 16 in flight (N = %d, medians of 3):"):format(N))
  local variants = {
    { label = "wrk -t2 -c16 (ceiling)", command = wrk(2, 16), kind = "wrk" },
    { label = "libcurl floor: C multi loop, 16 in flight", command = floor_command("multi", "16", N, N // 10) },
    { label = "truto create_many, concurrency 16", creates = N + N // 10,
      command = "lua5.4 bench/clients/truto_many.lua " .. N .. " " .. N // 10 .. " 16" },
  }
  compare(variants, 3)
  syscalls("lua5.4 bench/clients/truto_many.lua " .. TRACE_N .. " 0 16", TRACE_N)
  samples("lua5.4 bench/clients/truto_many.lua " .. N .. " " .. N // 10 .. " 16")
  say()
end

local function main()
  server = dofile(REPO .. "/bench/server.lua").start(REPO)
  local ok, text = run("gcc -std=c99 -O2 -Wall -Wextra -D_POSIX_C_SOURCE=200809L -o "
    .. shell_quote(server.dir .. "/floor") .. " " .. shell_quote(REPO .. "/bench/floor.c") .. " "
    .. ((select(2, run("pkg-config --cflags --libs libcurl")) or ""):gsub("\n", " ")))
  if not ok then error("bench/profile: cannot build bench/floor.c: " .. text, 0) end
  local load = (read_file("/proc/loadavg") or ""):match("^(%S+ %S+ %S+)")
  say(("profile (canned nginx %s; load average %s; CPU per create: the process's user+sys)"):format(
    server.base, tostring(load)))
  if which == "seq" or which == "all" then sequential() end
  if which == "many" or which == "all" then concurrent() end
end

local ok, err = xpcall(main, debug.traceback)
if server then server:stop() end
io.write(table.concat(out, "\n"), "\n")
if not ok then
  io.stderr:write(tostring(err), "\n")
  os.exit(1)
end
