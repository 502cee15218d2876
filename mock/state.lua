-- mock.state: everything the mock remembers between requests.
--
-- Lives in the Lua VM of nginx's only worker (worker_processes 1), so plain
-- tables are shared by all requests; nothing here yields, so no request sees
-- another half-done. Never keep anything outside this table, so that
-- state.reset() really forgets everything.
local json = require "mock.json"

local state = {}

local RATE_LIMIT = 110 -- requests per window and token, as ratelimit-limit says
state.rate_limit_header = RATE_LIMIT .. ";w=10"
state.rate_reset_header = "10"

function state.reset()
  state.records = json.array()   -- every API request, in arrival order
  state.steps = {}               -- scripted steps, first in first out
  state.replays = {}             -- token .. "\n" .. Idempotency-Key -> first answer
  state.used_by_token = {}       -- token -> API requests counted for rate limits
  state.created = 0              -- groups really created
  state.last_id = 0              -- ids handed out (dry runs included)
end
state.reset()

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

-- Counts one request against a token; returns what ratelimit-remaining says.
function state.count_request(token)
  local used = (state.used_by_token[token] or 0) + 1
  state.used_by_token[token] = used
  return math.max(RATE_LIMIT - used, 0)
end

function state.new_id()
  state.last_id = state.last_id + 1
  return tostring(1000 + state.last_id)
end

return state
