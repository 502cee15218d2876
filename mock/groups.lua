-- mock.groups: builds the objects the mock keeps and answers with: a group
-- as an integration answers it (fields from truto.api's groups
-- description), any other unified object as it was sent, and their
-- renderings (unified/normalized, raw).
--
-- Which fields exist and which ones an integration answers with come from
-- truto.api; a field's value comes from the body or query parameter of the
-- same name, a date-time field is "now", `id` is new. Pure Lua, no ngx;
-- never decide here whether a request is valid (mock.validate does).
local api = require "truto.api"
local json = require "mock.json"
local providers = require "mock.providers"

local groups = {}

local GROUPS = api.resources.groups
local CREATE = GROUPS.operations.create

local function names_of(list)
  local set = {}
  for _, spec in ipairs(list or {}) do
    set[type(spec) == "table" and spec.name or spec] = true
  end
  return set
end

local body_fields = names_of(CREATE.body)
local query_parameters = names_of(CREATE.query)

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

-- The fields of a group an integration answers with: its create
-- `response` list, or every field of the object when it lists none.
local function answered_by(integration_key)
  local integration = CREATE.integrations[integration_key]
  if integration and integration.response then
    return names_of(integration.response)
  end
  return names_of(GROUPS.object)
end

local function copy_object(t)
  local copy = json.object()
  if json.is_object(t) then
    for k, v in pairs(t) do
      copy[k] = v
    end
  end
  return copy
end

-- Whether a description is truto.api's groups (the only one with fields).
function groups.is_groups(desc)
  return desc == GROUPS
end

-- Returns the unified group an integration answers with after a create:
-- the fields its `response` list names, plus remote_data (the request's
-- remote_data echoed back, with the provider's id added).
function groups.create(integration_key, id, params, body, now)
  local answered = answered_by(integration_key)
  local group = json.object()
  for _, field in ipairs(GROUPS.object) do
    if answered[field.name] and field.name ~= "remote_data" then
      group[field.name] = value_for(field, id, params, body, now)
    end
  end
  local remote_data = copy_object(body.remote_data)
  remote_data.id = id
  group.remote_data = remote_data
  return group
end

-- Returns a copy of the group with an update applied: the body's fields
-- and the query's parameters of the same names as the group's fields that
-- the integration answers with, remote_data merged, updated_at now.
function groups.update(integration_key, group, params, body, now)
  local answered = answered_by(integration_key)
  local updated = copy_object(group)
  for _, field in ipairs(GROUPS.object) do
    local value = present(body[field.name])
    if value == nil and field.name ~= "id" and not body_fields[field.name] then
      value = present(params[field.name])
    end
    if field.name == "remote_data" then
      if json.is_object(value) then
        local merged = copy_object(group.remote_data)
        for k, v in pairs(value) do
          merged[k] = v
        end
        updated.remote_data = merged
      end
    elseif field.name == "updated_at" then
      if answered.updated_at then
        updated.updated_at = now
      end
    elseif value ~= nil and field.name ~= "id" and field.name ~= "created_at" and answered[field.name] then
      updated[field.name] = value
    end
  end
  return updated
end

-- Any other unified object: the body as sent, with a new id.
function groups.create_generic(id, body)
  local object = copy_object(body)
  object.id = id
  return object
end

-- A copy of a generic object with the body's keys set (null removes one).
function groups.update_generic(object, body)
  local updated = copy_object(object)
  for k, v in pairs(body) do
    if k ~= "id" then
      updated[k] = present(v)
    end
  end
  return updated
end

-- The unified rendering: the object without the excluded fields, and
-- without remote_data when asked to ignore it.
function groups.unified(group, exclude_fields, ignore_remote_data)
  local dropped = names_of(type(exclude_fields) == "table" and exclude_fields or {})
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
  if json.is_object(group.remote_data) then
    for k, v in pairs(group.remote_data) do
      raw[k] = v
    end
  end
  for k, v in pairs(group) do
    if k ~= "remote_data" then
      raw[names[k] or k] = v
    end
  end
  return raw
end

return groups
