-- truto.cli.rows: from an import record (or the create command's flags) to
-- the exact request the module would send, checked offline: known columns,
-- JSON in object columns, the per-integration rules of truto.schema, and
-- the C core's own validation (the same endpoint the client builds with).
-- Also derives each row's Idempotency-Key.
--
-- Every fact about the API comes from truto.schema; this file only decides
-- which of its parameters a row may carry (the per-group ones) and which
-- the command's flags set. Must never send anything, and never let a bad
-- row raise: a problem is returned as text for the results file.

local core = require "truto.core"
local schema = require "truto.schema"
local json = require "truto.cli.json"
local sha256 = require("truto.core").sha256

local M = {}

local build = require("truto.call").compile(require("truto.api").resources.groups.operations.create).build
local null = core.null

-- Query parameters that describe the group, so a row may carry them; the
-- others are about the account or the response and come from flags.
local PER_ROW_QUERY = { group_type = true, remote_query = true }

-- Types whose value a CSV cell holds as plain text; any other type is
-- written as JSON in its cell.
local TEXT_TYPES = { string = true, uuid = true, enum = true }

-- The columns (CSV) / keys (JSON Lines) a row may have, in schema order.
M.columns = {}
local column_by_name = {}
for _, f in ipairs(schema.body) do
  M.columns[#M.columns + 1] = { name = f.name, type = f.type, where = "body" }
end
for _, f in ipairs(schema.query) do
  if PER_ROW_QUERY[f.name] then
    M.columns[#M.columns + 1] = { name = f.name, type = f.type, where = "query" }
  end
end
for _, c in ipairs(M.columns) do column_by_name[c.name] = c end

local function column_names()
  local names = {}
  for i, c in ipairs(M.columns) do names[i] = c.name end
  return table.concat(names, ", ")
end

-- The flag that sets a query parameter a row may not carry.
local FLAG_FOR = {
  integrated_account_id = "--account", truto_response_format = "--format",
  truto_exclude_fields = "--exclude",
}

local function unknown(kind, name)
  local hint = FLAG_FOR[name] and ("; set it with " .. FLAG_FOR[name]) or ""
  return string.format("unknown %s %q (known: %s%s)", kind, name, column_names(), hint)
end

-- Fields that only some integrations support (named in an integration's
-- `body` or `query` list); a row that sets one its integration does not
-- support would lose it silently.
local PER_INTEGRATION = {}
for _, integration in pairs(schema.integrations) do
  for _, name in ipairs(integration.body) do PER_INTEGRATION[name] = "body" end
  for _, name in ipairs(integration.query) do PER_INTEGRATION[name] = "query" end
end

local function contains(list, value)
  for _, v in ipairs(list) do if v == value then return true end end
  return false
end

local function present(v) return v ~= nil and v ~= null end

-- M.integration_names() -> sorted list of the integration keys
function M.integration_names()
  local names = {}
  for k in pairs(schema.integrations) do names[#names + 1] = k end
  table.sort(names)
  return names
end

-- M.check_integration(key, body, query) -> nil | problem
-- What truto.schema says integration `key` requires, allows and supports.
function M.check_integration(key, body, query)
  local integration = schema.integrations[key]
  local label = integration.label
  local missing = {}
  for _, name in ipairs(integration.required_body) do
    if not present(body[name]) then missing[#missing + 1] = name end
  end
  for _, name in ipairs(integration.required_query) do
    if not present(query[name]) then missing[#missing + 1] = name end
  end
  if #missing > 0 then
    return label .. " requires " .. table.concat(missing, " and ")
  end
  local names = {}
  for name in pairs(integration.allowed) do names[#names + 1] = name end
  table.sort(names)
  for _, name in ipairs(names) do
    local values = integration.allowed[name]
    local v = query[name]
    if v == nil then v = body[name] end
    if present(v) and not contains(values, v) then
      return string.format("%s allows %s = %s only (got %s)", label, name,
        table.concat(values, " or "), tostring(v))
    end
  end
  for name, where in pairs(PER_INTEGRATION) do
    local given = where == "body" and body[name] or query[name]
    if present(given) and not contains(integration[where], name) then
      return label .. " does not support " .. name
        .. " (Truto would drop it): leave it empty or remove it"
    end
  end
end

-- Converts one CSV cell of column c to its value; nil for an empty cell.
local function cell_value(c, text)
  if text == "" then return nil end
  if TEXT_TYPES[c.type] then return text end
  local value, why = json.decode(text)
  if value == nil then
    return nil, "column " .. c.name .. " is not valid JSON: " .. why
  end
  if c.type == "object" and not json.is_object(value) then
    return nil, "column " .. c.name .. " must be a JSON object ({...})"
  end
  return value
end

-- Splits fields (name -> value) into the body and the per-row query.
local function split(fields)
  local body, query = {}, {}
  for name, value in pairs(fields) do
    local c = column_by_name[name]
    if c.where == "body" then body[name] = value else query[name] = value end
  end
  return body, query
end

-- Whether every cell of a CSV record is empty (the `,,` lines spreadsheet
-- exports end with): such a row is skipped, never a nameless group.
local function all_empty(cells)
  for _, cell in ipairs(cells) do if cell ~= "" then return false end end
  return true
end

-- A CSV record's fields by column name, or nil, the first cell's problem.
local function csv_fields(header, cells)
  local fields = {}
  for j, name in ipairs(header) do
    local value, why = cell_value(column_by_name[name], cells[j])
    if why then return nil, why end
    fields[name] = value
  end
  return fields
end

-- A JSON Lines record's fields (null ones left out, keys in order), or
-- nil, the first key's problem.
local function jsonl_fields(value)
  local keys = {}
  for name in pairs(value) do keys[#keys + 1] = name end
  table.sort(keys)
  local fields = {}
  for _, name in ipairs(keys) do
    local c = column_by_name[name]
    if not c then return nil, unknown("key", name) end
    local v = value[name]
    if v ~= null then
      if c.type == "object" and not json.is_object(v) then
        return nil, name .. " must be a JSON object ({...})"
      end
      fields[name] = v
    end
  end
  return fields
end

-- A row's body and query from its fields, or the problem noted on the row.
local function fill(row, fields, problem)
  if not fields then row.problem = problem return nil end
  return split(fields)
end

-- M.from_csv(header, records, header_problem) -> rows
-- rows: { row, line, body, query } or { row, line, problem } or
-- { row, line, empty = true } (every cell empty: not sent, not recorded)
function M.from_csv(header, records, header_problem)
  local problem = header_problem
  if not problem and header then
    local seen = {}
    for i, name in ipairs(header) do
      if name == "" then
        problem = "the header row has an empty column name (column " .. i .. ")"
      elseif not column_by_name[name] then
        problem = unknown("column", name)
      elseif seen[name] then
        problem = "the header row names column " .. name .. " twice"
      end
      if problem then break end
      seen[name] = true
    end
  end
  local rows = {}
  for i, r in ipairs(records) do
    local row = { row = r.row, line = r.line }
    if r.problem then
      row.problem = r.problem
    elseif all_empty(r.cells) then
      row.empty = true
    elseif problem then
      row.problem = problem
    elseif #r.cells ~= #header then
      row.problem = string.format("has %d field%s but the header has %d column%s",
        #r.cells, #r.cells == 1 and "" or "s", #header, #header == 1 and "" or "s")
    else
      row.body, row.query = fill(row, csv_fields(header, r.cells))
    end
    rows[i] = row
  end
  return rows
end

-- M.from_jsonl(records) -> rows (as from_csv)
function M.from_jsonl(records)
  local rows = {}
  for i, r in ipairs(records) do
    local row = { row = r.row, line = r.line, problem = r.problem }
    if not row.problem then row.body, row.query = fill(row, jsonl_fields(r.value)) end
    rows[i] = row
  end
  return rows
end

-- M.prepare(row, ctx): completes row.query with ctx.query (the flags:
-- integrated_account_id, format, exclusions, remote_query), applies the
-- integration's rules when ctx.integration is set, and builds the request
-- offline. Sets row.target and row.json, or row.problem.
function M.prepare(row, ctx)
  if row.problem then return row end
  for k, v in pairs(ctx.query or {}) do
    if row.query[k] == nil then row.query[k] = v end
  end
  if ctx.integration then
    local problem = M.check_integration(ctx.integration, row.body, row.query)
    if problem then row.problem = problem return row end
  end
  local target, body_json, message = build(row.body, row.query)
  if not target then
    row.problem = message
    return row
  end
  row.target, row.json = target, body_json
  return row
end

-- M.uuid_from(hex) -> a UUID (version 8: derived, RFC 9562) from a
-- SHA-256 hex digest (also for sync's keys).
local function uuid_from(hex)
  local variant = string.format("%x", tonumber(hex:sub(17, 17), 16) % 4 + 8)
  return hex:sub(1, 8) .. "-" .. hex:sub(9, 12) .. "-8" .. hex:sub(14, 16) .. "-"
    .. variant .. hex:sub(18, 20) .. "-" .. hex:sub(21, 32)
end
M.uuid_from = uuid_from

-- M.base_key(base, account, row) -> the Idempotency-Key a row is first
-- sent with in a run: base is the run's identity ("run <uuid>", recorded
-- first in its results file; the file's path for one written before runs
-- had one). The same for the same run, account, row number and request,
-- so a resumed run resends with the key it recorded.
function M.base_key(base, account, row)
  local request = row.target and (row.target .. "\n" .. row.json) or "(not sendable)"
  return uuid_from(sha256(table.concat({ "truto-groups key 1", base, account or "",
    tostring(row.row), request }, "\0")))
end

-- M.fingerprint(account, row) -> hex: what a resumed run compares to know
-- that a recorded row is still the same row: the account and the exact
-- request (target and body bytes), or the problem of a row that cannot be
-- sent.
function M.fingerprint(account, row)
  local request = row.target and ("request\0" .. row.target .. "\n" .. row.json)
    or ("invalid\0" .. tostring(row.problem))
  return sha256(table.concat({ "truto-groups fingerprint 1", account or "", request }, "\0"))
end

-- M.next_key(key) -> the key a definitively failed row is retried with on
-- --resume (a new one, since a server may replay the failure for the old).
function M.next_key(key)
  return uuid_from(sha256("truto-groups retry 1\0" .. key))
end

return M
