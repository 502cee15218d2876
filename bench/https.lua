#!/usr/bin/env lua5.4
-- bench/https.lua: the first part of `make bench` — the path users take.
-- HTTPS against a local nginx with TLS and http2, nginx's defaults
-- otherwise (keepalive_requests 1000: a GOAWAY or a close every 1,000
-- requests; bench/tls_server.lua, its own CA trusted through ca_file), on
-- loopback and with 20 ms of server delay (/slow: ngx.sleep(0.02)). Rows,
-- in interleaved rounds, each a client process under /usr/bin/time:
--   one at a time: this module (default: HTTP/1.1; and forced HTTP/2),
--     Lua-cURLv3 easy (HTTP/1.1, HTTP/2), a hand-written LuaSec keep-alive
--     client, wrk -c1 (the HTTP/1.1 ceiling), h2load -c1 -m1;
--   16 in flight: create_many (default: HTTP/1.1; and forced HTTP/2),
--     Lua-cURLv3 multi with PIPEWAIT (HTTP/2) and without HTTP/2, wrk -c16,
--     h2load -c1 -m16; in two pairs by what is done with the answers:
--     "kept" (create_many's default, every result returned; Lua-cURLv3
--     keeps each decoded answer in an array) and "flat" (keep_results =
--     false with on_result; Lua-cURLv3 checks each answer and drops it).
--     Keeping 22,000 results grows the heap by ~30 MB, and a page fault on
--     this kind of VM costs ~11 µs: the pairs keep that cost out of the
--     comparison of the clients themselves.
-- Per row: creates/s (median over rounds), client CPU µs per create, the
-- ratio to the module's row of the same shape and protocol; from the
-- server's log: connections, full and resumed handshakes, protocols, and
-- Idempotency-Keys seen twice; the errors each client reported. Writes
-- bench/https.csv.
--
-- Knobs: BENCH_ROUNDS (3), BENCH_SEQ_N (creates one at a time, 3000),
-- BENCH_MANY_N (16 in flight, 22000), BENCH_SLOW=0 skips the delay
-- variant, BENCH_LCURL_SRC (a Lua-cURLv3 source tree or git repository to
-- build `lcurl` from, as bench/run does), BENCH_ONLY (row ids, comma-
-- separated: only those rows, e.g. truto_many_h1_flat,lcurl_multi_h1).
-- Must never: bind a fixed port, signal a process it did not start, or
-- assert a timing (targets are reported, not enforced).
local sh = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".") .. "/../spec/support/sh.lua")
local quote, read_file, run = sh.quote, sh.read_file, sh.run

local function absolute(path)
  local ok, out = run("cd " .. quote(path) .. " && pwd -P")
  assert(ok, out)
  return (out:gsub("\n$", ""))
end

local REPO = absolute((arg[0]:match("^(.*)/[^/]*$") or ".") .. "/..")
local LUA_PATH = REPO .. "/lua/?.lua;" .. REPO .. "/?.lua;" .. (os.getenv("LUA_PATH") or ";")
local LUA_CPATH = REPO .. "/build/lua5.4/?.so;" .. (os.getenv("LUA_CPATH") or ";")
package.path = LUA_PATH .. ";" .. package.path
package.cpath = LUA_CPATH .. ";" .. package.cpath

local call = require "truto.call"
local api = require "truto.api"
local payload = dofile(REPO .. "/bench/payload.lua")
local tls = dofile(REPO .. "/bench/tls_server.lua")
local socket = require "socket"

local ROUNDS = tonumber(os.getenv("BENCH_ROUNDS") or "") or 3
local SEQ_N = tonumber(os.getenv("BENCH_SEQ_N") or "") or 3000
local MANY_N = tonumber(os.getenv("BENCH_MANY_N") or "") or 22000
local SLOW = os.getenv("BENCH_SLOW") ~= "0"
local LCURL_SRC = os.getenv("BENCH_LCURL_SRC")
local ONLY = os.getenv("BENCH_ONLY")

local TARGET, BODY = call.compile(api.resources.groups.operations.create).build(payload.body, payload.query)
assert(TARGET, BODY)
local USER_AGENT = "truto-lua/" .. require("truto.client").VERSION

local function log(...)
  io.stderr:write(...)
  io.stderr:write("\n")
  io.stderr:flush()
end

local function have(command) return (run("command -v " .. quote(command))) end

local server

-- Runs `command` with the bench environment under /usr/bin/time:
-- { ok, out, err, wall, cpu }.
local function measure(command, base, env_extra, cpath)
  local stamp, errfile = os.tmpname(), os.tmpname()
  local env = {
    "LUA_PATH=" .. quote(LUA_PATH),
    "LUA_CPATH=" .. quote((cpath and (cpath .. "/?.so;") or "") .. LUA_CPATH),
    "BENCH_BASE=" .. quote(base), "BENCH_URL=" .. quote(base .. TARGET),
    "BENCH_BODY=" .. quote(BODY), "BENCH_TOKEN=" .. quote(payload.token),
    "BENCH_USER_AGENT=" .. quote(USER_AGENT), "BENCH_CA_FILE=" .. quote(server.ca_file),
  }
  for k, v in pairs(env_extra or {}) do env[#env + 1] = k .. "=" .. quote(v) end
  local line = "cd " .. quote(REPO) .. " && env " .. table.concat(env, " ") .. " /usr/bin/time -f '%e %U %S' -o "
    .. quote(stamp) .. " " .. command .. " 2>" .. quote(errfile)
  local t0 = socket.gettime()
  local pipe = assert(io.popen(line))
  local out = pipe:read("a")
  local _, _, code = pipe:close()
  local elapsed = socket.gettime() - t0
  local times, err = read_file(stamp) or "", read_file(errfile) or ""
  os.remove(stamp)
  os.remove(errfile)
  local wall, user, sys = times:match("([%d.]+) ([%d.]+) ([%d.]+)%s*$")
  return { ok = code == 0, out = out, err = err, wall = tonumber(wall), elapsed = elapsed,
    cpu = user and (tonumber(user) + tonumber(sys)) }
end

-- Lua-cURLv3's `lcurl` for Lua 5.4: "" (on the path), a directory it was
-- built into, or nil and why not.
local function find_lcurl()
  if run("env LUA_CPATH=" .. quote(LUA_CPATH) .. " lua5.4 -e 'require \"lcurl\"'") then return "" end
  if not LCURL_SRC or LCURL_SRC == "" then
    return nil, "Lua-cURLv3 not found for Lua 5.4; set BENCH_LCURL_SRC to its source tree or git repository"
  end
  local dir = server.dir .. "/lcurl"
  local unpack
  if read_file(LCURL_SRC .. "/src/lcurl.c") then
    unpack = "cp -R " .. quote(LCURL_SRC .. "/src") .. " " .. quote(dir .. "/src")
  else
    unpack = "git --git-dir=" .. quote(read_file(LCURL_SRC .. "/.git/HEAD") and (LCURL_SRC .. "/.git")
      or LCURL_SRC) .. " archive HEAD src | tar -x -C " .. quote(dir)
  end
  local ok, out = run("mkdir -p " .. quote(dir) .. " && " .. unpack .. " && cc -shared -fPIC -O2 "
    .. "$(pkg-config --cflags lua5.4) " .. quote(dir) .. "/src/*.c -o " .. quote(dir .. "/lcurl.so") .. " -lcurl")
  if not ok then return nil, "building Lua-cURLv3 failed: " .. out:sub(-300) end
  return dir
end

-- ---- the rows --------------------------------------------------------------
-- shape: "seq" (one at a time) or "many" (16 in flight); proto: "1.1" | "2";
-- ref: the module's row this one's ratio is taken against.
local ROWS = {
  { id = "truto_seq", shape = "seq", proto = "1.1", label = "this module, one at a time (default: HTTP/1.1)",
    cmd = "lua5.4 bench/clients/truto_seq.lua %d %d" },
  { id = "truto_seq_h2", shape = "seq", proto = "2", label = "this module, one at a time, http_version = \"2\"",
    cmd = "lua5.4 bench/clients/truto_seq.lua %d %d", env = { BENCH_HTTP_VERSION = "2" } },
  { id = "lcurl_easy", shape = "seq", proto = "1.1", label = "Lua-cURLv3 easy + lua-cjson (HTTP/1.1)",
    cmd = "lua5.4 bench/clients/lcurl.lua %d %d", lcurl = true, env = { BENCH_HTTP_VERSION = "1.1" } },
  { id = "lcurl_easy_h2", shape = "seq", proto = "2", label = "Lua-cURLv3 easy + lua-cjson (HTTP/2)",
    cmd = "lua5.4 bench/clients/lcurl.lua %d %d", lcurl = true, env = { BENCH_HTTP_VERSION = "2" } },
  { id = "luasec", shape = "seq", proto = "1.1", label = "LuaSocket + LuaSec keep-alive + lua-cjson",
    cmd = "lua5.4 bench/clients/luasec.lua %d %d" },
  { id = "wrk1", shape = "seq", proto = "1.1", label = "wrk -c1 (ceiling, HTTP/1.1)", tool = "wrk", ceiling = true },
  { id = "h2load1", shape = "seq", proto = "2", label = "h2load -c1 -m1 (ceiling, HTTP/2)", tool = "h2load",
    ceiling = true },
  { id = "truto_many", shape = "many", proto = "2", label = "this module, create_many at 16, http_version = \"2\"",
    cmd = "lua5.4 bench/clients/truto_many.lua %d %d 16", env = { BENCH_HTTP_VERSION = "2" } },
  { id = "truto_many_h1", shape = "many", proto = "1.1",
    label = "this module, create_many at 16 (default: HTTP/1.1)",
    cmd = "lua5.4 bench/clients/truto_many.lua %d %d 16", env = { BENCH_HTTP_VERSION = "1.1" } },
  { id = "lcurl_multi_h2_keep", shape = "many", proto = "2", label = "Lua-cURLv3 multi + PIPEWAIT, 16 (HTTP/2), kept",
    cmd = "lua5.4 bench/clients/lcurl_multi.lua %d %d 16", lcurl = true,
    env = { BENCH_HTTP_VERSION = "2", BENCH_KEEP_RESULTS = "1" } },
  { id = "lcurl_multi_h1_keep", shape = "many", proto = "1.1", label = "Lua-cURLv3 multi, 16 (HTTP/1.1), kept",
    cmd = "lua5.4 bench/clients/lcurl_multi.lua %d %d 16", lcurl = true,
    env = { BENCH_HTTP_VERSION = "1.1", BENCH_KEEP_RESULTS = "1" } },
  -- each answer checked and dropped: the module with keep_results = false
  -- (and on_result) against Lua-cURLv3 dropping its answers
  { id = "truto_many_flat", shape = "many", proto = "2", flat = true,
    label = "this module, create_many at 16, HTTP/2, flat",
    cmd = "lua5.4 bench/clients/truto_many.lua %d %d 16",
    env = { BENCH_HTTP_VERSION = "2", BENCH_KEEP_RESULTS = "0" } },
  { id = "truto_many_h1_flat", shape = "many", proto = "1.1", flat = true,
    label = "this module, create_many at 16, HTTP/1.1, flat",
    cmd = "lua5.4 bench/clients/truto_many.lua %d %d 16",
    env = { BENCH_HTTP_VERSION = "1.1", BENCH_KEEP_RESULTS = "0" } },
  { id = "lcurl_multi_h2", shape = "many", proto = "2", flat = true,
    label = "Lua-cURLv3 multi + PIPEWAIT, 16 (HTTP/2), flat",
    cmd = "lua5.4 bench/clients/lcurl_multi.lua %d %d 16", lcurl = true, env = { BENCH_HTTP_VERSION = "2" } },
  { id = "lcurl_multi_h1", shape = "many", proto = "1.1", flat = true, label = "Lua-cURLv3 multi, 16 (HTTP/1.1), flat",
    cmd = "lua5.4 bench/clients/lcurl_multi.lua %d %d 16", lcurl = true, env = { BENCH_HTTP_VERSION = "1.1" } },
  { id = "wrk16", shape = "many", proto = "1.1", label = "wrk -c16 (ceiling, HTTP/1.1)", tool = "wrk",
    ceiling = true },
  { id = "h2load16", shape = "many", proto = "2", label = "h2load -c1 -m16 (ceiling, HTTP/2)", tool = "h2load",
    ceiling = true },
}
-- the module's row each peer is compared with: same shape and protocol,
-- and for batches the same handling of results (kept, or flat: dropped)
local REF = { seq = { ["1.1"] = "truto_seq", ["2"] = "truto_seq_h2" },
  many = { ["2"] = "truto_many", ["1.1"] = "truto_many_h1" },
  flat = { ["2"] = "truto_many_flat", ["1.1"] = "truto_many_h1_flat" } }

local function count_for(row, slow)
  local n = row.shape == "seq" and SEQ_N or MANY_N
  if slow then n = row.shape == "seq" and 100 or 1600 end
  return n
end

-- One run of a row; returns { rate, cpu_us, errors, log = server counts }.
local function run_row(row, base, slow)
  local n = count_for(row, slow)
  local mark = server:log_mark()
  local url = base .. (slow and "/slow" or "")
  local r
  if row.tool == "wrk" then
    local conns = row.shape == "seq" and 1 or 16
    local seconds = slow and 3 or 2
    r = measure(("wrk -t1 -c%d -d%ds -s bench/wrk.lua %s"):format(conns, seconds, quote(url .. TARGET)), url)
    local requests = tonumber(r.out:match("(%d+) requests in"))
    r.n = requests
    r.seconds = seconds
  elseif row.tool == "h2load" then
    local streams = row.shape == "seq" and 1 or 16
    local bodyfile = server.dir .. "/body.json"
    local f = assert(io.open(bodyfile, "wb"))
    f:write(BODY)
    f:close()
    -- under nginx's 1,000 requests per connection: h2load does not re-send
    -- what a GOAWAY refused
    n = math.min(n, 999)
    r = measure(("h2load -n%d -c1 -m%d -d %s -H %s -H %s %s"):format(n, streams, quote(bodyfile),
      quote("Authorization: Bearer " .. payload.token), quote("Content-Type: application/json"),
      quote(url .. TARGET)), url)
    r.n = n
    local ms = tonumber(r.out:match("finished in ([%d.]+)ms"))
    local s = tonumber(r.out:match("finished in ([%d.]+)s,"))
    r.seconds = ms and ms / 1000 or s
    local failed = tonumber(r.out:match("(%d+) failed"))
    r.errors = failed
  else
    local warmup = slow and 5 or 200
    r = measure(row.cmd:format(n, warmup), url, row.env, row.cpath)
    local got, seconds, errors = r.out:match("ok (%d+) ([%d.]+) ?(%d*)")
    r.n, r.seconds = tonumber(got), tonumber(seconds)
    r.errors = tonumber(errors ~= "" and errors or "0")
    if not r.ok then r.errors = (r.errors or 0) + 1 end
  end
  local count = server:count(mark, row.shape == "many" and 16 or 1)
  if not (r.n and r.seconds) then
    log("  ", row.id, ": failed: ", (r.err or ""):sub(1, 300), (r.out or ""):sub(1, 200))
    return nil
  end
  return { rate = r.n / r.seconds, cpu_us = r.cpu and (r.cpu / math.max(count.requests, 1) * 1e6),
    errors = r.errors or 0, count = count }
end

local function median(list)
  local t = {}
  for i, v in ipairs(list) do t[i] = v end
  table.sort(t)
  if #t == 0 then return nil end
  return t[(#t + 1) // 2]
end

local function main()
  if not have("wrk") then log("wrk not installed: its rows are skipped") end
  if not have("h2load") then log("h2load (nghttp2-client) not installed: its rows are skipped") end
  server = tls.start{ repo = REPO, slow = SLOW }
  local lcurl_dir, why = find_lcurl()
  if not lcurl_dir then log(why) end
  local luasec = run("env LUA_CPATH=" .. quote(LUA_CPATH) .. " lua5.4 -e 'require \"ssl\"'")
  local active, only = {}, nil
  if ONLY then
    only = {}
    for id in ONLY:gmatch("[^,%s]+") do only[id] = true end
  end
  for _, row in ipairs(ROWS) do
    local skip = (row.tool and not have(row.tool)) or (row.lcurl and not lcurl_dir)
      or (row.id == "luasec" and not luasec) or (only and not only[row.id])
    if not skip then
      row.cpath = row.lcurl and lcurl_dir ~= "" and lcurl_dir or nil
      active[#active + 1] = row
    end
  end
  local variants = { { name = "loopback", slow = false } }
  if SLOW and server.slow then variants[2] = { name = "20 ms server delay", slow = true } end
  local results = {}
  for _, v in ipairs(variants) do
    results[v.name] = {}
    for _, row in ipairs(active) do results[v.name][row.id] = {} end
  end
  for round = 1, ROUNDS do
    for _, v in ipairs(variants) do
      log(("round %d/%d, %s"):format(round, ROUNDS, v.name))
      -- every other round in reverse order: no row always runs right after
      -- the same other row (on two shared cores a row can leave the machine
      -- slower or faster for the next one)
      for k = 1, #active do
        local row = active[round % 2 == 1 and k or #active + 1 - k]
        local base = row.proto == "2" and server.urls.h2 or server.urls.h1
        -- this module and Lua-cURLv3 choose the protocol themselves: same port
        if not row.tool and row.id ~= "luasec" then base = server.urls.h2 end
        results[v.name][row.id][round] = run_row(row, base, v.slow)
      end
    end
  end
  -- cold start: a fresh process to its first group (median of 20 each, interleaved)
  local cold = { truto = {}, lcurl = {} }
  for _ = 1, 20 do
    local r = measure("lua5.4 bench/clients/cold_truto.lua", server.urls.h2)
    if r.ok then table.insert(cold.truto, r.elapsed) end
    if lcurl_dir then
      r = measure("lua5.4 bench/clients/cold_lcurl.lua", server.urls.h2, nil, lcurl_dir ~= "" and lcurl_dir or nil)
      if r.ok then table.insert(cold.lcurl, r.elapsed) end
    end
  end
  server:stop()
  -- report
  local csv = { "variant,row,creates_per_s,cpu_us_per_create,ratio_to_module,ratio_range,errors,connections,tls_full,"
    .. "tls_resumed,reconnects_resumed,reconnects,protocols,duplicates" }
  for _, v in ipairs(variants) do
    print(("\nHTTPS, %s (nginx defaults, TLS, http2; median of %d rounds)"):format(v.name, ROUNDS))
    print(("%-52s %9s %8s %7s %-9s %6s %6s %11s %5s %s"):format("row", "creates/s", "cpu µs", "ratio",
      "(rounds)", "errors", "conns", "resumed", "dups", "protocols"))
    local med = {}
    for _, row in ipairs(active) do
      local runs = results[v.name][row.id]
      local rates, cpus, errors, last = {}, {}, 0, nil
      for round = 1, ROUNDS do
        local r = runs[round]
        if r then
          rates[#rates + 1] = r.rate
          if r.cpu_us then cpus[#cpus + 1] = r.cpu_us end
          errors = errors + r.errors
          last = r
        end
      end
      med[row.id] = { rate = median(rates), cpu = median(cpus), errors = errors, count = last and last.count }
    end
    for _, row in ipairs(active) do
      local m = med[row.id]
      -- the ratio: the median over rounds of the module's rate / the row's
      -- in the same round (both ran minutes apart at most), and its range
      local ref_id = REF[row.flat and "flat" or row.shape][row.proto]
      local ratios = {}
      for round = 1, ROUNDS do
        local a, b = results[v.name][ref_id] and results[v.name][ref_id][round], results[v.name][row.id][round]
        if a and b then ratios[#ratios + 1] = a.rate / b.rate end
      end
      local ratio = median(ratios)
      table.sort(ratios)
      local range = #ratios > 1 and ("%.2f-%.2f"):format(ratios[1], ratios[#ratios]) or ""
      local c = m.count or { connections = 0, reconnects = 0, reconnects_resumed = 0, duplicates = 0,
        protocols = {}, tls_full = 0, tls_resumed = 0 }
      local protos = {}
      for p, k in pairs(c.protocols) do protos[#protos + 1] = p .. "=" .. k end
      table.sort(protos)
      print(("%-52s %9s %8s %7s %-9s %6d %6d %5d/%-5d %5d %s"):format(row.label:sub(1, 52),
        m.rate and ("%.0f"):format(m.rate) or "-", (m.cpu and not row.ceiling) and ("%.0f"):format(m.cpu) or "-",
        ratio and ("%.2fx"):format(ratio) or "-", range, m.errors, c.connections, c.reconnects_resumed,
        c.reconnects, c.duplicates, table.concat(protos, " ")))
      csv[#csv + 1] = table.concat({ v.name, row.id, m.rate and ("%.1f"):format(m.rate) or "",
        m.cpu and ("%.1f"):format(m.cpu) or "", ratio and ("%.3f"):format(ratio) or "", range, m.errors,
        c.connections, c.tls_full, c.tls_resumed, c.reconnects_resumed, c.reconnects,
        table.concat(protos, " "), c.duplicates }, ",")
    end
  end
  local ct, cl = median(cold.truto), median(cold.lcurl)
  print(("\ncold start to the first group over HTTPS (process wall, median of 20): this module %s ms, "
    .. "Lua-cURLv3 + lua-cjson %s ms%s"):format(ct and ("%.1f"):format(ct * 1000) or "-",
    cl and ("%.1f"):format(cl * 1000) or "-", (ct and cl) and (" (%.2fx)"):format(cl / ct) or ""))
  csv[#csv + 1] = ("cold,truto,%s,,,,,,,,,,,"):format(ct or "")
  csv[#csv + 1] = ("cold,lcurl,%s,,,,,,,,,,,"):format(cl or "")
  print("\nratio: the module's rate (same shape and protocol) / the row's, the median over rounds of the"
    .. " ratio within each\nround (rounds: their range); > 1: the module is faster."
    .. "\nresumed: TLS sessions resumed / reconnects (connections after the first, 16 for batches), last round."
    .. "\ndups: Idempotency-Keys the server saw twice, last round. cpu µs: client user+sys per create.")
  local f = io.open(REPO .. "/bench/https.csv", "wb")
  if f then
    f:write(table.concat(csv, "\n"), "\n")
    f:close()
  end
end

local ok, err = pcall(main)
if server then server:stop() end
if not ok then
  io.stderr:write("bench/https.lua: ", tostring(err), "\n")
  os.exit(1)
end
