-- truto.batch: client:batch(calls) and <resource>.create_many(items) --
-- many calls at once. Each item is a job of truto.call, and truto.call's
-- step and settle (the one attempt loop) decide everything about it:
-- budget, deadline, retry, stop. This file only schedules: which item
-- starts next, in which slot, and how long nothing is due.
--
-- With the curl transport every request runs on one libcurl multi handle
-- (connections reused, HTTP/2 multiplexed when offered). With another
-- transport (ngx, a custom table) items run through call.run, concurrently
-- in ngx.thread light threads inside nginx, one after another elsewhere.
-- Each item keeps its own Idempotency-Key across retries; without a rate
-- budget a 429 pauses every item (shared backoff honouring Retry-After);
-- invalid items fail alone. Exactly one result per item, in input order
-- (or, with keep_results = false, none kept: on_result sees each and the
-- counts are returned). An error raised by on_result or on_progress stops
-- the batch and is raised again once no transfer of it is running.
--
-- Must never: drop or duplicate a result, reuse a key across items, wait
-- when nothing is due (no busy wait), or leave transfers running after it
-- returns.

local api = require "truto.api"
local call = require "truto.call"
local errors = require "truto.errors"
local options_mod = require "truto.options"

local M = {}


local BATCH_OPTIONS = { concurrency = true, on_result = true, on_progress = true, should_stop = true,
  keep_results = true }
local CALL_KEYS = { resource = true, model = true, op = true, id = true, body = true, query = true,
  idempotency_key = true }
local ITEM_KEYS = { body = true, query = true, idempotency_key = true }

local function bad(field, detail) return nil, errors.invalid(field, detail) end

-- Splits a batch's options into its own and the per-call ones, resolved.
local function split_options(c, options)
  local batch, callopts = { concurrency = 8, keep_results = true }, {}
  if options ~= nil and type(options) ~= "table" then
    return bad("options", "must be a table (got " .. type(options) .. ")")
  end
  for k, v in pairs(options or {}) do
    if BATCH_OPTIONS[k] then batch[k] = v
    elseif k == "idempotency_key" or k == "sink" then
      return bad(k, "is per item in a batch (give it in the item: { ..., idempotency_key = ... })")
    else callopts[k] = v end
  end
  local n = batch.concurrency
  if type(n) ~= "number" or n ~= n or n % 1 ~= 0 or n < 1 then
    return bad("concurrency", "must be a positive whole number (got " .. tostring(n) .. ")")
  end
  for _, f in ipairs{ "on_result", "on_progress", "should_stop" } do
    if batch[f] ~= nil and type(batch[f]) ~= "function" then
      return bad(f, "must be a function (got " .. type(batch[f]) .. ")")
    end
  end
  if type(batch.keep_results) ~= "boolean" then
    return bad("keep_results", "must be a boolean (got " .. type(batch.keep_results) .. ")")
  end
  if not batch.keep_results and not batch.on_result then
    return bad("keep_results", "false needs on_result: the results would be seen by no one")
  end
  local o, err = options_mod.call_options(c, callopts)
  if not o then return nil, err end
  return batch, o
end

local function merged_query(base, own)
  if own == nil then return base end
  if type(own) ~= "table" or type(base) ~= "table" then return own end
  local q = {}
  for k, v in pairs(base) do q[k] = v end
  for k, v in pairs(own) do q[k] = v end
  return q
end

-- The options of one item: the batch's, with the item's own key.
local function item_options(o, key)
  if key == nil then return o end
  local own = setmetatable({ idempotency_key = key }, { __index = o })
  return own
end

local function item_error(i, err)
  local field = "items[" .. i .. "]" .. (err.field and ("." .. err.field) or "")
  err.field = field
  err.message = "items[" .. i .. "]: " .. tostring(err.message)
  return err
end

-- An item's own idempotency_key, checked as the call option is (one rule).
local function check_key(i, key)
  if key == nil then return nil end
  local ok, err = options_mod.check_option("idempotency_key", options_mod.OPTIONS.idempotency_key, key)
  if ok == nil then return item_error(i, err) end
end

-- Item i is a table of `allowed` keys only, its own key valid: nil, or
-- the invalid_argument naming what is wrong (`what`: the keys expected).
local function check_item(i, item, allowed, what)
  if type(item) ~= "table" then
    return errors.invalid("items[" .. i .. "]", "must be a table (got " .. type(item) .. ")")
  end
  for k in pairs(item) do
    if not allowed[k] then return errors.invalid("items[" .. i .. "]." .. tostring(k), "is not " .. what) end
  end
  return check_key(i, item.idempotency_key)
end

-- The label of an operation in results and hooks: "groups.create".
local function label_of(desc, op_name)
  return desc.resource:gsub("%-", "_") .. "." .. op_name
end

-- The names in a set, sorted and joined, for messages.
local function listed(set)
  local names = {}
  for name in pairs(set) do names[#names + 1] = name end
  table.sort(names)
  return table.concat(names, ", ")
end

-- The operation a batch call names, compiled, and its label. `descs`
-- keeps the descriptions of undescribed resources for the batch, so each
-- of their plans is compiled once per batch, not once per item.
local function resolve(c, i, item, descs)
  local desc
  if item.model ~= nil then
    local key = tostring(item.model) .. "/" .. tostring(item.resource)
    desc = descs[key]
    if not desc then
      local r, err = c.unified(item.model, item.resource)
      if not r then return nil, item_error(i, err) end
      desc = api.find(item.model, item.resource) or api.generic(item.model, item.resource)
      descs[key] = desc
    end
  else
    desc = api.resources[item.resource]
    if not desc then
      return nil, errors.invalid("items[" .. i .. "].resource", "must name a described resource ("
        .. listed(api.resources) .. ") or come with model = ... for any other (got "
        .. tostring(item.resource) .. ")")
    end
  end
  local op = type(item.op) == "string" and desc.operations[item.op]
  if not op then
    return nil, errors.invalid("items[" .. i .. "].op", "must be one of "
      .. listed(desc.operations) .. " (got " .. tostring(item.op) .. ")")
  end
  return call.compile(op), label_of(desc, item.op)
end

-- A job for call i of client:batch, or its invalid_argument.
local function prepare_call(c, i, item, o, descs)
  local bad_item = check_item(i, item, CALL_KEYS,
    "a batch call key (expected resource, model, op, id, body, query, idempotency_key)")
  if bad_item then return nil, bad_item end
  local op, label = resolve(c, i, item, descs)
  if not op then return nil, label end
  local job, err = call.prepare_resolved(c, op, item.id, item.body, item.query,
    item_options(o, item.idempotency_key), label)
  if not job then return nil, item_error(i, err) end
  return job
end

-- How often, at most, should_stop is asked while nothing finishes (seconds
-- on the client's clock); it is also asked after every finished transfer.
local STOP_POLL = 0.1

-- The scheduler over the curl multi handle: Lua decides, C moves bytes.
-- Every decision about an item (budget, deadline, retry, stop) is
-- truto.call's step and settle; this only keeps the slots full, in order,
-- and sleeps until the next thing is due. Items are prepared only when a
-- slot is free for them (next_job), so building overlaps the network and
-- a finished item's request is garbage at once.
local function run_multi(c, multi, next_job, batch, finish)
  local queue = {}                   -- jobs stepped to "wait", each with job.not_before
  local by_index, inflight = {}, 0
  local pause_until = 0              -- shared backoff (without a rate budget)
  local limit = batch.concurrency
  local stopping = false
  -- with a rate budget, items of an account at its limit wait aside while
  -- others start; at most this many fresh ones are set aside at a time
  local lookahead, parked = math.max(64, limit * 8), 0
  local fresh = next_job()           -- the next item not yet stepped, or nil
  local finished = {}                -- multi:perform's output, reused
  local asked, settled = nil, true   -- when should_stop was last asked; anything finished since

  -- The one place a request reaches the multi handle.
  local function send(job)
    by_index[job.index] = job
    inflight = inflight + 1
    multi:add(job.index, job) -- the job is the request (its sink is not read)
  end

  local function step(job, t)
    local action, value, meta = call.step(c, job, t)
    if action == "send" then
      send(job)
    elseif action == "wait" then
      if job.attempts == 0 then parked = parked + 1 end
      queue[#queue + 1] = job
    else
      finish(job.index, value, meta)
    end
  end

  local function settle(id, status, headers, body, sent, which)
    local job = by_index[id]
    by_index[id] = nil
    inflight = inflight - 1
    settled = true
    local value, meta, wait = call.settle(c, job, status, headers, body, sent, which)
    if not wait then return finish(job.index, value, meta) end
    -- without a rate budget a 429 pauses everything; with one, the budget
    -- blocks just the account (or token) the answer concerned
    if meta.kind == "rate_limited" and not c.pace then
      pause_until = math.max(pause_until, job.not_before)
    end
    queue[#queue + 1] = job
  end

  local function stop_all()
    stopping = true
    for _, job in ipairs(queue) do finish(job.index, nil, call.stop(c, job)) end
    queue = {}
    for _, job in pairs(by_index) do call.stop(c, job) end
    while fresh do
      finish(fresh.index, nil, call.stop(c, fresh))
      fresh = next_job()
    end
  end

  while fresh or #queue > 0 or inflight > 0 do
    local t = call.clock(c)
    if batch.failed or settled or (batch.polls and t - asked >= STOP_POLL) then
      local verdict = batch.should_stop()
      asked, settled = t, false
      if verdict and not stopping then stop_all() end
      if verdict == "abandon" and inflight > 0 then return "abandon", by_index end
    end
    local free = not stopping and t >= pause_until and inflight < limit
    -- jobs whose time came: those past their deadline end now (no slot
    -- needed); the others start in free slots, retries first, in input order
    if #queue > 0 then
      local still, due = {}, {}
      for _, job in ipairs(queue) do
        if (job.deadline_at and job.deadline_at <= t) or (free and job.not_before <= t) then
          due[#due + 1] = job
          if job.attempts == 0 then parked = parked - 1 end
        else
          still[#still + 1] = job
        end
      end
      queue = still
      table.sort(due, function(a, b)
        if (a.attempts > 0) ~= (b.attempts > 0) then return a.attempts > 0 end
        return a.index < b.index
      end)
      for _, job in ipairs(due) do
        if (job.deadline_at and job.deadline_at <= t) or inflight < limit then
          step(job, t)
        else
          if job.attempts == 0 then parked = parked + 1 end
          queue[#queue + 1] = job
        end
      end
    end
    while free and inflight < limit and fresh and parked < lookahead do
      local job = fresh
      fresh = next_job()
      step(job, t)
    end
    -- the next time something not in flight is due: a deadline always, a
    -- start only when a slot is free for it (a finished transfer wakes
    -- perform otherwise), never one already past (no busy wait)
    local slot = not stopping and inflight < limit
    local due = nil
    local function consider(at)
      if at > t and (not due or at < due) then due = at end
    end
    if slot and fresh and parked < lookahead then consider(pause_until) end
    for _, job in ipairs(queue) do
      if job.deadline_at then consider(job.deadline_at) end
      if slot then consider(math.max(job.not_before, pause_until)) end
    end
    -- short waits while a stop may come, so a stop is seen at once
    local cap = batch.polls and STOP_POLL or 1
    if inflight > 0 then
      -- finished transfers come flat, six slots each, in one reused table
      local n = multi:perform(due and math.min(cap, due - t) or cap, finished)
      for b = 0, (n - 1) * 6, 6 do
        settle(finished[b + 1], finished[b + 2], finished[b + 3], finished[b + 4], finished[b + 5],
          finished[b + 6])
      end
    elseif due then
      call.sleep(c, batch.polls and math.min(STOP_POLL, due - t) or due - t)
    end
  end
end

-- Any other transport: call.run per job, concurrently where ngx.thread
-- exists.
local function run_each(c, next_job, batch, finish, total)
  local stopping = false
  local function worker()
    while true do
      if batch.should_stop and not stopping and batch.should_stop() then stopping = true end
      local job = next_job()
      if not job then return end
      if stopping or batch.failed then
        finish(job.index, nil, call.stop(c, job))
      else
        finish(job.index, call.run(c, job))
      end
    end
  end
  local threads = rawget(_G, "ngx") and ngx.thread
  if threads and batch.concurrency > 1 then
    local spawned = {}
    for w = 1, math.min(batch.concurrency, total) do spawned[w] = threads.spawn(worker) end
    for w = 1, #spawned do
      local ok, failure = threads.wait(spawned[w])
      if not ok and not batch.failed then batch.failed = { failure } end
    end
  else
    worker()
  end
end

-- The multi handle for one batch: the client's own, or a fresh one when a
-- batch is already running on it (a batch started from a callback).
local function take_multi(t)
  if t.multi_busy then return t:fresh_multi(), true end
  t.multi_busy = true
  return t:multi(), false
end

-- run(c, total, prepare_item, options, shape) -> results | counts | nil, err
-- prepare_item(i, o) -> job | nil, err. results[i] = shape(i, value, meta,
-- err). With keep_results = false (and on_result), no result is kept and
-- the counts { total, succeeded, failed, cancelled } are returned.
local function run(c, total, prepare_item, options, shape)
  if c.closed then error("attempt to use a closed truto client", 3) end
  local batch, o = split_options(c, options)
  if not batch then return nil, o end
  -- a callback that raised stops the batch as a stop request would
  local user_stop = batch.should_stop
  batch.polls = user_stop ~= nil -- wait in short steps so a stop is seen at once
  batch.should_stop = function()
    if batch.failed then return "stop" end
    if user_stop then return user_stop() end
  end

  local keep = batch.keep_results
  local results = keep and {} or nil
  local counts = { total = total, succeeded = 0, failed = 0, cancelled = 0 }
  local done = 0
  local function finish(i, value, meta)
    if keep and results[i] ~= nil then error("truto.batch: a second result for one item") end
    local err = value == nil and meta or nil
    if err then
      meta = nil
      counts.failed = counts.failed + 1
      if err.kind == "cancelled" then counts.cancelled = counts.cancelled + 1 end
    else
      counts.succeeded = counts.succeeded + 1
    end
    if keep then results[i] = shape(i, value, meta, err) end
    done = done + 1
    if batch.failed then return end
    local ok, failure = true, nil
    if batch.on_result then ok, failure = pcall(batch.on_result, i, value, err) end
    if ok and batch.on_progress then ok, failure = pcall(batch.on_progress, done, total) end
    if not ok then batch.failed = { failure } end
  end

  -- items are prepared one at a time, as they are about to start;
  -- an invalid one gets its result at once and the next is taken
  local next_item = 1
  local function next_job()
    while next_item <= total and not batch.failed do
      local i = next_item
      next_item = i + 1
      local job, err = prepare_item(i, o)
      if job then
        job.index = i
        return job
      end
      err.sent, err.attempts = false, err.attempts or 0
      finish(i, nil, errors.redact(err, c.token))
    end
    return nil
  end

  local t = c.transport
  if t.multi then
    local multi, own = take_multi(t)
    local ok, verdict, inflight = pcall(run_multi, c, multi, next_job, batch, finish)
    if not ok or verdict == "abandon" or batch.failed then
      -- stop every transfer still running; the handle is not reused
      multi:close()
      if not own then t.multi_handle = nil end
    end
    if not own then t.multi_busy = nil end
    if not ok then error(verdict, 0) end
    if verdict == "abandon" then
      local abandoned = {}
      for _, job in pairs(inflight) do abandoned[#abandoned + 1] = job end
      table.sort(abandoned, function(a, b) return a.index < b.index end)
      for _, job in ipairs(abandoned) do finish(job.index, nil, call.stop(c, job, true)) end
    end
  else
    run_each(c, next_job, batch, finish, total)
  end
  if batch.failed then error(batch.failed[1], 0) end
  if not keep then return counts end
  return results
end

local function check_array(items, name)
  if type(items) ~= "table" then return bad(name, "must be an array (got " .. type(items) .. ")") end
  local total = #items
  for k in pairs(items) do
    if type(k) ~= "number" or k < 1 or k > total or k % 1 ~= 0 then
      return bad(name, "must be an array 1..n (found key " .. tostring(k) .. ")")
    end
  end
  return total
end

-- M.batch(client, calls, options) -> results | nil, err
-- calls[i] = { resource = "groups", op = "update", id = ..., body = ...,
--              query = ..., idempotency_key = ... }  (or model = ... and
-- resource = ... for any unified resource). results[i] = { value, meta }
-- or { err }.
function M.batch(c, calls, options)
  local total, err = check_array(calls, "calls")
  if not total then return nil, err end
  local descs = {}
  return run(c, total, function(i, o) return prepare_call(c, i, calls[i], o, descs) end, options,
    function(_, value, meta, e)
      if e then return { err = e } end
      return { value = value, meta = meta }
    end)
end

-- M.create_many(client, desc, items, query, options) -> results | nil, err
-- items[i] is a body, or { body = ..., query = ..., idempotency_key = ... };
-- results[i] = { value, meta } (groups: `group` too, the same value) or
-- { err }.
function M.create_many(c, desc, items, query, options)
  local total, err = check_array(items, "items")
  if not total then return nil, err end
  local op = call.compile(desc.operations.create)
  local label = label_of(desc, "create")
  -- groups' results kept the name `group` before they were `value`
  local compat = desc == api.resources.groups and "group" or nil
  return run(c, total, function(i, o)
    local item = items[i]
    local body, own_query, key = item, nil, nil
    -- a body, or { body, query, idempotency_key }
    if type(item) ~= "table" or item.body ~= nil then
      local bad_item = check_item(i, item, ITEM_KEYS,
        "an item key (expected body, query, idempotency_key)")
      if bad_item then return nil, bad_item end
      body, own_query, key = item.body, item.query, item.idempotency_key
    end
    local job, e = call.prepare_resolved(c, op, nil, body, merged_query(query, own_query),
      item_options(o, key), label)
    if not job then return nil, item_error(i, e) end
    return job
  end, options, function(_, value, meta, e)
    if e then return { err = e } end
    -- one constructor with every field: a table that grows is rehashed
    if compat then return { value = value, meta = meta, [compat] = value } end
    return { value = value, meta = meta }
  end)
end

return M
