-- mock.deliver: the mock plays Truto's webhook sender, for POST
-- /__mock/deliver. Signs an event with a webhook's secret and POSTs it to a
-- URL the way Truto does (User-Agent: truto, X-Truto-Signature:
-- format=sha256,v=<hex> of the raw body), then answers with what the
-- receiver said. Specs drive a whole webhook flow with it.
--
-- Request (JSON object):
--   url        where to POST (http:// only; required)
--   secret     the webhook's secret to sign with (required unless signature)
--   event      the event object; id, created_at (now), environment_id and
--              webhook_id are filled in when absent
--   body       raw bytes to send instead of an encoded event
--   signature  an X-Truto-Signature value to send as is (a forgery)
--   headers    more request headers (an object of strings)
-- Answer: {"status": N, "body": "...", "sent": "<raw body>", "signature":
-- "<header sent>", "id": "<event id>"}; a 502 envelope when the receiver
-- cannot be reached.
--
-- Signs with libcrypto through LuaJIT's FFI: a second HMAC, independent of
-- the C core the receiver verifies with. Never records a delivery as an API
-- request, and never retries (a spec repeats a delivery to replay it).
local ffi = require "ffi"
local json = require "mock.json"
local answer = require "mock.answer"

local deliver = {}

local TIMEOUT_MS = 10000
local MAX_ANSWER_BYTES = 1024 * 1024

ffi.cdef [[
typedef struct evp_md_st EVP_MD;
const EVP_MD *EVP_sha256(void);
unsigned char *HMAC(const EVP_MD *evp_md, const void *key, int key_len,
                    const unsigned char *d, size_t n, unsigned char *md, unsigned int *md_len);
]]

local libcrypto
for _, name in ipairs { "libcrypto.so.3", "libcrypto.so.1.1", "crypto" } do
  local ok, lib = pcall(ffi.load, name)
  if ok then libcrypto = lib break end
end

-- HMAC-SHA256 of data keyed with secret, as 64 lowercase hex digits.
function deliver.hmac_sha256_hex(secret, data)
  assert(libcrypto, "the mock cannot load libcrypto")
  local md = ffi.new("unsigned char[32]")
  local len = ffi.new("unsigned int[1]")
  assert(libcrypto.HMAC(libcrypto.EVP_sha256(), secret, #secret, data, #data, md, len) ~= nil,
    "HMAC failed")
  return (ffi.string(md, len[0]):gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

local function iso8601_now()
  local now = ngx.now()
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(now)) .. (".%03dZ"):format(math.floor(now * 1000) % 1000)
end

local function random_uuid()
  local hex = ngx.md5(tostring(ngx.now()) .. ngx.worker.pid() .. math.random() .. math.random())
  return ("%s-%s-4%s-a%s-%s"):format(hex:sub(1, 8), hex:sub(9, 12), hex:sub(14, 16), hex:sub(18, 20),
    hex:sub(21, 32))
end

-- The event's JSON in Truto's key order (id, event, payload,
-- environment_id, webhook_id, created_at, then anything else).
local ORDER = { "id", "event", "payload", "environment_id", "webhook_id", "created_at" }
local function encode_event(event)
  local parts, listed = {}, {}
  for _, key in ipairs(ORDER) do
    listed[key] = true
    if event[key] ~= nil then parts[#parts + 1] = json.encode(key) .. ":" .. json.encode(event[key]) end
  end
  for key, value in pairs(event) do
    if not listed[key] then parts[#parts + 1] = json.encode(key) .. ":" .. json.encode(value) end
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

-- POSTs body to an http:// URL; returns status, answer body or nil, error.
local function post(url, headers, body)
  local host, port, path = url:match("^http://([^/:]+):?(%d*)(/?[^#]*)$")
  if not host then return nil, "only http://host[:port]/path URLs can be delivered to" end
  port = tonumber(port) or 80
  if path == "" then path = "/" end
  local sock = ngx.socket.tcp()
  sock:settimeout(TIMEOUT_MS)
  local ok, err = sock:connect(host, port)
  if not ok then return nil, "connect: " .. tostring(err) end
  local lines = { "POST " .. path .. " HTTP/1.1", "Host: " .. host .. (port ~= 80 and ":" .. port or ""),
    "Content-Length: " .. #body, "Connection: close" }
  for _, h in ipairs(headers) do lines[#lines + 1] = h[1] .. ": " .. h[2] end
  ok, err = sock:send(table.concat(lines, "\r\n") .. "\r\n\r\n" .. body)
  if not ok then sock:close() return nil, "send: " .. tostring(err) end
  local text, rerr, partial = sock:receive(MAX_ANSWER_BYTES)
  sock:close()
  text = text or partial or ""
  if text == "" then return nil, "no answer: " .. tostring(rerr) end
  local status = tonumber(text:match("^HTTP/1%.%d (%d%d%d)"))
  if not status then return nil, "not an HTTP answer" end
  local head, answer_body = text:match("^(.-)\r\n\r\n(.*)$")
  answer_body = answer_body or ""
  if head and head:lower():find("\ntransfer%-encoding:%s*chunked") then
    local out, pos = {}, 1
    while true do
      local size_hex, after = answer_body:match("^(%x+)[^\r\n]*\r\n()", pos)
      local size = size_hex and tonumber(size_hex, 16)
      if not size or size == 0 then break end
      out[#out + 1] = answer_body:sub(after, after + size - 1)
      pos = after + size + 2
    end
    answer_body = table.concat(out)
  end
  return status, answer_body
end

function deliver.handle()
  if ngx.req.get_method() ~= "POST" then
    return answer.send(answer.error(405, "POST /__mock/deliver"))
  end
  ngx.req.read_body()
  local request, derr = json.decode(ngx.req.get_body_data() or "")
  if not json.is_object(request) then
    return answer.send(answer.error(400, "POST /__mock/deliver wants a JSON object" .. (derr and ": " .. derr or "")))
  end
  local url, secret, signature = request.url, request.secret, request.signature
  if type(url) ~= "string" then return answer.send(answer.error(400, "url: a string is required")) end
  if signature ~= nil and type(signature) ~= "string" then
    return answer.send(answer.error(400, "signature: must be a string"))
  end
  if signature == nil and (type(secret) ~= "string" or secret == "") then
    return answer.send(answer.error(400, "secret: a non-empty string is required to sign"))
  end
  local body, id = request.body, nil
  if body == nil then
    local event = request.event
    if not json.is_object(event) then
      return answer.send(answer.error(400, "event: a JSON object is required (or body)"))
    end
    if event.id == nil then event.id = random_uuid() end
    if event.created_at == nil then event.created_at = iso8601_now() end
    if event.environment_id == nil then event.environment_id = "ac15abdc-b38e-47d0-97a2-69194017c177" end
    if event.webhook_id == nil then event.webhook_id = "b6d29b9b-3d9d-44fd-aa77-512fd83b28c1" end
    id = event.id
    body = encode_event(event)
  elseif type(body) ~= "string" then
    return answer.send(answer.error(400, "body: must be a string"))
  end
  signature = signature or ("format=sha256,v=" .. deliver.hmac_sha256_hex(secret, body))
  local headers = { { "User-Agent", "truto" }, { "Content-Type", "application/json" },
    { "X-Truto-Signature", signature } }
  if request.headers ~= nil then
    if not json.is_object(request.headers) then
      return answer.send(answer.error(400, "headers: must be an object of strings"))
    end
    for name, value in pairs(request.headers) do headers[#headers + 1] = { name, tostring(value) } end
  end
  local status, answer_body = post(url, headers, body)
  if not status then
    return answer.send(answer.error(502, "delivery to " .. url .. " failed: " .. tostring(answer_body)))
  end
  return answer.send(answer.json(200, json.object {
    status = status, body = answer_body, sent = body, signature = signature, id = id,
  }))
end

return deliver
