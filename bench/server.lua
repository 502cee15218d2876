-- bench/server.lua: starts and stops the canned-response nginx of the
-- benchmark (bench/nginx.conf filled in) in a temp dir of its own, on two
-- free loopback ports: `base` (measured, no log) and `check_base` (logs
-- every request to DIR/check.log, for the preflight). Both answer a create
-- with bench/group.json and the list with the pages of bench/pages.lua
-- (written to DIR/pages/ here).
--
--   local server = dofile("bench/server.lua").start(repo)  -- raises on failure
--   server.base, server.check_base, server.dir, server:pid()
--   server:stop()                                         -- idempotent
--
-- Must never bind a fixed port, signal any process but the nginx master
-- whose pid file is in its own dir (checked against its command line), or
-- delete anything but that dir.

local M = {}

-- shell helpers shared with the specs (spec/support/sh.lua)
local HERE = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local sh = dofile(HERE .. "/../spec/support/sh.lua")
local shell_quote, read_file, run = sh.quote, sh.read_file, sh.run

local nginx_process = dofile(HERE .. "/nginx_process.lua")
local Server = nginx_process.class("truto-bench")

-- M.start(repo) -> server; raises "bench/run: ..." when nginx cannot start.
function M.start(repo)
  local group = assert(read_file(repo .. "/bench/group.json"), "bench/group.json is missing"):gsub("%s+$", "")
  if group:find("['\\$]") then error("bench/run: bench/group.json must not contain ' \\ or $ (an nginx string)", 0) end
  local ok, out = run("mktemp -d " .. shell_quote((os.getenv("TMPDIR") or "/tmp") .. "/truto-bench.XXXXXX"))
  if not ok then error("bench/run: mktemp: " .. out, 0) end
  local server = setmetatable({ dir = out:gsub("\n$", "") }, Server)
  os.execute("mkdir -p " .. shell_quote(server.dir .. "/temp"))
  local template = assert(read_file(repo .. "/bench/nginx.conf"), "bench/nginx.conf is missing")
  -- the pages of the list, one file each, and the map from cursor to file
  local pages = dofile(repo .. "/bench/pages.lua")
  local map = {}
  os.execute("mkdir -p " .. shell_quote(server.dir .. "/pages"))
  for page = 1, pages.COUNT do
    local f = assert(io.open(server.dir .. "/pages/page-" .. page .. ".json", "wb"))
    f:write(pages.body(page))
    f:close()
    assert(pages.cursors[page]:match("^[%w_-]+$"), "bench/pages.lua: a cursor nginx cannot quote")
    map[#map + 1] = ('    "%s" "page-%d.json";'):format(pages.cursors[page], page)
  end
  local ports = nginx_process.start_on_ports(server, { "PORT", "CHECK_PORT" }, function(p)
    return (template:gsub("@([%u_]+)@", { PREFIX = server.dir, PORT = tostring(p.PORT),
      CHECK_PORT = tostring(p.CHECK_PORT), GROUP_JSON = group, PAGE_MAP = table.concat(map, "\n") }))
  end, "bench/run")
  server.port, server.check_port = ports.PORT, ports.CHECK_PORT
  server.base = "http://127.0.0.1:" .. ports.PORT
  server.check_base = "http://127.0.0.1:" .. ports.CHECK_PORT
  return server
end

return M
