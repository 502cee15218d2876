-- mock.api: the mock of Truto's API, POST /unified/user-directory/groups,
-- for everything nginx receives outside /__mock/.
--
-- Records every request, then answers it the way Truto would (auth, query
-- and body validation from truto.schema, per-integration rules, idempotent
-- replays, rate-limit headers), unless a scripted step (mock.control) says
-- to answer otherwise. Never repeat a fact of truto.schema here, and never
-- create a group for a scripted fault unless the step says `create`.
local schema = require "truto.schema"
local json = require "mock.json"
local query = require "mock.query"
local validate = require "mock.validate"
local groups = require "mock.groups"
local answer = require "mock.answer"
local state = require "mock.state"

local api = {}

local TOKEN = os.getenv("MOCK_TOKEN")
if TOKEN == nil or TOKEN == "" then
  TOKEN = "mock-token"
end

local accounts = {}
for _, account in ipairs(require "mock.accounts") do
  assert(schema.integrations[account.integration],
    "mock/accounts.lua: " .. account.id .. " names an integration truto.schema does not know")
  accounts[account.id] = account
end

local STREAM_PIECES = 3

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
  return {
    request_line = ngx.var.request,
    method = ngx.req.get_method(),
    path = ngx.var.request_uri:match("^[^?]*"),
    query = ngx.var.args,
    raw_header = ngx.req.raw_header(),
    headers = headers,
    body = body or "",
    token = authorization and authorization:match("^[Bb][Ee][Aa][Rr][Ee][Rr] +(.-) *$"),
    idempotency_key = idempotency_key ~= "" and idempotency_key or nil,
  }
end

local function new_record(request)
  return {
    request_line = request.request_line,
    method = request.method,
    path = request.path,
    query = request.query or json.null,
    raw_header = request.raw_header,
    headers = request.headers,
    body = request.body,
    idempotency_key = request.idempotency_key or json.null,
    created = json.null,
    status = json.null,
    replayed = false,
    scripted = json.null,
  }
end

local function refusal(problem)
  return answer.error(problem.status, problem.message, problem.insight)
end

local function render(integration_key, group, params)
  local format = params.truto_response_format
  if format == "raw" then
    return answer.json(201, groups.raw(integration_key, group))
  end
  local shown = groups.unified(group, params.truto_exclude_fields, params.truto_ignore_remote_data == "true")
  local created = answer.json(201, shown)
  if format == "stream" then
    created.headers = { { "Content-Type", "application/octet-stream" } }
    created.chunks = answer.split(created.body, STREAM_PIECES)
    created.body = nil
  end
  return created
end

-- Validates and, when commit is true, really creates. Returns the answer and
-- the id of the group created (nil when none was).
local function create_group(request, commit)
  local params = query.parse(request.query)
  local problem = validate.query(params)
  if problem then
    return refusal(problem)
  end
  local account = accounts[params.integrated_account_id]
  if not account then
    return answer.error(404, "Integrated account " .. params.integrated_account_id .. " not found")
  elseif account.state == "sandbox" then
    return answer.error(405, "Sandbox integrated accounts are read-only")
  elseif account.state == "blocked" then
    return answer.error(503, "Integrated account " .. account.id .. " is blocked: reconnect it")
  end
  local body
  body, problem = validate.body(request.body)
  problem = problem or validate.integration(account.integration, params, body)
  if problem then
    return refusal(problem)
  end
  local id = state.new_id()
  local group = groups.create(account.integration, id, params, body, iso8601_now())
  if commit then
    state.created = state.created + 1
  end
  return render(account.integration, group, params), commit and id or nil
end

-- The answer Truto would give. Returns the answer, the id of the group
-- created (or nil) and whether it is an idempotent replay. With commit false
-- nothing is created and nothing is kept for replays (a dry run, for
-- scripted faults that only need a realistic answer).
local function respond(request, remaining, commit)
  local rate_headers = {
    { "ratelimit-limit", state.rate_limit_header },
    { "ratelimit-remaining", tostring(remaining) },
    { "ratelimit-reset", state.rate_reset_header },
  }
  if request.path ~= schema.path then
    return answer.with_headers(answer.error(404, "No route for " .. request.method .. " " .. request.path),
      rate_headers)
  elseif request.method ~= schema.method then
    local refused = answer.error(405, request.method .. " is not allowed on " .. schema.path)
    table.insert(rate_headers, 1, { "Allow", schema.method })
    return answer.with_headers(refused, rate_headers)
  elseif request.token ~= TOKEN then
    return answer.with_headers(answer.error(401, "Invalid API token"), rate_headers)
  end
  local replay_key = request.idempotency_key and request.token .. "\n" .. request.idempotency_key
  local first = replay_key and state.replays[replay_key]
  if first then
    return answer.with_headers(first, { { "Idempotent-Replayed", "true" } }), nil, true
  end
  local created, id = create_group(request, commit)
  created = answer.with_headers(created, rate_headers)
  if commit and replay_key then
    state.replays[replay_key] = created
  end
  return created, id, false
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
local function play(step, request, record, remaining)
  record.scripted = step
  local own = scripted_answer(step)
  local breaks_connection = step.reset or step.raw or step.close_after
  local commit = step.create
  if commit == nil then
    commit = own == nil and not breaks_connection
  end
  local normal, created, replayed = respond(request, remaining, commit)
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
  local remaining = state.count_request(request.token or "")
  local step = state.next_step()
  if step then
    return play(step, request, record, remaining)
  end
  local chosen, created, replayed = respond(request, remaining, true)
  record.created = created or json.null
  record.replayed = replayed
  record.status = chosen.status
  answer.send(chosen)
end

return api
