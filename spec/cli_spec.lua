-- Specs of bin/truto-groups, the command-line tool: `create` (flags,
-- environment, Truto's refusals, --integration rules), usage errors of
-- every command (exit 2, nothing sent) and --help. The command runs as a
-- lua5.4 subprocess (this tree's modules) against the real mock; the specs
-- assert what the mock received, what the command printed and its exit
-- code. Its import is specified in spec/cli_import_spec.lua and
-- spec/cli_import_signals_spec.lua; list/get/update/delete and sync in
-- spec/cli_commands_spec.lua and spec/cli_sync_spec.lua. The harness is
-- spec/support/cli_harness.lua.
-- This file runs under any Lua busted runs on; the command is always lua5.4.
local cjson = require "cjson"
local cli = require "spec.support.cli_harness"

describe("the truto-groups command", function()
  local h, m, ACCOUNT = cli.mock_harness({ setup = setup, teardown = teardown, before_each = before_each })
  before_each(function() m, ACCOUNT = h.mock(), h.account end)
  local run = h.run

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
end)
