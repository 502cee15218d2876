-- spec.support.cli_groups_cases: the behaviour specs of truto-groups' list,
-- get, update, delete and sync, written once and run against a backend:
-- the real mock (spec/cli_commands_spec.lua, spec/cli_sync_spec.lua,
-- through spec/support/cli_backends.lua), with the harness of
-- spec/support/cli_harness.lua. The command always runs as a subprocess
-- (lua5.4, this tree's modules); the specs assert what it printed, its exit
-- code, and the requests the backend recorded (method, path, query,
-- headers, body).
--
-- busted's describe/it/setup/... are not globals of a required module:
-- the spec file hands them in (M.commands(backend, busted_api)).
--
-- A backend: start() -> { token, url, accounts, env = extra variables },
-- stop(), reset() (forget records and scripted steps), requests(),
-- script(steps) with the mock's steps ({ delay = 0 } answers normally,
-- { status = N }, { reset = true }). Spec plumbing only.
local cjson = require "cjson"
local assert = require "luassert"
local sh = require "spec.support.sh"
local cli = require "spec.support.cli_harness"
local read_file, write_file = sh.read_file, sh.write_file
local decode_lines, find, count = cli.decode_lines, cli.find, cli.count

local M = {}

local GROUPS = "/unified/user-directory/groups"

---------------------------------------------------------------- list, get, update, delete

function M.commands(backend, api)
  local describe, it = api.describe, api.it
  local h = cli.new(backend, api)

  describe("list", function()
    it("prints every group as one JSON line, following next_cursor over every page", function()
      local seeded = h.seed({ { "G1" }, { "G2" }, { "G3" }, { "G4" }, { "G5" }, { "G6" }, { "G7" } })
      local r = h.run({ "list", "--page-size", "3" })
      assert.equal(0, r.code, r.err)
      local lines = decode_lines(r.out)
      assert.equal(7, #lines)
      for i, g in ipairs(lines) do
        assert.equal(seeded[i].id, g.id)
        assert.equal("G" .. i, g.name)
      end
      local sent = h.requests()
      assert.equal(3, #sent)
      local cursors = {}
      for i, req in ipairs(sent) do
        assert.equal("GET", req.method)
        assert.equal(GROUPS, req.path)
        assert.truthy(req.query:find("integrated_account_id=" .. h.account, 1, true))
        assert.truthy(req.query:find("limit=3", 1, true))
        assert.equal("", req.body or "")
        assert.is_nil(req.headers["content-type"])
        assert.is_nil(req.headers["idempotency-key"])
        cursors[i] = req.query:match("next_cursor=([^&]*)")
      end
      assert.is_nil(cursors[1])
      assert.is_string(cursors[2])
      assert.is_string(cursors[3])
      assert.are_not.equal(cursors[2], cursors[3])
    end)

    it("writes CSV with a header row and quotes the fields that need it", function()
      h.seed({ { "Platform", 'Core, "infra"' }, { "Sales" } })
      local r = h.run({ "list", "--format", "csv" })
      assert.equal(0, r.code, r.err)
      local lines = {}
      for line in r.out:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.equal(3, #lines)
      assert.equal("id,name,description,group_type,organization,created_at,updated_at", lines[1])
      assert.truthy(lines[2]:find(',Platform,"Core, ""infra""",', 1, true), lines[2])
      assert.truthy(lines[3]:find(",Sales,,", 1, true), lines[3])
    end)

    it("prints the groups it read, then the error, and exits 1 when a page fails", function()
      h.seed({ { "A" }, { "B" }, { "C" }, { "D" }, { "E" } })
      h.script({ { delay = 0 }, { status = 403 } })
      local r = h.run({ "list", "--page-size", "2" })
      assert.equal(1, r.code)
      local lines = decode_lines(r.out)
      assert.equal(2, #lines)
      assert.equal("A", lines[1].name)
      assert.matches("listing stopped after 2 groups: http 403", r.err)
      assert.equal(2, #h.requests())
    end)

    it("shows progress on stderr only when stderr is a terminal", function()
      h.seed({ { "A" }, { "B" } })
      local r = h.run({ "list" })
      assert.equal(0, r.code)
      assert.equal("", r.err)
      local shown = h.run_on_tty({ "list" })
      assert.truthy(shown:find("groups read", 1, true), shown)
      assert.truthy(shown:find('"name":"B"', 1, true), shown)
    end)

    it("refuses an unknown --format and a bad --page-size, sending nothing", function()
      h.seed({})
      assert.equal(2, h.run({ "list", "--format", "xml" }).code)
      assert.equal(2, h.run({ "list", "--page-size", "0" }).code)
      assert.equal(0, #h.requests())
    end)
  end)

  describe("get", function()
    it("prints one group as JSON after a GET of its path, with no body", function()
      local seeded = h.seed({ { "Platform", "Core" } })
      local r = h.run({ "get", seeded[1].id })
      assert.equal(0, r.code, r.err)
      local g = cjson.decode(r.out)
      assert.equal(seeded[1].id, g.id)
      assert.equal("Core", g.description)
      local sent = h.requests()
      assert.equal(1, #sent)
      assert.equal("GET", sent[1].method)
      assert.equal(GROUPS .. "/" .. seeded[1].id, sent[1].path)
      assert.equal("integrated_account_id=" .. h.account, sent[1].query)
      assert.equal("", sent[1].body or "")
      assert.is_nil(sent[1].headers["content-type"])
    end)

    it("escapes the id as one path segment and exits 1 with Truto's 404", function()
      h.seed({})
      local r = h.run({ "get", "no/such id" })
      assert.equal(1, r.code)
      assert.equal("", r.out)
      assert.matches("http 404", r.err)
      assert.equal(GROUPS .. "/no%2Fsuch%20id", h.requests()[1].path)
    end)
  end)

  describe("update", function()
    it("sends a PATCH with only the fields given, with an Idempotency-Key, and prints the group", function()
      local seeded = h.seed({ { "Platform", "old" } })
      local r = h.run({ "update", seeded[1].id, "--description", "new" })
      assert.equal(0, r.code, r.err)
      assert.equal("new", cjson.decode(r.out).description)
      local sent = h.requests()
      assert.equal(1, #sent)
      assert.equal("PATCH", sent[1].method)
      assert.equal(GROUPS .. "/" .. seeded[1].id, sent[1].path)
      assert.equal('{"description":"new"}', sent[1].body)
      assert.equal("application/json", sent[1].headers["content-type"])
      assert.is_string(sent[1].headers["idempotency-key"])
      local now = h.by_name("Platform")
      assert.equal("new", now.description)
    end)

    it("renames with --name and passes --remote-data as an object", function()
      local seeded = h.seed({ { "Platform" } })
      local r = h.run({ "update", seeded[1].id, "--name", "Infra", "--remote-data", '{"cost_center":4101}' })
      assert.equal(0, r.code, r.err)
      assert.equal('{"name":"Infra","remote_data":{"cost_center":4101}}', h.requests()[1].body)
      assert.is_table(h.by_name("Infra"))
    end)

    it("exits 2 without a field to change and 1 for an unknown id", function()
      h.seed({})
      local r = h.run({ "update", "1001" })
      assert.equal(2, r.code)
      assert.matches("at least one of %-%-name", r.err)
      assert.equal(0, #h.requests())
      r = h.run({ "update", "424242", "--name", "X" })
      assert.equal(1, r.code)
      assert.matches("http 404", r.err)
    end)
  end)

  describe("delete", function()
    it("with --yes deletes every id given, one line each, and exits 1 when one is unknown", function()
      local seeded = h.seed({ { "A" }, { "B" }, { "C" } })
      local r = h.run({ "delete", seeded[1].id, "424242", seeded[3].id, "--yes" })
      assert.equal(1, r.code)
      local lines = decode_lines(r.out)
      assert.same({ id = seeded[1].id, result = "deleted" }, lines[1])
      assert.equal("failed", lines[2].result)
      assert.equal(404, lines[2].status)
      assert.equal("deleted", lines[3].result)
      assert.matches("2 of 3 groups deleted", r.err)
      local sent = h.requests()
      assert.equal(3, #sent)
      for _, req in ipairs(sent) do
        assert.equal("DELETE", req.method)
        assert.equal("", req.body or "")
        assert.is_nil(req.headers["content-type"])
      end
      local left = h.groups()
      assert.equal(1, #left)
      assert.equal("B", left[1].name)
    end)

    it("refuses without --yes when standard input is not a terminal, sending nothing", function()
      local seeded = h.seed({ { "A" } })
      local r = h.run({ "delete", seeded[1].id })
      assert.equal(2, r.code)
      assert.matches("pass %-%-yes", r.err)
      assert.equal(0, #h.requests())
      assert.equal(1, #h.groups())
    end)

    it("asks on the terminal and deletes only after a yes", function()
      local seeded = h.seed({ { "A" } })
      local shown = h.run_on_tty({ "delete", seeded[1].id }, "n\n")
      assert.truthy(shown:find("delete 1 group (" .. seeded[1].id .. ")", 1, true), shown)
      assert.truthy(shown:find("nothing deleted", 1, true), shown)
      assert.equal(0, #h.requests())
      shown = h.run_on_tty({ "delete", seeded[1].id }, "y\n")
      assert.truthy(shown:find("1 of 1 group deleted", 1, true), shown)
      assert.equal(0, #h.groups())
    end)
  end)

  describe("help and usage", function()
    it("lists every command and prints each command's flags", function()
      local r = h.run({ "--help" })
      assert.equal(0, r.code)
      for _, c in ipairs({ "create", "import", "list", "get", "update", "delete", "sync" }) do
        assert.truthy(r.out:find("  " .. c .. " ", 1, true), c)
      end
      local flags = {
        list = { "--format", "--page-size", "--account", "--base-url" },
        get = { "--account" },
        update = { "--name", "--description", "--remote-data", "--group-type" },
        delete = { "--yes", "--group-type", "--concurrency", "--integration" },
        sync = { "--match", "--prune", "--dry-run", "--results", "--resume", "--concurrency", "--page-size",
          "--integration" },
      }
      for command, list in pairs(flags) do
        r = h.run({ command, "--help" })
        assert.equal(0, r.code)
        for _, flag in ipairs(list) do assert.truthy(r.out:find(flag, 1, true), command .. " " .. flag) end
      end
      r = h.run({ "frobnicate" })
      assert.equal(2, r.code)
      assert.matches("unknown command.*list, get, update, delete, sync", r.err)
      assert.equal(2, h.run({ "get" }).code)
      assert.equal(2, h.run({ "delete", "--yes" }).code)
    end)
  end)
end

---------------------------------------------------------------- sync

function M.sync(backend, api)
  local it = api.it
  local h = cli.new(backend, api)

  local function names(groups)
    local out = {}
    for _, g in ipairs(groups) do out[#out + 1] = g.name .. "=" .. tostring(g.description) end
    table.sort(out)
    return out
  end

  -- the lines of a results file about changes (not the run's identity and keys)
  local function change_lines(path)
    local out = {}
    for _, l in ipairs(decode_lines(read_file(path))) do if l.change then out[#out + 1] = l end end
    return out
  end

  local function sent_by(method)
    local out = {}
    for _, r in ipairs(h.requests()) do if r.method == method then out[#out + 1] = r end end
    return out
  end

  local WANT = "name,description\nA,new\nB,b\nC,c\n"

  it("creates the missing groups, updates the changed ones and deletes nothing without --prune", function()
    local seeded = h.seed({ { "A", "old" }, { "B", "b" }, { "Z", "z" } })
    write_file(h.tmp .. "/want.csv", WANT)
    local r = h.run({ "sync", "want.csv" })
    assert.equal(0, r.code, r.err)
    assert.same({ "A=new", "B=b", "C=c", "Z=z" }, names(h.groups()))
    local posts, patches = sent_by("POST"), sent_by("PATCH")
    assert.equal(1, #posts)
    assert.equal(GROUPS, posts[1].path)
    assert.equal('{"description":"c","name":"C"}', posts[1].body)
    assert.is_string(posts[1].headers["idempotency-key"])
    assert.equal(1, #patches)
    assert.equal(GROUPS .. "/" .. seeded[1].id, patches[1].path)
    assert.equal('{"description":"new"}', patches[1].body)
    assert.equal(0, #sent_by("DELETE"))
    assert.matches("sync: 1 created, 1 updated, 1 unchanged", r.err)
    assert.matches("1 group of the account is not in the file %(%-%-prune deletes them%)", r.err)
    local lines = decode_lines(r.out)
    assert.equal(2, #lines)
    assert.equal("created", find(lines, function(l) return l.action == "create" end).result)
  end)

  it("with --prune deletes the groups the file does not name", function()
    local seeded = h.seed({ { "A", "new" }, { "B", "b" }, { "C", "c" }, { "Z", "z" }, { "Y" } })
    write_file(h.tmp .. "/want.jsonl", '{"name":"A","description":"new"}\n{"name":"B"}\n{"name":"C"}\n')
    local r = h.run({ "sync", "want.jsonl", "--prune" })
    assert.equal(0, r.code, r.err)
    assert.same({ "A=new", "B=b", "C=c" }, names(h.groups()))
    local deletes = sent_by("DELETE")
    assert.equal(2, #deletes)
    local paths = { deletes[1].path, deletes[2].path }
    table.sort(paths)
    local want = { GROUPS .. "/" .. seeded[4].id, GROUPS .. "/" .. seeded[5].id }
    table.sort(want)
    assert.same(want, paths)
    assert.equal("", deletes[1].body or "")
    assert.equal(0, #sent_by("POST") + #sent_by("PATCH"))
    assert.matches("2 deleted, 3 unchanged", r.err)
  end)

  it("with --prune deletes nothing while a row cannot be read, nor for a file without rows", function()
    h.seed({ { "A", "a" }, { "Z", "z" } })
    write_file(h.tmp .. "/want.csv", 'name,description\nA,a2\n"B,b\n')
    local r = h.run({ "sync", "want.csv", "--prune" })
    assert.equal(1, r.code)
    assert.matches("1 row could not be read: nothing is deleted", r.err)
    assert.matches("row 2 %(line 3%): a quoted field is never closed", r.err)
    assert.equal(0, #sent_by("DELETE"))
    assert.equal(1, #sent_by("PATCH"))
    write_file(h.tmp .. "/empty.csv", "name,description\n")
    r = h.run({ "sync", "empty.csv", "--prune" })
    assert.equal(2, r.code)
    assert.matches("has no rows: %-%-prune would delete every group", r.err)
    assert.same({ "A=a2", "Z=z" }, names(h.groups()))
  end)

  it("prints the plan with --dry-run, one line per change and the counts, and changes nothing", function()
    local seeded = h.seed({ { "A", "old" }, { "B", "b" }, { "Z", "z" } })
    write_file(h.tmp .. "/want.csv", WANT)
    local r = h.run({ "sync", "want.csv", "--dry-run", "--prune" })
    assert.equal(0, r.code, r.err)
    local lines = decode_lines(r.out)
    assert.equal(3, #lines)
    assert.equal("create", lines[1].action)
    assert.equal("C", lines[1].name)
    assert.equal("update", lines[2].action)
    assert.equal(seeded[1].id, lines[2].id)
    assert.same({ from = "old", to = "new" }, lines[2].changes.description)
    assert.equal("delete", lines[3].action)
    assert.equal(seeded[3].id, lines[3].id)
    assert.matches("dry run: 3 groups in the account, 3 rows: 1 to create, 1 to update, 1 to delete, 1 unchanged",
      r.err)
    for _, req in ipairs(h.requests()) do assert.equal("GET", req.method) end
    assert.same({ "A=old", "B=b", "Z=z" }, names(h.groups()))
  end)

  it("reports two groups with one name, or two rows with one name, and never guesses between them", function()
    local seeded = h.seed({ { "Dup", "one" }, { "Dup", "two" }, { "Twice", "t" }, { "Keep", "k" } })
    write_file(h.tmp .. "/want.csv", "name,description\nDup,three\nTwice,x\nTwice,y\nKeep,k2\nNew,n\n")
    local r = h.run({ "sync", "want.csv", "--prune" })
    assert.equal(1, r.code)
    assert.truthy(r.err:find('the account has 2 groups named "Dup" (ids ' .. seeded[1].id .. ", "
      .. seeded[2].id .. ")", 1, true), r.err)
    assert.truthy(r.err:find('row 2 (line 3) and row 3 (line 4) name the same name "Twice"', 1, true), r.err)
    -- the clear changes are still made; nothing touches Dup or Twice
    assert.same({ "Dup=one", "Dup=two", "Keep=k2", "New=n", "Twice=t" }, names(h.groups()))
    assert.equal(0, #sent_by("DELETE"))
    assert.equal(1, #sent_by("PATCH"))
    assert.equal(1, #sent_by("POST"))
  end)

  it("with --match id matches an id column (as list --format csv writes it) and can rename", function()
    local seeded = h.seed({ { "A", "a" }, { "B", "b" } })
    local r = h.run({ "list", "--format", "csv" })
    local text = r.out:gsub(",A,a,", ",Renamed,a,") .. ",New,n,,,,\n424242,Ghost,,,,,\n"
      .. ",B,again,,,,\n,Twin,1,,,,\n,Twin,2,,,,\n"
    write_file(h.tmp .. "/edited.csv", text)
    r = h.run({ "sync", "edited.csv", "--match", "id" })
    assert.equal(1, r.code)
    assert.matches('no group with id "424242" in the account', r.err)
    assert.truthy(r.err:find('the account already has a group named "B" (id ' .. seeded[2].id .. ")", 1, true),
      r.err)
    assert.matches('2 rows without an id name "Twin": skipped', r.err)
    assert.same({ "B=b", "New=n", "Renamed=a" }, names(h.groups()))
    local patches = sent_by("PATCH")
    assert.equal(1, #patches)
    assert.equal(GROUPS .. "/" .. seeded[1].id, patches[1].path)
    assert.equal('{"name":"Renamed"}', patches[1].body)
  end)

  it("changes nothing when listing the account fails", function()
    h.seed({ { "A", "old" } })
    write_file(h.tmp .. "/want.csv", WANT)
    h.script({ { status = 403 } })
    local r = h.run({ "sync", "want.csv", "--prune" })
    assert.equal(1, r.code)
    assert.matches("nothing was changed: listing the account's groups failed", r.err)
    assert.equal(1, #h.requests())
  end)

  it("records every change with --results and a --resume does only what is left, a failed create with a new key",
    function()
      h.seed({ { "A", "old" }, { "B", "b" }, { "Z", "z" } })
      write_file(h.tmp .. "/want.csv", WANT .. "D,d\n")
      -- the listing, C's create, then D's create refused
      h.script({ { delay = 0 }, { delay = 0 }, { status = 400 } })
      local r = h.run({ "sync", "want.csv", "--prune", "--results", "r.jsonl", "--concurrency", "1" })
      assert.equal(1, r.code)
      assert.matches("run again with %-%-resume", r.err)
      local lines = change_lines(h.tmp .. "/r.jsonl")
      assert.equal(4, #lines)
      local failed = find(lines, function(l) return l.name == "D" end)
      assert.equal("failed", failed.result)
      assert.equal(400, failed.status)
      assert.equal(3, count(lines, function(l) return l.result ~= "failed" end))

      r = h.run({ "sync", "want.csv", "--prune", "--results", "r.jsonl" })
      assert.equal(2, r.code)
      assert.matches("already records a run", r.err)

      h.script({})
      local before = #h.requests()
      r = h.run({ "sync", "want.csv", "--prune", "--results", "r.jsonl", "--resume" })
      assert.equal(0, r.code, r.err)
      assert.same({ "A=new", "B=b", "C=c", "D=d" }, names(h.groups()))
      local again = {}
      for i, req in ipairs(h.requests()) do if i > before and req.method ~= "GET" then again[#again + 1] = req end end
      assert.equal(1, #again)
      assert.equal("POST", again[1].method)
      assert.equal('{"description":"d","name":"D"}', again[1].body)
      assert.are_not.equal(failed.idempotency_key, again[1].headers["idempotency-key"])
      lines = change_lines(h.tmp .. "/r.jsonl")
      assert.equal(5, #lines)
      assert.equal("created", lines[5].result)
    end)

  it("resends a create whose outcome is unknown with the same Idempotency-Key on --resume", function()
    h.seed({})
    write_file(h.tmp .. "/want.csv", "name\nLost\n")
    -- the listing, then the create's four attempts all cut off after sending
    -- (10 ms apart at most rather than the default backoff's seconds)
    h.script({ { delay = 0 }, { reset = true }, { reset = true }, { reset = true }, { reset = true } })
    local r = h.run({ "sync", "want.csv", "--results", "r.jsonl" },
      { env = { LUA_INIT = cli.client_config_init({ retry_base = 0.01, retry_cap = 0.01 }) } })
    assert.equal(1, r.code)
    local line = change_lines(h.tmp .. "/r.jsonl")[1]
    assert.equal("unknown", line.result)
    local first_key = line.idempotency_key
    for _, req in ipairs(sent_by("POST")) do assert.equal(first_key, req.headers["idempotency-key"]) end
    h.script({})
    local before = #h.requests()
    r = h.run({ "sync", "want.csv", "--results", "r.jsonl", "--resume" })
    assert.equal(0, r.code, r.err)
    local posts = {}
    for i, req in ipairs(h.requests()) do if i > before and req.method == "POST" then posts[#posts + 1] = req end end
    assert.equal(1, #posts)
    assert.equal(first_key, posts[1].headers["idempotency-key"])
    assert.same({ "Lost=nil" }, names(h.groups()))
  end)

  it("records a create in flight at a second Ctrl-C as unknown, and a --resume creates nothing twice", function()
    h.seed({})
    write_file(h.tmp .. "/want.csv", "name\nSlow\n")
    -- the listing, then a create answered only after 4 s
    h.script({ { delay = 0 }, { delay = 4 } })
    local group = h.start({ "sync", "want.csv", "--results", "r.jsonl" })
    h.wait_for("the create to be sent", function() return #sent_by("POST") >= 1 end)
    os.execute("sleep 0.3")
    -- the first stops starting changes, the second abandons the one in flight
    h.ctrl_c(group)
    os.execute("sleep 0.3")
    h.ctrl_c(group)
    local r = h.finished()
    -- let the server finish the create it held back (it has answered when
    -- its record has a status), as a real one would before the user resumes
    h.wait_for("the held create to be answered", function() return sent_by("POST")[1].status end)
    assert.equal(130, r.code, r.err)
    assert.matches("abandoning the rows in flight", r.err)
    local line = change_lines(h.tmp .. "/r.jsonl")[1]
    assert.equal("unknown", line.result)
    local key = sent_by("POST")[1].headers["idempotency-key"]
    assert.equal(key, line.idempotency_key)
    h.script({})
    local before = #h.requests()
    r = h.run({ "sync", "want.csv", "--results", "r.jsonl", "--resume" })
    assert.equal(0, r.code, r.err)
    for i, req in ipairs(h.requests()) do
      if i > before and req.method == "POST" then assert.equal(key, req.headers["idempotency-key"]) end
    end
    assert.same({ "Slow=nil" }, names(h.groups()))
  end)
end

return M
