-- spec.support.openresty: runs examples/openresty/nginx.conf in a real
-- nginx (Debian's libnginx-mod-http-lua) for spec/openresty_spec.lua: in
-- its own temp dir, on a free loopback port, with one worker (or
-- opts.workers), the paths pointed at this tree, `user root;` when the
-- specs run as root (so the workers can read a checkout in a private
-- directory), and extra spec-only locations and servers added.
--
--   local openresty = require "spec.support.openresty"
--   local n = openresty.start { env = { TRUTO_BASE_URL = ... },
--     locations = "location ... { }", servers = "server { ... }",
--     ca_file = "/tmp/.../ca.pem",
--     example = "webhooks.conf",            -- another examples/openresty file
--     workers = 2 }                         -- worker_processes (default 1)
--   n.url, n.port, n.dir, n:log() (error.log), n:stop()
--
-- Builds the LuaJIT core first (`make LUA=luajit`): nginx loads that one,
-- whatever Lua runs the specs. Never binds a fixed port, never signals an
-- nginx it did not start (only the pid in its own dir, checked against its
-- command line), never deletes a directory it did not make.
local socket = require "socket"

local openresty = {}

local NGINX = "/usr/sbin/nginx"
local PORT_ATTEMPTS = 10
local START_SECONDS = 10
local STOP_SECONDS = 5

local sh = require "spec.support.sh"
local shell_quote = sh.quote

-- What `make check` may export for the spec's own Lua; no program this
-- helper starts (nginx, make, openssl, mktemp ...) runs under it. NGINX
-- too: nginx reads it as inherited sockets (a binary upgrade) and then
-- never daemonizes.
local CLEAN_ENV = "env -u LD_PRELOAD -u ASAN_OPTIONS -u UBSAN_OPTIONS -u LSAN_OPTIONS -u NGINX "

-- Runs a shell command in that clean environment; returns whether it
-- exited 0, and its output.
local function run(command) return sh.run(command, CLEAN_ENV) end
local read_file, write_file = sh.read_file, sh.write_file

-- The repository root (absolute): two levels above this file.
local function repo_root()
  local source = debug.getinfo(1, "S").source:gsub("^@", "")
  local dir = source:gsub("spec/support/[^/]*$", "")
  local ok, output = run("cd " .. shell_quote(dir == "" and "." or dir) .. " && pwd -P")
  assert(ok, output)
  return (output:gsub("\n$", ""))
end

openresty.root = repo_root()
openresty.run = run
openresty.as_root = sh.nginx_user_line() ~= ""

function openresty.free_port()
  local probe = assert(socket.bind("127.0.0.1", 0))
  local _, port = probe:getsockname()
  probe:close()
  return port
end

-- One plain HTTP/1.0 exchange (no chunking: the answer ends with the
-- connection) on a new connection; returns status, body, seconds taken,
-- the status line and headers as text (or nil, error).
function openresty.http(port, method, target, body, timeout)
  local started = socket.gettime()
  local conn = socket.tcp()
  conn:settimeout(timeout or 10)
  local ok, err = conn:connect("127.0.0.1", port)
  if not ok then return nil, err end
  conn:send(method .. " " .. target .. " HTTP/1.0\r\nHost: 127.0.0.1\r\n"
    .. (body and ("Content-Type: application/json\r\nContent-Length: " .. #body .. "\r\n") or "")
    .. "\r\n" .. (body or ""))
  local text, rerr, partial = conn:receive("*a")
  conn:close()
  text = text or partial
  if not text or text == "" then return nil, rerr or "no answer" end
  local status = tonumber(text:match("^HTTP/1%.%d (%d%d%d)"))
  local head, answer = text:match("^(.-\r\n)\r\n(.*)$")
  return status, answer or "", socket.gettime() - started, head or text
end

local Nginx = {}
Nginx.__index = Nginx

local function running_pid(dir)
  local pid = tonumber(read_file(dir .. "/logs/nginx.pid") or "")
  if pid and (read_file("/proc/" .. pid .. "/cmdline") or ""):find(dir .. "/", 1, true) then
    return pid
  end
end

function Nginx:log()
  return read_file(self.dir .. "/logs/error.log") or ""
end

function Nginx:stop()
  if self.stopped then return end
  self.stopped = true
  local pid = running_pid(self.dir)
  if pid then
    local _, workers = run("pgrep -P " .. pid)
    run("kill -TERM " .. pid)
    local deadline = socket.gettime() + STOP_SECONDS
    while running_pid(self.dir) and socket.gettime() < deadline do socket.sleep(0.05) end
    if running_pid(self.dir) then
      run("kill -KILL " .. pid .. " " .. workers:gsub("%s+", " "))
    end
  end
  if self.dir:match("/truto%-openresty%.[%w]+$") then
    run("rm -rf -- " .. shell_quote(self.dir))
  end
end

Nginx.__gc = Nginx.stop

-- Replaces `pattern` in text, exactly `count` times or fails loudly: the
-- spec must run the example as it is, not a config that drifted from it.
local function swap(text, pattern, replacement, what)
  local out, n = text:gsub(pattern, function() return replacement end)
  assert(n >= 1, "the example configuration has no " .. what)
  return out
end

-- The example configuration with this tree's paths, port and extras.
function openresty.render(port, opts)
  local text = assert(read_file(openresty.root .. "/examples/openresty/" .. (opts.example or "nginx.conf")))
  text = swap(text, "/opt/truto%-lua", openresty.root, "/opt/truto-lua path")
  -- as root, the workers run as root too: as `nobody` (nginx's default)
  -- they cannot read a checkout in a private directory (the examples say
  -- which `user` a real deployment needs)
  text = swap(text, "\nworker_processes auto;", "\nworker_processes " .. (opts.workers or 1) .. ";"
    .. "\n" .. sh.nginx_user_line(), "worker_processes line")
  text = swap(text, "\n    listen 8080;", "\n    listen 127.0.0.1:" .. port .. ";\n"
    .. (opts.locations or ""), "listen line")
  if opts.ca_file then
    text = swap(text, "lua_ssl_trusted_certificate [^;]+;",
      "lua_ssl_trusted_certificate " .. opts.ca_file .. ";", "lua_ssl_trusted_certificate")
  end
  -- spec-only servers go last in the http block
  local last = text:match(".*()}")
  text = text:sub(1, last - 1) .. (opts.servers or "") .. "\n}\n"
  return text
end

-- Starts nginx; see the header. Raises when it cannot.
function openresty.start(opts)
  opts = opts or {}
  -- nginx loads a plain build, whatever flags a `make check` run uses
  local ok, output = run("make --no-print-directory -s -C " .. shell_quote(openresty.root)
    .. " LUA=luajit CFLAGS='-O2 -g' build")
  assert(ok, "make LUA=luajit failed:\n" .. output)
  local made, dir = run("mktemp -d " .. shell_quote((os.getenv("TMPDIR") or "/tmp") .. "/truto-openresty.XXXXXX"))
  assert(made, dir)
  dir = dir:gsub("\n$", "")
  run("mkdir -p " .. shell_quote(dir .. "/logs") .. " " .. shell_quote(dir .. "/temp")
    .. " && chmod 755 " .. shell_quote(dir))
  local env = {}
  for name, value in pairs(opts.env or {}) do env[#env + 1] = name .. "=" .. shell_quote(value) end
  local last_output = ""
  for _ = 1, PORT_ATTEMPTS do
    local port = openresty.free_port()
    write_file(dir .. "/nginx.conf", openresty.render(port, opts))
    local started, out = run(table.concat(env, " ") .. " " .. NGINX .. " -p " .. shell_quote(dir .. "/")
      .. " -e logs/error.log -c " .. shell_quote(dir .. "/nginx.conf"))
    last_output = out
    if started then
      local n = setmetatable({ dir = dir, port = port, url = "http://127.0.0.1:" .. port }, Nginx)
      local deadline = socket.gettime() + START_SECONDS
      -- an HTTP answer (any status) proves a worker runs: the master alone
      -- accepts connections even when its worker died at start
      while socket.gettime() < deadline do
        if openresty.http(port, "GET", "/", nil, 0.5) then return n end
        if n:log():find("cannot be respawned", 1, true) then break end
        socket.sleep(0.05)
      end
      local log = n:log()
      n:stop()
      error("nginx started but its worker never answered on port " .. port .. ":\n" .. log)
    elseif not out:find("in use", 1, true) then
      break
    end
  end
  local log = read_file(dir .. "/logs/error.log") or ""
  run("rm -rf -- " .. shell_quote(dir))
  error("nginx did not start:\n" .. last_output .. "\n" .. log)
end

return openresty
