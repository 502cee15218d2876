-- truto.pages: `each`, the iterator over every item of a paged list. It
-- asks for the next page only when the loop needs it, and follows
-- next_cursor until the last page.
--
-- Must never: drop a failure silently (it yields false, err once, then
-- ends), loop forever on a server that repeats a cursor, or fetch a page
-- the loop did not reach.

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

-- M.each(c, list, query, options) -> iterator yielding item | false, err
-- `list` is the resource's list function (query, options).
function M.each(_, list, query, options)
  local q = {}
  if type(query) == "table" then
    for k, v in pairs(query) do q[k] = v end
  elseif query ~= nil then
    q = query -- list names the mistake on the first call
  end
  local items, i, done, cursor = nil, 0, false, nil
  local seen = {}
  return function()
    while not done do
      if items and i < #items then
        i = i + 1
        return items[i]
      end
      if items and not cursor then
        done = true
        return nil
      end
      if cursor then
        if seen[cursor] then
          done = true
          return false, errors.new("decode", "the server answered next_cursor \""
            .. cursor:sub(1, 60) .. "\" a second time; stopping rather than looping",
            { retryable = false, attempts = 0, sent = true })
        end
        seen[cursor] = true
        q.next_cursor = cursor
      end
      local page, err = list(q, options)
      if not page then
        done = true
        return false, err
      end
      items, i = items_of(page.result or {}), 0
      cursor = page.next_cursor
    end
    return nil
  end
end

return M
