-- mock.answer: builds the mock's HTTP answers and puts them on the wire,
-- well-formed (through nginx) or broken on purpose (on the raw socket).
--
-- An answer is a plain table, kept as is for idempotent replays:
--   { status = 201, headers = { { "Name", "value" }, ... }, body = "...",
--     chunks = { "...", ... } }   -- chunks: sent as separate flushed pieces
-- Builders are pure; only the send_* functions touch ngx. Never decide here
-- what to answer (mock.api does).
local json = require "mock.json"

local answer = {}

local REASONS = {
  [200] = "OK", [201] = "Created", [202] = "Accepted", [204] = "No Content",
  [301] = "Moved Permanently", [302] = "Found", [304] = "Not Modified",
  [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden", [404] = "Not Found",
  [405] = "Method Not Allowed", [408] = "Request Timeout", [409] = "Conflict",
  [413] = "Payload Too Large", [415] = "Unsupported Media Type",
  [422] = "Unprocessable Entity", [429] = "Too Many Requests",
  [500] = "Internal Server Error", [501] = "Not Implemented", [502] = "Bad Gateway",
  [503] = "Service Unavailable", [504] = "Gateway Timeout",
}

-- The reason phrase of a status ("Unknown" for codes without one here).
function answer.reason(status)
  return REASONS[status] or "Unknown"
end

-- An answer whose body is value encoded as JSON.
function answer.json(status, value)
  return {
    status = status,
    headers = { { "Content-Type", "application/json" } },
    body = json.encode(value),
  }
end

-- Truto's error envelope, with truto_error_insight when there is one.
function answer.error(status, message, insight)
  return answer.json(status, json.object {
    statusCode = status,
    error = answer.reason(status),
    message = message or "",
    truto_error_insight = insight,
  })
end

-- An HTML error page like a load balancer's in front of the API.
function answer.html(status)
  local title = status .. " " .. answer.reason(status)
  return {
    status = status,
    headers = { { "Content-Type", "text/html" } },
    body = "<html>\r\n<head><title>" .. title .. "</title></head>\r\n<body>\r\n"
      .. "<center><h1>" .. title .. "</h1></center>\r\n<hr><center>awselb/2.0</center>\r\n"
      .. "</body>\r\n</html>\r\n",
  }
end

-- A valid JSON object of exactly `size` bytes (at least 2).
function answer.sized_json(status, size)
  local frame = '{"padding":""}'
  local body
  if size >= #frame then
    body = '{"padding":"' .. ("x"):rep(size - #frame) .. '"}'
  else
    body = "{}" .. (" "):rep(math.max(size - 2, 0))
  end
  return { status = status, headers = { { "Content-Type", "application/json" } }, body = body }
end

-- The answer's body in `count` pieces of about equal size.
function answer.split(body, count)
  local pieces, size = {}, math.max(math.ceil(#body / count), 1)
  for first = 1, #body, size do
    pieces[#pieces + 1] = body:sub(first, first + size - 1)
  end
  return pieces
end

-- A copy of the answer with headers added last (replacing same-named ones).
function answer.with_headers(original, extra)
  local copy = { status = original.status, body = original.body, chunks = original.chunks, headers = {} }
  local replaced = {}
  for _, header in ipairs(extra) do
    replaced[header[1]:lower()] = true
  end
  for _, header in ipairs(original.headers) do
    if not replaced[header[1]:lower()] then
      copy.headers[#copy.headers + 1] = header
    end
  end
  for _, header in ipairs(extra) do
    copy.headers[#copy.headers + 1] = header
  end
  return copy
end

local function full_body(a)
  return a.chunks and table.concat(a.chunks) or a.body or ""
end

local function has_header(a, name)
  for _, header in ipairs(a.headers) do
    if header[1]:lower() == name then
      return true
    end
  end
  return false
end

-- Sends a well-formed answer through nginx: with Content-Length, or, when it
-- has chunks, chunked with a flush (and chunk_delay seconds) between pieces.
function answer.send(a, chunk_delay)
  ngx.status = a.status
  local values = {}
  for _, header in ipairs(a.headers) do
    local name = header[1]
    if values[name] == nil then
      values[name] = header[2]
    elseif type(values[name]) == "table" then
      table.insert(values[name], header[2])
    else
      values[name] = { values[name], header[2] }
    end
  end
  for name, value in pairs(values) do
    ngx.header[name] = value
  end
  if not a.chunks then
    if not has_header(a, "content-length") then
      ngx.header["Content-Length"] = #(a.body or "")
    end
    ngx.print(a.body or "")
    return
  end
  ngx.header["Content-Length"] = nil
  for i, piece in ipairs(a.chunks) do
    if piece ~= "" then
      ngx.print(piece)
      ngx.flush(true)
    end
    if chunk_delay and chunk_delay > 0 and i < #a.chunks then
      ngx.sleep(chunk_delay)
    end
  end
end

-- The downstream socket, to write bytes nginx would never write itself.
local function raw_socket()
  ngx.req.read_body()
  return assert(ngx.req.socket(true))
end

-- Sends the status line and headers announcing the whole body, then only
-- the first `byte_count` bytes of it, then closes the connection.
function answer.send_truncated(a, byte_count)
  local body = full_body(a)
  local lines = { "HTTP/1.1 " .. a.status .. " " .. answer.reason(a.status) }
  for _, header in ipairs(a.headers) do
    if header[1]:lower() ~= "content-length" then
      lines[#lines + 1] = header[1] .. ": " .. header[2]
    end
  end
  lines[#lines + 1] = "Content-Length: " .. #body
  local bytes = table.concat(lines, "\r\n") .. "\r\n\r\n" .. body:sub(1, byte_count)
  raw_socket():send(bytes)
  ngx.exit(444)
end

-- Writes exactly these bytes on the connection, then closes it.
function answer.send_raw(bytes)
  raw_socket():send(bytes)
  ngx.exit(444)
end

-- Closes the connection without a byte of answer.
function answer.close_without_answer()
  ngx.exit(444)
end

return answer
