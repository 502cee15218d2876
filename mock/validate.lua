-- mock.validate: checks a request against its operation in truto.api, the
-- way Truto's server would refuse it.
--
-- Every rule is read from the operation (types, enums, minimums, required
-- parameters and fields, per-integration requirements and allowed values,
-- misplaced-key hints); never name a field or an integration here. Pure
-- Lua, no ngx. A refusal is a "problem" table:
-- { status = 400, message = "...", insight = { ... } or nil }.
local json = require "mock.json"

local validate = {}

local UUID = "^" .. ("%x"):rep(8) .. "%-" .. ("%x"):rep(4) .. "%-" .. ("%x"):rep(4)
  .. "%-" .. ("%x"):rep(4) .. "%-" .. ("%x"):rep(12) .. "$"

local function contains(list, value)
  for _, item in ipairs(list) do
    if item == value then
      return true
    end
  end
  return false
end

local function find_spec(list, name)
  for _, spec in ipairs(list or {}) do
    if spec.name == name then
      return spec
    end
  end
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

-- Per description type: a check of the value as it arrives on the wire, in
-- the query string (always strings and bracketed tables) or in the JSON
-- body. Each returns nil when the value is fine, else what is wrong with it.
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
  integer = function(value, spec, where)
    local number = where == "query" and type(value) == "string" and value:match("^%-?%d+$")
      and tonumber(value) or (where == "body" and type(value) == "number" and value % 1 == 0 and value)
    if not number then
      return "must be a whole number"
    elseif spec.min and number < spec.min then
      return "must be at least " .. spec.min
    end
  end,
  object_array = function(value)
    if not json.is_array(value) then
      return "must be an array of objects"
    end
    for i, item in ipairs(value) do
      if not json.is_object(item) then
        return ("must be an array of objects (item %d is not)"):format(i)
      end
    end
  end,
  filter = function(value)
    if type(value) ~= "string" and not json.is_object(value) then
      return "must be a value or an object of operators (name[gte]=...)"
    end
  end,
}

local function is_missing(value)
  return value == nil or value == json.null
end

local function bad_request(message, insight)
  return { status = 400, message = message, insight = insight }
end

-- The hints op.misplaced gives when a missing name was sent on the other
-- side ("group_type is a query parameter, not a body field: ...").
local function misplaced_hints(names, sent_elsewhere, hints)
  local found = {}
  for _, name in ipairs(names) do
    local hint = hints and hints[name]
    if hint and not is_missing(sent_elsewhere[name]) then
      found[#found + 1] = hint:sub(1, #name) == name and hint or name .. " " .. hint
    end
  end
  return found
end

-- A 400 naming what is missing, in Truto's words, with hints when the
-- missing names were sent on the wrong side. `who` starts the message
-- ("BlackLine requires"), or nil for the operation's own requirements.
local function missing_problem(op, who, missing_query, missing_body, params, body)
  local insight, parts = json.object(), {}
  if #missing_query > 0 then
    insight.missing_required_query_parameters = json.array(missing_query)
    parts[#parts + 1] = (who and "query parameters " or "Missing required query parameters: ")
      .. table.concat(missing_query, ", ")
  end
  if #missing_body > 0 then
    insight.missing_required_body_fields = json.array(missing_body)
    parts[#parts + 1] = (who and "body fields " or "Missing required body fields: ")
      .. table.concat(missing_body, ", ")
  end
  local message = (who and who .. " requires " or "") .. table.concat(parts, who and " and " or "; ")
  local misplaced = op.misplaced or {}
  local hints = misplaced_hints(missing_query, body or {}, misplaced.body)
  for _, hint in ipairs(misplaced_hints(missing_body, params, misplaced.query)) do
    hints[#hints + 1] = hint
  end
  if #hints > 0 then
    message = message .. " (" .. table.concat(hints, "; ") .. ")"
  end
  return bad_request(message, insight)
end

-- Checks every described parameter that is present, and the ones the
-- operation requires of every call. Unknown parameters are ignored (an
-- open_query operation passes them on; Truto ignores the others).
function validate.query(op, params)
  local missing = {}
  for _, spec in ipairs(op.query or {}) do
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
    return missing_problem(op, nil, missing, {}, params, nil)
  end
end

-- Returns the decoded body, or nil and a problem: the body must be one JSON
-- object, its described fields must have their types, and the required ones
-- must be there.
function validate.body(op, text, params)
  local body = json.decode(text)
  if not json.is_object(body) then
    return nil, bad_request("The request body must be a JSON object")
  end
  local missing = {}
  for _, spec in ipairs(op.body or {}) do
    local value = body[spec.name]
    if is_missing(value) then
      if spec.required then
        missing[#missing + 1] = spec.name
      end
    else
      local wrong = wire_checks[spec.type](value, spec, "body")
      if wrong then
        return nil, bad_request(spec.name .. " " .. wrong)
      end
    end
  end
  if #missing > 0 then
    return nil, missing_problem(op, nil, {}, missing, params, body)
  end
  return body
end

-- Checks what one integration requires and allows for this operation
-- (op.integrations[integration_key]; nothing when it names no rules).
function validate.integration(op, integration_key, params, body)
  local integration = op.integrations and op.integrations[integration_key]
  if not integration then
    return nil
  end
  body = body or {}
  local missing_query, missing_body = {}, {}
  for _, name in ipairs(integration.required_query or {}) do
    if is_missing(params[name]) then missing_query[#missing_query + 1] = name end
  end
  for _, name in ipairs(integration.required_body or {}) do
    if is_missing(body[name]) then missing_body[#missing_body + 1] = name end
  end
  if #missing_query > 0 or #missing_body > 0 then
    return missing_problem(op, integration.label, missing_query, missing_body, params, body)
  end
  for name, values in pairs(integration.allowed or {}) do
    local value = find_spec(op.query, name) and params[name] or find_spec(op.body, name) and body[name]
    if not is_missing(value) and not contains(values, value) then
      return bad_request(name .. " " .. one_of(values) .. " for " .. integration.label)
    end
  end
end

return validate
