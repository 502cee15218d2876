-- Specs of bin/truto-groups, the command-line tool: the real command run as
-- a subprocess (lua5.4, this tree's modules via LUA_PATH/LUA_CPATH) against
-- the real mock, asserting what the mock received, what the command printed
-- and wrote, and its exit code. Stopped runs are driven with real signals
-- (SIGTERM, SIGINT, SIGHUP, SIGKILL) sent to the command's pid, and SIGINT
-- to its process group as a terminal's Ctrl-C is, while the mock holds
-- requests in flight (a scripted `delay`).
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

local function wait_for(what, check, seconds)
  local deadline = socket.gettime() + (seconds or 30)
  while socket.gettime() < deadline do
    local value = check()
    if value then return value end
    socket.sleep(0.05)
  end
  error("timed out waiting for " .. what, 2)
end

-- the lines about rows (a results file's lines about the run, its
-- identity and keys, are left out)
local function decode_lines(text)
  local lines = {}
  for line in (text or ""):gmatch("[^\n]+") do
    local value = cjson.decode(line)
    if value.run == nil then lines[#lines + 1] = value end
  end
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

  local function finished()
    return wait_for("the command to exit", function()
      local rc = read_file(tmp .. "/rc")
      return rc and rc:match("%d+") and {
        code = tonumber(rc), out = read_file(tmp .. "/out") or "", err = read_file(tmp .. "/err") or "",
      }
    end, 60)
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
        { { "import", "a.csv", "--account", A, "--grace", "-1" }, "%-%-grace must be" },
        { { "import", "a.csv", "--account", A, "--results", "r", "--resume", "--resume-changed", "x" },
          "%-%-resume%-changed must be refuse or new" },
        { { "import", "a.csv", "--account", A, "--resume-changed", "new" }, "goes with %-%-resume" },
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
        "--resume-changed", "--grace",
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

    it("refuses a --resume after a row was inserted at the top, sending nothing, and --resume-changed=new "
      .. "sends only the new row", function()
        write_file(tmp .. "/g.csv", "name\nA\nB\nC\n")
        local r = run({ "import", "g.csv", "--account", ACCOUNT, "--results", "r.jsonl" })
        assert.equal(0, r.code)
        assert.equal(3, m:stats().created)
        for _, line in ipairs(decode_lines(read_file(tmp .. "/r.jsonl"))) do
          assert.is_string(line.fingerprint)
          assert.equal(ACCOUNT, line.account)
        end
        m:reset()
        write_file(tmp .. "/g.csv", "name\nNew\nA\nB\nC\n")
        local before = read_file(tmp .. "/r.jsonl")
        r = run({ "import", "g.csv", "--account", ACCOUNT, "--results", "r.jsonl", "--resume" })
        assert.equal(2, r.code)
        assert.matches("does not match the run recorded in r.jsonl", r.err)
        assert.matches("row 1 %(line 2%): its request differs from the one recorded as created", r.err)
        assert.matches("%-%-resume%-changed=new", r.err)
        assert.equal(0, m:stats().requests)
        assert.equal(before, read_file(tmp .. "/r.jsonl"))

        r = run({ "import", "g.csv", "--account", ACCOUNT, "--results", "r.jsonl", "--resume",
          "--resume-changed=new" })
        assert.equal(0, r.code)
        assert.matches("4 rows: 4 created %(3 by an earlier run%)", r.err)
        assert.equal(1, m:stats().requests)
        assert.equal('{"name":"New"}', m:last().body)
        assert.equal(1, m:stats().created)
        -- the record now names every row by its new number: a plain resume agrees
        m:reset()
        r = run({ "import", "g.csv", "--account", ACCOUNT, "--results", "r.jsonl", "--resume" })
        assert.equal(0, r.code)
        assert.matches("4 rows: 4 created %(4 by an earlier run%)", r.err)
        assert.equal(0, m:stats().requests)
      end)

    it("on --resume sends a row fixed since it failed, saying so, but refuses one moved onto a failed row's place",
      function()
        write_file(tmp .. "/bl.csv", "name,group_type\nTeam A,team\nTeam B,\n")
        local r = run({ "import", "bl.csv", "--account", m.accounts.blackline, "--results", "r.jsonl",
          "--concurrency", "1" })
        assert.equal(1, r.code)
        local first = by_row(decode_lines(read_file(tmp .. "/r.jsonl")))
        assert.equal("failed", first[2].result)
        m:reset()
        -- the fix: Team B gets its group_type
        write_file(tmp .. "/bl.csv", "name,group_type\nTeam A,team\nTeam B,team\n")
        r = run({ "import", "bl.csv", "--account", m.accounts.blackline, "--results", "r.jsonl", "--resume" })
        assert.equal(0, r.code)
        assert.matches("row 2 %(line 3%): changed since it was last tried %(failed%): sent as a new row", r.err)
        assert.equal(1, m:stats().requests)
        assert.equal('{"name":"Team B"}', m:last().body)
        assert.are_not.equal(first[2].idempotency_key, m:last().idempotency_key)

        -- a created row moved onto the place of a failed one is refused
        write_file(tmp .. "/g.csv", "name,group_type\nX,department\nY,team\n")
        r = run({ "import", "g.csv", "--account", m.accounts.blackline, "--results", "s.jsonl",
          "--concurrency", "1" })
        assert.equal(1, r.code) -- X is refused by BlackLine, Y is created
        m:reset()
        write_file(tmp .. "/g.csv", "name,group_type\nY,team\n")
        r = run({ "import", "g.csv", "--account", m.accounts.blackline, "--results", "s.jsonl", "--resume" })
        assert.equal(2, r.code)
        assert.matches("row 1 %(line 2%): its request differs from the one recorded as failed", r.err)
        assert.equal(0, m:stats().requests)
      end)

    it("refuses a --resume under a different --account, naming both, and sends nothing", function()
      write_file(tmp .. "/g.csv", "name\nA\nB\n")
      m:script({ {}, { status = 400 } })
      local r = run({ "import", "g.csv", "--account", ACCOUNT, "--results", "r.jsonl", "--concurrency", "1" })
      assert.equal(1, r.code)
      m:reset()
      r = run({ "import", "g.csv", "--account", m.accounts.jira, "--results", "r.jsonl", "--resume" })
      assert.equal(2, r.code)
      assert.truthy(r.err:find("row 1 (line 2): recorded for --account " .. ACCOUNT .. ", not "
        .. m.accounts.jira, 1, true), r.err)
      assert.truthy(r.err:find("row 2 (line 3): recorded for --account", 1, true), r.err)
      assert.equal(0, m:stats().requests)
      -- under the flag, every row is new to that account
      r = run({ "import", "g.csv", "--account", m.accounts.jira, "--results", "r.jsonl", "--resume",
        "--resume-changed", "new" })
      assert.equal(0, r.code)
      assert.equal(2, m:stats().created)
      for _, rec in ipairs(m:requests()) do
        assert.equal("integrated_account_id=" .. m.accounts.jira, rec.query)
      end
    end)

    it("skips rows whose cells are all empty (a spreadsheet's trailing ,,) and says so", function()
      write_file(tmp .. "/g.csv", "name,description,group_type\nA,,team\n,,\nB,b,\n,,\n,,\n")
      local r = run({ "import", "g.csv", "--account", ACCOUNT, "--results", "r.jsonl" })
      assert.equal(0, r.code)
      assert.matches("2 rows: 2 created; 3 rows with every cell empty skipped %(lines 3, 5, 6%)", r.err)
      assert.equal(2, m:stats().requests)
      assert.equal(2, m:stats().created)
      for _, rec in ipairs(m:requests()) do assert.is_string(cjson.decode(rec.body).name) end
      local rows = by_row(decode_lines(read_file(tmp .. "/r.jsonl")))
      assert.equal("created", rows[1].result)
      assert.equal("created", rows[3].result)
      assert.is_nil(rows[2])
      r = run({ "import", "g.csv", "--account", ACCOUNT, "--dry-run" })
      assert.equal(0, r.code)
      assert.matches("3 empty rows skipped", r.err)
    end)

    it("records a connect_timeout (nothing was sent) as failed, not unknown", function()
      -- a listener that accepts TCP and never answers the TLS handshake
      local silent = assert(socket.bind("127.0.0.1", 0))
      local _, port = silent:getsockname()
      write_file(tmp .. "/g.csv", "name\nA\n")
      local init = "local t = require 'truto'; local new = t.new; t.new = function(c) "
        .. "c.connect_timeout, c.max_retries = 0.3, 0; return new(c) end"
      local r = run({ "import", "g.csv", "--account", ACCOUNT, "--results", "r.jsonl",
        "--base-url", "https://127.0.0.1:" .. port }, { env = { LUA_INIT = init } })
      silent:close()
      assert.equal(1, r.code)
      local line = decode_lines(read_file(tmp .. "/r.jsonl"))[1]
      assert.equal("timeout", line.kind)
      assert.matches("connect_timeout", line.message)
      assert.equal("failed", line.result)
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

  describe("an import stopped by a signal", function()
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

    -- Starts the command as a shell's background job in its own process
    -- group (the group's leader, a shell that ignores SIGINT, only waits
    -- to write the exit code). Returns the command's pid and the group id.
    local function start_job(args)
      for _, f in ipairs({ "rc", "pid", "cmdpid" }) do os.remove(tmp .. "/" .. f) end
      local script = "trap '' INT; echo $$ > pid; " .. command_line(args)
        .. " </dev/null >out 2>err & echo $! > cmdpid; wait $!; echo $? > rc"
      os.execute("cd " .. shell_quote(tmp) .. " && setsid sh -c " .. shell_quote(script) .. " >/dev/null 2>&1 &")
      local group = wait_for("the job to start", function()
        local pid = read_file(tmp .. "/pid")
        return pid and pid:match("%d+")
      end)
      local pid = wait_for("the command to start", function()
        local p = read_file(tmp .. "/cmdpid")
        return p and p:match("%d+")
      end)
      return pid, group
    end

    local function signal(name, target)
      assert(os.execute("/bin/kill -s " .. name .. " -- " .. target) ~= false)
    end

    -- Every process of the job is gone (the command and its group).
    local function assert_nothing_left(pid, group)
      wait_for("every process of the job to exit", function()
        for pgid in capture("ps -eo pgid="):gmatch("%d+") do
          if pgid == group then return false end
        end
        return true
      end, 20)
      assert.is_nil(capture("ps -o pid= -p " .. pid):find("%d"))
    end

    local function results_by_row()
      local lines = decode_lines(read_file(tmp .. "/r.jsonl"))
      assert.equal(ROWS, #lines)
      return by_row(lines)
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

    it("SIGTERM to its pid: starts no more rows, abandons those in flight after --grace as unknown, exits 143",
      function()
        write_input()
        m:script({ {}, { delay = 30 }, { delay = 30 } })
        local pid, group = start_job(argv({ "--grace", "2" }))
        wait_for("two requests in flight", function() return m:stats().requests >= 3 end)
        local sent_at = socket.gettime()
        signal("TERM", pid)
        local r = finished()
        local took = socket.gettime() - sent_at
        assert.equal(143, r.code)
        assert.is_true(took >= 1.5 and took < 20, tostring(took))
        assert_nothing_left(pid, group)
        assert.matches("caught SIGTERM: stopping", r.err)
        assert.matches("abandoning the rows in flight %(%-%-grace is over%)", r.err)
        local rows = results_by_row()
        local delayed = {}
        for i, rec in ipairs(m:requests()) do if i > 1 then delayed[rec.idempotency_key] = true end end
        assert.equal("created", rows[1].result)
        for i = 2, ROWS do
          assert.equal("interrupted", rows[i].kind)
          if delayed[rows[i].idempotency_key] then
            assert.equal("unknown", rows[i].result)
          else
            assert.equal("not_started", rows[i].result)
          end
        end
        assert.equal(2, count(decode_lines(read_file(tmp .. "/r.jsonl")),
          function(l) return l.result == "unknown" end))
        assert.equal(3, m:stats().requests)
        -- the mock creates before it stalls: the keys make that harmless
        assert.equal(3, m:stats().created)
        r = run(argv({ "--resume" }))
        assert.equal(0, r.code)
        assert_each_created_once()
      end)

    it("SIGINT to its pid: lets the rows in flight finish within --grace, records the rest, exits 130", function()
      write_input()
      m:script({ {}, { delay = 3 }, { delay = 3 } })
      local pid, group = start_job(argv())
      wait_for("two requests in flight", function() return m:stats().requests >= 3 end)
      signal("INT", pid)
      local r = finished()
      assert.equal(130, r.code)
      assert_nothing_left(pid, group)
      assert.matches("caught SIGINT: stopping", r.err)
      assert.is_nil(r.err:find("abandoning", 1, true))
      local rows = results_by_row()
      local created = 0
      for i = 1, ROWS do
        if rows[i].result == "created" then
          created = created + 1
        else
          assert.equal("not_started", rows[i].result)
          assert.equal("interrupted", rows[i].kind)
        end
      end
      assert.equal(3, created)
      assert.equal(3, m:stats().requests)
      assert.equal(3, m:stats().created)
      r = run(argv({ "--resume" }))
      assert.equal(0, r.code)
      assert.equal(ROWS + ROWS - 3, #decode_lines(read_file(tmp .. "/r.jsonl")))
      assert_each_created_once()
      for _, rec in ipairs(m:requests()) do
        local i = tonumber(cjson.decode(rec.body).name:match("%d+"))
        assert.equal(string.format('{"name":"G%d","remote_data":{"n":%d}}', i, 9007199254740990 + i),
          rec.body)
      end
    end)

    it("a second SIGHUP abandons the rows in flight at once; exits 129 and a resume replays their keys",
      function()
        write_input()
        m:script({ {}, { delay = 30 }, { delay = 30 } })
        local pid, group = start_job(argv({ "--grace", "60" }))
        wait_for("two requests in flight", function() return m:stats().requests >= 3 end)
        signal("HUP", pid)
        wait_for("the first signal to be taken", function()
          return (read_file(tmp .. "/err") or ""):find("stopping", 1, true)
        end)
        local sent_at = socket.gettime()
        signal("HUP", pid)
        local r = finished()
        assert.is_true(socket.gettime() - sent_at < 15)
        assert.equal(129, r.code)
        assert_nothing_left(pid, group)
        assert.matches("abandoning the rows in flight %(a second signal%)", r.err)
        local rows = results_by_row()
        local delayed = {}
        for i, rec in ipairs(m:requests()) do if i > 1 then delayed[rec.idempotency_key] = rec end end
        local unknown = {}
        for i = 1, ROWS do
          if rows[i].result == "unknown" then
            assert.is_table(delayed[rows[i].idempotency_key], "only the delayed rows are unknown")
            assert.equal("interrupted", rows[i].kind)
            unknown[rows[i].idempotency_key] = rows[i]
          end
        end
        assert.equal(2, count(decode_lines(read_file(tmp .. "/r.jsonl")),
          function(l) return l.result == "unknown" end))
        assert.equal(3, m:stats().created)

        r = run(argv({ "--resume" }))
        assert.equal(0, r.code)
        assert_each_created_once()
        local replayed = 0
        for _, rec in ipairs(m:requests()) do
          if rec.replayed then
            replayed = replayed + 1
            assert.is_table(unknown[rec.idempotency_key])
          end
        end
        assert.equal(2, replayed)
        local final = {}
        for _, l in ipairs(decode_lines(read_file(tmp .. "/r.jsonl"))) do final[l.row] = l end
        for i = 1, ROWS do assert.equal("created", final[i].result) end
        for key, line in pairs(unknown) do assert.equal(delayed[key].created, final[line.row].id) end
      end)

    it("Ctrl-C to its process group stops it like SIGINT (130), with every row recorded", function()
      write_input()
      m:script({ {}, { delay = 30 }, { delay = 30 } })
      local pid, group = start_job(argv({ "--grace", "1" }))
      wait_for("two requests in flight", function() return m:stats().requests >= 3 end)
      signal("INT", "-" .. group)
      local r = finished()
      assert.equal(130, r.code)
      assert_nothing_left(pid, group)
      local rows = results_by_row()
      assert.equal(2, count(decode_lines(read_file(tmp .. "/r.jsonl")),
        function(l) return l.result == "unknown" end))
      assert.equal("created", rows[1].result)
      for i = 2, ROWS do assert.equal("interrupted", rows[i].kind) end
      assert.equal(3, m:stats().requests)
    end)

    it("creates nothing twice when resumed after it was killed with SIGKILL mid-request", function()
      write_input()
      m:script({ {}, { delay = 8 } })
      local pid, group = start_job(argv())
      wait_for("two requests in flight or done", function() return m:stats().requests >= 2 end)
      signal("KILL", pid)
      local r = finished()
      assert.equal(137, r.code)
      assert_nothing_left(pid, group)
      local lines = decode_lines(read_file(tmp .. "/r.jsonl"))
      assert.is_true(#lines < ROWS)
      r = run(argv({ "--resume" }))
      assert.equal(0, r.code)
      assert_each_created_once()
      assert.is_true(count(m:requests(), function(rec) return rec.replayed end) >= 1)
    end)
  end)
end)
