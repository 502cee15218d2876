-- truto-groups sync against the real mock: create, update, prune, dry run,
-- duplicate names, --match id, a failed listing, and --resume after a
-- refused and after a lost create (spec/support/cli_groups_cases.lua);
-- then what `sync --prune` must be trusted with (issue 18 items 1-5): an
-- untrusted listing changes nothing, a row protects the group it names,
-- keys belong to a run (sync and import), empty rows are skipped, a signal
-- during the listing stops it at once. The command always runs as lua5.4.
local cjson = require "cjson"
local cases = require "spec.support.cli_groups_cases"
local cli = require "spec.support.cli_harness"
local backends = require "spec.support.cli_backends"
local sh = require "spec.support.sh"
local BUSTED = { describe = describe, it = it, setup = setup, teardown = teardown, before_each = before_each }

local KEY = "user-directory/groups"

describe("truto-groups sync against the mock:", function()
  cases.sync(backends.mock(), BUSTED)
end)

describe("truto-groups sync --prune can be trusted:", function()
  local backend = backends.mock()
  local m
  local h = cli.new(backend, BUSTED)
  setup(function() m = backend.instance() end)

  -- The account holds exactly these objects ({ name = ..., description = ... });
  -- the mock's records, steps, replays and faults are forgotten.
  local function keep(objects)
    return m:control("POST", "/__mock/objects", '{"account":' .. cjson.encode(h.account) .. ',"key":"' .. KEY
      .. '","objects":' .. (#objects == 0 and "[]" or cjson.encode(objects)) .. "}")
  end

  local function seed(objects)
    m:reset()
    return keep(objects)
  end

  local function names()
    local out = {}
    for _, g in ipairs(m:control("GET", "/__mock/objects?account=" .. h.account .. "&key=" .. KEY)) do
      out[#out + 1] = tostring(g.name) .. "=" .. tostring(g.description ~= cjson.null and g.description or nil)
    end
    table.sort(out)
    return out
  end

  local function methods()
    local out = {}
    for _, r in ipairs(m:requests()) do out[r.method] = (out[r.method] or 0) + 1 end
    return out
  end

  local function posts()
    local out = {}
    for _, r in ipairs(m:requests()) do if r.method == "POST" then out[#out + 1] = r end end
    return out
  end

  local ABC = { { name = "A", description = "a" }, { name = "B", description = "b" },
    { name = "C", description = "c" } }

  describe("a listing that cannot be trusted changes nothing", function()
    it("a partial page (is_partial_response: true)", function()
      seed(ABC)
      m:control("POST", "/__mock/faults", '{"partial_page":2}')
      sh.write_file(h.tmp .. "/want.csv", "name,description\nA,a2\nD,d\n")
      local r = h.run({ "sync", "want.csv", "--prune", "--page-size", "2" })
      assert.equal(1, r.code, r.err)
      assert.matches("nothing was changed: Truto answered a partial page %(is_partial_response%) after 2 groups", r.err)
      assert.same({ GET = 2 }, methods())
      assert.same({ "A=a", "B=b", "C=c" }, names())
    end)

    local shapeless = {
      ["{}"] = "{}",
      ["a bare array"] = '[{"id":"1","name":"A"}]',
      ['{"data": ...}'] = '{"data":[],"next_cursor":null}',
      ["result not an array"] = '{"result":"A","next_cursor":null}',
    }
    for what, body in pairs(shapeless) do
      it("a 2xx page without a result array: " .. what, function()
        seed(ABC)
        m:script({ { status = 200, body = body } })
        sh.write_file(h.tmp .. "/want.csv", "name,description\nA,a2\nD,d\n")
        local r = h.run({ "sync", "want.csv", "--prune" })
        assert.equal(1, r.code, r.err)
        assert.matches("nothing was changed: listing the account's groups failed after 0: decode", r.err)
        assert.same({ GET = 1 }, methods())
        assert.same({ "A=a", "B=b", "C=c" }, names())
      end)
    end

    it("a group without the match field: no name, or (with --match id) no id", function()
      seed({ { name = "A", description = "a" }, { description = "nameless" } })
      sh.write_file(h.tmp .. "/want.csv", "name,description\nA,a2\n")
      local r = h.run({ "sync", "want.csv", "--prune" })
      assert.equal(1, r.code, r.err)
      assert.matches("group 2 of the listing %(id %d+%) has no name: the listing cannot be trusted", r.err)
      assert.same({ GET = 1 }, methods())
      assert.same({ "A=a", "nil=nameless" }, names())
      seed(ABC)
      m:script({ { status = 200, json = { result = { { name = "A" }, { id = "1002", name = "B" } },
        next_cursor = cjson.null } } })
      r = h.run({ "sync", "want.csv", "--prune", "--match", "id" })
      assert.equal(1, r.code, r.err)
      assert.matches("group 1 of the listing has no id", r.err)
      assert.same({ GET = 1 }, methods())
    end)
  end)

  describe("a row protects the group it names", function()
    it("by id, with --match name: the group is not deleted", function()
      local seeded = seed({ { name = "X", description = "x" }, { name = "Gone" } })
      sh.write_file(h.tmp .. "/want.csv", "id,name\n" .. seeded[1].id .. ",Other\n")
      local r = h.run({ "sync", "want.csv", "--prune" })
      assert.equal(0, r.code, r.err)
      assert.same({ "Other=nil", "X=x" }, names())
      assert.same({ DELETE = 1, GET = 1, POST = 1 }, methods())
    end)

    it("a row with a problem (a taken name, an unknown id) withholds the prune, and the report says which row",
      function()
        seed({ { name = "Taken" }, { name = "Keep", description = "k" }, { name = "Unnamed" } })
        local groups = m:control("GET", "/__mock/objects?account=" .. h.account .. "&key=" .. KEY)
        sh.write_file(h.tmp .. "/want.csv", "id,name,description\n" .. groups[2].id .. ",Keep,k2\n,Taken,\n"
          .. "424242,Ghost,\n")
        local r = h.run({ "sync", "want.csv", "--prune", "--match", "id" })
        assert.equal(1, r.code, r.err)
        assert.truthy(r.err:find('2 rows have a problem (row 2 (line 3), row 3 (line 4)): nothing is deleted', 1,
          true), r.err)
        assert.same({ "Keep=k2", "Taken=nil", "Unnamed=nil" }, names())
        assert.same({ GET = 1, PATCH = 1 }, methods())
      end)

    it("a mistyped id (JSON Lines) withholds the prune; the group the row names is kept", function()
      seed({ { name = "Keep" }, { name = "Other" } })
      sh.write_file(h.tmp .. "/want.jsonl", '{"id":true,"name":"Keep"}\n{"name":"New"}\n')
      local r = h.run({ "sync", "want.jsonl", "--prune" })
      assert.equal(1, r.code, r.err)
      assert.matches("row 1 %(line 1%): id must be a non%-empty string or an integer", r.err)
      assert.matches("1 row could not be read: nothing is deleted", r.err)
      assert.same({ "Keep=nil", "New=nil", "Other=nil" }, names())
      assert.same({ GET = 1, POST = 1 }, methods())
    end)

    it("never prints the token a hostile server echoes in a group's name", function()
      seed({ { name = m.token }, { name = m.token } })
      sh.write_file(h.tmp .. "/want.csv", "name\n" .. m.token .. "\n")
      local r = h.run({ "sync", "want.csv", "--prune" })
      assert.equal(1, r.code, r.err)
      assert.matches("the account has 2 groups named", r.err)
      assert.is_nil(r.err:find(m.token, 1, true), r.err)
      assert.matches("[REDACTED]", r.err, 1, true)
    end)

    it("a duplicated row names its group: neither it nor any other group is deleted", function()
      seed({ { name = "Twice" }, { name = "Other" } })
      sh.write_file(h.tmp .. "/want.csv", "name,description\nTwice,x\nTwice,y\n")
      local r = h.run({ "sync", "want.csv", "--prune" })
      assert.equal(1, r.code, r.err)
      assert.matches("2 rows have a problem %(row 1 %(line 2%), row 2 %(line 3%)%)", r.err)
      assert.same({ "Other=nil", "Twice=nil" }, names())
      assert.same({ GET = 1 }, methods())
    end)
  end)

  describe("idempotency keys belong to a run", function()
    it("a fresh sync with a new results file at the same path sends fresh keys and creates again", function()
      seed({})
      sh.write_file(h.tmp .. "/want.csv", "name\nC\n")
      local r = h.run({ "sync", "want.csv", "--results", "r.jsonl" })
      assert.equal(0, r.code, r.err)
      local first = cli.decode_lines(sh.read_file(h.tmp .. "/r.jsonl"))
      assert.is_string(first[1].run)
      assert.equal(posts()[1].headers["idempotency-key"], first[2].keys["create:C"])
      assert.equal("created", first[3].result)
      keep({})
      os.remove(h.tmp .. "/r.jsonl")
      r = h.run({ "sync", "want.csv", "--results", "r.jsonl" })
      assert.equal(0, r.code, r.err)
      assert.same({ "C=nil" }, names())
      local p = posts()
      assert.equal(2, #p)
      assert.are_not.equal(p[1].headers["idempotency-key"], p[2].headers["idempotency-key"])
      assert.are_not.equal(first[1].run, cli.decode_lines(sh.read_file(h.tmp .. "/r.jsonl"))[1].run)
    end)

    it("a fresh import with a new results file at the same path sends fresh keys and creates again", function()
      seed({})
      sh.write_file(h.tmp .. "/g.csv", "name\nI\n")
      local r = h.run({ "import", "g.csv", "--results", "r.jsonl" })
      assert.equal(0, r.code, r.err)
      keep({})
      os.remove(h.tmp .. "/r.jsonl")
      r = h.run({ "import", "g.csv", "--results", "r.jsonl" })
      assert.equal(0, r.code, r.err)
      assert.same({ "I=nil" }, names())
      local p = posts()
      assert.equal(2, #p)
      assert.are_not.equal(p[1].headers["idempotency-key"], p[2].headers["idempotency-key"])
    end)

    for _, command in ipairs({ "sync", "import" }) do
      it(command .. " records the key before the create is sent: killed in flight, --resume creates nothing twice",
        function()
          seed({})
          sh.write_file(h.tmp .. "/g.csv", "name\nSlow\n")
          -- (sync lists first) then the create, answered after 0.8 s
          m:script(command == "sync" and { { delay = 0 }, { delay = 0.8 } } or { { delay = 0.8 } })
          local group = h.start({ command, "g.csv", "--results", "r.jsonl" })
          h.wait_for("the create to be sent", function() return #posts() >= 1 end)
          local sent_at = require("truto.core").now()
          assert(os.execute("/bin/kill -s KILL -- -" .. group) ~= false)
          local key = posts()[1].headers["idempotency-key"]
          assert.truthy(sh.read_file(h.tmp .. "/r.jsonl"):find(key, 1, true))
          -- the server finishes the create it held back, as a real one would
          os.execute(string.format("sleep %.2f", math.max(sent_at + 1 - require("truto.core").now(), 0)))
          -- a listing that does not show the group yet: sync sends the create again
          if command == "sync" then m:script({ { status = 200, json = { result = {}, next_cursor = cjson.null } } }) end
          local r = h.run({ command, "g.csv", "--results", "r.jsonl", "--resume" })
          assert.equal(0, r.code, r.err)
          local p = posts()
          assert.equal(2, #p)
          assert.equal(key, p[2].headers["idempotency-key"])
          assert.same({ "Slow=nil" }, names())
        end)
    end
  end)

  it("skips rows with every cell empty, as import does", function()
    seed({ { name = "A", description = "a" } })
    sh.write_file(h.tmp .. "/want.csv", "name,description\n,\nA,a\n,\nB,b\n")
    local r = h.run({ "sync", "want.csv", "--prune" })
    assert.equal(0, r.code, r.err)
    assert.matches("2 empty rows skipped", r.err)
    assert.same({ "A=a", "B=b" }, names())
  end)

  local STALLS = { INT = { { delay = 5 } }, TERM = { { delay = 5 } },
    -- waiting out a 429's Retry-After between two pages
    HUP = { { delay = 0 }, { status = 429, headers = { ["Retry-After"] = "5" } } } }
  for signal, code in pairs({ INT = 130, TERM = 143, HUP = 129 }) do
    it("SIG" .. signal .. " during the listing stops it within a second, exit " .. code .. ", nothing changed",
      function()
        seed(ABC)
        m:script(STALLS[signal])
        sh.write_file(h.tmp .. "/want.csv", "name\nA\nD\n")
        local group = h.start({ "sync", "want.csv", "--prune", "--results", "r.jsonl", "--page-size", "2" })
        h.wait_for("the listing to be stalled", function() return #m:requests() >= #STALLS[signal] end)
        local p = assert(io.popen("pgrep -g " .. group .. " -x lua5.4"))
        local pid = p:read("*l")
        p:close()
        local core = require "truto.core"
        local t = core.now()
        assert(os.execute("/bin/kill -s " .. signal .. " " .. assert(pid)))
        local r = h.finished()
        local took = core.now() - t
        assert.is_true(took < 1, "took " .. took .. " s")
        assert.equal(code, r.code, r.err)
        assert.matches("stopped by SIG" .. signal .. " while listing the account's groups: nothing was changed", r.err)
        assert.is_nil(r.err:find("abandoning", 1, true))
        assert.is_nil(r.err:find("in flight", 1, true))
        assert.same({ GET = #STALLS[signal] }, methods())
        assert.same({ "A=a", "B=b", "C=c" }, names())
      end)
  end
end)
