-- mock.api: the mock of Truto's unified API, for everything nginx receives
-- outside /__mock/: every operation of every resource truto.api describes,
-- and any other unified resource (/unified/{model}/{resource}[/{id}|/{method}])
-- generically. Never name a resource here: what differs between resources
-- is read from their descriptions (mock.objects).
--
-- Records every request, then answers it the way Truto would (rate limits,
-- routing by method and path template, auth, query and body validation
-- from the operation's description, per-integration rules, sandbox and
-- blocked accounts, idempotent replays, objects kept per integrated
-- account), after the configured latency, unless a scripted step
-- (mock.control) says to answer otherwise. Never repeat a fact of truto.api
-- here, and never change what is kept for a scripted fault unless the step
-- says `create`.
local api_description = require "truto.api"
local json = require "mock.json"
local query = require "mock.query"
local validate = require "mock.validate"
local router = require "mock.router"
local listing = require "mock.listing"
local objects = require "mock.objects"
local answer = require "mock.answer"
local state = require "mock.state"

local api = {}

local TOKEN = os.getenv("MOCK_TOKEN")
if TOKEN == nil or TOKEN == "" then
  TOKEN = "mock-token"
end

-- Every integration some operation of truto.api describes.
local known_integrations = {}
for _, desc in pairs(api_description.resources) do
  for _, op in pairs(desc.operations) do
    for key in pairs(op.integrations or {}) do
      known_integrations[key] = true
    end
  end
end

local accounts = {}
for _, account in ipairs(require "mock.accounts") do
  assert(known_integrations[account.integration],
    "mock/accounts.lua: " .. account.id .. " names an integration truto.api does not know")
  accounts[account.id] = account
end

local STREAM_PIECES = 3
local WRITES = { POST = true, PATCH = true, DELETE = true }
local REPLAYED = { POST = true, PATCH = true }

local function iso8601_now()
  local now = ngx.now()
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(now)) .. string.format(".%03dZ", math.floor(now * 1000) % 1000)
end

local function first_value(value)
  if type(value) == "table" then
    return value[1]
  end
  return value
end

-- Everything about the request the specs may want, exactly as received.
local function read_request()
  ngx.req.read_body()
  local body = ngx.req.get_body_data()
  if not body then
    local path = ngx.req.get_body_file()
    local file = path and io.open(path, "rb")
    if file then
      body = file:read("*a")
      file:close()
    end
  end
  local headers = json.object()
  for name, value in pairs(ngx.req.get_headers(0)) do
    headers[name] = type(value) == "table" and json.array(value) or value
  end
  local authorization = first_value(headers.authorization)
  local idempotency_key = first_value(headers["idempotency-key"])
  local params = query.parse(ngx.var.args)
  return {
    request_line = ngx.var.request,
    method = ngx.req.get_method(),
    path = ngx.var.request_uri:match("^[^?]*"),
    query = ngx.var.args,
    params = params,
    raw_header = ngx.req.raw_header(),
    headers = headers,
    body = body or "",
    token = authorization and authorization:match("^[Bb][Ee][Aa][Rr][Ee][Rr] +(.-) *$"),
    idempotency_key = idempotency_key ~= "" and idempotency_key or nil,
    account = type(params.integrated_account_id) == "string" and params.integrated_account_id or nil,
  }
end

local function new_record(request)
  return {
    request_line = request.request_line,
    method = request.method,
    path = request.path,
    query = request.query or json.null,
    params = request.params,
    raw_header = request.raw_header,
    headers = request.headers,
    body = request.body,
    idempotency_key = request.idempotency_key or json.null,
    operation = json.null,
    created = json.null,
    status = json.null,
    replayed = false,
    scripted = json.null,
    at = ngx.now(),
  }
end

local function refusal(problem)
  return answer.error(problem.status, problem.message, problem.insight)
end

-- The ratelimit-* headers of a verdict of state.count_request.
local function rate_headers(verdict)
  if verdict.counting then
    return {
      { "ratelimit-limit", state.rate_limit_header },
      { "ratelimit-remaining", tostring(verdict.remaining) },
      { "ratelimit-reset", state.rate_reset_header },
    }
  end
  return {
    { "ratelimit-limit", ("%d;w=%g"):format(verdict.limit, verdict.window) },
    { "ratelimit-remaining", tostring(verdict.remaining) },
    { "ratelimit-reset", tostring(math.ceil(verdict.reset)) },
  }
end

-- Truto's own 429: the envelope, Retry-After (whole seconds until the
-- window that refused is over) and which limit it was.
local function rate_limited(verdict)
  local scope = verdict.refused == "account" and "integrated account" or "API token"
  local limited = answer.error(429, ("Rate limit exceeded for this %s: %d requests per %g s")
    :format(scope, verdict.limit, verdict.window), json.object {
      rate_limit_error = json.object { scope = verdict.refused, limit = verdict.limit,
        window = verdict.window },
    })
  local headers = rate_headers(verdict)
  table.insert(headers, 1, { "Retry-After", tostring(math.max(math.ceil(verdict.reset), 1)) })
  return answer.with_headers(limited, headers)
end

-- The answer with one object, rendered as asked (mock.objects.render), or
-- streamed in pieces.
local function render_object(desc, integration_key, object, params, status)
  local rendered = answer.json(status, objects.render(desc, integration_key, object, params))
  if params.truto_response_format == "stream" then
    rendered.headers = { { "Content-Type", "application/octet-stream" } }
    rendered.chunks = answer.split(rendered.body, STREAM_PIECES)
    rendered.body = nil
  end
  return rendered
end

local function not_found(desc, id)
  return answer.error(404, ("No %s with id %s in this integrated account"):format(desc.resource, id))
end

-- Per operation: (route, account, params, body, commit) -> answer, id created.
-- Nothing kept changes unless commit is true.
local perform = {}

function perform.create(route, account, params, body, commit)
  local collection = state.collection(account.id, route.key)
  local id = state.new_id()
  local object = objects.create(route.desc, account.integration, id, params, body, iso8601_now())
  if commit then
    collection.ids[#collection.ids + 1] = id
    collection.by_id[id] = object
    state.created = state.created + 1
  end
  return render_object(route.desc, account.integration, object, params, 201), commit and id or nil
end

function perform.list(route, account, params)
  local collection = state.collection(account.id, route.key)
  local kept = {}
  for i, id in ipairs(collection.ids) do
    kept[i] = collection.by_id[id]
  end
  kept = listing.select(route.op, objects.fields(route.desc), kept, params)
  local scope = route.op.path .. "@" .. account.id -- a cursor is good for this list only
  local page, problem = listing.page(kept, params, state.nonce, scope, function(object)
    return objects.render(route.desc, account.integration, object, params)
  end)
  if not page then
    return answer.error(400, problem, json.object { invalid_query_parameters = json.array { "next_cursor" } })
  end
  return answer.json(200, page)
end

function perform.get(route, account, params)
  local object = state.collection(account.id, route.key).by_id[route.id]
  if not object then
    return not_found(route.desc, route.id)
  end
  return render_object(route.desc, account.integration, object, params, 200)
end

function perform.update(route, account, params, body, commit)
  local collection = state.collection(account.id, route.key)
  local object = collection.by_id[route.id]
  if not object then
    return not_found(route.desc, route.id)
  end
  local updated = objects.update(route.desc, account.integration, object, params, body, iso8601_now())
  if commit then
    collection.by_id[route.id] = updated
  end
  return render_object(route.desc, account.integration, updated, params, 200)
end

function perform.delete(route, account, _, _, commit)
  local collection = state.collection(account.id, route.key)
  if not collection.by_id[route.id] then
    return not_found(route.desc, route.id)
  end
  if commit then
    collection.by_id[route.id] = nil
    for i, id in ipairs(collection.ids) do
      if id == route.id then
        table.remove(collection.ids, i)
        break
      end
    end
  end
  return answer.json(200, json.object { id = route.id })
end

-- A custom method of a described resource that names one of its objects
-- ({singular}_id in the body or query: remove-user's group_id, downgrade's
-- user_id) needs that object to exist. Every custom method answers
-- { result = <the body as sent> }.
function perform.custom(route, account, params, body)
  if route.desc.object then
    local name = route.desc.resource:gsub("%-", "_"):gsub("s$", "") .. "_id"
    local id = body[name] ~= nil and body[name] or params[name]
    if type(id) == "string" and not state.collection(account.id, route.key).by_id[id] then
      return not_found(route.desc, id)
    end
  end
  return answer.json(200, json.object { result = body })
end

-- Validates and runs one operation on one account.
local function run_operation(route, request, commit)
  local op, params = route.op, request.params
  local problem = validate.query(op, params)
  if problem then
    return refusal(problem)
  end
  local account = accounts[params.integrated_account_id]
  if not account then
    return answer.error(404, "Integrated account " .. params.integrated_account_id .. " not found")
  elseif account.state == "sandbox" and WRITES[op.method] then
    return answer.error(405, "Sandbox integrated accounts are read-only")
  elseif account.state == "blocked" then
    return answer.error(503, "Integrated account " .. account.id .. " is blocked: reconnect it")
  end
  local body
  if op.body or op.open_body then
    body, problem = validate.body(op, request.body, params)
  end
  problem = problem or validate.integration(op, account.integration, params, body)
  if problem then
    return refusal(problem)
  end
  local name = (route.custom or op.answer == "wrapped") and "custom" or route.name
  return perform[name](route, account, params, body, commit)
end

-- The answer Truto would give. Returns the answer, the id of the object
-- created (or nil) and whether it is an idempotent replay. With commit
-- false nothing kept changes and nothing is kept for replays (a dry run,
-- for scripted faults that only need a realistic answer).
local function respond(request, route, verdict, commit)
  if verdict.refused then
    return rate_limited(verdict)
  end
  local headers = rate_headers(verdict)
  if route.status == 404 then
    return answer.with_headers(answer.error(404, "No route for " .. request.method .. " " .. request.path),
      headers)
  elseif route.status == 405 then
    local refused = answer.error(405, request.method .. " is not allowed on " .. request.path)
    table.insert(headers, 1, { "Allow", route.allow })
    return answer.with_headers(refused, headers)
  elseif request.token ~= TOKEN then
    return answer.with_headers(answer.error(401, "Invalid API token"), headers)
  end
  local replay_key = REPLAYED[request.method] and request.idempotency_key
    and table.concat({ request.token, request.account or "", request.path, request.idempotency_key }, "\n")
  local first = replay_key and state.replays[replay_key]
  if first then
    return answer.with_headers(first, { { "Idempotent-Replayed", "true" } }), nil, true
  end
  local chosen, id = run_operation(route, request, commit)
  chosen = answer.with_headers(chosen, headers)
  if commit and replay_key then
    state.replays[replay_key] = chosen
  end
  return chosen, id, false
end

-- The answer a step gives by itself (nil when it reuses Truto's answer).
local function scripted_answer(step)
  if step.html then
    return answer.html(step.status or 502)
  elseif step.size then
    return answer.sized_json(step.status or 200, step.size)
  elseif step.json ~= nil then
    return answer.json(step.status or 200, step.json)
  elseif step.body then
    return { status = step.status or 200, headers = {}, body = step.body }
  elseif type(step.chunks) == "table" then
    return { status = step.status or 200, headers = {}, chunks = step.chunks }
  elseif step.status then
    return answer.error(step.status, "Scripted by the mock")
  end
end

local function sorted_header_pairs(headers)
  local pairs_list = {}
  for name, value in pairs(headers or {}) do
    pairs_list[#pairs_list + 1] = { name, tostring(value) }
  end
  table.sort(pairs_list, function(a, b) return a[1] < b[1] end)
  return pairs_list
end

-- Answers a request as a scripted step says (see mock.control for steps).
local function play(step, request, route, record, verdict)
  record.scripted = step
  local own = scripted_answer(step)
  local breaks_connection = step.reset or step.raw or step.close_after
  local commit = step.create
  if commit == nil then
    commit = own == nil and not breaks_connection
  end
  local normal, created, replayed = respond(request, route, verdict, commit)
  record.created = created or json.null
  record.replayed = replayed
  local chosen = answer.with_headers(own or normal, sorted_header_pairs(step.headers))
  if type(step.chunks) == "number" then
    chosen.chunks = answer.split(chosen.chunks and table.concat(chosen.chunks) or chosen.body, step.chunks)
    chosen.body = nil
  end
  if step.delay then
    ngx.sleep(step.delay)
  end
  if step.reset then
    answer.close_without_answer()
  elseif step.raw then
    record.status = tonumber(step.raw:match("^HTTP/%d%.%d (%d%d%d)")) or json.null
    answer.send_raw(step.raw)
  elseif step.close_after then
    record.status = chosen.status
    answer.send_truncated(chosen, step.close_after)
  else
    record.status = chosen.status
    answer.send(chosen, step.chunk_delay)
  end
end

function api.handle()
  local request = read_request()
  local record = state.record(new_record(request))
  local route = router.route(request.method, request.path)
  if route.op then
    route.key = route.desc.model .. "/" .. route.desc.resource
    record.operation = route.key .. " " .. route.name
  end
  local verdict = state.count_request(request.token or "", request.account, ngx.now())
  local step = state.next_step()
  if state.latency > 0 then
    ngx.sleep(state.latency)
  end
  if step then
    return play(step, request, route, record, verdict)
  end
  local chosen, created, replayed = respond(request, route, verdict, true)
  record.created = created or json.null
  record.replayed = replayed
  record.status = chosen.status
  answer.send(chosen)
end

return api
