-- mock.groups: builds the group a create makes, and its renderings
-- (unified/normalized, raw).
--
-- Which fields exist and which ones an integration answers with come from
-- truto.schema; a field's value comes from the body or query parameter of
-- the same name, a date-time field is "now", `id` is new. Pure Lua, no ngx;
-- never decide here whether a request is valid (mock.validate does).
local schema = require "truto.schema"
local json = require "mock.json"
local providers = require "mock.providers"

local groups = {}

local function names_of(list)
  local set = {}
  for _, spec in ipairs(list) do
    set[type(spec) == "table" and spec.name or spec] = true
  end
  return set
end

local body_fields = names_of(schema.body)
local query_parameters = names_of(schema.query)

local function present(value)
  if value ~= nil and value ~= json.null then
    return value
  end
end

local function value_for(field, id, params, body, now)
  if field.name == "id" then
    return id
  elseif body_fields[field.name] then
    return present(body[field.name])
  elseif query_parameters[field.name] then
    return present(params[field.name])
  elseif field.format == "date-time" then
    return now
  end
end

-- Returns the unified group an integration answers with after a create:
-- the fields its `response` list names, plus remote_data (the request's
-- remote_data echoed back, with the provider's id added).
function groups.create(integration_key, id, params, body, now)
  local answered = names_of(schema.integrations[integration_key].response)
  local group = json.object()
  for _, field in ipairs(schema.response) do
    if answered[field.name] then
      group[field.name] = value_for(field, id, params, body, now)
    end
  end
  local remote_data = json.object()
  if json.is_object(body.remote_data) then
    for k, v in pairs(body.remote_data) do
      remote_data[k] = v
    end
  end
  remote_data.id = id
  group.remote_data = remote_data
  return group
end

-- The unified rendering: the group without the excluded fields, and without
-- remote_data when asked to ignore it.
function groups.unified(group, exclude_fields, ignore_remote_data)
  local dropped = names_of(exclude_fields or {})
  if ignore_remote_data then
    dropped.remote_data = true
  end
  local shown = json.object()
  for k, v in pairs(group) do
    if not dropped[k] then
      shown[k] = v
    end
  end
  return shown
end

-- The raw rendering: what the provider itself answered, i.e. the group under
-- the provider's field names, next to the remote_data it was sent.
function groups.raw(integration_key, group)
  local names = providers[integration_key] or {}
  local raw = json.object()
  for k, v in pairs(group.remote_data) do
    raw[k] = v
  end
  for k, v in pairs(group) do
    if k ~= "remote_data" then
      raw[names[k] or k] = v
    end
  end
  return raw
end

return groups
