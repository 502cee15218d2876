-- truto: Truto's unified API from Lua — the groups and users of the user
-- directory and any other unified resource.
--
--   local truto = require "truto"
--   local client = assert(truto.new{ token = os.getenv("TRUTO_API_TOKEN") })
--   local group, meta_or_err = client.groups.create(body, query, options)
--   for group, err in client.groups.each(query) do ... end
--
-- This file is the public surface only: it re-exports the client
-- constructor, JSON's null and array marker, and a default client built
-- lazily from the environment for truto.<resource>.* (every resource
-- truto.api describes), truto.unified and truto.batch. See README.md.
--
-- Loads only what a first call needs: truto.webhooks, and truto.<resource>
-- objects, are made on first use (as the client's pages, batch and
-- transports are).

local core = require "truto.core"
local client = require "truto.client"
local api = require "truto.api"

-- truto.json_encode(value) -> text | nil, message: the request body's exact
-- encoder (integers exact, keys sorted, truto.null, truto.array).
local function json_encode(value)
  local text, field, message = core.encode_json(value)
  if not text then return nil, message or field end
  return text
end

local truto = {
  VERSION = client.VERSION,
  null = core.null,      -- the same value as cjson.null (a NULL light userdata), without needing lua-cjson
  array = core.array,    -- truto.array(t): encode t as a JSON array, even when empty
  json_decode = core.json_decode, -- (text [, options]) -> value | nil, why: as every answer is read
  json_encode = json_encode,
  new = client.new,
  OPTIONS = client.OPTIONS,
}

local default_client

-- The client made from TRUTO_* environment variables on first use (and
-- kept; truto.reset() drops it).
local function default()
  if not default_client then
    local c, err = client.new{}
    if not c then return nil, err end
    default_client = c
  end
  return default_client
end

-- An iterator that yields (false, err) once: `each` when there is no
-- default client.
local function failing_each(err)
  local once = false
  return function()
    if once then return nil end
    once = true
    return false, err
  end
end

-- truto.<name>.<fn>(...) is default_client.<name>.<fn>(...), for every
-- function a resource object of that description has (truto.client.methods);
-- truto.<name>:call(...) as client.<name>:call(...).
local function default_resource(name, desc)
  local r = {}
  for _, fn in ipairs(client.methods(desc)) do
    r[fn] = function(...)
      local c, err = default()
      if not c then
        if fn == "each" then return failing_each(err) end
        return nil, err
      end
      if fn == "call" then return c[name]:call(select(2, ...)) end
      return c[name][fn](...)
    end
  end
  return r
end

setmetatable(truto, { __index = function(t, k)
  local value
  if k == "webhooks" then
    value = require "truto.webhooks" -- truto.webhooks.verify(secret, header, body, options)
  elseif api.resources[k] then
    value = default_resource(k, api.resources[k])
  end
  if value ~= nil then rawset(t, k, value) end
  return value
end })

function truto.unified(model, resource)
  local c, err = default()
  if not c then return nil, err end
  return c.unified(model, resource)
end

function truto.batch(calls, options)
  local c, err = default()
  if not c then return nil, err end
  return c:batch(calls, options)
end

function truto.reset()
  if default_client then default_client:close() end
  default_client = nil
end

return truto
