-- mock.objects: builds the objects the mock keeps and answers with: an
-- object of a described resource as an integration answers it (fields from
-- that resource's description in truto.api), any other unified object as
-- it was sent, and their renderings (unified/normalized, raw).
--
-- Which fields exist and which ones an integration answers with come from
-- truto.api; a field's value comes from the body or query parameter of the
-- same name, a date-time field is "now", `id` is new. Never name a
-- resource, a field or an integration here; pure Lua, no ngx; never decide
-- here whether a request is valid (mock.validate does).
local json = require "mock.json"
local providers = require "mock.providers"

local objects = {}

local function names_of(list)
  local set = {}
  for _, spec in ipairs(list or {}) do
    set[type(spec) == "table" and spec.name or spec] = true
  end
  return set
end

local function present(value)
  if value ~= nil and value ~= json.null then
    return value
  end
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

-- What create sends that may become a field: its body fields and query
-- parameters, by name (made once per description).
local sources = setmetatable({}, { __mode = "k" })
local function sources_of(desc)
  local s = sources[desc]
  if not s then
    local create = desc.operations.create or {}
    s = { body = names_of(create.body), query = names_of(create.query) }
    sources[desc] = s
  end
  return s
end

local function value_for(desc, field, id, params, body, now)
  local from = sources_of(desc)
  if field.name == "id" then
    return id
  elseif from.body[field.name] then
    return present(body[field.name])
  elseif from.query[field.name] then
    return present(params[field.name])
  elseif field.format == "date-time" then
    return now
  end
end

-- The fields an integration answers with: its create `response` list, or
-- every field of the object when it lists none.
local function answered_by(desc, integration_key)
  local integrations = desc.operations.create and desc.operations.create.integrations
  local integration = integrations and integrations[integration_key]
  if integration and integration.response then
    return names_of(integration.response)
  end
  return names_of(desc.object)
end

-- Returns the object an integration answers with after a create. Described
-- (desc.object): the fields its `response` list names, plus remote_data
-- (the request's remote_data echoed back, with the provider's id added).
-- Otherwise the body as sent, with the new id.
function objects.create(desc, integration_key, id, params, body, now)
  if not desc.object then
    local object = copy_object(body)
    object.id = id
    return object
  end
  local answered = answered_by(desc, integration_key)
  local object = json.object()
  for _, field in ipairs(desc.object) do
    if answered[field.name] and field.name ~= "remote_data" then
      object[field.name] = value_for(desc, field, id, params, body, now)
    end
  end
  local remote_data = copy_object(body.remote_data)
  remote_data.id = id
  object.remote_data = remote_data
  return object
end

-- Returns a copy of the object with an update applied. Described: the
-- body's fields and the query's parameters of the same names as the
-- object's fields that the integration answers with, remote_data merged,
-- updated_at now. Otherwise the body's keys set (null removes one).
function objects.update(desc, integration_key, object, params, body, now)
  local updated = copy_object(object)
  if not desc.object then
    for k, v in pairs(body) do
      if k ~= "id" then
        updated[k] = present(v)
      end
    end
    return updated
  end
  local answered = answered_by(desc, integration_key)
  local from = sources_of(desc)
  for _, field in ipairs(desc.object) do
    local value = present(body[field.name])
    if value == nil and field.name ~= "id" and not from.body[field.name] then
      value = present(params[field.name])
    end
    if field.name == "remote_data" then
      if json.is_object(value) then
        local merged = copy_object(object.remote_data)
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

-- The field names of a described resource's objects (nil otherwise).
function objects.fields(desc)
  return desc.object and names_of(desc.object)
end

-- The unified rendering: the object without the excluded fields, and
-- without remote_data when asked to ignore it.
local function unified(object, exclude_fields, ignore_remote_data)
  local dropped = names_of(type(exclude_fields) == "table" and exclude_fields or {})
  if ignore_remote_data then
    dropped.remote_data = true
  end
  local shown = json.object()
  for k, v in pairs(object) do
    if not dropped[k] then
      shown[k] = v
    end
  end
  return shown
end

-- The raw rendering: what the provider itself answered, i.e. the object
-- under the provider's field names, next to the remote_data it was sent.
local function raw(desc, integration_key, object)
  local resource_names = providers[desc.model .. "/" .. desc.resource] or {}
  local names = resource_names[integration_key] or {}
  local shown = json.object()
  if json.is_object(object.remote_data) then
    for k, v in pairs(object.remote_data) do
      shown[k] = v
    end
  end
  for k, v in pairs(object) do
    if k ~= "remote_data" then
      shown[names[k] or k] = v
    end
  end
  return shown
end

-- The object as a request's parameters ask for it: raw (a described
-- resource's object under the provider's names) or unified/normalized.
function objects.render(desc, integration_key, object, params)
  if params.truto_response_format == "raw" and desc.object then
    return raw(desc, integration_key, object)
  end
  return unified(object, params.truto_exclude_fields, params.truto_ignore_remote_data == "true")
end

return objects
