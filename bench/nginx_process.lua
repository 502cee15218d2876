-- bench/nginx_process.lua: what the benchmark's nginx servers share
-- (bench/server.lua, the canned plain-http one; bench/tls_server.lua, the
-- TLS + http2 one): a free loopback port, starting nginx on a filled-in
-- configuration (as which user its workers run) on free ports until it
-- answers on each, "does it answer yet", and
-- the server object's pid/stop, which only ever signals or removes what its
-- own directory names. Loaded with dofile, like the servers themselves.
local socket = require "socket"

local M = {}

local sh = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".") .. "/../spec/support/sh.lua")
local quote, read_file, run = sh.quote, sh.read_file, sh.run
local NGINX = io.open("/usr/sbin/nginx", "rb") and "/usr/sbin/nginx" or "nginx"

-- M.start_nginx(dir, conf) -> started, output: writes `conf` (a whole
-- configuration, the workers' user line put first) to DIR/nginx.conf and
-- starts nginx with prefix DIR, its early errors in DIR/error.log.
function M.start_nginx(dir, conf)
  local f = assert(io.open(dir .. "/nginx.conf", "wb"))
  f:write(sh.nginx_user_line(), conf) -- as which user the workers run
  f:close()
  return run(quote(NGINX) .. " -p " .. quote(dir .. "/") .. " -c " .. quote(dir .. "/nginx.conf")
    .. " -e " .. quote(dir .. "/error.log"))
end

-- M.free_port() -> a loopback port nothing listens on now.
function M.free_port()
  local probe = assert(socket.bind("127.0.0.1", 0))
  local _, port = probe:getsockname()
  probe:close()
  return port
end

-- M.answers(port) -> true when something accepts connections there.
function M.answers(port)
  local c = socket.tcp()
  c:settimeout(1)
  local ok = c:connect("127.0.0.1", port)
  c:close()
  return ok ~= nil
end

-- M.start_on_ports(server, names, conf_for, who) -> ports
-- Starts `server`'s nginx (prefix server.dir) on one free loopback port per
-- name in `names` ({ "H2", "H1" }), the configuration conf_for(ports)
-- makes, and waits until every port answers: ports = { H2 = 40001, ... }.
-- A port taken meanwhile by someone else is retried with fresh ones (10
-- attempts); any other failure stops the server and raises, `who` first.
function M.start_on_ports(server, names, conf_for, who)
  for _ = 1, 10 do
    local ports, seen, distinct = {}, {}, true
    for _, name in ipairs(names) do
      local port = M.free_port()
      if seen[port] then distinct = false end
      seen[port], ports[name] = true, port
    end
    if distinct then
      local started, output = M.start_nginx(server.dir, conf_for(ports))
      if started then
        local deadline = socket.gettime() + 10
        while socket.gettime() < deadline do
          local all = true
          for _, name in ipairs(names) do all = all and M.answers(ports[name]) end
          if all then return ports end
          socket.sleep(0.02)
        end
        server:stop()
        error(who .. ": nginx started but does not answer; see its error.log", 0)
      elseif not output:find("in use", 1, true) then
        server:stop()
        error(who .. ": nginx did not start:\n" .. output, 0)
      end
    end
  end
  server:stop()
  error(who .. ": no free loopback ports after 10 attempts", 0)
end

-- M.class(dir_name) -> the metatable of a server whose nginx runs with
-- prefix `self.dir`, a mktemp directory named dir_name.XXXXXX; it has
-- pid() and stop(), and takes the server's own methods beside them.
function M.class(dir_name)
  local Server = {}
  Server.__index = Server
  local own_dir = "/" .. dir_name:gsub("%-", "%%-") .. "%.[%w]+$"

  -- The pid of this server's nginx master, or nil when it is not running.
  function Server:pid()
    if not self.dir then return nil end
    local pid = tonumber(read_file(self.dir .. "/nginx.pid") or "")
    local cmdline = pid and (read_file("/proc/" .. pid .. "/cmdline") or ""):gsub("%z", " ")
    if pid and cmdline:find(self.dir .. "/", 1, true) then return pid end
  end

  function Server:stop()
    local pid = self:pid()
    if pid then
      os.execute("kill -QUIT " .. pid)
      local deadline = socket.gettime() + 5
      while self:pid() and socket.gettime() < deadline do socket.sleep(0.02) end
      if self:pid() then os.execute("kill -TERM " .. pid .. " 2>/dev/null") end
    end
    if self.dir and self.dir:match(own_dir) and not self:pid() then
      os.execute("rm -rf -- " .. quote(self.dir))
    end
    self.dir = nil
  end

  return Server
end

return M
