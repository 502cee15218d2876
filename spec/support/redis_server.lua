-- spec.support.redis_server: a real redis-server (Debian's package) for the
-- rate-store specs and the fleet benchmark, as the mock is started: its own
-- temp dir, a free loopback port, nothing saved to disk.
--
--   local redis_server = require "spec.support.redis_server"
--   local r = redis_server.start { password = "pw", user = "fleet" }
--   r.url ("redis://:pw@127.0.0.1:PORT"), r.port, r:cli("GET", "k") -> text
--   r:stop() (SIGTERM, waits), r:start() (again, same port: a "restart"),
--   r:pause() / r:resume() (SIGSTOP/SIGCONT: a Redis slower than any
--   timeout), r:close() (stop and remove the dir)
--
-- Never binds a fixed port, never signals a process it did not start (the
-- pid from its own pidfile, checked against its command line).
local socket = require "socket"
local sh = require "spec.support.sh"

local M = {}

-- What `make check` may export for the spec's own Lua; redis-server and
-- redis-cli run without it (as spec.support.openresty runs nginx).
local CLEAN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS -u LSAN_OPTIONS "
local function run(command) return sh.run(command, CLEAN_ENV) end

local Server = {}
Server.__index = Server

local function free_port()
  local probe = assert(socket.bind("127.0.0.1", 0))
  local _, port = probe:getsockname()
  probe:close()
  return port
end

function Server:pid()
  local pid = tonumber(sh.read_file(self.dir .. "/redis.pid") or "")
  if pid and (sh.read_file("/proc/" .. pid .. "/cmdline") or ""):find(":" .. self.port, 1, true) then
    return pid
  end
end

-- redis-cli against this server (with its password); returns the output.
function Server:cli(...)
  local args = {}
  for i, a in ipairs { ... } do args[i] = sh.quote(a) end
  local auth = self.password and ("REDISCLI_AUTH=" .. sh.quote(self.password) .. " ") or ""
  local _, out = run(auth .. "redis-cli --no-auth-warning -p "
    .. self.port .. (self.user and (" --user " .. sh.quote(self.user)) or "") .. " " .. table.concat(args, " "))
  return (out:gsub("\n$", ""))
end

function Server:start()
  local args = { "redis-server", "--port", self.port, "--bind", "127.0.0.1", "--save", "''",
    "--appendonly", "no", "--daemonize", "yes", "--dir", sh.quote(self.dir),
    "--pidfile", sh.quote(self.dir .. "/redis.pid"), "--logfile", sh.quote(self.dir .. "/redis.log"),
    "--databases", "16" }
  if self.password and self.user then
    -- an ACL user of its own; the default user refused
    args[#args + 1] = "--user default off"
    args[#args + 1] = "--user " .. sh.quote(self.user) .. " on " .. sh.quote(">" .. self.password)
      .. " '~*' '&*' '+@all'"
  elseif self.password then
    args[#args + 1] = "--requirepass " .. sh.quote(self.password)
  end
  local ok, out = run(table.concat(args, " "))
  assert(ok, "redis-server did not start: " .. out)
  local deadline = socket.gettime() + 5
  while socket.gettime() < deadline do
    local c = socket.tcp()
    c:settimeout(0.2)
    if c:connect("127.0.0.1", self.port) then
      c:close()
      if self:pid() then return self end
    end
    c:close()
    socket.sleep(0.01)
  end
  error("redis-server did not listen on " .. self.port .. ":\n" .. (sh.read_file(self.dir .. "/redis.log") or ""))
end

function Server:stop()
  local pid = self:pid()
  if not pid then return end
  sh.run("kill -CONT " .. pid .. "; kill -TERM " .. pid)
  local deadline = socket.gettime() + 5
  while self:pid() and socket.gettime() < deadline do socket.sleep(0.01) end
  if self:pid() then sh.run("kill -KILL " .. pid) end
  os.remove(self.dir .. "/redis.pid")
end

function Server:pause() sh.run("kill -STOP " .. assert(self:pid())) end
function Server:resume() sh.run("kill -CONT " .. assert(self:pid())) end

function Server:close()
  self:stop()
  if self.dir:match("/truto%-redis%.[%w]+$") then sh.run("rm -rf -- " .. sh.quote(self.dir)) end
end

Server.__gc = Server.close

-- Starts one; opts: password, user (an ACL user with that password).
function M.start(opts)
  opts = opts or {}
  local ok, dir = sh.run("mktemp -d " .. sh.quote((os.getenv("TMPDIR") or "/tmp") .. "/truto-redis.XXXXXX"))
  assert(ok, dir)
  dir = dir:gsub("\n$", "")
  local s = setmetatable({ dir = dir, port = free_port(), password = opts.password, user = opts.user }, Server)
  s.url = "redis://" .. (s.password and ((s.user or "") .. ":" .. s.password .. "@") or "")
    .. "127.0.0.1:" .. s.port
  return s:start()
end

return M
