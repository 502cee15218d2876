-- bench/ngx_parse/ngx_parse.lua: the timing behind the ngx transport's
-- choice of response parser (issue 12): the C core's core.http_response
-- fed from receiveany, against Lua reading the answer off the cosocket
-- line by line (receive("*l"), receive(n)). Both read N keep-alive
-- answers from the same nginx; only the ratio means anything.
local core = require "truto.core"

local M = {}

local REQUEST = "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\r\n"

-- The ngx transport's way: receiveany + the C parser.
local function with_c_parser(sock)
  local parser = core.http_response(false)
  local pieces = {}
  local phase, status, headers = "head", nil, nil
  while phase ~= "done" do
    local data = assert(sock:receiveany(16384))
    phase = assert(parser:feed(data))
    if not status and phase ~= "head" then
      status, headers = parser:status(), parser:headers()
      assert(parser:content_length() or 0)
    end
    if status then pieces[#pieces + 1] = parser:take() end
  end
  assert(parser:keep_alive())
  return status, headers, table.concat(pieces)
end

-- Cosocket reads in Lua: the same framing, the same header table.
local function with_lua_reads(sock)
  local line = assert(sock:receive("*l"))
  local status = tonumber(line:match("^HTTP/1%.%d (%d%d%d)"))
  local headers = {}
  while true do
    line = assert(sock:receive("*l"))
    if line == "" then break end
    local name, value = line:match("^([^:]+):[ \t]*(.-)[ \t]*$")
    name = name:lower()
    local old = headers[name]
    headers[name] = old and (old .. ", " .. value) or value
  end
  local body
  local te = headers["transfer-encoding"]
  if te and te:lower():find("chunked", 1, true) then
    local pieces = {}
    while true do
      local size = tonumber(assert(sock:receive("*l")):match("^%x+"), 16)
      if size == 0 then
        repeat line = assert(sock:receive("*l")) until line == ""
        break
      end
      pieces[#pieces + 1] = assert(sock:receive(size))
      assert(sock:receive(2))
    end
    body = table.concat(pieces)
  else
    body = assert(sock:receive(tonumber(headers["content-length"])))
  end
  return status, headers, body
end

local function run(port, path, read, n)
  local sock = ngx.socket.tcp()
  sock:settimeouts(5000, 5000, 5000)
  assert(sock:connect("127.0.0.1", port))
  local request = REQUEST:format(path)
  ngx.update_time()
  local started = ngx.now()
  for _ = 1, n do
    assert(sock:send(request))
    local status, _, body = read(sock)
    assert(status == 201 and #body > 50)
  end
  ngx.update_time()
  sock:close()
  return ngx.now() - started
end

function M.handle(port)
  local n = tonumber(ngx.var.arg_n) or 5000
  local out = {}
  for _, path in ipairs { "/canned", "/chunked" } do
    run(port, path, with_c_parser, 200) -- warm up both (JIT, pools)
    run(port, path, with_lua_reads, 200)
    local c, l = 0, 0
    for _ = 1, 3 do -- interleaved rounds, best of each
      local tc, tl = run(port, path, with_c_parser, n), run(port, path, with_lua_reads, n)
      c = (c == 0 or tc < c) and tc or c
      l = (l == 0 or tl < l) and tl or l
    end
    out[#out + 1] = ("%s: %d answers: C parser %.3f s, Lua cosocket reads %.3f s, Lua/C = %.2f")
      :format(path, n, c, l, l / c)
  end
  ngx.say(table.concat(out, "\n"))
end

return M
