-- truto.pages: `each`, the iterator over every item of a paged list, and
-- `pages`, the same walk a page at a time (sync reads is_partial_response
-- from it). Both ask for the next page only when the loop needs it, and
-- follow next_cursor until the last page.
--
-- Must never: drop a failure silently (they yield false, err once, then
-- end), loop forever on a server that repeats a cursor (the caller's own
-- starting cursor included), yield a page twice, yield anything but an
-- object as an item, fetch a page the loop did not reach, or let the
-- client's token into an error (a hostile server may echo it in a cursor).
-- `list` itself refuses a 2xx page without a `result` table or with a
-- next_cursor that is not a string or null (truto.call's page shape).

local errors = require "truto.errors"

local M = {}

-- The items of a page in the order to yield them: an array as is; a table
-- keyed by truto_key_by in the order of its keys.
local function items_of(result)
  if #result > 0 or next(result) == nil then return result end
  local keys, out = {}, {}
  for k in pairs(result) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
  for i, k in ipairs(keys) do out[i] = result[k] end
  return out
end

-- An item is a JSON object: a table that is not an array (a decoded
-- object never has a [1]) and not the null sentinel (a light userdata).
local function bad_item(items)
  for i = 1, #items do
    local v = items[i]
    if type(v) ~= "table" or v[1] ~= nil then return i, v end
  end
end

local function describe_value(v)
  if type(v) == "table" then return "an array" end
  if type(v) == "string" then return "a string" end
  if type(v) == "boolean" or type(v) == "number" then return tostring(v) end
  return "null"
end

-- Formats that do not answer in the unified shape: no result, no cursor.
local NOT_PAGED = { raw = true, stream = true }

-- M.pages(c, list, query, options) -> iterator yielding page, items | false, err
-- `list` is the resource's list function (query, options). Each step
-- yields the page as list answered it and its items in order (every one
-- an object; a result keyed by truto_key_by in the order of its keys).
function M.pages(c, list, query, options)
  local token = c and c.token
  local function fail(kind, message, fields)
    local e = errors.new(kind, message, fields)
    return errors.redact(e, token)
  end
  local q = {}
  if type(query) == "table" then
    for k, v in pairs(query) do q[k] = v end
  elseif query ~= nil then
    q = query -- list names the mistake on the first call
  end
  local refusal
  if type(q) == "table" and NOT_PAGED[q.truto_response_format] then
    refusal = fail("invalid_argument", "truto_response_format: each pages through the unified shape"
      .. " (result, next_cursor); \"" .. q.truto_response_format .. "\" answers have neither: use list",
      { field = "truto_response_format", retryable = false })
  end
  local done, started = false, false
  local cursor = type(q) == "table" and q.next_cursor or nil
  local seen = {}
  if type(cursor) == "string" then seen[cursor] = true end
  return function()
    if done then return nil end
    if refusal then
      done = true
      return false, refusal
    end
    if started then
      if not cursor then
        done = true
        return nil
      end
      if seen[cursor] then
        done = true
        return false, fail("decode", "the server answered next_cursor \"" .. cursor:sub(1, 60)
          .. "\" a second time; stopping rather than looping", { retryable = false, attempts = 0, sent = true })
      end
      seen[cursor] = true
      q.next_cursor = cursor
    end
    started = true
    local page, err = list(q, options)
    if not page then
      done = true
      return false, err
    end
    local items = items_of(page.result)
    local at, v = bad_item(items)
    if at then
      done = true
      return false, fail("decode", "the server answered a result entry that is not an object (entry "
        .. at .. " is " .. describe_value(v) .. ")", { retryable = false, sent = true })
    end
    cursor = page.next_cursor
    return page, items
  end
end

-- M.each(c, list, query, options) -> iterator yielding item | false, err
function M.each(c, list, query, options)
  local next_page = M.pages(c, list, query, options)
  local items, i = nil, 0
  return function()
    while true do
      if items and i < #items then
        i = i + 1
        return items[i]
      end
      local page, more = next_page()
      if not page then return page, more end
      items, i = more, 0
    end
  end
end

return M
