-- Specs of `truto-groups import` creating groups from a file: CSV (quoted
-- commas, quotes, line breaks, big integers kept exactly) and JSON Lines
-- from standard input, malformed rows and unknown columns, a dry run,
-- --integration checks, Truto's refusals, --results and --resume (created
-- rows skipped, unknown ones resent with their Idempotency-Key, failed ones
-- with a new one; a row inserted, fixed or moved since, or another
-- --account, refused or sent as new with --resume-changed=new), empty rows,
-- a connect timeout as failed, the progress bar on a terminal only. The
-- command runs as a lua5.4 subprocess against the real mock
-- (spec/support/cli_harness.lua); the specs assert what the mock received,
-- the results file, what the command printed and its exit code. An import
-- stopped by signals is in spec/cli_import_signals_spec.lua.
-- This file runs under any Lua busted runs on; the command is always lua5.4.
local cjson = require "cjson"
local socket = require "socket"
local cli = require "spec.support.cli_harness"
local read_file, write_file, decode_lines, by_row = cli.read_file, cli.write_file, cli.row_lines, cli.by_row

describe("the truto-groups command", function()
  local h, m, tmp, ACCOUNT = cli.mock_harness({ setup = setup, teardown = teardown, before_each = before_each })
  before_each(function() m, tmp, ACCOUNT = h.mock(), h.tmp, h.account end)
  local run = h.run

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
        -- on every attempt (4 with the client's 3 retries, 10 ms apart at
        -- most rather than the default backoff's seconds): it may exist
        m:script({ {}, { status = 400 }, { status = 502 }, { status = 502 }, { status = 502 }, { status = 502 } })
        local r = run({ "import", "g.csv", "--account", ACCOUNT, "--results", "r.jsonl", "--concurrency", "1" },
          { env = { LUA_INIT = cli.client_config_init({ retry_base = 0.01, retry_cap = 0.01 }) } })
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
      local init = cli.client_config_init({ connect_timeout = 0.3, max_retries = 0 })
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
      local shown = h.run_on_tty({ "import", "g.csv", "--account", ACCOUNT, "--results", "tty.jsonl" })
      assert.truthy(shown:find("2/2", 1, true), shown)
      assert.truthy(shown:find("ETA", 1, true), shown)
      assert.equal(2, #decode_lines(read_file(tmp .. "/tty.jsonl")))
    end)
  end)
end)
