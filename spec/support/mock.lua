-- spec.support.mock: starts the local Truto mock (mock/run) for busted
-- specs and drives its control API (/__mock/).
--
--   local mock = require "spec.support.mock"
--   local m = mock.start { token = "t" }     -- token optional (mock-token)
--   mock.start { latency = 0.08, limits = "50/1,500/1" } -- as mock/run's flags
--   m.url, m.token, m.dir, m.accounts.coupa   -- accounts: name -> id (mock/accounts.lua)
--   m:script { { status = 429, headers = { ["Retry-After"] = "2" } } }
--   m:configure { latency = 0.08, limits = "50/1,500/1" }  -- at run time;
--                                             -- limits = false turns them off
--   m:requests(), m:last(), m:stats(), m:reset()  -- reset: latency and limits too
--   m:deliver { url = ..., secret = ..., event = {...} }  -- a signed webhook (mock/deliver.lua)
--   m:stop()                                  -- in teardown; safe to call twice
--
-- Control calls raise on failure (they are spec plumbing). Never signal an
-- nginx this helper did not start, and never delete a directory it did not
-- make.
local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"

local mock = {}

local CONTROL_TIMEOUT = 10 -- seconds; scripted delays never apply to control calls

local shell_quote = require("spec.support.sh").quote

-- The repository root (absolute): two levels above this file.
local function repo_root()
  local source = debug.getinfo(1, "S").source:gsub("^@", "")
  local dir = source:gsub("spec/support/[^/]*$", "")
  local pipe = assert(io.popen("cd " .. shell_quote(dir == "" and "." or dir) .. " && pwd -P"))
  local root = pipe:read("*l")
  pipe:close()
  return assert(root, "cannot find the repository root from " .. source)
end

-- JSON null is nil in what the helper returns, so specs can assert.is_nil.
local function without_nulls(value)
  if type(value) ~= "table" then
    return value
  end
  local copy = {}
  for k, v in pairs(value) do
    if v ~= cjson.null then
      copy[k] = without_nulls(v)
    end
  end
  return copy
end

local Mock = {}
Mock.__index = Mock

-- One control call; body is JSON text or nil. Returns the decoded answer.
function Mock:control(method, path, body)
  assert(not self.stopped, "the mock is stopped")
  local chunks = {}
  local ok, status = http.request {
    url = self.url .. path,
    method = method,
    headers = body and { ["content-type"] = "application/json", ["content-length"] = #body } or nil,
    source = body and ltn12.source.string(body) or nil,
    sink = ltn12.sink.table(chunks),
    create = function()
      local connection = socket.tcp()
      connection:settimeout(CONTROL_TIMEOUT)
      return connection
    end,
  }
  local text = table.concat(chunks)
  if not ok or status ~= 200 then
    error(("mock control %s %s failed: %s %s"):format(method, path, tostring(status), text), 3)
  end
  return cjson.decode(text)
end

-- The records of every API request since start or reset, in order.
function Mock:requests()
  local records = {}
  for i, record in ipairs(self:control("GET", "/__mock/requests")) do
    records[i] = without_nulls(record)
  end
  return records
end

-- The record of the last API request, or nil.
function Mock:last()
  local records = self:requests()
  return records[#records]
end

-- Forgets records, scripted steps, idempotent replays, kept objects and
-- counters, and puts latency and limits back to what the mock started with.
function Mock:reset()
  self:control("POST", "/__mock/reset")
end

-- Forgets the records and scripted steps, keeping the objects.
function Mock:forget_requests()
  self:control("POST", "/__mock/forget")
end

-- Queues steps (see mock/control.lua); returns how many are queued now.
function Mock:script(steps)
  local body = #steps == 0 and "[]" or cjson.encode(steps)
  return self:control("POST", "/__mock/script", body).queued
end

-- Sets the latency (seconds before every API answer) and/or the rate
-- limits (mock/run's --limits form, e.g. "50/1,500/1"; false for none).
-- Returns the configuration now in force: { latency, limits }.
function Mock:configure(config)
  local body = {}
  if config.latency ~= nil then
    body[#body + 1] = '"latency":' .. cjson.encode(config.latency)
  end
  if config.limits ~= nil then
    body[#body + 1] = '"limits":' .. cjson.encode(config.limits)
  end
  return self:control("POST", "/__mock/config", "{" .. table.concat(body, ",") .. "}")
end

-- { created = objects really created, requests = API requests recorded }.
function Mock:stats()
  return self:control("GET", "/__mock/stats")
end

-- Has the mock sign an event (or raw body) and POST it to a URL as Truto
-- delivers webhooks; returns { status, body, sent, signature, id } (see
-- mock/deliver.lua).
function Mock:deliver(request)
  return self:control("POST", "/__mock/deliver", cjson.encode(request))
end

-- Stops nginx (and removes the temp dir the helper made). Safe to repeat.
function Mock:stop()
  if self.stopped then
    return
  end
  self.stopped = true
  os.execute(shell_quote(self.root .. "/mock/run") .. " stop " .. shell_quote(self.dir) .. " >/dev/null 2>&1")
  if self.owns_dir and self.dir:match("/truto%-mock%.[%w]+$") then
    os.execute("rm -rf -- " .. shell_quote(self.dir))
  end
end

Mock.__gc = Mock.stop
Mock.__close = Mock.stop

-- Starts a mock. opts: token (default "mock-token"), dir (an instance dir
-- to use and keep; default a new temp dir removed by stop), latency and
-- limits (mock/run's --latency and --limits, kept across m:reset()).
function mock.start(opts)
  opts = opts or {}
  local root = repo_root()
  local accounts = {}
  for _, account in ipairs(dofile(root .. "/mock/accounts.lua")) do
    accounts[account.name] = account.id
  end
  local token = opts.token or "mock-token"
  local command = "MOCK_TOKEN=" .. shell_quote(token) .. " " .. shell_quote(root .. "/mock/run")
    .. (opts.latency and " --latency " .. shell_quote(tostring(opts.latency)) or "")
    .. (opts.limits and " --limits " .. shell_quote(opts.limits) or "")
    .. " start" .. (opts.dir and " " .. shell_quote(opts.dir) or "") .. " 2>&1"
  local pipe = assert(io.popen(command))
  local output = pipe:read("*a")
  pipe:close()
  local url, dir = output:match("base_url=(%S+)"), output:match("dir=([^\n]+)")
  if not (url and dir) then
    error("mock/run start failed:\n" .. output, 2)
  end
  return setmetatable({
    url = url,
    token = token,
    dir = dir,
    accounts = accounts,
    root = root,
    owns_dir = opts.dir == nil,
    stopped = false,
  }, Mock)
end

return mock
