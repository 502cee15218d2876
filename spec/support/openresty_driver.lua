-- spec.support.openresty_driver: one create, described as plain data, so
-- spec/openresty_spec.lua can run the same call through the ngx transport
-- (inside nginx: content_by_lua_file on this file, POST a JSON input) and
-- through the curl transport (in the spec's own Lua: require it) and
-- compare the two descriptions.
--
--   input = { config = {...truto.new}, body = ..., query = ..., options = ...,
--             sink = true (collect a stream), sink_error = true (a sink that raises),
--             many = N, concurrency = C (create_many over N items instead),
--             result_error = I (with many: on_result raises at item I) }
--   describe(input) -> { ok, value, status, attempts, retries, chunks, ... }
--                    | { ok = false, kind, status, timeout, attempts, ... }
--                    | { raised = message }
-- Never decides what is right: the spec does.
local truto = require "truto"

local driver = {}

function driver.describe(input)
  local config = {}
  for k, v in pairs(input.config or {}) do config[k] = v end
  local retries = {}
  config.on_retry = function(info)
    retries[#retries + 1] = { reason = info.reason, wait = info.wait }
  end
  local client, cerr = truto.new(config)
  if not client then
    return { ok = false, kind = cerr.kind, field = cerr.field, message = cerr.message }
  end
  local options = {}
  for k, v in pairs(input.options or {}) do options[k] = v end
  local chunks
  if input.sink then
    chunks = {}
    options.sink = function(chunk) chunks[#chunks + 1] = chunk end
  elseif input.sink_error then
    options.sink = function() error("sink failed on purpose", 0) end
  end
  if input.many then
    -- create_many over `many` copies of the body, each named by its index
    local items = {}
    for i = 1, input.many do
      items[i] = { name = input.body.name .. " " .. i }
    end
    options.idempotency_key = nil
    options.concurrency = input.concurrency
    if input.result_error then
      options.on_result = function(i)
        if i == input.result_error then error("on_result failed on purpose", 0) end
      end
    end
    local ran, results = pcall(client.groups.create_many, items, input.query, options)
    if not ran then
      client:close()
      return { raised = tostring(results), transport = client.transport.name }
    end
    local created, keys = 0, {}
    for i = 1, input.many do
      if results[i].group then
        created = created + 1
        keys[results[i].meta.idempotency_key] = true
      end
    end
    local distinct = 0
    for _ in pairs(keys) do distinct = distinct + 1 end
    client:close()
    return { many = input.many, created = created, distinct_keys = distinct,
      transport = client.transport.name }
  end
  local called, value, meta = pcall(client.groups.create, input.body, input.query, options)
  local transport = client.transport.name
  client:close()
  if not called then
    return { raised = tostring(value), transport = transport }
  end
  if value ~= nil then
    return {
      ok = true, value = value, status = meta.status, attempts = meta.attempts,
      idempotency_key = meta.idempotency_key, retries = retries, transport = transport,
      chunks = chunks and table.concat(chunks) or nil,
      connection = meta.headers["x-connection"],
      connection_requests = meta.headers["x-connection-requests"],
      protocol = meta.headers["x-protocol"],
      tls_reused = meta.headers["x-tls-reused"],
    }
  end
  local err = meta
  return {
    ok = false, kind = err.kind, status = err.status, timeout = err.timeout,
    attempts = err.attempts, retryable = err.retryable, retry_after = err.retry_after,
    message = err.message, field = err.field, retries = retries, transport = transport,
  }
end

-- Inside nginx: the request body is the input, the answer its description.
function driver.handle()
  local cjson = require "cjson"
  ngx.req.read_body()
  local input = cjson.decode(ngx.req.get_body_data())
  local started = ngx.now()
  local result = driver.describe(input)
  ngx.update_time()
  result.handler_seconds = ngx.now() - started
  ngx.header["Content-Type"] = "application/json"
  ngx.say(cjson.encode(result))
end

if rawget(_G, "ngx") and type(ngx.get_phase) == "function" and ngx.get_phase() == "content" then
  return driver.handle()
end
return driver
