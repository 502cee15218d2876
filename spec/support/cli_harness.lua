-- spec.support.cli_harness: what every command-line spec (spec/cli*_spec.lua,
-- spec/support/cli_groups_cases.lua) runs bin/truto-groups with — a backend
-- (spec/support/cli_backends.lua), a temporary directory, the command as a
-- lua5.4 subprocess to its end or as a job in its own process group, and
-- readers of its JSON-lines output. Spec plumbing only: never starts
-- anything but the backend and the command, never removes a directory it
-- did not make.
--
-- busted's setup/teardown/before_each are not globals of a required module:
-- the spec file hands them in (M.new(backend, busted_api, opts)).
local cjson = require "cjson"
local socket = require "socket"
local truto = require "truto"
local assert = require "luassert"
local sh = require "spec.support.sh"
local shell_quote, read_file, write_file = sh.quote, sh.read_file, sh.write_file

local M = {}

M.read_file, M.write_file = read_file, write_file

local function capture(command)
  local p = assert(io.popen(command))
  local out = p:read("*a")
  p:close()
  return out
end
M.capture = capture

local ROOT = capture("cd " .. shell_quote((debug.getinfo(1, "S").source:gsub("^@", ""):gsub("[^/]*$", "")))
  .. "/../.. && pwd -P"):gsub("\n$", "")
M.ROOT = ROOT
local BIN = ROOT .. "/bin/truto-groups"
local CORE = ROOT .. "/build/lua5.4/truto/core.so"

-- Where the command's lua5.4 finds truto.core: the suite's own LUA_CPATH
-- when the suite runs on lua5.4 (so `make check` watches the command's
-- processes too), else this tree's lua5.4 build. Made absolute, since the
-- command runs in a temporary directory.
local function command_cpath()
  local given = os.getenv("LUA_CPATH")
  if (os.getenv("LUA") or "lua5.4") ~= "lua5.4" or not given or given == "" then
    return ROOT .. "/build/lua5.4/?.so;;"
  end
  local parts = {}
  for entry in (given .. ";"):gmatch("([^;]*);") do
    if entry ~= "" and entry:sub(1, 1) ~= "/" then entry = ROOT .. "/" .. entry:gsub("^%./", "") end
    parts[#parts + 1] = entry
  end
  return table.concat(parts, ";")
end

-- Polls check() every 50 ms until it returns a value (returned), raising
-- after `seconds` (default 60).
local function wait_for(what, check, seconds)
  local deadline = socket.gettime() + (seconds or 60)
  while socket.gettime() < deadline do
    local value = check()
    if value then return value end
    socket.sleep(0.05)
  end
  error("timed out waiting for " .. what, 2)
end
M.wait_for = wait_for

-- Every line of JSON-lines text, decoded.
function M.decode_lines(text)
  local lines = {}
  for line in (text or ""):gmatch("[^\n]+") do lines[#lines + 1] = cjson.decode(line) end
  return lines
end

-- The lines of an import's results about rows (the lines about the run,
-- its identity and keys, are left out).
function M.row_lines(text)
  local lines = {}
  for _, value in ipairs(M.decode_lines(text)) do
    if value.run == nil then lines[#lines + 1] = value end
  end
  return lines
end

-- Row lines by row number; two lines for one row is an error.
function M.by_row(lines)
  local rows = {}
  for _, line in ipairs(lines) do
    assert(rows[line.row] == nil, "two lines for row " .. tostring(line.row))
    rows[line.row] = line
  end
  return rows
end

function M.find(list, predicate)
  for _, v in ipairs(list) do if predicate(v) then return v end end
end

function M.count(list, predicate)
  local n = 0
  for _, v in ipairs(list) do if predicate(v) then n = n + 1 end end
  return n
end

-- M.new(backend, api, opts) -> h: the harness. Before each spec the
-- temporary directory h.tmp is emptied and h.account is the Coupa account;
-- opts.account_env = false leaves TRUTO_INTEGRATED_ACCOUNT_ID unset for the
-- command (default: h.account), opts.reset = true resets the whole backend
-- (objects too; backend.instance()).
function M.new(backend, api, opts)
  opts = opts or {}
  local setup, teardown, before_each = api.setup, api.teardown, api.before_each
  local h = {}

  setup(function()
    if not read_file(CORE) then
      assert(os.execute("make -C " .. shell_quote(ROOT) .. " LUA=lua5.4 build >/dev/null"))
    end
    h.server = backend.start()
    h.tmp = capture("mktemp -d /tmp/truto-groups-cmds.XXXXXX"):gsub("\n$", "")
  end)

  teardown(function()
    if h.client then h.client:close() end
    backend.stop()
    if h.tmp and h.tmp:match("^/tmp/truto%-groups%-cmds%.") then os.execute("rm -rf " .. shell_quote(h.tmp)) end
  end)

  -- The environment the command runs in: this tree, the backend, no stray
  -- TRUTO_* or LUA_INIT from whoever runs the specs. opts.env: name ->
  -- value (false: leave unset).
  local function environment(run_opts)
    local vars = {
      LUA_PATH = ROOT .. "/lua/?.lua;" .. ROOT .. "/?.lua;;", LUA_CPATH = command_cpath(),
      TRUTO_API_TOKEN = h.server.token, TRUTO_BASE_URL = h.server.url,
      TRUTO_INTEGRATED_ACCOUNT_ID = opts.account_env ~= false and h.account or nil,
    }
    for k, v in pairs(h.server.env or {}) do vars[k] = v end
    for k, v in pairs(run_opts and run_opts.env or {}) do vars[k] = v or nil end
    local parts = { "env -u TRUTO_API_TOKEN -u TRUTO_BASE_URL -u TRUTO_INTEGRATED_ACCOUNT_ID",
      "-u LUA_INIT -u LUA_INIT_5_4" }
    local names = {}
    for k in pairs(vars) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. shell_quote(vars[k]) end
    return table.concat(parts, " ")
  end

  function h.command_line(argv, run_opts)
    local quoted = {}
    for i, a in ipairs(argv) do quoted[i] = shell_quote(a) end
    return environment(run_opts) .. " lua5.4 " .. shell_quote(BIN) .. " " .. table.concat(quoted, " ")
  end

  -- Runs the command to its end: { code, out, err }. run_opts.stdin: text
  -- for its standard input; run_opts.env as above.
  function h.run(argv, run_opts)
    run_opts = run_opts or {}
    local stdin = "/dev/null"
    if run_opts.stdin then
      stdin = h.tmp .. "/stdin"
      write_file(stdin, run_opts.stdin)
    end
    os.execute("cd " .. shell_quote(h.tmp) .. " && " .. h.command_line(argv, run_opts) .. " <" .. shell_quote(stdin)
      .. " >out 2>err; echo $? >rc")
    return {
      code = tonumber(read_file(h.tmp .. "/rc")),
      out = read_file(h.tmp .. "/out") or "",
      err = read_file(h.tmp .. "/err") or "",
    }
  end

  -- Runs the command on a terminal (script(1)), `typed` on its input;
  -- returns everything the terminal showed.
  function h.run_on_tty(argv, typed)
    local feed = typed and ("printf " .. shell_quote(typed) .. " | ") or ""
    os.execute("cd " .. shell_quote(h.tmp) .. " && " .. feed .. "script -qec "
      .. shell_quote(h.command_line(argv)) .. " /dev/null " .. (typed and "" or "</dev/null ") .. ">tty.out 2>&1")
    return read_file(h.tmp .. "/tty.out") or ""
  end

  h.wait_for = wait_for

  -- Starts the command as a shell's background job in a process group of
  -- its own (the group's leader, a shell that ignores SIGINT, only waits to
  -- write the exit code), as a terminal runs a foreground job; returns the
  -- group id and the command's pid. h.finished() waits for its end.
  -- `setsid -f -w` stays the leader's parent and reaps it the moment it
  -- exits: an orphaned leader would stay in the group as a zombie until
  -- init reaps it, which takes seconds in some containers.
  function h.start(argv)
    for _, f in ipairs({ "rc", "pid", "cmdpid" }) do os.remove(h.tmp .. "/" .. f) end
    local script = "trap '' INT; echo $$ > pid; " .. h.command_line(argv)
      .. " </dev/null >out 2>err & echo $! > cmdpid; wait $!; echo $? > rc"
    os.execute("cd " .. shell_quote(h.tmp) .. " && setsid -f -w sh -c " .. shell_quote(script)
      .. " >/dev/null 2>&1 &")
    local group = wait_for("the job to start", function()
      local pid = read_file(h.tmp .. "/pid")
      return pid and pid:match("%d+")
    end)
    local pid = wait_for("the command to start", function()
      local p = read_file(h.tmp .. "/cmdpid")
      return p and p:match("%d+")
    end)
    return group, pid
  end

  function h.finished()
    return wait_for("the command to exit", function()
      local rc = read_file(h.tmp .. "/rc")
      return rc and rc:match("%d+") and {
        code = tonumber(rc), out = read_file(h.tmp .. "/out") or "", err = read_file(h.tmp .. "/err") or "",
      }
    end)
  end

  -- Sends signal `name` to `target` (a pid, or "-" .. group for a group).
  function h.signal(name, target)
    assert(os.execute("/bin/kill -s " .. name .. " -- " .. target) ~= false)
  end

  function h.ctrl_c(group) h.signal("INT", "-" .. group) end

  -- The groups of the account, as `list` prints them.
  function h.groups()
    local r = h.run({ "list" })
    assert.equal(0, r.code, r.err)
    return M.decode_lines(r.out)
  end

  function h.by_name(name)
    return M.find(h.groups(), function(g) return g.name == name end)
  end

  -- Makes the account hold exactly these groups ({ name, description }),
  -- through the API itself, with the library in this process (deletes
  -- every group, then creates these in order: what `import --concurrency 1`
  -- sends, an empty description left out, without a command process per
  -- step), and forgets the requests that took. Returns the groups, with
  -- their ids, as `list` prints them.
  function h.seed(list)
    backend.reset()
    h.client = h.client or assert(truto.new { token = h.server.token, base_url = h.server.url })
    local query = { integrated_account_id = h.account }
    local old = {}
    for g, err in h.client.groups.each(query) do
      assert(g, tostring(err))
      old[#old + 1] = g.id
    end
    for _, id in ipairs(old) do assert(h.client.groups.delete(id, query)) end
    for _, g in ipairs(list) do
      local description = g[2] ~= "" and g[2] or nil
      assert(h.client.groups.create({ name = g[1], description = description }, query))
    end
    local groups = h.groups()
    assert.equal(#list, #groups)
    backend.reset()
    return groups
  end

  function h.requests() return backend.requests() end
  function h.script(steps) return backend.script(steps) end

  before_each(function()
    if opts.reset then backend.instance():reset() end
    h.account = h.server.accounts.coupa
    os.execute("rm -rf " .. shell_quote(h.tmp) .. "/*")
  end)

  return h
end

-- M.mock_harness(api) -> h: the harness over the real mock (api: busted's
-- setup, teardown and before_each), reset whole
-- before each spec, the command given its account by flags only
-- (TRUTO_INTEGRATED_ACCOUNT_ID unset); h.mock() is the running mock
-- (spec/support/mock.lua: requests, stats, script, reset).
function M.mock_harness(api)
  local backend = require("spec.support.cli_backends").mock()
  local h = M.new(backend, api, { account_env = false, reset = true })
  h.mock = backend.instance
  return h
end

-- A LUA_INIT chunk that gives every client the command makes (truto.new)
-- these config fields (numbers): waits no flag of the command shortens,
-- for specs about something else than those waits.
function M.client_config_init(fields)
  local names, sets = {}, {}
  for k in pairs(fields) do names[#names + 1] = k end
  table.sort(names)
  for _, k in ipairs(names) do sets[#sets + 1] = ("c.%s = %s"):format(k, assert(tonumber(fields[k]))) end
  return "local t = require 'truto'; local new = t.new; t.new = function(c) "
    .. table.concat(sets, "; ") .. "; return new(c) end"
end

return M
