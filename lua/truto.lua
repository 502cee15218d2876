-- truto: create groups through Truto's unified user-directory API.
--
--   local truto = require "truto"
--   local client = assert(truto.new{ token = os.getenv("TRUTO_API_TOKEN") })
--   local group, meta_or_err = client.groups.create(body, query, options)
--
-- This file is the public surface only: it re-exports the client
-- constructor, JSON's null and array marker, and a default client built
-- lazily from the environment for truto.groups.create. See README.md.

local core = require "truto.core"
local client = require "truto.client"

local truto = {
  VERSION = client.VERSION,
  null = core.null,      -- the same value as cjson.null
  array = core.array,    -- truto.array(t): encode t as a JSON array, even when empty
  new = client.new,
  OPTIONS = client.OPTIONS,
  webhooks = require "truto.webhooks", -- truto.webhooks.verify(secret, header, body, options)
}

local default_client

-- truto.groups.create(...) uses a client made from TRUTO_* environment
-- variables on first use (and kept; truto.reset() drops it).
truto.groups = {
  create = function(body, query, options)
    if not default_client then
      local c, err = client.new{}
      if not c then return nil, err end
      default_client = c
    end
    return default_client.groups.create(body, query, options)
  end,
}

function truto.reset()
  if default_client then default_client:close() end
  default_client = nil
end

return truto
