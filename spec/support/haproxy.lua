-- spec.support.haproxy: runs examples/haproxy/haproxy.cfg in a real HAProxy
-- (Debian's haproxy 2.6, Lua 5.3) for spec/haproxy_spec.lua and spec/haproxy_variants_spec.lua: unprivileged,
-- in the foreground, in its own temp dir, on a free loopback port, with the
-- paths pointed at this tree and spec-only lines added.
--
--   local haproxy = require "spec.support.haproxy"
--   if haproxy.installed() then ... end
--   local h = haproxy.start { env = { TRUTO_BASE_URL = ... },
--     global = "lua-load ...", frontend = "http-request use-service ...",
--     replace = { { pattern, replacement }, ... }, sections = "frontend ... backend ..." }
--   h.url, h.port, h.dir, h:running(), h:log() (its stdout and stderr), h:stop()
--   h:settle()   waits until HAProxy has nothing in flight (no client
--                connection, no httpclient request: `show sess` on its
--                admin socket, a spec-only line), so nothing a previous
--                spec started (the httpclient re-sends on its own) can
--                still reach the mock
--
-- Builds the Lua 5.3 core first (`make LUA=lua5.3`): HAProxy embeds Lua
-- 5.3, whatever Lua runs the specs. Never binds a fixed port, never signals
-- a process it did not start (only the pid it got, checked against its
-- command line), never deletes a directory it did not make.
local socket = require "socket"
local unix = require "socket.unix"
local sh = require "spec.support.sh"
local openresty = require "spec.support.openresty"

local haproxy = {}

local HAPROXY = "/usr/sbin/haproxy"
local START_SECONDS = 10
local STOP_SECONDS = 5
-- What `make check` or the spec runner may export for the spec's own Lua;
-- HAProxy's Lua must find this tree only through the example's paths.
local CLEAN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS -u LSAN_OPTIONS "
  .. "-u LUA_PATH -u LUA_CPATH -u LUA_PATH_5_3 -u LUA_CPATH_5_3 "

local function run(command) return sh.run(command, CLEAN_ENV) end
local shell_quote, read_file, write_file = sh.quote, sh.read_file, sh.write_file

haproxy.root = openresty.root
haproxy.http = openresty.http
haproxy.free_port = openresty.free_port

function haproxy.installed()
  local f = io.open(HAPROXY, "rb")
  if f then f:close() end
  return f ~= nil
end

-- Replaces `pattern` at least once or fails loudly: the spec runs the
-- example as it is, not a config that drifted from it.
local function swap(text, pattern, replacement, what)
  local out, n = text:gsub(pattern, function() return replacement end)
  assert(n >= 1, "examples/haproxy/haproxy.cfg has no " .. what)
  return out
end

-- The example configuration with this tree's paths, port and extras.
function haproxy.render(port, opts)
  local text = assert(read_file(haproxy.root .. "/examples/haproxy/haproxy.cfg"))
  text = swap(text, "/opt/truto%-lua", haproxy.root, "/opt/truto-lua path")
  text = swap(text, "\n  bind :8080\n", "\n  bind 127.0.0.1:" .. port .. "\n"
    .. (opts.frontend or ""), "bind line")
  -- spec lines go last in the global section, after the example's paths
  text = swap(text, "\ndefaults\n", "\n" .. (opts.global or "") .. "\ndefaults\n", "defaults section")
  for _, r in ipairs(opts.replace or {}) do text = swap(text, r[1], r[2], r[1]) end
  return text .. (opts.sections or "")
end

local Haproxy = {}
Haproxy.__index = Haproxy

function Haproxy:running()
  local stat = read_file("/proc/" .. self.pid .. "/stat")
  if not stat or stat == "" or stat:match("^%d+ %b() Z") then return false end
  local cmdline = read_file("/proc/" .. self.pid .. "/cmdline") or ""
  -- /proc/PID/cmdline reads empty while the process is inside execve (a
  -- window a loaded machine makes long): alive, not yet HAProxy
  return cmdline == "" or cmdline:find(self.dir .. "/", 1, true) ~= nil
end

-- The sessions `show sess` lists, but the admin socket's own.
function Haproxy:sessions()
  local conn = unix()
  conn:settimeout(5)
  assert(conn:connect(self.dir .. "/admin.sock"))
  assert(conn:send("show sess\n"))
  local text = conn:receive("*a") or ""
  conn:close()
  local others = {}
  for line in text:gmatch("[^\n]+") do
    if line:match("^0x%x+:") and not line:find(" fe=GLOBAL ", 1, true) then others[#others + 1] = line end
  end
  return others
end

function Haproxy:settle(seconds)
  local deadline = socket.gettime() + (seconds or 15)
  while true do
    local others = self:sessions()
    if #others == 0 then return end
    if socket.gettime() > deadline then
      error("HAProxy still has sessions in flight:\n" .. table.concat(others, "\n"), 2)
    end
    socket.sleep(0.02)
  end
end

function Haproxy:log()
  return read_file(self.dir .. "/haproxy.log") or ""
end

function Haproxy:stop()
  if self.stopped then return end
  self.stopped = true
  if self:running() then
    run("kill -TERM " .. self.pid)
    local deadline = socket.gettime() + STOP_SECONDS
    while self:running() and socket.gettime() < deadline do socket.sleep(0.05) end
    if self:running() then run("kill -KILL " .. self.pid) end
  end
  if self.dir:match("/truto%-haproxy%.[%w]+$") then run("rm -rf -- " .. shell_quote(self.dir)) end
end

Haproxy.__gc = Haproxy.stop

-- Starts HAProxy; see the header. Raises when it cannot.
function haproxy.start(opts)
  opts = opts or {}
  local ok, output = run("make --no-print-directory -s -C " .. shell_quote(haproxy.root)
    .. " LUA=lua5.3 CFLAGS='-O2 -g' build")
  assert(ok, "make LUA=lua5.3 failed:\n" .. output)
  local made, dir = run("mktemp -d " .. shell_quote((os.getenv("TMPDIR") or "/tmp") .. "/truto-haproxy.XXXXXX"))
  assert(made, dir)
  dir = dir:gsub("\n$", "")
  local env = {}
  for name, value in pairs(opts.env or {}) do env[#env + 1] = name .. "=" .. shell_quote(value) end
  local port = haproxy.free_port()
  local rendered = {}
  for k, v in pairs(opts) do rendered[k] = v end
  rendered.global = "  stats socket " .. dir .. "/admin.sock mode 600 level admin\n" .. (opts.global or "")
  write_file(dir .. "/haproxy.cfg", haproxy.render(port, rendered))
  local started, pid = run(table.concat(env, " ") .. " " .. HAPROXY .. " -f "
    .. shell_quote(dir .. "/haproxy.cfg") .. " >" .. shell_quote(dir .. "/haproxy.log")
    .. " 2>&1 </dev/null & echo $!")
  assert(started, pid)
  local h = setmetatable({ dir = dir, port = port, pid = tonumber(pid:match("%d+")),
    url = "http://127.0.0.1:" .. port }, Haproxy)
  local deadline = socket.gettime() + START_SECONDS
  while socket.gettime() < deadline and h:running() do
    if haproxy.http(port, "GET", "/", nil, 0.5) then return h end
    socket.sleep(0.05)
  end
  local log = h:log()
  h:stop()
  error("haproxy did not start on port " .. port .. ":\n" .. log)
end

return haproxy
