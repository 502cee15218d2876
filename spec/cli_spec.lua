-- Specs of bin/truto-groups, the command-line tool: the real command run as
-- a subprocess (lua5.4, this tree's modules via LUA_PATH/LUA_CPATH) against
-- the real mock, asserting what the mock received, what the command printed
-- and wrote, and its exit code. Interrupted runs are driven with real
-- SIGINTs sent to the command's process group, as a terminal's Ctrl-C is,
-- while the mock holds a request in flight (a scripted `delay`).
-- This file runs under any Lua busted runs on; the command is always lua5.4.
local mock = require "spec.support.mock"
local cjson = require "cjson"
local socket = require "socket"

local sh = require "spec.support.sh"
local shell_quote, read_file, write_file = sh.quote, sh.read_file, sh.write_file

local function capture(command)
  local p = assert(io.popen(command))
  local out = p:read("*a")
  p:close()
  return out
end

local ROOT = capture("cd " .. shell_quote((debug.getinfo(1, "S").source:gsub("^@", ""):gsub("[^/]*$", "")))
  .. "/.. && pwd -P"):gsub("\n$", "")
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

-- Makes the command's lua5.4 see no truto.client.create_many, so the
-- sequential fallback runs (in the command and in its worker process).
local SEQUENTIAL_INIT = "local c = require 'truto.client'; local new = c.new; "
  .. "c.new = function(...) local cl, e = new(...); if cl then cl.groups.create_many = nil end; "
  .. "return cl, e end"

local function wait_for(what, check, seconds)
  local deadline = socket.gettime() + (seconds or 30)
  while socket.gettime() < deadline do
    local value = check()
    if value then return value end
    socket.sleep(0.05)
  end
  error("timed out waiting for " .. what, 2)
end

local function decode_lines(text)
  local lines = {}
  for line in (text or ""):gmatch("[^\n]+") do lines[#lines + 1] = cjson.decode(line) end
  return lines
end

local function by_row(lines)
  local rows = {}
  for _, line in ipairs(lines) do
    assert(rows[line.row] == nil, "two lines for row " .. tostring(line.row))
    rows[line.row] = line
  end
  return rows
end

local function count(list, predicate)
  local n = 0
  for _, v in ipairs(list) do if predicate(v) then n = n + 1 end end
  return n
end

describe("the truto-groups command", function()
  local m, tmp

  setup(function()
    if not read_file(CORE) then
      assert(os.execute("make -C " .. shell_quote(ROOT) .. " LUA=lua5.4 build >/dev/null"))
    end
    m = mock.start()
    tmp = capture("mktemp -d /tmp/truto-groups-spec.XXXXXX"):gsub("\n$", "")
  end)

  teardown(function()
    if m then m:stop() end
    if tmp and tmp:match("^/tmp/truto%-groups%-spec%.") then os.execute("rm -rf " .. shell_quote(tmp)) end
  end)

  before_each(function()
    m:reset()
    os.execute("rm -rf " .. shell_quote(tmp) .. "/*")
  end)

  -- The environment the command runs in: this tree, the mock, no stray
  -- TRUTO_* or LUA_INIT from whoever runs the specs. opts.env: name ->
  -- value (false: leave unset).
  local function environment(opts)
    local vars = {
      LUA_PATH = ROOT .. "/lua/?.lua;;", LUA_CPATH = command_cpath(),
      TRUTO_API_TOKEN = m.token, TRUTO_BASE_URL = m.url,
    }
    for k, v in pairs(opts and opts.env or {}) do vars[k] = v or nil end
    local parts = { "env -u TRUTO_API_TOKEN -u TRUTO_BASE_URL -u TRUTO_INTEGRATED_ACCOUNT_ID",
      "-u LUA_INIT -u LUA_INIT_5_4" }
    local names = {}
    for k in pairs(vars) do names[#names + 1] = k end
    table.sort(names)
    for _, k in ipairs(names) do parts[#parts + 1] = k .. "=" .. shell_quote(vars[k]) end
    return table.concat(parts, " ")
  end

  local function command_line(argv, opts)
    local quoted = {}
    for i, a in ipairs(argv) do quoted[i] = shell_quote(a) end
    return environment(opts) .. " lua5.4 " .. shell_quote(BIN) .. " " .. table.concat(quoted, " ")
  end

  -- Runs the command to its end. opts.stdin: text for its standard input.
  local function run(argv, opts)
    opts = opts or {}
    local stdin = "/dev/null"
    if opts.stdin then
      stdin = tmp .. "/stdin"
      write_file(stdin, opts.stdin)
    end
    os.execute("cd " .. shell_quote(tmp) .. " && " .. command_line(argv, opts) .. " <" .. shell_quote(stdin)
      .. " >out 2>err; echo $? >rc")
    return {
      code = tonumber(read_file(tmp .. "/rc")),
      out = read_file(tmp .. "/out") or "",
      err = read_file(tmp .. "/err") or "",
    }
  end

  -- Starts the command in its own process group, the way a shell runs a
  -- foreground job, and returns that group's id. Its exit code lands in
  -- tmp/rc; the group's first process ignores SIGINT only so it can write it.
  local function start(argv, opts)
    os.remove(tmp .. "/rc")
    os.remove(tmp .. "/pid")
    local script = "trap '' INT; echo $$ > pid; " .. command_line(argv, opts)
      .. " </dev/null >out 2>err; echo $? > rc"
    os.execute("cd " .. shell_quote(tmp) .. " && setsid sh -c " .. shell_quote(script) .. " >/dev/null 2>&1 &")
    return wait_for("the command to start", function()
      local pid = read_file(tmp .. "/pid")
      return pid and pid:match("%d+")
    end)
  end

  local function finished()
    return wait_for("the command to exit", function()
      local rc = read_file(tmp .. "/rc")
      return rc and rc:match("%d+") and {
        code = tonumber(rc), out = read_file(tmp .. "/out") or "", err = read_file(tmp .. "/err") or "",
      }
    end, 60)
  end

  local function ctrl_c(group)
    assert(os.execute("/bin/kill -s INT -- -" .. group) ~= false)
  end

  local function created_records()
    local out = {}
    for _, r in ipairs(m:requests()) do
      if r.created then out[#out + 1] = r end
    end
    return out
  end

  local ACCOUNT

  before_each(function() ACCOUNT = m.accounts.coupa end)

  describe("create", function()
    it("creates one group from the flags, prints it as JSON and sends exactly that request", function()
      local r = run({ "create", "--name", "Platform", "--description", 'Core, "infra" team',
        "--group-type", "team", "--remote-data", '{"cost_center":12345678901234567,"tags":[],"ratio":0.1}',
        "--remote-query", "filter[status]=active", "--exclude", "created_at", "--exclude=updated_at",
        "--account", ACCOUNT })
      assert.equal(0, r.code)
      local group = cjson.decode(r.out)
      assert.equal("Platform", group.name)
      assert.is_string(group.id)
      local sent = m:last()
      assert.equal("POST", sent.method)
      assert.equal("/unified/user-directory/groups", sent.path)
      assert.equal("group_type=team&integrated_account_id=" .. ACCOUNT
        .. "&remote_query%5Bfilter%5D%5Bstatus%5D=active"
        .. "&truto_exclude_fields%5B%5D=created_at&truto_exclude_fields%5B%5D=updated_at", sent.query)
      assert.equal('{"description":"Core, \\"infra\\" team","name":"Platform",'
        .. '"remote_data":{"cost_center":12345678901234567,"ratio":0.1,"tags":[]}}', sent.body)
      assert.equal("Bearer " .. m.token, sent.headers.authorization)
      assert.is_string(sent.idempotency_key)
      assert.equal(1, m:stats().created)
    end)

    it("takes the account and base URL from the environment when no flag gives them", function()
      local r = run({ "create", "--name", "Ops" },
        { env = { TRUTO_INTEGRATED_ACCOUNT_ID = m.accounts.jira } })
      assert.equal(0, r.code)
      assert.equal("integrated_account_id=" .. m.accounts.jira, m:last().query)
    end)

    it("prefers --base-url to TRUTO_BASE_URL", function()
      local r = run({ "create", "--name", "Ops", "--account", ACCOUNT, "--base-url", m.url .. "/" },
        { env = { TRUTO_BASE_URL = "http://127.0.0.1:9/nothing-listens-here" } })
      assert.equal(0, r.code)
      assert.equal(1, m:stats().created)
    end)

    it("exits 1 with Truto's message when Truto refuses the group", function()
      local r = run({ "create", "--name", "Ops", "--account", m.accounts.coupa_sandbox })
      assert.equal(1, r.code)
      assert.equal("", r.out)
      assert.matches("http 405: Sandbox integrated accounts are read%-only", r.err)
    end)

    it("checks --integration rules before sending anything", function()
      local r = run({ "create", "--name", "Ops", "--group-type", "department",
        "--account", m.accounts.blackline, "--integration", "blackline" })
      assert.equal(1, r.code)
      assert.matches("BlackLine allows group_type = team only %(got department%)", r.err)
      r = run({ "create", "--name", "Ops", "--description", "d", "--account", m.accounts.jira,
        "--integration", "jira" })
      assert.equal(1, r.code)
      assert.matches("Jira does not support description", r.err)
      assert.equal(0, m:stats().requests)
      r = run({ "create", "--name", "Ops", "--group-type", "team", "--account", m.accounts.blackline,
        "--integration", "blackline" })
      assert.equal(0, r.code)
      assert.equal(1, m:stats().created)
    end)

    it("exits 2 on usage errors and sends nothing", function()
      local A = ACCOUNT
      local cases = {
        { {}, "no command" },
        { { "frobnicate" }, "unknown command" },
        { { "create", "--account", A }, "create needs %-%-name" },
        { { "create", "--name", "X", "--account", A, "--token", "t" }, "there is no %-%-token flag" },
        { { "create", "--name", "X", "--account", A, "--colour", "red" }, "unknown option %-%-colour" },
        { { "create", "--name", "X", "--account", A, "--format", "stream" }, "%-%-format must be" },
        { { "create", "--name", "X", "--account", A, "--remote-data", "{nope" },
          "%-%-remote%-data is not valid JSON" },
        { { "create", "--name", "X", "--account", A, "--remote-data", "[1]" }, "must be a JSON object" },
        { { "create", "--name", "X", "--account", A, "--remote-query", "novalue" }, "K=V" },
        { { "create", "--name", "X", "--account", "not-a-uuid" }, "%-%-account: integrated_account_id" },
        { { "create", "--name", "X", "--account", A, "--integration", "slack" },
          "%-%-integration must be one of" },
        { { "create", "--account", A, "--name" }, "needs a value" },
        { { "import", "--account", A }, "needs exactly one FILE" },
        { { "import", "a.csv", "--account", A, "--resume" }, "%-%-resume needs %-%-results" },
        { { "import", "a.csv", "--account", A, "--concurrency", "0" }, "%-%-concurrency must be" },
        { { "import", "missing.csv", "--account", A }, "cannot read missing.csv" },
      }
      for _, case in ipairs(cases) do
        local r = run(case[1])
        assert.equal(2, r.code, table.concat(case[1], " "))
        assert.matches(case[2], r.err)
        assert.equal("", r.out)
      end
      local r = run({ "create", "--name", "X", "--account", ACCOUNT }, { env = { TRUTO_API_TOKEN = false } })
      assert.equal(2, r.code)
      assert.matches("TRUTO_API_TOKEN is not set", r.err)
      r = run({ "create", "--name", "X" })
      assert.equal(2, r.code)
      assert.matches("no integrated account", r.err)
      assert.equal(0, m:stats().requests)
    end)

    it("prints help for every command and exits 0", function()
      local r = run({ "--help" })
      assert.equal(0, r.code)
      assert.matches("usage: truto%-groups COMMAND", r.out)
      r = run({ "create", "--help" })
      assert.equal(0, r.code)
      for _, flag in ipairs({ "--name", "--description", "--group-type", "--remote-data", "--account",
        "--format", "--exclude", "--remote-query", "--integration", "--base-url", "--help" }) do
        assert.truthy(r.out:find(flag, 1, true), flag)
      end
      r = run({ "import", "--help" })
      assert.equal(0, r.code)
      for _, flag in ipairs({ "--account", "--concurrency", "--results", "--resume", "--dry-run",
        "--integration", "--base-url", "--help" }) do
        assert.truthy(r.out:find(flag, 1, true), flag)
      end
    end)
  end)

  describe("import", function()
    local CSV = table.concat({
      "name,description,remote_data,group_type",
      'Platform,"Core, the ""infra"" team","{""cost_center"":12345678901234567,""tags"":[]}",team',
      "Sales,,,",
      '"Field\nOps",two lines,,group',
      "",
    }, "\r\n")

    it("creates one group per CSV row, keeping quoted commas, quotes, line breaks and big integers exactly",
      function()
        write_file(tmp .. "/groups.csv", CSV)
        local r = run({ "import", "groups.csv", "--account", ACCOUNT, "--results", "results.jsonl" })
        assert.equal(0, r.code)
        assert.matches("3 rows: 3 created", r.err)
        local bodies, queries = {}, {}
        for _, rec in ipairs(m:requests()) do
          bodies[#bodies + 1] = rec.body
          queries[#queries + 1] = rec.query
        end
        table.sort(bodies)
        assert.same({
          '{"description":"Core, the \\"infra\\" team","name":"Platform",'
            .. '"remote_data":{"cost_center":12345678901234567,"tags":[]}}',
          '{"description":"two lines","name":"Field\\nOps"}',
          '{"name":"Sales"}',
        }, bodies)
        table.sort(queries)
        assert.same({
          "group_type=group&integrated_account_id=" .. ACCOUNT,
          "group_type=team&integrated_account_id=" .. ACCOUNT,
          "integrated_account_id=" .. ACCOUNT,
        }, queries)
        local lines = decode_lines(read_file(tmp .. "/results.jsonl"))
        assert.equal(3, #lines)
        local rows = by_row(lines)
        local keys = {}
        for _, rec in ipairs(m:requests()) do keys[rec.idempotency_key] = rec.created end
        for row = 1, 3 do
          assert.equal("created", rows[row].result)
          assert.equal(keys[rows[row].idempotency_key], rows[row].id)
        end
        assert.equal(2, rows[1].line)
        assert.equal(4, rows[3].line)
        assert.equal(3, m:stats().created)
      end)

    it("reads JSON Lines from standard input and prints the result lines when there is no --results", function()
      local jsonl = '{"name":"A","remote_data":{"big":9007199254740993,"nested":{"x":[1,2.5,null]}}}\n'
        .. '\n{"name":"B","group_type":"department","description":null}\n'
      local r = run({ "import", "-", "--account", ACCOUNT }, { stdin = jsonl })
      assert.equal(0, r.code)
      local lines = decode_lines(r.out)
      assert.equal(2, #lines)
      local rows = by_row(lines)
      assert.equal("created", rows[1].result)
      assert.equal(1, rows[1].line)
      assert.equal(3, rows[2].line)
      local bodies = {}
      for _, rec in ipairs(m:requests()) do bodies[#bodies + 1] = rec.body end
      table.sort(bodies)
      assert.same({ '{"name":"A","remote_data":{"big":9007199254740993,"nested":{"x":[1,2.5,null]}}}',
        '{"name":"B"}' }, bodies)
    end)

    it("turns malformed rows into failed lines with a clear message and still creates the good rows", function()
      write_file(tmp .. "/groups.csv", table.concat({
        "name,remote_data",
        "Good one,",
        "Too,many,fields",
        'Bad JSON,"{""a"":}"',
        'Not object,"[1,2]"',
        'Broken "quote,',
        '"Unclosed,{}',
        "Good two,{}",
        "",
      }, "\n"))
      local r = run({ "import", "groups.csv", "--account", ACCOUNT, "--results", "r.jsonl" })
      assert.equal(1, r.code)
      local rows = by_row(decode_lines(read_file(tmp .. "/r.jsonl")))
      local expected = {
        [2] = "has 3 fields but the header has 2 columns",
        [3] = "column remote_data is not valid JSON",
        [4] = "column remote_data must be a JSON object",
        [5] = "a quote inside unquoted field 1",
        [6] = "a quoted field is never closed",
      }
      for row = 1, 7 do
        if expected[row] then
          assert.equal("failed", rows[row].result)
          assert.equal("invalid_row", rows[row].kind)
          assert.truthy(rows[row].message:find(expected[row], 1, true), rows[row].message)
        else
          assert.equal("created", rows[row].result)
        end
      end
      assert.equal(2, m:stats().created)
      assert.equal(2, m:stats().requests)
      assert.matches("7 rows: 2 created, 5 failed", r.err)
    end)

    it("fails every row, sending nothing, when the CSV header names an unknown column", function()
      write_file(tmp .. "/groups.csv", "name,colour\nA,red\nB,blue\n")
      local r = run({ "import", "groups.csv", "--account", ACCOUNT, "--results", "r.jsonl" })
      assert.equal(1, r.code)
      local lines = decode_lines(read_file(tmp .. "/r.jsonl"))
      assert.equal(2, #lines)
      for _, line in ipairs(lines) do
        assert.equal("failed", line.result)
        assert.matches('unknown column "colour"', line.message)
      end
      assert.equal(0, m:stats().requests)
    end)

    it("validates every row offline in a dry run, prints the exact requests and sends nothing", function()
      write_file(tmp .. "/groups.csv", CSV .. "Bad,,,teams\r\n")
      local r = run({ "import", "groups.csv", "--account", ACCOUNT, "--dry-run" })
      assert.equal(1, r.code)
      assert.equal(0, m:stats().requests)
      local out = {}
      for line in r.out:gmatch("[^\n]+") do out[#out + 1] = line end
      assert.equal(4, #out)
      assert.equal('{"row":1,"line":2,"method":"POST","url":"' .. m.url
        .. '/unified/user-directory/groups?group_type=team&integrated_account_id=' .. ACCOUNT
        .. '","body":{"description":"Core, the \\"infra\\" team","name":"Platform",'
        .. '"remote_data":{"cost_center":12345678901234567,"tags":[]}}}', out[1])
      local bad = cjson.decode(out[4])
      assert.equal("invalid", bad.result)
      assert.matches("group_type", bad.message)
      assert.matches("dry run: 4 rows, 3 would be sent, 1 invalid", r.err)
      write_file(tmp .. "/ok.csv", CSV)
      r = run({ "import", "ok.csv", "--account", ACCOUNT, "--dry-run" }, { env = { TRUTO_API_TOKEN = false } })
      assert.equal(0, r.code)
      assert.equal(0, m:stats().requests)
    end)

    it("checks rows against the integration's requirements before sending anything", function()
      write_file(tmp .. "/bl.csv", table.concat({
        "name,group_type,description",
        "Team A,team,",
        ",team,",
        "Team C,,",
        "Team D,department,",
        "Team E,team,described",
        "",
      }, "\n"))
      local r = run({ "import", "bl.csv", "--account", m.accounts.blackline, "--integration", "blackline",
        "--results", "r.jsonl" })
      assert.equal(1, r.code)
      local rows = by_row(decode_lines(read_file(tmp .. "/r.jsonl")))
      assert.equal("created", rows[1].result)
      assert.equal("BlackLine requires name", rows[2].message)
      assert.equal("BlackLine requires group_type", rows[3].message)
      assert.equal("BlackLine allows group_type = team only (got department)", rows[4].message)
      assert.matches("BlackLine does not support description", rows[5].message)
      assert.equal(1, m:stats().requests)
      assert.equal("group_type=team&integrated_account_id=" .. m.accounts.blackline, m:last().query)

      m:reset()
      write_file(tmp .. "/jira.jsonl", '{"name":"J1"}\n{"description":"no name"}\n')
      r = run({ "import", "jira.jsonl", "--account", m.accounts.jira, "--integration", "jira" })
      assert.equal(1, r.code)
      rows = by_row(decode_lines(r.out))
      assert.equal("created", rows[1].result)
      assert.equal("Jira requires name", rows[2].message)
      assert.equal(1, m:stats().requests)
    end)

    it("records Truto's refusals as failed rows with the error kind, status and message, and exits 1", function()
      write_file(tmp .. "/bl.csv", "name,group_type\nTeam A,team\nTeam B,\n")
      local r = run({ "import", "bl.csv", "--account", m.accounts.blackline, "--results", "r.jsonl" })
      assert.equal(1, r.code)
      local rows = by_row(decode_lines(read_file(tmp .. "/r.jsonl")))
      assert.equal("created", rows[1].result)
      assert.equal("failed", rows[2].result)
      assert.equal("http", rows[2].kind)
      assert.equal(400, rows[2].status)
      assert.matches("BlackLine requires query parameters group_type", rows[2].message)
    end)

    it("refuses to start a new run over a results file that already records one", function()
      write_file(tmp .. "/g.csv", "name\nA\n")
      write_file(tmp .. "/r.jsonl", '{"row":1,"result":"created","id":"1"}\n')
      local r = run({ "import", "g.csv", "--account", ACCOUNT, "--results", "r.jsonl" })
      assert.equal(2, r.code)
      assert.matches("already records a run: pass %-%-resume", r.err)
      assert.equal(0, m:stats().requests)
    end)

    it("on --resume skips created rows, resends unknown ones with their key and failed ones with a new key",
      function()
        write_file(tmp .. "/g.csv", "name\nA\nB\nC\n")
        -- A is created; B is refused (400: nothing was created); C gets 502
        -- on every attempt (4 with the client's 3 retries): it may exist
        m:script({ {}, { status = 400 }, { status = 502 }, { status = 502 }, { status = 502 }, { status = 502 } })
        local r = run({ "import", "g.csv", "--account", ACCOUNT, "--results", "r.jsonl", "--concurrency", "1" })
        assert.equal(1, r.code)
        local first = by_row(decode_lines(read_file(tmp .. "/r.jsonl")))
        assert.equal("created", first[1].result)
        assert.equal("failed", first[2].result)
        assert.equal(400, first[2].status)
        assert.equal("unknown", first[3].result)
        assert.equal(502, first[3].status)
        assert.equal(4, first[3].attempts)
        assert.equal(1, m:stats().created)
        m:reset()
        r = run({ "import", "g.csv", "--account", ACCOUNT, "--results", "r.jsonl", "--resume" })
        assert.equal(0, r.code)
        assert.matches("3 rows: 3 created %(1 by an earlier run%)", r.err)
        local sent = {}
        for _, rec in ipairs(m:requests()) do sent[rec.body] = rec end
        assert.equal(2, #m:requests())
        assert.is_nil(sent['{"name":"A"}'])
        assert.are_not.equal(first[2].idempotency_key, sent['{"name":"B"}'].idempotency_key)
        assert.equal(first[3].idempotency_key, sent['{"name":"C"}'].idempotency_key)
        local lines = decode_lines(read_file(tmp .. "/r.jsonl"))
        assert.equal(5, #lines)
        local final = {}
        for _, l in ipairs(lines) do final[l.row] = l end
        for row = 1, 3 do assert.equal("created", final[row].result) end
        assert.equal(sent['{"name":"B"}'].idempotency_key, final[2].idempotency_key)
        assert.equal(2, m:stats().created)
      end)

    it("draws a progress bar on stderr only when it is a terminal", function()
      write_file(tmp .. "/g.csv", "name\nA\nB\n")
      local r = run({ "import", "g.csv", "--account", ACCOUNT, "--results", "plain.jsonl" })
      assert.equal(0, r.code)
      assert.is_nil(r.err:find("\r", 1, true))
      assert.is_nil(r.err:find("ETA", 1, true))
      os.execute("cd " .. shell_quote(tmp) .. " && script -qec " .. shell_quote(command_line({ "import", "g.csv",
        "--account", ACCOUNT, "--results", "tty.jsonl" })) .. " /dev/null </dev/null >tty.out 2>&1")
      local shown = read_file(tmp .. "/tty.out") or ""
      assert.truthy(shown:find("2/2", 1, true), shown)
      assert.truthy(shown:find("ETA", 1, true), shown)
      assert.equal(2, #decode_lines(read_file(tmp .. "/tty.jsonl")))
    end)
  end)

  local variants = {
    { name = "through create_many", env = {} },
    { name = "through sequential creates (no create_many)", env = { LUA_INIT = SEQUENTIAL_INIT } },
  }

  for _, variant in ipairs(variants) do
    describe("an import interrupted " .. variant.name, function()
      local ROWS = 6

      local function write_input()
        local lines = {}
        for i = 1, ROWS do
          lines[i] = string.format('{"name":"G%d","remote_data":{"n":%d}}', i, 9007199254740990 + i)
        end
        write_file(tmp .. "/g.jsonl", table.concat(lines, "\n") .. "\n")
      end

      local function argv(extra)
        local a = { "import", "g.jsonl", "--account", ACCOUNT, "--results", "r.jsonl", "--concurrency", "2" }
        for _, x in ipairs(extra or {}) do a[#a + 1] = x end
        return a
      end

      -- After the resume: every row created exactly once, by name and count.
      local function assert_each_created_once()
        assert.equal(ROWS, m:stats().created)
        local names, keys = {}, {}
        for _, rec in ipairs(created_records()) do
          local name = cjson.decode(rec.body).name
          assert.is_nil(names[name], "created twice: " .. name)
          names[name] = true
          assert.is_nil(keys[rec.idempotency_key])
          keys[rec.idempotency_key] = true
        end
        for i = 1, ROWS do assert.is_true(names["G" .. i]) end
      end

      it("stops starting rows at the first Ctrl-C, finishes those in flight, and a resume creates the rest once",
        function()
          write_input()
          m:script({ {}, { delay = 3 } })
          local group = start(argv(), { env = variant.env })
          wait_for("two requests in flight or done", function() return m:stats().requests >= 2 end)
          ctrl_c(group)
          local r = finished()
          assert.equal(1, r.code)
          assert.matches("stopping: waiting for the rows in flight", r.err)
          assert.equal(2, m:stats().requests)
          local first = decode_lines(read_file(tmp .. "/r.jsonl"))
          assert.equal(ROWS, #first)
          local rows = by_row(first)
          assert.equal("created", rows[1].result)
          assert.equal("created", rows[2].result)
          for i = 3, ROWS do
            assert.equal("not_started", rows[i].result)
            assert.equal("interrupted", rows[i].kind)
          end
          assert.equal(2, m:stats().created)

          r = run(argv({ "--resume" }), { env = variant.env })
          assert.equal(0, r.code)
          local all = decode_lines(read_file(tmp .. "/r.jsonl"))
          assert.equal(ROWS + ROWS - 2, #all)
          assert_each_created_once()
          for _, rec in ipairs(m:requests()) do
            local i = tonumber(cjson.decode(rec.body).name:match("%d+"))
            assert.equal(string.format('{"name":"G%d","remote_data":{"n":%d}}', i, 9007199254740990 + i),
              rec.body)
          end
        end)

      it("records rows abandoned by a second Ctrl-C as unknown, and a resume replays their keys", function()
        write_input()
        m:script({ {}, { delay = 8 } })
        local group = start(argv(), { env = variant.env })
        wait_for("two requests in flight or done", function() return m:stats().requests >= 2 end)
        ctrl_c(group)
        wait_for("the first Ctrl-C to be taken", function()
          return (read_file(tmp .. "/err") or ""):find("stopping", 1, true)
        end)
        ctrl_c(group)
        local r = finished()
        assert.equal(1, r.code)
        assert.matches("abandoning the rows in flight", r.err)
        local rows = by_row(decode_lines(read_file(tmp .. "/r.jsonl")))
        local delayed = m:requests()[2]
        local unknown
        for i = 1, ROWS do
          if rows[i].result == "unknown" then
            assert.is_nil(unknown, "only the delayed row is unknown")
            unknown = rows[i]
          end
        end
        assert.is_table(unknown)
        assert.equal(delayed.idempotency_key, unknown.idempotency_key)
        assert.equal("interrupted", unknown.kind)
        assert.equal(1, count(decode_lines(read_file(tmp .. "/r.jsonl")),
          function(l) return l.result == "created" end))
        -- the mock created the delayed group before it stalled: the record
        -- cannot know that, the key makes it harmless
        assert.equal(2, m:stats().created)

        r = run(argv({ "--resume" }), { env = variant.env })
        assert.equal(0, r.code)
        assert_each_created_once()
        local replayed = 0
        for _, rec in ipairs(m:requests()) do
          if rec.replayed then
            replayed = replayed + 1
            assert.equal(unknown.idempotency_key, rec.idempotency_key)
          end
        end
        assert.equal(1, replayed)
        local final = {}
        for _, l in ipairs(decode_lines(read_file(tmp .. "/r.jsonl"))) do final[l.row] = l end
        for i = 1, ROWS do assert.equal("created", final[i].result) end
        assert.equal(delayed.created, final[unknown.row].id)
      end)

      it("creates nothing twice when resumed after everything was killed with SIGKILL mid-request", function()
        write_input()
        m:script({ {}, { delay = 8 } })
        local group = start(argv(), { env = variant.env })
        wait_for("two requests in flight or done", function() return m:stats().requests >= 2 end)
        -- the worker runs in its own session: find it under the supervisor
        local processes = capture("ps -eo pid=,ppid=,pgid=,args=")
        local supervisor, job
        for pid, pgid, args in processes:gmatch("(%d+)%s+%d+%s+(%d+)%s+([^\n]*)") do
          if pgid == group and args:find("__worker", 1, true) and args:find("^sh ") then
            supervisor, job = pid, args:match("dir='(/[^']*/truto%-groups%.%w+)'")
          end
        end
        assert.is_string(supervisor)
        local worker
        for pid, ppid in processes:gmatch("(%d+)%s+(%d+)%s+%d+%s+[^\n]*") do
          if ppid == supervisor then worker = pid end
        end
        assert.is_string(worker)
        assert.is_string(job)
        os.execute("/bin/kill -s KILL -- " .. worker .. " -" .. group)
        wait_for("the worker to die", function()
          return not capture("ps -o pid= -p " .. worker):find("%d")
        end)
        -- the killed run could not remove its job directory
        os.execute("rm -rf " .. shell_quote(job))
        local lines = decode_lines(read_file(tmp .. "/r.jsonl"))
        assert.is_true(#lines < ROWS)
        local r = run(argv({ "--resume" }), { env = variant.env })
        assert.equal(0, r.code)
        assert_each_created_once()
        assert.is_true(count(m:requests(), function(rec) return rec.replayed end) >= 1)
      end)
    end)
  end
end)
