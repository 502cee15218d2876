-- bench/pages.lua: the canned list of the benchmark — 1,000 realistic groups
-- in 10 pages of 100, as Truto answers GET /unified/user-directory/groups:
-- { result, next_cursor, prev_cursor, result_count, is_partial_response },
-- the last page with "next_cursor": null. Deterministic (same bytes every
-- run), so every client decodes the same answers.
--
--   local pages = dofile("bench/pages.lua")
--   pages.COUNT, pages.PER_PAGE, pages.cursors[i] (the cursor that asks for
--   page i; nil for page 1), pages.body(i) -> the JSON of page i
--
-- Must never read the environment or the clock, or depend on a JSON
-- library (bench/server.lua writes these files before any client runs).
local M = { COUNT = 10, PER_PAGE = 100 }

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

-- base64url without padding, as opaque cursors usually look
local function base64url(s)
  local out = {}
  for i = 1, #s, 3 do
    local a, b, c = s:byte(i, i + 2)
    local n = a * 65536 + (b or 0) * 256 + (c or 0)
    local chars = 2 + (b and 1 or 0) + (c and 1 or 0)
    for k = 1, chars do
      local shift = 18 - 6 * (k - 1)
      local v = math.floor(n / 2 ^ shift) % 64
      out[#out + 1] = B64:sub(v + 1, v + 1)
    end
  end
  return table.concat(out)
end

M.cursors = {}
for page = 1, M.COUNT do
  M.cursors[page] = base64url(('{"offset":%d,"limit":%d,"sort":"name"}'):format((page - 1) * M.PER_PAGE,
    M.PER_PAGE))
end

local TEAMS = { "Platform Engineering", "Site Reliability", "Data Science", "Payments", "Growth Marketing",
  "Customer Success", "Security Operations", "People Operations", "Finance & Accounting", "Legal",
  "Mobile Apps", "Developer Experience", "Sales — EMEA", "Sales — Americas", "Design Systems", "Support Tier 2" }
local TYPES = { "team", "department", "group", "team", "team" }
local CITIES = { "Lisbon", "São Paulo", "Berlin", "Toronto", "Singapore", "Austin", "Nairobi", "Kraków" }

local function quote(s)
  return '"' .. s:gsub('[%c"\\]', function(ch) return ("\\u%04x"):format(ch:byte()) end) .. '"'
end

-- The i-th group of the account (1-based), as the API answers it.
local function group(i)
  local team = TEAMS[(i - 1) % #TEAMS + 1]
  local city = CITIES[(i * 7 - 1) % #CITIES + 1]
  local day = (i - 1) % 28 + 1
  local month = (i - 1) % 12 + 1
  return table.concat{
    '{"id":', quote(("grp_01HZX%05dK4Q8N2M7"):format(i)),
    ',"name":', quote(("%s %d"):format(team, i)),
    ',"description":', quote(("%s, %s office: owns %d services"):format(team, city, i % 40 + 1)),
    ',"group_type":', quote(TYPES[i % #TYPES + 1]),
    ',"organization":', quote(("org_%04d"):format(7700 + i % 3)),
    ',"created_at":', quote(("2023-%02d-%02dT09:%02d:00.000Z"):format(month, day, i % 60)),
    ',"updated_at":', quote(("2024-%02d-%02dT17:%02d:31.000Z"):format(month, day, (i * 13) % 60)),
    ',"remote_data":{"id":', quote(tostring(480000 + i)),
    ',"cost_center":', quote(("CC-%04d"):format(1000 + i % 97)),
    ',"active":', (i % 17 == 0) and "false" or "true",
    ',"member_count":', tostring(3 + (i * 31) % 120),
    ',"tags":[', quote(city:lower():gsub("[^%w]", "")), ',', quote(TYPES[i % #TYPES + 1]), ']}}',
  }
end

-- M.body(page) -> the JSON text of that page (1..COUNT)
function M.body(page)
  local items = {}
  for k = 1, M.PER_PAGE do items[k] = group((page - 1) * M.PER_PAGE + k) end
  local next_cursor = M.cursors[page + 1]
  local prev = M.cursors[page - 1]
  return table.concat{
    '{"result":[', table.concat(items, ","), ']',
    ',"next_cursor":', next_cursor and quote(next_cursor) or "null",
    ',"prev_cursor":', prev and quote(prev) or "null",
    ',"result_count":', tostring(M.PER_PAGE),
    ',"is_partial_response":false}',
  }
end

return M
