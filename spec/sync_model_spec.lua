-- A model-based spec of `truto-groups sync` (issue 18 item 6): a seeded
-- generator builds an account (0-40 groups, duplicate and odd names,
-- missing descriptions), a file (CSV or JSON Lines: rows matching, new,
-- renamed, duplicated, empty, nameless, with and without ids), options
-- (--match, --prune, --dry-run, the page size) and a fault on the real mock
-- (a 5xx, a reset, a partial or shapeless page, a group without a name, a
-- signal); after each run it checks the invariants:
--   a dry run sends only GETs; a run that exits 0 leaves the account equal
--   to the file; no group a row names is ever deleted; nothing is written
--   after an untrusted listing; after a failure, a --resume run converges
--   (a dry run then plans nothing) without creating a name twice.
-- sync runs in this process (truto.cli.sync.run, as bin/truto-groups calls
-- it) against ONE mock, reset per seed through its control API, so 300
-- seeds take a few seconds. SYNC_MODEL_SEEDS (default 300) and
-- SYNC_MODEL_BASE (default: from the clock) choose the seeds; a failing
-- seed is printed and added to spec/fixtures/sync_model_seeds.txt, whose
-- seeds run first every time (regression cases: commit it).
-- truto-groups runs on Lua 5.4 only (its rock requires it, and the command
-- refuses other Luas): the model drives it in this process, so only there.
if _VERSION ~= "Lua 5.4" then
  describe("sync, model-based:", function()
    pending("truto-groups runs on Lua 5.4 only; this Lua is " .. _VERSION)
  end)
  return
end

local truto = require "truto"
local core = require "truto.core"
local args = require "truto.cli.args"
local commands = require "truto.cli.commands"
local sync = require "truto.cli.sync"
local mock = require "spec.support.mock"
local sh = require "spec.support.sh"
local cjson = require "cjson"

local SEEDS = tonumber(os.getenv("SYNC_MODEL_SEEDS") or "") or 300
local BASE = tonumber(os.getenv("SYNC_MODEL_BASE") or "") or (os.time() % 100000) * 1000
local KEY = "user-directory/groups"
local signals = core.signals

local ROOT = debug.getinfo(1, "S").source:gsub("^@", ""):gsub("[^/]*$", "")
local KEPT = (ROOT == "" and "." or ROOT:gsub("/$", "")) .. "/fixtures/sync_model_seeds.txt"

local POOL = { "Sales", "sales", "Ops", "Ops ", "R&D", "a,b", 'say "hi"', "\195\156n\195\175", "=SUM(A1)",
  "x", "Team 7", "  lead", "d\226\128\148e" }
local SHAPELESS = { "{}", '[{"id":"1","name":"A"}]', '{"data":[],"next_cursor":null}', '{"result":"x"}' }

---------------------------------------------------------------- the generator

local function generate(seed)
  math.randomseed(seed)
  local R = math.random
  local c = { seed = seed }
  local function name()
    local n = POOL[R(#POOL)]
    if R() < 0.6 then n = n .. " " .. R(1, 12) end
    return n
  end
  local function desc() if R() < 0.4 then return nil end return "d" .. R(1, 3) end
  c.groups = {}
  for i = 1, R(0, 40) do c.groups[i] = { name = name(), description = desc() } end
  c.match = R() < 0.3 and "id" or "name"
  c.prune = R() < 0.6
  c.dry = R() < 0.12
  c.format = R() < 0.5 and "csv" or "jsonl"
  c.page_size = R(2, 12)
  c.with_ids = c.match == "id" or R() < 0.2
  c.rows = {}
  for i = 1, R(0, 30) do
    local k, row = R(), nil -- luacheck: ignore 311
    if k < 0.35 and #c.groups > 0 then -- an existing group, its description maybe changed
      local g = R(#c.groups)
      row = { group = g, name = c.groups[g].name, description = R() < 0.5 and desc() or c.groups[g].description,
        with_id = R() < 0.8 }
    elseif k < 0.45 and #c.groups > 0 then -- renamed: by id, a new name
      row = { group = R(#c.groups), with_id = true, name = name(), description = desc() }
    elseif k < 0.8 then -- new (its name may be taken)
      row = { name = name(), description = desc() }
    elseif k < 0.88 and #c.rows > 0 then -- a duplicated row
      local d = c.rows[R(#c.rows)]
      row = { group = d.group, with_id = d.with_id, name = d.name, description = d.description, empty = d.empty }
    elseif k < 0.96 then
      row = { empty = true }
    else
      row = { description = "nameless" }
    end
    c.rows[i] = row
  end
  if c.with_ids and R() < 0.1 then c.rows[#c.rows + 1] = { bogus_id = "424242", name = name() } end
  c.pages = math.max(1, math.ceil(#c.groups / c.page_size))
  local f = R()
  if f < 0.3 then
    c.fault = nil
  elseif f < 0.45 then
    c.fault = { kind = "5xx", k = c.pages + R(1, 8), times = R(1, 4), status = ({ 500, 502, 503 })[R(3)],
      create = R() < 0.5 }
  elseif f < 0.57 then
    c.fault = { kind = "reset", k = c.pages + R(1, 8), times = R(1, 4) }
  elseif f < 0.63 then
    c.fault = { kind = "5xx", k = R(1, c.pages), times = R(1, 4), status = 502 }
  elseif f < 0.73 then
    c.fault = { kind = "partial", page = R(1, c.pages) }
  elseif f < 0.85 then
    c.fault = { kind = "shapeless", k = R(1, c.pages), body = SHAPELESS[R(#SHAPELESS)] }
  elseif f < 0.9 then
    c.fault = { kind = "nameless" }
  elseif f < 0.93 then
    c.fault = { kind = "signal", k = R(1, c.pages + 4) }
  else
    c.fault = { kind = "reset", k = R(1, c.pages), times = 4 }
  end
  return c
end

local function describe_case(c)
  local f = c.fault
  local fault = f and (f.kind .. (f.k and (" at request " .. f.k) or "") .. (f.page and (" on page " .. f.page) or "")
    .. (f.times and (" x" .. f.times) or "")) or "none"
  return string.format("seed %d: %d groups, %d %s rows, --match %s%s%s, page size %d, fault %s", c.seed,
    #c.groups, #c.rows, c.format, c.match, c.prune and " --prune" or "", c.dry and " --dry-run" or "",
    c.page_size, fault)
end

---------------------------------------------------------------- the file

local function csv_cell(v)
  if v == nil then return "" end
  return '"' .. v:gsub('"', '""') .. '"'
end

-- The file's text; the rows' ids are the seeded groups' ids.
local function file_text(c, ids)
  local out = {}
  if c.format == "csv" then
    out[1] = c.with_ids and "id,name,description" or "name,description"
  end
  for _, row in ipairs(c.rows) do
    local id = row.bogus_id or (row.with_id and row.group and ids[row.group]) or nil
    if not c.with_ids then id = nil end
    if c.format == "csv" then
      local cells = { csv_cell(row.name), csv_cell(row.description) }
      if c.with_ids then table.insert(cells, 1, id or "") end
      out[#out + 1] = table.concat(cells, ",")
    elseif row.empty then
      out[#out + 1] = ""
    else
      local parts = {}
      if id then parts[#parts + 1] = '"id":' .. cjson.encode(id) end
      if row.name then parts[#parts + 1] = '"name":' .. cjson.encode(row.name) end
      if row.description then parts[#parts + 1] = '"description":' .. cjson.encode(row.description) end
      out[#out + 1] = "{" .. table.concat(parts, ",") .. "}"
    end
  end
  return table.concat(out, "\n") .. "\n"
end

---------------------------------------------------------------- the spec

describe("sync, model-based:", function()
  local m, tmp, account, pid
  local out_buf, err_buf

  local sink = {}
  sink.__index = sink
  function sink:write(...)
    for _, s in ipairs({ ... }) do self.buf[#self.buf + 1] = tostring(s) end
    return self
  end
  function sink:flush() return self end

  local tool = {
    say = function(...)
      for _, s in ipairs({ "truto-groups: ", ... }) do err_buf[#err_buf + 1] = tostring(s) end
      err_buf[#err_buf + 1] = "\n"
    end,
    usage_error = function(problem)
      err_buf[#err_buf + 1] = "usage: " .. problem .. "\n"
      return 2
    end,
    account_of = function(o) return o.account end,
    make_client = function()
      -- no pacing (thousands of calls a minute to one account) and no
      -- backoff waits: the faults are scripted
      local client = assert(truto.new { token = m.token, base_url = m.url, rate_limits = false })
      client.sleep = function() end
      return client
    end,
    -- as bin/truto-groups' hook once a second signal came: abandon at once
    should_stop = function() if signals.caught() then return "abandon" end end,
  }

  local is_tty = commands.is_tty
  setup(function()
    m = mock.start()
    account = m.accounts.coupa
    tmp = assert(io.popen("mktemp -d /tmp/truto-sync-model.XXXXXX")):read("*l")
    local f = assert(io.open("/proc/self/stat"))
    pid = f:read("*n")
    f:close()
    commands.is_tty = function() return false end
  end)
  teardown(function()
    commands.is_tty = is_tty
    if m then m:stop() end
    if tmp and tmp:match("^/tmp/truto%-sync%-model%.") then os.execute("rm -rf " .. sh.quote(tmp)) end
  end)

  -- one sync in this process: exit code, stdout, stderr
  local function run(argv)
    local o = assert(args.parse(argv))
    out_buf, err_buf = {}, {}
    local so, se = io.stdout, io.stderr
    -- luacheck: push ignore 122
    io.stdout, io.stderr = setmetatable({ buf = out_buf }, sink), setmetatable({ buf = err_buf }, sink)
    local ok, code = pcall(sync.run, o, tool)
    io.stdout, io.stderr = so, se
    -- luacheck: pop
    if not ok then error(code, 0) end
    return code, table.concat(out_buf), table.concat(err_buf)
  end

  local function objects()
    return m:control("GET", "/__mock/objects?account=" .. account .. "&key=" .. KEY)
  end

  local function writes()
    local out = {}
    for _, r in ipairs(m:requests()) do if r.method ~= "GET" then out[#out + 1] = r end end
    return out
  end

  local function count_names(groups)
    local n = {}
    for _, g in ipairs(groups) do
      if type(g.name) == "string" then n[g.name] = (n[g.name] or 0) + 1 end
    end
    return n
  end

  -- Checks one seed; raises with what went wrong.
  local function check(c)
    local seeded = {}
    for i, g in ipairs(c.groups) do seeded[i] = { name = g.name, description = g.description } end
    if c.fault and c.fault.kind == "nameless" then seeded[#seeded + 1] = { description = "no name" } end
    seeded = m:control("POST", "/__mock/objects", '{"reset":true,"account":"' .. account .. '","key":"' .. KEY
      .. '","objects":' .. (#seeded == 0 and "[]" or cjson.encode(seeded)) .. "}")
    local ids = {}
    for i, g in ipairs(seeded) do ids[i] = g.id end
    local before = seeded
    local path = tmp .. "/want." .. c.format
    sh.write_file(path, file_text(c, ids))
    local results = tmp .. "/r" .. c.seed .. ".jsonl"
    os.remove(results)

    -- what the rows name: never deleted
    local kept_ids, kept_names = {}, {}
    for _, row in ipairs(c.rows) do
      if c.with_ids and row.with_id and row.group then kept_ids[ids[row.group]] = true end
      if row.name then kept_names[row.name] = (kept_names[row.name] or 0) + 1 end
    end
    local function nothing_named_deleted(what, written)
      for _, w in ipairs(written) do
        if w.method == "DELETE" then
          local id = w.path:match("/groups/([^/?]+)$")
          for _, g in ipairs(before) do
            if g.id == id then
              assert(not kept_ids[id] and not kept_names[g.name], what .. ": deleted group " .. id .. " ("
                .. tostring(g.name) .. "), which a row names")
            end
          end
        end
      end
    end

    -- the fault
    local f, killer = c.fault, nil
    local steps = {}
    if f and f.k then
      for _ = 1, f.k - 1 do steps[#steps + 1] = { delay = 0 } end
      for _ = 1, f.times or 1 do
        if f.kind == "5xx" then steps[#steps + 1] = { status = f.status, create = f.create or nil }
        elseif f.kind == "reset" then steps[#steps + 1] = { reset = true }
        elseif f.kind == "shapeless" then steps[#steps + 1] = { status = 200, body = f.body }
        elseif f.kind == "signal" then steps[#steps + 1] = { delay = 0.25 } end
      end
      m:script(steps)
    elseif f and f.kind == "partial" then
      m:control("POST", "/__mock/faults", '{"partial_page":' .. f.page .. "}")
    end

    local argv = { "sync", path, "--account", account, "--match", c.match, "--page-size", tostring(c.page_size),
      "--concurrency", "8" }
    if c.prune then argv[#argv + 1] = "--prune" end
    if c.dry then argv[#argv + 1] = "--dry-run" else argv[#argv + 1] = "--results" argv[#argv + 1] = results end
    signals.watch { "INT" }
    if f and f.kind == "signal" then
      killer = io.popen("sleep 0.05; kill -INT " .. pid)
    end
    local ok, code, _, err = pcall(run, argv)
    if killer then killer:read("*a") killer:close() end
    signals.restore()
    assert(ok, code)

    local first = "first run (exit " .. tostring(code) .. "): "
    local written = writes()
    if c.dry then assert(#written == 0, first .. "a dry run sent " .. #written .. " writes") end
    nothing_named_deleted(first, written)
    local untrusted = f and (f.kind == "partial" or f.kind == "shapeless"
      or f.kind == "nameless" and c.match == "name")
    if err:find("nothing was changed", 1, true) or untrusted then
      assert(#written == 0, first .. "wrote after an untrusted or failed listing:\n" .. err)
      assert(code ~= 0, first .. "exit 0 after an untrusted listing:\n" .. err)
    end
    -- (a signal after the last change leaves a finished run: exit 0 is
    -- right, bin/truto-groups then exits 128 + the signal's number)

    local after = objects()
    if code == 0 and not c.dry then
      -- the account equals the file
      local names, by_id = count_names(after), {}
      for _, g in ipairs(after) do by_id[g.id] = g end
      for _, row in ipairs(c.rows) do
        if not row.empty then
          local g
          if c.match == "id" and row.with_id and row.group then
            g = by_id[ids[row.group]]
            assert(g, first .. "the group of a row's id is gone")
          else
            assert(names[row.name] == 1, first .. "the account has " .. tostring(names[row.name])
              .. " groups named " .. row.name)
            for _, x in ipairs(after) do if x.name == row.name then g = x end end
          end
          assert(g.name == row.name, first .. "group " .. g.id .. " is named " .. tostring(g.name)
            .. ", the row says " .. row.name)
          if row.description then
            assert(g.description == row.description, first .. "group " .. g.id .. " has description "
              .. tostring(g.description) .. ", the row says " .. row.description)
          end
        end
      end
      if c.prune then
        for _, g in ipairs(after) do
          assert(kept_names[g.name] or kept_ids[g.id], first .. "with --prune the account keeps group " .. g.id
            .. " (" .. tostring(g.name) .. "), which no row names")
        end
      end
      return
    end
    if c.dry then return end

    -- after a failure: --resume converges, creating no name twice
    m:forget_requests()
    m:control("POST", "/__mock/faults", "{}")
    argv[#argv + 1] = "--resume"
    signals.watch { "INT" }
    local rcode, _, rerr = run(argv)
    signals.restore()
    if os.getenv("SYNC_MODEL_DEBUG") then
      io.stderr:write(describe_case(c), "\n", sh.read_file(path), "\nfirst:\n", err,
        "\nbefore:\n", cjson.encode(before),
        "\nafter:\n", cjson.encode(objects()), "\n")
    end
    local again = "the --resume (exit " .. tostring(rcode) .. "): "
    nothing_named_deleted(again, writes())
    -- no name created twice: at most one new group per name
    local was = {}
    for _, g in ipairs(before) do was[g.id] = true end
    local created = {}
    for _, g in ipairs(objects()) do
      if not was[g.id] then
        local name = tostring(g.name)
        created[name] = (created[name] or 0) + 1
        assert(created[name] == 1, again .. "created two groups named " .. name .. "\n" .. rerr)
      end
    end
    if c.fault and c.fault.kind == "nameless" and c.match == "name" then return end -- never trusted
    m:forget_requests()
    local dry = {}
    for i = 1, #argv - 3 do dry[i] = argv[i] end -- without --results FILE --resume
    dry[#dry + 1] = "--dry-run"
    local _, plan = run(dry)
    assert(plan == "", again .. "did not converge: a dry run still plans\n" .. plan .. "\n" .. rerr)
    assert(#writes() == 0, again .. "the dry run wrote")
  end

  local function kept_seeds()
    local list = {}
    for line in (sh.read_file(KEPT) or ""):gmatch("[^\n]+") do
      local seed = tonumber(line:match("^%s*(%d+)"))
      if seed then list[#list + 1] = seed end
    end
    return list
  end

  it("keeps its invariants over the kept seeds and " .. SEEDS .. " new ones from " .. BASE, function()
    local seeds = kept_seeds()
    local kept = #seeds
    for i = 1, SEEDS do seeds[#seeds + 1] = BASE + i end
    local failures = {}
    local t = core.now()
    for i, seed in ipairs(seeds) do
      local c = generate(seed)
      local ok, problem = pcall(check, c)
      if not ok then
        failures[#failures + 1] = describe_case(c) .. "\n  " .. tostring(problem)
        if i > kept then
          local f = io.open(KEPT, "a")
          if f then f:write(seed, "  # ", describe_case(c):gsub("^seed %d+: ", ""), "\n") f:close() end
        end
      end
    end
    local took = core.now() - t
    io.stderr:write(string.format("\nsync model: %d seeds (%d kept) in %.2f s\n", #seeds, kept, took))
    assert(#failures == 0, #failures .. " failing seeds (kept in " .. KEPT .. "; rerun one with"
      .. " SYNC_MODEL_BASE=<seed-1> SYNC_MODEL_SEEDS=1):\n" .. table.concat(failures, "\n"))
  end)
end)
