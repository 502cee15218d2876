-- mock.control: the control API specs use to drive the mock, under /__mock/.
-- JSON in and out; these requests are never recorded and never count
-- against rate limits. Never answer an API path here.
--
--   GET  /__mock/health    200 "ok"
--   GET  /__mock/requests  the records of every API request, in order
--   GET  /__mock/stats     {"created": N, "requests": N}
--   POST /__mock/forget    forget records and steps only (objects stay)
--   POST /__mock/reset     forget records, steps, replays, objects and
--                          counters; latency and limits back to mock/run's
--   POST /__mock/script    queue steps (a JSON array); each next API request
--                          consumes one, first in first out
--   GET  /__mock/config    {"latency": seconds, "limits": "account=50/1,token=500/1"}
--   POST /__mock/config    change them: {"latency": 0.08, "limits": "50/1,500/1"}
--                          (either may be left out; limits in mock.limits'
--                          written form, "off" or false for none); new
--                          limits start new windows
--   GET  /__mock/objects?account=ID&key=user-directory/groups
--                          the objects one account keeps, in order
--   POST /__mock/objects   {"account": ID, "key": "user-directory/groups",
--                          "objects": [{...}], "reset": true}: the account
--                          keeps exactly these (each given a new id unless
--                          it has one), after a reset when asked; answers
--                          them. Nothing is recorded.
--   POST /__mock/faults    {"partial_page": N}: the Nth list page served
--                          from now on says is_partial_response: true
--                          (mock.listing); reset clears it
--
-- A step (every field optional; unknown fields are refused):
--   status, headers, body  answer exactly this (body sent verbatim)
--   json                   ... with this value encoded as the body
--   status alone           ... with Truto's error envelope for that status
--   html                   an HTML error page like a load balancer's (status, default 502)
--   size                   200 (or status) with a valid JSON body of exactly size bytes
--   chunks                 a list of strings: the body in these flushed pieces;
--                          a number: Truto's answer cut in that many pieces
--   chunk_delay            seconds between pieces (also slows stream answers)
--   delay                  seconds to wait before answering at all
--   close_after            announce the whole body, send only N bytes, close
--   reset                  close the connection without any answer
--   raw                    write these exact bytes, then close
--   create                 really create (true) or not (false); by default a
--                          step creates only when it answers as Truto would
--   headers                added to whatever the step answers
local json = require "mock.json"
local answer = require "mock.answer"
local state = require "mock.state"
local limits = require "mock.limits"
local listing = require "mock.listing"

local control = {}

local function is_integer(value)
  return type(value) == "number" and value >= 0 and value % 1 == 0
end

local function is_string_array(value)
  if not json.is_array(value) then
    return false
  end
  for _, item in ipairs(value) do
    if type(item) ~= "string" then
      return false
    end
  end
  return true
end

local function is_header_object(value)
  if not json.is_object(value) then
    return false
  end
  for _, item in pairs(value) do
    if type(item) ~= "string" and type(item) ~= "number" then
      return false
    end
  end
  return true
end

-- Each step field: what it must be, and a check.
local STEP_FIELDS = {
  status = { "an HTTP status from 200 to 599",
    function(v) return is_integer(v) and v >= 200 and v <= 599 end },
  headers = { "an object of header names to strings", is_header_object },
  body = { "a string", function(v) return type(v) == "string" end },
  json = { "any JSON value", function() return true end },
  html = { "a boolean", function(v) return type(v) == "boolean" end },
  size = { "a byte count", is_integer },
  chunks = { "a list of strings or a number of pieces",
    function(v) return is_string_array(v) or (is_integer(v) and v >= 1) end },
  chunk_delay = { "seconds", function(v) return type(v) == "number" and v >= 0 end },
  delay = { "seconds", function(v) return type(v) == "number" and v >= 0 end },
  close_after = { "a byte count", is_integer },
  reset = { "a boolean", function(v) return type(v) == "boolean" end },
  raw = { "a string of bytes", function(v) return type(v) == "string" end },
  create = { "a boolean", function(v) return type(v) == "boolean" end },
}

-- Returns nil when the step can be played, else what is wrong with it.
local function step_problem(step, index)
  if not json.is_object(step) then
    return "step " .. index .. " must be a JSON object"
  end
  for name, value in pairs(step) do
    local field = STEP_FIELDS[name]
    if not field then
      return "step " .. index .. ": unknown field " .. tostring(name)
    elseif not field[2](value) then
      return "step " .. index .. ": " .. name .. " must be " .. field[1]
    end
  end
end

local function read_json_body()
  ngx.req.read_body()
  return json.decode(ngx.req.get_body_data() or "")
end

local function queue_steps()
  local steps, err = read_json_body()
  if not json.is_array(steps) then
    return answer.error(400, "POST /__mock/script wants a JSON array of steps" .. (err and ": " .. err or ""))
  end
  for index, step in ipairs(steps) do
    local problem = step_problem(step, index)
    if problem then
      return answer.error(400, problem)
    end
  end
  return answer.json(200, json.object { queued = state.add_steps(steps) })
end

local function current_config()
  return answer.json(200, json.object { latency = state.latency, limits = limits.format(state.limits) })
end

local function configure()
  local config, err = read_json_body()
  if not json.is_object(config) then
    return answer.error(400, "POST /__mock/config wants a JSON object" .. (err and ": " .. err or ""))
  end
  local latency, parsed = config.latency, nil
  for name in pairs(config) do
    if name ~= "latency" and name ~= "limits" then
      return answer.error(400, "config: unknown field " .. tostring(name))
    end
  end
  if latency ~= nil and (type(latency) ~= "number" or latency < 0) then
    return answer.error(400, "config: latency must be seconds (a number, 0 or more)")
  end
  if config.limits == false then
    parsed = {}
  elseif config.limits ~= nil then
    if type(config.limits) ~= "string" then
      return answer.error(400, "config: limits must be a string such as \"50/1,500/1\", or false")
    end
    parsed, err = limits.parse(config.limits)
    if not parsed then
      return answer.error(400, "config: " .. err)
    end
  end
  state.configure(latency, parsed)
  return current_config()
end

local function objects_of(account, key)
  local collection = state.collection(account, key)
  local out = json.array()
  for i, id in ipairs(collection.ids) do out[i] = collection.by_id[id] end
  return out
end

local function get_objects()
  local args = ngx.req.get_uri_args()
  if type(args.account) ~= "string" or type(args.key) ~= "string" then
    return answer.error(400, "GET /__mock/objects wants ?account=ID&key=model/resource")
  end
  return answer.json(200, objects_of(args.account, args.key))
end

local function set_objects()
  local body, err = read_json_body()
  if not json.is_object(body) or type(body.account) ~= "string" or type(body.key) ~= "string"
      or not json.is_array(body.objects) then
    return answer.error(400, "POST /__mock/objects wants {\"account\", \"key\", \"objects\": [...]}"
      .. (err and ": " .. err or ""))
  end
  if body.reset == true then
    state.reset()
    listing.faults = { served = 0 }
  end
  local collection = state.collection(body.account, body.key)
  collection.ids, collection.by_id = {}, {}
  for _, object in ipairs(body.objects) do
    if not json.is_object(object) then return answer.error(400, "objects: each must be a JSON object") end
    local stored = json.object()
    for k, v in pairs(object) do stored[k] = v end
    if stored.id == nil then stored.id = state.new_id() end
    local id = tostring(stored.id)
    if not collection.by_id[id] then collection.ids[#collection.ids + 1] = id end
    collection.by_id[id] = stored
  end
  return answer.json(200, objects_of(body.account, body.key))
end

local function set_faults()
  local body, err = read_json_body()
  if not json.is_object(body) then
    return answer.error(400, "POST /__mock/faults wants a JSON object" .. (err and ": " .. err or ""))
  end
  for name, value in pairs(body) do
    if name ~= "partial_page" then return answer.error(400, "faults: unknown field " .. tostring(name)) end
    if not is_integer(value) then return answer.error(400, "faults: partial_page must be a page number") end
  end
  listing.faults = { served = 0, partial_page = body.partial_page }
  return answer.json(200, json.object { partial_page = body.partial_page or json.null })
end

local routes = {
  ["/__mock/health"] = { GET = function()
    return { status = 200, headers = { { "Content-Type", "text/plain" } }, body = "ok" }
  end },
  ["/__mock/requests"] = { GET = function()
    return answer.json(200, state.records)
  end },
  ["/__mock/stats"] = { GET = function()
    return answer.json(200, json.object { created = state.created, requests = #state.records })
  end },
  ["/__mock/forget"] = { POST = function()
    state.forget_requests()
    return answer.json(200, json.object { forgotten = true })
  end },
  ["/__mock/reset"] = { POST = function()
    state.reset()
    listing.faults = { served = 0 }
    return answer.json(200, json.object { reset = true })
  end },
  ["/__mock/script"] = { POST = queue_steps },
  ["/__mock/config"] = { GET = current_config, POST = configure },
  ["/__mock/objects"] = { GET = get_objects, POST = set_objects },
  ["/__mock/faults"] = { POST = set_faults },
}

function control.handle()
  local route = routes[ngx.var.uri]
  local method = ngx.req.get_method()
  if not route then
    return answer.send(answer.error(404, "No control route " .. ngx.var.uri))
  elseif not route[method] then
    return answer.send(answer.error(405, method .. " is not allowed on " .. ngx.var.uri))
  end
  answer.send(route[method]())
end

return control
