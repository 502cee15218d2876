-- truto.cli.sync: `truto-groups sync FILE` — make the account's groups match
-- a CSV or JSON Lines file (read as `import` reads it: truto.cli.input and
-- truto.cli.rows). It lists every group of the account (M.list), plans
-- (M.plan: creates for the rows no group matches, updates where name or
-- description differ, deletes of the unnamed groups with --prune), and
-- sends the plan through client:batch, one results line per change.
--
-- Matching is by name (--match id: by an `id` column). Two groups of the
-- account or two rows with one name (or id) are reported and skipped,
-- never guessed at. A results file (--results, continued with --resume)
-- records the run's identity, every create's Idempotency-Key before any
-- is sent, then every change; a resumed run lists again, skips the changes
-- recorded as done and sends each create with the key its run recorded (so
-- even a create killed before its line was written is replayed, not
-- repeated). A new run always sends new keys.
--
-- Must never: send a change when the listing cannot be trusted (failed,
-- partial, shapeless, a group without the match field: a partial list
-- would create groups twice and prune the rest); delete a group any row
-- names (by id or match key, even a row with a problem); delete without
-- --prune, or while any row has a problem (it might name a group to keep),
-- or because the file has no rows at all (a truncated file is likelier);
-- guess between groups with one name; repeat a change the results file
-- records as done; print the token a hostile server echoes.

local core = require "truto.core"
local input = require "truto.cli.input"
local json = require "truto.cli.json"
local results = require "truto.cli.results"
local rows = require "truto.cli.rows"
local sha256 = require("truto.core").sha256
local commands = require "truto.cli.commands"
local pages = require "truto.pages"
local errors = require "truto.errors"

local M = {}

local EXIT_OK, EXIT_FAILED = commands.EXIT_OK, commands.EXIT_FAILED
local null = core.null
local signals = core.signals

-- Columns `list` writes that are not the group's writable fields: `id`
-- matches rows with --match id, the others are read-only and ignored, so
-- the output of `list --format csv` can be edited and synced back.
local READ_ONLY = { id = true, organization = true, created_at = true, updated_at = true }

-- The fields a sync compares and updates.
local COMPARED = { "name", "description" }

local function value_of(v)
  if v == null then return nil end
  return v
end

local function id_text(v)
  if type(v) == "string" and v ~= "" then return v end
  if math.type(v) == "integer" then return tostring(v) end
  return nil
end

---------------------------------------------------------------- reading the file

-- Removes the read-only columns from a CSV file's header and records,
-- keeping each record's id. A record with the wrong number of fields gets
-- its problem here, counted against the whole header.
local function strip_csv(header, records, header_problem)
  if not header or header_problem then return header, records, header_problem, {} end
  local keep, id_at = {}, nil
  local stripped = {}
  for i, name in ipairs(header) do
    if READ_ONLY[name] then
      if name == "id" then id_at = i end
    else
      keep[#keep + 1] = i
      stripped[#stripped + 1] = name
    end
  end
  local ids = {}
  if #keep == #header then return header, records, nil, ids end
  for _, r in ipairs(records) do
    if not r.problem and #r.cells ~= #header then
      r.problem = string.format("has %d field%s but the header has %d column%s", #r.cells,
        #r.cells == 1 and "" or "s", #header, #header == 1 and "" or "s")
    elseif not r.problem then
      if id_at and r.cells[id_at] ~= "" then ids[r.row] = r.cells[id_at] end
      local cells = {}
      for j, i in ipairs(keep) do cells[j] = r.cells[i] end
      r.cells = cells
    end
  end
  return stripped, records, nil, ids
end

local function strip_jsonl(records)
  local ids = {}
  for _, r in ipairs(records) do
    if r.value then
      local id = r.value.id
      if id ~= nil and id ~= null then
        ids[r.row] = id_text(id)
        if not ids[r.row] then r.problem = "id must be a non-empty string or an integer" end
      end
      for name in pairs(READ_ONLY) do r.value[name] = nil end
    end
  end
  return records, ids
end

-- M.read(text, path, ctx) -> rows, skipped: as truto.cli.rows makes them,
-- prepared as creates (ctx: query, integration), each with its `id` when
-- the file gives one; skipped: the CSV rows with every cell empty (as
-- import skips them; one with only an id is a row: it names a group).
function M.read(text, path, ctx)
  local all, ids
  if input.detect(path ~= "-" and path or nil, text) == "jsonl" then
    local records
    records, ids = strip_jsonl(input.jsonl(text))
    all = rows.from_jsonl(records)
  else
    local header, records, header_problem
    header, records, header_problem, ids = strip_csv(input.csv(text))
    all = rows.from_csv(header, records, header_problem)
  end
  local kept, skipped = {}, {}
  for _, row in ipairs(all) do
    row.id = ids[row.row]
    if row.empty and row.id then row.empty, row.body, row.query = nil, {}, {} end
    if row.empty then
      skipped[#skipped + 1] = row
    else
      rows.prepare(row, ctx)
      kept[#kept + 1] = row
    end
  end
  return kept, skipped
end

---------------------------------------------------------------- the plan

local function where(row)
  return string.format("row %d (line %s)", row.row, tostring(row.line))
end

local function quoted(s) return string.format("%q", s) end

-- M.plan(all_rows, groups, options) -> plan
-- options: match ("name" | "id"), prune (boolean).
-- plan: { creates = { { row, key } }, updates = { { row, group, body, changes } },
--         deletes = { { group } }, unchanged = n, unnamed = n (groups left
--         alone for want of --prune), problems = { text } }
-- `key` is the change's identity in a results file: "create:NAME" (or
-- "create:row N" for a row without a name), "update:ID", "delete:ID".
function M.plan(all, groups, options)
  local by_id = options.match == "id"
  local plan = { creates = {}, updates = {}, deletes = {}, unchanged = 0, unnamed = 0, skipped = 0,
    problems = {} }
  local function problem(text) plan.problems[#plan.problems + 1] = text end
  -- rows with a problem, in file order: any of them withholds the prune
  local flagged, flagged_list = {}, {}
  local function row_problem(row, text)
    if not flagged[row] then
      flagged[row] = true
      flagged_list[#flagged_list + 1] = row
    end
    problem(text)
  end

  -- what every row names, whatever becomes of it: never deleted
  local kept_ids, kept_names = {}, {}
  for _, row in ipairs(all) do
    if row.id then kept_ids[row.id] = true end
    local name = type(row.body) == "table" and row.body.name
    if type(name) == "string" and name ~= "" then kept_names[name] = true end
  end

  -- the account's groups by what rows match them with
  local index, order = {}, {}
  for _, g in ipairs(groups) do
    local k = by_id and id_text(g.id) or (type(g.name) == "string" and g.name or nil)
    if k then
      if not index[k] then index[k] = {}; order[#order + 1] = k end
      local list = index[k]
      list[#list + 1] = g
    end
  end

  -- the rows by the same key
  local wanted, wanted_rows, invalid = {}, {}, 0
  local good = {}
  for _, row in ipairs(all) do
    if row.problem then
      invalid = invalid + 1
      row_problem(row, where(row) .. ": " .. row.problem)
    else
      local k
      local name = row.body.name
      if by_id then
        k = row.id
        if not k and (type(name) ~= "string" or name == "") then
          -- a group made from it could never be matched again: every run would make another
          invalid = invalid + 1
          row_problem(row, where(row) .. ": has neither an id nor a name (with --match id a row without an id"
            .. " creates a group by its name)")
        end
      else
        k = row.body.name
        if type(k) ~= "string" or k == "" then
          k = nil
          invalid = invalid + 1
          row_problem(row, where(row) .. ": has no name (sync matches rows to groups by name; --match id"
            .. " matches by an id column)")
        end
      end
      if k then
        wanted[k] = (wanted[k] or 0) + 1
        wanted_rows[k] = wanted_rows[k] or {}
        table.insert(wanted_rows[k], row)
      end
      if k or (by_id and type(name) == "string" and name ~= "") then good[#good + 1] = { row = row, key = k } end
    end
  end

  local what = by_id and "id" or "name"
  local reported = {}
  local function duplicate_groups(k)
    if reported[k] then return end
    reported[k] = true
    local ids = {}
    for i, g in ipairs(index[k]) do ids[i] = tostring(g.id) end
    problem(string.format("the account has %d groups named %s (ids %s): skipped, never guessed at;"
      .. " rename or delete all but one first", #ids, quoted(k), table.concat(ids, ", ")))
  end
  for _, k in ipairs(order) do
    if #index[k] > 1 and (wanted[k] or options.prune) then duplicate_groups(k) end
  end
  -- with --match id, the rows without an id are creates: by name, they
  -- must not repeat each other nor a group the account already has
  local new_names, names_in_account = {}, {}
  if by_id then
    for _, item in ipairs(good) do
      local name = item.row.body.name
      if not item.key and type(name) == "string" then new_names[name] = (new_names[name] or 0) + 1 end
    end
    -- the names the account will have: a group an id row renames frees its
    -- name and takes the new one (so one run converges)
    for _, g in ipairs(groups) do
      local name, k = g.name, id_text(g.id)
      local rows_k = k and wanted[k] == 1 and #index[k] == 1 and wanted_rows[k][1]
      if rows_k and type(rows_k.body.name) == "string" and rows_k.body.name ~= "" then name = rows_k.body.name end
      if type(name) == "string" then names_in_account[name] = names_in_account[name] or g end
    end
  end
  local seen_rows = {}
  for _, item in ipairs(good) do
    local row, k = item.row, item.key
    if k and wanted[k] > 1 then
      if not seen_rows[k] then
        seen_rows[k] = true
        local places = {}
        for i, r in ipairs(wanted_rows[k]) do
          places[i] = where(r)
          if i > 1 then flagged[r], flagged_list[#flagged_list + 1] = true, r end
        end
        row_problem(wanted_rows[k][1], string.format("%s name the same %s %s: skipped, never guessed at",
          table.concat(places, " and "), what, quoted(k)))
      end
    elseif k and index[k] and #index[k] == 1 then
      local g = index[k][1]
      local body, changes = {}, {}
      for _, f in ipairs(COMPARED) do
        local want, have = row.body[f], value_of(g[f])
        if want ~= nil and want ~= have then
          body[f] = want
          changes[f] = { from = have == nil and null or have, to = want }
        end
      end
      if next(body) then
        plan.updates[#plan.updates + 1] = { row = row, group = g, body = body, changes = changes,
          key = "update:" .. tostring(g.id) }
      else
        plan.unchanged = plan.unchanged + 1
      end
    elseif k and index[k] then
      plan.skipped = plan.skipped + 1 -- two groups with this name: reported above
    elseif by_id and k then
      row_problem(row, where(row) .. ": no group with id " .. quoted(k) .. " in the account: skipped"
        .. " (leave the id empty to create it)")
    elseif by_id and new_names[row.body.name] and new_names[row.body.name] > 1 then
      row_problem(row, where(row) .. ": " .. new_names[row.body.name] .. " rows without an id name "
        .. quoted(row.body.name) .. ": skipped, never guessed at")
    elseif by_id and names_in_account[row.body.name] then
      row_problem(row, where(row) .. ": the account already has a group named " .. quoted(row.body.name)
        .. " (id " .. tostring(names_in_account[row.body.name].id) .. "): skipped; give its id to"
        .. " update it")
    else
      local name = row.body.name
      plan.creates[#plan.creates + 1] = { row = row,
        key = type(name) == "string" and name ~= "" and ("create:" .. name) or ("create:row " .. row.row) }
    end
  end

  -- groups no row names (by the match key, by id or by name)
  local unnamed = {}
  for _, g in ipairs(groups) do
    local k = by_id and id_text(g.id) or (type(g.name) == "string" and g.name or nil)
    local id, name = id_text(g.id), type(g.name) == "string" and g.name or nil
    if not (k and wanted[k]) and not (k and index[k] and #index[k] > 1)
        and not (id and kept_ids[id]) and not (name and kept_names[name]) then
      unnamed[#unnamed + 1] = g
    end
  end
  if options.prune and #flagged_list > 0 and #unnamed > 0 then
    local n = #flagged_list
    table.sort(flagged_list, function(a, b) return a.row < b.row end)
    if invalid == n then
      problem(string.format("%d row%s could not be read: nothing is deleted while the file may name"
        .. " a group to keep", n, n == 1 and "" or "s"))
    else
      local places = {}
      for i = 1, math.min(n, 5) do places[i] = where(flagged_list[i]) end
      problem(string.format("%d row%s a problem (%s%s): nothing is deleted while the file may name a"
        .. " group to keep", n, n == 1 and " has" or "s have", table.concat(places, ", "), n > 5 and ", ..." or ""))
    end
    plan.unnamed = #unnamed
  elseif options.prune then
    for _, g in ipairs(unnamed) do
      plan.deletes[#plan.deletes + 1] = { group = g, key = "delete:" .. tostring(g.id) }
    end
  else
    plan.unnamed = #unnamed
  end
  return plan
end

---------------------------------------------------------------- keys

local uuid_from = rows.uuid_from

-- The key a create was first sent with in a results file written before
-- runs were recorded (no run line): derived from the file's path.
local function legacy_key(results_path, account, change_key)
  return uuid_from(sha256(table.concat({ "truto-groups sync 1", results_path, account, change_key }, "\0")))
end

-- The key a create that definitively failed is retried with.
local function next_key(key)
  return uuid_from(sha256("truto-groups sync retry 1\0" .. key))
end

---------------------------------------------------------------- lines

local DONE = { created = true, updated = true, deleted = true }

local function change_fields(action, change)
  local fields = { action = action, change = change.key }
  if change.row then fields.row, fields.line = change.row.row, change.row.line end
  local g = change.group
  if g then fields.id = id_text(g.id) or json.text(tostring(g.id)) end
  local name = change.row and change.row.body.name
  if name == nil and g and type(g.name) == "string" then name = g.name end
  fields.name = name
  return fields
end

-- The dry run's line for one change (the method, URL and body it would send).
local function plan_line(action, change)
  local fields = change_fields(action, change)
  if action == "update" then fields.changes = change.changes end
  return results.line(fields)
end

-- Reads the lines of an earlier run: change key -> its last line (a key
-- recorded before its create was sent counts as a line without a result),
-- and the run's identity (nil for a file written before runs had one).
local function read_previous(path)
  local f = io.open(path, "rb")
  if not f then return {} end
  local text = f:read("a")
  f:close()
  local last, run_id = {}, nil
  for raw in text:gmatch("([^\n]*)\n") do
    local value = json.decode(raw)
    if json.is_object(value) and type(value.change) == "string" then
      last[value.change] = value
    elseif json.is_object(value) and value.run ~= nil then
      if type(value.run) == "string" then run_id = run_id or value.run end
      if json.is_object(value.keys) then
        for change, key in pairs(value.keys) do
          if type(key) == "string" and not (last[change] and DONE[last[change].result]) then
            last[change] = { change = change, idempotency_key = key }
          end
        end
      end
    end
  end
  return last, run_id
end

local function read_input(path)
  if path == "-" then return io.stdin:read("a") end
  local f, why = io.open(path, "rb")
  if not f then return nil, why end
  local text = f:read("a")
  f:close()
  if not text then return nil, path .. ": cannot read" end
  return text
end

local function absolute(path)
  if path:sub(1, 1) == "/" then return path end
  local cwd = os.getenv("PWD")
  if not cwd or cwd == "" then
    local p = io.popen("pwd")
    cwd = p and p:read("l") or "."
    if p then p:close() end
  end
  return (cwd:gsub("/$", "") .. "/" .. path:gsub("^%./", ""))
end

---------------------------------------------------------------- the listing

-- list for pages.pages, one page at a time through a batch of one: a
-- signal (caught by the C core) abandons the page in flight at once.
local function interruptible_list(client)
  local function stop() if signals.caught() then return "abandon" end end
  return function(query, options)
    local batch_options = { concurrency = 1, should_stop = stop }
    for k, v in pairs(options or {}) do batch_options[k] = v end
    local out, err = client:batch({ { resource = "groups", op = "list", query = query } }, batch_options)
    if not out then return nil, err end
    if out[1].value ~= nil then return out[1].value end
    return nil, out[1].err
  end
end

-- M.list(client, account, options, progress) -> groups | nil, why, err
-- Every group of the account, or nothing: a failed page, a partial page,
-- a group without the field rows match it by (or without an id) make
-- the listing untrusted.
function M.list(client, account, options, progress)
  local by_id = options.match == "id"
  local groups = {}
  for page, items in pages.pages(client, interruptible_list(client),
      { integrated_account_id = account, limit = options.page_size }) do
    if page == false then
      return nil, "listing the account's groups failed after " .. #groups .. ": " .. commands.describe(items), items
    end
    if page.is_partial_response == true then
      return nil, "Truto answered a partial page (is_partial_response) after " .. #groups .. " groups:"
        .. " the listing cannot be trusted"
    end
    for _, g in ipairs(items) do
      local id = id_text(g.id)
      local lacks = not id and "id" or not by_id and (type(g.name) ~= "string" or g.name == "") and "name"
      if lacks then
        return nil, string.format("group %d of the listing%s has no %s: the listing cannot be trusted",
          #groups + 1, id and (" (id " .. id .. ")") or "", lacks)
      end
      groups[#groups + 1] = g
    end
    if progress then progress.show(#groups .. " groups listed") end
  end
  return groups
end

local function counts_text(parts)
  local out = {}
  for _, p in ipairs(parts) do
    if p[1] > 0 or p.always then out[#out + 1] = p[1] .. " " .. p[2] end
  end
  return table.concat(out, ", ")
end

---------------------------------------------------------------- the command

function M.run(o, tool)
  local account, why = tool.account_of(o)
  if not account then return tool.usage_error(why, "sync") end
  local path = o.positional[1]
  local text, read_problem = read_input(path)
  if not text then return tool.usage_error("cannot read " .. path .. ": " .. tostring(read_problem), "sync") end
  local all, skipped = M.read(text, path, { query = { integrated_account_id = account },
    integration = o.integration })
  if #all == 0 and o.prune then
    -- most likely a truncated or wrong file; `list` and `delete` empty an account on purpose
    return tool.usage_error(path .. " has no rows: --prune would delete every group of the account;"
      .. " refusing (use list and delete to empty an account)", "sync")
  end

  -- the record: checked before anything is sent. A run has an identity
  -- (its first line); a resumed run keeps it and the keys it recorded.
  local previous, run_id, legacy_base = {}, nil, nil
  if o.results then
    if o.resume then
      previous, run_id = read_previous(o.results)
      if not run_id and results.size(o.results) > 0 then legacy_base = absolute(o.results) end
    elseif results.size(o.results) > 0 then
      return tool.usage_error(o.results .. " already records a run: pass --resume to continue it,"
        .. " or choose another --results file", "sync")
    end
  end

  local client, problem = tool.make_client(o)
  if not client then return tool.usage_error(problem, "sync") end

  -- every group of the account, or nothing happens
  local progress = commands.progress(commands.is_tty(2))
  local groups, untrusted = M.list(client, account, { match = o.match, page_size = o["page-size"] }, progress)
  progress.done()
  if not groups or signals.caught() then
    client:close()
    local name = signals.caught()
    if name then
      tool.say("stopped by SIG", name, " while listing the account's groups: nothing was changed")
    else
      tool.say("nothing was changed: ", untrusted)
    end
    return EXIT_FAILED
  end

  local plan = M.plan(all, groups, { match = o.match or "name", prune = o.prune })

  -- what an earlier run of this results file already did
  local before = 0
  local function still_to_do(list)
    local out = {}
    for _, change in ipairs(list) do
      local last = previous[change.key]
      if last and DONE[last.result] and (change.body == nil or json.encode(change.body)
          == json.encode(last.body or {})) then
        before = before + 1
        if change.row and not change.group and last.id then
          plan.problems[#plan.problems + 1] = string.format("%s: created by an earlier run of %s (id %s)"
            .. " but not in the account now: not created again (use another --results file to create it)",
            where(change.row), o.results, tostring(last.id))
        end
      else
        change.previous = last
        out[#out + 1] = change
      end
    end
    return out
  end
  plan.creates = still_to_do(plan.creates)
  plan.updates = still_to_do(plan.updates)
  plan.deletes = still_to_do(plan.deletes)

  local function report_problems()
    for i, p in ipairs(plan.problems) do
      if i > 20 then
        io.stderr:write("  ... and ", #plan.problems - 20, " more\n")
        break
      end
      -- names and ids come from the server, which may echo the token
      io.stderr:write("  ", errors.redact(p, os.getenv("TRUTO_API_TOKEN")), "\n")
    end
    if plan.unnamed > 0 and not o.prune then
      io.stderr:write(string.format("  %d group%s of the account %s not in the file (--prune deletes them)\n",
        plan.unnamed, plan.unnamed == 1 and "" or "s", plan.unnamed == 1 and "is" or "are"))
    end
  end

  if o["dry-run"] then
    client:close()
    for _, c in ipairs(plan.creates) do io.stdout:write(plan_line("create", c), "\n") end
    for _, c in ipairs(plan.updates) do io.stdout:write(plan_line("update", c), "\n") end
    for _, c in ipairs(plan.deletes) do io.stdout:write(plan_line("delete", c), "\n") end
    io.stdout:flush()
    tool.say("dry run: ", #groups, " groups in the account, ", #all, " rows: ",
      counts_text({ { #plan.creates, "to create", always = true }, { #plan.updates, "to update", always = true },
        { #plan.deletes, "to delete", always = true }, { plan.unchanged, "unchanged", always = true },
        { #plan.problems, "problem" .. (#plan.problems == 1 and "" or "s") },
        { #skipped, "empty row" .. (#skipped == 1 and "" or "s") .. " skipped" } }), "; no change was sent")
    report_problems()
    return #plan.problems == 0 and EXIT_OK or EXIT_FAILED
  end

  if signals.caught() then
    client:close()
    tool.say("stopped by SIG", signals.caught(), " before any change was sent: nothing was changed")
    return EXIT_FAILED
  end

  -- the changes, as batch calls
  local fresh_run = o.results and not run_id and not legacy_base
  if fresh_run then run_id = core.uuid4() end
  local calls, changes, keys = {}, {}, {}
  local function add(action, change, call)
    calls[#calls + 1] = call
    changes[#changes + 1] = { action = action, change = change }
  end
  for _, c in ipairs(plan.creates) do
    local key
    local last = c.previous
    if last and type(last.idempotency_key) == "string" and last.idempotency_key ~= "" then
      key = last.result == "failed" and next_key(last.idempotency_key) or last.idempotency_key
    elseif legacy_base then
      key = legacy_key(legacy_base, account, c.key)
    else
      key = core.uuid4()
    end
    c.idempotency_key = key
    keys[c.key] = key
    add("create", c, { resource = "groups", op = "create", body = c.row.body, query = c.row.query,
      idempotency_key = key })
  end
  for _, c in ipairs(plan.updates) do
    add("update", c, { resource = "groups", op = "update", id = c.group.id, body = c.body,
      query = { integrated_account_id = account } })
  end
  for _, c in ipairs(plan.deletes) do
    -- BlackLine deletes only with group_type=team: send the group's own type
    local t = c.group.group_type
    local query = { integrated_account_id = account }
    if t == "team" or t == "department" or t == "group" then query.group_type = t end
    add("delete", c, { resource = "groups", op = "delete", id = c.group.id, query = query })
  end

  local writer
  if o.results then
    local open_problem
    writer, open_problem = results.open(o.results, false)
    if not writer then
      client:close()
      return tool.usage_error("cannot write " .. o.results .. ": " .. tostring(open_problem), "sync")
    end
    -- the run's identity first, then every create's key, flushed before
    -- anything is sent: a run killed at any point resumes with these keys
    if fresh_run then writer:note({ run = run_id, command = "sync", account = account }) end
    if next(keys) then writer:note({ run = run_id or json.null, keys = keys }) end
  else
    writer = { write = function(_, fields)
      io.stdout:write(results.line(fields), "\n")
      io.stdout:flush()
    end, close = function() end }
  end

  local counts = { created = 0, updated = 0, deleted = 0, failed = 0, unknown = 0, not_started = 0 }
  local failures = {}
  local written = {}
  local interrupted = false
  local function record(i, value, err)
    if written[i] then return end
    written[i] = true
    local action, change = changes[i].action, changes[i].change
    local fields = change_fields(action, change)
    if action == "create" then fields.idempotency_key = change.idempotency_key end
    if action == "update" then fields.body = change.body end
    if value == nil and action == "delete" and err.status == 404 then
      -- gone already: what the sync wanted
      value, fields.status, fields.message = {}, 404, "already gone"
    end
    if value ~= nil then
      fields.result = action == "create" and "created" or action == "update" and "updated" or "deleted"
      if action == "create" then
        fields.id = type(value) == "table" and id_text(value.id) or nil
        if not fields.id then fields.message = "Truto answered 2xx without a group id" end
      end
    else
      if err.kind == "cancelled" then
        -- stopped (tool.should_stop): in flight or not yet sent
        fields.result = err.sent and "unknown" or "not_started"
      else
        fields.result = results.outcome_unknown(err) and "unknown" or "failed"
      end
      fields.kind, fields.status = err.kind, err.status
      fields.message = json.text(err.message or tostring(err))
      if err.attempts and err.attempts > 1 then fields.attempts = err.attempts end
      if #failures < 10 then
        failures[#failures + 1] = string.format("  %s %s: %s: %s", action,
          fields.name and quoted(fields.name) or ("id " .. tostring(fields.id)), fields.result,
          commands.describe(err))
      end
    end
    counts[fields.result] = counts[fields.result] + 1
    writer:write(fields)
  end

  if #calls > 0 then
    -- lua5.4 turns a Ctrl-C into an error raised where Lua runs next: the
    -- batch stops, and the changes without a line may have been sent
    local ok, out, err = pcall(client.batch, client, calls, { concurrency = o.concurrency or 8,
      on_result = record, should_stop = tool.should_stop,
      on_progress = function(done, total) progress.show(done .. "/" .. total .. " changes") end })
    progress.done()
    if not ok then
      if not tostring(out):find("interrupted!$") then error(out, 0) end
      interrupted = true
      local lost = { kind = "cancelled", sent = true,
        message = "interrupted (Ctrl-C) while the changes were being sent: it may have been made" }
      setmetatable(lost, { __tostring = function(e) return e.kind .. ": " .. e.message end })
      for i = 1, #calls do
        if not written[i] then record(i, nil, lost) end
      end
    elseif not out then
      for i = 1, #calls do record(i, nil, err) end
    else
      for i = 1, #calls do
        local r = out[i]
        if not written[i] then record(i, r and r.value, r and r.err) end
      end
    end
  end
  writer:close()
  client:close()

  local not_done = counts.failed + counts.unknown + counts.not_started
  if interrupted then
    tool.say("interrupted (Ctrl-C): the changes left without an answer are recorded as unknown")
  end
  tool.say("sync: ", counts_text({
    { counts.created, "created" }, { counts.updated, "updated" }, { counts.deleted, "deleted" },
    { plan.unchanged, "unchanged", always = true },
    { before, "done by an earlier run" }, { counts.failed, "failed" }, { counts.unknown, "unknown" },
    { counts.not_started, "not started" },
    { #plan.problems, "skipped for problems" },
    { #skipped, "empty row" .. (#skipped == 1 and "" or "s") .. " skipped" } }))
  for _, f in ipairs(failures) do io.stderr:write(errors.redact(f, os.getenv("TRUTO_API_TOKEN")), "\n") end
  if not_done > #failures then io.stderr:write("  ... and ", not_done - #failures, " more failures\n") end
  report_problems()
  if o.results and not_done > 0 then
    tool.say("results in ", o.results, "; run again with --resume to finish the changes not made")
  end
  return (not_done == 0 and #plan.problems == 0) and EXIT_OK or EXIT_FAILED
end

return M
