-- examples/neovim/truto_groups.lua - creating Truto groups from Neovim
-- (0.7+, LuaJIT) without freezing the editor, two ways:
--
--   local tg = dofile("/opt/truto-lua/examples/neovim/truto_groups.lua")
--   tg.setup { root = "/opt/truto-lua" }      -- this repository (make LUA=luajit)
--   tg.create({ name = "Eng" }, { group_type = "team" }, function(group, err) ... end)
--   tg.create_with_job({ name = "Eng", group_type = "team" }, function(group, err) ... end)
--
-- create: the module itself, in a libuv work thread (vim.loop.new_work). The
-- curl transport blocks that thread, never Neovim's main loop; the thread has
-- its own Lua state, so only strings cross (JSON both ways).
-- create_with_job: a job running the `truto-groups create` command line (Lua
-- 5.4, `make install`), read when it exits; nothing is loaded into Neovim.
-- Both read TRUTO_API_TOKEN (and TRUTO_BASE_URL, TRUTO_INTEGRATED_ACCOUNT_ID)
-- from Neovim's environment, and call back on the main loop (vim.schedule),
-- where every vim.api function may be used.
--
-- Must never: call the module on the main loop (each create would freeze the
-- editor for the whole round trip, retries included), or pass the token on a
-- command line (`ps` shows it).
local M = { root = "/opt/truto-lua", command = "truto-groups" }

-- settings: root (this repository: its lua/ and build/luajit/), command
-- (the truto-groups executable; a list for more words, e.g. { "lua5.4", path }).
function M.setup(settings)
  for k, v in pairs(settings or {}) do M[k] = v end
  return M
end

-- Runs in the work thread: a fresh LuaJIT state with none of Neovim's
-- modules, so it finds truto itself (JSON is truto's own). No upvalues:
-- luv copies the function's bytecode into the thread.
local function create_in_thread(root, body_json, query_json)
  package.path = root .. "/lua/?.lua;" .. package.path
  package.cpath = root .. "/build/luajit/?.so;" .. package.cpath
  local truto = require "truto"
  local client, err = truto.new{ timeout = 15, deadline = 30 }
  if not client then
    return false, truto.json_encode{ kind = err.kind, message = err.message, field = err.field }
  end
  local body = truto.json_decode(body_json, { mark_arrays = true })
  local group, meta = client.groups.create(body, truto.json_decode(query_json))
  client:close()
  if group then return true, truto.json_encode(group) end
  return false, truto.json_encode{ kind = meta.kind, status = meta.status, message = meta.message,
    field = meta.field, attempts = meta.attempts }
end

-- create(body, query, callback): callback(group) or callback(nil, err)
-- with err = { kind, status, message, field, attempts }.
function M.create(body, query, callback)
  local work = vim.loop.new_work(create_in_thread, function(ok, json)
    vim.schedule(function()
      local value = vim.json.decode(json)
      if ok then callback(value) else callback(nil, value) end
    end)
  end)
  work:queue(M.root, vim.json.encode(body), vim.json.encode(query or vim.empty_dict()))
end

-- create_with_job(fields, callback): fields name, description, group_type,
-- account (the command's flags); callback as for create. The command prints
-- the group as JSON on stdout, or its error on stderr and exits non-zero.
function M.create_with_job(fields, callback, tries)
  tries = tries or 1
  local argv = type(M.command) == "table" and vim.deepcopy(M.command) or { M.command }
  vim.list_extend(argv, { "create", "--name", fields.name })
  for _, flag in ipairs { "description", "group_type", "account" } do
    if fields[flag] then vim.list_extend(argv, { "--" .. flag:gsub("_", "-"), fields[flag] }) end
  end
  local out, errs = {}, {}
  local started, job = pcall(vim.fn.jobstart, argv, {
    stdout_buffered = true, stderr_buffered = true,
    on_stdout = function(_, lines) out = lines end,
    on_stderr = function(_, lines) errs = lines end,
    on_exit = function(_, code)
      if code == 0 then
        local ok, group = pcall(vim.json.decode, table.concat(out, "\n"))
        if ok then return callback(group) end
      end
      callback(nil, { kind = "command", status = code,
        message = vim.trim(table.concat(errs, "\n")) })
    end,
  })
  if not started and tries < 3 then
    -- the spawn itself can fail for a moment (E903, "not enough memory",
    -- seen on a loaded machine): nothing ran yet, so try again shortly
    vim.defer_fn(function() M.create_with_job(fields, callback, tries + 1) end, 200)
    return
  end
  if not started or job <= 0 then
    local why = not started and (": " .. tostring(job)) or ""
    vim.schedule(function()
      callback(nil, { kind = "command", message = "cannot run " .. table.concat(argv, " ") .. why })
    end)
  end
end

return M
