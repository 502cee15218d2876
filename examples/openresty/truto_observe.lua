-- examples/openresty/truto_observe.lua - what the example nginx gives every
-- truto client so operators can see each call: a log line per attempt
-- (ngx.log), per-operation and per-status counters in a lua_shared_dict,
-- and those counters as Prometheus text for a /metrics location. Also the
-- request id of the nginx request on every call to Truto (X-Request-Id).
--
-- Must never: block (shared-dict operations only), or raise into a call
-- (truto reports a hook that raises, but a metrics hook should not need to).

local M = {}

local DICT = "truto_metrics"

local function dict() return ngx.shared[DICT] end

-- Prometheus label values: backslash, quote and newline escaped.
local function label(v)
  return (tostring(v):gsub("[\\\"\n]", { ["\\"] = "\\\\", ['"'] = '\\"', ["\n"] = "\\n" }))
end

-- The options to merge into truto.new{...}.
function M.client_options()
  return {
    headers = function()
      local id = ngx.var.request_id
      return id and { ["X-Request-Id"] = id } or nil
    end,
    on_response = function(info)
      local outcome = info.status and tostring(info.status) or info.error
      ngx.log(ngx.NOTICE, "truto ", info.operation, " ", info.method, " attempt ", info.attempt,
        " -> ", outcome, " in ", string.format("%.3f", info.elapsed), "s",
        info.rate_wait > 0 and string.format(" (waited %.3fs for the rate budget)", info.rate_wait) or "",
        info.retry_in and string.format(", retrying in %.2fs", info.retry_in) or "")
      local d = dict()
      if not d then return end
      local key = info.operation .. "|" .. outcome
      d:incr("n|" .. key, 1, 0)
      d:incr("s|" .. info.operation, info.elapsed, 0)
      d:incr("c|" .. info.operation, 1, 0)
      if info.rate_wait > 0 then d:incr("w|" .. info.operation, info.rate_wait, 0) end
    end,
  }
end

-- The counters as Prometheus text exposition (version 0.0.4).
function M.metrics()
  local d = dict()
  local lines = {
    "# HELP truto_requests_total Attempts of calls to Truto, by operation and status or error kind.",
    "# TYPE truto_requests_total counter",
  }
  local keys = d and d:get_keys(0) or {}
  table.sort(keys)
  local sums = {}
  for _, k in ipairs(keys) do
    local kind, rest = k:match("^(%a)|(.*)$")
    if kind == "n" then
      local op, outcome = rest:match("^(.*)|(.*)$")
      local is_status = outcome:match("^%d+$")
      lines[#lines + 1] = ('truto_requests_total{operation="%s",%s="%s"} %d'):format(
        label(op), is_status and "status" or "error", label(outcome), d:get(k) or 0)
    elseif kind then
      sums[#sums + 1] = { kind, rest, d:get(k) or 0 }
    end
  end
  local names = {
    s = { "truto_request_seconds_sum", "Seconds spent in attempts, by operation." },
    c = { "truto_request_seconds_count", "Attempts timed, by operation." },
    w = { "truto_rate_wait_seconds_total", "Seconds calls waited for the rate budget, by operation." },
  }
  for _, kind in ipairs{ "s", "c", "w" } do
    local header = false
    for _, e in ipairs(sums) do
      if e[1] == kind then
        if not header then
          lines[#lines + 1] = "# HELP " .. names[kind][1] .. " " .. names[kind][2]
          lines[#lines + 1] = "# TYPE " .. names[kind][1] .. (kind == "c" and " counter" or " counter")
          header = true
        end
        lines[#lines + 1] = ('%s{operation="%s"} %s'):format(names[kind][1], label(e[2]),
          kind == "c" and ("%d"):format(e[3]) or ("%.6f"):format(e[3]))
      end
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

return M
