-- mock.validate: checks a create request against truto.schema, the way
-- Truto's server would refuse it.
--
-- Every rule is read from the schema (types, enums, required parameters,
-- per-integration requirements and allowed values); never name a field or
-- an integration here. Pure Lua, no ngx. A refusal is a "problem" table:
-- { status = 400, message = "...", insight = { ... } or nil }.
local schema = require "truto.schema"
local json = require "mock.json"

local validate = {}

local UUID = "^" .. ("%x"):rep(8) .. "%-" .. ("%x"):rep(4) .. "%-" .. ("%x"):rep(4)
  .. "%-" .. ("%x"):rep(4) .. "%-" .. ("%x"):rep(12) .. "$"

local function by_name(list)
  local index = {}
  for _, spec in ipairs(list) do
    index[spec.name] = spec
  end
  return index
end

local query_specs = by_name(schema.query)
local body_specs = by_name(schema.body)
local misplaced = schema.misplaced or {}

local function contains(list, value)
  for _, item in ipairs(list) do
    if item == value then
      return true
    end
  end
  return false
end

local function is_string_array(value)
  if not json.is_array(value) then
    return false
  end
  for _, item in ipairs(value) do
    if type(item) ~= "string" then
      return false
    end
  end
  return true
end

local function one_of(values)
  return "must be one of: " .. table.concat(values, ", ")
end

-- Per schema type: a check of the value as it arrives on the wire, in the
-- query string (always strings and bracketed tables) or in the JSON body.
-- Each returns nil when the value is fine, else what is wrong with it.
local wire_checks = {
  string = function(value)
    if type(value) ~= "string" then return "must be a string" end
  end,
  uuid = function(value)
    if type(value) ~= "string" or not value:match(UUID) then return "must be a uuid" end
  end,
  enum = function(value, spec)
    if not contains(spec.values, value) then return one_of(spec.values) end
  end,
  string_array = function(value, spec, where)
    if not is_string_array(value) then
      return where == "query"
        and "must be an array of strings (" .. spec.name .. "[]=...)"
        or "must be an array of strings"
    end
  end,
  object = function(value, spec, where)
    if where == "query" and type(value) ~= "table" then
      return "must be an object (" .. spec.name .. "[key]=value)"
    elseif where == "body" and not json.is_object(value) then
      return "must be a JSON object"
    end
  end,
  boolean = function(value, _, where)
    if where == "query" and value ~= "true" and value ~= "false" then
      return "must be true or false"
    elseif where == "body" and type(value) ~= "boolean" then
      return "must be true or false"
    end
  end,
}

local function is_missing(value)
  return value == nil or value == json.null
end

local function bad_request(message, insight)
  return { status = 400, message = message, insight = insight }
end

-- Checks every known parameter that is present, and the ones the schema
-- requires of every call. Unknown parameters are ignored.
function validate.query(params)
  local missing = {}
  for _, spec in ipairs(schema.query) do
    local value = params[spec.name]
    if is_missing(value) then
      if spec.required then
        missing[#missing + 1] = spec.name
      end
    else
      local wrong = wire_checks[spec.type](value, spec, "query")
      if wrong then
        return bad_request(spec.name .. " " .. wrong)
      end
    end
  end
  if #missing > 0 then
    return bad_request("Missing required query parameters: " .. table.concat(missing, ", "),
      json.object { missing_required_query_parameters = json.array(missing) })
  end
end

-- Returns the decoded body, or nil and a problem: the body must be one JSON
-- object, and its known fields must have their schema types.
function validate.body(text)
  local body = json.decode(text)
  if not json.is_object(body) then
    return nil, bad_request("The request body must be a JSON object")
  end
  for _, spec in ipairs(schema.body) do
    local value = body[spec.name]
    if not is_missing(value) then
      local wrong = wire_checks[spec.type](value, spec, "body")
      if wrong then
        return nil, bad_request(spec.name .. " " .. wrong)
      end
    end
  end
  return body
end

-- The hint schema.misplaced gives when `name` is missing from one side but
-- was sent on the other ("group_type is a query parameter: ...").
local function misplaced_hints(names, sent_elsewhere, hints)
  local found = {}
  for _, name in ipairs(names) do
    local hint = hints[name]
    if hint and not is_missing(sent_elsewhere[name]) then
      found[#found + 1] = hint:sub(1, #name) == name and hint or name .. " " .. hint
    end
  end
  return found
end

-- Checks what one integration requires and allows (schema.integrations).
function validate.integration(integration_key, params, body)
  local integration = schema.integrations[integration_key]
  local missing_query, missing_body = {}, {}
  for _, name in ipairs(integration.required_query) do
    if is_missing(params[name]) then missing_query[#missing_query + 1] = name end
  end
  for _, name in ipairs(integration.required_body) do
    if is_missing(body[name]) then missing_body[#missing_body + 1] = name end
  end
  if #missing_query > 0 or #missing_body > 0 then
    local insight, parts = json.object(), {}
    if #missing_query > 0 then
      insight.missing_required_query_parameters = json.array(missing_query)
      parts[#parts + 1] = "query parameters " .. table.concat(missing_query, ", ")
    end
    if #missing_body > 0 then
      insight.missing_required_body_fields = json.array(missing_body)
      parts[#parts + 1] = "body fields " .. table.concat(missing_body, ", ")
    end
    local message = integration.label .. " requires " .. table.concat(parts, " and ")
    local hints = misplaced_hints(missing_query, body, misplaced.body or {})
    for _, hint in ipairs(misplaced_hints(missing_body, params, misplaced.query or {})) do
      hints[#hints + 1] = hint
    end
    if #hints > 0 then
      message = message .. " (" .. table.concat(hints, "; ") .. ")"
    end
    return bad_request(message, insight)
  end
  for name, values in pairs(integration.allowed) do
    local value = query_specs[name] and params[name] or body_specs[name] and body[name]
    if not is_missing(value) and not contains(values, value) then
      return bad_request(name .. " " .. one_of(values) .. " for " .. integration.label)
    end
  end
end

return validate
