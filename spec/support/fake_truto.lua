-- spec.support.fake_truto: an in-process stand-in for Truto's groups API,
-- as a transport table (`truto.new{ transport = fake }`), for specs of the
-- command line while the real mock (mock/) does not yet serve list, get,
-- update and delete. It answers as the extended mock will: groups per
-- account, `GET /unified/user-directory/groups` in pages of `limit` with an
-- opaque `next_cursor` ({result, next_cursor, prev_cursor, result_count,
-- is_partial_response}), GET/PATCH/DELETE `/groups/{id}` with Truto's 404
-- envelope, creates and updates replayed for a repeated Idempotency-Key, a
-- read-only sandbox account (405), and a record of every request (method,
-- path, query, headers, body, idempotency_key, status).
--
-- In a subprocess (the truto-groups command) `install(path)` makes every
-- client the process creates use the fake, with its state in the JSON file
-- `path`, read before and written after each request, so the command, its
-- worker and the spec see one account. Scripted steps (`script`) replace
-- the answer to the next requests, as the mock's do: { status = N } (Truto's
-- envelope), { reset = true } (connection lost after sending), { pass = true }
-- (answer normally), { delay = s } (answer normally, after s seconds).
--
-- Spec plumbing only: never used by the module, never opens a socket.
local cjson = require "cjson"

local M = {}

M.TOKEN = "fake-token"
M.BASE_URL = "http://fake-truto.invalid"
M.ACCOUNTS = {
  coupa = "62f44730-dd91-461e-bd6a-aedd9e0ad79d",
  blackline = "b1acb1ac-0000-4000-8000-000000000001",
  coupa_sandbox = "5a4db0c5-0000-4000-8000-000000000005",
}
local SANDBOX = { [M.ACCOUNTS.coupa_sandbox] = true }
local KNOWN = {}
for _, id in pairs(M.ACCOUNTS) do KNOWN[id] = true end

local GROUPS = "/unified/user-directory/groups"
local DEFAULT_LIMIT = 100

-- A fresh state: no groups, no records.
function M.empty()
  return { next_id = 1001, clock = 0, accounts = {}, requests = {}, replays = {}, script = {} }
end

local function unescape(s)
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function parse_query(q)
  local params = {}
  for pair in (q or ""):gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    params[unescape(k)] = unescape(v)
  end
  return params
end

local function envelope(status, message)
  local names = { [400] = "Bad Request", [401] = "Unauthorized", [403] = "Forbidden",
    [404] = "Not Found", [405] = "Method Not Allowed", [500] = "Internal Server Error",
    [502] = "Bad Gateway", [503] = "Service Unavailable" }
  return status, cjson.encode({ statusCode = status, error = names[status] or "Error",
    message = message or names[status] or "" })
end

local function now_text(state)
  state.clock = state.clock + 1
  return string.format("2026-01-01T00:%02d:%02dZ", math.floor(state.clock / 60) % 60, state.clock % 60)
end

local function cursor_for(offset) return "c" .. string.format("%x", offset * 7919 + 13) end
local function offset_of(cursor)
  local n = cursor:match("^c(%x+)$")
  n = n and tonumber(n, 16)
  if not n or (n - 13) % 7919 ~= 0 then return nil end
  return math.floor((n - 13) / 7919)
end

local function find(list, id)
  for i, g in ipairs(list) do if g.id == id then return i, g end end
end

-- Answers one API request against the state: status, body (JSON text).
local function answer(state, method, path, params, headers, body)
  if headers.authorization ~= "Bearer " .. M.TOKEN then return envelope(401, "Invalid API token") end
  local account = params.integrated_account_id
  if not account or not KNOWN[account] then return envelope(404, "Integrated account not found") end
  if method ~= "GET" and SANDBOX[account] then
    return envelope(405, "Sandbox integrated accounts are read-only")
  end
  local groups = state.accounts[account] or {}
  state.accounts[account] = groups
  local key = headers["idempotency-key"]
  local replay_key = key and (account .. " " .. method .. " " .. path .. " " .. key)
  if replay_key and state.replays[replay_key] then
    local r = state.replays[replay_key]
    return r[1], r[2]
  end
  local status, text
  if path == GROUPS and method == "GET" then
    local limit = tonumber(params.limit) or DEFAULT_LIMIT
    local offset = 0
    if params.next_cursor then
      offset = offset_of(params.next_cursor)
      if not offset then return envelope(400, "Invalid cursor") end
    end
    local result = {}
    for i = offset + 1, math.min(offset + limit, #groups) do result[#result + 1] = groups[i] end
    local page = { result = result, next_cursor = cjson.null, prev_cursor = cjson.null,
      result_count = #result, is_partial_response = false }
    if offset + limit < #groups then page.next_cursor = cursor_for(offset + limit) end
    if #result == 0 then page.result = cjson.empty_array or {} end
    status, text = 200, cjson.encode(page)
  elseif path == GROUPS and method == "POST" then
    local b = cjson.decode(body)
    local t = now_text(state)
    local g = { id = string.format("%d", state.next_id), name = b.name, description = b.description,
      group_type = params.group_type, created_at = t, updated_at = t }
    state.next_id = state.next_id + 1
    groups[#groups + 1] = g
    state.created = (state.created or 0) + 1
    status, text = 201, cjson.encode(g)
  else
    local id = path:match("^" .. GROUPS:gsub("%-", "%%-") .. "/([^/]+)$")
    if not id then return envelope(404, "Not found") end
    id = unescape(id)
    local i, g = find(groups, id)
    if not g then return envelope(404, "Group not found") end
    if method == "GET" then
      status, text = 200, cjson.encode(g)
    elseif method == "PATCH" then
      local b = cjson.decode(body)
      for _, f in ipairs({ "name", "description" }) do if b[f] ~= nil then g[f] = b[f] end end
      g.updated_at = now_text(state)
      status, text = 200, cjson.encode(g)
    elseif method == "DELETE" then
      table.remove(groups, i)
      status, text = 200, cjson.encode({ id = id })
    else
      return envelope(405, "Method not allowed")
    end
  end
  if replay_key and (method == "POST" or method == "PATCH") then state.replays[replay_key] = { status, text } end
  return status, text
end

local Fake = {}
Fake.__index = Fake

-- M.new(state) -> transport table; state defaults to M.empty(). `save`
-- (optional) is called after every request, `load` before.
function M.new(state, load, save)
  return setmetatable({ state = state or M.empty(), load = load, save = save, name = "fake" }, Fake)
end

function Fake:request(req)
  if self.load then self.state = self.load() end
  local state = self.state
  local path, q = req.url:match("^https?://[^/]+([^?]*)%??(.*)$")
  local headers = {}
  for _, line in ipairs(req.headers) do
    local name, value = line:match("^([^:]+):%s*(.*)$")
    headers[name:lower()] = value
  end
  local record = { method = req.method, path = path, query = q ~= "" and q or nil, headers = headers,
    body = req.body or "", idempotency_key = headers["idempotency-key"] }
  state.requests[#state.requests + 1] = record
  local step = table.remove(state.script, 1)
  local status, text, delay
  if step and step.reset then
    record.status = "reset"
    if self.save then self.save(state) end
    return nil, "network", "connection reset by peer (scripted)", true
  elseif step and step.status then
    status, text = envelope(step.status)
  else
    status, text = answer(state, req.method, path, parse_query(q), headers, req.body)
    delay = step and step.delay
  end
  record.status = status
  if self.save then self.save(state) end
  if delay and delay > 0 then
    -- in short steps of the module's own sleep, not os.execute (which
    -- ignores SIGINT): a Ctrl-C meanwhile reaches the command as it would
    -- while the mock held the answer back
    local core = require "truto.core"
    local until_t = core.now() + delay
    while core.now() < until_t do core.sleep(0.05) end
  end
  return status, { ["content-type"] = "application/json" }, text
end

-- M.load_file(path) / M.save_file(path, state): the state as JSON.
function M.load_file(path)
  local f = io.open(path, "rb")
  if not f then return M.empty() end
  local text = f:read("*a")
  f:close()
  if text == "" then return M.empty() end
  local state = cjson.decode(text)
  for _, k in ipairs({ "accounts", "requests", "replays", "script" }) do state[k] = state[k] or {} end
  return state
end

function M.save_file(path, state)
  local tmp = path .. ".tmp"
  local f = assert(io.open(tmp, "wb"))
  f:write(cjson.encode(state))
  f:close()
  assert(os.rename(tmp, path))
end

-- M.install(path): every client made in this process from now on uses the
-- fake, with its state in the file `path`. Call before truto is loaded
-- (LUA_INIT), since truto.lua keeps client.new.
function M.install(path)
  local client = require "truto.client"
  local new = client.new
  client.new = function(config)
    config = config or {}
    config.transport = M.new(nil, function() return M.load_file(path) end,
      function(state) M.save_file(path, state) end)
    return new(config)
  end
end

return M
