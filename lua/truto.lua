-- truto: Truto's unified API from Lua — the groups of the user directory
-- and any other unified resource.
--
--   local truto = require "truto"
--   local client = assert(truto.new{ token = os.getenv("TRUTO_API_TOKEN") })
--   local group, meta_or_err = client.groups.create(body, query, options)
--   for group, err in client.groups.each(query) do ... end
--
-- This file is the public surface only: it re-exports the client
-- constructor, JSON's null and array marker, and a default client built
-- lazily from the environment for truto.groups.*, truto.unified and
-- truto.batch. See README.md.

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
  webhooks = require "truto.webhooks", -- truto.webhooks.verify(secret, header, body, options)
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

-- truto.groups.<op>(...) is default_client.groups.<op>(...)
truto.groups = {}
for _, name in ipairs{ "list", "each", "get", "create", "update", "delete", "remove_user",
    "create_many" } do
  assert(name == "each" or name == "create_many" or api.resources.groups.operations[name])
  truto.groups[name] = function(...)
    local c, err = default()
    if not c then
      if name == "each" then
        local once = false
        return function()
          if once then return nil end
          once = true
          return false, err
        end
      end
      return nil, err
    end
    return c.groups[name](...)
  end
end
function truto.groups.call(_, ...)
  local c, err = default()
  if not c then return nil, err end
  return c.groups:call(...)
end

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
