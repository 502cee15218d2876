-- bench/tls_server.lua: a local nginx speaking HTTPS the way Truto's front
-- does (TLS 1.2/1.3, `http2`, nginx's defaults otherwise), for the HTTPS
-- spec (spec/https_batch_spec.lua) and the benchmark (bench/run). A
-- self-signed CA and a server certificate for 127.0.0.1/localhost are made
-- with openssl in the server's own temp dir; clients trust them through
-- `ca_file`. Each server block answers a create with bench/group.json:
--   h2      https, HTTP/2 offered by ALPN (HTTP/1.1 still accepted)
--   h1      https, HTTP/1.1 only
--   plain   http
-- and under /slow/... the same answer after ngx.sleep(0.02) (20 ms of server
-- delay, no echo module needed); under /echo/... a group whose name is the
-- length of the request body received and whose description is its MD5
-- (the specs' check that every byte of a body arrives). Every request is logged to DIR/access.log
-- (one line: connection, its request number, TLS session reused, protocol,
-- status, Idempotency-Key), which M.count reads.
--
--   local tls = dofile("bench/tls_server.lua")
--   local s = tls.start{ repo = ".", keepalive_requests = 50 }  -- raises on failure
--   s.urls.h2, s.urls.h1, s.urls.plain, s.ca_file, s:log_mark(), s:count(mark)
--   s:stop()                                                    -- idempotent
--
-- Never binds a fixed port, signals only the nginx master whose pid file is
-- in its own dir, deletes nothing but that dir.
local socket = require "socket"

local M = {}

local HERE = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local sh = dofile(HERE .. "/../spec/support/sh.lua")
local quote, read_file, run = sh.quote, sh.read_file, sh.run
local LUA_MODULES = {
  "/usr/lib/nginx/modules/ndk_http_module.so", "/usr/lib/nginx/modules/ngx_http_lua_module.so" }

local CONF = [[
@LOAD@
worker_processes 1;
daemon on;
pid @PREFIX@/nginx.pid;
error_log @PREFIX@/error.log warn;
events { worker_connections 4096; }
http {
  client_body_temp_path @PREFIX@/temp/client_body;
  proxy_temp_path @PREFIX@/temp/proxy;
  fastcgi_temp_path @PREFIX@/temp/fastcgi;
  uwsgi_temp_path @PREFIX@/temp/uwsgi;
  scgi_temp_path @PREFIX@/temp/scgi;
  server_tokens off;
  etag off;
  @KEEPALIVE@
  log_format tls '$connection $connection_requests $ssl_session_reused $server_protocol '
                 '$ssl_protocol $status $request_method "$http_idempotency_key"';
  access_log @PREFIX@/access.log tls buffer=64k flush=100ms;
  ssl_certificate @PREFIX@/server.crt;
  ssl_certificate_key @PREFIX@/server.key;
  @LUA@
  server {
    listen 127.0.0.1:@H2@ ssl http2 backlog=1024;
    @ROUTES@
  }
  server {
    listen 127.0.0.1:@H1@ ssl backlog=1024;
    @ROUTES@
  }
  server {
    listen 127.0.0.1:@PLAIN@ backlog=1024;
    @ROUTES@
  }
}
]]

local ROUTES = [[
    location = /unified/user-directory/groups {
      default_type application/json;
      return 201 '@GROUP_JSON@';
    }
    @SLOW@
    location / { return 404; }
]]

local SLOW = [[
    location = /slow/unified/user-directory/groups {
      default_type application/json;
      content_by_lua_block {
        ngx.req.discard_body()
        ngx.sleep(0.02)
        ngx.status = 201
        ngx.header.content_length = #group_json
        ngx.print(group_json)
      }
    }
    location = /echo/unified/user-directory/groups {
      default_type application/json;
      client_max_body_size 16m;
      client_body_buffer_size 16m;
      content_by_lua_block {
        ngx.req.read_body()
        local body = ngx.req.get_body_data() or ""
        ngx.status = 201
        ngx.print('{"id":"echo","name":"' .. #body .. '","description":"' .. ngx.md5(body) .. '"}')
      }
    }
]]

local nginx_process = dofile(HERE .. "/nginx_process.lua")
local Server = nginx_process.class("truto-tls")

-- Where the log ends now: count(mark) reads only what came after.
function Server:log_mark()
  local f = io.open(self.dir .. "/access.log", "rb")
  if not f then return 0 end
  local size = f:seek("end")
  f:close()
  return size
end

-- Waits until nginx has flushed the log (buffer=64k flush=100ms) and no
-- line came for a moment.
local function settled_size(path)
  local last, same = -1, 0
  while same < 3 do
    socket.sleep(0.06)
    local f = io.open(path, "rb")
    local size = f and f:seek("end") or 0
    if f then f:close() end
    if size == last then same = same + 1 else same, last = 0, size end
  end
  return last
end

-- s:count(mark, fan_out) -> { requests, connections (new ones seen), tls_full,
-- tls_resumed, reconnects, reconnects_resumed, protocols = { ["HTTP/2.0"] = n, ... },
-- statuses = { [201] = n }, keys = n distinct Idempotency-Keys, duplicates =
-- n keys seen more than once, duplicate_keys = { ... } } over the log lines
-- after `mark`. Reconnects are the connections opened after the first ones:
-- those carrying the first `fan_out` requests (default 1) opened before any
-- session existed to resume.
function Server:count(mark, fan_out)
  local path = self.dir .. "/access.log"
  settled_size(path)
  local f = assert(io.open(path, "rb"))
  f:seek("set", mark or 0)
  local c = { requests = 0, connections = 0, tls_full = 0, tls_resumed = 0, reconnects = 0,
    reconnects_resumed = 0, protocols = {}, statuses = {}, keys = 0, duplicates = 0, duplicate_keys = {} }
  fan_out = fan_out or 1
  local seen_conn, seen_key = {}, {}
  for line in f:lines() do
    local conn, reused, proto, status, key =
      line:match('^(%d+) %d+ (%S+) (%S+) %S+ (%d+) %S+ "([^"]*)"')
    if conn then
      c.requests = c.requests + 1
      c.protocols[proto] = (c.protocols[proto] or 0) + 1
      c.statuses[tonumber(status)] = (c.statuses[tonumber(status)] or 0) + 1
      if not seen_conn[conn] then
        seen_conn[conn] = true
        c.connections = c.connections + 1
        if reused == "r" then c.tls_resumed = c.tls_resumed + 1
        elseif reused == "." then c.tls_full = c.tls_full + 1 end
        if c.requests > fan_out then
          c.reconnects = c.reconnects + 1
          if reused == "r" then c.reconnects_resumed = c.reconnects_resumed + 1 end
        end
      end
      if key ~= "" and key ~= "-" then
        local n = (seen_key[key] or 0) + 1
        seen_key[key] = n
        if n == 1 then c.keys = c.keys + 1
        elseif n == 2 then
          c.duplicates = c.duplicates + 1
          c.duplicate_keys[#c.duplicate_keys + 1] = key
        end
      end
    end
  end
  f:close()
  return c
end

local function make_certs(dir)
  local cmds = {
    "openssl ecparam -name prime256v1 -genkey -noout -out ca.key",
    "openssl req -x509 -new -key ca.key -days 2 -subj /CN=truto-test-ca -out ca.crt",
    "openssl ecparam -name prime256v1 -genkey -noout -out server.key",
    "openssl req -new -key server.key -subj /CN=localhost -out server.csr",
    "printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\nbasicConstraints=CA:FALSE\\n' > ext.cnf",
    "openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile ext.cnf"
      .. " -out server.crt",
  }
  local ok, out = run("cd " .. quote(dir) .. " && " .. table.concat(cmds, " 2>&1 && ") .. " 2>&1")
  if not ok then error("tls_server: openssl failed: " .. out, 0) end
end

-- M.start{ repo =, keepalive_requests = (nginx's default 1000 when nil),
-- slow = true (the /slow and /echo routes; loads the lua module) } -> server
function M.start(opts)
  opts = opts or {}
  local repo = opts.repo or (HERE .. "/..")
  local group = assert(read_file(repo .. "/bench/group.json"), "bench/group.json is missing"):gsub("%s+$", "")
  if group:find("['\\$]") then error("tls_server: bench/group.json must not contain ' \\ or $", 0) end
  local ok, out = run("mktemp -d " .. quote((os.getenv("TMPDIR") or "/tmp") .. "/truto-tls.XXXXXX"))
  if not ok then error("tls_server: mktemp: " .. out, 0) end
  local server = setmetatable({ dir = out:gsub("\n$", "") }, Server)
  os.execute("mkdir -p " .. quote(server.dir .. "/temp"))
  make_certs(server.dir)
  server.ca_file = server.dir .. "/ca.crt"
  local slow = opts.slow ~= false and io.open(LUA_MODULES[2], "rb") ~= nil
  local load, lua = "", ""
  if slow then
    load = "load_module " .. LUA_MODULES[1] .. ";\nload_module " .. LUA_MODULES[2] .. ";"
    lua = "init_by_lua_block { group_json = [=[" .. group .. "]=] }"
  end
  local routes = ROUTES:gsub("@SLOW@", slow and SLOW or "")
  local p = nginx_process.start_on_ports(server, { "H2", "H1", "PLAIN" }, function(ports)
    return (CONF:gsub("@ROUTES@", (routes:gsub("%%", "%%%%"))):gsub("@([%u_%d]+)@", {
      PREFIX = server.dir, LOAD = load, LUA = lua, GROUP_JSON = group,
      H2 = tostring(ports.H2), H1 = tostring(ports.H1), PLAIN = tostring(ports.PLAIN),
      KEEPALIVE = opts.keepalive_requests and ("keepalive_requests " .. opts.keepalive_requests .. ";") or "",
    }))
  end, "tls_server")
  server.urls = { h2 = "https://127.0.0.1:" .. p.H2, h1 = "https://127.0.0.1:" .. p.H1,
    plain = "http://127.0.0.1:" .. p.PLAIN }
  server.slow = slow
  return server
end

return M
