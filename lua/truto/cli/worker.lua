-- truto.cli.worker: the part of `truto-groups import` that sends, and the
-- supervision that makes Ctrl-C safe.
--
-- Plain Lua has no signal API, and lua5.4 turns the first SIGINT into an
-- error raised wherever Lua happens to be (and dies on the second), while a
-- request in flight sits inside libcurl where no Lua runs. So the work is
-- split over processes (see `supervise`):
--   * the command itself waits in os.execute, which ignores SIGINT while it
--     waits (system(3));
--   * a /bin/sh supervisor traps SIGINT: the first creates the job's `stop`
--     file, the second creates `abandoned` and kills the worker;
--   * the worker (this module's `run`) runs in its own session (setsid), so
--     Ctrl-C never reaches it; it checks `stop` before starting each row or
--     batch, journals every row before sending it, and appends each row's
--     line to the results file (flushed) the moment it completes;
--   * the finisher (`finish`, also in its own session) then writes a line
--     for every row that has none: `unknown` (journaled: it was in flight)
--     or `not_started`.
-- With create_many the rows go in batches of --concurrency, every row of a
-- batch in flight at once (create_many cannot be told to stop starting),
-- so "stop starting rows" is exact at the cost of each batch waiting for its
-- slowest row; without it, one row at a time. The worker also stops when
-- its supervisor is gone (the command was killed): nobody would finish the
-- record.
-- Must never start a row after `stop` exists, never send a row it has not
-- journaled first, and never write two lines for a row in one run.

local truto = require "truto"
local json = require "truto.cli.json"
local results = require "truto.cli.results"

local M = {}

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

local function read_all(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local function write_all(path, text)
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  assert(f:close())
end

local function shell_quote(s)
  return "'" .. s:gsub("'", [['\'']]) .. "'"
end

-- The job: what the command hands the worker and the finisher.
--   config.json: results, offset, echo, concurrency, base_url, progress,
--                total, done_before, failed_before
--   work.jsonl:  one {"row","line","key","body","query"} per row to send
function M.write_job(dir, config, items)
  write_all(dir .. "/config.json", assert(json.encode(config)))
  local lines = {}
  for i, item in ipairs(items) do
    lines[i] = assert(json.encode({ row = item.row, line = item.line, key = item.key,
      body = item.body, query = item.query }))
  end
  write_all(dir .. "/work.jsonl", table.concat(lines, "\n") .. (#lines > 0 and "\n" or ""))
end

local function read_job(dir)
  local config = assert(json.decode(read_all(dir .. "/config.json")))
  local items = {}
  for line in read_all(dir .. "/work.jsonl"):gmatch("[^\n]+") do
    items[#items + 1] = assert(json.decode(line))
  end
  return config, items
end

---------------------------------------------------------------- progress bar

local Progress = {}
Progress.__index = Progress

local function clock()
  return require("truto.core").now()
end

local function duration(seconds)
  seconds = math.floor(seconds + 0.5)
  if seconds >= 3600 then
    return string.format("%d:%02d:%02d", math.floor(seconds / 3600), math.floor(seconds % 3600 / 60),
      seconds % 60)
  end
  return string.format("%d:%02d", math.floor(seconds / 60), seconds % 60)
end

function Progress.new(config)
  return setmetatable({ total = config.total, done = config.done_before or 0,
    failed = config.failed_before or 0, sent = 0, started = clock(), drawn = 0 }, Progress)
end

-- Counts one finished row; redraws at most every 0.1 s (and at the end).
function Progress:update(failed)
  self.done = self.done + 1
  self.sent = self.sent + 1
  if failed then self.failed = self.failed + 1 end
  self:draw(false)
end

-- Draws the bar (force: even if drawn less than 0.1 s ago, when something
-- changed since: before a batch starts, so a slow batch shows the state).
function Progress:draw(force)
  local t = clock()
  if self.shown == self.done and force then return end
  if not force and t - self.drawn < 0.1 and self.done < self.total then return end
  self.drawn, self.shown = t, self.done
  local elapsed = math.max(t - self.started, 1e-6)
  local rate = self.sent / elapsed
  local width = 24
  local filled = self.total > 0 and math.floor(width * self.done / self.total) or width
  local eta = rate > 0 and duration((self.total - self.done) / rate) or "?"
  io.stderr:write(string.format("\r\27[K[%s%s] %d/%d  %.1f/s  %d failed  ETA %s",
    string.rep("#", filled), string.rep(".", width - filled), self.done, self.total, rate,
    self.failed, eta))
  io.stderr:flush()
end

function Progress.clear()
  io.stderr:write("\r\27[K")
  io.stderr:flush()
end

---------------------------------------------------------------- the worker

-- Calls create_many on one batch (all of it in flight at once) and writes
-- each row's line as its result arrives.
local function send_batch(client, batch, write_outcome)
  local list, written = {}, {}
  for i, item in ipairs(batch) do
    list[i] = { body = item.body, query = item.query, idempotency_key = item.key }
  end
  local function record(index, group, err)
    if written[index] or not batch[index] then return end
    written[index] = true
    if group ~= nil then err = nil end
    write_outcome(batch[index], group, err)
  end
  local out, refusal = client.groups.create_many(list, nil, {
    concurrency = #batch,
    on_result = record,
  })
  if out == nil then
    -- the batch itself was refused (its options): nothing was sent
    for i = 1, #batch do record(i, nil, refusal) end
    return
  end
  -- exactly one line per row even if a result only came back in the array
  for i = 1, #batch do
    local r = type(out) == "table" and out[i]
    if not written[i] and type(r) == "table" and (r.group ~= nil or r.err ~= nil) then
      record(i, r.group, r.err)
    end
  end
end

-- This process's parent pid (Linux /proc), or nil where there is none.
local function parent_pid()
  local f = io.open("/proc/self/stat", "rb")
  if not f then return nil end
  local stat = f:read("a")
  f:close()
  return stat:match("^%d+ %b() %S+ (%d+)")
end

-- M.run(dir): sends every row of the job, until done, or `stop` appears, or
-- the supervisor is gone (killed with the command: then nobody would
-- finish the record or see the summary, so start nothing more).
function M.run(dir)
  local config, items = read_job(dir)
  local client = assert(truto.new { base_url = config.base_url, user_agent = config.user_agent })
  local writer = assert(results.open(config.results, config.echo))
  local journal = assert(io.open(dir .. "/journal", "ab"))
  local progress = config.progress and Progress.new(config) or nil
  local create_many = type(client.groups.create_many) == "function"
  local batch_size = create_many and config.concurrency or 1
  local stop_file = dir .. "/stop"
  local supervisor = parent_pid()
  local function go_on()
    return not exists(stop_file) and parent_pid() == supervisor
  end

  local function write_outcome(item, group, err)
    local fields = results.from_outcome(item, item.key, group, err)
    writer:write(fields)
    if progress then progress:update(fields.result ~= "created") end
  end

  local i = 1
  while i <= #items and go_on() do
    local batch = {}
    for j = i, math.min(#items, i + batch_size - 1) do batch[#batch + 1] = items[j] end
    local started = {}
    for k, item in ipairs(batch) do started[k] = item.row .. "\n" end
    assert(journal:write(table.concat(started)))
    assert(journal:flush())
    if progress then progress:draw(true) end
    if create_many then
      send_batch(client, batch, write_outcome)
    else
      local item = batch[1]
      local group, err = client.groups.create(item.body, item.query, { idempotency_key = item.key })
      write_outcome(item, group, group == nil and err or nil)
    end
    i = i + #batch
  end
  if progress then progress.clear() end
  journal:close()
  writer:close()
  client:close()
end

-- M.finish(dir): one line for every row of the job that has none yet.
-- Safe to run twice (it marks the job `finished`).
function M.finish(dir)
  if exists(dir .. "/finished") then return end
  local config, items = read_job(dir)
  local written = {}
  for _, line in ipairs(results.read(config.results, config.offset) or {}) do
    written[line.row] = true
  end
  local started = {}
  local jf = io.open(dir .. "/journal", "rb")
  if jf then
    for row in jf:read("a"):gmatch("(%d+)\n") do started[tonumber(row)] = true end
    jf:close()
  end
  local abandoned, stopped = exists(dir .. "/abandoned"), exists(dir .. "/stop")
  local writer = assert(results.open(config.results, config.echo))
  for _, item in ipairs(items) do
    if not written[item.row] then
      local fields = { row = item.row, line = item.line, idempotency_key = item.key, kind = "interrupted" }
      if started[item.row] then
        fields.result = "unknown"
        fields.message = (abandoned and "abandoned in flight by a second Ctrl-C"
          or "in flight when the worker stopped unexpectedly")
          .. ": the group may exist; --resume resends it with this key, which cannot create it twice"
      else
        fields.result = "not_started"
        fields.message = (stopped and "not sent: the run was interrupted (Ctrl-C) first"
          or "not sent: the worker stopped unexpectedly first") .. "; --resume sends it"
      end
      writer:write(fields)
    end
  end
  writer:close()
  write_all(dir .. "/finished", "")
end

-- M.supervise(dir, interpreter, script, progress) -> true when the
-- finisher ran. progress: a bar is on stderr (messages start a new line).
-- Runs the worker and then the finisher, each as `interpreter script
-- __worker|__finish dir` in its own session, under a shell that turns
-- Ctrl-C into the `stop` / `abandoned` files. Blocks until both are done.
function M.supervise(dir, interpreter, script, progress)
  local d, lua, cli = shell_quote(dir), shell_quote(interpreter), shell_quote(script)
  local nl = progress and "\\n" or ""  -- printf's \n, inside the trap's quotes
  local function say(text)
    return " printf \"" .. nl .. "truto-groups: " .. text .. "\\n\" >&2;"
  end
  local sh = table.concat({
    "dir=" .. d,
    "trap 'if [ -e \"$dir/stop\" ]; then : > \"$dir/abandoned\";"
      .. say("abandoning the rows in flight; they are recorded as unknown")
      .. " kill -TERM \"$pid\" 2>/dev/null;"
      .. " else : > \"$dir/stop\";"
      .. say("stopping: waiting for the rows in flight (Ctrl-C again abandons them)")
      .. " fi' INT",
    "setsid " .. lua .. " " .. cli .. " __worker \"$dir\" </dev/null &",
    "pid=$!",
    -- a wait cut short by the trap is repeated; 2>/dev/null: no "Terminated"
    "while :; do wait \"$pid\" 2>/dev/null; rc=$?; kill -0 \"$pid\" 2>/dev/null || break; done",
    "trap '" .. say("writing the record of the run") .. "' INT",
    "setsid " .. lua .. " " .. cli .. " __finish \"$dir\" </dev/null &",
    "pid=$!",
    "while :; do wait \"$pid\" 2>/dev/null; kill -0 \"$pid\" 2>/dev/null || break; done",
    "exit $rc",
  }, "\n")
  os.execute(sh)
  return exists(dir .. "/finished")
end

return M
