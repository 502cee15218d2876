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
local socket = require "socket"

local M = {}

-- shell helpers shared with the specs (spec/support/sh.lua)
local HERE = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local sh = dofile(HERE .. "/../spec/support/sh.lua")
local shell_quote, read_file, run = sh.quote, sh.read_file, sh.run

local nginx_process = dofile(HERE .. "/nginx_process.lua")
local free_port, answers, start_nginx = nginx_process.free_port, nginx_process.answers, nginx_process.start_nginx
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
  for _ = 1, 10 do
    local port, check_port = free_port(), free_port()
    if port ~= check_port then
      local conf = template:gsub("@([%u_]+)@", { PREFIX = server.dir, PORT = tostring(port),
        CHECK_PORT = tostring(check_port), GROUP_JSON = group, PAGE_MAP = table.concat(map, "\n") })
      local started, output = start_nginx(server.dir, conf)
      if started then
        local deadline = socket.gettime() + 10
        while socket.gettime() < deadline do
          if answers(port) and answers(check_port) then
            server.port, server.check_port = port, check_port
            server.base = "http://127.0.0.1:" .. port
            server.check_base = "http://127.0.0.1:" .. check_port
            return server
          end
          socket.sleep(0.05)
        end
        server:stop()
        error("bench/run: nginx started but does not answer; see its error.log", 0)
      elseif not output:find("in use", 1, true) then
        server:stop()
        error("bench/run: nginx did not start:\n" .. output, 0)
      end
    end
  end
  server:stop()
  error("bench/run: no free loopback port after 10 attempts", 0)
end

return M
