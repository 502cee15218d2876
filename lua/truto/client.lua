-- truto.client: a configured connection to Truto and the resources on it.
-- Validates configuration (truto.options), picks the transport, and makes
-- one object per resource whose methods are operations of truto.api run
-- through truto.call: client.<name>.* for every resource truto.api
-- describes (client.groups, client.users, ...), client.unified(model,
-- resource), client:batch(calls). Resource objects are made, and
-- operations compiled, on first use: a client costs nothing for what it
-- never calls.
--
-- Must never: put the token in an error or a string it returns; retry what
-- truto.retry forbids; block inside nginx (the ngx transport and ngx.sleep
-- are chosen there).

local core = require "truto.core"
local api = require "truto.api"
local call = require "truto.call"
local errors = require "truto.errors"
local options = require "truto.options"
local check_base_url = require("truto.url").check_base_url

local M = {}
M.VERSION = "0.1.0"
M.OPTIONS = options.OPTIONS

local bad, check_option = options.bad, options.check_option
-- Custom-method operations, made once per resource description and name.
local custom_ops = setmetatable({}, { __mode = "k" })

local function in_nginx()
  return rawget(_G, "ngx") ~= nil and type(ngx.get_phase) == "function"
    and ngx.get_phase() ~= "init" and ngx.get_phase() ~= "init_worker"
end

-- HAProxy (2.5+) with its httpclient: its `core` global, not truto.core.
local function in_haproxy()
  local hcore = rawget(_G, "core")
  return type(hcore) == "table" and type(hcore.httpclient) == "function"
end

local function open_transport(config)
  local t = config.transport
  if type(t) == "table" then return t end
  if t == nil then t = (in_nginx() and "ngx") or (in_haproxy() and "haproxy") or "curl" end
  if t == "ngx" then return require("truto.transport.ngx").new(config) end
  if t == "haproxy" then return require("truto.transport.haproxy").new(config) end
  return require("truto.transport.curl").new(config)
end

local Client = {}

-- What a client keeps under its own names; a resource may not take one.
local CLIENT_FIELDS = { resources = true, unified = true, closed = true, transport = true,
  foreign_transport = true, own_headers = true, pace = true }

-- client.<name>: a method, else the resource truto.api describes under
-- that name, made on first use and kept.
Client.__index = function(self, k)
  local method = Client[k]
  if method ~= nil then return method end
  local desc = api.resources[k]
  if desc then
    local r = self:resource(desc)
    rawset(self, k, r)
    return r
  end
end

Client.__tostring = function(c)
  return errors.redact("truto.client (" .. c.base_url .. (c.closed and ", closed" or "") .. ")", c.token)
end

-- M.new(config) -> client | nil, err
function M.new(config)
  if config == nil then config = {} end
  if type(config) ~= "table" then return bad("config", "must be a table (got " .. type(config) .. ")") end
  for k in pairs(config) do
    local spec = M.OPTIONS[k]
    if type(k) ~= "string" or not spec or not spec.client then
      return bad(tostring(k), "is not a client option" .. (spec and " (give it per call)" or ""))
    end
  end
  local c = {}
  for name, spec in pairs(M.OPTIONS) do
    if spec.client then
      local v = config[name]
      if v == nil and spec.env then
        v = os.getenv(spec.env)
        if v == "" then v = nil end
      end
      if v ~= nil then
        local ok, err = check_option(name, spec, v)
        if ok == nil then return nil, err end
        v = ok
      else
        v = spec.default
      end
      c[name] = v
    end
  end
  if not c.token or c.token == "" then
    return bad("token", "is required (pass token = ... or set TRUTO_API_TOKEN)")
  end
  local base, detail = check_base_url(c.base_url)
  if not base then return bad("base_url", detail) end
  c.base_url = base
  if c.integrated_account_id then
    local get = call.compile(api.resources.groups.operations.get)
    local ok, field, why = get.build(nil, nil, c.integrated_account_id, "x")
    if not ok then return nil, errors.new("invalid_argument", why, { field = field }) end
  end
  -- a transport the caller wrote gets requests of its own (truto.call)
  c.foreign_transport = type(c.transport) == "table"
  local ok, transport = pcall(open_transport, c)
  if not ok then return nil, errors.new("invalid_argument", "transport: " .. tostring(transport),
    { field = "transport" }) end
  c.transport = transport
  c.own_headers = {
    authorization = "Authorization: Bearer " .. c.token,
    content_type = "Content-Type: application/json",
    accept = "Accept: application/json",
    user_agent = "User-Agent: truto-lua/" .. M.VERSION .. (c.user_agent and (" " .. c.user_agent) or ""),
  }
  c.sleep = c.sleep or (in_nginx() and ngx.sleep)
    or (c.transport.name == "haproxy" and c.transport.sleep) -- HAProxy's yielding sleep
    or core.sleep
  -- the rate budget: Truto's limits unless told otherwise; shared by every
  -- nginx worker through a lua_shared_dict when one is named
  local limits = c.rate_limits
  if limits ~= false then -- (rate_limits = false: truto.pace is not even loaded)
    local pace = require "truto.pace"
    if limits == nil then limits = pace.check({}) end
    local field, why
    c.pace, field, why = pace.open(limits, c.token, c.rate_limit_store, c.rate_limit_dict)
    if not c.pace then return bad(field, why) end
  end
  c.closed = false
  local client = setmetatable(c, Client)
  client.resources = {}
  client.unified = function(model, resource) return client:unified_resource(model, resource) end
  return client
end

-- operation_function(c, label, op) -> the function users call, compiled
-- on its first call:
--   list(query, options)           create(body, query, options)
--   get(id, query, options)        update(id, body, query, options)
--   delete(id, query, options)     custom(body, query, options)
local function operation_function(c, label, op)
  local compiled
  return function(a, b, d, e)
    if not compiled then compiled = call.compile(op) end
    if compiled.has_id then
      if compiled.has_body then return call.call(c, compiled, a, b, d, e, label) end
      return call.call(c, compiled, a, nil, b, d, label)
    elseif compiled.has_body then
      return call.call(c, compiled, nil, a, b, d, label)
    end
    return call.call(c, compiled, nil, nil, a, b, label)
  end
end

-- A method name that is safe as one path segment.
local function check_segment(field, v)
  if type(v) ~= "string" or not v:match("^[%w][%w%-_.]*$") then
    return bad(field, "must be a name like \"user-directory\" (letters, digits, - _ .; got "
      .. (type(v) == "string" and ("\"" .. v:sub(1, 40):gsub("[^%w%-_. ]", "?") .. "\"") or "a " .. type(v)) .. ")")
  end
  return v
end

-- The functions a resource object has besides its operations: which
-- operation each needs (nil: every resource has it) and how it is made.
local DERIVED = {
  each = { needs = "list", make = function(c, r)
    return function(query, opts) return require("truto.pages").each(c, r.list, query, opts) end
  end },
  create_many = { needs = "create", make = function(c, _, desc)
    return function(items, query, opts)
      return require("truto.batch").create_many(c, desc, items, query, opts)
    end
  end },
  -- r:call(method, body, query, options): POST /unified/{model}/{resource}/{method}
  call = { make = function(c, r, desc, prefix)
    return function(self_, method, body, query, opts)
      if self_ ~= r then
        return bad("call", "use resource:call(method, body, query, options) (with a colon)")
      end
      local m, err = check_segment("method", method)
      if not m then return nil, err end
      local ops = custom_ops[desc]
      if not ops then ops = {}; custom_ops[desc] = ops end
      local op = ops[m]
      if not op then
        op = api.custom(desc.model, desc.resource, m)
        ops[m] = op
      end
      return call.call(c, call.compile(op), nil, body, query, opts, prefix .. m)
    end
  end },
}

-- M.methods(desc) -> the sorted names of the functions a resource object
-- of that description has: its operations, each, create_many, call.
function M.methods(desc)
  local names = {}
  for name in pairs(desc.operations) do names[#names + 1] = name end
  for name, d in pairs(DERIVED) do
    if not d.needs or desc.operations[d.needs] then names[#names + 1] = name end
  end
  table.sort(names)
  return names
end

-- client:resource(description) -> the object with one function per name
-- of M.methods(description); made once per description and client.
function Client:resource(desc)
  local r = self.resources[desc]
  if r then return r end
  local prefix = desc.resource:gsub("%-", "_") .. "."
  r = { model = desc.model, name = desc.resource }
  for _, name in ipairs(M.methods(desc)) do
    local op, derived = desc.operations[name], DERIVED[name]
    r[name] = op and operation_function(self, prefix .. name, op) or derived.make(self, r, desc, prefix)
  end
  self.resources[desc] = r
  return r
end

-- Generic descriptions, made once per model/resource for the process.
local generic = {}

-- client.unified(model, resource) -> resource object | nil, err
function Client:unified_resource(model, resource)
  local m, err = check_segment("model", model)
  if not m then return nil, err end
  local res
  res, err = check_segment("resource", resource)
  if not res then return nil, err end
  local desc = api.find(m, res)
  if not desc then
    local key = m .. "/" .. res
    desc = generic[key]
    if not desc then
      desc = api.generic(m, res)
      generic[key] = desc
    end
  end
  return self:resource(desc)
end

-- client:batch(calls, options) -> results | nil, err (see truto.batch)
function Client:batch(calls, opts)
  return require("truto.batch").batch(self, calls, opts)
end

-- client:close(): releases the connection; idempotent. Later calls raise.
-- Raises, leaving the client open, when called from inside one of its own
-- calls (a sink): the transport refuses, and closed is set only after.
function Client:close()
  if not self.closed then
    if self.transport.close then self.transport:close() end
    if self.pace and self.pace.close then self.pace:close() end -- a Redis connection
    self.closed = true
  end
end
Client.__close = Client.close
Client.__gc = Client.close

-- Every described resource is named after its path, and takes no name a
-- client or a resource object keeps for itself.
for name, desc in pairs(api.resources) do
  assert(name == desc.resource:gsub("%-", "_"), "truto.api: resource " .. name .. " must be named "
    .. desc.resource:gsub("%-", "_"))
  assert(not Client[name] and not CLIENT_FIELDS[name] and not M.OPTIONS[name],
    "truto.api: resource name " .. name .. " is taken by the client")
  for op_name, op in pairs(desc.operations) do
    assert(not DERIVED[op_name] and op_name ~= "model" and op_name ~= "name",
      "truto.api: operation name " .. op_name .. " is taken")
    local custom = op.path:match("^/unified/[^/]+/[^/]+/([^/{}]+)$")
    assert(not custom or op_name == custom:gsub("%-", "_"),
      "truto.api: operation " .. name .. "." .. op_name .. " must be named after its path")
  end
end

return M
