-- truto.cli.commands: the one-group and whole-account commands of
-- truto-groups: `list` (every page), `get ID`, `update ID`, `delete ID...`,
-- and the dispatch to `sync` (truto.cli.sync). bin/truto-groups hands each
-- command its parsed options and a `tool` with the command's shared
-- helpers: say(...), usage_error(problem, command), account_of(o),
-- make_client(o).
--
-- Built on the public module (client.groups.*, client:batch). Must never
-- send a change the user did not ask for: `delete` asks on the terminal
-- unless --yes, and refuses (sending nothing) when it cannot ask; never
-- drop a failure: `list` prints what it read, then the error, and exits 1.

local core = require "truto.core"
local api = require "truto.api"
local json = require "truto.cli.json"
local results = require "truto.cli.results"

local M = {}

local EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
M.EXIT_OK, M.EXIT_FAILED, M.EXIT_USAGE = EXIT_OK, EXIT_FAILED, EXIT_USAGE

local null = core.null

-- Whether standard input (0) or error (2) is a terminal.
function M.is_tty(fd)
  return os.execute("[ -t " .. fd .. " ]") == true
end

-- An error as one line, without the module's "truto: " prefix.
function M.describe(err)
  return (tostring(err):gsub("^truto: ", ""))
end

-- A progress line on stderr, redrawn at most every 0.1 s; `done` ends it.
function M.progress(enabled)
  local drawn = -1
  local p = {}
  function p.show(text, force)
    if not enabled then return end
    local t = core.now()
    if not force and t - drawn < 0.1 then return end
    drawn = t
    io.stderr:write("\r\27[Ktruto-groups: ", text)
    io.stderr:flush()
  end
  function p.done()
    if enabled and drawn >= 0 then
      io.stderr:write("\r\27[K")
      io.stderr:flush()
    end
  end
  return p
end

-- Checks a query against the per-integration rules of an operation in
-- truto.api (required and allowed query parameters). nil | problem
function M.check_integration(op, integration, query)
  local rules = integration and op.integrations and op.integrations[integration]
  if not rules then return nil end
  for _, name in ipairs(rules.required_query or {}) do
    if query[name] == nil then
      return rules.label .. " requires " .. name .. " (--" .. name:gsub("_", "-") .. ")"
    end
  end
  for name, values in pairs(rules.allowed or {}) do
    local v, ok = query[name], query[name] == nil
    for _, allowed in ipairs(values) do ok = ok or allowed == v end
    if not ok then
      return string.format("%s allows %s = %s only (got %s)", rules.label, name,
        table.concat(values, " or "), tostring(v))
    end
  end
end

local function print_json(value, tool)
  local text, problem = json.encode(value)
  if not text then
    tool.say("the answer cannot be printed as JSON: ", problem)
    return EXIT_FAILED
  end
  io.stdout:write(text, "\n")
  return EXIT_OK
end

-- The account and a client, or the exit code of the usage error.
local function connect(o, tool)
  local account, why = tool.account_of(o)
  if not account then return nil, tool.usage_error(why, o.command) end
  local client, problem = tool.make_client(o)
  if not client then return nil, tool.usage_error(problem, o.command) end
  return account, client
end

---------------------------------------------------------------- list

-- The CSV columns of `list`: the group's fields from truto.api, but
-- remote_data (the provider's own record; --format jsonl has it).
local CSV_COLUMNS = {}
for _, f in ipairs(api.resources.groups.object) do
  if f.name ~= "remote_data" then CSV_COLUMNS[#CSV_COLUMNS + 1] = f.name end
end
M.CSV_COLUMNS = CSV_COLUMNS

local function csv_cell(v)
  if v == nil or v == null then return "" end
  local text
  if type(v) == "string" then
    text = v
  elseif math.type(v) == "integer" or type(v) == "boolean" then
    text = tostring(v)
  else
    text = json.encode(v) or json.text(tostring(v))
  end
  if text:find('[,"\r\n]') or text:match("^%s") or text:match("%s$") then
    text = '"' .. text:gsub('"', '""') .. '"'
  end
  return text
end

-- One CSV line (without the line break) for a group | nil, problem.
function M.csv_line(group)
  if not json.is_object(group) then return nil, "an item of the list is not a JSON object" end
  local cells = {}
  for i, name in ipairs(CSV_COLUMNS) do cells[i] = csv_cell(group[name]) end
  return table.concat(cells, ",")
end

function M.list(o, tool)
  local account, client = connect(o, tool)
  if not account then return client end
  local csv = o.format == "csv"
  local query = { integrated_account_id = account, limit = o["page-size"] }
  local progress = M.progress(M.is_tty(2))
  if csv then io.stdout:write(table.concat(CSV_COLUMNS, ","), "\n") end
  local count, failure = 0, nil
  for group, err in client.groups.each(query) do
    if group == false then failure = M.describe(err) break end
    local line, problem
    if csv then line, problem = M.csv_line(group) else line, problem = json.encode(group) end
    if not line then failure = "group " .. (count + 1) .. " cannot be printed: " .. problem break end
    io.stdout:write(line, "\n")
    count = count + 1
    progress.show(count .. " groups read")
  end
  client:close()
  io.stdout:flush()
  progress.done()
  if failure then
    tool.say("listing stopped after ", count, " group", count == 1 and "" or "s", ": ", failure)
    return EXIT_FAILED
  end
  return EXIT_OK
end

---------------------------------------------------------------- get, update

-- The end of get and update: the group as JSON, or why there is none.
local function show_group(client, group, err, tool)
  client:close()
  if group == nil then
    tool.say(M.describe(err))
    return EXIT_FAILED
  end
  return print_json(group, tool)
end

function M.get(o, tool)
  local account, client = connect(o, tool)
  if not account then return client end
  local group, err = client.groups.get(o.positional[1], { integrated_account_id = account })
  return show_group(client, group, err, tool)
end

function M.update(o, tool)
  local body = { name = o.name, description = o.description }
  if o["remote-data"] then
    local data, problem = json.decode(o["remote-data"])
    if data == nil then return tool.usage_error("--remote-data is not valid JSON: " .. problem, "update") end
    if not json.is_object(data) then return tool.usage_error("--remote-data must be a JSON object", "update") end
    body.remote_data = data
  end
  if next(body) == nil then
    return tool.usage_error("update needs at least one of --name, --description, --remote-data", "update")
  end
  local account, client = connect(o, tool)
  if not account then return client end
  local group, err = client.groups.update(o.positional[1], body,
    { integrated_account_id = account, group_type = o["group-type"] })
  return show_group(client, group, err, tool)
end

---------------------------------------------------------------- delete

-- Asks on the terminal; true only for an answer starting with y.
local function confirm(question)
  io.stderr:write(question, " [y/N] ")
  io.stderr:flush()
  local answer = io.stdin:read("l")
  return answer ~= nil and answer:match("^%s*[yY]") ~= nil
end

-- One line per id, in the order given:
--   {"id":"1001","result":"deleted"}
--   {"id":"1002","kind":"http","message":"...","result":"failed","status":404}
function M.delete(o, tool)
  local ids = o.positional
  local account, why = tool.account_of(o)
  if not account then return tool.usage_error(why, "delete") end
  local query = { integrated_account_id = account, group_type = o["group-type"] }
  local problem = M.check_integration(api.resources.groups.operations.delete, o.integration, query)
  if problem then
    tool.say("nothing deleted: ", problem)
    return EXIT_FAILED
  end
  local client, client_problem = tool.make_client(o)
  if not client then return tool.usage_error(client_problem, "delete") end
  if not o.yes then
    if not M.is_tty(0) then
      client:close()
      return tool.usage_error("delete asks before deleting, and standard input is not a terminal:"
        .. " pass --yes to delete without asking", "delete")
    end
    local shown = table.concat(ids, ", ", 1, math.min(#ids, 10)) .. (#ids > 10 and ", ..." or "")
    if not confirm(string.format("delete %d group%s (%s) from account %s?", #ids,
        #ids == 1 and "" or "s", shown, account)) then
      client:close()
      tool.say("nothing deleted")
      return EXIT_FAILED
    end
  end
  local calls = {}
  for i, id in ipairs(ids) do
    calls[i] = { resource = "groups", op = "delete", id = id, query = query }
  end
  local progress = M.progress(M.is_tty(2))
  local out, err = client:batch(calls, { concurrency = o.concurrency or 8,
    should_stop = tool.should_stop,
    on_progress = function(done, total) progress.show(done .. "/" .. total .. " deleted") end })
  client:close()
  progress.done()
  if not out then
    tool.say("nothing deleted: ", M.describe(err))
    return EXIT_FAILED
  end
  local deleted = 0
  for i, r in ipairs(out) do
    local fields = { id = ids[i] }
    if r.err then
      local e = r.err
      fields.result = results.outcome_unknown(e) and "unknown" or "failed"
      fields.kind, fields.status, fields.message = e.kind, e.status, json.text(e.message or tostring(e))
    else
      fields.result = "deleted"
      deleted = deleted + 1
    end
    io.stdout:write(results.line(fields), "\n")
  end
  io.stdout:flush()
  tool.say(string.format("%d of %d group%s deleted", deleted, #ids, #ids == 1 and "" or "s"))
  return deleted == #ids and EXIT_OK or EXIT_FAILED
end

---------------------------------------------------------------- dispatch

-- M.run(o, tool) -> exit code, for every command but create and import.
function M.run(o, tool)
  if o.command == "sync" then return require("truto.cli.sync").run(o, tool) end
  return M[o.command](o, tool)
end

return M
