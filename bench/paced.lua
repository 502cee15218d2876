#!/usr/bin/env lua5.4
-- bench/paced.lua - the pacing target of issue 11: 2,000 creates over 4
-- integrated accounts against the mock made a distant, rate-limited Truto
-- (80 ms latency; 50 per 1 s per account, 500 per 1 s per token: Truto's
-- limits scaled from 10 s windows to 1 s) finish within 1.1 × the minimum the
-- limits allow (2,000 / 200 per s = 10 s), with no 429 after the first
-- second; the same batch without pacing (rate_limits = false, today's
-- behaviour before pacing) is the row beside it. Run by bench/run, or alone:
--   LUA_PATH="lua/?.lua;./?.lua;;" LUA_CPATH="build/lua5.4/?.so;;" lua5.4 bench/paced.lua
-- Knobs: PACED_N (2000), PACED_CONCURRENCY (32).
-- Prints one line per row and `target: met|missed` lines; never asserts.
local truto = require "truto"
local core = require "truto.core"
local mock = require "spec.support.mock"

local N = tonumber(os.getenv("PACED_N") or "") or 2000
local CONCURRENCY = tonumber(os.getenv("PACED_CONCURRENCY") or "") or 32
local ACCOUNT_LIMIT, TOKEN_LIMIT, WINDOW, LATENCY = 50, 500, 1, 0.08

local m = mock.start{ latency = LATENCY,
  limits = ("%d/%g,%d/%g"):format(ACCOUNT_LIMIT, WINDOW, TOKEN_LIMIT, WINDOW) }

local ACCOUNTS = { "coupa", "files.com", "jira", "blackline" }

local function items()
  local out = {}
  for i = 1, N do
    local name = ACCOUNTS[(i - 1) % #ACCOUNTS + 1]
    out[i] = { body = { name = "Paced " .. i },
      query = { integrated_account_id = m.accounts[name], group_type = name == "blackline" and "team" or nil } }
  end
  return out
end

-- One batch; returns seconds, failures, 429s in all and after the first second.
local function run(rate_limits)
  m:reset()
  local c = assert(truto.new{ token = m.token, base_url = m.url, rate_limits = rate_limits,
    retry_cap = 30, max_retries = 10 })
  local started = core.now()
  local results = c.groups.create_many(items(), nil, { concurrency = CONCURRENCY })
  local seconds = core.now() - started
  c:close()
  local failed = 0
  for i = 1, N do if not results[i].group then failed = failed + 1 end end
  local records = m:requests()
  local first_at = records[1] and records[1].at or 0
  local n429, late429 = 0, 0
  for _, r in ipairs(records) do
    if r.status == 429 then
      n429 = n429 + 1
      if r.at and r.at - first_at > 1 then late429 = late429 + 1 end
    end
  end
  return seconds, failed, n429, late429, #records, m:stats().created
end

local minimum = N / (#ACCOUNTS * ACCOUNT_LIMIT / WINDOW)
if #ACCOUNTS * ACCOUNT_LIMIT > TOKEN_LIMIT then minimum = N / (TOKEN_LIMIT / WINDOW) end

print(("paced bench: %d creates over %d accounts, mock latency %g s, limits %d/%gs per account,"
  .. " %d/%gs per token, %d in flight; minimum the limits allow %.1f s"):format(N, #ACCOUNTS, LATENCY,
  ACCOUNT_LIMIT, WINDOW, TOKEN_LIMIT, WINDOW, CONCURRENCY, minimum))
print(("%-34s %9s %8s %8s %12s %9s %8s"):format("row", "seconds", "× min", "429s", "429s after 1s",
  "requests", "failed"))
local rows = {
  { "truto, paced (rate_limits)", { account = { limit = ACCOUNT_LIMIT, window = WINDOW },
    token = { limit = TOKEN_LIMIT, window = WINDOW } } },
  { "truto, unpaced (rate_limits=false)", false },
}
local paced
for _, row in ipairs(rows) do
  local seconds, failed, n429, late, requests = run(row[2])
  print(("%-34s %9.2f %8.2f %8d %12d %9d %8d"):format(row[1], seconds, seconds / minimum, n429, late,
    requests, failed))
  if not paced then paced = { seconds = seconds, late = late, failed = failed } end
end
local ok = paced.seconds <= 1.1 * minimum and paced.late == 0 and paced.failed == 0
print(("target: paced within 1.1 × %.1f s with no 429 after the first second: %s (%.2f s = %.2f ×, %d late 429s)")
  :format(minimum, ok and "met" or "missed", paced.seconds, paced.seconds / minimum, paced.late))
m:stop()
