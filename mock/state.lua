-- mock.state: everything the mock remembers between requests.
--
-- Lives in the Lua VM of nginx's only worker (worker_processes 1), so plain
-- tables are shared by all requests; nothing here yields, so no request sees
-- another half-done. Never keep anything outside this table, so that
-- state.reset() really forgets everything (the latency and limits go back
-- to what mock/run was started with: $MOCK_LATENCY, $MOCK_LIMITS).
local json = require "mock.json"
local limits = require "mock.limits"

local state = {}

local RATE_LIMIT = 110 -- requests per window and token, as ratelimit-limit says
state.rate_limit_header = RATE_LIMIT .. ";w=10"
state.rate_reset_header = "10"

-- What mock/run was started with (checked there; a bad value here is a bug).
local function startup_config()
  local latency = tonumber(os.getenv("MOCK_LATENCY") or "") or 0
  local parsed = assert(limits.parse(os.getenv("MOCK_LIMITS")))
  return latency, parsed
end

local resets = 0

function state.reset()
  state.records = json.array()   -- every API request, in arrival order
  state.steps = {}               -- scripted steps, first in first out
  state.replays = {}             -- token, account, path, Idempotency-Key -> first answer
  state.used_by_token = {}       -- token -> API requests counted for the headers
  state.created = 0              -- objects really created
  state.last_id = 0              -- ids handed out (dry runs included)
  state.objects = {}             -- account id -> "model/resource" -> collection
  state.windows = {}             -- scope -> key -> { start, count } (mock.limits)
  state.latency, state.limits = startup_config()
  -- Cursors carry this, so a cursor from before a reset is refused.
  resets = resets + 1
  state.nonce = ("%x%x"):format(os.time() % 0x10000, resets)
end
state.reset()

-- Forgets the records and scripted steps only: the objects stay (a spec
-- that set up data through the API then watches what comes next).
function state.forget_requests()
  state.records = json.array()
  state.steps = {}
end

-- Appends the record of a request and returns it (to fill in as it goes).
function state.record(record)
  state.records[#state.records + 1] = record
  return record
end

-- Removes and returns the next scripted step, or nil.
function state.next_step()
  return table.remove(state.steps, 1)
end

function state.add_steps(steps)
  for _, step in ipairs(steps) do
    state.steps[#state.steps + 1] = step
  end
  return #state.steps
end

-- Counts one request. Returns the rate-limit verdict (mock.limits.take)
-- when limits are configured and apply, else a verdict of the counting
-- headers (ratelimit-remaining per token, never refused).
function state.count_request(token, account, now)
  local verdict = limits.take(state.limits, state.windows, { token = token, account = account }, now)
  if verdict then
    return verdict
  end
  local used = (state.used_by_token[token] or 0) + 1
  state.used_by_token[token] = used
  return { counting = true, remaining = math.max(RATE_LIMIT - used, 0) }
end

-- Sets the latency (seconds) and/or the limits (parsed); new limits start
-- new windows.
function state.configure(latency, parsed)
  if latency ~= nil then
    state.latency = latency
  end
  if parsed ~= nil then
    state.limits = parsed
    state.windows = {}
  end
end

function state.new_id()
  state.last_id = state.last_id + 1
  return tostring(1000 + state.last_id)
end

-- The objects of one resource ("model/resource") of one account, in the
-- order they were created: { ids = { id, ... }, by_id = { [id] = object } }.
function state.collection(account_id, key)
  local account = state.objects[account_id]
  if not account then
    account = {}
    state.objects[account_id] = account
  end
  local collection = account[key]
  if not collection then
    collection = { ids = {}, by_id = {} }
    account[key] = collection
  end
  return collection
end

return state
