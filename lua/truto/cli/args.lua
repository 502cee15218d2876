-- truto.cli.args: the command line of truto-groups: which flags each
-- command takes (one table, read by the parser and the help texts), the
-- parser, and the --help texts. The man page (man/truto-groups.1) says the
-- same at length; keep the two in step.
--
-- Must never read the token from the command line (it would show in ps):
-- it comes from TRUTO_API_TOKEN only. Never exits: returns a usage problem
-- and lets the caller choose exit code 2.

local rows = require "truto.cli.rows"

local M = {}

-- name -> { value = true when it takes one, repeated = true when it may be
-- given more than once, arg = the value's name in help, help = one line }
local FLAGS = {
  name = { value = true, arg = "NAME", help = "the group's name" },
  description = { value = true, arg = "TEXT", help = "the group's description" },
  ["group-type"] = { value = true, arg = "TYPE", help = "department, group or team (a query parameter)" },
  ["remote-data"] = { value = true, arg = "JSON", help = "a JSON object passed as is to the remote API" },
  account = { value = true, arg = "ID",
    help = "the integrated account (default: $TRUTO_INTEGRATED_ACCOUNT_ID)" },
  format = { value = true, arg = "FORMAT", help = "response format: unified (default), raw or normalized" },
  exclude = { value = true, repeated = true, arg = "FIELD", help = "leave FIELD out of the response (repeatable)" },
  ["remote-query"] = { value = true, repeated = true, arg = "K=V",
    help = "a remote_query parameter, K may be a[b] (repeatable)" },
  concurrency = { value = true, arg = "N", help = "rows in flight at once (default 8)" },
  results = { value = true, arg = "FILE", help = "write one JSON line per row to FILE as each completes" },
  resume = { help = "continue the run recorded in --results FILE: skip rows already created" },
  ["resume-changed"] = { value = true, arg = "refuse|new",
    help = "rows that changed since the recorded run: refuse (default) or send as new rows" },
  grace = { value = true, arg = "SECONDS",
    help = "after a signal, wait this long for rows in flight (default 10)" },
  ["dry-run"] = { help = "check every row offline and print what would be sent; send nothing" },
  integration = { value = true, arg = "NAME",
    help = "check rows against " .. table.concat(rows.integration_names(), "|") .. " before sending" },
  ["base-url"] = { value = true, arg = "URL",
    help = "Truto's base URL (default: $TRUTO_BASE_URL or https://api.truto.one)" },
  ["rate-limit-store"] = { value = true, arg = "STORE",
    help = "where the rate budget is counted: process (default), or redis://[[user]:password@]host[:port][/db]"
      .. " to share it with every client of that Redis (default: $TRUTO_RATE_LIMIT_STORE)" },
  help = { help = "show this help" },
  ["page-size"] = { value = true, arg = "N", help = "groups per page asked of Truto (sent as limit)" },
  yes = { help = "do not ask for confirmation (needed when standard input is not a terminal)" },
  match = { value = true, arg = "KEY", help = "match rows to groups by name (default) or id" },
  prune = { help = "also delete the account's groups the file does not name" },
}

local COMMON = { "account", "integration", "base-url", "rate-limit-store", "help" }

M.COMMANDS = {
  create = {
    usage = "truto-groups create --name NAME [options]",
    about = "Create one group and print it as JSON.",
    flags = { "name", "description", "group-type", "remote-data", "format", "exclude", "remote-query" },
    positional = 0,
  },
  import = {
    usage = "truto-groups import FILE [options]",
    about = "Create a group for every row of FILE (CSV with a header row, or JSON Lines;\n"
      .. "\"-\" reads standard input). Columns/keys: name, description, remote_data (JSON\n"
      .. "object), group_type, remote_query (JSON object).",
    flags = { "concurrency", "results", "resume", "resume-changed", "grace", "dry-run" },
    positional = 1,
  },
  -- the commands of truto.cli.commands and truto.cli.sync; `common`
  -- replaces COMMON, `own` gives a flag another meaning for one command,
  -- `more` takes one or more positional arguments named `arg`
  list = {
    usage = "truto-groups list [options]",
    about = "Print every group of the account, following every page: one JSON object a line\n"
      .. "(--format jsonl, the default) or CSV with a header row (--format csv).",
    flags = { "format", "page-size" },
    own = { format = { value = true, arg = "FORMAT", values = { "jsonl", "csv" },
      help = "output: jsonl (default) or csv" } },
    common = { "account", "base-url", "rate-limit-store", "help" },
    positional = 0,
  },
  get = {
    usage = "truto-groups get ID [options]",
    about = "Print one group as JSON.",
    flags = {},
    common = { "account", "base-url", "rate-limit-store", "help" },
    positional = 1, arg = "ID",
  },
  update = {
    usage = "truto-groups update ID [--name NAME] [--description TEXT] [options]",
    about = "Change a group's name, description or remote data and print it as JSON.",
    flags = { "name", "description", "remote-data", "group-type" },
    common = { "account", "base-url", "rate-limit-store", "help" },
    positional = 1, arg = "ID",
  },
  delete = {
    usage = "truto-groups delete ID... [options]",
    about = "Delete groups by id, after asking on the terminal (--yes: without asking).",
    flags = { "yes", "group-type", "concurrency" },
    own = { concurrency = { value = true, arg = "N", help = "deletes in flight at once (default 8)" } },
    positional = 1, more = true, arg = "ID",
  },
  sync = {
    usage = "truto-groups sync FILE [options]",
    about = "Make the account's groups match FILE (CSV or JSON Lines, as for import): create\n"
      .. "the groups it lacks, update those whose name or description differ, and with\n"
      .. "--prune delete those FILE does not name. Rows match groups by name (--match id:\n"
      .. "by an id column). Two groups or rows with one name are reported, never guessed at.",
    flags = { "match", "prune", "dry-run", "results", "resume", "concurrency", "page-size" },
    own = {
      match = { value = true, arg = "KEY", values = { "name", "id" },
        help = "match rows to groups by name (default) or id" },
      results = { value = true, arg = "FILE", help = "write one JSON line per change to FILE as each completes" },
      resume = { help = "continue the run recorded in --results FILE: skip the changes it records as done" },
      ["dry-run"] = { help = "list the account and print the plan (one line per change); send no change" },
      concurrency = { value = true, arg = "N", help = "changes in flight at once (default 8)" },
    },
    positional = 1,
  },
}

-- The commands in the order the overview lists them.
M.ORDER = { "create", "import", "list", "get", "update", "delete", "sync" }

local FORMATS = { unified = true, raw = true, normalized = true }

local function flag_list(command)
  local list = {}
  for _, n in ipairs(M.COMMANDS[command].flags) do list[#list + 1] = n end
  for _, n in ipairs(M.COMMANDS[command].common or COMMON) do list[#list + 1] = n end
  return list
end

-- A command's flag: its own meaning of the name, else the shared one.
local function flag_of(command, name)
  local own = M.COMMANDS[command].own
  return own and own[name] or FLAGS[name]
end

-- M.help(command) -> text (command nil: the overview)
function M.help(command)
  if not command then
    return table.concat({
      "usage: truto-groups COMMAND [options]",
      "",
      "Create groups through Truto's unified user-directory API.",
      "",
      "commands:",
      "  create   create one group and print it as JSON",
      "  import   create a group for every row of a CSV or JSON Lines file",
      "  list     print every group of the account (JSON Lines or CSV)",
      "  get      print one group as JSON",
      "  update   change a group's name or description",
      "  delete   delete groups by id (asks first unless --yes)",
      "  sync     make the account's groups match a CSV or JSON Lines file",
      "",
      "The API token is read from TRUTO_API_TOKEN only (never a flag: flags show in ps).",
      "Exit status: 0 everything asked was done, 1 some of it was not, 2 usage error;",
      "an import stopped by SIGINT, SIGTERM or SIGHUP exits 130, 143 or 129.",
      "Run `truto-groups COMMAND --help` for a command's options; see truto-groups(1).",
      "",
    }, "\n")
  end
  local c = M.COMMANDS[command]
  local lines = { "usage: " .. c.usage, "", c.about, "", "options:" }
  for _, name in ipairs(flag_list(command)) do
    local f = flag_of(command, name)
    local left = "--" .. name .. (f.arg and (" " .. f.arg) or "")
    lines[#lines + 1] = string.format("  %-22s %s", left, f.help)
  end
  lines[#lines + 1] = ""
  lines[#lines + 1] = "environment: TRUTO_API_TOKEN (required to send), TRUTO_BASE_URL,"
  lines[#lines + 1] = "TRUTO_INTEGRATED_ACCOUNT_ID, TRUTO_RATE_LIMIT_STORE."
  lines[#lines + 1] = "Exit status: 0 all done, 1 some not, 2 usage."
  if command == "import" then
    lines[#lines + 1] = "SIGINT, SIGTERM or SIGHUP stops starting rows, waits --grace seconds for those"
    lines[#lines + 1] = "in flight, records every row and exits 130, 143 or 129."
  end
  lines[#lines + 1] = ""
  return table.concat(lines, "\n")
end

-- Parses "a[b][c]=v" into the nested table t (t.a.b.c = "v").
local function put_remote_query(t, text)
  local key, value = text:match("^([^=]+)=(.*)$")
  if not key then return nil, "--remote-query wants K=V (got " .. string.format("%q", text) .. ")" end
  local path = { key:match("^([^%[%]]+)") }
  if not path[1] then return nil, "--remote-query: bad key " .. string.format("%q", key) end
  local rest = key:sub(#path[1] + 1)
  while rest ~= "" do
    local part, after = rest:match("^%[([^%[%]]+)%](.*)$")
    if not part then return nil, "--remote-query: bad key " .. string.format("%q", key) end
    path[#path + 1] = part
    rest = after
  end
  local node = t
  for i = 1, #path - 1 do
    local next_node = node[path[i]]
    if next_node == nil then
      next_node = {}
      node[path[i]] = next_node
    elseif type(next_node) ~= "table" then
      return nil, "--remote-query: " .. key .. " conflicts with an earlier value"
    end
    node = next_node
  end
  if node[path[#path]] ~= nil then
    return nil, "--remote-query: " .. key .. " is given twice"
  end
  node[path[#path]] = value
  return true
end

-- M.parse(argv) -> options | nil, problem
-- options: command, positional (list), one key per flag given (flag name
-- with dashes), repeated flags as lists, remote_query as a nested table.
function M.parse(argv)
  local command = argv[1]
  if command == nil then return nil, "no command given (" .. table.concat(M.ORDER, ", ") .. ")" end
  if command == "--help" or command == "-h" or command == "help" then
    return { command = nil, help = true }
  end
  local spec = M.COMMANDS[command]
  if not spec then
    return nil, "unknown command " .. string.format("%q", command) .. " (" .. table.concat(M.ORDER, ", ") .. ")"
  end
  local allowed = {}
  for _, n in ipairs(flag_list(command)) do allowed[n] = true end
  local o = { command = command, positional = {} }
  local i, only_positional = 2, false
  while i <= #argv do
    local a = argv[i]
    if only_positional or a == "-" or a:sub(1, 1) ~= "-" then
      o.positional[#o.positional + 1] = a
    elseif a == "--" then
      only_positional = true
    elseif a == "-h" then
      o.help = true
    else
      local name, inline = a:match("^%-%-([^=]+)=(.*)$")
      if not name then name = a:match("^%-%-(.+)$") end
      local f = name and flag_of(command, name)
      if not f or not allowed[name] then
        if name == "token" then
          return nil, "there is no --token flag: set TRUTO_API_TOKEN (flags show in ps)"
        end
        return nil, "unknown option " .. a .. " for " .. command
      end
      local value = true
      if f.value then
        if inline then
          value = inline
        else
          i = i + 1
          value = argv[i]
          if value == nil then return nil, "--" .. name .. " needs a value (" .. f.arg .. ")" end
        end
      elseif inline then
        return nil, "--" .. name .. " takes no value"
      end
      if f.repeated then
        o[name] = o[name] or {}
        o[name][#o[name] + 1] = value
      elseif o[name] ~= nil then
        return nil, "--" .. name .. " is given twice"
      else
        o[name] = value
      end
    end
    i = i + 1
  end
  if o.help then return o end
  if spec.more and #o.positional < spec.positional then
    return nil, command .. " needs at least one " .. spec.arg
  elseif not spec.more and #o.positional ~= spec.positional then
    if spec.positional == 0 then
      return nil, command .. " takes no arguments (got " .. string.format("%q", o.positional[1]) .. ")"
    end
    return nil, command .. " needs exactly one " .. (spec.arg or "FILE (or - for standard input)")
  end
  if command == "create" and (o.name == nil or o.name == "") then
    return nil, "create needs --name NAME"
  end
  for name, f in pairs(spec.own or {}) do
    local known = o[name] == nil or not f.values
    for _, v in ipairs(f.values or {}) do known = known or v == o[name] end
    if not known then
      return nil, "--" .. name .. " must be " .. table.concat(f.values, " or ") .. " (got " .. o[name] .. ")"
    end
  end
  if o.format and not (spec.own and spec.own.format) and not FORMATS[o.format] then
    return nil, "--format must be unified, raw or normalized (got " .. o.format .. ")"
  end
  if o.integration then
    local known = false
    for _, n in ipairs(rows.integration_names()) do known = known or n == o.integration end
    if not known then
      return nil, "--integration must be one of " .. table.concat(rows.integration_names(), ", ")
        .. " (got " .. o.integration .. ")"
    end
  end
  if o.concurrency then
    local n = tonumber(o.concurrency)
    if not n or n % 1 ~= 0 or n < 1 or n > 256 then
      return nil, "--concurrency must be a whole number from 1 to 256 (got " .. o.concurrency .. ")"
    end
    o.concurrency = math.tointeger(n)
  end
  if o.grace then
    local n = tonumber(o.grace)
    if not n or n ~= n or n < 0 or n > 86400 then
      return nil, "--grace must be a number of seconds from 0 to 86400 (got " .. o.grace .. ")"
    end
    o.grace = n
  end
  if o["resume-changed"] then
    if o["resume-changed"] ~= "refuse" and o["resume-changed"] ~= "new" then
      return nil, "--resume-changed must be refuse or new (got " .. o["resume-changed"] .. ")"
    end
    if not o.resume then return nil, "--resume-changed goes with --resume" end
  end
  if o["page-size"] then
    local n = tonumber(o["page-size"])
    if not n or n % 1 ~= 0 or n < 1 or n > 100000 then
      return nil, "--page-size must be a whole number from 1 to 100000 (got " .. o["page-size"] .. ")"
    end
    o["page-size"] = math.floor(n)
  end
  if o.resume and not o.results then return nil, "--resume needs --results FILE (the run to continue)" end
  if o["dry-run"] and o.resume then return nil, "--dry-run and --resume do not go together" end
  if o["remote-query"] then
    o.remote_query = {}
    for _, text in ipairs(o["remote-query"]) do
      local ok, why = put_remote_query(o.remote_query, text)
      if not ok then return nil, why end
    end
  end
  return o
end

return M
