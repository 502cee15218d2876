-- truto.call: the one call path. Every single call, every page of `each`
-- and every item of a batch goes through the same three steps:
--
--   prepare(c, op, id, body, query, options) -> job | nil, err
--       validate and build from the description (truto.api), nothing sent
--   attempt: step(c, job, t) says "send", then the transport's request
--       (the job itself for the module's own transports), or the batch's
--       multi handle -> the raw result of a try
--   settle(c, job, status, headers, body, sent, which)
--       -> value, meta | nil, err, wait   (wait: retry after that long)
--
-- and step(c, job, t), the attempt loop (below: every rule about budgets,
-- deadlines, retries and stopping), decides between them. run(c, job)
-- drives one job; truto.batch drives many through the same step and settle.
--
-- Must never: send what failed validation; retry what truto.retry says
-- could take effect twice; let the token into an error; block inside
-- nginx (the client's sleep is ngx.sleep there).

local core = require "truto.core"
local errors = require "truto.errors"
local options_mod = require "truto.options"
local response = require "truto.response"
local retry = require "truto.retry"

local M = {}

local extra_headers -- defined below prepare's helpers

local now, uuid4, null = core.now, core.uuid4, core.null
local interpret, rate_limit = response.interpret, response.rate_limit
local FIELD_TYPES = core.FIELD_TYPES

-- ---- compiling operations -------------------------------------------------

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

-- The plan the C core reads for one side (body or query) of an operation.
local function plan_side(fields, hints, open, account)
  local side = { fields = {}, required = {}, hints = hints or {}, open = open or false,
    account = account }
  local names = {}
  for _, f in ipairs(fields or {}) do
    local spec = { t = assert(FIELD_TYPES[f.type], "truto.api: unknown type " .. tostring(f.type)),
      min = f.min }
    if f.values then spec.values, spec.expected = set_of(f.values), table.concat(f.values, ", ") end
    side.fields[f.name] = spec
    if f.required then side.required[#side.required + 1] = f.name end
    names[#names + 1] = f.name
  end
  side.names = #names > 0 and table.concat(names, ", ") or "none"
  return side
end

local compiled = setmetatable({}, { __mode = "k" })

-- M.compile(op) -> the compiled operation for a description of truto.api
-- (cached): { desc, build, method, kind, answer, pages, has_body, has_id,
-- repeatable }.
function M.compile(op)
  local c = compiled[op]
  if c then return c end
  local before, after = op.path:match("^(.-)/{id}(.*)$")
  local misplaced = op.misplaced or {}
  local has_body = op.body ~= nil or op.open_body == true
  local plan = {
    path = before or op.path, after_id = after,
    body = has_body and plan_side(op.body, misplaced.body, op.open_body) or false,
    query = plan_side(op.query, misplaced.query, op.open_query, "integrated_account_id"),
  }
  c = { desc = op, build = core.operation(plan), method = op.method, kind = op.kind,
    answer = op.answer, pages = op.pages, has_body = has_body, has_id = after ~= nil,
    -- may an attempt that reached the server be repeated: [sent with a key]
    repeatable = { [true] = retry.repeatable(op.kind, true), [false] = retry.repeatable(op.kind, false) } }
  compiled[op] = c
  return c
end

-- ---- prepare ---------------------------------------------------------------

-- The longest request target (path and query) sent. Truto sits behind a
-- CDN that refuses longer URLs (414), and libcurl refuses URLs over 8 MB.
local MAX_TARGET_BYTES = 16384
M.MAX_TARGET_BYTES = MAX_TARGET_BYTES

-- The top-level query parameter that makes the target too long (the
-- biggest one on its own), for the error's field.
local function longest_query_field(op, query, account, id)
  local worst, worst_len = "query", -1
  if type(query) ~= "table" then return worst end
  for k, v in pairs(query) do
    local target = op.build(op.has_body and {} or nil, { [k] = v }, account, id)
    if target and #target > worst_len then worst, worst_len = k, #target end
  end
  return worst
end

local function invalid(c, field, message)
  return nil, errors.redact(errors.new("invalid_argument", message,
    { field = field, retryable = false, attempts = 0, sent = false }), c.token)
end

local function header_name(line) return line:match("^[^:]+"):lower() end

-- The lines of a headers option (a table already checked, or a function
-- called now with { operation, method } and its answer checked).
local function header_lines(v, op, name)
  if v == nil then return {} end
  if type(v) ~= "function" then return v end
  local ok, got = pcall(v, { operation = name, method = op.method })
  if not ok then return nil, errors.invalid("headers", "the headers function raised: " .. tostring(got)) end
  if got == nil then return {} end
  if type(got) == "function" then
    return nil, errors.invalid("headers", "the headers function must return a table (got a function)")
  end
  local lines, err = options_mod.check_option("headers", options_mod.OPTIONS.headers, got)
  if lines == nil then return nil, err end
  return lines
end

-- The client's extra headers with the call's over them (same name: the
-- call's wins). -> lines | nil, err
extra_headers = function(c, o, op, name)
  local base, err = header_lines(c.headers, op, name)
  if not base then return nil, err end
  local over
  over, err = header_lines(o.headers, op, name)
  if not over then return nil, err end
  if #base == 0 then return over end
  if #over == 0 then return base end
  local names, out = {}, {}
  for _, l in ipairs(over) do names[header_name(l)] = true end
  for _, l in ipairs(base) do if not names[header_name(l)] then out[#out + 1] = l end end
  for _, l in ipairs(over) do out[#out + 1] = l end
  return out
end

-- M.prepare(c, op, id, body, query, options [, name]) -> job | nil, err
-- `op` is compiled (M.compile); `name` ("groups.create") is for hooks and
-- messages. Nothing is sent.
function M.prepare(c, op, id, body, query, options, name)
  if c.closed then error("attempt to use a closed truto client", 3) end
  local o, oerr = options_mod.call_options(c, options)
  if not o then
    oerr.attempts, oerr.sent = 0, false
    return nil, errors.redact(oerr, c.token)
  end
  return M.prepare_resolved(c, op, id, body, query, o, name)
end

-- M.prepare_resolved(c, op, id, body, query, o [, name]): prepare with the
-- call's options already resolved (truto.options.call_options).
function M.prepare_resolved(c, op, id, body, query, o, name)
  -- the whole URL at once: base_url, then the built path and query
  local url, json, why = op.build(body, query, c.integrated_account_id, id, c.base_url)
  if not url then return invalid(c, json, why) end
  local target_bytes = #url - #c.base_url
  if target_bytes > MAX_TARGET_BYTES then
    local field = longest_query_field(op, query, c.integrated_account_id, id)
    return invalid(c, field, field .. ": makes the URL " .. target_bytes .. " bytes long, over the "
      .. MAX_TARGET_BYTES .. " bytes servers accept")
  end
  local key = o.idempotency_key
  if op.kind == "write" then
    if key == nil then key = uuid4() end
  elseif key ~= nil then
    return invalid(c, "idempotency_key", "idempotency_key: only create, update and custom methods "
      .. "send one (" .. (name or op.method) .. " is safe to repeat without it)")
  else
    key = false
  end
  local h = c.own_headers
  local headers
  if json and key then -- the usual write: the whole list at once, no regrowing
    headers = { h.authorization, h.accept, h.user_agent, h.content_type, "Idempotency-Key: " .. key }
  else
    headers = { h.authorization, h.accept, h.user_agent }
    if json then headers[#headers + 1] = h.content_type end
    if key then headers[#headers + 1] = "Idempotency-Key: " .. key end
  end
  if c.headers or o.headers then
    local extra, herr = extra_headers(c, o, op, name)
    if not extra then return invalid(c, herr.field, herr.message) end
    for i = 1, #extra do headers[#headers + 1] = extra[i] end
  end
  -- (built: the query is nil or a plain table)
  local format, account = nil, c.integrated_account_id
  if query then
    format = query.truto_response_format
    local own = query.integrated_account_id
    if type(own) == "string" then account = own end
  end
  -- The job is the request the module's own transports read (README
  -- "Transports": method to follow_redirects; a transport the caller wrote
  -- gets a copy, request_for) and the call's own state after it, in one
  -- table. The fields set later are named here as nil: a constructor
  -- sizes the table for every field it names, and a table that grows is
  -- rehashed (a batch makes one job per item). maybe_sent stays nil until
  -- an attempt may have been delivered.
  local job = {
    method = op.method, url = url, headers = headers, body = json,
    max_response_bytes = o.max_response_bytes, stall_timeout = o.stall_timeout,
    follow_redirects = o.follow_redirects, timeout = nil, connect_timeout = nil, sink = nil,
    op = op, name = name, id = id, o = o, key = key or nil,
    repeatable = op.repeatable[key ~= false], format = format, attempts = 0, account = account,
    rate_wait = 0, index = nil, started = nil, limits = nil, maybe_sent = nil,
    -- the attempt loop's state (M.step): when to step next, in flight,
    -- the outcome once done, the failure a retry follows
    deadline_at = nil, not_before = nil, inflight = nil, done = nil, value = nil, meta = nil,
    last_err = nil,
  }
  if format == "stream" and o.sink then
    local user_sink = o.sink
    -- once a sink has seen bytes, a retry would hand it the body twice
    job.sink = function(chunk) job.sank = true; return user_sink(chunk) end
  end
  return job
end

-- ---- attempt ---------------------------------------------------------------

-- The limits of one attempt: the per-attempt timeout and connect_timeout,
-- never past the deadline (`left` seconds, or nil), and for each limit a
-- transport may report, the name of the option that really set it.
function M.limits(o, left)
  if not left and o.limits then return o.limits end
  local timeout, timeout_name = o.timeout, "timeout"
  if left and left <= timeout then timeout, timeout_name = math.max(left, 0.001), "deadline" end
  local connect_timeout, connect_name = o.connect_timeout, "connect_timeout"
  if timeout < connect_timeout then connect_timeout, connect_name = timeout, timeout_name end
  local limits = {
    timeout = timeout, connect_timeout = connect_timeout,
    names = { timeout = timeout_name, connect_timeout = connect_name,
      stall_timeout = "stall_timeout" },
  }
  if not left then o.limits = limits end -- the same for every attempt without a deadline
  return limits
end

-- Runs an observability hook (the call's, else the client's). A hook that
-- raises is reported in meta.hook_errors / err.hook_errors (and nginx's
-- error log), never breaks the call.
local function run_hook(c, job, which, info)
  local hook = job.o[which] or c[which]
  if not hook then return end
  local ok, e = pcall(hook, info)
  if not ok then
    local text = errors.redact(which .. " raised: " .. tostring(e), c.token)
    job.hook_errors = job.hook_errors or {}
    job.hook_errors[#job.hook_errors + 1] = text
    if rawget(_G, "ngx") and ngx.log then ngx.log(ngx.ERR, "truto: ", text) end
  end
end

-- What on_request and on_response are told about an attempt.
local function hook_info(c, job)
  return { operation = job.name, method = job.method,
    url = errors.redact(job.url, c.token), attempt = job.attempts,
    idempotency_key = job.key, bytes_out = job.body and #job.body or 0,
    rate_wait = job.rate_wait or 0, rate_store = job.rate_store }
end

-- M.clock(c) -> now on the client's clock: the monotonic clock plus the
-- time its sleep hook was asked to pass but did not (an injected sleep in
-- tests returns at once; deadlines, backoff and the rate budget then move
-- on as if it had slept).
function M.clock(c)
  return now() + (c.skew or 0)
end

-- M.sleep(c, seconds): the client's sleep, keeping M.clock in step.
function M.sleep(c, w)
  local before = now()
  c.sleep(w)
  c.skew = (c.skew or 0) + math.max(0, w - (now() - before))
end

-- Counts an attempt, tells on_request, and sets the attempt's limits
-- (never past the deadline). Called by M.step only.
local function begin(c, job, t)
  local o = job.o
  job.attempts = job.attempts + 1
  if job.sank then job.sank = false end
  -- the first attempt has the whole deadline (no float round-off)
  local left = job.deadline_at and ((job.attempts == 1 and job.rate_wait == 0) and o.deadline
    or job.deadline_at - t)
  local limits = M.limits(o, left)
  job.limits = limits
  job.timeout, job.connect_timeout = limits.timeout, limits.connect_timeout
  if c.on_response or o.on_response then job.attempt_started = t end
  if c.on_request or o.on_request then run_hook(c, job, "on_request", hook_info(c, job)) end
end

-- Tells on_response how the attempt ended.
local function tell_response(c, job, status, kind, rbody, t, wait)
  if not (c.on_response or job.o.on_response) then return end
  local info = hook_info(c, job)
  info.status, info.error = status, kind
  info.elapsed = t - (job.attempt_started or t)
  info.bytes_in = type(rbody) == "string" and #rbody or 0
  info.retry_in = wait
  run_hook(c, job, "on_response", info)
end

-- ---- settle ----------------------------------------------------------------

local TIMEOUT_TEXT = {
  timeout = "no complete answer within timeout = %gs",
  connect_timeout = "not connected within connect_timeout = %gs",
  stall_timeout = "no byte moved for stall_timeout = %gs",
  deadline = "the call's deadline = %gs passed",
}

-- M.transport_error(c, kind, message, which [, o, limits]) -> err
-- The error for an attempt the transport could not complete (no HTTP
-- answer). `which`: the limit the transport says fired, renamed to the
-- option that really set it (a deadline shortens the others).
function M.transport_error(c, kind, message, which, o, limits)
  local fields = {}
  message = tostring(message)
  if not errors.KINDS[kind] then kind = "network" end
  if kind == "timeout" then
    which = limits and limits.names[which] or which or "timeout"
    if not TIMEOUT_TEXT[which] then which = "timeout" end
    fields.timeout = which
    local limit = o and o[which]
    message = (limit and TIMEOUT_TEXT[which]:format(limit) or which .. " fired")
      .. " (" .. message .. ")"
  elseif kind == "tls" then
    -- the one way verification is off is named whenever it is
    if c.insecure then
      message = message .. " (insecure = true is set: certificate verification is off)"
    elseif message:lower():find("certificate", 1, true)
        and not message:find("lua_ssl_trusted_certificate", 1, true) then
      message = message .. (c.transport.name == "ngx"
        and " (trust a private CA with nginx's lua_ssl_trusted_certificate)"
        or " (set ca_file to trust a private CA)")
    end
  end
  return errors.new(kind, message, fields)
end

-- The error when waiting for the next attempt would pass the deadline.
local function deadline_error(o, attempt, last)
  return errors.new("timeout", TIMEOUT_TEXT.deadline:format(o.deadline) .. " before attempt "
    .. (attempt + 1) .. " could start; last failure: " .. retry.reason(last) .. ": "
    .. tostring(last.message),
    { timeout = "deadline", cause = last, retry_after = last.retry_after, sent = last.sent })
end

local function bad_answer(status, headers, body, why)
  return nil, errors.new("decode", why, { status = status, headers = headers, body = body,
    retryable = false })
end

-- The caller's value from a decoded 2xx answer, as the operation's
-- `answer` says (only for the unified and normalized formats: raw and
-- stream answers are the provider's own). An "object" answer is the value
-- as it came: settle does not call this for one.
local function shape(job, value, status, headers)
  local answer = job.op.answer
  if job.format == "raw" or job.format == "stream" or job.format == "debug" then return value end
  if answer == "page" then
    -- no result is no page: never an empty last one (sync would prune)
    if type(value) ~= "table" or type(value.result) ~= "table" then
      return bad_answer(status, headers, value, "a list answer must be an object with a result array")
    end
    for _, k in ipairs{ "next_cursor", "prev_cursor" } do
      local v = value[k]
      if v == null or v == "" then value[k] = nil
      elseif k == "next_cursor" and v ~= nil and type(v) ~= "string" then
        return bad_answer(status, headers, value, "a list answer's next_cursor must be a string or null")
      elseif v ~= nil and type(v) ~= "string" then value[k] = tostring(v) end
    end
    return value
  elseif answer == "wrapped" then
    if type(value) ~= "table" then
      return bad_answer(status, headers, value, "a custom method's answer must be an object")
    end
    local result = value.result
    if result == nil then result = null end
    return result
  elseif answer == "id" then
    if type(value) ~= "table" or next(value) == nil then
      return { id = job.id }
    end
    return value
  end
  return value
end

-- ---- the attempt loop --------------------------------------------------------
--
-- Every call -- a single one, a page of `each`, a batch item -- is a job
-- stepped through this one machine; the drivers (M.run below for a single
-- call, truto.batch's scheduler for many at once) only move bytes and
-- time. Every rule about budgets, deadlines, retries, keys, `sent` and
-- stopping is here, and only here:
--
--   M.step(c, job, t)  -> "send"                 attempt now (budget counted,
--                                                 limits set, on_request told)
--                       | "wait", at             step again at time `at`
--                       | "done", value, meta    (or "done", nil, err)
--   M.settle(c, job, status, headers, body, sent, which)   after each send
--   M.stop(c, job [, abandon])                   the driver gives up on it
--
--   fresh --step--> [budget wait] --step--> send --settle--> done
--                                             \--> retry wait --step--> ...
--
-- `t` is M.clock(c). A job is done once; step then keeps answering
-- "done" with the same outcome.

-- Ends the job with its outcome (the error redacted).
local function finish(c, job, value, meta)
  if value == nil then meta = errors.redact(meta, c.token) end
  job.done, job.value, job.meta = true, value, meta
  job.not_before = nil
  return "done", value, meta
end

-- The longest wait the rate budget's own counting can ask for (a window
-- and one of its buckets): a longer one is the server's word (a 429's
-- Retry-After, ratelimit-reset) and is held to retry_cap like a Retry-After.
local function counting_bound(c)
  local longest = 0
  for _, rule in pairs(c.pace.limits or {}) do
    if type(rule) == "table" and type(rule.window) == "number" and rule.window > longest then
      longest = rule.window
    end
  end
  return longest * 1.05
end

-- The error that ends a job the rate budget holds back for `w` seconds
-- from `t`, when truto.retry.budget says it may not wait, or nil. Nothing
-- was sent for this attempt.
local function budget_refusal(c, job, t, w)
  local o = job.o
  local servers = c.pace:blocked_until(job.account, t) ~= nil or w > counting_bound(c)
  local why = retry.budget(w, servers, o, job.deadline_at and job.deadline_at - t)
  if not why then return nil end
  local fields = { retryable = why == "rate_limited", attempts = job.attempts,
    sent = job.maybe_sent or false, rate_wait = job.rate_wait, cause = job.last_err }
  if why == "rate_limited" then
    fields.retry_after = w
    return errors.new("rate_limited", ("Truto asked to wait %s before the next request "
      .. "(Retry-After / ratelimit-reset), longer than %s"):format(
        w < 1e9 and ("%.0fs"):format(w) or ("%gs"):format(w), o.deadline and job.deadline_at - t < w
        and ("the call's deadline = %gs allows"):format(o.deadline)
        or ("retry_cap = %gs"):format(o.retry_cap)), fields)
  end
  fields.timeout = "deadline"
  return errors.new("timeout", TIMEOUT_TEXT.deadline:format(o.deadline)
    .. " while waiting " .. ("%.2f"):format(w) .. "s for the rate budget (Truto's rate limits)", fields)
end

-- The error of a job whose deadline passed while it was not in flight
-- (waiting for a free slot of a batch, the budget, or its retry).
local function deadline_passed(job)
  if job.last_err then
    local err = deadline_error(job.o, job.attempts, job.last_err)
    err.attempts, err.retryable, err.hook_errors = job.attempts, false, job.hook_errors
    return err
  end
  return errors.new("timeout", TIMEOUT_TEXT.deadline:format(job.o.deadline)
    .. " before the request could be sent", { timeout = "deadline", retryable = false,
      attempts = 0, sent = false, rate_wait = job.rate_wait })
end

-- M.step(c, job, t) -> "send" | "wait", at | "done", value, meta
-- What the job does now. "send": the driver sends the job (its limits are
-- set) and hands the answer to M.settle. Never called while it is in flight.
function M.step(c, job, t)
  if job.done then return "done", job.value, job.meta end
  if not job.started then
    job.started = t
    if job.o.deadline then job.deadline_at = t + job.o.deadline end
  end
  if job.deadline_at and t >= job.deadline_at then return finish(c, job, nil, deadline_passed(job)) end
  if job.not_before and t < job.not_before then return "wait", job.not_before end
  if c.pace then
    local w, store = c.pace:reserve(job.account, t)
    job.rate_store = store -- which store answered: meta.rate_store, hooks' info
    if w > 0 then
      w = math.max(w, 0.001) -- a wait too short to move the clock would spin
      local refusal = budget_refusal(c, job, t, w)
      if refusal then return finish(c, job, nil, refusal) end
      job.budget_since = job.budget_since or t
      job.not_before = t + w
      return "wait", job.not_before
    end
    if job.budget_since then
      job.rate_wait = job.rate_wait + (t - job.budget_since)
      job.budget_since = nil
    end
  end
  job.not_before, job.inflight = nil, true
  begin(c, job, t)
  return "send"
end

-- M.settle(c, job, status, headers, body, sent, which)
--   -> value, meta          the call is done
--    | nil, err            it failed for good
--    | nil, err, wait      it is retried: step it again after `wait` seconds
-- `status` nil: the transport's failure (headers = kind, body = message,
-- `sent` false when nothing can have reached the server, `which` the limit
-- that fired).
function M.settle(c, job, status, rheaders, rbody, sent, which)
  job.inflight = nil
  local o, token = job.o, c.token
  local clock = M.clock
  local value, err, rl
  if status then
    rl = rate_limit(rheaders)
    if c.pace and (rl or status == 429) then
      local remote = false
      if status == 429 and type(rbody) == "string" and rbody:find("truto_is_remote_error", 1, true) then
        remote = rbody:find('"truto_is_remote_error"%s*:%s*true') ~= nil
      end
      c.pace:learn(job.account, status, rl, response.retry_after(rheaders["retry-after"]), clock(c), remote)
    end
    value, err = interpret(status, rheaders, rbody, job.format, job.sink ~= nil,
      job.repeatable, token)
    if value ~= nil then
      if job.op.answer ~= "object" then value, err = shape(job, value, status, rheaders) end
      if value ~= nil then
        local t = clock(c)
        if c.on_response or o.on_response then tell_response(c, job, status, nil, rbody, t) end
        -- the fields always there in the constructor, the rare ones after:
        -- 7 fields fit a table of 8 slots (a batch keeps one per item)
        local meta = { status = status, headers = rheaders, attempts = job.attempts,
          idempotency_key = job.key, elapsed = t - job.started, operation = job.name,
          rate_wait = job.rate_wait }
        if job.rate_store then meta.rate_store = job.rate_store end
        if rl then meta.rate_limit = rl end
        if job.hook_errors then meta.hook_errors = job.hook_errors end
        finish(c, job, value, meta)
        return value, meta
      end
    end
    sent = true
  else
    err = M.transport_error(c, rheaders, rbody, which, o, job.limits)
    sent = sent ~= false
  end
  -- sent: some attempt of this call may have reached the server
  err.attempts, err.sent = job.attempts, sent or job.maybe_sent or false
  if job.op.kind == "delete" and err.status == 404 and job.maybe_sent then
    -- an earlier attempt may have been delivered: it may be what deleted it
    err.maybe_done = true
    err.message = err.message .. " (an earlier attempt may have deleted it)"
  end
  if sent then job.maybe_sent = true end
  err.retryable = retry.may_retry(err, sent, job.repeatable) and not job.sank
  local wait, stop
  if err.retryable then
    wait, stop = retry.plan(err, sent, job.repeatable, o, job.attempts,
      job.deadline_at and job.deadline_at - clock(c))
  end
  tell_response(c, job, err.status, err.kind, rbody, clock(c), wait)
  err.hook_errors = job.hook_errors
  if wait and job.stopping then
    -- the driver was told to stop: no retry, and not retryable by it
    err.retryable, wait = false, nil
  end
  if not wait then
    if stop == "deadline" and err.kind == "rate_limited" and err.retry_after then
      -- the server's own wait is past the deadline: said as the server said it
      err.message = err.message .. (" (Retry-After %gs is past the call's deadline = %gs)")
        :format(err.retry_after, o.deadline)
    elseif stop == "deadline" and not (err.kind == "timeout" and err.timeout == "deadline") then
      err = deadline_error(o, job.attempts, err)
      err.attempts, err.retryable, err.hook_errors = job.attempts, false, job.hook_errors
    end
    local _, _, final = finish(c, job, nil, err)
    return nil, final
  end
  err = errors.redact(err, token)
  job.last_err = err
  if c.on_retry then
    c.on_retry{ attempt = job.attempts, reason = retry.reason(err), wait = wait, err = err,
      idempotency_key = job.key, index = job.index, operation = job.name, rate_wait = job.rate_wait }
  end
  local at = clock(c) + wait
  if err.kind == "rate_limited" and c.pace then
    -- at the very instant the budget frees the items it now holds back, so
    -- a batch starts this retry before them
    local blocked = c.pace:blocked_until(job.account, clock(c))
    if blocked then at = math.min(at, blocked) end
  end
  job.not_before = at
  return nil, err, wait
end

-- Why a job given up by its driver ended (truto.batch's should_stop).
local CANCELLED = {
  never = "not sent: the batch was stopped before it started",
  retry = "stopped while waiting for a retry",
  inflight = "abandoned while in flight: it may have been delivered",
}

-- M.stop(c, job [, abandon]) -> err | nil
-- The driver gives up on the job. Not in flight (or `abandon`): it ends
-- now as `cancelled`, and the error is returned. In flight: it may still
-- finish, but is not retried (nil is returned; M.settle ends it).
function M.stop(c, job, abandon)
  if job.done then return nil end
  if job.inflight and not abandon then
    job.stopping = true
    return nil
  end
  local why = job.inflight and "inflight" or (job.attempts == 0 and "never" or "retry")
  local err = errors.new("cancelled", CANCELLED[why], { retryable = false, attempts = job.attempts,
    sent = why == "inflight" or job.maybe_sent or false, idempotency_key = job.key })
  job.inflight = nil
  local _, _, final = finish(c, job, nil, err)
  return final
end

-- The request a transport receives. The module's own transports read the
-- job itself; one the caller wrote gets a table of its own, made once per
-- call and given each attempt's limits (README "Transports"), so nothing
-- it writes into it can reach the call's state.
local function request_for(c, job)
  if not c.foreign_transport then return job end
  local req = job.req
  if not req then
    req = { method = job.method, url = job.url, headers = job.headers, body = job.body,
      max_response_bytes = job.max_response_bytes, stall_timeout = job.stall_timeout,
      sink = job.sink, follow_redirects = job.follow_redirects, timeout = nil, connect_timeout = nil }
    job.req = req
  end
  req.timeout, req.connect_timeout = job.timeout, job.connect_timeout
  return req
end

-- M.run(c, job) -> value, meta | nil, err: the single-call driver (one
-- job, the client's transport, the client's sleep).
function M.run(c, job)
  while true do
    local t = M.clock(c)
    local action, value, meta = M.step(c, job, t)
    if action == "send" then
      local _, _, wait = M.settle(c, job, c.transport:request(request_for(c, job)))
      -- the retry's wait as settle gave it (step then finds it passed)
      if wait and wait > 0 then M.sleep(c, wait) end
    elseif action == "wait" then
      M.sleep(c, value - t)
    else
      return value, meta
    end
  end
end

-- M.call(c, op, id, body, query, options, name) -> value, meta | nil, err
function M.call(c, op, id, body, query, options, name)
  local job, err = M.prepare(c, op, id, body, query, options, name)
  if not job then return nil, err end
  return M.run(c, job)
end

return M
