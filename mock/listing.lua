-- mock.listing: `list` over the objects of one collection: the filters a
-- list operation describes, sort_by, pages of `limit` with opaque cursors,
-- truto_key_by.
--
-- A cursor is base64url of "v1:<nonce>:<scope>:<offset>" (scope: the list's
-- path and account): opaque to clients (never a plain offset they could
-- compute), refused after a reset (the nonce changes), on another resource
-- or for another account. Pure Lua, no ngx; never validate
-- parameter types here (mock.validate did).
local json = require "mock.json"

local listing = {}

listing.DEFAULT_LIMIT = 100

-- Fault switches (mock.control's POST /__mock/faults): partial_page = N
-- marks the Nth page served from now on is_partial_response: true (its
-- items as they are). Cleared by /__mock/reset.
listing.faults = { served = 0 }

-- The parameters of `list` that page or shape the answer rather than filter.
local NOT_FILTERS = {
  integrated_account_id = true, truto_response_format = true, truto_ignore_remote_data = true,
  truto_exclude_fields = true, remote_query = true, limit = true, next_cursor = true,
  truto_key_by = true, truto_ignore_limit = true, truto_super_query = true, sort_by = true,
}

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

local function base64url(text)
  local out = {}
  for i = 1, #text, 3 do
    local a, b, c = text:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = 2 + (b and 1 or 0) + (c and 1 or 0)
    for k = 1, chars do
      local index = math.floor(n / 2 ^ (6 * (4 - k))) % 64
      out[#out + 1] = ALPHABET:sub(index + 1, index + 1)
    end
  end
  return table.concat(out)
end

local function unbase64url(text)
  if type(text) ~= "string" or not text:match("^[%w%-_]+$") or #text % 4 == 1 then
    return nil
  end
  local out, n, bits = {}, 0, 0
  for i = 1, #text do
    n = n * 64 + (ALPHABET:find(text:sub(i, i), 1, true) - 1)
    bits = bits + 6
    if bits >= 8 then
      bits = bits - 8
      local byte = math.floor(n / 2 ^ bits)
      out[#out + 1] = string.char(byte)
      n = n - byte * 2 ^ bits
    end
  end
  return table.concat(out)
end

function listing.cursor(nonce, scope, offset)
  return base64url(("v1:%s:%s:%d"):format(nonce, scope, offset))
end

-- The offset a cursor stands for, or nil when it is not one of this
-- mock's cursors for this scope since the last reset.
function listing.offset(cursor, nonce, scope)
  local text = unbase64url(cursor)
  local cursor_nonce, cursor_scope, offset = (text or ""):match("^v1:([^:]*):([^:]*):(%d+)$")
  if cursor_nonce ~= nonce or cursor_scope ~= scope then
    return nil
  end
  return tonumber(offset)
end

-- The object field a filter parameter reads: its own name, or without
-- "_id" (organization_id reads organization); nil when the object has
-- neither (the mock keeps no memberships, so user_id matches nothing).
local function field_of(name, fields)
  if fields[name] then
    return name
  end
  local base = name:match("^(.*)_id$")
  if base and fields[base] then
    return base
  end
end

local OPERATORS = {
  eq = function(a, b) return a == b end,
  ne = function(a, b) return a ~= b end,
  gt = function(a, b) return a > b end,
  gte = function(a, b) return a >= b end,
  lt = function(a, b) return a < b end,
  lte = function(a, b) return a <= b end,
}

local function matches(value, wanted)
  if type(wanted) ~= "table" then
    return value ~= nil and tostring(value) == wanted
  end
  if type(value) ~= "string" then
    return false
  end
  for operator, operand in pairs(wanted) do
    local test = OPERATORS[operator]
    if not test or type(operand) ~= "string" or not test(value, operand) then
      return false
    end
  end
  return true
end

-- listing.select(op, fields, objects, params) -> the objects that pass the
-- filters `op.query` describes (fields: set of the object's field names;
-- nil for an undescribed resource, whose list takes no filters), sorted by
-- sort_by when given (creation order otherwise).
function listing.select(op, fields, objects, params)
  local kept = {}
  for index, object in ipairs(objects) do
    local keep = true
    if fields then
      for _, spec in ipairs(op.query or {}) do
        local wanted = params[spec.name]
        if not NOT_FILTERS[spec.name] and wanted ~= nil then
          local field = field_of(spec.name, fields)
          if not field or not matches(object[field], wanted) then
            keep = false
            break
          end
        end
      end
    end
    if keep then
      kept[#kept + 1] = { object = object, index = index }
    end
  end
  local sort_by = params.sort_by
  if type(sort_by) == "string" then
    table.sort(kept, function(a, b)
      local x, y = tostring(a.object[sort_by] or ""), tostring(b.object[sort_by] or "")
      if x ~= y then
        return x < y
      end
      return a.index < b.index
    end)
  end
  local out = {}
  for i, entry in ipairs(kept) do
    out[i] = entry.object
  end
  return out
end

-- listing.page(objects, params, nonce, scope, render) -> page | nil, message
-- The page of `objects` the parameters ask for, each rendered, in list's
-- envelope: { result, next_cursor, prev_cursor, result_count,
-- is_partial_response }; next_cursor is null on the last page.
function listing.page(objects, params, nonce, scope, render)
  local offset = 0
  if params.next_cursor ~= nil then
    offset = listing.offset(params.next_cursor, nonce, scope)
    if not offset or offset > #objects then
      return nil, "next_cursor is not a cursor this API gave out (or it has expired)"
    end
  end
  local limit = tonumber(params.limit) or listing.DEFAULT_LIMIT
  if params.truto_ignore_limit == "true" then
    limit = math.max(#objects - offset, 1)
  end
  local items = json.array()
  for i = offset + 1, math.min(offset + limit, #objects) do
    items[#items + 1] = render(objects[i])
  end
  local result = items
  local key_by = params.truto_key_by
  if type(key_by) == "string" then
    result = json.object()
    for _, item in ipairs(items) do
      local key = item[key_by]
      if key ~= nil and key ~= json.null and type(key) ~= "table" then
        result[tostring(key)] = item
      end
    end
  end
  local next_offset = offset + limit
  local faults = listing.faults
  faults.served = faults.served + 1
  return json.object {
    result = result,
    next_cursor = next_offset < #objects and listing.cursor(nonce, scope, next_offset) or json.null,
    prev_cursor = offset > 0 and listing.cursor(nonce, scope, math.max(offset - limit, 0)) or json.null,
    result_count = #items,
    is_partial_response = faults.partial_page == faults.served,
  }
end

return listing
