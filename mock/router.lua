-- mock.router: which operation of truto.api a request is, from its method
-- and path alone: every operation of every described resource by its path
-- template ("{id}" is one non-empty segment), and any other unified path
-- (/unified/{model}/{resource}[/{id}|/{method}]) as truto.api.generic or
-- truto.api.custom describes it.
--
-- Pure Lua, no ngx. Never validate a query or a body here (mock.validate),
-- never name an operation or a path: they all come from truto.api.
local api = require "truto.api"

local router = {}

local function split(path)
  local segments = {}
  for segment in (path:sub(2) .. "/"):gmatch("([^/]*)/") do
    segments[#segments + 1] = segment
  end
  return segments
end

local function percent_decode(text)
  return (text:gsub("%%(%x%x)", function(hex)
    return string.char(tonumber(hex, 16))
  end))
end

-- Every operation of every described resource, as segments.
local routes = {}
for _, desc in pairs(api.resources) do
  for name, op in pairs(desc.operations) do
    routes[#routes + 1] = { desc = desc, name = name, op = op, method = op.method,
      segments = split(op.path) }
  end
end

-- The matching route of a template, with how many literal segments agreed
-- and the id, or nil.
local function match_template(route, segments)
  if #route.segments ~= #segments then
    return nil
  end
  local literal, id = 0, nil
  for i, part in ipairs(route.segments) do
    if part == "{id}" then
      if segments[i] == "" then
        return nil
      end
      id = segments[i]
    elseif part == segments[i] then
      literal = literal + 1
    else
      return nil
    end
  end
  return literal, id
end

local function allow(methods)
  local seen, list = {}, {}
  for _, method in ipairs(methods) do
    if not seen[method] then
      seen[method] = true
      list[#list + 1] = method
    end
  end
  table.sort(list)
  return table.concat(list, ", ")
end

-- Descriptions of resources that are not described, one per model/resource.
local generics = {}
local customs = {}

local NAME = "^[%w][%w%-_.]*$"

-- The generic routes of /unified/{model}/{resource}[/{x}].
local function generic_route(method, segments)
  local model, resource = segments[2], segments[3]
  if segments[1] ~= "unified" or not model or not resource or #segments > 4
    or not model:match(NAME) or not resource:match(NAME) then
    return nil
  end
  if api.find(model, resource) then
    return nil -- described: only its own templates route to it
  end
  local key = model .. "/" .. resource
  local desc = generics[key]
  if not desc then
    desc = api.generic(model, resource)
    generics[key] = desc
  end
  local name
  if #segments == 3 then
    name = ({ GET = "list", POST = "create" })[method]
    if not name then
      return { status = 405, allow = "GET, POST" }
    end
    return { desc = desc, name = name, op = desc.operations[name] }
  end
  local x = segments[4]
  if x == "" then
    return nil
  elseif method == "POST" then
    local custom_name = percent_decode(x)
    local op = customs[key .. "/" .. custom_name]
    if not op then
      op = api.custom(model, resource, custom_name)
      customs[key .. "/" .. custom_name] = op
    end
    return { desc = desc, name = custom_name, custom = true, op = op }
  end
  name = ({ GET = "get", PATCH = "update", DELETE = "delete" })[method]
  if not name then
    return { status = 405, allow = "DELETE, GET, PATCH, POST" }
  end
  return { desc = desc, name = name, op = desc.operations[name], id = percent_decode(x) }
end

-- router.route(method, path) -> route
--   { desc, name, op, id?, custom? }   the operation (id percent-decoded)
--   { status = 405, allow = "GET, POST" }  the path exists, not the method
--   { status = 404 }                        no such path
function router.route(method, path)
  local segments = split(path)
  local best, best_literal, best_id, methods = nil, -1, nil, {}
  for _, route in ipairs(routes) do
    local literal, id = match_template(route, segments)
    if literal then
      methods[#methods + 1] = route.method
      if route.method == method and literal > best_literal then
        best, best_literal, best_id = route, literal, id
      end
    end
  end
  if best then
    return { desc = best.desc, name = best.name, op = best.op,
      id = best_id and percent_decode(best_id) }
  elseif #methods > 0 then
    return { status = 405, allow = allow(methods) }
  end
  return generic_route(method, segments) or { status = 404 }
end

return router
