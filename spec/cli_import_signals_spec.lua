-- Specs of an import of `truto-groups` stopped by a signal: real SIGTERM,
-- SIGINT, SIGHUP (twice) and SIGKILL sent to the command's pid, and SIGINT
-- to its process group as a terminal's Ctrl-C is, while the mock holds
-- requests in flight (a scripted `delay`); the exit code, what became of
-- every row (created, unknown, not_started), that no process of the job is
-- left, and that a --resume afterwards creates every group exactly once.
-- The command runs as a lua5.4 subprocess against the real mock
-- (spec/support/cli_harness.lua).
-- This file runs under any Lua busted runs on; the command is always lua5.4.
local cjson = require "cjson"
local socket = require "socket"
local cli = require "spec.support.cli_harness"
local read_file, write_file, decode_lines, by_row = cli.read_file, cli.write_file, cli.row_lines, cli.by_row
local count, capture, wait_for = cli.count, cli.capture, cli.wait_for

describe("the truto-groups command", function()
  local h, m, tmp, ACCOUNT = cli.mock_harness({ setup = setup, teardown = teardown, before_each = before_each })
  before_each(function() m, tmp, ACCOUNT = h.mock(), h.tmp, h.account end)
  local run = h.run

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

    -- Starts the import with rows 2 and 3 held by the mock for `delay`
    -- seconds (row 1 answered at once); returns once both are in flight:
    -- the job's group and the command's pid.
    local function start_with_two_in_flight(delay, extra)
      write_input()
      m:script({ {}, { delay = delay }, { delay = delay } })
      local group, pid = h.start(argv(extra))
      wait_for("two requests in flight", function() return m:stats().requests >= 3 end)
      return group, pid
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

    local function created_records()
      local out = {}
      for _, rec in ipairs(m:requests()) do
        if rec.created then out[#out + 1] = rec end
      end
      return out
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
        local group, pid = start_with_two_in_flight(30, { "--grace", "2" })
        local sent_at = socket.gettime()
        h.signal("TERM", pid)
        local r = h.finished()
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
      local group, pid = start_with_two_in_flight(3)
      h.signal("INT", pid)
      local r = h.finished()
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
        local group, pid = start_with_two_in_flight(30, { "--grace", "60" })
        h.signal("HUP", pid)
        wait_for("the first signal to be taken", function()
          return (read_file(tmp .. "/err") or ""):find("stopping", 1, true)
        end)
        local sent_at = socket.gettime()
        h.signal("HUP", pid)
        local r = h.finished()
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
      local group, pid = start_with_two_in_flight(30, { "--grace", "1" })
      h.signal("INT", "-" .. group)
      local r = h.finished()
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
      local group, pid = h.start(argv())
      wait_for("two requests in flight or done", function() return m:stats().requests >= 2 end)
      h.signal("KILL", pid)
      local r = h.finished()
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
