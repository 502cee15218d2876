-- spec.support.helpers: small shared pieces for the specs — decode what
-- the mock received, compare JSON as data, split query strings, and run
-- this tree's Lua in a subprocess with a chosen environment.
-- Never talks to anything but the local mock.
local cjson = require "cjson"

local M = {}

M.SEED_ACCOUNT = "62f44730-dd91-461e-bd6a-aedd9e0ad79d"

-- The interpreter running the specs (scripts/run-specs exports LUA).
M.LUA = os.getenv("LUA") or "lua5.4"

M.has_integers = math.type ~= nil

-- The raw query string's pairs, in order, as { "k=v", ... }.
function M.pairs_of(query)
  local out = {}
  for part in (query or ""):gmatch("[^&]+") do out[#out + 1] = part end
  return out
end

function M.decode(s) return cjson.decode(s) end

local shell_quote = require("spec.support.sh").quote
M.shell_quote = shell_quote

-- Runs `code` in a fresh interpreter with env (table) set; returns stdout
-- and whether it exited 0.
function M.run_lua(code, env)
  local prefix = {}
  for k, v in pairs(env or {}) do prefix[#prefix + 1] = k .. "=" .. shell_quote(v) end
  local cmd = table.concat(prefix, " ") .. " " .. M.LUA .. " -e " .. shell_quote(code) .. " 2>&1"
  local p = assert(io.popen(cmd))
  local out = p:read("*a")
  local ok = p:close()
  return out, ok == true or ok == 0
end

-- M.call_input(m, body, key, fields) -> the table a host's driver runs as one
-- create (the OpenResty and HAProxy specs): the mock's client config, `body`,
-- Coupa's account with group_type = team, Idempotency-Key `key`; `fields`
-- replaces body/query and is merged into config/options.
function M.call_input(m, body, key, fields)
  local input = {
    config = { token = m.token, base_url = m.url, retry_base = 0.01, retry_cap = 5 },
    body = body,
    query = { integrated_account_id = m.accounts.coupa, group_type = "team" },
    options = { idempotency_key = key },
  }
  for k, v in pairs(fields or {}) do
    if k == "config" or k == "options" then
      for ck, cv in pairs(v) do input[k][ck] = cv end
    else
      input[k] = v
    end
  end
  return input
end

return M
