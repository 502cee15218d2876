-- truto.batch: client.groups.create_many — many creates at once.
--
-- With the curl transport, every request runs on one libcurl multi handle
-- (connections reused, HTTP/2 multiplexed when offered) and this file only
-- decides: which item starts next, what each answer means, whether and when
-- to retry. Each item keeps its own Idempotency-Key across retries; a 429 on
-- any item pauses the whole batch (shared backoff honouring Retry-After);
-- invalid items fail alone. Exactly one result per item, in input order.
-- With another transport (ngx, a custom table) items run through
-- client.groups.create, concurrently in ngx.thread light threads inside
-- nginx, one after another elsewhere.
--
-- Must never: drop or duplicate a result, reuse a key across items, retry
-- what retry.lua forbids, or leave transfers running after it returns.

local core = require "truto.core"
local errors = require "truto.errors"
local response = require "truto.response"
local retry = require "truto.retry"
local schema = require "truto.schema"
local client_mod = require "truto.client"

local M = {}

local now, uuid4 = core.now, core.uuid4
local endpoint = client_mod.endpoint

local BATCH_OPTIONS = { concurrency = true, on_result = true, on_progress = true, should_stop = true }
local ITEM_KEYS = { body = true, query = true, idempotency_key = true }

local function bad(field, detail) return nil, errors.invalid(field, detail) end

-- Splits create_many's options into the batch's own and the per-call ones.
local function split_options(c, options)
  local batch, call = { concurrency = 8 }, {}
  if options ~= nil and type(options) ~= "table" then
    return bad("options", "must be a table (got " .. type(options) .. ")")
  end
  for k, v in pairs(options or {}) do
    if BATCH_OPTIONS[k] then batch[k] = v
    elseif k == "idempotency_key" or k == "sink" then
      return bad(k, "is per item in create_many (give items as { body = ..., idempotency_key = ... })")
    else call[k] = v end
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
  local o, err = client_mod.call_options(c, call)
  if not o then return nil, err end
  return batch, o
end

local function merged_query(base, own)
  if own == nil then return base end
  if type(own) ~= "table" then return own end -- endpoint:build names the mistake
  if type(base) ~= "table" then return own end
  local q = {}
  for k, v in pairs(base) do q[k] = v end
  for k, v in pairs(own) do q[k] = v end
  return q
end

-- Turns item i into a prepared job, or an invalid_argument error.
local function prepare(c, i, item, query, o)
  local body, own_query, key = item, nil, nil
  if type(item) ~= "table" then
    return nil, errors.invalid("items[" .. i .. "]", "must be a table (got " .. type(item) .. ")")
  end
  if item.body ~= nil then
    for k in pairs(item) do
      if not ITEM_KEYS[k] then
        return nil, errors.invalid("items[" .. i .. "]." .. tostring(k),
          "is not an item key (expected body, query, idempotency_key)")
      end
    end
    body, own_query, key = item.body, item.query, item.idempotency_key
    if key ~= nil and key ~= false and (type(key) ~= "string" or key == "" or key:find("[%z\1-\31\127]")) then
      return nil, errors.invalid("items[" .. i .. "].idempotency_key",
        "must be a string without control characters, or false")
    end
  end
  local q = merged_query(query, own_query)
  local target, json, why = endpoint:build(body, q, c.integrated_account_id)
  if not target then
    return nil, errors.new("invalid_argument", "items[" .. i .. "]: " .. why,
      { field = "items[" .. i .. "]." .. json, retryable = false })
  end
  if key == nil then key = uuid4() end
  local headers = { c.headers[1], c.headers[2], c.headers[3], c.headers[4] }
  if key then headers[#headers + 1] = "Idempotency-Key: " .. key end
  if o.headers then for h = 1, #o.headers do headers[#headers + 1] = o.headers[h] end end
  return {
    index = i, url = c.base_url .. target, body = json, headers = headers, key = key,
    format = type(q) == "table" and q.truto_response_format or nil,
    attempts = 0, not_before = 0,
  }
end

-- The result of an item the batch was told to stop (should_stop): never
-- started (sent = false), or abandoned in flight or between attempts
-- (sent = whether a request may have reached the server).
local function cancelled(sent)
  return errors.new("cancelled", sent and "stopped while in flight: the request may have been sent"
    or "not sent: the batch was stopped first", { sent = sent and true or false, retryable = false })
end

-- The curl path: one multi handle, Lua deciding. Items are prepared only
-- when a slot is free for them (next_job), so building overlaps the
-- network and a finished item's request is garbage at once.
local function run_multi(c, next_job, o, batch, finish)
  local multi = c.transport:multi()
  local retries = {}                 -- jobs whose wait is over, oldest first
  local waiting = {}                 -- jobs waiting for their retry time
  local by_index, inflight = {}, 0
  local pause_until, skew = 0, 0     -- shared backoff; skew: time the sleep hook "passed"
  local limit = batch.concurrency
  local fresh = next_job()           -- the next item not yet started, or nil
  local function clock() return now() + skew end

  local function start(job)
    job.attempts = job.attempts + 1
    if job.attempts == 1 then job.started = clock() end
    local timeout = o.timeout
    if o.deadline then
      timeout = math.min(timeout, math.max(job.started + o.deadline - clock(), 0.001))
    end
    by_index[job.index] = job
    inflight = inflight + 1
    multi:add(job.index, schema.method, job.url, job.headers, job.body, timeout,
      o.connect_timeout, o.max_response_bytes, o.stall_timeout, nil, o.follow_redirects)
  end

  local function settle(r)
    local job = by_index[r[1]]
    by_index[r[1]] = nil
    inflight = inflight - 1
    local status, sent = r[2], true
    local err
    if status then
      local value
      value, err = response.interpret(status, r[3], r[4], job.format, false, job.key ~= false)
      if value ~= nil then
        return finish(job.index, value, { status = status, headers = r[3], attempts = job.attempts,
          idempotency_key = job.key or nil, elapsed = clock() - job.started,
          rate_limit = response.rate_limit(r[3]) })
      end
    else
      err = client_mod.transport_error(c, r[3], r[4], r[6])
      sent = r[5]
    end
    err.attempts = job.attempts
    job.sent = job.sent or sent
    err.sent = job.sent
    err.retryable = retry.may_retry(err, sent, job.key ~= false)
    local left = o.deadline and (job.started + o.deadline - clock()) or nil
    local wait = retry.plan(err, sent, job.key ~= false, o, job.attempts, left)
    if not wait then return finish(job.index, nil, nil, errors.redact(err, c.token)) end
    if c.on_retry then
      c.on_retry{ attempt = job.attempts, reason = retry.reason(err), wait = wait, index = job.index,
        err = errors.redact(err, c.token), idempotency_key = job.key or nil }
    end
    job.not_before = clock() + wait
    if err.kind == "rate_limited" then pause_until = math.max(pause_until, job.not_before) end
    waiting[#waiting + 1] = job
  end

  local stopping = false
  while fresh or #retries > 0 or #waiting > 0 or inflight > 0 do
    if batch.should_stop then
      local verdict = batch.should_stop() or (stopping and "stop")
      if verdict then
        -- start nothing more: what waits for a retry is settled as cancelled
        stopping = true
        if fresh then finish(fresh.index, nil, nil, cancelled(false)) end
        fresh = next_job(true)
        for _, job in ipairs(retries) do waiting[#waiting + 1] = job end
        for _, job in ipairs(waiting) do finish(job.index, nil, nil, cancelled(job.sent)) end
        retries, waiting = {}, {}
      end
      if verdict == "abandon" and inflight > 0 then
        -- stop waiting: every transfer still running is dropped with its handle
        c.transport.multi_handle:close()
        c.transport.multi_handle = nil
        for index in pairs(by_index) do finish(index, nil, nil, cancelled(true)) end
        by_index, inflight = {}, 0
      end
    end
    local t = clock()
    -- jobs whose wait is over go before any fresh item
    if #waiting > 0 then
      local still = {}
      for _, job in ipairs(waiting) do
        if job.not_before <= t then retries[#retries + 1] = job else still[#still + 1] = job end
      end
      waiting = still
    end
    if t >= pause_until then
      while inflight < limit and #retries > 0 do start(table.remove(retries, 1)) end
      while inflight < limit and fresh do
        start(fresh)
        fresh = next_job()
      end
    end
    -- when is something due that is not in flight?
    local due = nil
    if fresh or #retries > 0 then due = pause_until end
    for _, job in ipairs(waiting) do
      local d = math.max(job.not_before, pause_until)
      if not due or d < due then due = d end
    end
    if inflight > 0 then
      local wait = due and math.max(0, math.min(1, due - t)) or 1
      -- a stop is asked for between transfers: look again soon
      if batch.should_stop then wait = math.min(wait, 0.1) end
      local done = multi:perform(wait)
      for k = 1, #done do settle(done[k]) end
    elseif due then
      local w = due - t
      if batch.should_stop then w = math.min(w, 0.1) end -- look again soon
      if w > 0 then
        local before = now()
        c.sleep(w)
        -- an injected sleep may not pass real time: let the clock catch up
        skew = skew + math.max(0, w - (now() - before))
      end
    end
  end
end

-- Any other transport: through client.groups.create, concurrently where
-- ngx.thread exists.
local function run_each(c, next_job, items, query, options, batch, finish)
  local call = {}
  for k, v in pairs(options or {}) do if not BATCH_OPTIONS[k] then call[k] = v end end
  local function worker()
    while true do
      local job = next_job(batch.should_stop and batch.should_stop() and true)
      if not job then return end
      local item = items[job.index]
      local body, own = item, nil
      if item.body ~= nil then body, own = item.body, item.query end
      local o = {}
      for k, v in pairs(call) do o[k] = v end
      o.idempotency_key = job.key
      local g, meta = c.groups.create(body, merged_query(query, own), o)
      if g ~= nil then finish(job.index, g, meta) else finish(job.index, nil, nil, meta) end
    end
  end
  local threads = rawget(_G, "ngx") and ngx.thread
  if threads and batch.concurrency > 1 then
    local spawned = {}
    for w = 1, math.min(batch.concurrency, #items) do spawned[w] = threads.spawn(worker) end
    for w = 1, #spawned do threads.wait(spawned[w]) end
  else
    worker()
  end
end

-- M.create_many(client, items, query, options) -> results | nil, err
function M.create_many(c, items, query, options)
  if c.closed then error("attempt to use a closed truto client", 3) end
  if type(items) ~= "table" then return bad("items", "must be an array (got " .. type(items) .. ")") end
  local total = #items
  for k in pairs(items) do
    if type(k) ~= "number" or k < 1 or k > total or k % 1 ~= 0 then
      return bad("items", "must be an array 1..n (found key " .. tostring(k) .. ")")
    end
  end
  local batch, o = split_options(c, options)
  if not batch then return nil, o end

  local results, done = {}, 0
  local function finish(i, group, meta, err)
    assert(results[i] == nil, "create_many: a second result for one item")
    results[i] = err and { err = err } or { group = group, meta = meta }
    done = done + 1
    if batch.on_result then batch.on_result(i, group, err) end
    if batch.on_progress then batch.on_progress(done, total) end
  end

  -- items are prepared one at a time, as they are about to start;
  -- an invalid one gets its result at once and the next is taken
  local next_item = 1
  local function next_job(stop)
    if stop then
      -- told to stop: every item not started yet is cancelled, unsent
      for i = next_item, total do finish(i, nil, nil, cancelled(false)) end
      next_item = total + 1
    end
    while next_item <= total do
      local i = next_item
      next_item = i + 1
      local job, err = prepare(c, i, items[i], query, o)
      if job then return job end
      finish(i, nil, nil, err)
    end
    return nil
  end

  if c.transport.multi then
    local ok, failure = pcall(run_multi, c, next_job, o, batch, finish)
    if not ok then
      -- a callback raised: stop every transfer, then let the error through
      if c.transport.multi_handle then c.transport.multi_handle:close() end
      c.transport.multi_handle = nil
      error(failure, 0)
    end
  else
    run_each(c, next_job, items, query, options, batch, finish)
  end
  return results
end

return M
